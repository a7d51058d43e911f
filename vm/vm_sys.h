// vm_sys.h — the host memory calls vmrt makes for itself, as raw system calls.
//
// Under LD_PRELOAD the shim exports mmap, munmap, mprotect, madvise, mremap, mincore,
// msync, mlock and munlock (runtime/rt_mmap: the program's own mappings are vmrt's).  A call
// to those names from code linked into the shim binds to the shim's own definitions, so
// vmrt's machinery (the region, physmem, the pmap, kmem's tables, the zones) must never
// call them by name: it calls these, which go straight to the kernel.  Same signatures and
// results as libc's (-1 / MAP_FAILED with errno).
#pragma once

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

}  // namespace vmrt::sys
