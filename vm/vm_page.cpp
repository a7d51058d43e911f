// vm_page.cpp — the page array, page allocation, object membership (the paging queues are
// the replacement policy's: vm_pdpolicy_clock.cpp).
#include "vm/vm_page.h"
#include "vm/vm_sys.h"
#include "vm/vm_tables.h"

#include <atomic>
#include <linux/futex.h>
#include <sys/mman.h>

#include "vm/pmap.h"
#include "vm/vm_fail.h"
#include "vm/vm_loan.h"
#include "vm/vm_lock.h"
#include "vm/vm_object.h"
#include "vm/vm_pageout.h"
#include "vm/vm_pager.h"
#include "vm/vm_pdpolicy.h"
#include "vm/vm_phys.h"
#include "vm/vm_reserv.h"
#include "vm/vm_stats.h"

namespace vmrt {

vm_page* vm_page_array = nullptr;
frame_t vm_page_array_size = 0;

namespace {

// Frames freed but not yet given back: one contiguous run [g_pend_first, +g_pend_n).
frame_t g_pend_first = 0;
frame_t g_pend_n = 0;
vm_free_mode g_pend_mode VMRT_GUARDED_BY(g_vm_lock) = VM_FREE_CACHE;  // how the pending run goes back

constexpr frame_t kMaxPendingRun = 1024;

// The free-frame cache (vm_page.h).
frame_t g_cache_limit VMRT_GUARDED_BY(g_vm_lock) = 0;  // most frames kept host-resident while free
frame_t g_cached VMRT_GUARDED_BY(g_vm_lock) = 0;       // free frames not PG_ZERO (host-resident, contents unknown)

void update_cache_stat() VMRT_REQUIRES(g_vm_lock) { vm_stat_set(V_FRAME_CACHE, static_cast<std::int64_t>(g_cached)); }

// Release frames [f0, f0 + n) (free, not mapped) to the host: they read as zeros after.
void release_run(frame_t f0, frame_t n) VMRT_REQUIRES(g_vm_lock) {
  const pmap_ops* ops = pmap_machine_ops();
  if (ops == nullptr || ops->release_pages == nullptr) return;
  ops->release_pages(&vm_page_array[f0], n);
  vm_stat_add(V_PAGES_RELEASED, n);
  vm_stat_inc(V_RELEASE_CALLS);
  for (frame_t k = 0; k < n; ++k) vm_page_array[f0 + k].flags |= PG_ZERO;
}

void update_free_stat() VMRT_REQUIRES(g_vm_lock) {
  vm_stat_set(V_FREE_COUNT, static_cast<std::int64_t>(vm_page_free_count()));
}

// Give the pending run back: the part the free-frame cache has room for stays host-resident
// (not PG_ZERO, counted in g_cached); the rest is released to the host (PG_ZERO).  Then
// every frame goes to its reservation or the buddy allocator.
void flush_pending() VMRT_REQUIRES(g_vm_lock) {
  if (g_pend_n == 0) return;
  frame_t f0 = g_pend_first, n = g_pend_n;
  g_pend_n = 0;
  const pmap_ops* ops = pmap_machine_ops();
  frame_t keep = g_cache_limit > g_cached ? g_cache_limit - g_cached : 0;
  if (g_pend_mode == VM_FREE_RELEASE) keep = 0;
  if (ops == nullptr || ops->release_pages == nullptr) keep = n;  // nothing can release: all stay
  if (keep > n) keep = n;
  g_cached += keep;
  if (keep < n) release_run(f0 + keep, n - keep);
  update_cache_stat();
  frame_t run = 0;
  for (frame_t k = 0; k < n; ++k) {
    vm_page* m = &vm_page_array[f0 + k];
    if (m->reserv != 0) {
      if (run != 0) vm_phys_free_run(f0 + k - run, run);
      run = 0;
      vm_reserv_free_page(m);
    } else {
      run++;
    }
  }
  if (run != 0) vm_phys_free_run(f0 + n - run, run);
}

// Prepare an allocated record for an owner.
void page_init(vm_page* m, unsigned flags) VMRT_REQUIRES(g_vm_lock) {
  if ((m->flags & PG_ZERO) == 0) {  // a cached frame leaves the cache
    VMRT_ASSERT(g_cached > 0);
    g_cached--;
    vm_stat_inc(V_FRAME_CACHE_REUSED);
  }
  m->q_next = m->q_prev = nullptr;
  m->object = nullptr;
  m->pindex = 0;
  m->flags &= PG_ZERO;
  m->wire_count = 0;
  m->queue = PQ_NONE;
  m->act_count = 0;
  if (flags & VM_ALLOC_WIRED) {
    m->wire_count = 1;
    vm_stat_inc(V_WIRE_COUNT);
  }
}

// Zero pages that are not known-zero, in contiguous runs; clear PG_ZERO.  `release`: give
// their host memory back instead of writing zeros (VM_ALLOC_ZERO_RELEASE).
void zero_pages(vm_page** pages, vsize_t n, bool release) VMRT_REQUIRES(g_vm_lock) {
  const pmap_ops* ops = pmap_machine_ops();
  vsize_t k = 0;
  while (k < n) {
    if (pages[k]->flags & PG_ZERO) {
      pages[k]->flags &= static_cast<std::uint16_t>(~PG_ZERO);
      ++k;
      continue;
    }
    vsize_t j = k + 1;
    while (j < n && (pages[j]->flags & PG_ZERO) == 0 && vm_page_frame(pages[j]) == vm_page_frame(pages[j - 1]) + 1) ++j;
    VMRT_ASSERT(ops != nullptr && ops->zero_pages != nullptr);
    if (release && ops->release_pages != nullptr) ops->release_pages(pages[k], j - k);
    else ops->zero_pages(pages[k], j - k);
    vm_stat_add(V_ZFOD_ZEROED, static_cast<std::int64_t>(j - k));
    k = j;
  }
}

// Allocate up to n frames, contiguous when possible, not tied to an object.
vsize_t alloc_frames(vm_object* obj, vm_pindex_t pindex, vsize_t n, unsigned flags, vm_page** out)
    VMRT_REQUIRES(g_vm_lock) {
  vsize_t got = 0;
  bool reclaimed_all = false;
  while (got < n) {
    if (obj != nullptr && (flags & VM_ALLOC_NORESERV) == 0 && vm_reserv_eligible(obj, pindex + got)) {
      vsize_t k = vm_reserv_alloc_run(obj, pindex + got, n - got, out + got);
      if (k != 0) {
        got += k;
        continue;
      }
    }
    // Contiguous buddy run of the rest, halving on failure.
    frame_t want = static_cast<frame_t>(n - got > (1u << (VM_NFREEORDER - 1)) ? (1u << (VM_NFREEORDER - 1)) : n - got);
    vm_page* m = nullptr;
    while (want >= 1) {
      m = vm_phys_alloc_contig(want);
      if (m != nullptr) break;
      want /= 2;
    }
    if (m == nullptr) {
      if (!reclaimed_all && vm_reserv_reclaim_one()) continue;
      reclaimed_all = true;
      break;
    }
    vm_stat_inc(V_CONTIG_ALLOC);
    for (frame_t k = 0; k < want; ++k) out[got++] = m + k;
  }
  return got;
}

}  // namespace

kern_return_t vm_page_startup(frame_t nframes) {
  VMRT_ASSERT(nframes > 0);
  vm_lock_guard g;
  std::size_t bytes = (static_cast<std::size_t>(nframes) * sizeof(vm_page) + 4095) & ~std::size_t{4095};
  void* p = vmrt::sys::table_map(bytes);
  if (p == nullptr) return KERN_RESOURCE_SHORTAGE;
  vm_page_array = static_cast<vm_page*>(p);
  vm_page_array_size = nframes;
  vm_phys_init(nframes);
  if (!vm_reserv_init(nframes)) return KERN_RESOURCE_SHORTAGE;
  vm_pdpolicy_reset();
  g_pend_n = 0;
  g_cached = 0;
  update_cache_stat();
  vm_stat_set(V_PAGE_COUNT, nframes);
  vm_stat_set(V_FREE_COUNT, nframes);
  return KERN_SUCCESS;
}

frame_t vm_page_free_count() VMRT_REQUIRES(g_vm_lock) {
  return vm_phys_free_count() + static_cast<frame_t>(vm_reserv_free_frames()) + g_pend_n;
}

void vm_page_cache_set_limit(frame_t frames) {
  VM_LOCK_ASSERT();
  g_cache_limit = frames;
  if (g_cached > frames) vm_page_cache_trim(frames);
}

frame_t vm_page_cache_limit() VMRT_REQUIRES(g_vm_lock) { return g_cache_limit; }
frame_t vm_page_cache_count() VMRT_REQUIRES(g_vm_lock) { return g_cached; }

namespace {
struct trim_ctx {
  frame_t target;
  frame_t released;
};

// Release the non-PG_ZERO runs of free frames [f, f + n) while the cache is above target.
void trim_block(frame_t f, frame_t n, void* arg) VMRT_REQUIRES(g_vm_lock) {
  auto* c = static_cast<trim_ctx*>(arg);
  frame_t k = 0;
  while (k < n && g_cached > c->target) {
    if (vm_page_array[f + k].flags & PG_ZERO) {
      ++k;
      continue;
    }
    frame_t j = k + 1;
    while (j < n && (vm_page_array[f + j].flags & PG_ZERO) == 0 && j - k < g_cached - c->target) ++j;
    release_run(f + k, j - k);
    g_cached -= j - k;
    c->released += j - k;
    k = j;
  }
}
}  // namespace

frame_t vm_page_cache_trim(frame_t target) {
  VM_LOCK_ASSERT();
  flush_pending();
  trim_ctx c{target, 0};
  if (g_cached > target) vm_phys_foreach_free_block(trim_block, &c);
  if (g_cached > target) vm_reserv_foreach_free_run(trim_block, &c);
  vm_stat_add(V_FRAME_CACHE_TRIMMED, c.released);
  update_cache_stat();
  return c.released;
}

bool vm_page_frame_free(frame_t f) VMRT_REQUIRES(g_vm_lock) {
  if (f >= vm_page_array_size) return false;
  if (f >= vm_phys_bump()) return true;
  if (g_pend_n != 0 && f >= g_pend_first && f - g_pend_first < g_pend_n) return true;
  if (vm_page_array[f].reserv != 0) return vm_reserv_frame_free(f);
  return vm_phys_frame_in_free_block(f);
}

void vm_page_free_flush() {
  VM_LOCK_ASSERT();
  flush_pending();
  update_free_stat();
}

vsize_t vm_page_alloc_run(vm_object* obj, vm_pindex_t pindex, vsize_t n, unsigned flags, vm_page** out) {
  VM_LOCK_ASSERT();
  VMRT_ASSERT(obj != nullptr && n >= 1);
  if (vm_fail_armed() && vm_fail_eval(FP_FRAME, n * PAGE_SIZE)) return 0;  // fault injection: no frames
  flush_pending();
  vsize_t got = alloc_frames(obj, pindex, n, flags, out);
  for (vsize_t k = 0; k < got; ++k) page_init(out[k], flags);
  if (flags & VM_ALLOC_ZERO) zero_pages(out, got, (flags & VM_ALLOC_ZERO_RELEASE) != 0);
  vsize_t ok = 0;
  for (; ok < got; ++ok) {
    if (vm_page_insert(out[ok], obj, pindex + ok) != KERN_SUCCESS) break;
    if ((flags & VM_ALLOC_WIRED) == 0) vm_page_activate(out[ok]);
  }
  for (vsize_t k = ok; k < got; ++k) {  // radix node shortage: give back the rest
    if (out[k]->wire_count) vm_stat_add(V_WIRE_COUNT, -1);
    out[k]->wire_count = 0;
    vm_page_free(out[k]);
  }
  if (ok < got) flush_pending();
  update_free_stat();
  vm_pageout_wakeup_if_short();
  return ok;
}

vm_page* vm_page_alloc(vm_object* obj, vm_pindex_t pindex, unsigned flags) {
  vm_page* m = nullptr;
  return vm_page_alloc_run(obj, pindex, 1, flags, &m) == 1 ? m : nullptr;
}

vm_page* vm_page_alloc_contig(vsize_t n, unsigned flags) {
  VM_LOCK_ASSERT();
  if (vm_fail_armed() && vm_fail_eval(FP_FRAME, n * PAGE_SIZE)) return nullptr;  // fault injection
  flush_pending();
  vm_page* m = vm_phys_alloc_contig(static_cast<frame_t>(n));
  while (m == nullptr && vm_reserv_reclaim_one()) m = vm_phys_alloc_contig(static_cast<frame_t>(n));
  if (m == nullptr) return nullptr;
  vm_stat_inc(V_CONTIG_ALLOC);
  for (vsize_t k = 0; k < n; ++k) page_init(m + k, flags);
  if (flags & VM_ALLOC_ZERO) {
    const pmap_ops* ops = pmap_machine_ops();
    vsize_t k = 0;
    while (k < n) {
      if (m[k].flags & PG_ZERO) {
        m[k].flags &= static_cast<std::uint16_t>(~PG_ZERO);
        ++k;
        continue;
      }
      vsize_t j = k + 1;
      while (j < n && (m[j].flags & PG_ZERO) == 0) ++j;
      ops->zero_pages(m + k, j - k);
      vm_stat_add(V_ZFOD_ZEROED, static_cast<std::int64_t>(j - k));
      k = j;
    }
  }
  update_free_stat();
  return m;
}

void vm_page_free(vm_page* m, vm_free_mode mode) {
  VM_LOCK_ASSERT();
  VMRT_ASSERT(m->queue != PQ_FREE);
  if (m->flags & PG_LOANED) vm_loan_page_freed(m);  // died with its last mapping: no loan left
  if (m->object != nullptr) vm_page_remove(m);
  vm_pdpolicy_dequeue(m);
  if (m->wire_count != 0) {
    vm_stat_add(V_WIRE_COUNT, -1);
    m->wire_count = 0;
  }
  m->flags = 0;
  m->act_count = 0;
  vm_stat_inc(V_PAGES_FREED);
  frame_t f = vm_page_frame(m);
  if (g_pend_n != 0 && f == g_pend_first + g_pend_n && g_pend_n < kMaxPendingRun && mode == g_pend_mode) {
    g_pend_n++;
    return;
  }
  flush_pending();
  g_pend_first = f;
  g_pend_n = 1;
  g_pend_mode = mode;
}

kern_return_t vm_page_insert(vm_page* m, vm_object* obj, vm_pindex_t pindex) {
  VM_LOCK_ASSERT();
  VMRT_ASSERT(m->object == nullptr);
  kern_return_t kr = vm_radix_insert(&obj->rtree, pindex, m);
  if (kr != KERN_SUCCESS) return kr;
  m->object = obj;
  m->pindex = pindex;
  obj->resident_page_count++;
  return KERN_SUCCESS;
}

void vm_page_remove(vm_page* m) {
  VM_LOCK_ASSERT();
  vm_object* obj = m->object;
  VMRT_ASSERT(obj != nullptr);
  vm_page* r = vm_radix_remove(&obj->rtree, m->pindex);
  VMRT_ASSERT(r == m);
  obj->resident_page_count--;
  m->object = nullptr;
}

kern_return_t vm_page_rename(vm_page* m, vm_object* obj, vm_pindex_t pindex) {
  VM_LOCK_ASSERT();
  vm_object* old = m->object;
  vm_pindex_t oldp = m->pindex;
  // Insert first so a radix shortage leaves m where it was.
  kern_return_t kr = vm_radix_insert(&obj->rtree, pindex, m);
  if (kr != KERN_SUCCESS) return kr;
  vm_page* r = vm_radix_remove(&old->rtree, oldp);
  VMRT_ASSERT(r == m);
  old->resident_page_count--;
  obj->resident_page_count++;
  m->object = obj;
  m->pindex = pindex;
  vm_reserv_rename(m, old, oldp);
  // Only the old object's pager knew this page's copy: it dies with the move.
  vm_pager_free_range(old, oldp, oldp + 1);
  if (m->flags & PG_SWAPCOPY) m->flags = static_cast<std::uint16_t>((m->flags & ~PG_SWAPCOPY) | PG_DIRTY);
  return KERN_SUCCESS;
}

vm_page* vm_page_lookup(const vm_object* obj, vm_pindex_t pindex) { return vm_radix_lookup(&obj->rtree, pindex); }

namespace {
std::atomic<std::uint32_t> g_busy_gen{0};     // bumped when busy pages are released
std::atomic<std::uint32_t> g_busy_sleepers{0};
}  // namespace

void vm_page_busy_sleep() {
  VM_LOCK_ASSERT();
  std::uint32_t gen = g_busy_gen.load(std::memory_order_acquire);
  g_busy_sleepers.fetch_add(1, std::memory_order_relaxed);
  vm_lock_release();
  // The releaser bumps the generation under the VM lock, then wakes: a wake between our
  // unlock and the wait changes the word, and FUTEX_WAIT returns at once.
  ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&g_busy_gen), FUTEX_WAIT_PRIVATE, gen, nullptr, nullptr, 0);
  g_busy_sleepers.fetch_sub(1, std::memory_order_relaxed);
  vm_lock_acquire();
}

void vm_page_busy_wakeup() {
  g_busy_gen.fetch_add(1, std::memory_order_release);
  if (g_busy_sleepers.load(std::memory_order_relaxed) != 0)
    ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&g_busy_gen), FUTEX_WAKE_PRIVATE, 0x7fffffff, nullptr, nullptr, 0);
}

void vm_page_unbusy(vm_page* m) {
  VM_LOCK_ASSERT();
  m->flags &= static_cast<std::uint16_t>(~PG_BUSY);
}

void vm_page_unmap_all(vm_page* m) {
  const pmap_ops* ops = pmap_machine_ops();
  if (ops != nullptr && ops->page_protect != nullptr) ops->page_protect(m, VM_PROT_NONE);
}

bool vm_page_reads_zero(const vm_page* m) {
  const auto* w = static_cast<const std::uint64_t*>(pmap_machine_ops()->page_address(m));
  for (std::size_t k = 0; k < PAGE_SIZE / 8; k += 8) {
    if ((w[k] | w[k + 1] | w[k + 2] | w[k + 3] | w[k + 4] | w[k + 5] | w[k + 6] | w[k + 7]) != 0) return false;
  }
  return true;
}

void vm_page_wire(vm_page* m) {
  VM_LOCK_ASSERT();
  if (m->wire_count++ == 0) {
    vm_pdpolicy_dequeue(m);
    vm_stat_inc(V_WIRE_COUNT);
  }
  m->flags &= static_cast<std::uint16_t>(~PG_FREEABLE);  // wired: in use (an MADV_FREE'd page keeps its data)
}

void vm_page_unwire(vm_page* m) {
  VM_LOCK_ASSERT();
  VMRT_ASSERT(m->wire_count > 0);
  if (--m->wire_count == 0) {
    vm_stat_add(V_WIRE_COUNT, -1);
    if (m->object != nullptr) vm_page_activate(m);
  }
}

// The paging queues live in the replacement policy (vm_pdpolicy_clock.cpp); these keep the
// callers' names and assert the lock.
void vm_page_activate(vm_page* m) {
  VM_LOCK_ASSERT();
  vm_pdpolicy_activate(m);
}

void vm_page_deactivate(vm_page* m) {
  VM_LOCK_ASSERT();
  vm_pdpolicy_deactivate(m);
}

void vm_page_dequeue(vm_page* m) {
  VM_LOCK_ASSERT();
  vm_pdpolicy_dequeue(m);
}

std::uint64_t vm_page_queue_count(vm_page_queue q) VMRT_REQUIRES(g_vm_lock) {
  if (q == PQ_ACTIVE) return vm_pdpolicy_active_count();
  if (q == PQ_INACTIVE) return vm_pdpolicy_inactive_count();
  if (q == PQ_LAUNDRY) return vm_pdpolicy_laundry_count();
  return 0;
}

}  // namespace vmrt
