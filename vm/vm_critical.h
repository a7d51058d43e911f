// vm_critical.h — critical sections: a thread that holds a vmrt lock runs no program
// signal handler until it lets go of the last one.
//
// A program's asynchronous signal handler may run on any thread at any instruction,
// including inside vmrt (bash's SIGCHLD handler interrupting a malloc that grows the heap
// under the VM lock).  If that handler touches a page that is not resident, the fault
// needs the locks the interrupted code holds: under userfaultfd the handler thread waits
// for them forever, under sigsegv traps the thread takes its own lock again.  Natively the
// handler would only have waited for a page-in.  So, as FreeBSD's critical_enter() defers
// preemption and critical_exit() performs the one owed (McKusick et al., The Design and
// Implementation of the FreeBSD Operating System, "Thread scheduling"), a signal that
// arrives for a program handler while the thread is inside a critical section is owed:
// it is blocked in the interrupted context, queued again to the same thread with its
// siginfo, and delivered by the kernel, unchanged, when the depth returns to 0.
//
// The three lock types vmrt's fault paths take (the VM lock, kmem_lock, rt::spinlock)
// enter and exit a critical section; the program's handlers reach the kernel through a
// trampoline that asks critical_defer() first (runtime/rt_signal).
//
// The one difference from a native run: an owed process-directed signal waits for this
// thread to let go of the lock rather than going to another thread.
#pragma once

#include <atomic>
#include <csignal>
#include <cstdint>

namespace vmrt {

struct critical_state {
  unsigned depth;       // vmrt locks this thread holds
  std::uint64_t owed;   // bit sig-1: signals blocked here until depth returns to 0
};
extern constinit thread_local __attribute__((tls_model("initial-exec"))) critical_state t_critical;

// Unblock the owed signals (the kernel delivers them as the call returns).
//  => depth is 0; async-signal-safe.
void critical_settle();

// The signal fences keep the compiler from moving the depth across the lock's own atomics
// (an acquire lets an earlier store sink below it, a release lets a later one rise above
// it) and from reading `owed` before the depth is 0: either would leave a window where a
// handler runs with the lock held, or an owed signal stays blocked.
inline void critical_enter() {
  ++t_critical.depth;
  std::atomic_signal_fence(std::memory_order_seq_cst);
}
inline void critical_exit() {
  std::atomic_signal_fence(std::memory_order_seq_cst);
  if (--t_critical.depth != 0) return;
  std::atomic_signal_fence(std::memory_order_seq_cst);
  if (t_critical.owed != 0) critical_settle();
}

// Called first by the program-handler trampoline for signal `sig` (siginfo `si`, the
// handler's `uc`).  Inside a critical section: blocks sig in the interrupted context,
// queues it again to this thread and returns true (the trampoline returns at once).
// Outside: false (the trampoline calls the program's handler).
//  => signal context; async-signal-safe.
bool critical_defer(int sig, const siginfo_t* si, void* uc);

// A set of signals as one bit per signal (bit sig-1; the kernel has 64), and back: how
// owed signals and rt_signal's recorded masks are kept.  => async-signal-safe.
std::uint64_t sigset_to_bits(const sigset_t& set);
sigset_t sigset_from_bits(std::uint64_t bits);

// Host fork child, last of the atfork child work: the forking thread holds no lock any
// more (each was reset, not released) and the parent's owed signals are not the child's
// (fork(2) clears pending signals); their blocked bits are lifted.
void critical_fork_child();

}  // namespace vmrt
