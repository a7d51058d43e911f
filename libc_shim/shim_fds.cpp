// shim_fds.cpp — the program's close family leaves vmrt's descriptors open (vm/vm_fds.h).
//
// vmrt's swap devices and userfaultfd live in the program's descriptor table, at its top.
// A program that closes a descriptor it does not know of (a daemon closing everything above
// 2, a shell tidying up) would pull them from under the VM: the next pageout or fault fails
// or waits forever.  So, as if they were not in the table: close() of one fails with EBADF
// (what closing a descriptor that is not open gives), close_range() and closefrom() close
// everything else in their range.  A dup2()/dup3() onto one of them still replaces it (the
// README's known limits); they sit at the top of the table, where programs' own numbering
// rarely goes.
#include <cerrno>
#include <climits>
#include <sys/syscall.h>
#include <unistd.h>

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
