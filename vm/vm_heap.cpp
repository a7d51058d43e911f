// vm_heap.cpp — the process heap (see vm_heap.h).
#include "vm/vm_heap.h"
#include "vm/vm_tables.h"

#include <cstring>

#include "vm/pmap.h"
#include "vm/vm_fail.h"
#include "vm/vm_fault.h"
#include "vm/vm_lock.h"
#include "vm/vm_map.h"
#include "vm/vm_object.h"
#include "vm/vm_page.h"
#include "vm/swap_pager.h"
#include "vm/vm_pager.h"
#include "vm/vm_radix.h"
#include "vm/vm_reserv.h"
#include "vm/vm_stats.h"
#include "vmspace_impl.h"

namespace vmrt {
namespace {

constexpr vsize_t kWindow = ptoa(VM_RESERV_NPAGES);  // one reservation: 2 MiB

vm_map* g_map = nullptr;      // the vmspace's map holding the heap entry [constant after init]
vm_heap_backing g_backing;    // [constant after init]
vm_map* g_ranges VMRT_GUARDED_BY(g_vm_lock) = nullptr;  // allocated ranges, no pmap (a range allocator)
vm_object* g_object = nullptr;  // FRAMES: the heap entry's object, pindex = (va - base) / PAGE_SIZE
vaddr_t g_base, g_end;        // [constant after init]
// Where the windows are counted from: the 2 MiB boundary at or below g_base.  A heap of
// frames begins on one (a window is a reservation, a superpage).  A heap of host memory
// begins where boot puts it (1 MiB into a host 2 MiB block, the program's first mappings
// below it in the same block): its windows are still the address space's 2 MiB blocks, the
// first and the last partial, so that every other window is a whole pmap chunk, marked in
// the pmap's per-chunk record without a table page (as windows 2 MiB apart from the heap's
// start, the first two straddled three chunks: two table pages written in every process).
// [constant after init]
vaddr_t g_wbase;
vm_map* g_dirty VMRT_GUARDED_BY(g_vm_lock) = nullptr;  // freed ranges not yet discarded, no pmap
vsize_t g_dirty_bytes VMRT_GUARDED_BY(g_vm_lock);       // their size (an upper bound of the host memory they hold)
vsize_t g_allocated VMRT_GUARDED_BY(g_vm_lock);         // bytes in allocated ranges
vsize_t g_charged_maps VMRT_GUARDED_BY(g_vm_lock);      // the program's pageable mmaps charged (vm_commit_charge)

// Freed ranges keep their host memory until this much has been freed (jemalloc's dirty
// pages): a range handed out again soon (first fit reuses the holes a program just freed)
// is zeroed where the program had touched it, instead of releasing its pages and having
// the host fault fresh ones in (bench/medium_bench: a free then costs a madvise of ~15 us).
// Past the limit every freed range is discarded at once, coalesced.  The limit follows the
// heap in use (a quarter of it, between kDirtyMin and kDirtyMax), so a small program does
// not hold megabytes it freed.
constexpr vsize_t kDirtyMin = vsize_t{1} << 20;
constexpr vsize_t kDirtyMax = vsize_t{16} << 20;
static_assert(kDirtyMin <= kDirtyMax);
inline vsize_t dirty_limit() VMRT_REQUIRES(g_vm_lock) {
  vsize_t q = g_allocated / 4;
  return q < kDirtyMin ? kDirtyMin : q > kDirtyMax ? kDirtyMax : q;
}
std::int64_t g_windows VMRT_GUARDED_BY(g_vm_lock);  // populated windows
// Pmap host flags that lock windows populated from now on (mlockall MCL_FUTURE).
unsigned g_future_lock VMRT_GUARDED_BY(g_vm_lock);

// HOST: which windows are populated, one bit each.  A heap of up to kSmallHeap
// (the shim's default is 16 GiB) uses the small bitmap in the bss; a larger one, up to the
// largest (16 TiB: 1 MiB of bits), a table of its own (vm/vm_tables.h) mapped at init.  The
// whole 1 MiB in the bss cost nothing in pages but pushed the shim's image past 2 MiB, which
// the host then aligns to a 2 MiB boundary: an extra host page-table page in every process
// (shim_bootstrap.h).
constexpr vsize_t kMaxHeap = vsize_t{1} << 44;
constexpr std::size_t kMaxWindows = kMaxHeap / kWindow;
constexpr vsize_t kSmallHeap = vsize_t{64} << 30;
constexpr std::size_t kSmallWindows = kSmallHeap / kWindow;
static_assert(kMaxWindows % 64 == 0 && kSmallWindows % 64 == 0 && kSmallHeap <= kMaxHeap);
VMRT_LARGE_BSS std::uint64_t g_populated_small[kSmallWindows / 64] VMRT_GUARDED_BY(g_vm_lock);
// Set by vm_heap_init_at (a static initializer to g_populated_small would be a relocation,
// a copy-on-write fault of its page in every process at load).  [constant after init]
std::uint64_t* g_populated;
// Words [0, g_populated_words) of g_populated have been written; the rest are zero and are
// not read: a read of a never-written page of the bitmap maps the host's zero page and the
// write that follows faults a second time (a process's first heap window took two faults on
// the bitmap's page).
std::size_t g_populated_words VMRT_GUARDED_BY(g_vm_lock);

inline bool host_backed() { return g_backing == VM_HEAP_HOST; }
inline bool paged() { return g_backing == VM_HEAP_PAGED; }
// Windows tracked by the bitmap (HOST, PAGED) rather than by their first page (FRAMES).
inline bool bitmap_windows() { return g_backing != VM_HEAP_FRAMES; }
inline std::size_t window_index(vaddr_t w) { return (w - g_wbase) / kWindow; }
// The bitmap's first word (the heap's first 128 MiB, all most processes use) is apart, in
// .bss, which the load-time populate makes the process's own: in the bitmap's page it was a
// page fault in every process.  Word 0 of g_populated is unused.
std::uint64_t g_populated_word0 VMRT_GUARDED_BY(g_vm_lock);
inline std::uint64_t& word_ref(std::size_t i) { return i == 0 ? g_populated_word0 : g_populated[i]; }
inline std::uint64_t populated_word(std::size_t i) VMRT_REQUIRES(g_vm_lock) {
  return i < g_populated_words ? word_ref(i) : 0;
}
inline bool bit_test(vaddr_t w) VMRT_REQUIRES(g_vm_lock) {
  return (populated_word(window_index(w) / 64) >> (window_index(w) % 64)) & 1;
}
inline void bit_set(vaddr_t w, bool v) VMRT_REQUIRES(g_vm_lock) {
  const std::size_t i = window_index(w) / 64;
  const std::uint64_t m = std::uint64_t{1} << (window_index(w) % 64);
  if (v) {
    if (i >= g_populated_words) g_populated_words = i + 1;
    word_ref(i) |= m;
  } else if (i < g_populated_words) {
    word_ref(i) &= ~m;
  }
}

inline vm_pindex_t pindex_of(vaddr_t va) { return atop(va - g_base); }
inline vaddr_t va_of(vm_pindex_t p) { return g_base + ptoa(p); }
// The window holding va, and the end of the window starting at w.
inline vaddr_t window_of(vaddr_t va) {
  const vaddr_t w = g_wbase + ((va - g_wbase) & ~(kWindow - 1));
  return w < g_base ? g_base : w;
}

// Is the window starting at w populated?  A window is populated whole (FRAMES: one
// superpage fault) and dropped whole (trim), so (FRAMES) its first page says.
//  => VM lock held.
bool window_populated(vaddr_t w) VMRT_REQUIRES(g_vm_lock) {
  if (bitmap_windows()) return bit_test(w);
  return vm_page_lookup(g_object, pindex_of(w)) != nullptr;
}

inline vaddr_t window_end(vaddr_t w) {
  const vaddr_t e = g_wbase + ((w - g_wbase) & ~(kWindow - 1)) + kWindow;
  return e < g_end ? e : g_end;
}

// Unmap the window at w and free its pages.  => VM lock held.
void unpopulate_window_locked(vaddr_t w) VMRT_REQUIRES(g_vm_lock) {
  vaddr_t we = window_end(w);
  if (host_backed()) {
    pmap_machine_ops()->host_unmap(g_map->pm, w, we);
    bit_set(w, false);
    return;
  }
  if (paged()) {  // pages and swap copies go; the reservation stays (a touch zero-fills)
    if (g_map->pm != nullptr) pmap_remove(g_map->pm, w, we);
    vm_object_page_remove(g_object, pindex_of(w), pindex_of(we), false);
    bit_set(w, false);
    return;
  }
  if (g_map->pm != nullptr) pmap_remove(g_map->pm, w, we);
  vm_pindex_t p0 = pindex_of(w), pe = pindex_of(we);
  for (vm_page* p = vm_radix_lookup_ge(&g_object->rtree, p0); p != nullptr && p->pindex < pe;
       p = vm_radix_lookup_ge(&g_object->rtree, p0))
    vm_page_free(p, VM_FREE_RELEASE);
  vm_page_free_flush();
}

// Populate every window overlapping [s, e) that is not yet: one zero-fill fault each (the
// entry is MAP_ENTRY_SUPERPAGE: the fault takes the whole window, or as much of it as there
// are frames for: a window short of frames is given back whole, so a window is always
// populated whole or not at all).
//  => VM lock held.  KERN_RESOURCE_SHORTAGE when out of frames (windows populated so far stay).
kern_return_t populate_locked(vaddr_t s, vaddr_t e) VMRT_REQUIRES(g_vm_lock) {
  for (vaddr_t w = window_of(s); w < e; w = window_end(w)) {
    if (window_populated(w)) continue;
    if (host_backed()) {
      // The run of unpopulated windows from w on is one host mapping: a malloc(64 MiB)
      // made 32 mmap calls, one per window (allocsuite's malloc64_probe and large_blocks).
      // A failure injected at a window ends the run before it; the windows before it are
      // mapped, as they were one by one.
      vaddr_t we = w;
      bool failed = false;
      while (we < e && (we == w || !window_populated(we))) {
        if (vm_fail_armed() && vm_fail_eval(FP_FRAME, window_end(we) - we)) {  // the window's memory
          failed = true;
          break;
        }
        we = window_end(we);
      }
      if (we != w) {
        kern_return_t kr = pmap_machine_ops()->host_map(g_map->pm, w, we, VM_PROT_DEFAULT, g_future_lock);
        if (kr != KERN_SUCCESS) return kr;
        for (vaddr_t x = w; x < we; x = window_end(x)) {
          bit_set(x, true);
          ++g_windows;
        }
      }
      if (failed) return KERN_RESOURCE_SHORTAGE;
      w = window_of(we - 1);  // the loop steps to we
      continue;
    }
    if (paged()) {
      // Demand paged: the window's accesses are allowed; each page is a zero-fill fault
      // (with fault-around) on first touch and may be paged out afterwards.
      if (g_map->pm != nullptr) pmap_reserve(g_map->pm, w, window_end(w), VM_PROT_DEFAULT);
      bit_set(w, true);
      ++g_windows;
      continue;
    }
    // The pmap learns the heap's protection window by window (recording it for the whole
    // arena at boot would write a byte per page of it); a trimmed window keeps it, so a
    // later touch there is a zero-fill fault.
    if (g_map->pm != nullptr) pmap_reserve(g_map->pm, w, window_end(w), VM_PROT_DEFAULT);
    kern_return_t kr = vm_fault_locked(g_map, w, VM_FAULT_WRITE, VM_FAULT_NORMAL, 0, nullptr);
    if (kr == KERN_SUCCESS && vm_page_lookup(g_object, pindex_of(window_end(w)) - 1) == nullptr)
      kr = KERN_RESOURCE_SHORTAGE;
    if (kr != KERN_SUCCESS) {
      // Short of frames, or the host refused the mapping (the fault leaves the pages it
      // allocated in the object): nothing of the window stays.
      unpopulate_window_locked(w);
      return kr;
    }
    ++g_windows;
  }
  vm_stat_set(V_HEAP_WINDOWS, g_windows);
  return KERN_SUCCESS;
}

// Call f(first page, n) for each frame-contiguous run of heap pages resident in [s, e).
// A populated window is one reservation (page i at frame first + i), so runs are followed
// through the page array, and the radix tree is searched only between runs.
//  => VM lock held.
template <class F> void for_each_frame_run(vaddr_t s, vaddr_t e, F&& f) VMRT_REQUIRES(g_vm_lock) {
  vm_pindex_t p = pindex_of(s), pe = pindex_of(e);
  vm_page* m = vm_radix_lookup_ge(&g_object->rtree, p);
  while (m != nullptr && m->pindex < pe) {
    vsize_t n = 1;
    frame_t f0 = vm_page_frame(m);
    while (m->pindex + n < pe && f0 + n < vm_page_array_size) {
      const vm_page* nx = vm_page_from_frame(f0 + static_cast<frame_t>(n));
      if (nx->object != g_object || nx->pindex != m->pindex + n) break;
      ++n;
    }
    f(m, n);
    m = vm_radix_lookup_ge(&g_object->rtree, m->pindex + n);
  }
}

// Discard the contents of [s, e): the frames give their host memory back and read as
// zeros; the pages stay resident and mapped (no host mapping changes).
//  => VM lock held.
void discard_locked(vaddr_t s, vaddr_t e) VMRT_REQUIRES(g_vm_lock) {
  const pmap_ops* ops = pmap_machine_ops();
  if (host_backed()) {
    vm_span one{s, e};
    ops->host_discard(&one, 1);
    vm_stat_add(V_HEAP_DISCARDED, static_cast<std::int64_t>(atop(e - s)));
    return;
  }
  if (paged()) {  // pages and swap copies go; the next touch zero-fills
    if (g_map->pm != nullptr) pmap_remove(g_map->pm, s, e);
    std::int64_t before = static_cast<std::int64_t>(g_object->resident_page_count);
    vm_object_page_remove(g_object, pindex_of(s), pindex_of(e), false);
    vm_stat_add(V_HEAP_DISCARDED, before - static_cast<std::int64_t>(g_object->resident_page_count));
    return;
  }
  std::int64_t n_all = 0;
  for_each_frame_run(s, e, [&](vm_page* m, vsize_t n) VMRT_REQUIRES(g_vm_lock) {
    if (ops->release_pages != nullptr) ops->release_pages(m, n);
    else std::memset(ops->page_address(m), 0, ptoa(n));
    for (vsize_t k = 0; k < n; ++k) m[k].flags &= static_cast<std::uint16_t>(~PG_DIRTY);
    n_all += static_cast<std::int64_t>(n);
  });
  vm_stat_add(V_HEAP_DISCARDED, n_all);
}

// PAGED: the pages the heap may hand out: frames not wired (kmem, mlock) plus swap slots.
vm_pindex_t commit_limit() VMRT_REQUIRES(g_vm_lock) {
  swap_pager_info si{};
  swap_pager_get_info(&si);
  std::int64_t wired = vm_stat_get(V_WIRE_COUNT);
  vm_pindex_t frames = vm_page_array_size;
  frames -= wired > 0 && static_cast<vm_pindex_t>(wired) < frames ? static_cast<vm_pindex_t>(wired) : 0;
  return frames + si.slots;
}

}  // namespace

kern_return_t vm_commit_charge(vsize_t bytes) {
  VM_LOCK_ASSERT();
  if (atop(g_allocated + g_charged_maps + bytes) > commit_limit()) {
    vm_stat_inc(V_HEAP_PHYSMEM_REFUSED);
    return KERN_RESOURCE_SHORTAGE;
  }
  g_charged_maps += bytes;
  return KERN_SUCCESS;
}

void vm_commit_uncharge(vsize_t bytes) {
  VM_LOCK_ASSERT();
  VMRT_ASSERT(bytes <= g_charged_maps);
  g_charged_maps -= bytes;
}

namespace {

// PAGED: move the pages of [from, from + len) to [to, to + len) (which holds none) without
// copying: resident pages are renamed, stored copies move in the pager.  The old addresses'
// mappings go; the new ones fault the pages in lazily.  => VM lock held.
void move_pages_locked(vaddr_t from, vaddr_t to, vsize_t len) VMRT_REQUIRES(g_vm_lock) {
  if (g_map->pm != nullptr) {
    pmap_remove(g_map->pm, from, from + len);
    pmap_remove(g_map->pm, to, to + len);
  }
  vm_pindex_t pf = pindex_of(from), pt = pindex_of(to), n = atop(len);
  // Fault-around may have zero-filled pages of the destination while it was free.
  vm_object_page_remove(g_object, pt, pt + n, false);
  vm_pager_move(g_object, pf, pt, n);
  for (vm_page* m = vm_radix_lookup_ge(&g_object->rtree, pf); m != nullptr && m->pindex < pf + n;
       m = vm_radix_lookup_ge(&g_object->rtree, pf)) {
    if (vm_page_rename(m, g_object, pt + (m->pindex - pf)) != KERN_SUCCESS) VMRT_PANIC("radix node shortage moving heap pages");
  }
}

// Call f(a, b) for each dirty range piece inside [s, e).  => VM lock held.
template <class F> void for_each_dirty(vaddr_t s, vaddr_t e, F&& f) VMRT_REQUIRES(g_vm_lock) {
  vm_map_entry* d;
  if (!vm_map_lookup_entry(g_dirty, s, &d)) d = d->next;
  for (; !vm_map_is_end(g_dirty, d) && d->start < e; d = d->next) f(d->start > s ? d->start : s, d->end < e ? d->end : e);
}

// A dirty piece up to this size handed out again is zeroed where the host holds its pages
// (finding them costs a host page-cache lookup per page); a larger one is discarded, which
// costs a walk of the host page tables that skips empty ones.
constexpr vsize_t kCleanInPlaceMax = vsize_t{256} << 10;

// [s, e) is being handed out: the dirty pieces inside read as zeros again, or, for a
// caller that does not need zeros (vm_heap_alloc_any), are only forgotten: they keep the
// program's freed data and the host keeps their pages, so no host call is made and the
// caller's first writes there fault nothing in.  True when a dirty piece lay inside.
//  => VM lock held.
bool clean_locked(vaddr_t s, vaddr_t e, bool zero) VMRT_REQUIRES(g_vm_lock) {
  if (g_dirty_bytes == 0) return false;
  const pmap_ops* ops = pmap_machine_ops();
  bool any = false;
  for_each_dirty(s, e, [&](vaddr_t a, vaddr_t b) VMRT_REQUIRES(g_vm_lock) {
    any = true;
    if (!zero) {
      vm_stat_add(V_HEAP_DIRTY_REUSED, static_cast<std::int64_t>(atop(b - a)));
    } else if (b - a > kCleanInPlaceMax || (!host_backed() && ops->zero_resident == nullptr)) {
      discard_locked(a, b);
    } else if (host_backed()) {
      ops->host_zero_resident(a, b);
    } else {
      for_each_frame_run(a, b, [&](vm_page* m, vsize_t n) { ops->zero_resident(m, n); });
    }
    g_dirty_bytes -= b - a;
  });
  if (any) vm_map_delete(g_dirty, s, e);
  return any;
}

// Dirty ranges discarded per host call (HOST backing): a freed medium block is one range, and
// a madvise each cost one TLB shootdown each — on these 2-vCPU guests 250-350 us; one
// process_madvise for 1,000 ranges costs 7-13 ms in all (bench/medium_bench).
constexpr std::size_t kDiscardBatch = 256;
VMRT_LARGE_BSS vm_span g_discard_batch[kDiscardBatch] VMRT_GUARDED_BY(g_vm_lock);

// Discard every dirty range (coalesced: one release per run of frames; host memory in
// batches of kDiscardBatch ranges per host call).  => VM lock held.
void flush_dirty_locked() VMRT_REQUIRES(g_vm_lock) {
  if (g_dirty_bytes == 0) return;
  if (host_backed()) {
    std::size_t n = 0;
    vsize_t pages = 0;
    auto flush = [&] {
      pmap_machine_ops()->host_discard(g_discard_batch, n);
      n = 0;
    };
    for_each_dirty(g_base, g_end, [&](vaddr_t a, vaddr_t b) VMRT_REQUIRES(g_vm_lock) {
      g_discard_batch[n++] = {a, b};
      pages += atop(b - a);
      if (n == kDiscardBatch) flush();
    });
    if (n != 0) flush();
    vm_stat_add(V_HEAP_DISCARDED, static_cast<std::int64_t>(pages));
  } else {
    for_each_dirty(g_base, g_end, [](vaddr_t a, vaddr_t b) VMRT_REQUIRES(g_vm_lock) { discard_locked(a, b); });
  }
  vm_map_delete(g_dirty, g_base, g_end);
  g_dirty_bytes = 0;
}

// Record [s, e) as allocated and populate its windows; it reads as zeros when `zero`
// (else see clean_locked), and *dirty (when given) tells whether it held freed data.
//  => VM lock held; [s, e) free in g_ranges.  On failure nothing is recorded.
kern_return_t take_locked(vaddr_t s, vaddr_t e, bool zero = true, bool* dirty = nullptr) VMRT_REQUIRES(g_vm_lock) {
  // HOST: the heap's memory is charged to physmem all the same, by what is handed out
  // (VMRT_PHYSMEM bounds a program whatever the backing): the ranges allocated plus the
  // frames the VM uses never exceed physmem.
  if (host_backed() && atop(g_allocated + (e - s)) > vm_page_free_count()) {
    vm_stat_inc(V_HEAP_PHYSMEM_REFUSED);
    return KERN_RESOURCE_SHORTAGE;
  }
  // PAGED: what is handed out must fit in physical memory plus swap (strict commit, as
  // Linux's overcommit_memory=2): malloc fails with ENOMEM rather than a later touch
  // finding neither a frame nor a swap slot.
  if (paged() && atop(g_allocated + g_charged_maps + (e - s)) > commit_limit()) {
    vm_stat_inc(V_HEAP_PHYSMEM_REFUSED);
    return KERN_RESOURCE_SHORTAGE;
  }
  kern_return_t kr = vm_map_insert(g_ranges, nullptr, 0, s, e, VM_PROT_DEFAULT, VM_PROT_DEFAULT, 0, VM_INHERIT_NONE);
  if (kr != KERN_SUCCESS) return kr == KERN_NO_SPACE ? KERN_NO_SPACE : KERN_RESOURCE_SHORTAGE;
  kr = populate_locked(s, e);
  if (kr != KERN_SUCCESS) {
    vm_map_delete(g_ranges, s, e);
    return kr;
  }
  bool d = clean_locked(s, e, zero);
  if (dirty != nullptr) *dirty = d;
  g_allocated += e - s;
  vm_stat_inc(V_HEAP_RANGES);
  return KERN_SUCCESS;
}

// [s, e) is freed: it joins the dirty ranges (discarded when they grow past kDirtyMax), or
// is discarded at once when no range record is left.  => VM lock held.
void give_back_locked(vaddr_t s, vaddr_t e) VMRT_REQUIRES(g_vm_lock) {
  vm_map_delete(g_ranges, s, e);
  g_allocated -= e - s;
  if (paged()) {  // no dirty ranges: pages that may be paged out are dropped at once
    discard_locked(s, e);
    return;
  }
  if (vm_map_insert(g_dirty, nullptr, 0, s, e, VM_PROT_DEFAULT, VM_PROT_DEFAULT, 0, VM_INHERIT_NONE) != KERN_SUCCESS) {
    discard_locked(s, e);
    return;
  }
  g_dirty_bytes += e - s;
  if (g_dirty_bytes > dirty_limit()) flush_dirty_locked();
}

// A range that had to move to grow will likely grow again (a vector, a string builder):
// it goes to the start of a wholly free aligned slot at least kGrowthRoom times its size, in
// the upper half of the arena (first-fit allocations fill the lower half first), so that
// it grows in place until it outgrows the slot, and each move copies at most a quarter of
// the slot it goes to (realloc_big of bench/allocsuite: 185 moves by copy -> a few per
// buffer).  Slots cost address space only: a window is populated when a range covers it.
constexpr vsize_t kGrowthRoom = 4;
constexpr vsize_t kGrowthSlotMax = vsize_t{1} << 30;
static_assert(kGrowthSlotMax % kWindow == 0 && kGrowthRoom >= 2);

// Where to move a range growing to newsize: a slot as above, else first fit.
//  => VM lock held.  False when the arena has no room.
bool find_growth_space_locked(vsize_t newsize, vaddr_t* va) VMRT_REQUIRES(g_vm_lock) {
  vsize_t slot = kWindow;
  while (slot < kGrowthSlotMax && slot / kGrowthRoom < newsize) slot <<= 1;
  vaddr_t half = window_of(g_base + (g_end - g_base) / 2);
  if (slot >= newsize && vm_map_findspace(g_ranges, half, slot, slot, va) == KERN_SUCCESS) return true;
  return vm_map_findspace(g_ranges, g_base, newsize, PAGE_SIZE, va) == KERN_SUCCESS;
}

bool valid_range(vaddr_t addr, vsize_t size) {
  return page_aligned(addr) && page_aligned(size) && size != 0 && addr >= g_base && addr < g_end &&
         size <= g_end - addr;
}

}  // namespace

kern_return_t vm_heap_init(vmspace* vs, vsize_t size, vm_heap_backing backing, vaddr_t* base) {
  return vm_heap_init_at(vs, size, backing, 0, base);
}

kern_return_t vm_heap_init_at(vmspace* vs, vsize_t size, vm_heap_backing backing, vaddr_t hint, vaddr_t* base) {
  size = (size + kWindow - 1) & ~(kWindow - 1);
  if (size == 0 || size > kMaxHeap) return KERN_INVALID_ARGUMENT;
  bool host = backing == VM_HEAP_HOST;
  const pmap_ops* ops = pmap_machine_ops();
  if (host && (ops == nullptr || ops->host_map == nullptr || ops->host_unmap == nullptr || ops->host_discard == nullptr ||
               ops->host_zero_resident == nullptr || ops->host_copy_resident == nullptr))
    return KERN_NOT_SUPPORTED;
  vm_lock_guard g;
  if (g_map != nullptr) return KERN_FAILURE;
  // Windows: size / kWindow, and one more for a heap of host memory not 2 MiB aligned.
  if (size + kWindow <= kSmallHeap) {
    g_populated = g_populated_small;
  } else {
    void* t = vmrt::sys::table_map((size / kWindow + 1 + 63) / 64 * sizeof(std::uint64_t));
    if (t == nullptr) return KERN_RESOURCE_SHORTAGE;
    g_populated = static_cast<std::uint64_t*>(t);
  }
  vm_map* map = &vs->map;
  vaddr_t b;
  // A window of frames is one reservation (a superpage): 2 MiB aligned.  Host memory has no
  // such need: it begins wherever asked (g_wbase).
  const vsize_t align = host ? PAGE_SIZE : kWindow;
  if (vm_map_findspace(map, hint > map->min ? hint : map->min, size, align, &b) != KERN_SUCCESS) return KERN_NO_SPACE;
  vm_map* ranges = vm_map_create(nullptr, b, b + size);
  vm_map* dirty = ranges != nullptr ? vm_map_create(nullptr, b, b + size) : nullptr;
  vm_object* obj = dirty != nullptr && !host ? vm_object_allocate(OBJT_DEFAULT, atop(size)) : nullptr;
  if (dirty == nullptr || (!host && obj == nullptr)) {
    if (dirty != nullptr) vm_map_free(dirty);
    if (ranges != nullptr) vm_map_free(ranges);
    return KERN_RESOURCE_SHORTAGE;
  }
  // Not inherited by vmspace_fork: a host fork copies the process, heap included.
  std::uint16_t eflags = host                       ? MAP_ENTRY_HOSTMEM | MAP_ENTRY_NOCOALESCE
                         : backing == VM_HEAP_PAGED ? MAP_ENTRY_NOCOALESCE
                                                    : MAP_ENTRY_SUPERPAGE | MAP_ENTRY_NOCOALESCE;
  kern_return_t kr = vm_map_insert(map, obj, 0, b, b + size, VM_PROT_DEFAULT, VM_PROT_DEFAULT, eflags, VM_INHERIT_NONE);
  if (kr != KERN_SUCCESS) {
    if (obj != nullptr) vm_object_deallocate(obj);
    vm_map_free(dirty);
    vm_map_free(ranges);
    return kr;
  }
  g_map = map;
  g_backing = backing;
  g_ranges = ranges;
  g_dirty = dirty;
  g_object = obj;
  g_base = b;
  g_end = b + size;
  g_wbase = b & ~(kWindow - 1);
  *base = b;
  return KERN_SUCCESS;
}

bool vm_heap_exists() {
  vm_lock_guard g;
  return g_map != nullptr;
}

namespace {

kern_return_t alloc_range(vsize_t size, vsize_t align, bool zero, vaddr_t* out, bool* dirty) {
  if (size == 0 || !page_aligned(size) || align < PAGE_SIZE || (align & (align - 1)) != 0)
    return KERN_INVALID_ARGUMENT;
  vm_lock_guard g;
  if (g_map == nullptr) return KERN_FAILURE;
  if (size > g_end - g_base) return KERN_NO_SPACE;
  vaddr_t va;
  if (vm_map_findspace(g_ranges, g_base, size, align, &va) != KERN_SUCCESS) return KERN_NO_SPACE;
  kern_return_t kr = take_locked(va, va + size, zero, dirty);
  if (kr == KERN_SUCCESS) *out = va;
  return kr;
}

}  // namespace

kern_return_t vm_heap_alloc(vsize_t size, vsize_t align, vaddr_t* out) {
  return alloc_range(size, align, true, out, nullptr);
}

kern_return_t vm_heap_alloc_any(vsize_t size, vsize_t align, vaddr_t* out, bool* zeroed) {
  bool dirty = false;
  kern_return_t kr = alloc_range(size, align, false, out, &dirty);
  *zeroed = !dirty;
  return kr;
}

kern_return_t vm_heap_resize(vaddr_t addr, vsize_t oldsize, vsize_t newsize, vaddr_t* out) {
  vm_lock_guard g;
  if (g_map == nullptr || !valid_range(addr, oldsize) || !page_aligned(newsize) || newsize <= oldsize)
    return KERN_INVALID_ARGUMENT;
  VMRT_ASSERT(vm_map_range_covered(g_ranges, addr, addr + oldsize));
  // In place: the arena is free after the range.
  if (newsize <= g_end - addr && vm_map_range_free(g_ranges, addr + oldsize, addr + newsize)) {
    kern_return_t kr = take_locked(addr + oldsize, addr + newsize);
    if (kr == KERN_SUCCESS) {
      vm_stat_inc(V_HEAP_GROWN_IN_PLACE);
      *out = addr;
    }
    return kr;
  }
  // Elsewhere: copy what the host holds of the old range (the pages the program touched),
  // page by page between frames; pages never touched stay untouched in the new range.
  vaddr_t va;
  if (newsize > g_end - g_base || !find_growth_space_locked(newsize, &va)) return KERN_NO_SPACE;
  kern_return_t kr = take_locked(va, va + newsize);
  if (kr != KERN_SUCCESS) return kr;
  const pmap_ops* ops = pmap_machine_ops();
  // Host memory of a window or more moves without a copy where the pmap can (mremap;
  // allocsuite's realloc_big: 36% of its page faults were this copy's first writes to the
  // new range), except under mlockall(MCL_FUTURE), whose locking the move would not carry.
  // A move splits host mappings at the range ends (up to four more, kept until the windows
  // are mapped again): smaller ranges are copied, so the heap keeps about two host
  // mappings per window.
  bool copied = true;
  if (host_backed()) {
    copied = oldsize < kWindow || g_future_lock != 0 || ops->host_move == nullptr || !ops->host_move(va, addr, oldsize);
    if (copied) ops->host_copy_resident(va, addr, oldsize);
  } else if (paged()) move_pages_locked(addr, va, oldsize);
  else for_each_frame_run(addr, addr + oldsize, [&](vm_page* src, vsize_t n) VMRT_REQUIRES(g_vm_lock) {
    vm_page* dst = vm_page_lookup(g_object, pindex_of(va) + (src->pindex - pindex_of(addr)));
    VMRT_ASSERT(dst != nullptr);
    // The destination's pages are frame-contiguous within a window; copy per window piece.
    for (vsize_t k = 0; k < n;) {
      vm_page* d = vm_page_lookup(g_object, dst->pindex + k);
      vsize_t run = 1;
      while (k + run < n) {
        vm_page* d2 = vm_page_lookup(g_object, d->pindex + run);
        if (d2 == nullptr || vm_page_frame(d2) != vm_page_frame(d) + run) break;
        ++run;
      }
      if (ops->copy_resident != nullptr) ops->copy_resident(d, src + k, run);
      else std::memcpy(ops->page_address(d), ops->page_address(src + k), ptoa(run));
      k += run;
    }
  });
  give_back_locked(addr, addr + oldsize);
  vm_stat_inc(copied ? V_HEAP_COPIED : V_HEAP_MOVED);
  *out = va;
  return KERN_SUCCESS;
}

void vm_heap_free(vaddr_t addr, vsize_t size) {
  vm_lock_guard g;
  VMRT_ASSERT(g_map != nullptr && valid_range(addr, size));
  VMRT_ASSERT(vm_map_range_covered(g_ranges, addr, addr + size));
  give_back_locked(addr, addr + size);
}

vsize_t vm_heap_discard_sparse(vaddr_t addr, vsize_t size, vsize_t max_pages) {
  vm_lock_guard g;
  VMRT_ASSERT(g_map != nullptr && valid_range(addr, size));
  VMRT_ASSERT(vm_map_range_covered(g_ranges, addr, addr + size));
  if (host_backed()) {
    const pmap_ops* ops = pmap_machine_ops();
    if (ops->host_discard_sparse == nullptr) return ~vsize_t{0};
    const vsize_t n = ops->host_discard_sparse(addr, addr + size, max_pages);
    if (n != 0 && n <= max_pages) vm_stat_add(V_HEAP_DISCARDED, static_cast<std::int64_t>(n));
    return n;
  }
  // FRAMES: a populated window has a frame for every page, touched or not (the host memory
  // behind them is what a count would need): cannot tell.  PAGED: a page exists once touched.
  if (!paged()) return ~vsize_t{0};
  vsize_t n = 0;
  const vm_pindex_t pe = pindex_of(addr + size);
  for (vm_page* m = vm_radix_lookup_ge(&g_object->rtree, pindex_of(addr)); m != nullptr && m->pindex < pe;
       m = vm_radix_lookup_ge(&g_object->rtree, m->pindex + 1))
    ++n;
  if (n != 0 && n <= max_pages) discard_locked(addr, addr + size);
  return n;
}

vsize_t vm_heap_trim() {
  vm_lock_guard g;
  if (g_map == nullptr) return 0;
  flush_dirty_locked();
  vsize_t freed = 0;
  if (bitmap_windows()) {
    for (vaddr_t w = g_base; w < g_end; w = window_end(w)) {
      if (window_index(w) % 64 == 0 && populated_word(window_index(w) / 64) == 0) {
        w = window_of(g_wbase + (window_index(w) + 63) * kWindow);  // 64 windows none of which is populated
        continue;
      }
      if (!bit_test(w) || !vm_map_range_free(g_ranges, w, window_end(w))) continue;
      unpopulate_window_locked(w);
      freed += atop(window_end(w) - w);
      --g_windows;
      vm_stat_inc(V_HEAP_WINDOWS_TRIMMED);
    }
    vm_stat_set(V_HEAP_WINDOWS, g_windows);
    return freed;
  }
  vm_pindex_t key = 0;
  for (;;) {
    vm_page* m = vm_radix_lookup_ge(&g_object->rtree, key);
    if (m == nullptr) break;
    vaddr_t w = window_of(va_of(m->pindex));
    vaddr_t we = window_end(w);
    key = pindex_of(we);
    if (!vm_map_range_free(g_ranges, w, we)) continue;
    unpopulate_window_locked(w);
    freed += atop(we - w);
    --g_windows;
    vm_stat_inc(V_HEAP_WINDOWS_TRIMMED);
  }
  vm_stat_set(V_HEAP_WINDOWS, g_windows);
  return freed;
}

bool vm_heap_next_host_window(vaddr_t from, vaddr_t* w, vaddr_t* we) {
  vm_lock_guard g;
  if (g_map == nullptr || !host_backed()) return false;
  for (vaddr_t x = window_of(from < g_base ? g_base : from); x < g_end; x = window_end(x)) {
    if (!window_populated(x)) continue;
    *w = x;
    *we = window_end(x);
    return true;
  }
  return false;
}

void vm_heap_set_future_lock(unsigned pmap_host_lock_flags) {
  vm_lock_guard g;
  g_future_lock = pmap_host_lock_flags;
}

bool vm_heap_get_info(vm_heap_info* out) {
  vm_lock_guard g;
  if (g_map == nullptr) return false;
  out->base = g_base;
  out->size = g_end - g_base;
  out->allocated = g_allocated;
  out->windows = static_cast<std::uint64_t>(g_windows);
  out->ranges = g_ranges->nentries;
  return true;
}

void vm_heap_range(vaddr_t* lo, vaddr_t* hi) {
  *lo = g_map != nullptr ? g_base : 0;
  *hi = g_map != nullptr ? g_end : 0;
}

vm_object* vm_heap_object() { return g_object; }

vm_heap_backing vm_heap_get_backing() { return g_backing; }

// No lock: g_backing is set with g_map at init and never again (VM_HEAP_HOST, 0, until then),
// so PAGED means the heap exists.  Every fork asks (runtime_fork_prepare): taking the VM lock
// here wrote its word and the thread's critical-section depth at each one.
VMRT_FORK_PARENT_TEXT bool vm_heap_is_paged() { return g_backing == VM_HEAP_PAGED; }

vm_map* vm_heap_map() { return g_map; }

bool vm_heap_frame_unused(frame_t f) VMRT_REQUIRES(g_vm_lock) {
  if (g_object == nullptr || host_backed() || g_dirty_bytes == 0 || f >= vm_page_array_size) return false;
  const vm_page* m = vm_page_from_frame(f);
  if (m->object != g_object) return false;
  vm_map_entry* d;
  return vm_map_lookup_entry(g_dirty, va_of(m->pindex), &d);
}

}  // namespace vmrt
