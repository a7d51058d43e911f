// rt_signal.cpp — program signal handlers behind the owing trampoline (see rt_signal.h).
#include "runtime/rt_signal.h"

#include <atomic>
#include <cstdint>
#include <pthread.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "runtime/spinlock.h"
#include "vm/vm_critical.h"
#include "vm/vm_types.h"

// The kernel's flag for a user-space restorer (glibc sets it and reports it back; its
// public headers do not define it).
#ifndef SA_RESTORER
#define SA_RESTORER 0x04000000
#endif

extern "C" int __sigaction(int sig, const struct sigaction* act, struct sigaction* old);

namespace vmrt::rt {
namespace {

// The program's handler function for one signal, as the trampoline calls it and a query
// reports it (while the kernel holds the trampoline for that signal).  Only functions are
// recorded: SIG_DFL and SIG_IGN go to the kernel alone, and the kernel then no longer calls
// the trampoline.  24 bytes a signal, so the table is one page: a fork child's writes to it
// (a shell resets its handlers in every subshell) are one copy-on-write fault at most.
struct program_action {
  std::atomic<std::uintptr_t> handler{0};
  std::atomic<int> flags{0};
  std::uint64_t mask = 0;  // sa_mask, one bit per signal (sig - 1) [g_lock]
};
static_assert(sizeof(program_action) <= 24, "the table stays within a page");
program_action g_actions[NSIG];
spinlock g_lock;
// The process whose table this is: set at load and by every (atfork) fork child; a vfork
// child has another pid and the same memory.
VMRT_FORK_DATA pid_t g_tables_pid;
__attribute__((constructor)) void tables_owner_at_load() { g_tables_pid = ::getpid(); }

// Signals whose handlers are run directly by the kernel: vmrt's own (trap.cpp chains
// SIGSEGV/SIGBUS), the synchronous ones, the uncatchable ones, and glibc's internal ones
// (its sigaction refuses them).
bool kernel_direct(int sig) {
  switch (sig) {
    case SIGSEGV: case SIGBUS: case SIGILL: case SIGFPE: case SIGTRAP: case SIGSYS:
    case SIGKILL: case SIGSTOP:
      return true;
    default:
      return sig < 1 || sig >= NSIG || (sig > SIGSYS && sig < SIGRTMIN);
  }
}

bool is_function(const struct sigaction* a) {
  return a->sa_handler != SIG_DFL && a->sa_handler != SIG_IGN;
}

// The recorded action of sig as a struct sigaction [g_lock].
struct sigaction recorded(int sig) {
  const program_action& p = g_actions[sig];
  struct sigaction a{};
  a.sa_handler = reinterpret_cast<void (*)(int)>(p.handler.load(std::memory_order_relaxed));
  a.sa_flags = p.flags.load(std::memory_order_relaxed);
  a.sa_mask = sigset_from_bits(p.mask);
  return a;
}

// SA_RESETHAND: the kernel's action becomes SIG_DFL before the handler runs.
void reset_to_default(int sig) {
  struct sigaction dfl{};
  dfl.sa_handler = SIG_DFL;
  __sigaction(sig, &dfl, nullptr);
}

void trampoline(int sig, siginfo_t* si, void* uc) {
  if (critical_defer(sig, si, uc)) return;
  program_action& p = g_actions[sig];
  std::uintptr_t h = p.handler.load(std::memory_order_acquire);
  int flags = p.flags.load(std::memory_order_relaxed);
  // (Set to SIG_DFL/SIG_IGN since the kernel chose this handler: the last call of the old
  // one, as a signal delivered just before the change would be natively.)
  if ((flags & SA_RESETHAND) != 0) reset_to_default(sig);
  if ((flags & SA_SIGINFO) != 0)
    reinterpret_cast<void (*)(int, siginfo_t*, void*)>(h)(sig, si, uc);
  else
    reinterpret_cast<void (*)(int)>(h)(sig);
}

}  // namespace

bool rt_signal_tables_ours() { return ::getpid() == g_tables_pid; }

VMRT_FORK_TEXT void rt_signal_fork_child() { g_tables_pid = ::getpid(); }

struct sigaction rt_signal_reported(const struct sigaction& kernel, void* ours, const struct sigaction& prog) {
  if (reinterpret_cast<void*>(kernel.sa_sigaction) != ours) return kernel;
  struct sigaction r = prog;
  r.sa_flags |= kernel.sa_flags & SA_RESTORER;
  r.sa_restorer = kernel.sa_restorer;
  return r;
}

int rt_signal_action(int sig, const struct sigaction* act, struct sigaction* old) {
  void* const ours = reinterpret_cast<void*>(trampoline);
  // SIG_DFL, SIG_IGN and queries are the kernel's alone (no table write, no lock: a vfork
  // child resetting its handlers before exec never touches the parent's table).  A query
  // whose kernel answer is the trampoline reports the recorded handler.
  if (kernel_direct(sig) || act == nullptr || !is_function(act) || !rt_signal_tables_ours()) {
    struct sigaction kold{};
    int r = __sigaction(sig, act, &kold);
    if (r == 0 && old != nullptr) {
      if (kernel_direct(sig) || reinterpret_cast<void*>(kold.sa_sigaction) != ours) {
        *old = kold;
      } else {
        spin_guard g(g_lock);
        *old = rt_signal_reported(kold, ours, recorded(sig));
      }
    }
    return r;
  }
  // A handler function: recorded first (a signal delivered to the trampoline at once finds
  // it), then the kernel is given the trampoline with the program's mask and flags.
  // g_lock is a critical section (vm_critical.h): a program handler that calls sigaction
  // cannot run on this thread while it is held; no signal needs blocking.
  spin_guard g(g_lock);
  program_action& p = g_actions[sig];
  const struct sigaction was = recorded(sig);
  p.flags.store(act->sa_flags, std::memory_order_relaxed);
  p.handler.store(reinterpret_cast<std::uintptr_t>(act->sa_handler), std::memory_order_release);
  p.mask = sigset_to_bits(act->sa_mask);
  struct sigaction k = *act;
  k.sa_sigaction = trampoline;
  k.sa_flags = (act->sa_flags | SA_SIGINFO) & ~SA_RESETHAND;
  struct sigaction kold{};
  int r = __sigaction(sig, &k, &kold);
  if (r != 0) {  // the kernel refused: the old record stands
    p.flags.store(was.sa_flags, std::memory_order_relaxed);
    p.handler.store(reinterpret_cast<std::uintptr_t>(was.sa_handler), std::memory_order_release);
    p.mask = sigset_to_bits(was.sa_mask);
  } else if (old != nullptr) {
    *old = rt_signal_reported(kold, ours, was);
  }
  return r;
}

}  // namespace vmrt::rt
