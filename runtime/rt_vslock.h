// rt_vslock.h — hold a program's buffer for the length of a system call (4.4BSD
// vslock/vsunlock, McKusick et al.: physio wires the user buffer for the I/O).
//
// Under the sigsegv trap backend the host kernel's own accesses to the region raise no
// signal: a system call given a page that is paged out, never touched, or unmapped for a
// moment by the reference scan gets EFAULT.  The shim's wrappers of the buffer-taking libc
// calls (libc_shim/shim_vslock.cpp) hold the buffer first: each page of it in a vmspace
// window is faulted in with the access the kernel will make (write for buffers the kernel
// fills) and wired (vm_fault_hold), so the pageout daemon cannot take it before the call
// returns; vsunlock unwires.  A per-call hold of pages, not a map-entry wiring: no entry is
// clipped, and a page already mapped for the access costs a lookup and a wire count.
//
// Under the userfaultfd backend the handler thread serves the kernel's faults itself:
// vslock_needed() is false and the wrappers pass straight through (measured in the README).
// Host memory (outside the region, or host-memory entries inside it) is never held.
#pragma once

#include <cstddef>

#include "vm/vm_types.h"

namespace vmrt {
struct vm_page;
}

namespace vmrt::rt {

// Most pages one hold keeps (a call's buffers together); a bigger buffer is held in part
// and the wrapper splits the call where that keeps the call's meaning (rt_vslock.cpp).
// 256 pages (1 MiB): the hold lives on the calling thread's stack (2 KiB of it), and a
// program may call write(2) on a small thread stack.
inline constexpr unsigned kVslockMaxPages = 256;

struct vslock_hold {
  unsigned n;       // pages held
  bool stopped;     // a page could not be held (no entry, protection, shortage)
  unsigned budget;  // pages this hold may still take (kVslockMaxPages, lower on small physmem)
  vm_page* pages[kVslockMaxPages];
};

// Does a system call on region memory need a hold now?  (The sigsegv backend is running.)
// Lock-free; false until the trap backend has started.
bool vslock_needed();

// Is any byte of [a, a + len) in the region?  (The wrappers' first test.)
bool vslock_in_region(const void* a, std::size_t len);

// Start an empty hold.
void vslock_begin(vslock_hold* h);

// Hold [a, a + len) for a kernel access of `access` (VM_PROT_READ: the kernel reads the
// buffer, as write(2); VM_PROT_WRITE: it stores into it, as read(2)), adding to h.
//  => takes the VM lock (not when this thread already holds it: then nothing is held);
//     may sleep (page-in).
//  => the number of bytes from a that are held or need no hold: len when all of it, less
//     when the hold's budget ran out or a page could not be held.
std::size_t vslock(vslock_hold* h, const void* a, std::size_t len, vm_prot_t access);

// Release every page of h.  => takes the VM lock.  Keeps errno.
void vsunlock(vslock_hold* h);

}  // namespace vmrt::rt
