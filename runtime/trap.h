// trap.h — the trap backends: how faults in the region reach vm_fault.
//
// SIGSEGV/SIGBUS handler (both backends), run in the faulting thread on a
// per-thread alternate signal stack: a fault in a vmspace window is resolved by
// vm_fault and the access retried; a refused access is a trap (recorded, counted,
// delivered to the trap hook, else to the program's previous handler with si_code
// SEGV_MAPERR/SEGV_ACCERR, else SIG_DFL and re-fault: the process dies the way the
// kernel would kill it).  A fault refused for want of memory (TRAP_RESOURCE: no frame,
// or the host could not back one) is SIGBUS with BUS_ADRERR and si_addr = the faulting
// address, under either backend, as Linux delivers when it cannot supply a page of a
// mapping; with SIGBUS at SIG_DFL (or SIG_IGN) the process dies of SIGBUS.  Faults outside the region go to the previous handler.
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

// Start the trap backend: the first time a vmspace with demand-paged memory is
// created (the API's vmrt_init / vmrt_vmspace_create), never at boot — the kernel's
// kmem submap is wired and always mapped, so a program that only mallocs needs no
// handler and no thread.  Chooses the backend (automatic = userfaultfd when it can
// be opened, else sigsegv, with a note on `note_fd` when >= 0), registers the uffd
// with the pmap (under the VM lock: every later reservation is registered), installs
// the SIGSEGV/SIGBUS handlers (whatever the program had installed until then becomes
// the chained handler) and starts the userfaultfd handler thread.
//  => idempotent and thread-safe (one thread starts, others wait); true when started.
//  => may call malloc (pthread_create): only once the allocator works; never from a
//     signal handler; the caller holds neither the VM lock nor a kmem lock.
bool trap_start(trap_backend want, int note_fd);
// Userfaultfd handler threads to start (default 1; paging sets more, so a fault that waits
// for a page-in does not hold up the others).  Before trap_start(); a fork child starts
// the same number.
void trap_set_uffd_threads(unsigned n);
// True once trap_start() succeeded (lock-free).
bool trap_started();
// The backend in use; trap_backend_name() is "none" before trap_start().
trap_backend trap_active_backend();
const char* trap_backend_name();

// Give the calling thread an alternate signal stack (idempotent).  Threads that never
// call it get one lazily on their first fault in the region.
void trap_thread_attach();

// A refused access.
// TRAP_MEMORY_ERROR: the page's contents could not be brought back (swap checksum mismatch,
// I/O error): SIGBUS with BUS_MCEERR_AR, as Linux reports memory it found corrupt, and a
// message naming the page.
enum trap_reason : int { TRAP_NO_ENTRY = 1, TRAP_PROTECTION = 2, TRAP_RESOURCE = 3, TRAP_MEMORY_ERROR = 4 };
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
// Whoever interposes sigaction() (the shim, test programs) routes every call here;
// vmrt itself installs through glibc's __sigaction.  Before trap_start(), and for
// every other signal, it is plain sigaction(2): the kernel holds the program's
// handler and trap_start() picks it up.  The chained handler gets sigaction-like
// delivery: its sa_mask (and the signal, unless SA_NODEFER) is blocked while it
// runs, and SA_RESETHAND resets it to SIG_DFL first.
//  => async-signal-safe (a short spinlock taken with all signals blocked).
int trap_sigaction(int sig, const struct sigaction* act, struct sigaction* old);

// Host fork (runtime_fork_*): prepare holds the start lock across fork() so the child
// never sees a half-started backend.  The child (if started) recreates the
// userfaultfd, re-registers every reservation and restarts the handler thread.
void trap_fork_prepare();
void trap_fork_parent();
void trap_fork_child();

// What a thread of this process is doing, by the kernel's account (/proc/self/task/<tid>):
// asleep in a userfaultfd fault, elsewhere (running, or asleep somewhere else), or unknown
// (the host hides wchan and the thread sleeps inside a system call, where a kernel-mode
// fault and a plain wait look alike).  `syscall_line` receives its /proc syscall line.
//  => may sleep briefly (reads /proc); never mallocs.
enum class thread_wait { in_userfault, elsewhere, unknown };
thread_wait trap_thread_waiting(pid_t tid, char* syscall_line, std::size_t size);

// The userfaultfd handler's check of an event at `page` from thread `tid`, before it
// serves the event: when tid holds the VM lock, returns once the holder lets go or turns
// out not to be waiting for this fault (a stale event: counted), and panics, naming the
// page and where the thread stopped, when the holder keeps the lock for 5 s while asleep in
// the fault (nothing can ever serve it).  Exposed for tests.
//  => no lock held; may sleep.
void trap_check_lock_holder_fault(vaddr_t page, pid_t tid);

}  // namespace vmrt::rt
