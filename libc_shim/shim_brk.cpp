// shim_brk.cpp — brk/sbrk, interposed: the data segment is vmrt's once vmrt has booted
// (runtime/rt_brk.h); a process whose first call came earlier keeps the host's break.
//
// The wrappers are glibc's (misc/brk.c, misc/sbrk.c): brk() fails with ENOMEM only when
// the break ends below what was asked (so a refused shrink reports success with the break
// unchanged, as natively), and sbrk() checks its increment for wrap-around first.
#include <cerrno>
#include <cstdint>
#include <sys/syscall.h>
#include <unistd.h>

#include "runtime/rt_brk.h"

#define VMRT_EXPORT extern "C" __attribute__((visibility("default")))

namespace {

using vmrt::vaddr_t;
using vmrt::rt::brk_owner;

// The kernel's brk: the break after the call.
vaddr_t sys_brk(vaddr_t want) {
  if (vmrt::rt::brk_decide() == brk_owner::vmrt) return vmrt::rt::brk_move(want);
  return static_cast<vaddr_t>(::syscall(SYS_brk, want));
}

int do_brk(void* addr) {
  vaddr_t want = reinterpret_cast<vaddr_t>(addr);
  if (sys_brk(want) < want) {
    errno = ENOMEM;
    return -1;
  }
  return 0;
}

void* do_sbrk(intptr_t increment) {
  vaddr_t old = sys_brk(0);
  if (increment == 0) return reinterpret_cast<void*>(old);
  bool wraps = increment > 0 ? old + static_cast<vaddr_t>(increment) < old : old < static_cast<vaddr_t>(-increment);
  if (wraps) {
    errno = ENOMEM;
    return reinterpret_cast<void*>(-1);
  }
  if (do_brk(reinterpret_cast<void*>(old + static_cast<vaddr_t>(increment))) != 0) return reinterpret_cast<void*>(-1);
  return reinterpret_cast<void*>(old);
}

}  // namespace

VMRT_EXPORT int brk(void* addr) { return do_brk(addr); }
VMRT_EXPORT void* sbrk(intptr_t increment) { return do_sbrk(increment); }
VMRT_EXPORT void* __sbrk(intptr_t increment) { return do_sbrk(increment); }
