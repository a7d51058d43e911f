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

// The program's action for one signal.  handler/flags are what the trampoline reads
// (lock-free); act is what a query reports while the kernel holds the trampoline [g_lock].
struct program_action {
  std::atomic<std::uintptr_t> handler{0};
  std::atomic<int> flags{0};
  struct sigaction act{};
};
program_action g_actions[NSIG];
spinlock g_lock;
// The process whose tables these are: set at load and by every (atfork) fork child; a vfork
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

// Queue sig to this thread again with its siginfo.
void requeue(int sig, const siginfo_t* si) {
  siginfo_t copy = *si;
  ::syscall(SYS_rt_tgsigqueueinfo, ::getpid(), ::gettid(), sig, &copy);
}

// The program's action becomes SIG_DFL (SA_RESETHAND), in the kernel first.
void reset_to_default(int sig) {
  struct sigaction dfl{};
  dfl.sa_handler = SIG_DFL;
  if (::getpid() != g_tables_pid) {  // a vfork child's: its own action only
    __sigaction(sig, &dfl, nullptr);
    return;
  }
  spin_guard g(g_lock);
  __sigaction(sig, &dfl, nullptr);
  program_action& p = g_actions[sig];
  p.act = dfl;
  p.handler.store(reinterpret_cast<std::uintptr_t>(SIG_DFL), std::memory_order_release);
}

void trampoline(int sig, siginfo_t* si, void* uc) {
  if (critical_defer(sig, si, uc)) return;
  program_action& p = g_actions[sig];
  std::uintptr_t h = p.handler.load(std::memory_order_acquire);
  int flags = p.flags.load(std::memory_order_relaxed);
  if (h == reinterpret_cast<std::uintptr_t>(SIG_IGN)) return;
  if (h == reinterpret_cast<std::uintptr_t>(SIG_DFL)) {
    // Set to SIG_DFL between the kernel's delivery and here: the default action, after return.
    reset_to_default(sig);
    requeue(sig, si);
    return;
  }
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
  if (kernel_direct(sig) || !rt_signal_tables_ours()) {
    // A vfork child's own actions: the kernel's only (a query still reports the program's
    // handler where the kernel holds the trampoline it inherited).
    struct sigaction kold{};
    int r = __sigaction(sig, act, &kold);
    if (r == 0 && old != nullptr)
      *old = kernel_direct(sig) ? kold : rt_signal_reported(kold, reinterpret_cast<void*>(trampoline), g_actions[sig].act);
    return r;
  }
  spin_guard_nosig g(g_lock);  // a handler of this thread never finds it held
  program_action& p = g_actions[sig];
  const struct sigaction was = p.act;
  struct sigaction kold{};
  int r;
  if (act != nullptr && is_function(act)) {
    struct sigaction k = *act;
    k.sa_sigaction = trampoline;
    k.sa_flags = (act->sa_flags | SA_SIGINFO) & ~SA_RESETHAND;
    // The table first: a signal delivered to the trampoline at once finds its handler.
    p.flags.store(act->sa_flags, std::memory_order_relaxed);
    p.handler.store(reinterpret_cast<std::uintptr_t>(act->sa_handler), std::memory_order_release);
    r = __sigaction(sig, &k, &kold);
    if (r == 0) {
      p.act = *act;
    } else {  // the kernel refused: keep the old state
      p.flags.store(was.sa_flags, std::memory_order_relaxed);
      p.handler.store(reinterpret_cast<std::uintptr_t>(was.sa_handler), std::memory_order_release);
    }
  } else {
    // SIG_DFL / SIG_IGN: the kernel first, then the table; or a query.
    r = __sigaction(sig, act, &kold);
    if (r == 0 && act != nullptr) {
      p.act = *act;
      p.handler.store(reinterpret_cast<std::uintptr_t>(act->sa_handler), std::memory_order_release);
    }
  }
  if (r == 0 && old != nullptr) *old = rt_signal_reported(kold, reinterpret_cast<void*>(trampoline), was);
  return r;
}

}  // namespace vmrt::rt
