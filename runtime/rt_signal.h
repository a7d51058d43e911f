// rt_signal.h — the program's asynchronous signal handlers, run through a trampoline that
// owes the signal while the thread holds a vmrt lock (vm/vm_critical.h).
//
// sigaction(2) for every signal but SIGSEGV/SIGBUS (trap.cpp chains those) and the
// synchronous ones (SIGILL, SIGFPE, SIGTRAP, SIGSYS: raised by the instruction, never
// inside vmrt) comes here through trap_sigaction.  A handler function is recorded and the
// kernel is given the trampoline with the program's mask and flags, so the kernel blocks
// what it would have blocked and restarts what it would have restarted; SA_RESETHAND is
// done by the trampoline (the kernel's reset would make an owed signal's second delivery
// the default action).  SIG_DFL and SIG_IGN go to the kernel as they are.  Queries report
// exactly what the program installed.
//  => async-signal-safe (a short spinlock, a critical section); never allocates.
#pragma once

#include <signal.h>

namespace vmrt::rt {

int rt_signal_action(int sig, const struct sigaction* act, struct sigaction* old);

// True when the caller may write vmrt's signal tables (this file's and trap.cpp's
// SIGSEGV/SIGBUS handlers): false in a vfork child (python's subprocess, posix_spawn), which
// shares the parent's memory but not its signal actions — the handlers it resets before exec
// must reach its own kernel actions only.  Such a child's calls go to the kernel as they
// are.  => async-signal-safe (getpid).
bool rt_signal_tables_ours();
// The queries' answer when the kernel holds vmrt's handler `ours`: the recorded program
// action `prog` with the kernel's restorer (what glibc would have reported); else `kernel`.
struct sigaction rt_signal_reported(const struct sigaction& kernel, void* ours, const struct sigaction& prog);
// Host fork child (atfork; not run for vfork): the tables are this process's own now.
void rt_signal_fork_child();

// Take SIGSEGV and SIGBUS out of a mask the kernel is to be given: vmrt serves faults on
// its memory as those signals, and Linux kills a thread that faults with them blocked.
// Program handlers' masks (kernel_action) and the program's own thread masks
// (libc_shim/shim_signal.cpp) go through here; both report the mask as the program set it.
inline void rt_signal_faults_unblocked(sigset_t* mask) {
  sigdelset(mask, SIGSEGV);
  sigdelset(mask, SIGBUS);
}

}  // namespace vmrt::rt
