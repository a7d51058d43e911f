// vm_map_extract.h — map entry passing: export a range of one map into another as new
// entries over the same objects (Cranor's UVM dissertation, "map entry passing" and
// uvm_map_extract).
//
// Nothing here looks at pages: an extract costs one entry per source entry in the range
// (after clipping), whatever the number of resident pages behind it, so it scales with
// the size of the range where copying does not (and saves nothing for a single page).
// Two modes:
//  - SHARE: both maps see the same object and the same pages (MAP_SHARED semantics).
//    The source entries become shared memory from then on, as after a fork with
//    VM_INHERIT_SHARE: a private source entry that still needed a copy gets its own
//    shadow first, so the sharing is of what the source sees, not of what it shares
//    copy-on-write with others.
//  - COW: both sides need a copy (MAP_ENTRY_NEEDS_COPY) and their resident pages are
//    write-protected, exactly vmspace_fork's VM_INHERIT_COPY path (which is built on the
//    same entry helpers below): the first write on either side shadows the object.
//    Wired or shared source memory is copied eagerly instead, as fork does.
//
// The entry helpers are vmspace_fork's per-entry steps (FreeBSD vmspace_fork /
// vm_map_copy_entry); fork and extract call them so that the two can never disagree.
//
// Locking: everything here => VM lock held; nothing sleeps.
#pragma once

#include "vm/vm_map.h"
#include "vm/vm_types.h"

namespace vmrt {

enum vm_extract_mode : std::uint8_t {
  VM_EXTRACT_SHARE = 0,  // same object, same pages, writes seen by both
  VM_EXTRACT_COW = 1,    // copy-on-write on both sides
};

// Insert [ds, ds + (e->end - e->start)) into dst mapping obj at off with e's protection,
// inheritance, advice and the given flags (loan flags dropped), and reserve it in dst's
// pmap.  obj's reference is the caller's and is consumed (dropped on failure).
//  => KERN_SUCCESS and *out = the new entry (never coalesced into a neighbour), or the
//     insert's status.
kern_return_t vm_map_entry_insert_like(vm_map* dst, const vm_map_entry* e, vm_object* obj, vm_ooffset_t off,
                                       vaddr_t ds, std::uint16_t eflags, vm_map_entry** out);
// Share e (of src) at ds in dst: same object (allocated now when e has none; shadowed
// first when e still needs a copy), both entries shared memory afterwards.
kern_return_t vm_map_entry_share(vm_map* src, vm_map_entry* e, vm_map* dst, vaddr_t ds, vm_map_entry** out);
// Copy e (of src) copy-on-write at ds in dst: needs-copy on both sides and e's resident
// pages write-protected; wired or shared memory copied eagerly (O(resident pages)).
// *cow_shared: true when the object is now shared copy-on-write (a fork prefaults then).
kern_return_t vm_map_entry_cow(vm_map* src, vm_map_entry* e, vm_map* dst, vaddr_t ds, vm_map_entry** out,
                               bool* cow_shared);

// Map entry passing: the range [s, s + len) of src appears at [d, d + len) of dst
// (src == dst allowed), its entries sharing or copy-on-write-sharing src's objects.
// src's entries are clipped at s and s + len.
//  => s, d, len page aligned, len > 0, else KERN_INVALID_ARGUMENT; [s, s + len) outside
//     src or not covered by entries, or covering a submap or host memory:
//     KERN_INVALID_ADDRESS; [d, d + len) outside dst: KERN_INVALID_ADDRESS; not free:
//     KERN_NO_SPACE; out of entries / objects: KERN_RESOURCE_SHORTAGE with nothing
//     inserted in dst.
kern_return_t vm_map_extract(vm_map* src, vaddr_t s, vsize_t len, vm_map* dst, vaddr_t d, vm_extract_mode mode);

// The range checks vm_map_extract and vm_map_transfer share: [s, s + len) of src covered
// by plain entries (no submaps, no host memory), [d, d + len) of dst inside and free.
kern_return_t vm_map_share_check(vm_map* src, vaddr_t s, vsize_t len, vm_map* dst, vaddr_t d);

}  // namespace vmrt
