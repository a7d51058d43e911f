// rt_vslock_keep.h — holds that outlive a call: program memory the host kernel keeps
// accessing on its own, under the sigsegv trap backend.
//
// A system call's buffer is held for the call (rt_vslock.h).  Some program memory is the
// kernel's to write at any moment, with no call to wrap: an alternate signal stack (the
// kernel writes a signal frame there whenever a signal arrives, vmrt's own fault signals
// included) and a thread's descriptor (glibc's struct pthread, which sits at the top of a
// stack the program supplied: the kernel writes its rseq area after a preemption and clears
// its tid at the thread's exit).  A page of either that is paged out, never touched or
// unmapped for a moment by the reference scan makes the kernel's write fail: a signal frame
// it cannot write kills the process (SIGSEGV, si_code SI_KERNEL), an rseq area kills the
// thread, a tid left set hangs pthread_join.  So such memory is held (faulted in for writing
// and wired, vm_fault_hold) while the kernel may write it, as 4.4BSD holds a buffer for
// physio (McKusick et al.), and released by its owner's key.
//
// The userfaultfd backend serves the kernel's faults through its handler thread, but not a
// dying thread's: the kernel clears the tid at exit without waiting for a handler (a paged
// out descriptor left pthread_join asleep forever under `--physmem` with userfaultfd too).
// So a hold is taken under either backend once one runs; the callers decide when one is
// wanted (an alternate stack only under sigsegv).  Memory outside vmrt's vmspaces (host
// memory) is never held.
//
// Kept holds live in a small fixed table (no malloc: sigaltstack may be called from a
// signal handler).  With the table full a hold is still taken but cannot be released: its
// pages stay wired until the program frees the memory (freeing resets a page's wiring).
#pragma once

#include <cstddef>
#include <cstdint>

namespace vmrt::rt {

// What a kept hold is for; with the owner (a thread's pthread_t), the key of its slot.
enum class keep_kind : unsigned { altstack = 1, thread_descriptor = 2, thread_exit = 3 };

// Hold [a, a + len) for the kernel's writes, at most kVslockMaxPages pages counted from the
// top down (a stack is used from its top), under the key (kind, owner); what that key held
// before is released once the new hold is taken.  With len 0 (or memory needing no hold)
// the key's old hold is released and nothing is kept.
//  => takes the VM lock (not when the thread already holds it: nothing is held then); may
//     sleep (page-in); no malloc.  True when the memory is held (or needs no hold).
bool vslock_keep(keep_kind kind, std::uintptr_t owner, const void* a, std::size_t len);

// Release the key's hold (unwire its pages).  => takes the VM lock when it held any.
void vslock_keep_release(keep_kind kind, std::uintptr_t owner);

// Does the key hold anything?  => spinlock only.
bool vslock_keep_has(keep_kind kind, std::uintptr_t owner);

// Forget the key's hold without unwiring: its pages stay wired until the program frees the
// memory.  For memory whose end nobody observes (a detached thread's descriptor: the
// kernel writes it after the thread's last instruction).  => spinlock only.
void vslock_keep_forget(keep_kind kind, std::uintptr_t owner);

}  // namespace vmrt::rt
