// rt_lock_stack.h — the VM lock holder's own stack, when it lies in memory the VM pages.
//
// A thread may run on a stack in program memory: one the program gave pthread_create
// (pthread_attr_setstack over malloc'd or mmap'd memory), an alternate signal stack from
// malloc, a coroutine's stack switched to with swapcontext or by hand (ucontext, Ruby's
// fibers).  Under a paged heap that memory is demand-zero on first touch and taken by
// pageout like any other, and the VM's own calls run on it while they hold the VM lock: a
// fault then is one no handler can serve (it needs the lock).  So before a thread whose
// stack pointer is in such memory takes the lock, the pages from the one above its frame
// down to kLockStackPages below it are faulted in for writing, with no lock held; under
// the lock they are checked to be still in place (vm_lock.h, stack hooks), as pageout may
// have taken one in between; once the lock is held, pageout (which needs it) cannot.
//
// The stack's bounds are not needed: the walk stops at a page vmrt does not serve writable
// (a guard page, another mapping, host memory), and the pages are touched with an atomic or
// of zero, which changes no byte: below a small stack's end lies other live memory.  A
// thread on a host stack (main's, glibc's thread stacks) pays one range compare.
#pragma once

namespace vmrt::rt {

// Pages below the caller's that are made resident: the deepest the VM's own calls go under
// the lock, several times over.  Measured on a patterned program stack: a thread's mmap,
// munmap, mprotect, madvise, mremap, a file mapping and a 5 MB malloc and free, with a
// paged heap under either backend, wrote less than 5 KB below the calling frame (a vslock
// hold's page array alone is 2 KiB).
inline constexpr unsigned kLockStackPages = 8;

// Set the VM lock's stack hooks: from now on program memory may fault (the trap backend
// runs).  => no lock.
void lock_stack_install();

// While one lives, the calling thread serves a fault in vmrt's signal handler (the sigsegv
// backend), and its VM lock takes no probe: the handler runs on an alternate stack (vmrt's,
// or the program's, held whole while installed: shim_signal_stack.cpp), and a probe's own
// fault would nest another handler below it, which would probe again.
class lock_stack_fault_scope {
 public:
  lock_stack_fault_scope();
  ~lock_stack_fault_scope();
  lock_stack_fault_scope(const lock_stack_fault_scope&) = delete;
  lock_stack_fault_scope& operator=(const lock_stack_fault_scope&) = delete;
};

}  // namespace vmrt::rt
