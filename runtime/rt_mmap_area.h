// rt_mmap_area.h — the mmap area's map and the helpers its calls share (rt_mmap.cpp: mmap,
// munmap, mprotect, madvise, mincore, msync, mlock; rt_mremap.cpp: mremap).  Not for other
// users: rt_mmap.h is the interface.
//
// Locking: "=> VM lock held" below means the caller holds it.
#pragma once

#include <climits>
#include <cstddef>
#include <cstdint>

#include "runtime/rt_mmap.h"
#include "vm/vm_map.h"
#include "vm/vm_types.h"

namespace vmrt::rt::mma {

// The process vmspace's map and the area [g_lo, g_hi) [constant after init].
extern vm_map* g_map;
extern vaddr_t g_lo, g_hi;
// Set by the first entry the area's calls insert, never cleared: until then a fork
// child has nothing of the area to look at (mm_fork_child), and looking (the map, its
// entries) costs a child pages it would not touch otherwise.
extern bool g_area_used VMRT_GUARDED_BY(g_vm_lock);
inline kern_return_t noted(kern_return_t kr) VMRT_REQUIRES(g_vm_lock) {
  if (kr == KERN_SUCCESS && !g_area_used) g_area_used = true;
  return kr;
}

inline vaddr_t va(const void* p) { return reinterpret_cast<vaddr_t>(p); }
inline bool aligned(vaddr_t a) { return (a & PAGE_MASK) == 0; }
// Page-rounded length; 0 when it overflows (a length of 0 stays 0: callers check it first).
inline vsize_t round_len(std::size_t len) { return len > SIZE_MAX - PAGE_MASK ? 0 : (len + PAGE_MASK) & ~PAGE_MASK; }

// [a, a + n) wholly inside the area?  Does it meet the area at all?
inline bool inside(vaddr_t a, vsize_t n) { return a >= g_lo && a < g_hi && n <= g_hi - a; }
inline bool meets(vaddr_t a, vsize_t n) { return n != 0 && a < g_hi && (a + n > g_lo || a + n < a); }

inline mm_route answer(mm_answer* out, long value, int err = 0) {
  out->value = value;
  out->err = err;
  return mm_route::handled;
}
inline mm_route fail(mm_answer* out, int err) { return answer(out, -1, err); }

// Is the entry pageable memory of the VM (a copy-on-write entry whose pages vm_fault
// provides and the pageout daemon may take) rather than host memory?
inline bool vm_backed(const vm_map_entry* x) VMRT_REQUIRES(g_vm_lock) { return (x->eflags & MAP_ENTRY_HOSTMEM) == 0; }

// Call f(piece start, piece end, entry) for each entry piece of [s, e) in order; stops
// at the first hole (returns false: ENOMEM in Linux's walks) or when f returns false.
// Each piece is looked up by address, so f may clip, merge or replace entries.
//  => VM lock held.
template <class F> bool walk(vaddr_t s, vaddr_t e, F&& f) VMRT_REQUIRES(g_vm_lock) {
  vaddr_t a = s;
  while (a < e) {
    vm_map_entry* ent;
    if (!vm_map_lookup_entry(g_map, a, &ent)) return false;
    vaddr_t b = ent->end < e ? ent->end : e;
    if (!f(a, b, ent)) return true;
    a = b;
  }
  return true;
}

// Call f(hole start, hole end) for each hole (no entry) of [s, e).  => VM lock held.
template <class F> void for_each_hole(vaddr_t s, vaddr_t e, F&& f) VMRT_REQUIRES(g_vm_lock) {
  vaddr_t x = s;
  while (x < e) {
    vm_map_entry* ent;
    if (vm_map_lookup_entry(g_map, x, &ent)) {
      x = ent->end;
      continue;
    }
    vm_map_entry* nx = ent->next;
    vaddr_t y = vm_map_is_end(g_map, nx) || nx->start > e ? e : nx->start;
    f(x, y);
    x = y;
  }
}

// vm_map_delete of [s, e), giving its charge back.  => VM lock held.
void delete_locked(vaddr_t s, vaddr_t e) VMRT_REQUIRES(g_vm_lock);
// Drop [s, e) of the area: entries (pageable pages and their swap copies with them, their
// commit charge) and host memory.  => VM lock held.
void remove_locked(vaddr_t s, vaddr_t e) VMRT_REQUIRES(g_vm_lock);
// Drop the pageable pieces of [s, e) before the host maps something over the range.
//  => VM lock held.
void remove_paged_locked(vaddr_t s, vaddr_t e) VMRT_REQUIRES(g_vm_lock);
// Insert pageable private anonymous memory [s, e), charged to the commit when writable;
// KERN_RESOURCE_SHORTAGE when it does not fit.  => VM lock held.
kern_return_t insert_paged_locked(vaddr_t s, vaddr_t e, vm_prot_t prot, vm_inherit_t inh) VMRT_REQUIRES(g_vm_lock);
// Insert pageable private file memory [s, e) over the vnode object obj from byte off.
//  => VM lock held.
kern_return_t insert_paged_file_locked(vaddr_t s, vaddr_t e, vm_prot_t prot, vm_inherit_t inh, vm_object* obj,
                                       vm_ooffset_t off) VMRT_REQUIRES(g_vm_lock);
// The file position of address x of a pageable entry: the vnode object at the bottom of its
// chain and the byte offset there.  False when the entry maps no file.  => VM lock held.
bool file_position(const vm_map_entry* ent, vaddr_t x, vm_object** obj, vm_ooffset_t* off) VMRT_REQUIRES(g_vm_lock);
// Pageable memory [s, e) that continues the entry `last` after a grown range's old end
// `from` (an mremap growth).  => VM lock held.
kern_return_t insert_tail_locked(const vm_map_entry* last, vaddr_t from, vaddr_t s, vaddr_t e) VMRT_REQUIRES(g_vm_lock);
// A new mapping's identity (its entries' offset): its address when private, a range of its
// own when shared.  => VM lock held.
vm_ooffset_t new_identity(vaddr_t s, bool shared) VMRT_REQUIRES(g_vm_lock);
// Insert the entry for new host memory [s, e) named `ident` (a file mapping's: obj, the
// file's vnode object, referenced by the entry).  => VM lock held.
kern_return_t insert_locked(vaddr_t s, vaddr_t e, int prot, vm_inherit_t inh, vm_ooffset_t ident, vm_object* obj = nullptr)
    VMRT_REQUIRES(g_vm_lock);
kern_return_t insert_locked(vaddr_t s, vaddr_t e, int prot, bool shared, vm_ooffset_t ident) VMRT_REQUIRES(g_vm_lock);
// After a host call that may have unmapped part of [s, e) of the area, the pages the host
// no longer maps leave the map and become the area's reservation again.  => VM lock held.
void resync_unmapped(vaddr_t s, vaddr_t e) VMRT_REQUIRES(g_vm_lock);
// Is [s, s + n) one VMA of the host's?
bool host_one_vma(vaddr_t s, vsize_t n);
// Where Linux's default (top-down) layout would put n bytes.  False: no room.
//  => VM lock held.
bool findspace_topdown(vsize_t n, vaddr_t* out) VMRT_REQUIRES(g_vm_lock);

}  // namespace vmrt::rt::mma
