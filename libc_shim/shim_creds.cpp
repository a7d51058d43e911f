// shim_creds.cpp — setgroups holds the program's group list while every thread reads it.
//
// glibc makes every thread of the process repeat a set*id call (its SIGSETXID handler,
// which runtime/rt_creds.h relays on vmrt's machine threads), and setgroups' list is read
// by each thread's own system call: the other threads' first, the caller's last.  A list in
// vmrt memory that is not mapped at that moment (paged out, or not yet faulted in by a fork
// child) faulted in the machine threads' calls, and with every userfaultfd handler thread
// and the pageout daemon inside the same call nothing could serve the fault: the process
// hung (Python's test_subprocess, a child's extra_groups, under `vmrun --physmem`; scenario
// setxid_threads, "setgroups").  So the list is held first (runtime/rt_vslock.h: faulted in
// and wired, on the calling thread, while the handlers are free) and released when glibc's
// call returns.  A list outside the region, or in host memory inside it, needs no hold.
//
// Left as it is: initgroups, whose list glibc allocates and fills itself right before its
// internal setgroups (the pages were just written: mapped), and raw system calls.
#include <cerrno>
#include <climits>
#include <cstdint>
#include <grp.h>
#include <sys/types.h>

#include "libc_shim/shim_next.h"
#include "runtime/rt_vslock.h"

#define VMRT_EXPORT extern "C" __attribute__((visibility("default")))

namespace {

using setgroups_fn = int (*)(size_t, const gid_t*);
setgroups_fn g_next_setgroups;  // glibc's (shim_next.h)

// Linux's NGROUPS_MAX: a longer list is EINVAL before the kernel reads it.
constexpr size_t kMaxGroups = 65536;

}  // namespace

// => may sleep (the hold's page-ins).  The result and errno are glibc's, except for a list
// in the region that cannot be held (no memory there, or not readable): EFAULT, which the
// kernel gives for it, without the call (every machine thread would wait in it for a fault
// nobody serves).
VMRT_EXPORT int setgroups(size_t n, const gid_t* list) noexcept {
  setgroups_fn next = vmrt::shim::next_symbol(g_next_setgroups, "setgroups");
  const size_t bytes = n * sizeof(gid_t);
  if (n == 0 || n > kMaxGroups || !vmrt::rt::vslock_in_region(list, bytes)) return next(n, list);
  vmrt::rt::vslock_hold h;
  vmrt::rt::vslock_begin(&h);
  if (vmrt::rt::vslock(&h, list, bytes, vmrt::VM_PROT_READ) != bytes) {
    vmrt::rt::vsunlock(&h);
    errno = EFAULT;
    return -1;
  }
  // Held pages are the VM's and stay, but a fork child's host page tables may not map them
  // yet (the child maps its own copy of physmem, and its first access to each page faults
  // to a handler thread): each page of the list is read here, where a handler is free.
  const uintptr_t lo = reinterpret_cast<uintptr_t>(list), hi = lo + bytes;
  for (uintptr_t a = lo; a < hi; a = (a | (vmrt::PAGE_SIZE - 1)) + 1) (void)*reinterpret_cast<const volatile char*>(a);
  int r = next(n, list);
  vmrt::rt::vsunlock(&h);  // keeps errno
  return r;
}
