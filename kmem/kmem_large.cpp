// kmem_large.cpp — large blocks (whole runs of pages from the page source, a kmemusage
// record on the first page holding the page count; 4.4BSD's malloc of more than
// MAXALLOCSAVE) and the large cache that keeps freed ones mapped for reuse.
//
// A large block is cut from the large cache when a cached run fits, else taken from the
// page source; freed, it goes into the cache (merged with the cached runs it touches) and
// back to the source once it has waited the decay time, or at once with no decay (4.4BSD).
// realloc grows a block in place when the source can, or moves it into a cached run (no
// fault: pages the host already holds), and a shrink caches the cut-off tail.  Everything
// here runs under the pages lock (kmem_internal.h, g.pages_lock).
#include <cstring>

#include "kmem/kmem_assert.h"
#include "kmem/kmem_internal.h"

namespace vmrt::kmem::detail {

// ---- large cache ---------------------------------------------------------------------------
// Freed large blocks stay mapped for a while (like jemalloc's dirty extents, or glibc's top
// chunk): a program that mallocs and frees big buffers in a loop would otherwise give pages
// back and fault fresh ones in every time.  Cached blocks that touch are merged into one
// entry, and a request is cut from the best-fitting entry (the rest stays cached), so a loop
// of frees and mallocs of varying sizes settles on one cached run and reaches the page
// source no more (bench/medium_bench bigloop).  Bounded in entries and pages; an entry goes
// back to the page source once it has waited the decay time (none when decay_ms is 0:
// 4.4BSD's immediate release).  Cached blocks keep the freed-large state in kmemusage, so a
// free of one is still a double free.  The first page of what stays cached after a cut is
// not marked: it was a block's first page (marked when that block was freed) or never one
// (a free of it is refused as not a block), and the mark was a write to a kmemusage page
// the program had not touched, a page fault for every megabyte of heap a loop of large
// blocks walked (allocsuite large_blocks, scale 1: ~60 of its 569 faults).
inline constexpr std::uint32_t kLargeCacheSlots = sizeof(g.lcache) / sizeof(g.lcache[0]);
// 128 MiB of address space (only the pages the program touched are resident).  At 64 MiB,
// allocsuite's large_blocks (4 live blocks of 5-25 MB, each freed and replaced) evicted an
// entry at almost every free: 10 discards of up to 45 MB ranges (host TLB shootdowns) and
// 19 fresh heap ranges per 100 blocks, 1.25x glibc's time (per-rep median of 41 reps);
// at 128 MiB, 2 discards and 0.94x glibc, for 0.6 MB more peak RSS (1.16x jemalloc's).
inline constexpr std::uint64_t kLargeCacheMaxPages = 32768;
// A request below this many pages takes no entry more than half again its size: a small
// block does not pin the head of a big cached run.
inline constexpr std::uint64_t kLargeCacheSplitMin = 256;  // 1 MiB
static_assert(kLargeCacheSlots >= 4 && kLargeCacheSplitMin < kLargeCacheMaxPages);
// Sparse cached runs.  A block freed into the cache leaves the pages the program touched
// resident in its run, and the next block cut there touches others: a loop of big blocks
// touched sparsely (allocsuite large_blocks: 5-25 MB, 4 pages each) held ~4 more resident
// pages per block until the decay time, 2.6 MB after 200 blocks (1.57x jemalloc's peak
// RSS).  Whenever this many pages of freed blocks have entered the cache, it is swept: a run
// with some but under 1/kLargeCacheSparse of its pages resident gives them back in place
// (the page source's discard_sparse: mincore, then a discard of just those pages) and stays
// cached.  A run the program fills (a buffer written whole, freed and allocated again) is
// dense and keeps its pages: discarding them would cost a fault per page on the next use.
// A sweep costs a mincore of the cache (at most 128 MiB) and a batched discard: ~150-250 us
// here.  allocsuite large_blocks at scale 1 (100 blocks, 21 interleaved reps): swept every
// 512 MiB, 4.7 MiB peak RSS (1.10x jemalloc's) and 1.02x glibc's time; never swept, 5.2 MiB
// (1.21x) and 0.89x (every 256 MiB, counted in cuts: 4.4 MB and 1.2x).  Every 512 MiB: the
// cache holds the pages touched in at most 512 MiB of freed blocks (102 of the smallest)
// that no sweep has seen.
inline constexpr std::uint64_t kLargeCacheSweepPages = 131072;  // 512 MiB
inline constexpr std::uint64_t kLargeCacheSparse = 8;
static_assert(kLargeCacheSweepPages >= kLargeCacheMaxPages);

// => pages lock held.  Gives back the resident pages of the sparse cached runs (above).
void lcache_sweep_locked() {
  g.lcache_in = 0;
  if (g.src->discard_sparse == nullptr) return;
  ++g.lcache_sweeps;
  for (std::uint32_t i = 0; i < g.lcache_n; ++i) {
    const auto& e = g.lcache[i];
    const std::size_t most = (e.pages - 1) / kLargeCacheSparse;  // under 1/kLargeCacheSparse
    const std::size_t r = g.src->discard_sparse(g.src->ctx, reinterpret_cast<void*>(e.a), e.pages, most);
    if (r == SIZE_MAX) return;  // the source cannot tell
    if (r != 0 && r <= most) g.lcache_discarded += r;
  }
}

// => pages lock held.  Gives cache entry i back to the source.
void lcache_evict_locked(std::uint32_t i) {
  source_free_locked(g.lcache[i].a, g.lcache[i].pages);
  g.lcache_pages -= g.lcache[i].pages;
  g.lcache[i] = g.lcache[--g.lcache_n];
}

// => pages lock held.  Evicts every entry older than the decay time; bytes given back.
std::size_t lcache_expire_locked(std::uint16_t now, bool all) {
  std::size_t bytes = 0;
  for (std::uint32_t i = 0; i < g.lcache_n;) {
    if (all || static_cast<std::uint16_t>(now - g.lcache[i].stamp) >= g.decay_ticks) {
      bytes += std::size_t{g.lcache[i].pages} << kPageShift;
      lcache_evict_locked(i);
    } else {
      ++i;
    }
  }
  return bytes;
}

// => pages lock held.  The best-fitting cached run for npages at this alignment, cut from
// the head of its entry (the rest stays cached, its first page marked a freed large head).
// 0 when none fits.
std::uintptr_t lcache_take_locked(std::size_t npages, std::size_t align_pages) {
  std::uint32_t best = kLargeCacheSlots;
  for (std::uint32_t i = 0; i < g.lcache_n; ++i) {
    const auto& e = g.lcache[i];
    if (e.pages < npages) continue;
    if (npages < kLargeCacheSplitMin && e.pages > npages + npages / 2) continue;
    if (((e.a >> kPageShift) & (align_pages - 1)) != 0) continue;
    if (best == kLargeCacheSlots || e.pages < g.lcache[best].pages) best = i;
  }
  if (best == kLargeCacheSlots) return 0;
  auto& e = g.lcache[best];
  std::uintptr_t a = e.a;
  if (npages < kLargeCacheSplitMin) {  // a medium block: its surplus goes back
    std::uint32_t pages = e.pages;
    g.lcache_pages -= pages;
    e = g.lcache[--g.lcache_n];
    if (pages > npages) source_free_locked(a + (npages << kPageShift), pages - npages);
    ++g.lcache_hits;
    return a;
  }
  g.lcache_pages -= npages;
  ++g.lcache_hits;
  if (e.pages > npages) {  // the rest stays cached (its first page's record as it is: see below)
    e.a += npages << kPageShift;
    e.pages -= static_cast<std::uint32_t>(npages);
  } else {
    e = g.lcache[--g.lcache_n];
  }
  return a;
}

// => pages lock held.  Takes the first `pages` pages of the cached entry that starts at a
// (the tail of a large block growing in place); false when no entry starts there or it is
// too short.
bool lcache_take_at_locked(std::uintptr_t a, std::uint32_t pages) {
  for (std::uint32_t i = 0; i < g.lcache_n; ++i) {
    auto& e = g.lcache[i];
    if (e.a != a) continue;
    if (e.pages < pages) return false;
    g.lcache_pages -= pages;
    if (e.pages > pages) {
      e.a += std::uintptr_t{pages} << kPageShift;
      e.pages -= pages;
    } else {
      e = g.lcache[--g.lcache_n];
    }
    return true;
  }
  return false;
}

// => pages lock held.  Caches the freed run [a, a + npages pages) (its first page already a
// freed large head), merged with the cached entries it touches; evicts the longest-waiting
// entries to stay in bounds, or gives the run back when it alone is over them.
void lcache_put_locked(std::uintptr_t a, std::uint32_t npages) {
  std::uint16_t now = coarse_ticks();
  lcache_expire_locked(now, false);
  std::uint64_t pages = npages;
  // A merged run keeps the stamp of its oldest part: it ages from then on, however often
  // blocks are cut from it and freed back into it, and gives its pages back at the decay
  // time (pages the program touched once stay resident in a cached run until then).
  std::uint16_t stamp = now;
  // Two small runs do not merge: a merged run of medium blocks would be too big for the
  // medium requests (which take no entry more than half again their size) and sit idle.  A
  // small run next to a big one does: it is most often the remainder of a cut (a 7 MiB
  // request from a 7.5 MiB run), and remainders kept apart filled the slots, so that every
  // free evicted a big run (allocsuite large_blocks: a third of its mallocs went to the
  // page source, and as many freed runs back to the host).
  for (std::uint32_t i = 0; i < g.lcache_n;) {
    auto& e = g.lcache[i];
    std::uintptr_t e_end = e.a + (std::uintptr_t{e.pages} << kPageShift);
    if ((pages >= kLargeCacheSplitMin || e.pages >= kLargeCacheSplitMin) &&
        (e_end == a || e.a == a + (pages << kPageShift))) {
      if (e_end == a) a = e.a;
      if (static_cast<std::uint16_t>(now - e.stamp) > static_cast<std::uint16_t>(now - stamp)) stamp = e.stamp;
      pages += e.pages;
      g.lcache_pages -= e.pages;
      e = g.lcache[--g.lcache_n];
      continue;
    }
    ++i;
  }
  if (pages > kLargeCacheMaxPages) {
    source_free_locked(a, pages);
    return;
  }
  while (g.lcache_n == kLargeCacheSlots || g.lcache_pages + pages > kLargeCacheMaxPages) {
    std::uint32_t oldest = 0;  // make room: the longest-waiting entry goes back
    for (std::uint32_t i = 1; i < g.lcache_n; ++i)
      if (static_cast<std::uint16_t>(now - g.lcache[i].stamp) > static_cast<std::uint16_t>(now - g.lcache[oldest].stamp))
        oldest = i;
    lcache_evict_locked(oldest);
  }
  g.lcache[g.lcache_n++] = {a, static_cast<std::uint32_t>(pages), stamp};
  g.lcache_pages += pages;
  if ((g.lcache_in += npages) >= kLargeCacheSweepPages) lcache_sweep_locked();
}

// ---- large blocks --------------------------------------------------------------------------

void* large_alloc(std::size_t npages, std::size_t align_pages, bool zero, bool* fresh) {
  KMEM_ASSERT(npages > 0 && npages < kNil, "large block page count");
  kmem_guard guard(g.pages_lock);
  if (g.lcache_n != 0) {
    lcache_expire_locked(coarse_ticks(), false);
    if (std::uintptr_t a = lcache_take_locked(npages, align_pages)) {
      kmemusage* ku = usage_of(a);
      set_large_state(ku, KU_LARGE);
      ku->ku_pagecnt = static_cast<std::uint32_t>(npages);
      ++g.large_blocks;
      g.large_pages += npages;
      *fresh = false;  // dirty: M_ZERO must clear it
      return reinterpret_cast<void*>(a);
    }
  }
  // Not M_ZERO: pages the source freed but has not given back yet may come as they are.
  bool zeroed = true;
  void* p = source_alloc_locked(npages, align_pages, zero ? nullptr : &zeroed);
  if (p == nullptr) return nullptr;
  kmemusage* ku = usage_of(reinterpret_cast<std::uintptr_t>(p));
  set_large_state(ku, KU_LARGE);
  ku->ku_pagecnt = static_cast<std::uint32_t>(npages);
  ++g.large_blocks;
  g.large_pages += npages;
  *fresh = zeroed;
  return p;
}

void large_free(std::uintptr_t a, std::uint32_t npages) {
  kmem_guard guard(g.pages_lock);
  kmemusage* ku = usage_of(a);
  set_large_state(ku, KU_FREED_LARGE);
  ku->ku_pagecnt = 0;
  --g.large_blocks;
  g.large_pages -= npages;
  if (npages <= kLargeCacheMaxPages && keep_freed_locked()) {
    lcache_put_locked(a, npages);
    return;
  }
  source_free_locked(a, npages);
}

std::uintptr_t large_grow(std::uintptr_t a, std::uint32_t old_pages, std::uint32_t new_pages) {
  KMEM_ASSERT(new_pages > old_pages, "large_grow sizes");
  if (g.src->resize_pages == nullptr) return 0;
  kmem_guard guard(g.pages_lock);
  // A cached run right after the block goes back to the source first, so that the source
  // can grow the block in place (it hands the pages out again zeroed: the growth reads as
  // zeros, which a cached dirty run would not).
  std::uintptr_t end = a + (std::uintptr_t{old_pages} << kPageShift);
  if (lcache_take_at_locked(end, new_pages - old_pages)) {
    source_free_locked(end, new_pages - old_pages);
  } else if (g.lcache_n != 0) {
    // A cached run that fits: the block moves into it (pages the host already holds, so the
    // copy faults nothing in and the memory a program freed is reused before fresh pages),
    // and its old pages are cached in turn.  The growth is cleared: it reads as zeros.
    lcache_expire_locked(coarse_ticks(), false);
    if (std::uintptr_t na = lcache_take_locked(new_pages, 1)) {
      std::memcpy(reinterpret_cast<void*>(na), reinterpret_cast<const void*>(a), std::size_t{old_pages} << kPageShift);
      std::memset(reinterpret_cast<void*>(na + (std::uintptr_t{old_pages} << kPageShift)), 0,
                  std::size_t{new_pages - old_pages} << kPageShift);
      kmemusage* ku = usage_of(na);
      set_large_state(ku, KU_LARGE);
      ku->ku_pagecnt = new_pages;
      kmemusage* old = usage_of(a);
      set_large_state(old, KU_FREED_LARGE);
      old->ku_pagecnt = 0;
      lcache_put_locked(a, old_pages);
      g.large_pages += new_pages - old_pages;
      return na;
    }
  }
  void* p = g.src->resize_pages(g.src->ctx, reinterpret_cast<void*>(a), old_pages, new_pages);
  if (p == nullptr) return 0;
  std::uintptr_t na = reinterpret_cast<std::uintptr_t>(p);
  KMEM_ASSERT(na >= g.base && na + std::uintptr_t{new_pages} * kPageSize <= g.base + g.size && (na & kPageMask) == 0,
              "page source resized pages outside its arena");
  if (na != a) {  // moved: the old first page is a freed large head (a later free of it is a double free)
    kmemusage* old = usage_of(a);
    set_large_state(old, KU_FREED_LARGE);
    old->ku_pagecnt = 0;
  }
  kmemusage* ku = usage_of(na);
  set_large_state(ku, KU_LARGE);
  ku->ku_pagecnt = new_pages;
  g.large_pages += new_pages - old_pages;
  g.pages_from_source += new_pages - old_pages;
  return na;
}

void large_shrink(std::uintptr_t a, std::uint32_t old_pages, std::uint32_t new_pages) {
  KMEM_ASSERT(new_pages > 0 && new_pages < old_pages, "large_shrink sizes");
  kmem_guard guard(g.pages_lock);
  usage_of(a)->ku_pagecnt = new_pages;
  g.large_pages -= old_pages - new_pages;
  std::uintptr_t rest = a + (std::uintptr_t{new_pages} << kPageShift);
  if (keep_freed_locked()) {  // the cut-off tail is cached like a freed block
    kmemusage* ku = usage_of(rest);
    set_large_state(ku, KU_FREED_LARGE);
    ku->ku_pagecnt = 0;
    lcache_put_locked(rest, old_pages - new_pages);
    return;
  }
  source_free_locked(rest, old_pages - new_pages);
}

}  // namespace vmrt::kmem::detail
