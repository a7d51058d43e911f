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
//
// Masks (pthread_sigmask, sigprocmask).  Once vmrt's handler is installed, a fault on vmrt
// memory (a page not yet in, paged out, write-protected) is a SIGSEGV or SIGBUS that vmrt
// serves and the program never sees; Linux kills a thread that takes a fault with the
// signal blocked, before any handler.  Libraries block every signal in threads that are not
// meant to take them: liblzma's encoder threads (xz -T2) inherit a full mask from
// pthread_create, and xz died at its first thread under `--physmem 64M --trap sigsegv`.  So
// these two never block SIGSEGV or SIGBUS for real while vmrt's handler is installed: the
// program's wish is kept per thread and reported back in the old mask, as if blocked.  What
// differs: a SIGSEGV/SIGBUS sent with kill(2) while "blocked" is delivered at once (to the
// program's handler, or its default action) instead of pending.  A new thread inherits its
// creator's view (shim_thread.cpp).
#include <cerrno>
#include <csignal>

#include "libc_shim/shim_counters.h"
#include "libc_shim/shim_next.h"
#include "libc_shim/shim_signal.h"
#include "runtime/rt_signal.h"
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

using mask_fn = int (*)(int, const sigset_t*, sigset_t*);
// glibc's definitions; on the fork data page (a shell's child sets its mask).
VMRT_FORK_DATA mask_fn g_pthread_sigmask;
VMRT_FORK_DATA mask_fn g_sigprocmask;

// The fault signals this thread's program code has blocked, as the program sees its mask
// (bit 0 SIGSEGV, bit 1 SIGBUS).
thread_local __attribute__((tls_model("initial-exec"))) unsigned t_faults_blocked;
constexpr unsigned kSegvBit = 1, kBusBit = 2;

VMRT_FORK_TEXT unsigned fault_bits(const sigset_t* set) {
  return (sigismember(set, SIGSEGV) == 1 ? kSegvBit : 0) | (sigismember(set, SIGBUS) == 1 ? kBusBit : 0);
}

// A mask change through `real` (glibc's pthread_sigmask or sigprocmask): SIGSEGV and SIGBUS
// are taken out of the set while vmrt's handler is installed, and put back into the old
// mask where the program had blocked them.  Returns what real returns.
VMRT_FORK_TEXT int change_mask(mask_fn real, int how, const sigset_t* set, sigset_t* old) {
  if (!vmrt::rt::trap_started()) return real(how, set, old);
  unsigned before = t_faults_blocked, after = before;
  sigset_t without;
  const sigset_t* pass = set;
  if (set != nullptr && (how == SIG_BLOCK || how == SIG_UNBLOCK || how == SIG_SETMASK)) {
    unsigned bits = fault_bits(set);
    after = how == SIG_BLOCK ? before | bits : how == SIG_UNBLOCK ? before & ~bits : bits;
    without = *set;
    vmrt::rt::rt_signal_faults_unblocked(&without);
    pass = &without;
  }
  int r = real(how, pass, old);
  if (r != 0) return r;  // an invalid `how`: nothing changed
  if (old != nullptr) {
    if ((before & kSegvBit) != 0) sigaddset(old, SIGSEGV);
    if ((before & kBusBit) != 0) sigaddset(old, SIGBUS);
  }
  t_faults_blocked = after;
  return 0;
}

__attribute__((constructor)) void resolve_masks() {
  (void)vmrt::shim::next_symbol(g_pthread_sigmask, "pthread_sigmask");
  (void)vmrt::shim::next_symbol(g_sigprocmask, "sigprocmask");
}

}  // namespace

unsigned vmrt::shim::faults_blocked() { return t_faults_blocked; }
void vmrt::shim::set_faults_blocked(unsigned bits) { t_faults_blocked = bits; }

VMRT_EXPORT VMRT_FORK_TEXT int pthread_sigmask(int how, const sigset_t* set, sigset_t* old) noexcept {
  return change_mask(vmrt::shim::next_symbol(g_pthread_sigmask, "pthread_sigmask"), how, set, old);
}

VMRT_EXPORT VMRT_FORK_TEXT int sigprocmask(int how, const sigset_t* set, sigset_t* old) noexcept {
  return change_mask(vmrt::shim::next_symbol(g_sigprocmask, "sigprocmask"), how, set, old);
}

VMRT_EXPORT VMRT_FORK_TEXT int sigaction(int sig, const struct sigaction* act, struct sigaction* old) noexcept {
  if (sig == SIGSEGV || sig == SIGBUS) vmrt::shim::count(vmrt::shim::C_SIGACTION_FAULT_SIGNALS);
  return vmrt::rt::trap_sigaction(sig, act, old);
}

VMRT_EXPORT VMRT_FORK_TEXT handler_t signal(int sig, handler_t h) noexcept { return install(sig, h, SA_RESTART); }
VMRT_EXPORT handler_t bsd_signal(int sig, handler_t h) noexcept { return install(sig, h, SA_RESTART); }
VMRT_EXPORT handler_t sysv_signal(int sig, handler_t h) noexcept { return install(sig, h, SA_RESETHAND | SA_NODEFER); }
VMRT_EXPORT handler_t __sysv_signal(int sig, handler_t h) noexcept { return install(sig, h, SA_RESETHAND | SA_NODEFER); }
