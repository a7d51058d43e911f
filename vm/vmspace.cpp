// vmspace.cpp — address spaces: create, destroy, fork, reports, check.
#include "vm/vmspace.h"

#include <cstring>

#include "vm/pmap.h"
#include "vm/vm_fault.h"
#include "vm/vm_loan.h"
#include "vm/vm_lock.h"
#include "vm/vm_map.h"
#include "vm/vm_map_extract.h"
#include "vm/vm_object.h"
#include "vm/vm_out.h"
#include "vm/vm_page.h"
#include "vm/vm_radix.h"
#include "vm/vm_swapout.h"
#include "vm/vm_stats.h"
#include "vm/vm_zone.h"
#include "vm/vnode_pager.h"
#include "vmspace_impl.h"

namespace vmrt {

vmspace_tunables g_vmspace_tunables;

namespace {

vm_zone g_vmspace_zone = VM_ZONE_INIT("VMSPACE", sizeof(vmspace), 0);
std::uint64_t g_vmspace_ids VMRT_GUARDED_BY(g_vm_lock) = 1;

VMRT_LARGE_BSS vm_page* g_prefault_run[kFaultMaxRun] VMRT_GUARDED_BY(g_vm_lock);

// Entries sparser than this (pages in the entry per resident page in the chain) are not
// prefaulted: the walk would cost more than the faults it saves.
constexpr vm_pindex_t kPrefaultSparse = 8;

// Fork prefault (the host kernel copies PTEs at fork): enter the pages visible through obj's
// chain at [offset, offset + (ce - cs)) read-only at [cs, ce) in the child's pmap, one lazy
// enter per frame-contiguous run (no page-table fill: that would cost ~0.15 us a page at
// fork; a first read is a host minor fault the host resolves alone).  A child read then takes no fault, and a child write is a
// protection fault resolved in the faulting thread (not a userfaultfd missing-page event).
// Residency as the VM sees it (mincore, object counts) is unchanged: only translations are
// added.  A host refusal only ends the prefault.
//  => VM lock held; pm's reservation for [cs, ce) already set.
void fork_prefault(pmap* pm, vm_object* obj, vm_ooffset_t offset, vaddr_t cs, vaddr_t ce, vm_prot_t prot)
    VMRT_REQUIRES(g_vm_lock) {
  prot = static_cast<vm_prot_t>(prot & ~VM_PROT_WRITE);
  if (pm == nullptr || obj == nullptr || (prot & VM_PROT_READ) == 0) return;
  const vm_pindex_t p0 = atop(offset), n = atop(ce - cs);
  std::uint64_t resident = 0;
  for (vm_object* o = obj; o != nullptr; o = o->backing_object) resident += o->resident_page_count;
  if (resident == 0 || n > kPrefaultSparse * resident + kFaultMaxRun) return;
  const bool single = obj->backing_object == nullptr;
  vsize_t k = 0;          // pages in the pending run
  vm_pindex_t run_i = 0;  // entry page index of the run's first page
  std::int64_t entered = 0;
  auto flush = [&]() -> bool {
    if (k == 0) return true;
    kern_return_t kr = pmap_enter_lazy(pm, cs + ptoa(run_i), g_prefault_run, k, prot);
    entered += static_cast<std::int64_t>(k);
    k = 0;
    return kr == KERN_SUCCESS;
  };
  vm_pindex_t i = 0;
  while (i < n) {
    vm_page* m;
    if (single) {
      m = vm_radix_lookup_ge(&obj->rtree, p0 + i);
      if (m == nullptr || m->pindex >= p0 + n) break;
      i = m->pindex - p0;
    } else {
      m = vm_object_chain_lookup(obj, p0 + i, nullptr);
      if (m == nullptr) {
        if (!flush()) break;
        ++i;
        continue;
      }
    }
    bool extends = k != 0 && run_i + k == i && k < kFaultMaxRun &&
                   vm_page_frame(m) == vm_page_frame(g_prefault_run[k - 1]) + 1;
    if (!extends) {
      if (!flush()) {
        k = 0;
        break;
      }
      run_i = i;
    }
    g_prefault_run[k++] = m;
    ++i;
  }
  flush();
  vm_stat_add(V_FORK_PREFAULT_PAGES, entered);
}

void prot_str(vm_prot_t p, char* s) {
  s[0] = (p & VM_PROT_READ) ? 'r' : '-';
  s[1] = (p & VM_PROT_WRITE) ? 'w' : '-';
  s[2] = (p & VM_PROT_EXECUTE) ? 'x' : '-';
  s[3] = '\0';
}

}  // namespace

kern_return_t vmspace_create(vaddr_t min, vaddr_t max, pmap* pm, vmspace** out) {
  if (!page_aligned(min) || !page_aligned(max) || min >= max || pm == nullptr) return KERN_INVALID_ARGUMENT;
  vm_lock_guard g;
  auto* vs = vm_zone_new<vmspace>(&g_vmspace_zone);
  if (vs == nullptr) return KERN_RESOURCE_SHORTAGE;
  vm_map_init(&vs->map, min, max, pm);
  vs->pm = pm;
  vs->id = g_vmspace_ids++;
  vm_swapout_attach(vs);
  pmap_reserve(pm, min, max, VM_PROT_NONE);
  *out = vs;
  return KERN_SUCCESS;
}

void vmspace_destroy(vmspace* vs) {
  if (vs == nullptr) return;
  vm_lock_guard g;
  vm_swapout_detach(vs);
  vm_map_deinit(&vs->map);
  vm_zone_free(&g_vmspace_zone, vs);
}

vaddr_t vmspace_min(const vmspace* vs) { return vs->map.min; }
vaddr_t vmspace_max(const vmspace* vs) { return vs->map.max; }
pmap* vmspace_pmap(vmspace* vs) { return vs->pm; }

kern_return_t vmspace_fork(vmspace* parent, pmap* child_pm, vmspace** out) {
  if (child_pm == nullptr) return KERN_INVALID_ARGUMENT;
  vm_lock_guard g;
  vm_map* pmap_ = &parent->map;
  vaddr_t cmin = child_pm->min, cmax = cmin + (pmap_->max - pmap_->min);
  if (!page_aligned(cmin) || cmax <= cmin || child_pm->max < cmax) return KERN_INVALID_ARGUMENT;
  auto* vs = vm_zone_new<vmspace>(&g_vmspace_zone);
  if (vs == nullptr) return KERN_RESOURCE_SHORTAGE;
  vm_map_init(&vs->map, cmin, cmax, child_pm);
  vs->pm = child_pm;
  vs->id = g_vmspace_ids++;
  vm_swapout_attach(vs);
  pmap_reserve(child_pm, cmin, cmax, VM_PROT_NONE);
  vm_map* cm = &vs->map;
  const vaddr_t delta = cmin - pmap_->min;  // modular
  kern_return_t kr = KERN_SUCCESS;
  for (vm_map_entry* e = vm_map_first(pmap_); !vm_map_is_end(pmap_, e) && kr == KERN_SUCCESS; e = e->next) {
    if (e->eflags & MAP_ENTRY_IS_SUBMAP) continue;
    vaddr_t cs = e->start + delta, ce = e->end + delta;
    vm_map_entry* ne = nullptr;
    bool prefault = false;  // COW-shared: the parent's pages are entered read-only in the child
    switch (e->inheritance) {
      case VM_INHERIT_NONE:
        continue;
      case VM_INHERIT_ZERO:
        kr = vm_map_entry_insert_like(cm, e, nullptr, 0, cs,
                                      static_cast<std::uint16_t>((e->eflags & ~MAP_ENTRY_NEEDS_COPY) | MAP_ENTRY_COW),
                                      &ne);
        break;
      case VM_INHERIT_SHARE:
        kr = vm_map_entry_share(pmap_, e, cm, cs, &ne);
        break;
      case VM_INHERIT_COPY:
        kr = vm_map_entry_cow(pmap_, e, cm, cs, &ne, &prefault);
        break;
    }
    if (kr == KERN_SUCCESS && prefault && g_vmspace_tunables.fork_prefault)
      fork_prefault(child_pm, e->object, e->offset, cs, ce, e->protection);
  }
  if (kr != KERN_SUCCESS) {
    vm_swapout_detach(vs);
    vm_map_deinit(cm);
    vm_zone_free(&g_vmspace_zone, vs);
    return kr;
  }
  vm_stat_inc(V_FORKS);
  *out = vs;
  return KERN_SUCCESS;
}

void vmspace_report_procstat(const vmspace* cvs, int fd) {
  auto* vs = const_cast<vmspace*>(cvs);
  vm_lock_guard g;
  vm_fd_out<> o(fd);
  vm_swapout_info si{};
  vm_swapout_get_info(vs, &si);
  o.str("vmspace ").u(vs->id).str(si.swapped ? ": swapped out" : ": in core").str(", idle ").u(si.idle_ms).str(" ms, ");
  o.u(si.swapouts).str(" swapouts (").u(si.pages_out).str(" pages), ").u(si.swapins).str(" swapins");
  std::uint64_t loaned = 0, borrowed = 0;
  vm_loan_counts(&vs->map, &loaned, &borrowed);
  if (loaned != 0 || borrowed != 0) o.str(", ").u(loaned).str(" pages loaned, ").u(borrowed).str(" borrowed");
  o.ch('\n');
  o.str("             START                END PRT    RES   PRES  REF  SHD DPTH FLAG TP PATH\n");
  for (vm_map_entry* e = vm_map_first(&vs->map); !vm_map_is_end(&vs->map, e); e = e->next) {
    char prt[4];
    prot_str(e->protection, prt);
    unsigned pres = 0;
    unsigned res = vm_map_entry_resident(e, &pres);
    char flags[6] = "-----";
    if (e->eflags & MAP_ENTRY_COW) flags[0] = 'C';
    if (e->eflags & MAP_ENTRY_NEEDS_COPY) flags[1] = 'N';
    if (e->wired_count != 0) flags[2] = 'W';
    if (e->eflags & MAP_ENTRY_GROWS_DOWN) flags[3] = 'D';
    if (e->inheritance == VM_INHERIT_SHARE) flags[4] = 'S';
    else if (e->inheritance == VM_INHERIT_NONE) flags[4] = 'n';
    else if (e->inheritance == VM_INHERIT_ZERO) flags[4] = 'z';
    const char* tp = "--";
    const char* path = "";  // a file mapping's name (FreeBSD's PATH column: the bottom object's vnode)
    int ref = 0, shd = 0;
    unsigned depth = 0;
    if (e->eflags & MAP_ENTRY_IS_SUBMAP) {
      tp = "sm";
    } else if (e->eflags & MAP_ENTRY_HOSTMEM) {
      tp = "hm";  // host memory (vm_heap, rt_mmap): resident = what the host holds
      const pmap_ops* ops = pmap_machine_ops();
      if (ops != nullptr && ops->host_resident != nullptr) res = static_cast<unsigned>(atop(ops->host_resident(e->start, e->end)));
      pres = 0;
      if (e->object != nullptr && e->object->type == OBJT_VNODE) {  // a file the host maps (its page cache)
        tp = "vn";
        ref = e->object->ref_count;
        path = vnode_object_name(e->object);
      }
    } else if (e->object != nullptr) {
      tp = kPagerOps[e->object->type]->tag;
      ref = e->object->ref_count;
      shd = e->object->shadow_count;
      depth = vm_object_chain_depth(e->object);
      const vm_object* bottom = e->object;
      while (bottom->backing_object != nullptr) bottom = bottom->backing_object;
      if (bottom->type == OBJT_VNODE) {
        tp = "vn";
        path = vnode_object_name(bottom);
      }
    }
    o.spaces(2).hex(e->start, 16).spaces(1).hex(e->end, 16).ch(' ').str(prt);
    o.u(res, 7).u(pres, 7).i(ref, 5).i(shd, 5).u(depth, 5).ch(' ').str(flags).ch(' ').str(tp);
    if (*path != '\0') o.ch(' ').str(path);
    o.ch('\n');
  }
}

kern_return_t vmspace_check(const vmspace* cvs, int fd) {
  auto* vs = const_cast<vmspace*>(cvs);
  vm_lock_guard g;
  return vm_map_check(&vs->map, fd) && vm_loan_check(fd) ? KERN_SUCCESS : KERN_FAILURE;
}

}  // namespace vmrt
