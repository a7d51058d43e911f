// kmem_bucket.cpp — the bucket layer (4.4BSD kmembuckets) and the page layer.
//
// Each bucket owns clusters (kmem_bucket_index.h): the smallest run of pages its
// elements fill exactly — one page for power-of-two elements up to a page, d pages
// for sizes d * 2^k (d = 3, 5, 7) whose elements straddle pages, one element of
// whole pages for page multiples.  A cluster's free elements form a list threaded through word 0
// of each free element (an offset inside the cluster); its kmemusage record holds
// the list head and the free count, and links the cluster onto its bucket's
// `partial` or `empty` list.  Freeing the last used element of a cluster moves it
// to `empty`; while the bucket holds more than kb_highwat free elements, empty
// clusters go back to the page layer at once (kb_couldfree counts them), oldest first,
// where the free-run pool keeps them for the decay time (kmem_config::decay_ms).
//
// The page layer hands out single pages from a small cache refilled kPageBatch
// pages at a time from the page source (one source call per batch).  Multi-page
// clusters come from per-bucket caches of never-used runs, kRunBatchPages per call.
// Clusters given back go to the free-run pool: coalesced with the pool's runs they
// touch, carved again by any bucket (a new cluster is cut from the pool before the
// caches and the source), and given to the source once they have waited the decay
// time.  With no decay (4.4BSD) they go to the source (single pages through the cache).
#include <cstring>
#include <ctime>

#include "kmem/kmem_assert.h"
#include "kmem/kmem_internal.h"

namespace vmrt::kmem::detail {
namespace {
std::size_t page_cache_flush_locked();
std::size_t pool_expire_locked(std::uint16_t now, bool all);
}  // namespace

std::uint16_t coarse_ticks() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  std::uint64_t ns = static_cast<std::uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<std::uint64_t>(ts.tv_nsec);
  return static_cast<std::uint16_t>(ns >> 24);
}

// => pages lock held.  Gives npages at a back to the source.
void source_free_locked(std::uintptr_t a, std::size_t npages) {
  g.src->free_pages(g.src->ctx, reinterpret_cast<void*>(a), npages);
  g.pages_from_source -= npages;
}

bool keep_freed_locked() {
  if (g.decay_ticks == 0) return false;
  if (g.src->shortages == nullptr) return true;
  const std::uint32_t n = g.src->shortages(g.src->ctx);
  if (n == g.short_seen && !g.short_now) return true;  // the usual case: no clock read
  const std::uint16_t now = coarse_ticks();
  if (n != g.short_seen) {
    g.short_seen = n;
    g.short_stamp = now;
    g.short_now = true;
    ++g.short_releases;
    const std::size_t bytes = page_cache_flush_locked() + lcache_expire_locked(0, true) + medium_trim_locked();
    g.short_pages += bytes >> kPageShift;
  } else if (static_cast<std::uint16_t>(now - g.short_stamp) >= g.decay_ticks) {  // (short_now here)
    g.short_now = false;
  }
  return !g.short_now;
}

// => pages lock held.  Allocates npages (aligned) from the source, flushing the
// page cache and retrying once when the arena is full.  Null when exhausted.  (A source
// short of memory first gets back what kmem keeps: a program that only allocates after
// the shortage began would otherwise never free into keep_freed_locked to see it.)
void* source_alloc_locked(std::size_t npages, std::size_t align_pages, bool* zeroed) {
  (void)keep_freed_locked();
  auto get = [&] {
    if (zeroed != nullptr && g.src->alloc_pages_any != nullptr)
      return g.src->alloc_pages_any(g.src->ctx, npages, align_pages, zeroed);
    if (zeroed != nullptr) *zeroed = true;
    return g.src->alloc_pages(g.src->ctx, npages, align_pages, false);
  };
  void* p = get();
  if (p == nullptr && g.page_cache_n != 0) {
    page_cache_flush_locked();
    p = get();
  }
  if (p != nullptr) {
    std::uintptr_t a = reinterpret_cast<std::uintptr_t>(p);
    KMEM_ASSERT(a >= g.base && a + npages * kPageSize <= g.base + g.size && (a & kPageMask) == 0,
                "page source returned pages outside its arena");
    g.pages_from_source += npages;
  }
  return p;
}

namespace {

inline constexpr std::uint32_t kPageBatch = 64;
inline constexpr std::uint32_t kRunBatchPages = 64;  // multi-page clusters per source call: 64 / npg
inline constexpr std::uint8_t kRunBatchGrowth = 6;   // a class's first batches: 1, 2, 4, ... runs
static_assert((std::uint32_t{1} << kRunBatchGrowth) >= kRunBatchPages, "the doubling reaches the full batch");
inline constexpr std::uint64_t kPageCacheMax = 128;
static_assert(kPageBatch <= kPageCacheMax);

// ---- page layer (pages lock) -------------------------------------------------------------

// => pages lock held.  Returns every cached page to the source; bytes given back.
std::size_t page_cache_flush_locked() {
  std::size_t n = pool_expire_locked(0, true) >> kPageShift;
  while (g.page_cache != kNil) {
    std::uint32_t pg = g.page_cache;
    kmemusage* ku = &g.usage[pg];
    g.page_cache = ku->ku_next;
    set_ku_indx(ku, KU_UNUSED);
    ku->ku_next = kNil;
    source_free_locked(page_addr(pg), 1);
    ++n;
  }
  g.page_cache_n = 0;
  for (unsigned i = kMinBucket; i <= kMaxBucket; ++i) {
    std::uint32_t npg = pages_per_cluster(i);
    while (g.run_cache_n[i] != 0) {
      std::uint32_t pg = g.run_cache[i];
      kmemusage* ku = &g.usage[pg];
      g.run_cache[i] = ku->ku_next;
      --g.run_cache_n[i];
      set_ku_indx(ku, KU_UNUSED);
      ku->ku_next = kNil;
      source_free_locked(page_addr(pg), npg);
      n += npg;
    }
  }
  return n * kPageSize;
}


// ---- free-run pool (pages lock) --------------------------------------------------------------
// Why: a bucket's all-free clusters could only be carved again by the same bucket, so a
// program whose objects move between classes held each class's peak at once — allocsuite's
// realloc_growth (buffers growing through the 1-16 KiB classes together) kept ~10 MB of
// all-free clusters for a 5 MB peak in use, 1.17-1.18x jemalloc's peak RSS, whose freed
// slabs return to page-level extents any size class reuses.  Here a cluster leaves its
// bucket as soon as the bucket is above its high-water mark, and its pages wait in the pool,
// merged with the runs they touch (boundary tags in kmemusage: KL_POOL_HEAD on a run's
// first page with its length, KL_POOL_TAIL on its last naming the first), until a bucket
// carves a cluster from them or the decay time passes.  No system call either way.
constexpr std::uint32_t kPoolRunMax = 0xffff;  // ku_freecnt holds the length
constexpr unsigned pool_bin(std::uint32_t n) { return n <= kmem_globals::kPoolExact ? n : 0; }
static_assert(pages_per_cluster(kMaxBucket) <= kmem_globals::kPoolExact, "every cluster length has its own bin");

// => pages lock held.  Files the run [pg, pg + n) at the head of its bin with its tags.
void pool_link_locked(std::uint32_t pg, std::uint32_t n, std::uint16_t stamp) {
  kmemusage* ku = &g.usage[pg];
  const unsigned b = pool_bin(n);
  set_ku_indx(ku, KU_CACHED);
  ku->ku_list = KL_POOL_HEAD;
  ku->ku_freecnt = static_cast<std::uint16_t>(n);
  ku->ku_stamp = stamp;
  ku->ku_prev = kNil;
  ku->ku_next = g.pool_head[b];
  if (ku->ku_next != kNil) g.usage[ku->ku_next].ku_prev = pg;
  else g.pool_tail[b] = pg;
  g.pool_head[b] = pg;
  if (n > 1) {
    kmemusage* t = &g.usage[pg + n - 1];
    set_ku_indx(t, KU_CACHED);
    t->ku_list = KL_POOL_TAIL;
    t->ku_next = pg;
  }
  g.pool_pages += n;
}

// => pages lock held.  Takes the run whose first page is pg out of the pool, its tags
// cleared (its pages are KU_UNUSED again); returns its length.
std::uint32_t pool_unlink_locked(std::uint32_t pg) {
  kmemusage* ku = &g.usage[pg];
  const std::uint32_t n = ku->ku_freecnt;
  const unsigned b = pool_bin(n);
  if (ku->ku_prev != kNil) g.usage[ku->ku_prev].ku_next = ku->ku_next;
  else g.pool_head[b] = ku->ku_next;
  if (ku->ku_next != kNil) g.usage[ku->ku_next].ku_prev = ku->ku_prev;
  else g.pool_tail[b] = ku->ku_prev;
  set_ku_indx(ku, KU_UNUSED);
  ku->ku_list = KL_NONE;
  ku->ku_freecnt = 0;
  ku->ku_next = ku->ku_prev = kNil;
  if (n > 1) {
    kmemusage* t = &g.usage[pg + n - 1];
    set_ku_indx(t, KU_UNUSED);
    t->ku_list = KL_NONE;
    t->ku_next = kNil;
  }
  g.pool_pages -= n;
  return n;
}

// => pages lock held.  The first page of the pool run that ends at page pg - 1 (kNil: none).
// Is the neighbouring page's record a cached (pooled) page's?  => pages lock held.  A
// neighbour may be a bucket's page, whose ku_list its bucket's lock guards: ku_indx (the
// pages lock's) is read alone first, so that no load of ku_list is merged with it (a TSan
// data race in kmem_thread_test: a 2-byte load of both against bucket_alloc's ku_list store).
inline bool pooled_neighbour(const kmemusage& u) {
  return __atomic_load_n(&u.ku_indx, __ATOMIC_RELAXED) == KU_CACHED;
}

std::uint32_t pool_run_before_locked(std::uint32_t pg) {
  if (pg == 0) return kNil;
  const kmemusage& l = g.usage[pg - 1];
  if (!pooled_neighbour(l)) return kNil;
  if (l.ku_list == KL_POOL_HEAD) return pg - 1;
  if (l.ku_list == KL_POOL_TAIL) return l.ku_next;
  return kNil;
}

// => pages lock held.  Gives back runs that waited the decay time (all: every run), the
// oldest of each bin first; bytes given back.  (A run's remainder after a cut keeps its
// stamp at the head of its bin, so it may go back a little later than its time.)
std::size_t pool_expire_locked(std::uint16_t now, bool all) {
  std::size_t pages = 0;
  for (unsigned b = 0; b <= kmem_globals::kPoolExact; ++b) {
    while (g.pool_tail[b] != kNil) {
      const std::uint32_t pg = g.pool_tail[b];
      if (!all && static_cast<std::uint16_t>(now - g.usage[pg].ku_stamp) < g.decay_ticks) break;
      const std::uint32_t n = pool_unlink_locked(pg);
      source_free_locked(page_addr(pg), n);
      pages += n;
    }
  }
  return pages << kPageShift;
}

// => pages lock held.  Puts the free run [pg, pg + n) into the pool, merged with the runs
// right before and after it.
void pool_put_locked(std::uint32_t pg, std::uint32_t n) {
  const std::uint16_t now = coarse_ticks();
  std::uint32_t l = pool_run_before_locked(pg);
  if (l != kNil && g.usage[l].ku_freecnt + n <= kPoolRunMax) {
    n += pool_unlink_locked(l);
    pg = l;
  }
  if (pg + n < g.npages) {
    const kmemusage& r = g.usage[pg + n];
    if (pooled_neighbour(r) && r.ku_list == KL_POOL_HEAD && r.ku_freecnt + n <= kPoolRunMax)
      n += pool_unlink_locked(pg + n);
  }
  pool_link_locked(pg, n, now);
  pool_expire_locked(now, false);
}

// => pages lock held.  npg pages cut from the front of the newest pool run of exactly
// that length, else of the shortest longer one (the rest stays pooled); kNil when none.
std::uint32_t pool_take_locked(std::uint32_t npg) {
  std::uint32_t pg = kNil;
  for (unsigned b = npg; b <= kmem_globals::kPoolExact && pg == kNil; ++b) pg = g.pool_head[b];
  if (pg == kNil) pg = g.pool_head[0];
  if (pg == kNil) return kNil;
  const std::uint16_t stamp = g.usage[pg].ku_stamp;
  const std::uint32_t n = pool_unlink_locked(pg);
  if (n > npg) pool_link_locked(pg + npg, n - npg, stamp);
  ++g.pool_reused;
  return pg;
}

// => pages lock held.
void page_cache_push_locked(std::uint32_t pg) {
  kmemusage* ku = &g.usage[pg];
  set_ku_indx(ku, KU_CACHED);
  ku->ku_next = g.page_cache;
  g.page_cache = pg;
  ++g.page_cache_n;
}

// => pages lock held.  A fresh multi-page cluster's first page is written at once (its first
// element carved); the rest as its elements go out (lazy carving, below): the first page
// alone is populated (a call where the write was a fault; nothing made resident that the
// cluster does not write).
void* populate_first_locked(void* run) {
  if (run != nullptr && g.src->populate_pages != nullptr) g.src->populate_pages(g.src->ctx, run, 1);
  return run;
}

// => takes the pages lock.  A run of pages_per_cluster(indx) pages for a
// multi-page cluster, from the bucket's run cache, refilled kRunBatchPages at a
// time.  Null when the arena is exhausted.
void* run_get(unsigned indx) {
  const std::uint32_t npg = pages_per_cluster(indx);
  kmem_guard guard(g.pages_lock);
  if (std::uint32_t pg = pool_take_locked(npg); pg != kNil) return reinterpret_cast<void*>(page_addr(pg));
  if (g.run_cache_n[indx] == 0) {
    // kRunBatchPages counted in one-element clusters: a cluster of many elements (112 B: 256
    // in 7 pages) is asked for alone (64-page batches for every such class left 518 pages in
    // the page and run caches at the end of allocsuite's larson, 100 after, 63 with
    // power-of-two buckets; peak RSS unchanged).
    // A class's batches start at one run and double (kRunBatchGrowth): a short process
    // uses a few clusters of each class it meets, and 64 pages of heap address space for each
    // such class spread git status's 30 heap pages over 1.9 MiB, into a second 2 MiB block
    // (a host page-table page more to fill, copy at every fork and free at exit).
    std::uint32_t runs = kRunBatchPages / (npg * elm_per_cluster(indx));
    if (g.run_batches[indx] < kRunBatchGrowth) {
      const std::uint32_t cap = std::uint32_t{1} << g.run_batches[indx]++;
      if (runs > cap) runs = cap;
    }
    void* p = runs > 1 ? source_alloc_locked(std::size_t{runs} * npg, 1) : nullptr;
    if (p == nullptr) return populate_first_locked(source_alloc_locked(npg, 1));
    std::uint32_t first = page_of(reinterpret_cast<std::uintptr_t>(p));
    for (std::uint32_t r = runs; r-- > 1;) {
      std::uint32_t pg = first + r * npg;
      kmemusage* ku = &g.usage[pg];
      set_ku_indx(ku, KU_CACHED);
      ku->ku_next = g.run_cache[indx];
      g.run_cache[indx] = pg;
      ++g.run_cache_n[indx];
    }
    return populate_first_locked(p);
  }
  std::uint32_t pg = g.run_cache[indx];
  g.run_cache[indx] = g.usage[pg].ku_next;
  --g.run_cache_n[indx];
  return populate_first_locked(reinterpret_cast<void*>(page_addr(pg)));
}

// Single pages ahead.  A page taken for a new cluster is written at once (its first element
// is carved), and the pages of a fresh batch go out in address order: the next
// kPopulateAhead of them are made resident in one call (the page source's populate_pages)
// where each would be a page fault of its own, 15-50 us on these guests against ~1 us a page
// populated.  A short process (git, sed, a shell's children) takes a few dozen; at most
// kPopulateAhead - 1 pages are resident unused.
inline constexpr std::uint32_t kPopulateAhead = 8;
static_assert(kPopulateAhead <= kPageBatch);

// => pages lock held.  pg is being handed out: populates ahead within the fresh batch.
void populate_ahead_locked(std::uint32_t pg) {
  if (g.src->populate_pages == nullptr || pg < g.populated_to || pg >= g.fresh_end) return;
  const std::uint32_t n = g.fresh_end - pg < kPopulateAhead ? g.fresh_end - pg : kPopulateAhead;
  g.src->populate_pages(g.src->ctx, reinterpret_cast<void*>(page_addr(pg)), n);
  g.populated_to = pg + n;
}

// => takes the pages lock.  One page for a cluster, or kNil.
std::uint32_t page_get() {
  kmem_guard guard(g.pages_lock);
  if (std::uint32_t pg = pool_take_locked(1); pg != kNil) return pg;
  if (g.page_cache == kNil) {
    void* p = source_alloc_locked(kPageBatch, 1);
    std::size_t n = kPageBatch;
    if (p == nullptr) {
      p = source_alloc_locked(1, 1);
      n = 1;
    }
    if (p == nullptr) return kNil;
    std::uint32_t first = page_of(reinterpret_cast<std::uintptr_t>(p));
    for (std::size_t i = n; i-- > 1;) page_cache_push_locked(first + static_cast<std::uint32_t>(i));
    g.fresh_end = first + static_cast<std::uint32_t>(n);
    g.populated_to = first;
    populate_ahead_locked(first);
    return first;
  }
  std::uint32_t pg = g.page_cache;
  kmemusage* ku = &g.usage[pg];
  g.page_cache = ku->ku_next;
  --g.page_cache_n;
  populate_ahead_locked(pg);
  return pg;
}

// ---- cluster lists (bucket lock) -------------------------------------------------------------

void list_push(cl_list* l, std::uint32_t pg, ku_list which) {
  kmemusage* ku = &g.usage[pg];
  ku->ku_list = which;
  ku->ku_prev = kNil;
  ku->ku_next = l->head;
  if (l->head != kNil) g.usage[l->head].ku_prev = pg;
  else l->tail = pg;
  l->head = pg;
}

void list_remove(cl_list* l, std::uint32_t pg) {
  kmemusage* ku = &g.usage[pg];
  if (ku->ku_prev != kNil) g.usage[ku->ku_prev].ku_next = ku->ku_next;
  else l->head = ku->ku_next;
  if (ku->ku_next != kNil) g.usage[ku->ku_next].ku_prev = ku->ku_prev;
  else l->tail = ku->ku_prev;
  ku->ku_next = ku->ku_prev = kNil;
  ku->ku_list = KL_NONE;
}

cl_list* list_of(kmembucket& kb, ku_list which) { return which == KL_PARTIAL ? &kb.kb_partial : &kb.kb_empty; }

// => bucket lock held.  Files an all-free cluster on the empty list.
void push_empty(kmembucket& kb, std::uint32_t pg) { list_push(&kb.kb_empty, pg, KL_EMPTY); }

// Lazy carving.  The 4.4BSD allocator carves a new cluster into its free list at once,
// writing every element; a cluster of a class that straddles pages is 3-7 pages (one of 48
// bytes: 3, of 224: 7), so a program's first malloc of a size touched all of them (sqlite3
// starting up: ~150 of its ~350 page faults).  Here a new cluster's list holds its first
// element only, and a link with kLazyLink set says that the elements from that offset on
// were never carved: taking it carves the next one (link and free marker).  Pages are
// touched as their elements are handed out, at most one element ahead.  (A wild free of a
// never-carved element is not caught as the double free it looked like before.)
// (kLazyLink: kmem_internal.h, with the other links a free marker binds.)

// => bucket lock held.  Makes the element at e free with list link `link`.
inline void carve_one(std::uintptr_t e, std::uintptr_t link) {
  mark_free(e, link);
}

// => bucket lock held.  Carves a new cluster for bucket indx onto its empty list.
// False when the arena is exhausted.  May take the pages lock.
bool cluster_new(unsigned indx) {
  kmembucket& kb = g.classes[indx].kb;
  std::uintptr_t a;
  if (kb.kb_npg == 1) {
    std::uint32_t pg = page_get();
    if (pg == kNil) return false;
    a = page_addr(pg);
  } else {
    void* p = run_get(indx);
    if (p == nullptr) return false;
    a = reinterpret_cast<std::uintptr_t>(p);
  }
  const std::size_t size = bucket_size(indx);
  if (g.diag) {
    // Diagnostics check every free element's pattern: carve them all now.
    for (std::uint32_t i = 0; i < kb.kb_elmpercl; ++i) {
      std::uintptr_t e = a + i * size;
      diag_on_free(e, size, M_FREE);  // pattern + state; before the link words
      carve_one(e, (i + 1 < kb.kb_elmpercl) ? (i + 1) * size : kNoFree);
    }
  } else {
    carve_one(a, kb.kb_elmpercl > 1 ? kLazyLink | size : kNoFree);
  }
  kmemusage* ku = usage_of(a);
  set_ku_indx(ku, static_cast<std::uint8_t>(indx));
  if (kClasses.straddle[indx])
    for (std::uint32_t p = 1; p < kb.kb_npg; ++p) page_code(page_of(a) + p) = tail_code(indx, p);
  ku->ku_freecnt = static_cast<std::uint16_t>(kb.kb_elmpercl);
  ku->ku_freehead = 0;
  push_empty(kb, page_of(a));
  kb.kb_nfree += kb.kb_elmpercl;
  kb.kb_total += kb.kb_elmpercl;
  ++kb.kb_clusters;
  return true;
}

// => bucket lock held.  Takes the all-free cluster at pg out of bucket indx;
// the caller gives its pages back with cluster_give() after dropping the lock.
void cluster_detach(unsigned indx, std::uint32_t pg) {
  kmembucket& kb = g.classes[indx].kb;
  kmemusage* ku = &g.usage[pg];
  KMEM_ASSERT(ku->ku_indx == indx && ku->ku_freecnt == kb.kb_elmpercl && ku->ku_list == KL_EMPTY,
              "releasing a cluster that is not empty");
  list_remove(&kb.kb_empty, pg);
  kb.kb_nfree -= kb.kb_elmpercl;
  kb.kb_total -= kb.kb_elmpercl;
  --kb.kb_clusters;
  ++kb.kb_couldfree;
  set_ku_indx(ku, KU_UNUSED);
  if (kClasses.straddle[indx])
    for (std::uint32_t p = 1; p < kb.kb_npg; ++p) page_code(pg + p) = KU_UNUSED;
  ku->ku_freecnt = 0;
  ku->ku_freehead = kNoFree;
}

// => bucket lock NOT held; takes the pages lock.  Gives a detached cluster's
// pages to the free-run pool (unless to_source or there is no decay), else to the page
// cache (single pages) or the source.
void cluster_give(std::uint32_t pg, std::uint32_t npg, bool to_source) {
  kmem_guard guard(g.pages_lock);
  if (!to_source && keep_freed_locked()) {
    pool_put_locked(pg, npg);
  } else if (npg == 1 && !to_source && g.page_cache_n < kPageCacheMax) {
    page_cache_push_locked(pg);
  } else {
    source_free_locked(page_addr(pg), npg);
  }
}

// ---- chains to and from the clusters (bucket lock) -------------------------------------------
// A thread's magazines are chains (kmem_internal.h); a refill takes elements off their
// clusters straight onto a chain, and a spill walks a chain straight onto the clusters, each
// under the bucket lock held for at most kBatch elements at a time (another thread of the
// class waits at most that long).  They went through a 64-pointer array before: a spill
// checked the chain into it (chain_elem_ok) and bucket_free looked each element's cluster
// up again, per element the cluster's list tests and an assert; a refill filled it and a
// second pass linked the chain.  Callgrind of python3 (a 20000-entry dict/sort/json script)
// under the shim: spills 84 -> 54 instructions an element, refills 57 -> 14 (README,
// Thread caches).

// Elements moved per bucket-lock hold.  A multiple of every class's cache-line run
// (line_run), so a refill taken in several holds ends each on a line boundary.
inline constexpr std::uint32_t kBatch = 64;
constexpr bool batch_keeps_lines() {
  for (unsigned i = kMinBucket; i <= kMaxBucket; ++i)
    if (kBatch % line_run(i) != 0) return false;
  return true;
}
static_assert(batch_keeps_lines(), "refill batches end on cache-line boundaries (line_run)");
// Clusters one spill batch may give back (the rest wait for the next batch or free).
inline constexpr std::uint32_t kReleaseMax = 16;

// The spill tests an element's class and element start with the bucket's own divisibility
// magic, held in a register: a code names class i exactly when its magic is i's (classes
// have distinct sizes, states and unused codes magic 0), so "magic[code] == magic[i] and
// the offset passes" is free_class(code, a) == i, with no load of the class byte.
constexpr bool magic_names_class() {
  for (unsigned i = kMinBucket; i <= kMaxBucket; ++i)
    for (unsigned c = 0; c < 256; ++c)
      if ((kCodes.magic[c] == kCodes.magic[i]) != (kCodes.cls[c] == i)) return false;
  return true;
}
static_assert(magic_names_class(), "a code has class i's magic exactly when it names class i");
static_assert(sizeof(kmemusage) == 16, "chain_to_clusters: a page's record at its page offset >> (kPageShift - 4)");

// => bucket lock held.  A free made cluster pg's count cnt, its first free element (full,
// on no list -> partial) or its last (partial or full -> empty): moves it between lists.
[[gnu::noinline]] void cluster_refile_freed(kmembucket& kb, std::uint32_t pg, std::uint32_t cnt) {
  kmemusage* ku = &g.usage[pg];
  KMEM_ASSERT(cnt <= kb.kb_elmpercl && ku->ku_indx == class_of(kb),
              "element freed into the wrong bucket, or more free elements than its cluster holds");
  if (cnt == kb.kb_elmpercl) {
    if (ku->ku_list == KL_PARTIAL) list_remove(&kb.kb_partial, pg);
    push_empty(kb, pg);
  } else {
    list_push(&kb.kb_partial, pg, KL_PARTIAL);
  }
}

// => bucket lock held.  Above twice the high-water mark, the oldest all-free clusters (at
// most kReleaseMax) leave bucket indx for the page layer: detached into rel, for the caller
// to give back with cluster_give once it has dropped the lock.  Returns how many.
std::uint32_t clusters_over_highwat(unsigned indx, std::uint32_t* rel) {
  kmembucket& kb = g.classes[indx].kb;
  std::uint32_t nrel = 0;
  if (kb.kb_nfree > 2 * kb.kb_highwat) {
    while (nrel < kReleaseMax && kb.kb_nfree > kb.kb_highwat && kb.kb_empty.tail != kNil) {
      const std::uint32_t pg = kb.kb_empty.tail;
      cluster_detach(indx, pg);
      rel[nrel++] = pg;
    }
  }
  return nrel;
}

// => bucket lock held.  Frees the first n elements of the chain at a onto their clusters
// of bucket kb (divisibility magic `magic`), each checked as chain_elem_ok does (in the
// arena, an element start of the class via its page code, free marker intact) before its
// link is followed or its cluster touched; the page code it loads gives the cluster too.
// Returns the chain's next element and how many of the n were not freed (nonzero: that
// element is broken, for the caller to report).  Out of line from the lock and the page layer's calls, so the
// loop keeps its values in registers.  kb_nfree is the caller's to update.
struct chain_walk {
  std::uintptr_t next;  // the chain's first element not freed
  std::uint32_t left;   // of the n asked for, not freed (nonzero: next is broken)
};
[[gnu::noinline]] chain_walk chain_to_clusters(kmembucket& kb, std::uint64_t magic, std::uintptr_t a, std::uint32_t n) {
  const std::uintptr_t base = g.base;
  const std::uintptr_t arena = g.size;
  const std::uintptr_t cookie = g.cookie;
  std::uint8_t* const pgindx = g.pgindx;
  kmemusage* const usage = g.usage;
  // A cluster changes lists only at its first free element (count 1) and when all are free
  // (count kb_elmpercl): count - 2 >= kb_elmpercl - 2, unsigned, is both tests in one (a
  // one-element cluster's count 1 is both; the wrap makes the bound all ones, still taken).
  const std::uint32_t edge = kb.kb_elmpercl - 2;
  std::uint32_t left = n;  // (n itself is not kept: one register more for the loop)
  for (; left != 0; --left) {
    const std::uintptr_t off = a - base;
    if (__builtin_expect(off >= arena, 0)) break;
    const std::size_t code = code_below(pgindx, off >> kPageShift);
    const std::uint32_t prel = kCodes.rel[code];
    const std::uintptr_t rel = (a & kPageMask) + prel;  // offset in the cluster
    if (__builtin_expect(kCodes.magic[code] != magic || rel * magic >= magic, 0)) break;
    std::uintptr_t* w = reinterpret_cast<std::uintptr_t*>(a);
    const std::uintptr_t next = w[0];
    const std::uintptr_t m = a ^ cookie;
    if (__builtin_expect(w[1] != (m ^ next), 0)) break;
    // The cluster's record: off - rel is its first page's offset, page-aligned, so one shift
    // gives the record's byte offset.
    kmemusage* ku = reinterpret_cast<kmemusage*>(reinterpret_cast<char*>(usage) + ((off - rel) >> (kPageShift - 4)));
    const std::uintptr_t link = ku->ku_freehead;
    w[0] = link;  // mark_free(a, link): the marker now binds the cluster list's link
    w[1] = m ^ link;
    ku->ku_freehead = static_cast<std::uint16_t>(rel);
    const std::uint32_t cnt = ku->ku_freecnt + 1u;
    ku->ku_freecnt = static_cast<std::uint16_t>(cnt);
    if (__builtin_expect(cnt - 2 >= edge, 0)) cluster_refile_freed(kb, static_cast<std::uint32_t>(ku - usage), cnt);
    a = next;
  }
  return {a, left};
}

}  // namespace

std::uint32_t bucket_alloc(unsigned indx, void** chain, std::uint32_t n) {
  kmembucket& kb = g.classes[indx].kb;
  const std::uint64_t magic = kCodes.magic[indx];  // a link is a multiple of the size
  const std::uintptr_t size = bucket_size(indx);
  const std::uintptr_t limit = std::uintptr_t{kb.kb_npg} << kPageShift;
  const std::uintptr_t cookie = g.cookie;
  std::uintptr_t head = 0;  // the chain so far; its first element ends deepest
  std::uint32_t got = 0;
  bool dry = false;
  while (got < n && !dry) {
    const std::uint32_t stop = n - got > kBatch ? got + kBatch : n;
    std::uintptr_t bad = 0;  // a broken list's element: reported once the lock is dropped
    {
      kmem_guard guard(kb.kb_lock);
      while (got < stop) {
        const std::uint32_t pg = kb.kb_partial.head != kNil ? kb.kb_partial.head : kb.kb_empty.head;
        if (pg == kNil) {
          if (!cluster_new(indx)) {
            dry = true;
            break;
          }
          continue;
        }
        kmemusage* ku = &g.usage[pg];
        const std::uintptr_t a = page_addr(pg);
        std::uint32_t cnt = ku->ku_freecnt;  // > 0: the cluster is on a list
        std::uintptr_t off = ku->ku_freehead;
        const std::uint32_t want = stop - got < cnt ? stop - got : cnt;
        // k counts down the elements still to take; the link of the cluster's last free
        // element (k == 1 with none left after this take) is not followed.
        const std::uint32_t last = want == cnt ? 1 : 0;
        std::uint32_t k = want;
        std::uintptr_t e;
        bool broken = false;
        do {
          e = a + off;
          const std::uintptr_t* w = reinterpret_cast<const std::uintptr_t*>(e);
          std::uintptr_t next = w[0];
          const std::uintptr_t m = e ^ cookie;
          // The link is trusted through the element's free marker, as a chain's is; a valid
          // marker over a bad link (a forged cookie, or a bug) counts as broken too.
          if (__builtin_expect(w[1] != (m ^ next), 0)) {
            broken = true;
            break;
          }
          if ((next & kLazyLink) != 0) {
            // Never carved from next on: the rest of the list fills the cluster from there
            // to its end.  Take e, then the never-carved elements in address order with only
            // their chain words written (a carve would write them first), and carve the one
            // after them.
            next &= ~kLazyLink;
            const std::uint32_t left = cnt - (want - k);  // on the list, e included
            if (std::uintptr_t{left - 1} * size != limit - next) {
              broken = true;
              break;
            }
            mark_free(e, head);
            head = e;
            std::uintptr_t u = a + next;
            for (--k; k != 0; --k, u += size) {
              mark_free(u, head);
              head = u;
            }
            off = u - a;
            const std::uint32_t rest = cnt - want;  // never carved, after this take
            if (rest != 0) carve_one(u, rest > 1 ? kLazyLink | (off + size) : kNoFree);
            break;
          }
          if (__builtin_expect(k > last && (next >= limit || next * magic >= magic), 0)) {
            broken = true;
            break;
          }
          mark_free(e, head);
          head = e;
          off = next;
        } while (--k != 0);
        const std::uint32_t taken = want - k;
        got += taken;
        if (__builtin_expect(broken, 0)) {
          // Written after free: e and the rest of the list are dropped (leaked, never
          // handed out), the cluster left full; the batch ends here.
          bad = e;
          kb.kb_nfree -= cnt;
          cnt = 0;
        } else {
          kb.kb_nfree -= taken;
          cnt -= taken;
        }
        ku->ku_freecnt = static_cast<std::uint16_t>(cnt);
        ku->ku_freehead = static_cast<std::uint16_t>(cnt != 0 ? off : kNoFree);
        // Re-file the cluster: empty -> partial -> full (on no list).
        const ku_list from = static_cast<ku_list>(ku->ku_list);
        const ku_list to = cnt == 0 ? KL_NONE : KL_PARTIAL;
        if (to != from) {
          list_remove(list_of(kb, from), pg);
          if (to != KL_NONE) list_push(list_of(kb, to), pg, to);
        }
        if (__builtin_expect(bad != 0, 0)) break;
      }
    }
    if (__builtin_expect(bad != 0, 0)) chain_broken(reinterpret_cast<void*>(bad));
  }
  *chain = reinterpret_cast<void*>(head);
  return got;
}

std::uint32_t bucket_free(unsigned indx, void* chain, std::uint32_t n) {
  kmembucket& kb = g.classes[indx].kb;
  std::uintptr_t a = reinterpret_cast<std::uintptr_t>(chain);
  std::uint32_t done = 0;
  while (done < n) {
    const std::uint32_t batch = n - done > kBatch ? kBatch : n - done;
    std::uint32_t release[kReleaseMax];
    std::uint32_t nrel, freed;
    {
      kmem_guard guard(kb.kb_lock);
      const chain_walk r = chain_to_clusters(kb, kCodes.magic[indx], a, batch);
      a = r.next;
      freed = batch - r.left;
      kb.kb_nfree += freed;
      nrel = clusters_over_highwat(indx, release);
    }
    for (std::uint32_t i = 0; i < nrel; ++i) cluster_give(release[i], kb.kb_npg, false);
    done += freed;
    if (freed != batch) {
      // A first-chunk element has no cluster to go back to: retired (kmem_first_chunk.h).
      if (chain_elem_ok(a, indx) && page_code((a - g.base) >> kPageShift) == kFirstCode) {
        const std::uintptr_t next = reinterpret_cast<const std::uintptr_t*>(a)[0];
        first_retire(a, indx);
        a = next;
        ++done;
        continue;
      }
      chain_broken(reinterpret_cast<void*>(a));
      break;
    }
  }
  return done;
}

std::uint64_t bucket_free_elements(unsigned indx) {
  kmembucket& kb = g.classes[indx].kb;
  kmem_guard guard(kb.kb_lock);
  return kb.kb_nfree;
}

std::size_t bucket_trim_all() {
  std::size_t bytes = 0;
  for (unsigned i = kMinBucket; i <= kMaxBucket; ++i) {
    kmembucket& kb = g.classes[i].kb;
    for (;;) {
      std::uint32_t release[64];
      std::uint32_t nrel = 0;
      {
        kmem_guard guard(kb.kb_lock);
        while (nrel < 64 && kb.kb_empty.tail != kNil) {
          std::uint32_t pg = kb.kb_empty.tail;
          cluster_detach(i, pg);
          release[nrel++] = pg;
        }
      }
      for (std::uint32_t j = 0; j < nrel; ++j) cluster_give(release[j], kb.kb_npg, true);
      bytes += std::size_t{nrel} * kb.kb_npg << kPageShift;
      if (nrel < 64) break;
    }
  }
  kmem_guard guard(g.pages_lock);
  bytes += page_cache_flush_locked();
  bytes += lcache_expire_locked(0, true);
  return bytes;
}

}  // namespace vmrt::kmem::detail
