// vm_swapout.cpp — whole-vmspace swapping (see vm_swapout.h).
#include "vm/vm_swapout.h"

#include <ctime>

#include "vm/vm_lock.h"
#include "vm/vm_map.h"
#include "vm/vm_object.h"
#include "vm/vm_page.h"
#include "vm/vm_pageout.h"
#include "vm/vm_radix.h"
#include "vm/vm_stats.h"
#include "vm/vmspace_impl.h"

namespace vmrt {
namespace {

// The swapper's knobs (4.4BSD's scheduler swaps out processes asleep longer than maxslp,
// 20 s; a program here lives seconds, so the scale is milliseconds).
constexpr std::uint64_t kIdleMs = 100;    // idle at least this long to be swapped out
constexpr unsigned kSeverePasses = 1;     // consecutive severe periods before a swapout
constexpr std::uint64_t kPeriodMs = 100;  // the scheduler's period; at most one swapout a period
constexpr frame_t kFloorDiv = 4;          // the floor: a quarter of the free target
// A vmspace's last_run before anything stamped it (vm_swapout_attach).
constexpr std::uint64_t kNotStamped = 0;

vmspace* g_all VMRT_GUARDED_BY(g_vm_lock);                // every vmspace, newest first
unsigned g_severe VMRT_GUARDED_BY(g_vm_lock);             // consecutive severe passes
std::uint64_t g_last_swapout VMRT_GUARDED_BY(g_vm_lock);  // vm_swapout_clock() of the last swapout
std::int64_t g_pageins_seen VMRT_GUARDED_BY(g_vm_lock);   // V_FAULT_PAGEIN at the start of the period
std::uint64_t g_window_start VMRT_GUARDED_BY(g_vm_lock);  // vm_swapout_clock() when the period began
std::uint64_t g_window_freed VMRT_GUARDED_BY(g_vm_lock);  // frames the daemon freed in the period

// May a swapout take the pages of e's object?  Anonymous memory that only e maps: an
// object shared with another vmspace (copy-on-write after a fork, a shared mapping) is
// still in use by someone else, and the pageout daemon ages it as usual.
bool own_anon(const vm_map_entry* e) VMRT_REQUIRES(g_vm_lock) {
  if (e->eflags & (MAP_ENTRY_IS_SUBMAP | MAP_ENTRY_HOSTMEM)) return false;
  const vm_object* o = e->object;
  return e->wired_count == 0 && o != nullptr && (o->flags & OBJ_ANON) != 0 && o->ref_count == 1;
}

// Does vs hold any resident page a swapout could take?  => VM lock held.
bool has_own_pages(vmspace* vs) VMRT_REQUIRES(g_vm_lock) {
  for (vm_map_entry* e = vm_map_first(&vs->map); !vm_map_is_end(&vs->map, e); e = e->next)
    if (own_anon(e) && e->object->resident_page_count != 0) return true;
  return false;
}

std::uint64_t last_run(const vmspace* vs) { return __atomic_load_n(&vs->last_run, __ATOMIC_RELAXED); }

}  // namespace

std::uint64_t vm_swapout_clock() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1000 + static_cast<std::uint64_t>(ts.tv_nsec) / 1000000;
}

void vm_swapout_attach(vmspace* vs) {
  VM_LOCK_ASSERT();
  // Not stamped yet (kNotStamped): the scheduler stamps it when it first looks.  Reading the
  // clock here cost every process two page faults at boot (libc's clock_gettime and the
  // vDSO's data page), for a program that may never look at a clock itself.
  vs->last_run = kNotStamped;
  vs->swapped = false;
  vs->swapping = false;
  vs->swapouts = vs->swapins = vs->pages_out = 0;
  vs->all_prev = nullptr;
  vs->all_next = g_all;
  if (g_all != nullptr) g_all->all_prev = vs;
  g_all = vs;
}

void vm_swapout_detach(vmspace* vs) {
  VM_LOCK_ASSERT();
  // A swapout in progress (the lock dropped for a write) still walks vs: wait for it.
  while (vs->swapping) {
    vm_lock_release();
    timespec ts{0, 1000 * 1000};
    nanosleep(&ts, nullptr);
    vm_lock_acquire();
  }
  if (vs->all_prev != nullptr) vs->all_prev->all_next = vs->all_next;
  else g_all = vs->all_next;
  if (vs->all_next != nullptr) vs->all_next->all_prev = vs->all_prev;
  vs->all_prev = vs->all_next = nullptr;
}

void vm_swapout_note_run(vmspace* vs) {
  std::uint64_t now = vm_swapout_clock();
  if (last_run(vs) != now) __atomic_store_n(&vs->last_run, now, __ATOMIC_RELAXED);
}

void vm_swapout_faulted(vmspace* vs) {
  VM_LOCK_ASSERT();
  vm_swapout_note_run(vs);
  if (!vs->swapped) return;
  vs->swapped = false;
  ++vs->swapins;
  vm_stat_inc(V_VMSPACE_SWAPINS);
}

frame_t vm_swapout_vmspace(vmspace* vs, bool may_unlock) {
  VM_LOCK_ASSERT();
  if (!vm_pageout_enabled() || vs->swapping) return 0;
  vs->swapping = true;
  frame_t freed = 0;
  // Walk by address, looking the entry up again after every page: a write drops the lock,
  // and the map may change meanwhile (entries unmapped, split, objects collapsed).
  vaddr_t va = vs->map.min;
  while (va < vs->map.max) {
    vm_map_entry* e = nullptr;
    if (!vm_map_lookup_entry(&vs->map, va, &e)) {
      e = e->next;  // the entry after the hole (lookup gave the one before, or the header)
      if (vm_map_is_end(&vs->map, e)) break;
      va = e->start;
    }
    if (!own_anon(e)) {
      va = e->end;
      continue;
    }
    vm_object* obj = e->object;
    vm_pindex_t base = atop(e->offset);
    vm_page* m = vm_radix_lookup_ge(&obj->rtree, base + atop(va - e->start));
    if (m == nullptr || m->pindex >= base + atop(e->end - e->start)) {
      va = e->end;
      continue;
    }
    va = e->start + ptoa(m->pindex - base) + PAGE_SIZE;  // before the eviction: m may go
    freed += vm_pageout_evict(m, may_unlock);
  }
  vm_page_free_flush();
  vs->swapping = false;
  vs->swapped = true;
  ++vs->swapouts;
  vs->pages_out += freed;
  vm_stat_inc(V_VMSPACE_SWAPOUTS);
  vm_stat_add(V_VMSPACE_SWAPOUT_PAGES, static_cast<std::int64_t>(freed));
  return freed;
}

namespace {

// Swap out the vmspace that ran least recently, idle long enough, with pages to give; at
// most one a period.  Returns frames freed.  => VM lock held (dropped during writes).
frame_t swap_out_idle() VMRT_REQUIRES(g_vm_lock) {
  std::uint64_t now = vm_swapout_clock();
  if (now - g_last_swapout < kPeriodMs) return 0;
  vmspace* pick = nullptr;
  for (vmspace* vs = g_all; vs != nullptr; vs = vs->all_next) {
    std::uint64_t lr = last_run(vs);
    if (lr == kNotStamped) {  // idle from now on, at most
      __atomic_store_n(&vs->last_run, now, __ATOMIC_RELAXED);
      continue;
    }
    if (vs->swapped || vs->swapping || now - lr < kIdleMs) continue;
    if (pick != nullptr && last_run(pick) <= lr) continue;
    if (has_own_pages(vs)) pick = vs;
  }
  if (pick == nullptr) return 0;
  g_severe = 0;
  g_last_swapout = now;
  return vm_swapout_vmspace(pick, true);
}

}  // namespace

frame_t vm_swapout_scheduler(frame_t reclaimed, frame_t free_now, frame_t free_target) {
  VM_LOCK_ASSERT();
  // Judged once a period, like 4.4BSD's scheduler judging the paging rate: severe when the
  // daemon freed twice its free target or more in the period (a sixteenth of memory turned
  // over: memory is consumed as fast as it is freed), when page-ins were worth the free
  // target (thrashing: what is freed is faulted back), or when free memory is below the floor
  // (a quarter of the target) at the end of it.  Faults that had to reclaim for themselves
  // (the daemon did not keep up) swap at once (vm_swapout_direct).
  g_window_freed += reclaimed;
  std::uint64_t now = vm_swapout_clock();
  if (now - g_window_start < kPeriodMs) return 0;
  std::int64_t pageins = vm_stat_get(V_FAULT_PAGEIN);
  bool severe = g_window_freed >= 2 * static_cast<std::uint64_t>(free_target) || free_now < free_target / kFloorDiv ||
                pageins - g_pageins_seen >= static_cast<std::int64_t>(free_target);
  g_window_start = now;
  g_window_freed = 0;
  g_pageins_seen = pageins;
  g_severe = severe ? g_severe + 1 : 0;
  return g_severe >= kSeverePasses ? swap_out_idle() : 0;
}

frame_t vm_swapout_direct() {
  VM_LOCK_ASSERT();
  if (!vm_pageout_enabled()) return 0;
  return swap_out_idle();
}

void vm_swapout_get_info(const vmspace* vs, vm_swapout_info* out) VMRT_REQUIRES(g_vm_lock) {
  std::uint64_t now = vm_swapout_clock(), lr = last_run(vs);
  out->swapped = vs->swapped;
  out->idle_ms = now > lr && lr != kNotStamped ? now - lr : 0;
  out->swapouts = vs->swapouts;
  out->swapins = vs->swapins;
  out->pages_out = vs->pages_out;
}

}  // namespace vmrt
