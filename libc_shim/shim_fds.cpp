// shim_fds.cpp — the program's close and dup families leave vmrt's descriptors open
// (vm/vm_fds.h).
//
// vmrt's swap devices and userfaultfd live in the program's descriptor table, at its top.
// A program that closes a descriptor it does not know of (a daemon closing everything above
// 2, a shell tidying up) would pull them from under the VM: the next pageout or fault fails
// or waits forever.  So, as if they were not in the table: close() of one fails with EBADF
// (what closing a descriptor that is not open gives), close_range() and closefrom() close
// everything else in their range, dup()/dup2()/dup3()/fcntl() of one fail with EBADF (a shell
// asks fcntl(F_GETFD) whether a number is open before it redirects onto it), and a
// dup2()/dup3() onto one (a shell's `exec 1000>file`) first moves vmrt's descriptor to
// another free number (vm_fd_move) and then does what the program asked, with Linux's
// result and errno.  Left to the host: raw system calls, and glibc's own internal calls
// (posix_spawn's file actions dup2 in the child with inline system calls), which no
// interposition reaches.  The stat family answers the same: fstat() of one fails with
// EBADF, as does a stat at a path relative to one (fstatat, statx): programs list the
// descriptors they hold by fstat-ing every number (Python's test of subprocess pass_fds
// saw the swap device and the userfaultfd of a paged process in its child's table).
#include <cerrno>
#include <climits>
#include <cstdarg>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "libc_shim/shim_next.h"
#include "vm/vm_fds.h"
#include "vm/vm_sys.h"
#include "vm/vm_types.h"

#define VMRT_EXPORT extern "C" __attribute__((visibility("default")))

namespace {

// Inline system calls and the fork path's text section: a shell closes descriptors in every
// child it forks, and each page of code or libc's syscall() it runs there is one more fault.
VMRT_FORK_TEXT int sys_close(int fd) { return static_cast<int>(vmrt::sys::inline_syscall(SYS_close, fd)); }
int sys_close_range(unsigned first, unsigned last, int flags) {
  return static_cast<int>(vmrt::sys::inline_syscall(SYS_close_range, first, last, flags));
}

using fcntl_fn = int (*)(int, int, ...);
VMRT_FORK_DATA fcntl_fn g_next_fcntl;    // glibc's fcntl, fcntl64 (shim_next.h)
VMRT_FORK_DATA fcntl_fn g_next_fcntl64;

VMRT_FORK_TEXT int sys_dup3(int oldfd, int newfd, int flags) {
  return static_cast<int>(vmrt::sys::inline_syscall(SYS_dup3, oldfd, newfd, flags));
}
int sys_dup(int fd) { return static_cast<int>(vmrt::sys::inline_syscall(SYS_dup, fd)); }
VMRT_FORK_TEXT int sys_fd_flags(int fd) { return static_cast<int>(vmrt::sys::inline_syscall(SYS_fcntl, fd, F_GETFD)); }

// dup3(oldfd, newfd, flags) where newfd is one of vmrt's: the program's file lands on newfd
// as if newfd were free, and vmrt's moves elsewhere.  The checks Linux makes before it
// touches newfd come first (flags, oldfd == newfd, then oldfd open), so a failing call
// leaves vmrt's descriptor where it was.  A dup3 that fails after the move (newfd past a
// lowered RLIMIT_NOFILE, a concurrent close of oldfd) closes newfd: to the program it was
// never open.  A vfork child's table is its own copy: the call is made as it stands.
// => may sleep (vm_fd_move).
int dup_onto_kept(int oldfd, int newfd, int flags) {
  if (!vmrt::vm_fd_table_ours()) return sys_dup3(oldfd, newfd, flags);  // a vfork child's own copy
  if (sys_fd_flags(oldfd) < 0 || vmrt::vm_fd_is_kept(oldfd)) {
    errno = EBADF;
    return -1;
  }
  if (vmrt::vm_fd_move(newfd) != 0) return -1;
  int r = sys_dup3(oldfd, newfd, flags);
  if (r < 0) {
    int e = errno;
    (void)sys_close(newfd);
    errno = e;
  }
  return r;
}

// close_range over [first, last] but around vmrt's descriptors: the stretches between them.
int close_range_around(unsigned first, unsigned last, int flags) {
  int kept[vmrt::kVmFdMax];
  unsigned n = vmrt::vm_fd_kept_in(first, last, kept, vmrt::kVmFdMax);
  unsigned from = first;
  for (unsigned k = 0; k < n; ++k) {
    unsigned fd = static_cast<unsigned>(kept[k]);  // in [first, last], ascending; below INT_MAX
    if (fd > from && sys_close_range(from, fd - 1, flags) != 0) return -1;
    from = fd + 1;
  }
  if (from <= last && sys_close_range(from, last, flags) != 0) return -1;
  return 0;
}

}  // namespace

VMRT_EXPORT VMRT_FORK_TEXT int close(int fd) {
  if (vmrt::vm_fd_is_kept(fd)) {
    errno = EBADF;
    return -1;
  }
  return sys_close(fd);
}

VMRT_EXPORT int close_range(unsigned first, unsigned last, int flags) noexcept {
  if (first > last) {
    errno = EINVAL;
    return -1;
  }
  return close_range_around(first, last, flags);
}

VMRT_EXPORT void closefrom(int lowfd) noexcept {
  if (lowfd < 0) lowfd = 0;
  (void)close_range_around(static_cast<unsigned>(lowfd), UINT_MAX, 0);
}

VMRT_EXPORT int dup(int fd) noexcept {
  if (vmrt::vm_fd_is_kept(fd)) {
    errno = EBADF;
    return -1;
  }
  return sys_dup(fd);
}

VMRT_EXPORT VMRT_FORK_TEXT int dup2(int oldfd, int newfd) noexcept {
  if (vmrt::vm_fd_is_kept(oldfd)) {
    errno = EBADF;
    return -1;
  }
  if (oldfd == newfd) return sys_fd_flags(oldfd) < 0 ? -1 : newfd;  // Linux: no change, only the check
  if (vmrt::vm_fd_is_kept(newfd)) return dup_onto_kept(oldfd, newfd, 0);
  return sys_dup3(oldfd, newfd, 0);
}

VMRT_EXPORT VMRT_FORK_TEXT int dup3(int oldfd, int newfd, int flags) noexcept {
  if ((flags & ~O_CLOEXEC) != 0 || oldfd == newfd) {  // Linux checks these first
    errno = EINVAL;
    return -1;
  }
  if (vmrt::vm_fd_is_kept(oldfd)) {
    errno = EBADF;
    return -1;
  }
  if (vmrt::vm_fd_is_kept(newfd)) return dup_onto_kept(oldfd, newfd, flags);
  return sys_dup3(oldfd, newfd, flags);
}

namespace {

// fcntl of one of vmrt's descriptors: EBADF.  The rest is the system call, except what glibc
// does more than that for (F_GETOWN reads F_GETOWN_EX, so that a process group comes back
// negative; the waiting lock commands are cancellation points): glibc's, found lazily.  The
// system call also serves vmrt's own fcntl calls during boot, before dlsym may run.
// fcntl's argument is one word (an int or a pointer) or none; passed on as it came.
VMRT_FORK_TEXT int fcntl_common(int fd, int cmd, void* arg, fcntl_fn& next, const char* name) {
  if (vmrt::vm_fd_is_kept(fd)) {
    errno = EBADF;
    return -1;
  }
  if (cmd == F_GETOWN || cmd == F_SETLKW || cmd == F_OFD_SETLKW) return vmrt::shim::next_symbol(next, name)(fd, cmd, arg);
  return static_cast<int>(vmrt::sys::inline_syscall(SYS_fcntl, fd, cmd, reinterpret_cast<long>(arg)));
}

}  // namespace

VMRT_EXPORT VMRT_FORK_TEXT int fcntl(int fd, int cmd, ...) {
  va_list ap;
  va_start(ap, cmd);
  void* arg = va_arg(ap, void*);
  va_end(ap);
  return fcntl_common(fd, cmd, arg, g_next_fcntl, "fcntl");
}

VMRT_EXPORT VMRT_FORK_TEXT int fcntl64(int fd, int cmd, ...) {
  va_list ap;
  va_start(ap, cmd);
  void* arg = va_arg(ap, void*);
  va_end(ap);
  return fcntl_common(fd, cmd, arg, g_next_fcntl64, "fcntl64");
}

namespace {

// True when a stat at path relative to dirfd must fail as if dirfd were not open: dirfd is
// one of vmrt's and the path is resolved from it ("" with AT_EMPTY_PATH, or null, as
// Linux 6.11 takes, or a relative path; an absolute path ignores dirfd, and an empty one
// without AT_EMPTY_PATH is ENOENT whatever dirfd is).
bool stat_from_kept(int dirfd, const char* path, int flags) {
  if (dirfd == AT_FDCWD || !vmrt::vm_fd_is_kept(dirfd)) return false;
  if (path == nullptr) return true;
  if (path[0] == '/') return false;
  return path[0] != '\0' || (flags & AT_EMPTY_PATH) != 0;
}

int sys_fstatat(int dirfd, const char* path, struct stat* st, int flags) {
  return static_cast<int>(vmrt::sys::inline_syscall(SYS_newfstatat, dirfd, reinterpret_cast<long>(path),
                                                    reinterpret_cast<long>(st), flags));
}

}  // namespace

VMRT_EXPORT int fstat(int fd, struct stat* st) noexcept {
  if (vmrt::vm_fd_is_kept(fd)) {
    errno = EBADF;
    return -1;
  }
  return sys_fstatat(fd, "", st, AT_EMPTY_PATH);
}

// The same function (x86_64 and every other LP64 Linux: struct stat64 is struct stat).
VMRT_EXPORT int fstat64(int fd, struct stat64* st) noexcept { return fstat(fd, reinterpret_cast<struct stat*>(st)); }

VMRT_EXPORT int fstatat(int dirfd, const char* path, struct stat* st, int flags) noexcept {
  if (stat_from_kept(dirfd, path, flags)) {
    errno = EBADF;
    return -1;
  }
  return sys_fstatat(dirfd, path, st, flags);
}

VMRT_EXPORT int fstatat64(int dirfd, const char* path, struct stat64* st, int flags) noexcept {
  return fstatat(dirfd, path, reinterpret_cast<struct stat*>(st), flags);
}

VMRT_EXPORT int statx(int dirfd, const char* path, int flags, unsigned mask, struct statx* stx) noexcept {
  if (stat_from_kept(dirfd, path, flags)) {
    errno = EBADF;
    return -1;
  }
  return static_cast<int>(vmrt::sys::inline_syscall(SYS_statx, dirfd, reinterpret_cast<long>(path), flags,
                                                    static_cast<long>(mask), reinterpret_cast<long>(stx)));
}
