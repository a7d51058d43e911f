// vm_mmap.cpp — the mmap family on a vmspace (FreeBSD vm_mmap.c, NetBSD uvm_mmap.c).
// Statuses follow the table in vmspace.h so the API edge gives Linux's errno.
#include "vm/pmap.h"
#include "vm/vm_fail.h"
#include "vm/vm_fault.h"
#include "vm/vm_lock.h"
#include "vm/vm_map.h"
#include "vm/vm_object.h"
#include "vm/vm_page.h"
#include "vm/vm_pageout.h"
#include "vm/vm_stats.h"
#include "vm/vmspace.h"
#include "vmspace_impl.h"

namespace vmrt {
namespace {

// [addr, addr + round_page(len)) as [*s, *e); false on overflow.
bool range_of(vaddr_t addr, vsize_t len, vaddr_t* s, vaddr_t* e) {
  vsize_t rl = round_page(len);
  if (rl < len) return false;
  vaddr_t end = addr + rl;
  if (end < addr) return false;
  *s = addr;
  *e = end;
  return true;
}

// => vm lock held.  [*s, *t) as range_of(addr, len); true when it does not overflow,
//    lies inside the map and has no hole.
bool mapped_range(vm_map* map, vaddr_t addr, vsize_t len, vaddr_t* s, vaddr_t* t) VMRT_REQUIRES(g_vm_lock) {
  return range_of(addr, len, s, t) && *s >= map->min && *t <= map->max && vm_map_range_covered(map, *s, *t);
}

inline vm_prot_t effective_prot(const vm_map_entry* e, vm_prot_t p) VMRT_REQUIRES(g_vm_lock) {
  return (e->eflags & MAP_ENTRY_NEEDS_COPY) ? static_cast<vm_prot_t>(p & ~VM_PROT_WRITE) : p;
}

// Make [start, end) resident (entry by entry), faulting with `type` or the entry's
// natural access.  Failures stop silently (MAP_POPULATE / WILLNEED are best effort)
// unless wire, where the status is returned.
kern_return_t populate(vm_map* map, vaddr_t start, vaddr_t end, bool wire) VMRT_REQUIRES(g_vm_lock) {
  vaddr_t va = start;
  while (va < end) {
    vm_map_entry* e;
    if (!vm_map_lookup_entry(map, va, &e)) {
      if (vm_map_is_end(map, e->next) || e->next->start >= end) break;
      va = e->next->start;
      continue;
    }
    if ((e->eflags & MAP_ENTRY_IS_SUBMAP) || e->protection == VM_PROT_NONE) {
      if (wire) return KERN_INVALID_ADDRESS;
      va = e->end;
      continue;
    }
    // mlock breaks copy-on-write like Linux (FOLL_WRITE on private writable memory);
    // populate and WILLNEED write-fault only where no copy would be made.
    vm_fault_type type = VM_FAULT_READ;
    if (e->protection & VM_PROT_WRITE) {
      if (wire ? (e->eflags & MAP_ENTRY_COW) != 0 : (e->eflags & MAP_ENTRY_NEEDS_COPY) == 0) type = VM_FAULT_WRITE;
    }
    if (!(e->protection & VM_PROT_READ))
      type = (e->protection & VM_PROT_WRITE) ? VM_FAULT_WRITE : VM_FAULT_EXECUTE;
    vm_fault_result r{};
    kern_return_t kr = vm_fault_locked(map, va, type, wire ? VM_FAULT_WIRE : VM_FAULT_POPULATE, end, &r);
    if (kr != KERN_SUCCESS) return wire ? kr : KERN_SUCCESS;
    vaddr_t next = r.first + ptoa(r.npages);
    va = (wire || next <= va) ? va + PAGE_SIZE : next;
  }
  return KERN_SUCCESS;
}

// Clip entries to [s, t) and call fn(entry) on each (covered range assumed).
template <class Fn>
void for_each_clipped(vm_map* map, vaddr_t s, vaddr_t t, Fn fn) VMRT_REQUIRES(g_vm_lock) {
  vm_map_entry* e;
  if (vm_map_lookup_entry(map, s, &e)) vm_map_clip_start(map, e, s);
  else e = e->next;
  while (!vm_map_is_end(map, e) && e->start < t) {
    vm_map_clip_end(map, e, t);
    fn(e);
    e = e->next;
  }
}

// Merge entries around [s, t) after attribute changes.
void simplify_range(vm_map* map, vaddr_t s, vaddr_t t) VMRT_REQUIRES(g_vm_lock) {
  vm_map_entry* e;
  if (!vm_map_lookup_entry(map, s, &e)) e = e->next;
  if (!vm_map_is_end(map, e) && e->prev != &map->header) e = e->prev;
  while (!vm_map_is_end(map, e) && e->start <= t) {
    e = vm_map_simplify_entry(map, e);
    e = e->next;
  }
}

}  // namespace

kern_return_t vm_mmap(vmspace* vs, const vm_mmap_request& req, vaddr_t* out) {
  vm_stat_inc(V_MMAP_CALLS);
  if (req.len == 0) return KERN_INVALID_ARGUMENT;
  bool priv = (req.flags & VM_MMAP_PRIVATE) != 0, shared = (req.flags & VM_MMAP_SHARED) != 0;
  if (priv == shared) return KERN_INVALID_ARGUMENT;
  if (!page_aligned(req.offset)) return KERN_INVALID_ARGUMENT;
  if ((req.prot & ~VM_PROT_ALL) != 0 || (req.maxprot & ~VM_PROT_ALL) != 0) return KERN_INVALID_ARGUMENT;
  bool fixed = (req.flags & (VM_MMAP_FIXED | VM_MMAP_NOREPLACE)) != 0;
  if (fixed && !page_aligned(req.addr)) return KERN_INVALID_ARGUMENT;
  vsize_t len = round_page(req.len);
  if (len < req.len) return KERN_NO_SPACE;
  if ((req.prot & ~req.maxprot) != 0) return KERN_NO_ACCESS;
  if (vm_fail_armed() && vm_fail_eval(FP_MMAP, len)) return KERN_RESOURCE_SHORTAGE;  // fault injection
  vm_lock_guard g;
  vm_map* map = &vs->map;
  vaddr_t start;
  if (fixed) {
    start = req.addr;
    if (start < map->min || start > map->max || map->max - start < len) return KERN_NO_SPACE;
    if (req.flags & VM_MMAP_NOREPLACE) {
      if (!vm_map_range_free(map, start, start + len)) return KERN_ALREADY_EXISTS;
    } else {
      vm_map_delete(map, start, start + len);
    }
  } else {
    vaddr_t hint = trunc_page(req.addr);
    if (hint >= map->min && hint < map->max && map->max - hint >= len && vm_map_range_free(map, hint, hint + len)) {
      start = hint;
    } else if (vm_map_findspace(map, hint, len, PAGE_SIZE, &start) != KERN_SUCCESS &&
               vm_map_findspace(map, map->min, len, PAGE_SIZE, &start) != KERN_SUCCESS) {
      return KERN_NO_SPACE;
    }
  }
  std::uint16_t eflags = priv ? MAP_ENTRY_COW : 0;
  if (req.flags & VM_MMAP_GROWSDOWN) eflags |= MAP_ENTRY_GROWS_DOWN;
  vm_inherit_t inh = shared ? VM_INHERIT_SHARE : VM_INHERIT_COPY;
  vm_object* obj = req.object;
  if (obj != nullptr) vm_object_reference(obj);
  kern_return_t kr = vm_map_insert(map, obj, obj != nullptr ? req.offset : 0, start, start + len, req.prot,
                                   req.maxprot, eflags, inh);
  if (kr != KERN_SUCCESS) {
    if (obj != nullptr) vm_object_deallocate(obj);
    return kr;
  }
  pmap_reserve(vs->pm, start, start + len, req.prot);
  if ((req.flags & VM_MMAP_POPULATE) && req.prot != VM_PROT_NONE) populate(map, start, start + len, false);
  *out = start;
  return KERN_SUCCESS;
}

kern_return_t vm_munmap(vmspace* vs, vaddr_t addr, vsize_t len) {
  vm_stat_inc(V_MUNMAP_CALLS);
  if (!page_aligned(addr) || len == 0) return KERN_INVALID_ARGUMENT;
  vaddr_t s, t;
  if (!range_of(addr, len, &s, &t)) return KERN_INVALID_ARGUMENT;
  if (vm_fail_armed() && vm_fail_eval(FP_MUNMAP, len)) return KERN_RESOURCE_SHORTAGE;  // fault injection
  vm_lock_guard g;
  if (s < vs->map.min || t > vs->map.max) return KERN_INVALID_ARGUMENT;
  vm_map_delete(&vs->map, s, t);
  return KERN_SUCCESS;
}

kern_return_t vm_mprotect(vmspace* vs, vaddr_t addr, vsize_t len, vm_prot_t prot) {
  vm_stat_inc(V_MPROTECT_CALLS);
  if (!page_aligned(addr) || (prot & ~VM_PROT_ALL) != 0) return KERN_INVALID_ARGUMENT;
  if (len == 0) return KERN_SUCCESS;
  if (vm_fail_armed() && vm_fail_eval(FP_MPROTECT, len)) return KERN_RESOURCE_SHORTAGE;  // fault injection
  vaddr_t s, t;
  vm_lock_guard g;
  vm_map* map = &vs->map;
  if (!mapped_range(map, addr, len, &s, &t)) return KERN_INVALID_ADDRESS;
  vm_map_entry* e;
  vm_map_lookup_entry(map, s, &e);
  for (; !vm_map_is_end(map, e) && e->start < t; e = e->next) {
    if (e->eflags & MAP_ENTRY_IS_SUBMAP) return KERN_INVALID_ADDRESS;
    if ((prot & ~e->max_protection) != 0) return KERN_NO_ACCESS;
  }
  for_each_clipped(map, s, t, [&](vm_map_entry* x) VMRT_REQUIRES(g_vm_lock) { vm_map_entry_protect(map, x, prot); });
  simplify_range(map, s, t);
  return KERN_SUCCESS;
}

void vm_map_entry_protect(vm_map* map, vm_map_entry* x, vm_prot_t prot) {
  vm_prot_t old = x->protection;
  x->protection = prot;
  if ((old & ~prot) != 0 && x->object != nullptr)
    pmap_protect(map->pm, x->start, x->end, effective_prot(x, static_cast<vm_prot_t>(prot & old)));
  pmap_reserve(map->pm, x->start, x->end, prot);
}

kern_return_t vm_madvise(vmspace* vs, vaddr_t addr, vsize_t len, vm_advice_t advice) {
  vm_stat_inc(V_MADVISE_CALLS);
  if (!page_aligned(addr) || advice >= VM_ADVICE_COUNT) return KERN_INVALID_ARGUMENT;
  if (len == 0) return KERN_SUCCESS;
  vaddr_t s, t;
  if (!range_of(addr, len, &s, &t)) return KERN_INVALID_ADDRESS;
  vm_lock_guard g;
  vm_map* map = &vs->map;
  if (s < map->min || t > map->max) return KERN_INVALID_ADDRESS;
  bool holes = !vm_map_range_covered(map, s, t);
  kern_return_t kr = vm_map_advise_locked(map, s, t, advice);
  if (kr != KERN_SUCCESS) return kr;
  return holes ? KERN_INVALID_ADDRESS : KERN_SUCCESS;
}

std::uint64_t vm_map_willneed_locked(vm_map* map, vaddr_t s, vaddr_t t) VMRT_REQUIRES(g_vm_lock) {
  std::uint64_t started = 0;
  vaddr_t va = trunc_page(s);
  while (va < t) {
    // Looked up afresh after every page-in: the map may have changed while it read.
    vm_map_entry* e;
    if (!vm_map_lookup_entry(map, va, &e)) {
      if (vm_map_is_end(map, e->next) || e->next->start >= t) break;
      va = e->next->start;
      continue;
    }
    vaddr_t end = e->end < t ? e->end : t;
    if (e->eflags & MAP_ENTRY_IS_SUBMAP) {
      vm_map_entry* se;
      if (!vm_map_lookup_entry(e->submap, va, &se)) {
        vm_map_entry* nx = se->next;
        va = vm_map_is_end(e->submap, nx) || nx->start >= end ? end : nx->start;
        continue;
      }
      e = se;
      if (e->end < end) end = e->end;
    }
    if (e->object == nullptr || !(e->protection & VM_PROT_READ) || (e->eflags & MAP_ENTRY_HOSTMEM)) {
      va = end;
      continue;
    }
    vaddr_t x = va;
    for (; x < end; x += PAGE_SIZE) {
      vm_chain_hit hit{nullptr, 0, nullptr};
      if (vm_object_chain_find(e->object, atop(x - e->start + e->offset), &hit) == CHAIN_STORED) break;
    }
    if (x >= end) {
      va = end;
      continue;
    }
    vm_fault_result r{x, 1};
    if (vm_fault_locked(map, x, VM_FAULT_READ, VM_FAULT_NORMAL, 0, &r) != KERN_SUCCESS) break;
    ++started;
    vm_stat_inc(V_WILLNEED_PAGEINS);
    vaddr_t next = r.first + ptoa(r.npages);
    va = next > x ? next : x + PAGE_SIZE;
  }
  return started;
}

std::uint64_t vm_willneed_pageout(vmspace* vs, vaddr_t addr, vsize_t len) {
  vm_lock_guard g;
  vaddr_t s = trunc_page(addr), t = addr + len < addr ? vs->map.max : round_page(addr + len);
  if (s < vs->map.min) s = vs->map.min;
  if (t > vs->map.max) t = vs->map.max;
  return s < t ? vm_map_willneed_locked(&vs->map, s, t) : 0;
}

kern_return_t vm_map_advise_locked(vm_map* map, vaddr_t s, vaddr_t t, vm_advice_t advice) {
  // Refusals first (Linux: EINVAL for DONTNEED, FREE, COLD and PAGEOUT on locked memory,
  // FREE on shared memory, COLD and PAGEOUT on device memory: can_madv_lru_vma's VM_PFNMAP).
  vm_map_entry* e;
  if (!vm_map_lookup_entry(map, s, &e)) e = e->next;
  for (vm_map_entry* x = e; !vm_map_is_end(map, x) && x->start < t; x = x->next) {
    if (kAdviceRefusedOnWired[advice] && x->wired_count != 0) return KERN_INVALID_ARGUMENT;
    if (advice == VM_ADVICE_FREE && (x->eflags & MAP_ENTRY_COW) == 0) return KERN_INVALID_ARGUMENT;
    if ((advice == VM_ADVICE_COLD || advice == VM_ADVICE_PAGEOUT) && x->object != nullptr &&
        x->object->type == OBJT_DEVICE)
      return KERN_INVALID_ARGUMENT;
  }
  switch (advice) {
    case VM_ADVICE_NORMAL:
    case VM_ADVICE_RANDOM:
    case VM_ADVICE_SEQUENTIAL:
      for_each_clipped(map, s, t, [&](vm_map_entry* x) VMRT_REQUIRES(g_vm_lock) { x->advice = advice; });
      simplify_range(map, s, t);
      break;
    case VM_ADVICE_WILLNEED:
      populate(map, s, t, false);
      break;
    case VM_ADVICE_DONTNEED:
    case VM_ADVICE_FREE:
      // Private memory reads zeros afterwards; shared memory keeps its pages (only the
      // mappings go).  FREE on private anonymous memory this mapping alone holds is lazy
      // (vm_object_madvise_free): its pages stay until the pageout daemon wants them, and
      // a page used again before that keeps its data.  Elsewhere FREE is served like
      // DONTNEED (eager: an object shared or shadowing older contents would show those
      // contents, not zeros, once a lazily freed page went).
      for_each_clipped(map, s, t, [&](vm_map_entry* x) VMRT_REQUIRES(g_vm_lock) {
        if ((x->eflags & MAP_ENTRY_IS_SUBMAP) || x->object == nullptr) return;
        pmap_remove(map->pm, x->start, x->end);
        if ((x->eflags & MAP_ENTRY_COW) == 0) return;
        vm_object* obj = x->object;
        const bool alone = (obj->flags & OBJ_ANON) && (obj->ref_count == 1 || (obj->flags & OBJ_ONEMAPPING)) &&
                           obj->backing_object == nullptr && obj->shadow_count == 0 &&
                           !(x->eflags & MAP_ENTRY_NEEDS_COPY);
        const vm_pindex_t lo = atop(x->offset), hi = atop(x->offset + (x->end - x->start));
        if (alone && advice == VM_ADVICE_FREE) {
          vm_stat_add(V_MADV_FREE_PAGES, static_cast<std::int64_t>(vm_object_madvise_free(obj, lo, hi)));
        } else if (alone) {
          vm_object_page_remove(obj, lo, hi, false);
        } else {
          // The object is shared or shadows older contents: give this range fresh memory;
          // a private file mapping gets the file's pages again (its vnode object, copy-on-write).
          vm_object* bottom = obj;
          vm_ooffset_t off = x->offset;
          while (bottom->backing_object != nullptr) {
            off += ptoa(bottom->backing_offset);
            bottom = bottom->backing_object;
          }
          if (bottom->type == OBJT_VNODE) {
            vm_object_reference(bottom);
            x->object = bottom;
            x->offset = off;
            x->eflags |= MAP_ENTRY_NEEDS_COPY;
          } else {
            x->object = nullptr;
            x->offset = 0;
            x->eflags &= static_cast<std::uint16_t>(~MAP_ENTRY_NEEDS_COPY);
          }
          vm_object_deallocate(obj);
        }
      });
      simplify_range(map, s, t);
      break;
    case VM_ADVICE_COLD:
      vm_stat_add(V_MADV_COLD_PAGES, static_cast<std::int64_t>(vm_pageout_range(map, s, t, VM_PAGEOUT_RANGE_COLD, false)));
      break;
    case VM_ADVICE_PAGEOUT:
      // The laundering writes drop the VM lock (the pages busy): faults elsewhere go on.
      vm_stat_add(V_MADV_PAGEOUT_PAGES, static_cast<std::int64_t>(vm_pageout_range(map, s, t, VM_PAGEOUT_RANGE_EVICT, true)));
      break;
    default:
      return KERN_INVALID_ARGUMENT;
  }
  return KERN_SUCCESS;
}

kern_return_t vm_mincore(vmspace* vs, vaddr_t addr, vsize_t len, std::uint8_t* vec) {
  if (!page_aligned(addr)) return KERN_INVALID_ARGUMENT;
  if (len == 0) return KERN_SUCCESS;
  vaddr_t s, t;
  vm_lock_guard g;
  vm_map* map = &vs->map;
  if (!mapped_range(map, addr, len, &s, &t)) return KERN_INVALID_ADDRESS;
  vm_map_incore_locked(map, s, t, vec);
  return KERN_SUCCESS;
}

void vm_map_incore_locked(vm_map* map, vaddr_t s, vaddr_t t, std::uint8_t* vec) {
  vm_map_entry* e = nullptr;
  for (vaddr_t va = s; va < t; va += PAGE_SIZE) {
    if (e == nullptr || va >= e->end) vm_map_lookup_entry(map, va, &e);
    std::uint8_t v = 0;
    if (!(e->eflags & MAP_ENTRY_IS_SUBMAP) && e->object != nullptr &&
        vm_object_chain_lookup(e->object, atop(va - e->start + e->offset), nullptr) != nullptr)
      v = 1;
    vec[atop(va - s)] = v;
  }
}

kern_return_t vm_minherit(vmspace* vs, vaddr_t addr, vsize_t len, vm_inherit_t inherit) {
  if (!page_aligned(addr) || inherit > VM_INHERIT_ZERO) return KERN_INVALID_ARGUMENT;
  if (len == 0) return KERN_SUCCESS;
  vaddr_t s, t;
  vm_lock_guard g;
  vm_map* map = &vs->map;
  if (!mapped_range(map, addr, len, &s, &t)) return KERN_INVALID_ADDRESS;
  for_each_clipped(map, s, t, [&](vm_map_entry* x) VMRT_REQUIRES(g_vm_lock) { x->inheritance = inherit; });
  simplify_range(map, s, t);
  return KERN_SUCCESS;
}

kern_return_t vm_mlock(vmspace* vs, vaddr_t addr, vsize_t len) {
  if (len == 0) return KERN_SUCCESS;
  if (vm_fail_armed() && vm_fail_eval(FP_MLOCK, len)) return KERN_RESOURCE_SHORTAGE;  // fault injection
  vaddr_t s, t;
  vm_lock_guard g;
  vm_map* map = &vs->map;
  if (!mapped_range(map, trunc_page(addr), len + (addr - trunc_page(addr)), &s, &t)) return KERN_INVALID_ADDRESS;
  return vm_map_wire_locked(map, s, t);
}

// Wired pages may take at most this share of physical memory (FreeBSD's vm.max_user_wired
// keeps the same kind of bound): a program that mlocks more than memory holds would leave
// the pageout daemon nothing to free, and a later fault of its own (or of another vmspace)
// would find no frame.  Past it, mlock fails with EAGAIN, as Linux's does past
// RLIMIT_MEMLOCK.
constexpr vm_pindex_t kMaxWiredDivisor = 3;

namespace {
// An entry with no page wired: unlocked, or locked lazily.
bool unwired(const vm_map_entry* x) VMRT_REQUIRES(g_vm_lock) {
  return x->wired_count == 0 || (x->eflags & MAP_ENTRY_LOCKED_LAZY) != 0;
}
// Lock x without wiring a page of it (MAP_ENTRY_LOCKED_LAZY).
void lock_lazily(vm_map_entry* x) VMRT_REQUIRES(g_vm_lock) {
  x->wired_count = 1;
  x->eflags |= MAP_ENTRY_LOCKED_LAZY;
}
}  // namespace

kern_return_t vm_map_wire_locked(vm_map* map, vaddr_t s, vaddr_t t) {
  vm_map_entry* e;
  vm_map_lookup_entry(map, s, &e);
  vm_pindex_t want = 0;
  for (vm_map_entry* x = e; !vm_map_is_end(map, x) && x->start < t; x = x->next) {
    if ((x->eflags & MAP_ENTRY_IS_SUBMAP) || x->protection == VM_PROT_NONE) return KERN_INVALID_ADDRESS;
    if (unwired(x)) want += atop((x->end < t ? x->end : t) - (x->start > s ? x->start : s));
  }
  std::int64_t wired = vm_stat_get(V_WIRE_COUNT);
  if (static_cast<vm_pindex_t>(wired > 0 ? wired : 0) + want > vm_page_array_size / kMaxWiredDivisor) {
    vm_stat_inc(V_WIRE_REFUSED);
    return KERN_RESOURCE_SHORTAGE;
  }
  kern_return_t kr = KERN_SUCCESS;
  for_each_clipped(map, s, t, [&](vm_map_entry* x) VMRT_REQUIRES(g_vm_lock) {
    if (!unwired(x)) return;
    if (kr != KERN_SUCCESS) {  // after a failure: locked, not populated
      lock_lazily(x);
      return;
    }
    x->eflags &= static_cast<std::uint16_t>(~MAP_ENTRY_LOCKED_LAZY);
    x->wired_count = 0;
    kern_return_t r = populate(map, x->start, x->end, true);
    if (r != KERN_SUCCESS) {
      kr = r;
      vm_map_entry_unwire(x);  // the pages wired so far in this entry stay resident, unwired
      lock_lazily(x);
      return;
    }
    x->wired_count = 1;
  });
  simplify_range(map, s, t);
  // A page no pager can supply (a file page past the end: the access would be SIGBUS) is
  // Linux's EFAULT from populating, which mlock(2) answers with ENOMEM; only a shortage is
  // EAGAIN (mm/mlock.c, __mlock_posix_error_return).
  if (kr == KERN_SUCCESS || kr == KERN_PAGER_ABSENT || kr == KERN_MEMORY_ERROR) return kr;
  return KERN_RESOURCE_SHORTAGE;
}

kern_return_t vm_munlock(vmspace* vs, vaddr_t addr, vsize_t len) {
  if (len == 0) return KERN_SUCCESS;
  vaddr_t s, t;
  vm_lock_guard g;
  vm_map* map = &vs->map;
  if (!mapped_range(map, trunc_page(addr), len + (addr - trunc_page(addr)), &s, &t)) return KERN_INVALID_ADDRESS;
  vm_map_unwire_locked(map, s, t);
  return KERN_SUCCESS;
}

void vm_map_unwire_locked(vm_map* map, vaddr_t s, vaddr_t t) {
  for_each_clipped(map, s, t, [&](vm_map_entry* x) VMRT_REQUIRES(g_vm_lock) {
    if (x->wired_count == 0) return;
    vm_map_entry_unwire(x);
    x->wired_count = 0;
    x->eflags &= static_cast<std::uint16_t>(~MAP_ENTRY_LOCKED_LAZY);
  });
  simplify_range(map, s, t);
}

void vm_map_lock_lazy_locked(vm_map* map, vaddr_t s, vaddr_t t) {
  for_each_clipped(map, s, t, [&](vm_map_entry* x) VMRT_REQUIRES(g_vm_lock) {
    if (x->wired_count == 0 && (x->eflags & MAP_ENTRY_IS_SUBMAP) == 0) lock_lazily(x);
  });
  simplify_range(map, s, t);
}

kern_return_t vm_map_populate_locked(vm_map* map, vaddr_t s, vaddr_t t) { return populate(map, s, t, false); }

}  // namespace vmrt
