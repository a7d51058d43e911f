// vm_object.h — VM objects: the things map entries map (FreeBSD vm_object.c).
//
// An object is a range of pages [0, size) with resident pages in a radix trie and a
// pager that knows where non-resident pages come from.  Anonymous (default) objects
// are zero-fill; a shadow object lies in front of a backing object (backing_object at
// backing_offset) and holds the pages written since a copy-on-write split; lookups
// fall through the shadow chain.  vm_object_collapse keeps chains short:
//  - collapse: the backing object is referenced only by this object: its pages move
//    up and it disappears;
//  - bypass: every backing page this object could see is already shadowed here: the
//    object skips the backing object.
//
// Locking: every field is guarded by the VM lock.
#pragma once

#include <cstdint>

#include "vm/vm_pager.h"
#include "vm/vm_radix.h"
#include "vm/vm_thread_safety.h"
#include "vm/vm_types.h"

namespace vmrt {

struct vm_page;
struct vm_object;

enum vm_object_type : std::uint8_t {
  OBJT_DEFAULT = 0,  // anonymous zero-fill
  OBJT_SWAP,         // anonymous with copies on the swap device (swap_pager)
  OBJT_VNODE,        // file pages (vnode_pager.h)
  OBJT_DEVICE,       // device / fictitious pages (stub)
  OBJT_DEAD,         // terminated
  OBJT_COUNT
};

enum vm_object_flags : std::uint16_t {
  OBJ_DEAD = 0x0001,
  OBJ_ANON = 0x0002,        // anonymous memory: collapses, reservations, zero-fill
  OBJ_COLLAPSING = 0x0004,  // collapse in progress (recursion guard)
  OBJ_ONEMAPPING = 0x0008,  // each page index is mapped by at most one entry range (clips of one
                            // private mapping): pages of a range can be freed with that range
};


struct vm_object {
  vm_radix rtree VMRT_GUARDED_BY(g_vm_lock);              // resident pages by pindex
  vm_pindex_t size VMRT_GUARDED_BY(g_vm_lock);            // pages
  std::uint64_t resident_page_count VMRT_GUARDED_BY(g_vm_lock);
  int ref_count VMRT_GUARDED_BY(g_vm_lock);               // map entries + shadows + explicit holders
  int shadow_count VMRT_GUARDED_BY(g_vm_lock);            // objects whose backing_object is this one
  vm_object* backing_object VMRT_GUARDED_BY(g_vm_lock);
  vm_pindex_t backing_offset VMRT_GUARDED_BY(g_vm_lock);  // in pages: our pindex p is backing's p + backing_offset
  vm_object_type type VMRT_GUARDED_BY(g_vm_lock);
  std::uint16_t flags VMRT_GUARDED_BY(g_vm_lock);         // vm_object_flags
  std::uint64_t id;                                       // for reports [constant]
  vm_object* shadow_head VMRT_GUARDED_BY(g_vm_lock);      // first object shadowing this one
  vm_object* shadow_next VMRT_GUARDED_BY(g_vm_lock);      // siblings in backing_object's shadow list
  vm_object* shadow_prev VMRT_GUARDED_BY(g_vm_lock);
  vm_object* all_next VMRT_GUARDED_BY(g_vm_lock);         // global list
  vm_object* all_prev VMRT_GUARDED_BY(g_vm_lock);
  vm_radix pager_meta VMRT_GUARDED_BY(g_vm_lock);         // the pager's per-index records (swap: slot per pindex)
  int check_refs VMRT_GUARDED_BY(g_vm_lock);              // scratch for vm_map_check: references seen
};

// Allocate an object of `size` pages, ref_count 1.  => VM lock held.  Null when out of zone items.
vm_object* vm_object_allocate(vm_object_type type, vm_pindex_t size) VMRT_REQUIRES(g_vm_lock);
// Add a reference.
void vm_object_reference(vm_object* obj) VMRT_REQUIRES(g_vm_lock);
// Drop a reference.  At zero the object terminates (pages freed, backing object
// dereferenced, iteratively).  When the count drops to one and the remaining holder is
// a single anonymous shadow, that shadow is collapsed into it (the fork-and-reap case).
void vm_object_deallocate(vm_object* obj) VMRT_REQUIRES(g_vm_lock);
// Shadow: *obj/*offset (bytes) describe what an entry maps, `length` bytes.  Replace
// them with a new anonymous object in front of the old one (the entry's reference is
// transferred to the shadow's backing pointer); *offset becomes 0.
//  => KERN_RESOURCE_SHORTAGE when out of objects.
kern_return_t vm_object_shadow(vm_object** obj, vm_ooffset_t* offset, vsize_t length) VMRT_REQUIRES(g_vm_lock);
// Collapse / bypass obj's backing chain as far as possible.  Counted.
void vm_object_collapse(vm_object* obj) VMRT_REQUIRES(g_vm_lock);
// Free resident pages in [start, end) pindexes.  unmap: remove their mappings from
// every pmap first (pmap page_protect NONE); skip only when the caller removed them.
void vm_object_page_remove(vm_object* obj, vm_pindex_t start, vm_pindex_t end, bool unmap) VMRT_REQUIRES(g_vm_lock);
// MADV_FREE, lazily (FreeBSD's vm_object_madvise / vm_page_advise): the resident pages of
// [start, end) become PG_FREEABLE and go to the inactive queue, their swap copies and the
// swap copies of the range's paged-out pages are freed (those read zeros again).  A page
// the program uses again before the daemon takes it keeps its data; one it does not is
// freed without a write.  Busy, wired and loaned pages are left alone.  Returns the pages
// marked.
//  => VM lock held; obj anonymous, without backing object, mapped only by the caller's
//     entry, whose translations of the range the caller removed (every use then faults).
std::uint64_t vm_object_madvise_free(vm_object* obj, vm_pindex_t start, vm_pindex_t end) VMRT_REQUIRES(g_vm_lock);
// What obj's shadow chain shows at pindex: the first object that holds the page, resident
// or stored by its pager (a stored copy in a shadow hides the backing objects' pages).
enum vm_chain_state : std::uint8_t { CHAIN_ABSENT, CHAIN_RESIDENT, CHAIN_STORED };
struct vm_chain_hit {
  vm_object* owner;     // the object that shows the page
  vm_pindex_t pindex;   // its index there
  vm_page* m;           // the resident page (CHAIN_RESIDENT), else null
};
vm_chain_state vm_object_chain_find(vm_object* obj, vm_pindex_t pindex, vm_chain_hit* hit) VMRT_REQUIRES(g_vm_lock);
// The resident page visible at pindex through obj's shadow chain.  *owner gets the object
// that holds it.  Null when the chain shows no page there, or only a stored one (not
// resident: a pager must read it first).
vm_page* vm_object_chain_lookup(vm_object* obj, vm_pindex_t pindex, vm_object** owner) VMRT_REQUIRES(g_vm_lock);
// Depth of the shadow chain (1 = no backing object).
unsigned vm_object_chain_depth(const vm_object* obj) VMRT_REQUIRES(g_vm_lock);
// Extend an anonymous object by `extra` pages when it is only mapped once (no shadows,
// no backing, one reference): used to coalesce adjacent anonymous mappings.
bool vm_object_coalesce(vm_object* obj, vm_pindex_t cur_size_used, vm_pindex_t extra) VMRT_REQUIRES(g_vm_lock);

// Tunables (tests flip them to exercise other paths).
struct vm_object_tunables {
  bool collapse_on_deallocate = true;  // collapse when a backing object drops to one reference
};
extern vm_object_tunables g_vm_object_tunables;

// Iterate every live object (checker).
vm_object* vm_object_first() VMRT_REQUIRES(g_vm_lock);
inline vm_object* vm_object_next(const vm_object* o) VMRT_REQUIRES(g_vm_lock) { return o->all_next; }
// Check one object's invariants (resident count, pages' back pointers, acyclic chain,
// shadow_count).  Writes the first violation to fd; returns false on violation.
bool vm_object_check(const vm_object* obj, int fd) VMRT_REQUIRES(g_vm_lock);

}  // namespace vmrt
