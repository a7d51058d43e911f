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
//  => async-signal-safe (a short spinlock taken with all signals blocked); never allocates.
#pragma once

#include <signal.h>

namespace vmrt::rt {

int rt_signal_action(int sig, const struct sigaction* act, struct sigaction* old);

}  // namespace vmrt::rt
