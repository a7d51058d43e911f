// rt_signal.cpp — program signal handlers behind the owing trampoline (see rt_signal.h).
#include "runtime/rt_signal.h"

#include <atomic>
#include <cstdint>
#include <pthread.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "runtime/spinlock.h"
#include "vm/vm_critical.h"
#include "vm/vm_sys.h"
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
// the trampoline.  24 bytes a signal: the table, its lock and its seqcount live in the page
// the fork handlers write anyway (VMRT_FORK_DATA), so a shell that sets its handlers in
// every subshell, and again in the parent after each fork, takes no fault for it (it was
// one in each: perf record -e page-faults -d of bash's command substitutions).
struct program_action {
  std::atomic<std::uintptr_t> handler{0};
  std::atomic<int> flags{0};
  std::atomic<std::uint64_t> mask{0};  // sa_mask, one bit per signal (sig - 1); written under g_lock
};
static_assert(sizeof(program_action) <= 24, "the table stays within a page");
VMRT_FORK_DATA program_action g_actions[NSIG];
VMRT_FORK_DATA spinlock g_lock;
// A seqcount over g_actions: odd while a change (under g_lock) is half made.  Readers that
// take no lock (queries, and a handler set again to what is recorded) read a whole record
// or fall back to the lock: a lock taken is a write, and in a fork child or a parent after
// fork every first write to the table's page is a copy-on-write fault.
VMRT_FORK_DATA std::atomic<std::uint32_t> g_seq{0};
// The process whose table this is: set at load and by every (atfork) fork child; a vfork
// child has another pid and the same memory.
VMRT_FORK_DATA pid_t g_tables_pid;
// The system call itself, not libc's getpid: its text page was one more page a process
// touched at load that a native run need not (an exec'd process pays for each).
__attribute__((constructor)) void tables_owner_at_load() {
  g_tables_pid = static_cast<pid_t>(sys::inline_syscall(SYS_getpid));
}

// Signals whose handlers are run directly by the kernel: vmrt's own (trap.cpp chains
// SIGSEGV/SIGBUS), the synchronous ones, the uncatchable ones, and glibc's internal ones
// (its sigaction refuses them).
VMRT_FORK_TEXT bool kernel_direct(int sig) {
  switch (sig) {
    case SIGSEGV: case SIGBUS: case SIGILL: case SIGFPE: case SIGTRAP: case SIGSYS:
    case SIGKILL: case SIGSTOP:
      return true;
    default:
      return sig < 1 || sig >= NSIG || (sig > SIGSYS && sig < SIGRTMIN);
  }
}

VMRT_FORK_TEXT bool is_function(const struct sigaction* a) {
  return a->sa_handler != SIG_DFL && a->sa_handler != SIG_IGN;
}

// The recorded action of sig as a struct sigaction [g_lock].
VMRT_FORK_TEXT struct sigaction recorded(int sig) {
  const program_action& p = g_actions[sig];
  struct sigaction a{};
  a.sa_handler = reinterpret_cast<void (*)(int)>(p.handler.load(std::memory_order_relaxed));
  a.sa_flags = p.flags.load(std::memory_order_relaxed);
  a.sa_mask = sigset_from_bits(p.mask.load(std::memory_order_relaxed));
  return a;
}

// The record of sig without the lock, into *out; false when a change was under way (the
// caller takes the lock instead).
VMRT_FORK_TEXT bool read_recorded(int sig, struct sigaction* out) {
  const std::uint32_t s = g_seq.load(std::memory_order_acquire);
  if ((s & 1) != 0) return false;
  *out = recorded(sig);
  std::atomic_thread_fence(std::memory_order_acquire);
  return g_seq.load(std::memory_order_relaxed) == s;
}

// Writers' halves of the seqcount [g_lock].
VMRT_FORK_TEXT void change_begin() {
  g_seq.store(g_seq.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  std::atomic_thread_fence(std::memory_order_release);
}
VMRT_FORK_TEXT void change_end() { g_seq.store(g_seq.load(std::memory_order_relaxed) + 1, std::memory_order_release); }

// SA_RESETHAND: the kernel's action becomes SIG_DFL before the handler runs.
void reset_to_default(int sig) {
  struct sigaction dfl{};
  dfl.sa_handler = SIG_DFL;
  __sigaction(sig, &dfl, nullptr);
}

VMRT_FORK_PARENT_TEXT void trampoline(int sig, siginfo_t* si, void* uc) {
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

VMRT_FORK_TEXT bool rt_signal_tables_ours() { return ::getpid() == g_tables_pid; }

VMRT_FORK_CHILD_TEXT void rt_signal_fork_child() {
  g_tables_pid = ::getpid();
  // Only the forking thread lives on: a change another thread had half made when the
  // process forked is abandoned (its lock and an odd seqcount would stop every later
  // sigaction in the child).
  g_lock.reset();
  if ((g_seq.load(std::memory_order_relaxed) & 1) != 0) g_seq.fetch_add(1, std::memory_order_relaxed);
}

VMRT_FORK_TEXT struct sigaction rt_signal_reported(const struct sigaction& kernel, void* ours, const struct sigaction& prog) {
  if (reinterpret_cast<void*>(kernel.sa_sigaction) != ours) return kernel;
  struct sigaction r = prog;
  r.sa_flags |= kernel.sa_flags & SA_RESTORER;
  r.sa_restorer = kernel.sa_restorer;
  return r;
}

namespace {

// Is act (a handler function) what the table records for sig already?  No lock (the
// seqcount); the record read goes to *rec.  A caller that acts on "yes" checks again after
// its kernel call.
VMRT_FORK_TEXT bool recorded_as(int sig, const struct sigaction* act, struct sigaction* rec) {
  return read_recorded(sig, rec) && rec->sa_handler == act->sa_handler && rec->sa_flags == act->sa_flags &&
         sigset_to_bits(rec->sa_mask) == sigset_to_bits(act->sa_mask);
}

// The kernel's action for a recorded handler function: the trampoline, with the program's
// mask and flags (SA_SIGINFO always, SA_RESETHAND done by the trampoline).  SIGSEGV and
// SIGBUS are never in the kernel's mask: a handler that touches vmrt memory not yet in
// (the heap under paging) takes faults vmrt serves as those signals, and Linux kills a
// thread that faults with them blocked.  The program's handlers commonly block everything
// (sigfillset); queries report the recorded mask, as installed (libc_shim/shim_signal.cpp
// does the same for pthread_sigmask).
VMRT_FORK_TEXT struct sigaction kernel_action(const struct sigaction* act) {
  struct sigaction k = *act;
  k.sa_sigaction = trampoline;
  k.sa_flags = (act->sa_flags | SA_SIGINFO) & ~SA_RESETHAND;
  rt_signal_faults_unblocked(&k.sa_mask);
  return k;
}

// The kernel's action alone, set or asked (no table write): *old reports the recorded
// handler where the kernel's answer is the trampoline.
VMRT_FORK_TEXT int kernel_only(int sig, const struct sigaction* act, struct sigaction* old) {
  void* const ours = reinterpret_cast<void*>(trampoline);
  struct sigaction kold{};
  int r = __sigaction(sig, act, &kold);
  if (r == 0 && old != nullptr) {
    if (kernel_direct(sig) || reinterpret_cast<void*>(kold.sa_sigaction) != ours) {
      *old = kold;
    } else {
      struct sigaction rec{};
      if (!read_recorded(sig, &rec)) {
        spin_guard g(g_lock);
        rec = recorded(sig);
      }
      *old = rt_signal_reported(kold, ours, rec);
    }
  }
  return r;
}

}  // namespace

VMRT_FORK_TEXT int rt_signal_action(int sig, const struct sigaction* act, struct sigaction* old) {
  void* const ours = reinterpret_cast<void*>(trampoline);
  // SIG_DFL, SIG_IGN and queries are the kernel's alone (no table write, no lock: a vfork
  // child resetting its handlers before exec never touches the parent's table).
  if (kernel_direct(sig) || act == nullptr || !is_function(act)) return kernel_only(sig, act, old);
  // The handler the table holds already (a shell sets its SIGINT/SIGCHLD handlers again in
  // every child and after every fork): only the kernel call, no table or lock write, which
  // were a copy-on-write fault in the parent and in the child of every fork.  Checked again
  // after the kernel call: a concurrent change in between goes the locked way below.  A
  // vfork child may take this way too (it writes nothing the parent reads), so the getpid
  // that tells one apart is asked only of a change (git and bash set the same handlers again
  // and again: a system call each).
  struct sigaction rec{};
  if (recorded_as(sig, act, &rec)) {
    const struct sigaction k = kernel_action(act);
    struct sigaction kold{};
    int r = __sigaction(sig, &k, &kold);
    if (r != 0) return r;
    if (recorded_as(sig, act, &rec)) {
      if (old != nullptr) *old = rt_signal_reported(kold, ours, rec);
      return 0;
    }
  }
  // A vfork child changing a handler: its own kernel action, never the parent's table.
  if (!rt_signal_tables_ours()) return kernel_only(sig, act, old);
  // A handler function: recorded first (a signal delivered to the trampoline at once finds
  // it), then the kernel is given the trampoline with the program's mask and flags.
  // g_lock is a critical section (vm_critical.h): a program handler that calls sigaction
  // cannot run on this thread while it is held; no signal needs blocking.
  spin_guard g(g_lock);
  program_action& p = g_actions[sig];
  const struct sigaction was = recorded(sig);
  change_begin();
  p.flags.store(act->sa_flags, std::memory_order_relaxed);
  p.handler.store(reinterpret_cast<std::uintptr_t>(act->sa_handler), std::memory_order_release);
  p.mask.store(sigset_to_bits(act->sa_mask), std::memory_order_relaxed);
  change_end();
  const struct sigaction k = kernel_action(act);
  struct sigaction kold{};
  int r = __sigaction(sig, &k, &kold);
  if (r != 0) {  // the kernel refused: the old record stands
    change_begin();
    p.flags.store(was.sa_flags, std::memory_order_relaxed);
    p.handler.store(reinterpret_cast<std::uintptr_t>(was.sa_handler), std::memory_order_release);
    p.mask.store(sigset_to_bits(was.sa_mask), std::memory_order_relaxed);
    change_end();
  } else if (old != nullptr) {
    *old = rt_signal_reported(kold, ours, was);
  }
  return r;
}

}  // namespace vmrt::rt
