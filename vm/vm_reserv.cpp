// vm_reserv.cpp — 2 MiB reservations for anonymous objects.
#include "vm/vm_reserv.h"
#include "vm/vm_sys.h"
#include "vm/vm_tables.h"

#include <sys/mman.h>

#include "vm/vm_lock.h"
#include "vm/vm_object.h"
#include "vm/vm_page.h"
#include "vm/vm_phys.h"
#include "vm/vm_radix.h"
#include "vm/vm_stats.h"

namespace vmrt {
namespace {

vm_reserv* g_reserv = nullptr;      // one per 512-frame block [constant pointer]
std::uint64_t g_nreserv = 0;        // records
vm_reserv* g_lru_head VMRT_GUARDED_BY(g_vm_lock) = nullptr;  // partially populated, most recent first
vm_reserv* g_lru_tail = nullptr;
std::uint64_t g_active VMRT_GUARDED_BY(g_vm_lock) = 0;
std::uint64_t g_free_in_reserv VMRT_GUARDED_BY(g_vm_lock) = 0;  // unpopulated frames of active reservations

void lru_unlink(vm_reserv* rv) VMRT_REQUIRES(g_vm_lock) {
  if (!rv->on_lru) return;
  if (rv->lru_prev != nullptr) rv->lru_prev->lru_next = rv->lru_next;
  else g_lru_head = rv->lru_next;
  if (rv->lru_next != nullptr) rv->lru_next->lru_prev = rv->lru_prev;
  else g_lru_tail = rv->lru_prev;
  rv->lru_next = rv->lru_prev = nullptr;
  rv->on_lru = false;
}

void lru_push_head(vm_reserv* rv) VMRT_REQUIRES(g_vm_lock) {
  lru_unlink(rv);
  rv->lru_prev = nullptr;
  rv->lru_next = g_lru_head;
  if (g_lru_head != nullptr) g_lru_head->lru_prev = rv;
  else g_lru_tail = rv;
  g_lru_head = rv;
  rv->on_lru = true;
}

inline bool pop_test(const vm_reserv* rv, unsigned i) VMRT_REQUIRES(g_vm_lock) {
  return (rv->popmap[i / 64] >> (i % 64)) & 1;
}
inline void pop_set(vm_reserv* rv, unsigned i) VMRT_REQUIRES(g_vm_lock) {
  rv->popmap[i / 64] |= std::uint64_t{1} << (i % 64);
}
inline void pop_clear(vm_reserv* rv, unsigned i) VMRT_REQUIRES(g_vm_lock) {
  rv->popmap[i / 64] &= ~(std::uint64_t{1} << (i % 64));
}

// The reservation for (obj, window of pindex), found through a resident neighbour.
vm_reserv* find(vm_object* obj, vm_pindex_t pindex) VMRT_REQUIRES(g_vm_lock) {
  vm_pindex_t base = pindex & ~(VM_RESERV_NPAGES - 1);
  vm_page* m = vm_radix_lookup_le(&obj->rtree, pindex);
  if (m != nullptr && m->pindex >= base && m->reserv != 0) {
    vm_reserv* rv = vm_reserv_of(m);
    if (rv->inuse && rv->object == obj && rv->pindex == base) return rv;
  }
  m = vm_radix_lookup_ge(&obj->rtree, pindex);
  if (m != nullptr && m->pindex < base + VM_RESERV_NPAGES && m->reserv != 0) {
    vm_reserv* rv = vm_reserv_of(m);
    if (rv->inuse && rv->object == obj && rv->pindex == base) return rv;
  }
  return nullptr;
}

vm_reserv* create(vm_object* obj, vm_pindex_t base) VMRT_REQUIRES(g_vm_lock) {
  vm_page* m = vm_phys_alloc(VM_RESERV_ORDER);
  if (m == nullptr) return nullptr;
  frame_t f = vm_page_frame(m);
  vm_reserv* rv = &g_reserv[f >> VM_RESERV_ORDER];
  VMRT_ASSERT(!rv->inuse);
  rv->object = obj;
  rv->pindex = base;
  rv->first = f;
  rv->popcnt = 0;
  rv->inuse = true;
  for (auto& w : rv->popmap) w = 0;
  for (vm_pindex_t k = 0; k < VM_RESERV_NPAGES; ++k) vm_page_array[f + k].reserv = 1;
  g_active++;
  g_free_in_reserv += VM_RESERV_NPAGES;
  lru_push_head(rv);
  vm_stat_inc(V_RESERV_ALLOC);
  return rv;
}

void release_whole(vm_reserv* rv) VMRT_REQUIRES(g_vm_lock) {
  lru_unlink(rv);
  for (vm_pindex_t k = 0; k < VM_RESERV_NPAGES; ++k) vm_page_array[rv->first + k].reserv = 0;
  rv->inuse = false;
  rv->object = nullptr;
  g_active--;
  g_free_in_reserv -= VM_RESERV_NPAGES;
  vm_phys_free(&vm_page_array[rv->first], VM_RESERV_ORDER);
  vm_stat_inc(V_RESERV_FREED);
}

}  // namespace

bool vm_reserv_init(frame_t nframes) VMRT_REQUIRES(g_vm_lock) {
  g_nreserv = (nframes + VM_RESERV_NPAGES - 1) / VM_RESERV_NPAGES;
  std::size_t bytes = (g_nreserv * sizeof(vm_reserv) + 4095) & ~std::size_t{4095};
  if (bytes == 0) bytes = 4096;
  void* p = vmrt::sys::table_map(bytes);
  if (p == nullptr) return false;
  g_reserv = static_cast<vm_reserv*>(p);
  g_lru_head = g_lru_tail = nullptr;
  g_active = 0;
  g_free_in_reserv = 0;
  return true;
}

vm_reserv* vm_reserv_of(const vm_page* m) { return &g_reserv[vm_page_frame(m) >> VM_RESERV_ORDER]; }

bool vm_reserv_eligible(const vm_object* obj, vm_pindex_t pindex) VMRT_REQUIRES(g_vm_lock) {
  if ((obj->flags & OBJ_ANON) == 0) return false;
  vm_pindex_t base = pindex & ~(VM_RESERV_NPAGES - 1);
  return base + VM_RESERV_NPAGES <= obj->size;
}

vsize_t vm_reserv_alloc_run(vm_object* obj, vm_pindex_t pindex, vsize_t n, vm_page** out) {
  VM_LOCK_ASSERT();
  vm_pindex_t base = pindex & ~(VM_RESERV_NPAGES - 1);
  vm_reserv* rv = find(obj, pindex);
  if (rv == nullptr) rv = create(obj, base);
  if (rv == nullptr) return 0;
  vsize_t got = 0;
  for (vm_pindex_t p = pindex; got < n && p < base + VM_RESERV_NPAGES; ++p) {
    unsigned i = static_cast<unsigned>(p - base);
    if (pop_test(rv, i)) break;
    pop_set(rv, i);
    rv->popcnt++;
    g_free_in_reserv--;
    vm_page* m = &vm_page_array[rv->first + i];
    VMRT_ASSERT(m->object == nullptr && m->queue == PQ_NONE && m->reserv != 0);
    out[got++] = m;
  }
  if (rv->popcnt == VM_RESERV_NPAGES) lru_unlink(rv);
  else lru_push_head(rv);
  vm_stat_add(V_RESERV_PAGES, static_cast<std::int64_t>(got));
  return got;
}

void vm_reserv_free_page(vm_page* m) {
  VM_LOCK_ASSERT();
  vm_reserv* rv = vm_reserv_of(m);
  VMRT_ASSERT(rv->inuse && m->reserv != 0);
  unsigned i = static_cast<unsigned>(vm_page_frame(m) - rv->first);
  VMRT_ASSERT(pop_test(rv, i));
  pop_clear(rv, i);
  rv->popcnt--;
  g_free_in_reserv++;
  if (rv->popcnt == 0) {
    release_whole(rv);
  } else if (!rv->on_lru) {
    lru_push_head(rv);
  }
}

void vm_reserv_rename(vm_page* m, const vm_object* old_obj, vm_pindex_t old_pindex) VMRT_REQUIRES(g_vm_lock) {
  if (m->reserv == 0) return;
  vm_reserv* rv = vm_reserv_of(m);
  if (!rv->inuse || rv->object != old_obj) return;
  vm_pindex_t old_base = old_pindex & ~(VM_RESERV_NPAGES - 1);
  if (rv->pindex != old_base) return;
  vm_pindex_t shift = m->pindex - old_pindex;  // modular
  if ((shift & (VM_RESERV_NPAGES - 1)) == 0 && (m->object->flags & OBJ_ANON) != 0) {
    rv->object = m->object;
    rv->pindex = m->pindex & ~(VM_RESERV_NPAGES - 1);
  } else {
    rv->object = nullptr;  // orphan: no further allocation from it; frees still tracked
  }
}

bool vm_reserv_reclaim_one() {
  VM_LOCK_ASSERT();
  vm_reserv* rv = g_lru_tail;
  if (rv == nullptr) return false;
  lru_unlink(rv);
  // Break: populated frames stay with their pages (no longer reserved); the others go free.
  frame_t run_start = 0, run_len = 0;
  for (vm_pindex_t k = 0; k < VM_RESERV_NPAGES; ++k) {
    vm_page* m = &vm_page_array[rv->first + k];
    m->reserv = 0;
    if (pop_test(rv, static_cast<unsigned>(k))) {
      if (run_len != 0) vm_phys_free_run(run_start, run_len);
      run_len = 0;
    } else {
      if (run_len == 0) run_start = rv->first + static_cast<frame_t>(k);
      run_len++;
    }
  }
  if (run_len != 0) vm_phys_free_run(run_start, run_len);
  g_free_in_reserv -= VM_RESERV_NPAGES - rv->popcnt;
  g_active--;
  rv->inuse = false;
  rv->object = nullptr;
  vm_stat_inc(V_RESERV_BROKEN);
  return true;
}

bool vm_reserv_frame_free(frame_t f) VMRT_REQUIRES(g_vm_lock) {
  const vm_reserv* rv = &g_reserv[f >> VM_RESERV_ORDER];
  if (!rv->inuse) return false;
  return !pop_test(rv, static_cast<unsigned>(f - rv->first));
}

void vm_reserv_foreach_free_run(void (*fn)(frame_t first, frame_t n, void* arg), void* arg) VMRT_REQUIRES(g_vm_lock) {
  // Every partially populated reservation is on the LRU; full ones have no free frame.
  for (vm_reserv* rv = g_lru_head; rv != nullptr; rv = rv->lru_next) {
    unsigned k = 0;
    while (k < VM_RESERV_NPAGES) {
      if (pop_test(rv, k)) {
        ++k;
        continue;
      }
      unsigned j = k + 1;
      while (j < VM_RESERV_NPAGES && !pop_test(rv, j)) ++j;
      fn(rv->first + k, j - k, arg);
      k = j;
    }
  }
}

std::uint64_t vm_reserv_active() VMRT_REQUIRES(g_vm_lock) { return g_active; }
std::uint64_t vm_reserv_free_frames() VMRT_REQUIRES(g_vm_lock) { return g_free_in_reserv; }

}  // namespace vmrt
