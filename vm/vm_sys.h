// vm_sys.h — the host memory calls vmrt makes for itself, as raw system calls.
//
// Under LD_PRELOAD the shim exports mmap, munmap, mprotect, madvise, mremap, mincore,
// msync, mlock and munlock (runtime/rt_mmap: the program's own mappings are vmrt's).  A call
// to those names from code linked into the shim binds to the shim's own definitions, so
// vmrt's machinery (the region, physmem, the pmap, kmem's tables, the zones) must never
// call them by name: it calls these, which go straight to the kernel.  Same signatures and
// results as libc's (-1 / MAP_FAILED with errno).
#pragma once

#include <cerrno>
#include <cstddef>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

namespace vmrt::sys {

inline void* mmap(void* addr, std::size_t len, int prot, int flags, int fd, off_t off) {
  return reinterpret_cast<void*>(::syscall(SYS_mmap, addr, len, prot, flags, fd, off));
}
inline int munmap(void* addr, std::size_t len) { return static_cast<int>(::syscall(SYS_munmap, addr, len)); }
inline int mprotect(void* addr, std::size_t len, int prot) {
  return static_cast<int>(::syscall(SYS_mprotect, addr, len, prot));
}
inline int madvise(void* addr, std::size_t len, int advice) {
  return static_cast<int>(::syscall(SYS_madvise, addr, len, advice));
}
inline void* mremap(void* old_addr, std::size_t old_len, std::size_t new_len, int flags, void* new_addr = nullptr) {
  return reinterpret_cast<void*>(::syscall(SYS_mremap, old_addr, old_len, new_len, flags, new_addr));
}
inline int mincore(void* addr, std::size_t len, unsigned char* vec) {
  return static_cast<int>(::syscall(SYS_mincore, addr, len, vec));
}
inline int msync(void* addr, std::size_t len, int flags) { return static_cast<int>(::syscall(SYS_msync, addr, len, flags)); }
inline int mlock(const void* addr, std::size_t len) { return static_cast<int>(::syscall(SYS_mlock, addr, len)); }
inline int munlock(const void* addr, std::size_t len) { return static_cast<int>(::syscall(SYS_munlock, addr, len)); }

// A system call made inline rather than through libc's syscall(), for the code a host fork
// child runs (gettid, close, the VM lock's futex): libc's syscall() was a text page of its
// own to fault in every child (a shell's command substitutions).  -1 with errno on failure,
// as syscall(2).
inline long inline_syscall(long nr, long a1 = 0, long a2 = 0, long a3 = 0, long a4 = 0, long a5 = 0,
                           long a6 = 0) {
#if defined(__x86_64__)
  long r;
  register long r10 asm("r10") = a4;
  register long r8 asm("r8") = a5;
  register long r9 asm("r9") = a6;
  asm volatile("syscall"
               : "=a"(r)
               : "a"(nr), "D"(a1), "S"(a2), "d"(a3), "r"(r10), "r"(r8), "r"(r9)
               : "rcx", "r11", "memory");
  if (r < 0 && r > -4096) {
    errno = static_cast<int>(-r);
    return -1;
  }
  return r;
#else
  return ::syscall(nr, a1, a2, a3, a4, a5, a6);
#endif
}

}  // namespace vmrt::sys
