// shim_mlock.cpp — mlockall/munlockall, interposed: the host's would lock (and populate)
// vmrt's own reserved tables and the direct map of physical memory; vmrt locks the
// program's memory only (runtime/rt_mlockall.h).
#include <cerrno>

#include "runtime/rt_mlockall.h"

#define VMRT_EXPORT extern "C" __attribute__((visibility("default")))

VMRT_EXPORT int mlockall(int flags) {
  int err = 0;
  int r = vmrt::rt::mlockall_emulated(flags, &err);
  if (r != 0) errno = err;
  return r;
}

VMRT_EXPORT int munlockall() {
  int err = 0;
  int r = vmrt::rt::munlockall_emulated(&err);
  if (r != 0) errno = err;
  return r;
}
