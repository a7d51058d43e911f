// vm_share.h — the vmspace calls of map entry passing and page transfer (Cranor's UVM
// dissertation, "memory sharing": page loanout is vm_loan.h).
//
// Both work between any two vmspaces (or within one, on ranges that do not overlap) and
// never copy a byte nor look at a page: their cost is one map entry per entry of the
// source range.
//  - vm_extract: the receiver's range maps the sender's objects, shared (MAP_SHARED
//    semantics) or copy-on-write (fork semantics) — vm_map_extract.h.
//  - vm_transfer: the sender's entries and their objects move to the receiver
//    (vm_map_transfer, the cross-map form of mremap's move); the sender's range is left
//    unmapped, or reads zeros afterwards (fresh private memory with the old protections).
//
// Both => take the VM lock; dst 0: the first free range of the receiver, else exactly
// there.  Statuses: KERN_INVALID_ARGUMENT unaligned addresses or len 0 (or an unknown
// mode); KERN_INVALID_ADDRESS the source range outside the sender, not fully mapped, a
// submap or host memory, or the destination range outside the receiver;
// KERN_ALREADY_EXISTS the destination range is not free; KERN_NO_SPACE no free range in
// the receiver; KERN_RESOURCE_SHORTAGE out of entries / objects (nothing changed).
#pragma once

#include "vm/vm_map_extract.h"
#include "vm/vm_types.h"

namespace vmrt {

struct vmspace;

enum vm_transfer_mode : std::uint8_t {
  VM_TRANSFER_UNMAP = 0,  // the sender's range is unmapped
  VM_TRANSFER_ZERO = 1,   // the sender's range reads zeros (private anonymous memory)
};

kern_return_t vm_extract(vmspace* from, vaddr_t src, vsize_t len, vmspace* to, vaddr_t dst, vm_extract_mode mode,
                         vaddr_t* out);
kern_return_t vm_transfer(vmspace* from, vaddr_t src, vsize_t len, vmspace* to, vaddr_t dst, vm_transfer_mode mode,
                          vaddr_t* out);

}  // namespace vmrt
