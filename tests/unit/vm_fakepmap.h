// vm_fakepmap.h — a recording fake pmap and fake physmem for vm/ unit tests.
//
// Physmem is a plain anonymous mapping; page_address(m) is its frame.  Each fake pmap
// keeps a table of what is mapped at every page of its range (frame, prot) and the
// reservation (allowed accesses) per page; a reverse map per frame serves
// page_protect.  access() emulates the MMU: a missing or insufficient translation calls
// vm_fault() and retries, then reads or writes the frame through the table — so tests
// see exactly what a program would see.
//
// Invariants checked on every call (violations counted in g_fake.violations and
// reported by fake_violations()): entered pages are allocated (not free) and entered
// with no more than the reservation allows; released frames are mapped nowhere.
#pragma once

#include <doctest/doctest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstring>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "vm/pmap.h"
#include "vm/vm_fault.h"
#include "vm/vm_lock.h"
#include "vm/vm_map.h"
#include "vm/vm_object.h"
#include "vm/vm_page.h"
#include "vm/vm_stats.h"
#include "vm/vmspace.h"

namespace fake {

using namespace vmrt;

struct pte {
  std::uint32_t frame_plus1 = 0;  // 0 = not mapped
  vm_prot_t prot = 0;
  vm_prot_t reserve = 0;
};

struct fpmap {
  pmap pm{};
  std::vector<pte> ptes;
  std::uint64_t enters = 0, entered_pages = 0, removes = 0, protects = 0;
};

struct state {
  char* physmem = nullptr;
  frame_t nframes = 0;
  std::vector<std::set<std::pair<fpmap*, vaddr_t>>> rmap;
  std::set<fpmap*> pmaps;
  std::vector<std::string> violations;
  std::uint64_t released = 0, zeroed = 0, page_protects = 0;
};
inline state g_fake;

inline fpmap* F(pmap* pm) { return static_cast<fpmap*>(pm->md); }
inline pte& P(fpmap* f, vaddr_t va) { return f->ptes[(va - f->pm.min) >> PAGE_SHIFT]; }

inline void violation(const std::string& s) { g_fake.violations.push_back(s); }

inline void unmap_one(fpmap* f, vaddr_t va) {
  pte& p = P(f, va);
  if (p.frame_plus1 != 0) {
    g_fake.rmap[p.frame_plus1 - 1].erase({f, va});
    p.frame_plus1 = 0;
    p.prot = 0;
  }
}

inline kern_return_t op_enter(pmap* pm, vaddr_t va, vm_page* const* pages, vsize_t n, vm_prot_t prot) {
  fpmap* f = F(pm);
  f->enters++;
  f->entered_pages += n;
  vm_stat_inc(V_PMAP_ENTER);
  vm_stat_add(V_PMAP_ENTER_PAGES, static_cast<std::int64_t>(n));
  if (!vm_lock_owned()) violation("enter without the VM lock");
  for (vsize_t i = 0; i < n; ++i) {
    vaddr_t a = va + i * PAGE_SIZE;
    if (a < pm->min || a >= pm->max) {
      violation("enter outside pmap range");
      continue;
    }
    vm_page* m = pages[i];
    if (m->queue == PQ_FREE || m->object == nullptr) violation("enter of a free/ownerless page");
    if ((prot & ~P(f, a).reserve) != 0) violation("enter with more than the reservation allows");
    unmap_one(f, a);
    frame_t fr = vm_page_frame(m);
    P(f, a).frame_plus1 = fr + 1;
    P(f, a).prot = prot;
    g_fake.rmap[fr].insert({f, a});
  }
  return KERN_SUCCESS;
}

inline void op_remove(pmap* pm, vaddr_t s, vaddr_t e) {
  fpmap* f = F(pm);
  f->removes++;
  vm_stat_inc(V_PMAP_REMOVE);
  for (vaddr_t a = s; a < e; a += PAGE_SIZE) unmap_one(f, a);
}

inline void op_protect(pmap* pm, vaddr_t s, vaddr_t e, vm_prot_t prot) {
  fpmap* f = F(pm);
  f->protects++;
  vm_stat_inc(V_PMAP_PROTECT);
  for (vaddr_t a = s; a < e; a += PAGE_SIZE) {
    pte& p = P(f, a);
    if (p.frame_plus1 == 0) continue;
    if (prot == VM_PROT_NONE) unmap_one(f, a);
    else p.prot &= prot;
  }
}

inline void op_reserve(pmap* pm, vaddr_t s, vaddr_t e, vm_prot_t prot) {
  fpmap* f = F(pm);
  for (vaddr_t a = s; a < e; a += PAGE_SIZE) {
    P(f, a).reserve = prot;
    // A translation never allows more than the reservation.
    if (P(f, a).frame_plus1 != 0 && (P(f, a).prot & ~prot) != 0) P(f, a).prot &= prot;
  }
}

inline void op_page_protect(vm_page* m, vm_prot_t prot) {
  g_fake.page_protects++;
  vm_stat_inc(V_PMAP_PAGE_PROTECT);
  frame_t fr = vm_page_frame(m);
  auto copy = g_fake.rmap[fr];
  for (auto& [f, va] : copy) {
    if (prot == VM_PROT_NONE) unmap_one(f, va);
    else P(f, va).prot &= prot;
  }
}

inline bool op_is_modified(vm_page*) { return true; }
inline void op_clear_modify(vm_page*) {}
inline bool op_ts_referenced(vm_page*) { return false; }
inline void* op_page_address(const vm_page* m) {
  return g_fake.physmem + static_cast<std::size_t>(vm_page_frame(m)) * PAGE_SIZE;
}
inline void op_zero_pages(vm_page* m, vsize_t n) {
  g_fake.zeroed += n;
  std::memset(op_page_address(m), 0, n * PAGE_SIZE);
}
inline void op_release_pages(vm_page* m, vsize_t n) {
  g_fake.released += n;
  frame_t f0 = vm_page_frame(m);
  for (vsize_t i = 0; i < n; ++i)
    if (!g_fake.rmap[f0 + i].empty()) violation("released a frame that is still mapped");
  madvise(op_page_address(m), n * PAGE_SIZE, MADV_DONTNEED);
}

inline const pmap_ops kOps = {op_enter,        op_remove,       op_protect,        op_reserve,
                              op_page_protect, op_is_modified,  op_clear_modify,   op_ts_referenced,
                              op_page_address, op_zero_pages,   op_release_pages};

// Once per process: physmem of nframes frames, the page array, the machine ops.
inline void boot(frame_t nframes = 32768) {
  if (g_fake.physmem != nullptr) return;
  void* p = mmap(nullptr, static_cast<std::size_t>(nframes) * PAGE_SIZE, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  REQUIRE(p != MAP_FAILED);
  g_fake.physmem = static_cast<char*>(p);
  g_fake.nframes = nframes;
  g_fake.rmap.resize(nframes);
  pmap_set_machine_ops(&kOps);
  REQUIRE(vm_page_startup(nframes) == KERN_SUCCESS);
}

// A fake pmap over [min, min + size).
inline fpmap* new_pmap(vaddr_t min, vsize_t size) {
  auto* f = new fpmap;
  f->pm.ops = &kOps;
  f->pm.min = min;
  f->pm.max = min + size;
  f->pm.md = f;
  f->ptes.resize(size >> PAGE_SHIFT);
  g_fake.pmaps.insert(f);
  return f;
}

inline void delete_pmap(fpmap* f) {
  for (vaddr_t a = f->pm.min; a < f->pm.max; a += PAGE_SIZE) unmap_one(f, a);
  g_fake.pmaps.erase(f);
  delete f;
}

// Emulated access: true when it succeeded (after faults), false when vm_fault refused
// (*kr gets the status).
inline bool access(vmspace* vs, vaddr_t va, bool write, std::uint8_t* byte, kern_return_t* kr = nullptr) {
  fpmap* f = F(vmspace_pmap(vs));
  vm_prot_t need = write ? VM_PROT_WRITE : VM_PROT_READ;
  for (int tries = 0; tries < 4; ++tries) {
    pte& p = P(f, trunc_page(va));
    if (p.frame_plus1 != 0 && (p.prot & need) == need) {
      char* mem = g_fake.physmem + static_cast<std::size_t>(p.frame_plus1 - 1) * PAGE_SIZE + (va & PAGE_MASK);
      if (write) *mem = static_cast<char>(*byte);
      else *byte = static_cast<std::uint8_t>(*mem);
      return true;
    }
    kern_return_t r = vm_fault(vs, va, write ? VM_FAULT_WRITE : VM_FAULT_READ);
    if (r != KERN_SUCCESS) {
      if (kr != nullptr) *kr = r;
      return false;
    }
  }
  violation("access did not converge after faults");
  return false;
}

inline std::uint8_t rd(vmspace* vs, vaddr_t va) {
  std::uint8_t b = 0xEE;
  bool ok = access(vs, va, false, &b);
  CHECK(ok);
  return b;
}
inline void wr(vmspace* vs, vaddr_t va, std::uint8_t b) {
  bool ok = access(vs, va, true, &b);
  CHECK(ok);
}

inline bool mapped(vmspace* vs, vaddr_t va) { return P(F(vmspace_pmap(vs)), va).frame_plus1 != 0; }
inline vm_prot_t mapped_prot(vmspace* vs, vaddr_t va) { return P(F(vmspace_pmap(vs)), va).prot; }
inline frame_t mapped_frame(vmspace* vs, vaddr_t va) { return P(F(vmspace_pmap(vs)), va).frame_plus1 - 1; }
// The bytes of the frame mapped at va (which must be mapped).
inline const char* page_bytes(vmspace* vs, vaddr_t va) {
  return g_fake.physmem + static_cast<std::size_t>(mapped_frame(vs, trunc_page(va))) * PAGE_SIZE;
}

inline std::int64_t ctr(vm_counter c) { return vm_stat_get(c); }

// Whole-system check: every map consistent, and every live object's ref_count exactly
// equals the entries referencing it in all maps + its shadows + `extra` holders.
inline std::string check_all(const std::map<vm_object*, int>& extra = {}) {
  vm_lock_guard g;
  int fds[2];
  if (pipe(fds) != 0) return "pipe";
  std::string err;
  std::map<vm_object*, int> refs;
  for (vm_map* m = vm_map_first_map(); m != nullptr; m = m->all_next) {
    if (!vm_map_check(m, fds[1])) err = "vm_map_check failed";
    for (vm_map_entry* e = vm_map_first(m); !vm_map_is_end(m, e); e = e->next)
      if (e->object != nullptr && !(e->eflags & MAP_ENTRY_IS_SUBMAP)) refs[e->object]++;
  }
  for (vm_object* o = vm_object_first(); o != nullptr; o = vm_object_next(o)) {
    int want = refs[o] + o->shadow_count;
    auto it = extra.find(o);
    if (it != extra.end()) want += it->second;
    if (o->ref_count != want && err.empty())
      err = "object " + std::to_string(o->id) + " ref_count " + std::to_string(o->ref_count) + " != " +
            std::to_string(want);
    if (!vm_object_check(o, fds[1]) && err.empty()) err = "vm_object_check failed";
  }
  close(fds[1]);
  char buf[512];
  ssize_t n = read(fds[0], buf, sizeof buf - 1);
  close(fds[0]);
  if (n > 0) {
    buf[n] = 0;
    err += std::string(": ") + buf;
  }
  if (!g_fake.violations.empty()) err += " fake pmap: " + g_fake.violations.front();
  return err;
}

// The plain-copy model of what a fork child gets for one page (model tests' pages have
// `shared`, `inh` and a shared_ptr `cell`): NONE a hole, ZERO fresh zeros, SHARE the same
// cell (and the parent's page is shared memory from then on), COPY a copy of the cell.
template <class Page>
Page model_fork_page(Page& p) {
  Page q = p;
  switch (p.inh) {
    case VM_INHERIT_NONE: q = Page{}; break;
    case VM_INHERIT_ZERO: q.cell = std::make_shared<int>(0); q.shared = false; break;
    case VM_INHERIT_SHARE: q.shared = true; p.shared = true; break;
    case VM_INHERIT_COPY: q.cell = std::make_shared<int>(*p.cell); q.shared = false; break;
  }
  return q;
}

// A vmspace over a fresh fake pmap.
struct space {
  fpmap* f;
  vmspace* vs;
  space(vaddr_t base, vsize_t size) {
    boot();
    f = new_pmap(base, size);
    REQUIRE(vmspace_create(base, base + size, &f->pm, &vs) == KERN_SUCCESS);
  }
  explicit space(vmspace* forked, fpmap* fp) : f(fp), vs(forked) {}
  ~space() {
    vmspace_destroy(vs);
    delete_pmap(f);
  }
  vaddr_t mmap(vsize_t len, vm_prot_t prot = VM_PROT_DEFAULT, std::uint32_t flags = VM_MMAP_PRIVATE,
               vaddr_t addr = 0, kern_return_t* krp = nullptr) {
    vm_mmap_request r{};
    r.addr = addr;
    r.len = len;
    r.prot = prot;
    r.maxprot = VM_PROT_ALL;
    r.flags = flags;
    vaddr_t out = 0;
    kern_return_t kr = vm_mmap(vs, r, &out);
    if (krp != nullptr) *krp = kr;
    else REQUIRE(kr == KERN_SUCCESS);
    return out;
  }
};

// Fork parent into a new fake pmap over [base, base + size).
inline space* fork_into(space& parent, vaddr_t base, vsize_t size) {
  fpmap* f = new_pmap(base, size);
  vmspace* c = nullptr;
  REQUIRE(vmspace_fork(parent.vs, &f->pm, &c) == KERN_SUCCESS);
  return new space(c, f);
}

}  // namespace fake
