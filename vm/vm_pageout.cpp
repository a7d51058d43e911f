// vm_pageout.cpp — the pageout daemon and direct reclaim (see vm_pageout.h).
#include "vm/vm_pageout.h"

#include <atomic>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "vm/pmap.h"
#include "vm/swap_pager.h"
#include "vm/vm_fault.h"
#include "vm/vm_lock.h"
#include "vm/vm_fail.h"
#include "vm/vm_map.h"
#include "vm/vm_object.h"
#include "vm/vm_page.h"
#include "vm/vm_pager.h"
#include "vm/vm_pdpolicy.h"
#include "vm/vm_radix.h"
#include "vm/vm_stats.h"
#include "vm/vm_swapout.h"
#include "vm/vm_fork_store.h"

namespace vmrt {
namespace {

// Read by every fork child (vm_pageout_fork_child): on the fork data page, where a child
// touches nothing it would not touch anyway.
VMRT_FORK_DATA std::atomic<bool> g_enabled{false};
frame_t g_free_target = 0;               // [constant after init]
std::atomic<std::uint32_t> g_wake{0};     // the daemon's wait word: bumped to wake it
VMRT_FORK_DATA std::atomic<bool> g_daemon_asleep{false};
std::atomic<unsigned> g_in_flight{0};     // pager I/O in progress with the VM lock dropped

// Largest number of pages one policy call may look at.
constexpr unsigned kScanChunk = 64;
// Victims unmapped together (vm_pageout_reclaim): one host batch of PTE drops each.
constexpr unsigned kEvictBatch = kPagerMaxRun;
// The free minimum is this fraction of the free target (vm_pageout_daemon_loop).
constexpr frame_t kFreeMinDiv = 4;
// The daemon's back-off after a pass that freed nothing, doubled while passes stay
// fruitless and nothing changed, up to the cap (reclaim_state, vm_pageout_daemon_loop).
constexpr long kBackoffFirstNs = 20L * 1000 * 1000;
constexpr long kBackoffMaxNs = 1000L * 1000 * 1000;
// An idle daemon looks again this often even unwoken (a wakeup can race its going to sleep).
constexpr long kIdleRecheckNs = 1000L * 1000 * 1000;

frame_t free_min() { return g_free_target / kFreeMinDiv; }

// The daemon is woken, and goes back to sleep, only below this (FreeBSD's
// v_pageout_wakeup_thresh): halfway between the minimum and the target, so that a pass
// reclaims a batch of at least that gap.  Woken at the target itself, the daemon ran a pass
// for every few frames a fault took: a fork child reading a 160 MB heap through 128M woke it
// 97 k times for 347 k frames freed (3.6 a pass, each a futex wake, a switch to the daemon
// and a policy scan under the VM lock); a process paging randomly through 64M, 15 a pass.
frame_t wake_below() { return free_min() + (g_free_target - free_min()) / 2; }

bool referenced(vm_page* m) {
  const pmap_ops* ops = pmap_machine_ops();
  return ops != nullptr && ops->ts_referenced != nullptr && ops->ts_referenced(m);
}
constexpr vm_pdpolicy_env kEnv{referenced};

// Can the pageout daemon take m at all?
bool pageable(const vm_page* m) VMRT_REQUIRES(g_vm_lock) {
  // (Anonymous pages, and the vnode pager's file pages: clean, freed without a write.)
  return m->object != nullptr && ((m->object->flags & OBJ_ANON) != 0 || m->object->type == OBJT_VNODE) && m->wire_count == 0 &&
         (m->flags & (PG_BUSY | PG_FICTITIOUS | PG_LOANED)) == 0;  // a loaned page stays (vm_loan.h)
}

// Pages the daemon frees without a write, never laundered: a current copy in the pager
// (PG_SWAPCOPY), or contents the program gave up with MADV_FREE and has not used since
// (PG_FREEABLE).
constexpr std::uint16_t kNoWrite = PG_SWAPCOPY | PG_FREEABLE;

// Would m join a laundering cluster?  Dirty (no current copy), pageable, and cold (inactive,
// or waiting in the laundry).
bool cluster_mate(const vm_page* m) VMRT_REQUIRES(g_vm_lock) {
  return m != nullptr && pageable(m) && (m->flags & kNoWrite) == 0 &&
         (m->queue == PQ_INACTIVE || m->queue == PQ_LAUNDRY);
}

// Launder the dirty victim m and its cluster; returns frames freed (0 when the swap device
// refused: the pages go back to the queues).  => VM lock held; may drop it (may_unlock).
frame_t launder(vm_page* m, bool may_unlock, bool* store_full) VMRT_REQUIRES(g_vm_lock) {
  vm_object* obj = m->object;
  vm_page* run[kPagerMaxRun];
  // Gather the run [lo, hi) of cluster mates around m's index.
  vm_pindex_t p = m->pindex, lo = p, hi = p + 1;
  while (hi - lo < kPagerMaxRun && hi < obj->size && cluster_mate(vm_page_lookup(obj, hi))) ++hi;
  while (hi - lo < kPagerMaxRun && lo > 0 && cluster_mate(vm_page_lookup(obj, lo - 1))) --lo;
  unsigned n = static_cast<unsigned>(hi - lo);
  for (unsigned k = 0; k < n; ++k) {
    run[k] = vm_page_lookup(obj, lo + k);
    vm_pdpolicy_dequeue(run[k]);  // m too, when it did not come from the policy's scan
    run[k]->flags |= PG_BUSY;
  }
  // No access from here on: what is written is what the program wrote.  One batch of
  // host invalidations for the cluster (a madvise and a TLB shootdown a page before: 172 k
  // for scenario paging's bash string at 16M).
  pmap_page_unmap_run(run, n);
  vm_object_reference(obj);
  vm_pager_io_enter();
  vm_stat_inc(V_PD_LAUNDRY_WRITES);
  vm_pager_result rt[kPagerMaxRun];
  vm_pager_for_put(obj)->put_pages(obj, run, n, VM_PAGER_PUT_NONE, may_unlock, rt);
  frame_t freed = 0;
  for (unsigned k = 0; k < n; ++k) {
    vm_page* q = run[k];
    vm_page_unbusy(q);
    if (q->flags & PG_RELEASED) {  // died while written: its new copy dies with it
      vm_pager_free_range(obj, q->pindex, q->pindex + 1);
      vm_page_free(q);
      vm_stat_inc(V_PD_REDIRTIED);
      continue;
    }
    if (rt[k] != VM_PAGER_OK) {
      if (rt[k] == VM_PAGER_FULL) *store_full = true;
      vm_pdpolicy_activate(q);
      continue;
    }
    vm_fault_readaround_miss(q);
    vm_page_free(q);
    ++freed;
    vm_stat_inc(V_PD_LAUNDERED);
  }
  vm_pager_io_exit();
  vm_page_busy_wakeup();
  vm_object_deallocate(obj);
  return freed;
}

// Can m go without a store to write it to?  Clean, or reading as zeros in an object with
// nothing behind it (evict checks the zeros again once the page is unmapped: this read,
// while the program may still write, only picks the candidates).  => VM lock held.
bool goes_without_store(const vm_page* m) VMRT_REQUIRES(g_vm_lock) {
  return (m->flags & kNoWrite) != 0 || (m->object->backing_object == nullptr && vm_page_reads_zero(m));
}

// A page the daemon may take now with no store: pageable and needing no write.
//  => VM lock held (the policy calls it during its scan).
bool takeable_now(const vm_page* m) VMRT_REQUIRES(g_vm_lock) { return pageable(m) && goes_without_store(m); }

// Take the pageable page m (off its queue or not): a clean page is freed, a page that
// reads as zeros in an object with nothing behind it is freed, a dirty one is laundered
// with its cluster, or with `defer` only put on the laundry queue (the caller writes the
// laundry in clusters: launder_first).  Returns frames freed (0: kept, back on the active
// queue: nowhere to launder to, or the store refused it; or deferred).
//  => VM lock held; may drop it (may_unlock).
frame_t evict(vm_page* m, bool no_store, bool may_unlock, bool* store_full, bool defer = false)
    VMRT_REQUIRES(g_vm_lock) {
  if (m->flags & kNoWrite) {
    const vm_counter counter = (m->flags & PG_FREEABLE) ? V_PD_FREEABLE_FREED : V_PD_CLEAN_FREED;
    vm_pdpolicy_dequeue(m);
    vm_page_unmap_all(m);
    vm_fault_readaround_miss(m);
    vm_page_free(m);
    vm_stat_inc(counter);
    return 1;
  }
  // A dirty page that reads as zeros in an object with nothing behind it is what a
  // zero-fill fault would make again: it goes without a write or a record (fault-around
  // leaves such pages; a program's calloc'd memory too).  With nowhere to launder to, a page
  // is unmapped for the check only when it reads as zeros while still mapped: one that holds
  // data stays mapped (a whole-vmspace swapout at --swap 0 unmapped every page of the
  // program this way, kept them all, and the program faulted each back in).
  if (m->object->backing_object == nullptr && (!no_store || vm_page_reads_zero(m))) {
    vm_page_unmap_all(m);  // first: a write after the check must fault
    if (vm_page_reads_zero(m)) {
      vm_pdpolicy_dequeue(m);
      vm_pager_free_range(m->object, m->pindex, m->pindex + 1);
      vm_page_free(m);
      vm_stat_inc(V_PD_ZERO_FREED);
      return 1;
    }
  }
  if (no_store) {  // nowhere to launder to
    vm_pdpolicy_activate(m);
    return 0;
  }
  if (defer) {
    vm_pdpolicy_launder(m);
    return 0;
  }
  return launder(m, may_unlock, store_full);
}

// Write the laundry's oldest page with its cluster (its dirty neighbours in the laundry or
// on the inactive queue: the scan's victims arrive in the order a stream touched them, so
// the laundry holds runs of neighbours and one pwritev takes up to kPagerMaxRun of them).
// A laundry page referenced since it was chosen goes back to the active queue unwritten.
// Returns frames freed; the laundry's head page leaves the laundry either way.
//  => VM lock held, laundry not empty; may drop the lock (may_unlock).
frame_t launder_first(bool may_unlock, bool* store_full) VMRT_REQUIRES(g_vm_lock) {
  vm_page* m = vm_pdpolicy_laundry_first();
  if (!pageable(m) || (m->flags & kNoWrite) || referenced(m)) {
    vm_pdpolicy_activate(m);
    vm_stat_inc(V_PD_LAUNDRY_REACT);
    return 0;
  }
  return launder(m, may_unlock, store_full);
}

// ---- the pages of a range (vm_pageout_range) ---------------------------------------------

// May vm_pageout_range visit e's pages at all?
bool range_entry(const vm_map_entry* e) VMRT_REQUIRES(g_vm_lock) {
  return (e->eflags & (MAP_ENTRY_IS_SUBMAP | MAP_ENTRY_HOSTMEM)) == 0 && e->wired_count == 0 && e->object != nullptr &&
         e->object->type != OBJT_DEVICE;
}

// The first page of [va, end) (inside e) that e shows and owns alone; *at gets its address.
// Owned alone: every object from e's down to the page's is referenced once (by e, or by the
// shadow above it); e's own object may instead be flagged OBJ_ONEMAPPING (clips of one
// private mapping each map their own indices).  The chain is searched object by object down
// to the first one referenced more than once (nothing below it is e's alone), each by its
// radix tree up to the best candidate so far; a backing object's page counts only where
// the chain shows it (not hidden by a copy, resident or stored, above it).  Null when there
// is none; *shared is set when the search stopped at an object referenced more than once.
//  => VM lock held.
vm_page* next_own_page(const vm_map_entry* e, vaddr_t va, vaddr_t end, vaddr_t* at, bool* shared)
    VMRT_REQUIRES(g_vm_lock) {
  vm_object* top = e->object;
  const vm_pindex_t lo = atop(va - e->start + e->offset), hi = atop(end - e->start + e->offset);
  vm_page* best = nullptr;
  vm_pindex_t best_idx = hi;  // e's object's index of the best candidate
  vm_pindex_t off = 0;        // o's index = e's object's index + off
  bool alone = top->ref_count == 1 || (top->flags & OBJ_ONEMAPPING) != 0;
  for (vm_object* o = top; o != nullptr;) {
    if (!alone) {
      *shared = true;
      break;
    }
    for (vm_page* m = vm_radix_lookup_ge(&o->rtree, lo + off); m != nullptr && m->pindex < best_idx + off;
         m = vm_radix_lookup_ge(&o->rtree, m->pindex + 1)) {
      if (o == top || vm_object_chain_lookup(top, m->pindex - off, nullptr) == m) {
        best = m;
        best_idx = m->pindex - off;
        break;
      }
    }
    off += o->backing_offset;
    o = o->backing_object;
    alone = o != nullptr && o->ref_count == 1;
  }
  if (best != nullptr) *at = e->start + ptoa(best_idx) - e->offset;
  return best;
}

// Waits for pager I/O one walk may make (vm_pageout_range): pages of a heap being paged
// under pressure are passed over otherwise (the pageout daemon's write holds a reference on
// their object while it runs with the lock dropped: scenario madv_pageout left 1600 of
// 2048 pages resident after MADV_PAGEOUT now and then).  Bounded: a truly shared object
// while other threads page all the time must not hold the walk up for long.
constexpr unsigned kRangeIoWaits = 64;

// Walk the own pages of [s, t) in address order, calling f(m) on each pageable one; f may
// drop the VM lock (every entry is looked up again by address after each page), and the
// walk drops it to wait for pager I/O in flight (kRangeIoWaits).  Returns the sum of f's
// results.  => VM lock held.
template <class F> frame_t for_each_own_page(vm_map* map, vaddr_t s, vaddr_t t, F&& f) VMRT_REQUIRES(g_vm_lock) {
  frame_t done = 0;
  unsigned waits = 0;
  vaddr_t va = s;
  while (va < t) {
    vm_map_entry* e = nullptr;
    if (!vm_map_lookup_entry(map, va, &e)) {
      e = e->next;  // the entry after the hole (lookup gave the one before, or the header)
      if (vm_map_is_end(map, e) || e->start >= t) break;
      va = e->start;
    }
    vaddr_t end = e->end < t ? e->end : t, at = end;
    bool shared = false;
    vm_page* m = range_entry(e) ? next_own_page(e, va, end, &at, &shared) : nullptr;
    if (m == nullptr && shared && waits < kRangeIoWaits && vm_pageout_in_flight()) {
      // Perhaps only a pager's reference for I/O in flight: wait for it, look again.
      ++waits;
      pmap_update();  // reference clears made so far: never left deferred across the unlock
      vm_page_busy_sleep();
      continue;
    }
    if (m == nullptr) {
      va = end;
      continue;
    }
    va = at + PAGE_SIZE;  // before f: m may go, and the map change while the lock is dropped
    if (pageable(m)) done += f(m);
  }
  return done;
}

}  // namespace

frame_t vm_pageout_evict(vm_page* m, bool may_unlock) {
  VM_LOCK_ASSERT();
  if (!vm_pageout_enabled() || !pageable(m)) return 0;
  bool store_full = false;
  frame_t freed = evict(m, !swap_pager_active(), may_unlock, &store_full);
  vm_stat_add(V_PD_FREED, static_cast<std::int64_t>(freed));
  return freed;
}

frame_t vm_pageout_range(vm_map* map, vaddr_t s, vaddr_t t, vm_pageout_range_op op, bool may_unlock) {
  VM_LOCK_ASSERT();
  // Cold first, in both cases: pages that lose their reference go to the inactive head, so
  // when EVICT then launders a dirty page, its dirty neighbours of the range are cluster
  // mates (one write for up to kPagerMaxRun pages instead of one per page).  A page waiting
  // in the laundry is already on its way out and stays there.
  const pmap_ops* ops = pmap_machine_ops();
  frame_t cooled = for_each_own_page(map, s, t, [ops](vm_page* m) VMRT_REQUIRES(g_vm_lock) -> frame_t {
    if (m->queue == PQ_LAUNDRY) return 0;
    if (ops != nullptr && ops->ts_referenced != nullptr) ops->ts_referenced(m);
    vm_page_deactivate(m);
    return 1;
  });
  pmap_update();  // the reference clears' PTE drops, as one batch
  if (op == VM_PAGEOUT_RANGE_COLD) return cooled;
  frame_t freed = for_each_own_page(map, s, t, [may_unlock](vm_page* m)
      VMRT_REQUIRES(g_vm_lock) { return vm_pageout_evict(m, may_unlock); });
  vm_page_free_flush();
  return freed;
}

void vm_pageout_init(vm_pdpolicy_kind kind, frame_t free_target) {
  vm_lock_guard g;
  vm_pdpolicy_init(kind, &kEnv);
  g_free_target = free_target;
  g_enabled.store(true, std::memory_order_release);
}

void vm_pager_io_enter() { g_in_flight.fetch_add(1, std::memory_order_relaxed); }
void vm_pager_io_exit() { g_in_flight.fetch_sub(1, std::memory_order_relaxed); }

bool vm_pageout_in_flight() { return g_in_flight.load(std::memory_order_relaxed) != 0; }

VMRT_FORK_CHILD_TEXT bool vm_pageout_enabled() { return g_enabled.load(std::memory_order_acquire); }
frame_t vm_pageout_free_target() { return g_free_target; }

frame_t vm_pageout_reclaim(frame_t want, bool may_unlock, bool inactive_only) {
  VM_LOCK_ASSERT();
  if (!vm_pageout_enabled()) return 0;
  vm_stat_inc(V_PD_PASSES);
  frame_t freed = 0;
  // Enough looks for every queued page to age from ACT_MAX down to the inactive queue and be
  // looked at there once more (second chance): when every page is active and was referenced
  // (the first shortage), nothing qualifies sooner.  The scan stops at the first victims,
  // so this bound is reached only when nothing at all can be taken.
  std::uint64_t queued = vm_pdpolicy_active_count() + vm_pdpolicy_inactive_count();
  std::uint64_t budget = (ACT_MAX / ACT_DECLINE + 2) * queued + kScanChunk;
  // Without a swap device only clean pages can go.  A full device still takes pages that
  // read as zeros (they need no slot), so laundering is tried on; a page it refuses goes
  // back to the queues and the scan goes on for clean pages.
  bool store_full = false;
  const bool no_store = !swap_pager_active();
  // With no store only pages that can go without a write are looked for, with no aging and
  // no reference clears (vm_pdpolicy_select_takeable): one look at every queued page.
  if (no_store) budget = queued + kScanChunk;
  bool drained = false;  // the policy has nothing left to look at
  while (freed < want && budget > 0 && !drained) {
    // Victims are taken a batch at a time and unmapped together: one host call and TLB
    // shootdown per batch, where a page at a time paid one apiece (171 k madvise calls,
    // one per page taken, for scenario paging's 40 MB bash string at 16M).  The batch is
    // off the queues and the VM lock is kept until each victim is freed or queued for the
    // laundry (evict with defer: no I/O), so nothing maps them again in between.
    vm_page* batch[kEvictBatch];
    unsigned nb = 0;
    while (nb < kEvictBatch && freed + nb < want && budget > 0) {
      unsigned scanned = 0;
      vm_page* m = no_store ? vm_pdpolicy_select_takeable(kScanChunk, &scanned, takeable_now)
                            : vm_pdpolicy_select_victim(kScanChunk, &scanned, inactive_only);
      budget = budget > scanned ? budget - scanned : 0;
      if (m == nullptr) {
        if (scanned == 0) {
          drained = true;
          break;
        }
        continue;
      }
      if (!pageable(m)) {  // busy, wired or not anonymous: not now
        if (m->wire_count == 0 && m->object != nullptr) vm_pdpolicy_activate(m);
        continue;
      }
      batch[nb++] = m;
    }
    pmap_page_unmap_run(batch, nb);
    // Dirty victims wait in the laundry until a whole cluster's worth is there.
    for (unsigned k = 0; k < nb; ++k) freed += evict(batch[k], no_store, may_unlock, &store_full, true);
    while (vm_pdpolicy_laundry_count() >= kPagerMaxRun) freed += launder_first(may_unlock, &store_full);
  }
  while (freed < want && vm_pdpolicy_laundry_count() > 0) freed += launder_first(may_unlock, &store_full);
  // The pass's reference clears as batches of PTE drops (the pmap flushes a full batch
  // itself): the hand does not come back to those pages within one pass.
  pmap_update();
  vm_page_free_flush();
  vm_stat_add(V_PD_FREED, static_cast<std::int64_t>(freed));
  return freed;
}

VMRT_FORK_CHILD_TEXT void vm_pageout_fork_child() {
  // Written only when set: every page a fork child writes is a copy-on-write fault.
  fork_store(g_daemon_asleep, false);
  if (!vm_pageout_enabled()) return;
  vm_lock_guard g;
  // Busy pages exist only while pager I/O runs with the VM lock dropped; fork holds the
  // lock, so only I/O already in flight can have left some.  Look only then.
  bool any = g_in_flight.exchange(0, std::memory_order_relaxed) != 0;
  for (vm_object* o = any ? vm_object_first() : nullptr; o != nullptr; o = vm_object_next(o)) {
    for (vm_page* m = vm_radix_lookup_ge(&o->rtree, 0); m != nullptr;) {
      vm_pindex_t next = m->pindex + 1;
      if (m->flags & PG_BUSY) {
        bool in = (m->flags & PG_PAGEIN) != 0, dead = (m->flags & PG_RELEASED) != 0;
        m->flags &= static_cast<std::uint16_t>(~(PG_BUSY | PG_PAGEIN | PG_RELEASED));
        if (in || dead) {
          if (dead) vm_pager_free_range(o, m->pindex, next);
          vm_page_free(m);
        } else {
          vm_pdpolicy_activate(m);
        }
      }
      m = vm_radix_lookup_ge(&o->rtree, next);
    }
  }
  vm_page_free_flush();
}

namespace {

// What can make a page takeable that was not: swap slots given back or added (a store that
// was full takes pages again), pages given up with MADV_FREE, pages unwired, file pages read
// in (clean: freed without a write).  Frames freed do not: a free frame is no victim, and
// one freed above the target ends the shortage anyway.  A pass whose whole budget found
// nothing to take (every page dirty with no swap to write it to, or referenced, or wired)
// finds nothing again until one of these moves, or until pages age or new ones read as
// zeros, which the back-off's cap leaves room for.
struct reclaim_state {
  std::int64_t swap_free = vm_stat_get(V_SWAP_SLOTS) - vm_stat_get(V_SWAP_SLOTS_USED);
  std::int64_t lazily_freed = vm_stat_get(V_MADV_FREE_PAGES);
  std::int64_t wired = vm_stat_get(V_WIRE_COUNT);
  std::int64_t file_pageins = vm_stat_get(V_VNODE_PAGEINS);
  bool operator==(const reclaim_state&) const = default;
};

// The daemon's sleep on its wake word (vm_pageout_wakeup_if_short bumps it): until woken,
// or `ns` at most, or at once when the word is no longer w.
void daemon_wait(std::uint32_t w, long ns) {
  timespec ts{ns / 1000000000L, ns % 1000000000L};
  ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&g_wake), FUTEX_WAIT_PRIVATE, w, &ts, nullptr, 0);
}

}  // namespace

void vm_pageout_wakeup_if_short() VMRT_REQUIRES(g_vm_lock) {
  if (!vm_pageout_enabled() || !g_daemon_asleep.load(std::memory_order_relaxed)) return;
  if (vm_page_free_count() >= wake_below()) return;
  g_wake.fetch_add(1, std::memory_order_release);
  ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&g_wake), FUTEX_WAKE_PRIVATE, 1, nullptr, nullptr, 0);
}

void vm_pageout_daemon_loop() {
  // A fruitless pass is not repeated at once: with memory nearly all dirty and no swap
  // (--physmem 64M --swap 0, 99.8 % in use) the daemon started another pass of the whole
  // budget 20 ms after each fruitless one, 139 passes and 74 M pages looked at in 9 s, each
  // under the VM lock and clearing references the program then faulted back in: refilling
  // freed blocks took 3.7 s where it takes 0.007 s with memory to spare.  After one, the daemon waits
  // kBackoffFirstNs, doubled up to kBackoffMaxNs while passes stay fruitless and
  // reclaim_state has not moved; a pass that frees anything, or a moved state, starts over.
  // (Allocations do not wake it meanwhile: it is not asleep for vm_pageout_wakeup_if_short,
  // and a fault that finds no frame reclaims for itself.)
  //
  // A wakeup is a run of passes: woken below wake_below(), the daemon reclaims up to its
  // target, a pass after another, and sleeps only once the target is met or a pass frees
  // nothing.  V_PD_WAKEUPS counts the runs, as FreeBSD's v_pdwakeups counts the daemon's
  // wakeups, and V_PD_PASSES the passes.  (Counted per pass, and stopping as soon as the
  // free count was back above wake_below(), CI of 224e427 saw 58 frames freed a "wakeup"
  // under load, where an idle machine sees 180: the cheap passes took what the inactive
  // queue had and the run ended short of the target, to be woken again a few faults later.)
  long backoff_ns = 0;
  reclaim_state fruitless;
  bool running = false;  // a run of passes since the last wakeup, until the target is met
  for (;;) {
    std::uint32_t w = g_wake.load(std::memory_order_acquire);
    bool short_now;
    {
      vm_lock_guard g;
      short_now = vm_page_free_count() < (running ? g_free_target : wake_below());
    }
    if (!short_now) {
      running = false;
      g_daemon_asleep.store(true, std::memory_order_relaxed);
      // Sleep until woken (or a second: targets may be missed by racing wakeups).
      daemon_wait(w, kIdleRecheckNs);
      g_daemon_asleep.store(false, std::memory_order_relaxed);
      continue;
    }
    if (!running) vm_stat_inc(V_PD_WAKEUPS);
    running = true;
    // Fault injection (fail point pageout): the pass delayed (sleep=), or refused: it frees
    // nothing, dirty pages stay dirty and resident, and faults reclaim for themselves.
    std::uint64_t delay = 0;
    bool refused = vm_fail_armed() && vm_fail_eval(FP_PAGEOUT, 0, 0, &delay);
    vm_fail_delay(delay);
    if (refused) {
      running = false;
      daemon_wait(g_wake.load(), kBackoffFirstNs);
      continue;
    }
    vm_lock_guard g;
    // Two watermarks (FreeBSD's v_free_target and v_free_min).  Up to the target the daemon
    // takes only what is cheap: pages on the inactive queue (dropped behind a stream,
    // deactivated by madvise, read-ahead the stream never reached).  Below the minimum it
    // runs the policy's full scan, whose reference clears cost a host PTE drop per page
    // looked at and a fault for each such page in use: a scan repeated over a working set
    // about the size of memory would otherwise clear every page's reference each time the
    // daemon tops up its target, and fault them all back in.
    frame_t free_now = vm_page_free_count();
    frame_t got = free_now < g_free_target ? vm_pageout_reclaim(g_free_target - free_now, true, true) : 0;
    free_now = vm_page_free_count();
    if (free_now < free_min()) got += vm_pageout_reclaim(g_free_target - free_now, true);
    // The second level: a shortage paging does not relieve swaps out an idle vmspace.
    got += vm_swapout_scheduler(got, vm_page_free_count(), g_free_target);
    if (free_now >= g_free_target || got != 0) {
      backoff_ns = 0;
      continue;
    }
    // Nothing could be freed (all referenced or dirty with nowhere to write, or the store is
    // full): back off until the state moves, longer each time it has not.
    const reclaim_state state;
    backoff_ns = backoff_ns == 0 || state != fruitless ? kBackoffFirstNs
                 : backoff_ns >= kBackoffMaxNs / 2    ? kBackoffMaxNs
                                                      : 2 * backoff_ns;
    fruitless = state;
    vm_stat_inc(V_PD_BACKOFFS);
    running = false;  // it sleeps: what it finds short after is a wakeup of its own
    vm_lock_release();
    daemon_wait(g_wake.load(), backoff_ns);
    vm_lock_acquire();
  }
}

}  // namespace vmrt
