// trap.h — the trap backends: how faults in the region reach vm_fault.
//
// SIGSEGV/SIGBUS handler (both backends), run in the faulting thread on a
// per-thread alternate signal stack: a fault in a vmspace window is resolved by
// vm_fault and the access retried; a refused access is a trap (recorded, counted,
// delivered to the trap hook, else to the program's previous handler with si_code
// SEGV_MAPERR/SEGV_ACCERR, else SIG_DFL and re-fault: the process dies the way the
// kernel would kill it).  Faults outside the region go to the previous handler.
//
// userfaultfd (VMRT_TRAP=userfaultfd, or auto when available): reservations are
// registered (MISSING); a handler thread reads page-fault events, calls vm_fault and
// wakes the faulting thread.  Kernel-mode accesses (read(2) into an untouched page)
// are served too.  The thread never calls malloc.  Protection faults still arrive
// as SIGSEGV.
#pragma once

#include <signal.h>

#include "runtime/boot.h"
#include "vm/vm_fault.h"
#include "vm/vm_types.h"

namespace vmrt::rt {

struct window;

// The function that resolves faults (vm_fault; unit tests of the machine layer may
// substitute a fake VM).
using fault_resolver = kern_return_t (*)(vmspace* vs, vaddr_t va, vm_fault_type type, vm_fault_result* res);
void trap_set_resolver(fault_resolver r);

// Install the handlers (and an alternate stack for the calling thread) and choose the
// backend: automatic = userfaultfd when it can be opened, else sigsegv (with a note on
// fd `note_fd` when >= 0).  Registers the uffd with the pmap.  Once, at boot; no malloc.
bool trap_init(trap_backend want, int note_fd);
trap_backend trap_active_backend();
const char* trap_backend_name();

// Start the userfaultfd handler thread (idempotent; pthread_create may call malloc, so
// call it once the allocator works).  True when running or not needed.
bool trap_start_thread();

// Give the calling thread an alternate signal stack (idempotent).  Threads that never
// call it get one lazily on their first fault in the region.
void trap_thread_attach();

// A refused access.
enum trap_reason : int { TRAP_NO_ENTRY = 1, TRAP_PROTECTION = 2, TRAP_RESOURCE = 3 };
struct trap_info {
  vaddr_t addr;
  int access;  // PROT_READ / PROT_WRITE / PROT_EXEC
  trap_reason reason;
  window* win;  // the window holding addr (null: region address outside any window)
};
using trap_hook = void (*)(const trap_info* t, void* arg);
// Set the process-wide hook (called in the faulting thread, in signal context; it may
// siglongjmp).  Returns the previous hook; *old_arg receives its argument.
trap_hook trap_set_hook(trap_hook h, void* arg, void** old_arg);
// The last trap recorded (tests).
trap_info trap_last();

// The program's own handler for SIGSEGV/SIGBUS, called for faults vmrt does not own
// (sigaction(2) semantics for those two signals: vmrt's handler stays installed).
// Whoever interposes sigaction() (the shim, test programs) routes SIGSEGV/SIGBUS here
// once the runtime is up; vmrt itself installs through glibc's __sigaction.
int trap_sigaction(int sig, const struct sigaction* act, struct sigaction* old);

// Host fork.  prepare: before fork; parent/child after.  The child recreates the
// userfaultfd, re-registers every reservation and restarts the handler thread.
void trap_fork_child();

}  // namespace vmrt::rt
