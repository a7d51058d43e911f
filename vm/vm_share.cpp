// vm_share.cpp — vm_extract and vm_transfer: the vmspace edge of map entry passing and
// page transfer.
#include "vm/vm_share.h"

#include "vm/vm_assert.h"
#include "vm/vm_lock.h"
#include "vm/vm_map.h"
#include "vm/vm_stats.h"
#include "vmspace_impl.h"

namespace vmrt {

namespace {

// Where the destination goes: *d = dst, or the first free range; then the common checks.
//  => VM lock held.
kern_return_t place(vm_map* fm, vaddr_t src, vsize_t len, vm_map* tm, vaddr_t dst, vaddr_t* d)
    VMRT_REQUIRES(g_vm_lock) {
  if (!page_aligned(src) || !page_aligned(dst) || !page_aligned(len) || len == 0) return KERN_INVALID_ARGUMENT;
  *d = dst;
  if (dst == 0) {
    kern_return_t kr = vm_map_findspace(tm, tm->min, len, PAGE_SIZE, d);
    if (kr != KERN_SUCCESS) return kr;
  }
  kern_return_t kr = vm_map_share_check(fm, src, len, tm, *d);
  return kr == KERN_NO_SPACE && dst != 0 ? KERN_ALREADY_EXISTS : kr;
}

}  // namespace

kern_return_t vm_extract(vmspace* from, vaddr_t src, vsize_t len, vmspace* to, vaddr_t dst, vm_extract_mode mode,
                         vaddr_t* out) {
  if (mode != VM_EXTRACT_SHARE && mode != VM_EXTRACT_COW) return KERN_INVALID_ARGUMENT;
  vm_lock_guard g;
  vaddr_t d;
  kern_return_t kr = place(&from->map, src, len, &to->map, dst, &d);
  if (kr == KERN_SUCCESS) kr = vm_map_extract(&from->map, src, len, &to->map, d, mode);
  if (kr == KERN_SUCCESS) *out = d;
  return kr;
}

kern_return_t vm_transfer(vmspace* from, vaddr_t src, vsize_t len, vmspace* to, vaddr_t dst, vm_transfer_mode mode,
                          vaddr_t* out) {
  if (mode != VM_TRANSFER_UNMAP && mode != VM_TRANSFER_ZERO) return KERN_INVALID_ARGUMENT;
  vm_lock_guard g;
  vm_map* fm = &from->map;
  vm_map* tm = &to->map;
  vaddr_t d;
  kern_return_t kr = place(fm, src, len, tm, dst, &d);
  if (kr != KERN_SUCCESS) return kr;
  kr = vm_map_transfer(fm, src, tm, d, len);
  if (kr != KERN_SUCCESS) return kr;
  vm_stat_inc(V_TRANSFERS);
  *out = d;
  if (mode == VM_TRANSFER_UNMAP) return KERN_SUCCESS;
  // Fresh zero-fill memory where the moved entries were, one entry per moved entry (their
  // protections and inheritance).  Entries are available: the moved ones were freed.
  vm_map_entry* e;
  VMRT_ASSERT(vm_map_lookup_entry(tm, d, &e));
  for (; !vm_map_is_end(tm, e) && e->start < d + len; e = e->next) {
    vaddr_t s = src + (e->start - d), t = src + (e->end - d);
    vm_map_entry* z = nullptr;  // not merged while the walk goes on (from == to)
    kr = vm_map_insert(fm, nullptr, 0, s, t, e->protection, e->max_protection,
                       static_cast<std::uint16_t>(MAP_ENTRY_COW | MAP_ENTRY_NOCOALESCE), e->inheritance, &z);
    if (kr != KERN_SUCCESS) return kr;  // the sender's range stays partly unmapped
    z->eflags &= static_cast<std::uint16_t>(~MAP_ENTRY_NOCOALESCE);
    if (fm->pm != nullptr) pmap_reserve(fm->pm, s, t, e->protection);
  }
  return KERN_SUCCESS;
}

}  // namespace vmrt
