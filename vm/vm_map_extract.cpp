// vm_map_extract.cpp — map entry passing (UVM's uvm_map_extract) and the per-entry steps
// vmspace_fork shares with it.
#include "vm/vm_map_extract.h"

#include <cstring>

#include "vm/pmap.h"
#include "vm/vm_assert.h"
#include "vm/vm_lock.h"
#include "vm/vm_object.h"
#include "vm/vm_page.h"
#include "vm/vm_stats.h"

namespace vmrt {

namespace {

// Copy a COW entry's pages into a fresh object (FreeBSD vm_fault_copy_entry): wired
// memory is never shared copy-on-write, and shared memory copied must stay shared in the
// source.  => VM lock held; KERN_RESOURCE_SHORTAGE when out of frames or objects.
kern_return_t copy_entry_pages(vm_map_entry* src, vm_object** out) VMRT_REQUIRES(g_vm_lock) {
  vm_pindex_t n = atop(src->end - src->start);
  vm_object* obj = vm_object_allocate(OBJT_DEFAULT, n);
  if (obj == nullptr) return KERN_RESOURCE_SHORTAGE;
  obj->flags |= OBJ_ONEMAPPING;
  const pmap_ops* ops = pmap_machine_ops();
  if (src->object != nullptr) {
    vm_pindex_t first = atop(src->offset);
    for (vm_pindex_t k = 0; k < n; ++k) {
      vm_page* m = vm_object_chain_lookup(src->object, first + k, nullptr);
      if (m == nullptr) continue;
      vm_page* nm = vm_page_alloc(obj, k, VM_ALLOC_NORMAL);
      if (nm == nullptr) {
        vm_object_deallocate(obj);
        return KERN_RESOURCE_SHORTAGE;
      }
      std::memcpy(ops->page_address(nm), ops->page_address(m), PAGE_SIZE);
      nm->flags |= PG_DIRTY;
    }
  }
  *out = obj;
  return KERN_SUCCESS;
}

// Lower the source's resident mappings of e to read-only (its next write faults).
void write_protect(vm_map* src, const vm_map_entry* e) VMRT_REQUIRES(g_vm_lock) {
  if (src->pm != nullptr && (e->protection & VM_PROT_WRITE))
    pmap_protect(src->pm, e->start, e->end, static_cast<vm_prot_t>(e->protection & ~VM_PROT_WRITE));
}

}  // namespace

kern_return_t vm_map_entry_insert_like(vm_map* dst, const vm_map_entry* e, vm_object* obj, vm_ooffset_t off,
                                       vaddr_t ds, std::uint16_t eflags, vm_map_entry** out) {
  VM_LOCK_ASSERT();
  const vaddr_t de = ds + (e->end - e->start);
  eflags = static_cast<std::uint16_t>(eflags & ~kMapEntryLoanFlags);
  vm_map_entry* ne = nullptr;
  kern_return_t kr = vm_map_insert(dst, obj, off, ds, de, e->protection, e->max_protection,
                                   static_cast<std::uint16_t>(eflags | MAP_ENTRY_NOCOALESCE), e->inheritance, &ne);
  if (kr != KERN_SUCCESS) {
    if (obj != nullptr) vm_object_deallocate(obj);
    return kr;
  }
  ne->eflags &= static_cast<std::uint16_t>(~MAP_ENTRY_NOCOALESCE);
  ne->eflags |= static_cast<std::uint16_t>(e->eflags & MAP_ENTRY_NOCOALESCE);
  ne->advice = e->advice;
  if (dst->pm != nullptr) pmap_reserve(dst->pm, ds, de, e->protection);
  *out = ne;
  return KERN_SUCCESS;
}

kern_return_t vm_map_entry_share(vm_map* src, vm_map_entry* e, vm_map* dst, vaddr_t ds, vm_map_entry** out) {
  VM_LOCK_ASSERT();
  if (e->object == nullptr) {
    e->object = vm_object_allocate(OBJT_DEFAULT, atop(e->end - e->start));
    if (e->object == nullptr) return KERN_RESOURCE_SHORTAGE;
    e->offset = 0;
  }
  if (e->eflags & MAP_ENTRY_NEEDS_COPY) {
    // Share the source's private copy, not the object it still shares with others.
    kern_return_t kr = vm_object_shadow(&e->object, &e->offset, e->end - e->start);
    if (kr != KERN_SUCCESS) return kr;
    e->eflags &= static_cast<std::uint16_t>(~MAP_ENTRY_NEEDS_COPY);
    write_protect(src, e);
  }
  vm_object_reference(e->object);
  e->object->flags &= static_cast<std::uint16_t>(~OBJ_ONEMAPPING);
  // Memory shared with another map is shared memory from now on, on both sides:
  // written in place, copied eagerly by a later COPY fork, kept by DONTNEED.
  e->eflags &= static_cast<std::uint16_t>(~MAP_ENTRY_COW);
  return vm_map_entry_insert_like(dst, e, e->object, e->offset, ds, e->eflags, out);
}

kern_return_t vm_map_entry_cow(vm_map* src, vm_map_entry* e, vm_map* dst, vaddr_t ds, vm_map_entry** out,
                               bool* cow_shared) {
  VM_LOCK_ASSERT();
  *cow_shared = false;
  const std::uint16_t fl = e->eflags;
  if (e->object == nullptr)  // nothing resident: the copy is fresh private memory
    return vm_map_entry_insert_like(dst, e, nullptr, 0, ds, static_cast<std::uint16_t>(fl | MAP_ENTRY_COW), out);
  if (e->wired_count != 0 || (e->eflags & MAP_ENTRY_COW) == 0) {
    // Wired memory is never shared copy-on-write, and shared memory copied must stay
    // shared in the source: the copy is made now.
    vm_object* copy = nullptr;
    kern_return_t kr = copy_entry_pages(e, &copy);
    if (kr != KERN_SUCCESS) return kr;
    return vm_map_entry_insert_like(dst, e, copy, 0, ds,
                                    static_cast<std::uint16_t>((fl & ~MAP_ENTRY_NEEDS_COPY) | MAP_ENTRY_COW), out);
  }
  vm_object_collapse(e->object);
  vm_object_reference(e->object);
  e->object->flags &= static_cast<std::uint16_t>(~OBJ_ONEMAPPING);
  e->eflags |= MAP_ENTRY_COW | MAP_ENTRY_NEEDS_COPY;
  write_protect(src, e);
  kern_return_t kr = vm_map_entry_insert_like(dst, e, e->object, e->offset, ds, e->eflags, out);
  *cow_shared = kr == KERN_SUCCESS;
  return kr;
}

kern_return_t vm_map_share_check(vm_map* src, vaddr_t s, vsize_t len, vm_map* dst, vaddr_t d) {
  VM_LOCK_ASSERT();
  if (!page_aligned(s) || !page_aligned(d) || !page_aligned(len) || len == 0) return KERN_INVALID_ARGUMENT;
  if (s < src->min || s > src->max || len > src->max - s) return KERN_INVALID_ADDRESS;
  if (d < dst->min || d > dst->max || len > dst->max - d) return KERN_INVALID_ADDRESS;
  if (!vm_map_range_covered(src, s, s + len)) return KERN_INVALID_ADDRESS;
  vm_map_entry* e;
  if (!vm_map_lookup_entry(src, s, &e)) return KERN_INVALID_ADDRESS;
  for (; !vm_map_is_end(src, e) && e->start < s + len; e = e->next)
    if (e->eflags & (MAP_ENTRY_IS_SUBMAP | MAP_ENTRY_HOSTMEM)) return KERN_INVALID_ADDRESS;
  if (!vm_map_range_free(dst, d, d + len)) return KERN_NO_SPACE;
  return KERN_SUCCESS;
}

kern_return_t vm_map_extract(vm_map* src, vaddr_t s, vsize_t len, vm_map* dst, vaddr_t d, vm_extract_mode mode) {
  VM_LOCK_ASSERT();
  kern_return_t kr = vm_map_share_check(src, s, len, dst, d);
  if (kr != KERN_SUCCESS) return kr;
  vm_stat_inc(V_EXTRACTS);
  // One clipped source entry at a time, looked up again each round: with src == dst the
  // inserts change the list (never inside [s, s + len), which is covered).
  for (vaddr_t x = s; x < s + len;) {
    vm_map_entry* e;
    VMRT_ASSERT(vm_map_lookup_entry(src, x, &e));
    vm_map_clip_start(src, e, x);
    vm_map_clip_end(src, e, s + len);
    vm_map_entry* ne = nullptr;
    bool cow_shared = false;
    kr = mode == VM_EXTRACT_SHARE ? vm_map_entry_share(src, e, dst, d + (x - s), &ne)
                                  : vm_map_entry_cow(src, e, dst, d + (x - s), &ne, &cow_shared);
    if (kr != KERN_SUCCESS) {
      vm_map_delete(dst, d, d + (x - s));  // what was passed so far goes back to nothing
      return kr;
    }
    vm_stat_inc(V_EXTRACT_ENTRIES);
    x = e->end;
  }
  return KERN_SUCCESS;
}

}  // namespace vmrt
