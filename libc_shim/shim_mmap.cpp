// shim_mmap.cpp — the mmap family, interposed: a program's anonymous mappings are vmrt's
// (runtime/rt_mmap: entries of the process vmspace over host memory, in the region's mmap
// area).  Whatever rt_mmap does not serve (file mappings, exotic flags, ranges outside the
// area, calls before vmrt booted or with VMRT_MMAP=host) goes to the kernel unchanged, as
// a raw system call, so the answer is the kernel's own.
//
// brk/sbrk are shim_brk.cpp's, mlockall/munlockall shim_mlock.cpp's.  Not interposed: mlock2,
// remap_file_pages, and raw syscall(SYS_mmap) or programs that make system
// calls without libc — those reach the host directly (README "Program memory").
#include <cerrno>
#include <cstdarg>
#include <sys/mman.h>

#include "libc_shim/shim_boot.h"
#include "runtime/rt_mlockall.h"
#include "runtime/rt_mmap.h"
#include "vm/vm_sys.h"

#ifndef MREMAP_DONTUNMAP
#define MREMAP_DONTUNMAP 4
#endif

#define VMRT_EXPORT extern "C" __attribute__((visibility("default")))

namespace {

using vmrt::rt::mm_answer;
using vmrt::rt::mm_route;

// The answer as libc gives it: the value, errno set when it is -1.
long give(const mm_answer& a) {
  if (a.value == -1) errno = a.err;
  return a.value;
}

// Served once the machine is up (the program's first malloc boots it, and the dynamic
// loader mallocs before the program runs); an mmap before that — or while the machine
// boots, or with no mmap area — goes to the host.  (mmap does not boot the machine: a
// program that fills the host's mapping limit before its first malloc must still get
// malloc's clean ENOMEM, scenario hostile_map_count.)
bool ready() { return vmrt::rt::mm_area_ready(); }

}  // namespace

VMRT_EXPORT void* mmap(void* addr, size_t len, int prot, int flags, int fd, off_t off) {
  mm_answer a{};
  void* r;
  if (ready() && vmrt::rt::mm_mmap(addr, len, prot, flags, fd, off, &a) == mm_route::handled)
    r = reinterpret_cast<void*>(give(a));
  else
    r = vmrt::sys::mmap(addr, len, prot, flags, fd, off);
  if (r != MAP_FAILED) vmrt::rt::mlockall_note_mapping(reinterpret_cast<vmrt::vaddr_t>(r), len);  // MCL_FUTURE
  return r;
}

VMRT_EXPORT void* mmap64(void* addr, size_t len, int prot, int flags, int fd, off_t off) {
  return mmap(addr, len, prot, flags, fd, off);
}

VMRT_EXPORT int munmap(void* addr, size_t len) {
  mm_answer a{};
  if (ready() && vmrt::rt::mm_munmap(addr, len, &a) == mm_route::handled) return static_cast<int>(give(a));
  return vmrt::sys::munmap(addr, len);
}

VMRT_EXPORT int mprotect(void* addr, size_t len, int prot) {
  mm_answer a{};
  if (ready() && vmrt::rt::mm_mprotect(addr, len, prot, &a) == mm_route::handled) return static_cast<int>(give(a));
  return vmrt::sys::mprotect(addr, len, prot);
}

VMRT_EXPORT int madvise(void* addr, size_t len, int advice) {
  mm_answer a{};
  if (ready() && vmrt::rt::mm_madvise(addr, len, advice, &a) == mm_route::handled) return static_cast<int>(give(a));
  return vmrt::sys::madvise(addr, len, advice);
}

// glibc's posix_madvise returns the error instead of setting errno, and MADV_DONTNEED is
// POSIX_MADV_DONTNEED's no-op there (glibc ignores it).
VMRT_EXPORT int posix_madvise(void* addr, size_t len, int advice) {
  if (advice == POSIX_MADV_DONTNEED) return 0;
  int saved = errno;
  int r = madvise(addr, len, advice);
  int e = r == 0 ? 0 : errno;
  errno = saved;
  return e;
}

VMRT_EXPORT void* mremap(void* old_addr, size_t old_len, size_t new_len, int flags, ...) {
  // new_address is an argument with MREMAP_FIXED (the target) and MREMAP_DONTUNMAP (a
  // hint the kernel checks: aligned, in range, not overlapping), as glibc reads it.
  void* new_addr = nullptr;
  if ((flags & (MREMAP_FIXED | MREMAP_DONTUNMAP)) != 0) {
    va_list ap;
    va_start(ap, flags);
    new_addr = va_arg(ap, void*);
    va_end(ap);
  }
  mm_answer a{};
  if (ready() && vmrt::rt::mm_mremap(old_addr, old_len, new_len, flags, new_addr, &a) == mm_route::handled)
    return reinterpret_cast<void*>(give(a));
  return vmrt::sys::mremap(old_addr, old_len, new_len, flags, new_addr);
}

VMRT_EXPORT int mincore(void* addr, size_t len, unsigned char* vec) {
  mm_answer a{};
  if (ready() && vmrt::rt::mm_mincore(addr, len, vec, &a) == mm_route::handled) return static_cast<int>(give(a));
  return vmrt::sys::mincore(addr, len, vec);
}

VMRT_EXPORT int msync(void* addr, size_t len, int flags) {
  mm_answer a{};
  if (ready() && vmrt::rt::mm_msync(addr, len, flags, &a) == mm_route::handled) return static_cast<int>(give(a));
  return vmrt::sys::msync(addr, len, flags);
}

VMRT_EXPORT int mlock(const void* addr, size_t len) {
  mm_answer a{};
  if (ready() && vmrt::rt::mm_mlock(addr, len, true, &a) == mm_route::handled) return static_cast<int>(give(a));
  return vmrt::sys::mlock(addr, len);
}

VMRT_EXPORT int munlock(const void* addr, size_t len) {
  mm_answer a{};
  if (ready() && vmrt::rt::mm_mlock(addr, len, false, &a) == mm_route::handled) return static_cast<int>(give(a));
  return vmrt::sys::munlock(addr, len);
}
