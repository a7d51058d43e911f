// vm_fault_hold.h — hold the pages of a user buffer for the length of a system call
// (4.4BSD's vslock/vsunlock for physio, McKusick et al.; FreeBSD's later
// vm_fault_quick_hold_pages).
//
// A system call reaches a buffer with the host kernel's own accesses, which raise no signal:
// under the sigsegv trap backend a page that is not mapped with the access the kernel needs
// (paged out, never touched, its reference bit being emulated, copy-on-write) gives EFAULT.
// Holding faults each page in through vm_fault with the access the kernel will make (write
// for buffers it fills: copy-on-write is broken first) and wires it, so the pageout daemon,
// the reference scan and whole-vmspace swapout leave it mapped until it is released.  A page
// that is already resident and mapped with that access is only wired (no fault, no host
// call).  Pages of host-memory entries (MAP_ENTRY_HOSTMEM) need no hold and get none.
#pragma once

#include "vm/vm_types.h"

namespace vmrt {

struct vmspace;
struct vm_page;

// The machine's answer to "is va mapped with every access in `access` right now?"
// => VM lock held (the translation cannot change under it).
using vm_hold_mapped_fn = bool (*)(vaddr_t va, vm_prot_t access);

// Hold the page at va (page aligned) of vs for an access of `access` (VM_PROT_READ: the
// kernel reads the buffer; VM_PROT_WRITE: it fills it).
//  => VM lock held; may drop and retake it (page-in, frame shortage: vm_fault_locked).
//  => KERN_SUCCESS and *out = the wired page, or *out = null when the page needs no hold
//     (host memory).  Otherwise vm_fault's status (no entry, protection, shortage, I/O
//     error): nothing is held, and the system call will meet what a native one would.
kern_return_t vm_fault_hold(vmspace* vs, vaddr_t va, vm_prot_t access, vm_hold_mapped_fn mapped, vm_page** out);

// Release pages held by vm_fault_hold.  A page freed meanwhile (the program unmapped or
// freed its buffer during the call: its wiring was reset with it) is skipped.
//  => VM lock held.
void vm_fault_unhold(vm_page* const* pages, vsize_t n);

}  // namespace vmrt
