// shim_signal.cpp — sigaction(2) and the signal(3) family, interposed so that a
// program that handles SIGSEGV/SIGBUS itself never replaces vmrt's trap handler.
//
// vmrt installs its SIGSEGV/SIGBUS handler only when the trap backend starts (the
// first vmspace with demand-paged memory; a program that only mallocs never gets
// one: kmem memory is wired).  From then on a program's sigaction(SIGSEGV/SIGBUS)
// is recorded as the handler vmrt chains to (faults outside vmrt's region, traps
// nobody else took) and is reported back as the old action by later calls, so the
// program sees exactly what it installed.  Everything else — other signals, and
// SIGSEGV/SIGBUS before the backend starts — is glibc's own sigaction
// (`__sigaction`, which never allocates).  All of it is vmrt::rt::trap_sigaction.
//
//   signal / bsd_signal   BSD semantics, as glibc: sa_mask = {sig}, SA_RESTART
//   sysv_signal           SA_RESETHAND | SA_NODEFER, empty mask
//   invalid sig or handler SIG_ERR: SIG_ERR + EINVAL (sigaction: -1 + EINVAL)
// Not covered: raw rt_sigaction system calls (Go's runtime); sigset/sigvec (legacy).
#include <cerrno>
#include <csignal>

#include "libc_shim/shim_counters.h"
#include "runtime/trap.h"
#include "vm/vm_types.h"

#define VMRT_EXPORT extern "C" __attribute__((visibility("default")))

namespace {

using handler_t = void (*)(int);

// Install `h` for sig with the given flags (mask: sig itself unless SA_NODEFER);
// return the previous handler, or SIG_ERR + errno.
// In the fork path's text section, as sigaction below: shells set signals in every child.
VMRT_FORK_TEXT handler_t install(int sig, handler_t h, int flags) {
  if (h == SIG_ERR || sig < 1 || sig >= NSIG) {
    errno = EINVAL;
    return SIG_ERR;
  }
  struct sigaction sa{}, old{};
  sa.sa_handler = h;
  sigemptyset(&sa.sa_mask);
  if ((flags & SA_NODEFER) == 0 && sigaddset(&sa.sa_mask, sig) != 0) return SIG_ERR;
  sa.sa_flags = flags;
  if (vmrt::rt::trap_sigaction(sig, &sa, &old) != 0) return SIG_ERR;
  return old.sa_handler;
}

}  // namespace

VMRT_EXPORT VMRT_FORK_TEXT int sigaction(int sig, const struct sigaction* act, struct sigaction* old) noexcept {
  if (sig == SIGSEGV || sig == SIGBUS) vmrt::shim::count(vmrt::shim::C_SIGACTION_FAULT_SIGNALS);
  return vmrt::rt::trap_sigaction(sig, act, old);
}

VMRT_EXPORT VMRT_FORK_TEXT handler_t signal(int sig, handler_t h) noexcept { return install(sig, h, SA_RESTART); }
VMRT_EXPORT handler_t bsd_signal(int sig, handler_t h) noexcept { return install(sig, h, SA_RESTART); }
VMRT_EXPORT handler_t sysv_signal(int sig, handler_t h) noexcept { return install(sig, h, SA_RESETHAND | SA_NODEFER); }
VMRT_EXPORT handler_t __sysv_signal(int sig, handler_t h) noexcept { return install(sig, h, SA_RESETHAND | SA_NODEFER); }
