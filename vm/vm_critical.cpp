// vm_critical.cpp — owed signals (see vm_critical.h).
#include "vm/vm_critical.h"

#include <pthread.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

#include "vm/vm_fork_store.h"
#include "vm/vm_stats.h"
#include "vm/vm_types.h"

namespace vmrt {

constinit thread_local __attribute__((tls_model("initial-exec"))) critical_state t_critical{0, 0};

namespace {

constexpr int kMaxSig = 64;  // the kernel's _NSIG: owed is one bit per signal
static_assert(NSIG - 1 <= kMaxSig, "owed holds one bit per signal");

}  // namespace

// Both in the fork text: the signal table (runtime/rt_signal) converts with them in the
// sigaction calls a shell makes in every child.  glibc's sigset_t keeps signal s in bit
// s - 1 of its first word (__sigmask), so the first 64 signals are that word: the
// conversions are a copy, not 64 calls of sigismember or sigaddset each (a shell child's
// dozen sigaction calls spent ~10 us in those loops).  As sigaddset would, from_bits leaves
// out glibc's two internal signals (SIGCANCEL, SIGSETXID: 32 and 33), which no program can
// add; sigismember reports every bit, and so does to_bits.  vm_critical_test pins both
// against the libc calls.
static_assert(sizeof(sigset_t) >= sizeof(std::uint64_t));
constexpr std::uint64_t kInternalSignals = (std::uint64_t{1} << (32 - 1)) | (std::uint64_t{1} << (33 - 1));

VMRT_FORK_TEXT std::uint64_t sigset_to_bits(const sigset_t& set) {
  std::uint64_t bits;
  __builtin_memcpy(&bits, &set, sizeof bits);
  return bits;
}

VMRT_FORK_TEXT sigset_t sigset_from_bits(std::uint64_t bits) {
  sigset_t s;
  __builtin_memset(&s, 0, sizeof s);
  bits &= ~kInternalSignals;
  __builtin_memcpy(&s, &bits, sizeof bits);
  return s;
}

void critical_settle() {
  sigset_t s = sigset_from_bits(t_critical.owed);
  t_critical.owed = 0;
  pthread_sigmask(SIG_UNBLOCK, &s, nullptr);
}

bool critical_defer(int sig, const siginfo_t* si, void* uc) {
  if (t_critical.depth == 0 || sig < 1 || sig > kMaxSig) return false;
  // Blocked now (the handler may run with SA_NODEFER) and after the handler returns (the
  // kernel restores uc_sigmask), then queued again: it waits in the kernel, siginfo and all.
  sigset_t one;
  sigemptyset(&one);
  sigaddset(&one, sig);
  pthread_sigmask(SIG_BLOCK, &one, nullptr);
  sigaddset(&static_cast<ucontext_t*>(uc)->uc_sigmask, sig);
  siginfo_t copy = *si;
  ::syscall(SYS_rt_tgsigqueueinfo, ::getpid(), ::gettid(), sig, &copy);
  t_critical.owed |= std::uint64_t{1} << (sig - 1);
  vm_stat_inc(V_SIGNALS_DEFERRED);
  return true;
}

VMRT_FORK_CHILD_TEXT void critical_fork_child() {
  fork_store(t_critical.depth, 0);
  if (t_critical.owed != 0) critical_settle();  // nothing pending in a new process
}

}  // namespace vmrt
