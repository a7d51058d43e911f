// vm_lock.h — the VM lock: one global mutex for maps, objects, pages and zones.
//
// A spin-then-futex mutex (Drepper's "mutex2"): it never allocates and is safe to
// take inside a signal handler as long as the interrupted thread does not hold it.
// The VM never touches guest memory while holding it (contents go through the
// direct map), so a fault cannot arrive in a thread that holds it; if one does
// anyway (a bug, or an asynchronous signal handler touching guest memory),
// vm_lock_acquire() panics instead of deadlocking.  Under the userfaultfd backend such a
// fault blocks its thread in the kernel until a handler thread serves it, and the handler
// needs the lock: the handler compares the faulting thread with vm_lock_owner_tid() and
// panics instead.
//
// Lock order: VM lock -> pmap internal locks.  Nothing is taken while the VM lock is
// held that may be held by code that then takes the VM lock.
#pragma once

#include <cstdint>
#include <sys/types.h>

#include "vm/vm_thread_safety.h"

namespace vmrt {

// Acquire the VM lock.  => spins briefly, then sleeps on a futex.  Panics on recursion.
void vm_lock_acquire() VMRT_ACQUIRE(g_vm_lock);
// Try once; true when acquired.  False also when the caller already holds it.  The stack
// hooks (below) are not run: for callers on a stack of their own.
bool vm_lock_try() VMRT_TRY_ACQUIRE(true, g_vm_lock);
// Release the VM lock.  => the caller holds it (asserted).
void vm_lock_release() VMRT_RELEASE(g_vm_lock);
// True when the calling thread holds the VM lock.
bool vm_lock_owned();
// The kernel thread id of the holder, 0 when free (racy: for diagnostics).
pid_t vm_lock_owner_tid();
// How many times the lock was taken so far (racy: for diagnostics).
std::uint64_t vm_lock_acquisitions();
// A thread asleep on the lock calls the stall hook once a second while one holder keeps
// it (the same acquisition): with the holder's thread id and the seconds so far.  The hook
// may panic (the runtime's: a holder asleep in a userfaultfd fault no handler thread is free
// to serve); it returns to go on waiting.  Null: none.
using vm_lock_stall_fn = void (*)(pid_t holder, unsigned seconds);
void vm_lock_set_stall_hook(vm_lock_stall_fn fn);
// The holder's own stack.  The VM pages program memory, and a thread may run on a stack in
// that memory (pthread_attr_setstack over malloc'd or mmap'd memory, a malloc'd alternate
// signal stack, a coroutine's): a page of it the holder's calls reach for the first time, or
// again after pageout took it, faults while the lock is held, and no one can serve that fault
// (scenario program_stacks, in a loaded run: a thread faulted on its next stack page inside
// vm_map_findspace).  So, when the runtime sets these hooks (runtime/rt_lock_stack.h),
// vm_lock_acquire first has `prepare` make the caller's stack around its frame resident (true
// when it did: the caller runs on such a stack), takes the lock, then asks `ready` whether
// those pages are still in place, as pageout may have taken one in between; if not it lets
// the lock go and starts again, a bounded number of times.  prepare runs with no lock held
// and may fault; ready runs under the lock and must not touch program memory.
struct vm_lock_stack_hooks {
  bool (*prepare)();
  bool (*ready)();
};
// Set once (static storage); null: none.
void vm_lock_set_stack_hooks(const vm_lock_stack_hooks* hooks);
// Fork support: in a host fork() child, leave the lock free (only the forking thread
// survives).  => the forking thread held the lock across fork() only to keep the VM
// quiescent (runtime_fork_prepare), or did not hold it at all; no VM operation was in
// progress in that thread.
void vm_lock_fork_child_reset();

// Pager I/O with the lock dropped when the caller allows it (may_unlock): let go of the VM
// lock when `drop`, and take it again after the I/O.  The analysis cannot follow a
// conditional release, so to it the lock stays held across the pair: code between them must
// touch no VM state (it does not: buffers and descriptors only).
inline void vm_lock_drop_if(bool drop) VMRT_REQUIRES(g_vm_lock) VMRT_NO_THREAD_SAFETY_ANALYSIS {
  if (drop) vm_lock_release();
}
inline void vm_lock_retake_if(bool drop) VMRT_REQUIRES(g_vm_lock) VMRT_NO_THREAD_SAFETY_ANALYSIS {
  if (drop) vm_lock_acquire();
}

// Scoped acquisition.
class VMRT_SCOPED_CAPABILITY vm_lock_guard {
 public:
  vm_lock_guard() VMRT_ACQUIRE(g_vm_lock) { vm_lock_acquire(); }
  ~vm_lock_guard() VMRT_RELEASE() { vm_lock_release(); }
  vm_lock_guard(const vm_lock_guard&) = delete;
  vm_lock_guard& operator=(const vm_lock_guard&) = delete;
};

}  // namespace vmrt

#include "vm/vm_assert.h"

namespace vmrt {
// Tells the analysis the VM lock is held from here on; checks nothing (VM_LOCK_ASSERT does).
inline void vm_lock_assume_held() VMRT_ASSERT_CAPABILITY(g_vm_lock) {}
}  // namespace vmrt
// The caller holds the VM lock: checked at run time (the message names the caller's line),
// and the analysis takes the lock as held from there on.
#define VM_LOCK_ASSERT()                   \
  do {                                     \
    VMRT_ASSERT(::vmrt::vm_lock_owned());  \
    ::vmrt::vm_lock_assume_held();         \
  } while (0)
#define VM_LOCK_ASSERT_NOT() VMRT_ASSERT(!::vmrt::vm_lock_owned())
