// vm_fault_hold.cpp — hold the pages of a system call's buffer (see vm_fault_hold.h).
#include "vm/vm_fault_hold.h"

#include "vm/vm_fault.h"
#include "vm/vm_lock.h"
#include "vm/vm_map.h"
#include "vm/vm_object.h"
#include "vm/vm_page.h"
#include "vm/vm_stats.h"
#include "vm/vm_swapout.h"
#include "vmspace_impl.h"

namespace vmrt {
namespace {

// The entry mapping va in map, one submap level followed (as vm_fault does); null when none.
vm_map_entry* entry_at(vm_map* map, vaddr_t va) VMRT_REQUIRES(g_vm_lock) {
  vm_map_entry* e;
  if (!vm_map_lookup_entry(map, va, &e)) return nullptr;
  if ((e->eflags & MAP_ENTRY_IS_SUBMAP) != 0 && (!vm_map_lookup_entry(e->submap, va, &e) ||
                                                 (e->eflags & MAP_ENTRY_IS_SUBMAP) != 0))
    return nullptr;
  return e;
}

// The resident page the kernel's access at va would reach through e: for a write only a
// page of e's own object (a backing page is copy-on-write), for a read the first page of
// the shadow chain.  Null when there is none, or it is busy.
vm_page* visible_page(const vm_map_entry* e, vaddr_t va, vm_prot_t access) VMRT_REQUIRES(g_vm_lock) {
  if (e->object == nullptr) return nullptr;
  vm_pindex_t pindex = atop(va - e->start + e->offset);
  vm_object* owner = nullptr;
  vm_page* m = vm_object_chain_lookup(e->object, pindex, &owner);
  if (m == nullptr || (m->flags & PG_BUSY) != 0) return nullptr;
  if ((access & VM_PROT_WRITE) != 0 && (owner != e->object || (e->eflags & MAP_ENTRY_NEEDS_COPY) != 0)) return nullptr;
  return m;
}

}  // namespace

kern_return_t vm_fault_hold(vmspace* vs, vaddr_t va, vm_prot_t access, vm_hold_mapped_fn mapped, vm_page** out) {
  VM_LOCK_ASSERT();
  *out = nullptr;
  vm_map* map = &vs->map;
  if (va < map->min || va >= map->max) return KERN_INVALID_ADDRESS;
  vm_map_entry* e = entry_at(map, va);
  if (e == nullptr) return KERN_INVALID_ADDRESS;
  if ((e->eflags & MAP_ENTRY_HOSTMEM) != 0) return (access & e->protection) == access ? KERN_SUCCESS : KERN_PROTECTION_FAILURE;
  if ((access & e->protection) != access) return KERN_PROTECTION_FAILURE;
  // Resident and mapped for this access already: wiring keeps it so (the pageout daemon and
  // the reference scan take only pages on the paging queues, which a wired page has left).
  if (vm_page* m = visible_page(e, va, access); m != nullptr && mapped(va, access)) {
    vm_page_wire(m);
    *out = m;
    vm_stat_inc(V_HOLD_PAGES);
    return KERN_SUCCESS;
  }
  // Fault it in and wire it, as mlock does; the lock may have been dropped meanwhile, so the
  // page is looked up again.
  vm_swapout_faulted(vs);
  vm_fault_type type = (access & VM_PROT_WRITE) != 0 ? VM_FAULT_WRITE : VM_FAULT_READ;
  kern_return_t kr = vm_fault_locked(map, va, type, VM_FAULT_WIRE, 0, nullptr);
  if (kr != KERN_SUCCESS) return kr;
  e = entry_at(map, va);
  vm_page* m = e != nullptr ? visible_page(e, va, access) : nullptr;
  if (m == nullptr || m->wire_count == 0) return KERN_FAILURE;  // not reached: the fault wired it under the lock
  *out = m;
  vm_stat_inc(V_HOLD_PAGES);
  vm_stat_inc(V_HOLD_FAULTS);
  return KERN_SUCCESS;
}

void vm_fault_unhold(vm_page* const* pages, vsize_t n) {
  VM_LOCK_ASSERT();
  for (vsize_t k = 0; k < n; ++k) {
    vm_page* m = pages[k];
    if (m != nullptr && m->object != nullptr && m->wire_count > 0) vm_page_unwire(m);
  }
}

}  // namespace vmrt
