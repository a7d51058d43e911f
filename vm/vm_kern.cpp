// vm_kern.cpp — the kmem submap and wired kernel memory (4.4BSD vm_kern.c).
#include "vm/vm_kern.h"

#include "vm/pmap.h"
#include "vm/vm_lock.h"
#include "vm/vm_map.h"
#include "vm/vm_object.h"
#include "vm/vm_page.h"
#include "vm/vm_phys.h"
#include "vm/vm_stats.h"
#include "vmspace_impl.h"

namespace vmrt {
namespace {

vm_map* g_kmem_map VMRT_GUARDED_BY(g_vm_lock) = nullptr;  // the submap
// Backs every kmem page, pindex = (va - base) / PAGE_SIZE.
vm_object* g_kmem_object VMRT_GUARDED_BY(g_vm_lock) = nullptr;
constexpr vsize_t kKmemBatch = 512;
VMRT_LARGE_BSS vm_page* g_batch[kKmemBatch] VMRT_GUARDED_BY(g_vm_lock);  // pmap_enter page list
constexpr vsize_t kKmemSubmapAlign = vsize_t{2} << 20;

// Free the kmem pages of [s, t) (unwired, frames released).
void free_pages(vaddr_t s, vaddr_t t) VMRT_REQUIRES(g_vm_lock) {
  vm_pindex_t p0 = atop(s - g_kmem_map->min), p1 = atop(t - g_kmem_map->min);
  vm_pindex_t key = p0;
  vsize_t n = 0;
  for (;;) {
    vm_page* m = vm_radix_lookup_ge(&g_kmem_object->rtree, key);
    if (m == nullptr || m->pindex >= p1) break;
    key = m->pindex + 1;
    vm_page_free(m, VM_FREE_RELEASE);  // resets the wiring; kmem caches on its own
    ++n;
  }
  vm_page_free_flush();
  vm_stat_add(V_KMEM_PAGES, -static_cast<std::int64_t>(n));
}

}  // namespace

vm_object* kmem_object() VMRT_REQUIRES(g_vm_lock) { return g_kmem_object; }
vm_map* kmem_map() VMRT_REQUIRES(g_vm_lock) { return g_kmem_map; }

kern_return_t kmem_submap_init(vmspace* kernel_vs, vsize_t size, vaddr_t* base) {
  size = round_page(size);
  if (size == 0) return KERN_INVALID_ARGUMENT;
  vm_lock_guard g;
  if (g_kmem_map != nullptr) return KERN_FAILURE;
  vm_map* km = &kernel_vs->map;
  vaddr_t b;
  if (vm_map_findspace(km, km->min, size, kKmemSubmapAlign, &b) != KERN_SUCCESS &&
      vm_map_findspace(km, km->min, size, PAGE_SIZE, &b) != KERN_SUCCESS)
    return KERN_NO_SPACE;
  vm_map* sub = vm_map_create(kernel_vs->pm, b, b + size);
  if (sub == nullptr) return KERN_RESOURCE_SHORTAGE;
  vm_object* obj = vm_object_allocate(OBJT_DEFAULT, atop(size));
  if (obj == nullptr) {
    vm_map_free(sub);
    return KERN_RESOURCE_SHORTAGE;
  }
  kern_return_t kr = vm_map_submap(km, b, b + size, sub);
  if (kr != KERN_SUCCESS) {
    vm_object_deallocate(obj);
    vm_map_free(sub);
    return kr;
  }
  g_kmem_map = sub;
  g_kmem_object = obj;
  pmap_reserve(kernel_vs->pm, b, b + size, VM_PROT_NONE);
  *base = b;
  return KERN_SUCCESS;
}

namespace {

// Give the kmem pages at pindexes [p0, p0 + n) (none present yet) frames: one contiguous run
// if possible, else the largest runs available.
//  => VM lock held.  On failure the pages inserted so far stay: the caller frees the range
//     with free_pages.
kern_return_t kmem_fill_locked(vm_pindex_t p0, vsize_t n) VMRT_REQUIRES(g_vm_lock) {
  vsize_t done = 0;
  while (done < n) {
    vsize_t want = n - done;
    vm_page* m = nullptr;
    while (want >= 1 && (m = vm_page_alloc_contig(want, VM_ALLOC_ZERO | VM_ALLOC_WIRED)) == nullptr) want /= 2;
    if (m == nullptr) return KERN_RESOURCE_SHORTAGE;
    vsize_t k = 0;
    kern_return_t kr = KERN_SUCCESS;
    for (; k < want && (kr = vm_page_insert(m + k, g_kmem_object, p0 + done + k)) == KERN_SUCCESS; ++k) {
    }
    for (vsize_t j = k; j < want; ++j) vm_page_free(m + j, VM_FREE_RELEASE);  // not inserted
    vm_stat_add(V_KMEM_PAGES, static_cast<std::int64_t>(k));  // free_pages uncounts what it frees
    if (kr != KERN_SUCCESS) return kr;
    done += want;
  }
  return KERN_SUCCESS;
}

// A wired map entry for the free range [va, va + size) (merged with wired neighbours).
//  => VM lock held.
kern_return_t kmem_insert_entry_locked(vaddr_t va, vsize_t size) VMRT_REQUIRES(g_vm_lock) {
  vm_map* map = g_kmem_map;
  vm_object_reference(g_kmem_object);
  vm_map_entry* e = nullptr;
  kern_return_t kr = vm_map_insert(map, g_kmem_object, va - map->min, va, va + size, VM_PROT_DEFAULT,
                                   VM_PROT_DEFAULT, 0, VM_INHERIT_NONE, &e);
  if (kr != KERN_SUCCESS) {
    vm_object_deallocate(g_kmem_object);
    return kr;
  }
  // The new entry may have merged; mark the part we own wired, then merge with wired neighbours.
  if (e->start < va) vm_map_clip_start(map, e, va);
  if (e->end > va + size) vm_map_clip_end(map, e, va + size);
  e->wired_count = 1;
  vm_map_simplify_entry(map, e);
  pmap_reserve(map->pm, va, va + size, VM_PROT_DEFAULT);
  return KERN_SUCCESS;
}

// Enter the kmem pages of [va, va + size) (all present) into the pmap, a batch at a time.
//  => VM lock held.  On failure the range is left unmapped.
kern_return_t kmem_enter_locked(vaddr_t va, vsize_t size) VMRT_REQUIRES(g_vm_lock) {
  vm_map* map = g_kmem_map;
  vsize_t n = atop(size);
  vm_pindex_t p0 = atop(va - map->min);
  for (vsize_t k = 0; k < n; k += kKmemBatch) {
    vsize_t c = n - k < kKmemBatch ? n - k : kKmemBatch;
    for (vsize_t j = 0; j < c; ++j) g_batch[j] = vm_page_lookup(g_kmem_object, p0 + k + j);
    kern_return_t kr = pmap_enter(map->pm, va + ptoa(k), g_batch, c, VM_PROT_DEFAULT);
    if (kr != KERN_SUCCESS) {
      pmap_remove(map->pm, va, va + size);
      return kr;
    }
  }
  return KERN_SUCCESS;
}

// Map the free range [va, va + size) of kmem_map as wired kernel memory.
//  => VM lock held.  On failure nothing is left behind (frames freed, entry removed).
kern_return_t kmem_wire_range_locked(vaddr_t va, vsize_t size) VMRT_REQUIRES(g_vm_lock) {
  kern_return_t kr = kmem_fill_locked(atop(va - g_kmem_map->min), atop(size));
  if (kr == KERN_SUCCESS) kr = kmem_insert_entry_locked(va, size);
  if (kr != KERN_SUCCESS) {
    free_pages(va, va + size);
    return kr;
  }
  kr = kmem_enter_locked(va, size);
  if (kr != KERN_SUCCESS) {
    free_pages(va, va + size);
    vm_map_delete(g_kmem_map, va, va + size);
  }
  return kr;
}

// Rename the n kmem pages at pindex `from` to pindex `to` (ranges do not overlap).
//  => VM lock held.  False (and every page back at `from`) when the radix tree is short.
bool kmem_rename_locked(vm_pindex_t from, vm_pindex_t to, vsize_t n) VMRT_REQUIRES(g_vm_lock) {
  for (vsize_t k = 0; k < n; ++k) {
    vm_page* m = vm_page_lookup(g_kmem_object, from + k);
    VMRT_ASSERT(m != nullptr);
    if (vm_page_rename(m, g_kmem_object, to + k) != KERN_SUCCESS) {
      for (vsize_t j = 0; j < k; ++j) {
        kern_return_t back = vm_page_rename(vm_page_lookup(g_kmem_object, to + j), g_kmem_object, from + j);
        VMRT_ASSERT(back == KERN_SUCCESS);  // the nodes it used are free again
      }
      return false;
    }
  }
  return true;
}

}  // namespace

kern_return_t kmem_alloc_wired(vsize_t size, vsize_t align, vaddr_t* out) {
  size = round_page(size);
  if (size == 0 || align == 0 || (align & (align - 1)) != 0) return KERN_INVALID_ARGUMENT;
  vm_lock_guard g;
  vm_map* map = g_kmem_map;
  if (map == nullptr) return KERN_FAILURE;
  vaddr_t va;
  if (vm_map_findspace(map, map->min, size, PAGE_SIZE > align ? PAGE_SIZE : align, &va) != KERN_SUCCESS)
    return KERN_NO_SPACE;
  kern_return_t kr = kmem_wire_range_locked(va, size);
  if (kr == KERN_SUCCESS) *out = va;
  return kr;
}

kern_return_t kmem_resize_wired(vaddr_t addr, vsize_t oldsize, vsize_t newsize, vaddr_t* out) {
  oldsize = round_page(oldsize);
  newsize = round_page(newsize);
  if (newsize <= oldsize || !page_aligned(addr)) return KERN_INVALID_ARGUMENT;
  vm_lock_guard g;
  vm_map* map = g_kmem_map;
  if (map == nullptr) return KERN_FAILURE;
  VMRT_ASSERT(addr >= map->min && addr + oldsize <= map->max && vm_map_range_covered(map, addr, addr + oldsize));
  // In place: the map is free after the block.
  if (addr + newsize <= map->max && addr + newsize > addr &&
      vm_map_range_free(map, addr + oldsize, addr + newsize)) {
    kern_return_t kr = kmem_wire_range_locked(addr + oldsize, newsize - oldsize);
    if (kr == KERN_SUCCESS) {
      vm_stat_inc(V_KMEM_GROWN_IN_PLACE);
      *out = addr;
    }
    return kr;
  }
  // Elsewhere: move the block's frames to a new range (rename them in the kmem object and
  // remap them there) and give the tail fresh frames: no byte is copied.  Everything that
  // can fail happens before the old mapping goes, or is rolled back: the block is never lost.
  vaddr_t va;
  if (vm_map_findspace(map, map->min, newsize, PAGE_SIZE, &va) != KERN_SUCCESS) return KERN_NO_SPACE;
  vm_pindex_t from = atop(addr - map->min), to = atop(va - map->min);
  vsize_t n = atop(oldsize);
  kern_return_t kr = kmem_fill_locked(to + n, atop(newsize) - n);
  if (kr == KERN_SUCCESS) kr = kmem_insert_entry_locked(va, newsize);
  if (kr != KERN_SUCCESS) {
    free_pages(va + oldsize, va + newsize);
    return kr;
  }
  pmap_remove(map->pm, addr, addr + oldsize);
  if (kmem_rename_locked(from, to, n)) {
    kr = kmem_enter_locked(va, newsize);
    if (kr == KERN_SUCCESS) {
      vm_map_delete(map, addr, addr + oldsize);
      pmap_reserve(map->pm, addr, addr + oldsize, VM_PROT_NONE);
      vm_stat_inc(V_KMEM_MOVED);
      *out = va;
      return KERN_SUCCESS;
    }
    kmem_rename_locked(to, from, n);  // its nodes were just freed by the first rename
  } else {
    kr = KERN_RESOURCE_SHORTAGE;
  }
  // Roll back: the block goes back where it was, the new range goes away.
  kern_return_t back = kmem_enter_locked(addr, oldsize);
  VMRT_ASSERT(back == KERN_SUCCESS);  // the same runs were mapped there a moment ago
  free_pages(va + oldsize, va + newsize);
  vm_map_delete(map, va, va + newsize);
  pmap_reserve(map->pm, va, va + newsize, VM_PROT_NONE);
  return kr;
}

void kmem_free_wired(vaddr_t addr, vsize_t size) {
  size = round_page(size);
  vm_lock_guard g;
  vm_map* map = g_kmem_map;
  VMRT_ASSERT(map != nullptr && page_aligned(addr) && addr >= map->min && addr + size <= map->max);
  pmap_remove(map->pm, addr, addr + size);
  free_pages(addr, addr + size);
  vm_map_delete(map, addr, addr + size);
}

}  // namespace vmrt
