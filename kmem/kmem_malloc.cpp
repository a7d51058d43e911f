// kmem_malloc.cpp — malloc/free: validation, type accounting, limits, the fast path.
//
// Fast path (malloc of a bucket size, free of a bucket element): one lzcnt for
// BUCKETINDX, a pop/push on this thread's loaded magazine, a few plain (non-RMW)
// stores to this thread's statistics deltas.  No lock, no atomic RMW, no
// division.  Everything else — the first call of a thread, an empty/full
// magazine, limited types, diagnostics, large blocks, bad pointers — goes to
// the slow paths below.
//
// Free takes no size: the kmemusage record of the block's page gives its
// bucket (or, for a large block, its page count).  A free is refused, changing
// nothing, when the pointer is outside the arena (KMEM_FOREIGN), not the start
// of a block (KMEM_NOT_BLOCK: misaligned for its bucket, in a tail page, in a
// page kmem does not use), or already free (KMEM_DOUBLE_FREE: the free marker
// — word 1 of a free element holds its address XOR a per-process secret — or
// a freed large block's first page).
#include <bit>
#include <cstring>
#include "vm/vm_sys.h"
#include "vm/vm_tables.h"
#include "vm/vm_types.h"
#include <new>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/single_threaded.h>
#include <unistd.h>

#include "kmem/kmem_assert.h"
#include "kmem/kmem_fast.h"
#include "kmem/kmem_first_chunk.h"
#include "kmem/kmem_internal.h"
#include "vm/vm_fail.h"

namespace vmrt::kmem::detail {

constinit kmem_globals g;
// g's static image already holds the per-class constants (kmem_init writes none of them).
constexpr bool image_holds_constants() {
  constexpr kmem_globals image;
  for (unsigned i = kMinBucket; i <= kMaxBucket; ++i)
    if (image.classes[i].kb.kb_npg != pages_per_cluster(i) || image.classes[i].kb.kb_elmpercl != elm_per_cluster(i) ||
        image.classes[i].dp.cap != magazine_cap(i) || image.classes[i].dp.max_full != depot_max_full(i))
      return false;
  return image.pool_head[0] == kNil && image.pool_tail[kmem_globals::kPoolExact] == kNil;
}
static_assert(image_holds_constants(), "the per-class constants are in g's static image");

namespace {

inline constexpr std::uint32_t kLargeMaskBit = 31;

// A type's size mask bit for a block of `bytes` (4.4BSD's ks_size: one bit per power-of-two band).
constexpr std::uint32_t mask_bit(std::size_t bytes) {
  const unsigned band = size_band(bytes);
  return std::uint32_t{1} << (band < kLargeMaskBit ? band : kLargeMaskBit);
}

// ---- type accounting -------------------------------------------------------------------------

// Charges `bytes` to type t for a new block of bucket `indx` (or large).
// => limited types: takes the type lock; with M_WAITOK may sleep until a free
//    of that type makes room.  Returns false (status KMEM_LIMIT) when the
//    request cannot fit under the limit and M_NOWAIT, or can never fit.
bool account_alloc(tcache* tc, malloc_type t, unsigned indx, std::size_t bytes, int flags,
                   kmem_status* st) {
  kmemstats& ks = g.types[t];
  const std::int64_t b = static_cast<std::int64_t>(bytes);
  if ((g.type_slow[t].load(std::memory_order_relaxed) & 1) != 0) {  // diagnostics or a limit (not a hold)
    ks.lock.lock();
    if (ks.limited) {
      bool counted = false;
      while (ks.base + ks.exact_memuse.load(std::memory_order_relaxed) + b >
             static_cast<std::int64_t>(ks.limit)) {
        if (!counted) {
          ks.limblocks.fetch_add(1, std::memory_order_relaxed);
          counted = true;
        }
        if ((flags & M_NOWAIT) != 0 || bytes > ks.limit) {
          ks.lock.unlock();
          if (st != nullptr) *st = KMEM_LIMIT;
          return false;
        }
        std::uint32_t seq = ks.seq.load(std::memory_order_relaxed);
        ks.sleepers.fetch_add(1, std::memory_order_relaxed);
        ks.lock.unlock();
        futex_wait(&ks.seq, seq);
        ks.lock.lock();
        ks.sleepers.fetch_sub(1, std::memory_order_relaxed);
        if (!ks.limited) break;
      }
      if (ks.limited) {
        std::int64_t now = ks.exact_memuse.fetch_add(b, std::memory_order_relaxed) + b;
        ks.exact_inuse.fetch_add(1, std::memory_order_relaxed);
        ks.calls.fetch_add(1, std::memory_order_relaxed);
        ks.mask.fetch_or(mask_bit(bytes), std::memory_order_relaxed);
        if (ks.base + now > ks.maxused.load(std::memory_order_relaxed))
          ks.maxused.store(ks.base + now, std::memory_order_relaxed);
        ks.lock.unlock();
        return true;
      }
    }
    ks.lock.unlock();
  }
  if (tc != nullptr) {
    type_delta& d = tc->td[t];
    if (indx <= kMaxBucket) {
      count_bucket_malloc(tc, t, indx);
    } else {
      ++d.calls;
      d.mask |= mask_bit(bytes);
    }
    d.memuse += b;
    if (d.memuse > d.peak) d.peak = d.memuse;
    return true;
  }
  ks.calls.fetch_add(1, std::memory_order_relaxed);
  ks.inuse.fetch_add(1, std::memory_order_relaxed);
  ks.mask.fetch_or(mask_bit(bytes), std::memory_order_relaxed);
  std::int64_t now = ks.memuse.fetch_add(b, std::memory_order_relaxed) + b +
                     ks.exact_memuse.load(std::memory_order_relaxed);
  std::int64_t cur = ks.maxused.load(std::memory_order_relaxed);
  while (now > cur && !ks.maxused.compare_exchange_weak(cur, now, std::memory_order_relaxed)) {
  }
  return true;
}

// Returns `bytes` of type t (a free, or the undo of a failed malloc when undo).
// => limited types: type lock; wakes sleepers.
void account_free(tcache* tc, malloc_type t, std::size_t bytes, unsigned indx = 0, bool undo = false) {
  kmemstats& ks = g.types[t];
  const std::int64_t b = static_cast<std::int64_t>(bytes);
  if ((g.type_slow[t].load(std::memory_order_relaxed) & 1) != 0) {  // diagnostics or a limit (not a hold)
    kmem_guard guard(ks.lock);
    if (ks.limited) {
      ks.exact_memuse.fetch_sub(b, std::memory_order_relaxed);
      ks.exact_inuse.fetch_sub(1, std::memory_order_relaxed);
      if (undo) ks.calls.fetch_sub(1, std::memory_order_relaxed);
      ks.seq.fetch_add(1, std::memory_order_relaxed);
      if (ks.sleepers.load(std::memory_order_relaxed) != 0) futex_wake_all(&ks.seq);
      return;
    }
  }
  if (tc != nullptr) {
    type_delta& d = tc->td[t];
    d.memuse -= b;
    if (!undo) ++d.frees;
    else if (indx <= kMaxBucket) uncount_bucket_malloc(tc, t, indx);
    else --d.calls;
    return;
  }
  ks.inuse.fetch_sub(1, std::memory_order_relaxed);
  ks.memuse.fetch_sub(b, std::memory_order_relaxed);
  if (undo) ks.calls.fetch_sub(1, std::memory_order_relaxed);
}

// Changes the bytes charged for a live block (in-place realloc of a large block).
void account_resize(tcache* tc, malloc_type t, std::int64_t delta) {
  kmemstats& ks = g.types[t];
  if ((g.type_slow[t].load(std::memory_order_relaxed) & 1) != 0) {  // diagnostics or a limit (not a hold)
    kmem_guard guard(ks.lock);
    if (ks.limited) {
      ks.exact_memuse.fetch_add(delta, std::memory_order_relaxed);
      ks.seq.fetch_add(1, std::memory_order_relaxed);
      if (ks.sleepers.load(std::memory_order_relaxed) != 0) futex_wake_all(&ks.seq);
      return;
    }
  }
  if (tc != nullptr) tc->td[t].memuse += delta;
  else ks.memuse.fetch_add(delta, std::memory_order_relaxed);
}

// ---- validation --------------------------------------------------------------------------------

struct block {
  std::uintptr_t a;
  unsigned indx;         // bucket index, or 0 for a large or medium block
  std::uint32_t pages;   // large block pages
  std::uint32_t granules;  // medium block granules (0: not medium)
  std::size_t size;      // usable bytes
  bool first;            // a first-chunk block (kmem_first_chunk.h)
};

// Is a the start of a live block?  Fills *b.  Lock-free (reads kmemusage and the
// block's marker word).
kmem_status validate(const void* addr, block* b) {
  std::uintptr_t a = reinterpret_cast<std::uintptr_t>(addr);
  if (a - g.base >= g.size) return KMEM_FOREIGN;
  kmemusage* ku = usage_of(a);
  const unsigned code = page_code((a - g.base) >> kPageShift);
  const unsigned indx = code;  // a state when below kMinBucket
  b->a = a;
  b->first = false;
  if (code == kFirstCode) {
    std::uintptr_t start;
    bool handed_out;
    const unsigned cls = first_block_of(a, &start, &handed_out);
    if (cls == 0 || start != a || !handed_out) return KMEM_NOT_BLOCK;
    b->indx = cls;
    b->pages = 0;
    b->granules = 0;
    b->size = bucket_size(cls);
    b->first = true;
    return is_marked(a) ? KMEM_DOUBLE_FREE : KMEM_OK;
  }
  if (code >= kMinBucket) {
    const unsigned cls = elem_class(code, a);  // 0: an interior pointer
    if (cls == 0) return KMEM_NOT_BLOCK;
    b->indx = cls;
    b->pages = 0;
    b->size = bucket_size(cls);
    if (g.diag) {
      std::uint8_t s = g.diag_state[(a - g.base) >> kMinBucket];
      if ((s & 0x80) == 0) return KMEM_DOUBLE_FREE;
    } else if (is_marked(a)) {
      return KMEM_DOUBLE_FREE;
    }
    return KMEM_OK;
  }
  b->granules = 0;
  if ((indx == KU_LARGE || indx == KU_FREED_LARGE) && ku->ku_list == KL_MEDIUM) {
    // A medium block starts in this page: exactly there, or a is not a block.
    if ((a & kPageMask) != std::uintptr_t{ku->ku_freehead} << kGranShift) return KMEM_NOT_BLOCK;
    if (indx == KU_FREED_LARGE) return KMEM_DOUBLE_FREE;
    b->indx = 0;
    b->pages = 0;
    b->granules = ku->ku_pagecnt;
    b->size = std::size_t{b->granules} << kGranShift;
    return KMEM_OK;
  }
  if ((a & kPageMask) != 0) return KMEM_NOT_BLOCK;
  if (indx == KU_LARGE) {
    b->indx = 0;
    b->pages = ku->ku_pagecnt;
    b->size = std::size_t{ku->ku_pagecnt} << kPageShift;
    return KMEM_OK;
  }
  if (indx == KU_FREED_LARGE) return KMEM_DOUBLE_FREE;
  return KMEM_NOT_BLOCK;
}

// Takes one element of bucket indx from this thread's magazines (or the bucket); its
// free marker is still set.  Null when the arena is exhausted.
void* elem_get(tcache* tc, unsigned indx) {
  if (tc == nullptr) {
    void* p = nullptr;
    return bucket_alloc(indx, &p, 1) == 1 ? p : nullptr;
  }
  // An empty loaded chain (the usual reason to be here) goes straight to the refill: chain_pop's
  // own "empty" return shares a block GCC puts in the cold text with its broken-chain path
  // (a page of cold text in every fork child that refills).
  if (tc->b[indx].loaded() != 0)
    if (void* p = chain_pop(tc->b[indx], indx)) return p;
  return magazine_alloc_slow(tc, indx);
}

void elem_put(tcache* tc, unsigned indx, void* p) {
  if (tc == nullptr) {
    bucket_free(indx, p, 1);
    return;
  }
  tc_bucket& B = tc->b[indx];
  if (B.room != 0) {
    mark_free(reinterpret_cast<std::uintptr_t>(p), reinterpret_cast<std::uintptr_t>(B.head));
    B.head = p;
    --B.room;
    return;
  }
  magazine_free_slow(tc, indx, p);
}

void set_status(kmem_status* st, kmem_status v) {
  if (st != nullptr) *st = v;
}

// Clears a reused large or medium block for M_ZERO: the partial pages at its ends by hand,
// the whole pages between through the page source's zero_pages when it has one (which
// writes only pages that may hold data: glibc's calloc gets fresh pages from mmap for such
// sizes, and a program that touched a 512 KiB table sparsely then allocated it again, as
// git does, faulted in all 128 pages here).
void zero_block(void* p, std::size_t bytes) {
  const std::uintptr_t a = reinterpret_cast<std::uintptr_t>(p), e = a + bytes;
  const std::uintptr_t pa = (a + kPageMask) & ~std::uintptr_t{kPageMask}, pe = e & ~std::uintptr_t{kPageMask};
  if (g.src->zero_pages == nullptr || pe <= pa) {
    std::memset(p, 0, bytes);
    return;
  }
  std::memset(p, 0, pa - a);
  g.src->zero_pages(g.src->ctx, reinterpret_cast<void*>(pa), (pe - pa) >> kPageShift);
  std::memset(reinterpret_cast<void*>(pe), 0, e - pe);
}

// A block of `bytes` from get(&fresh) (large or medium), accounted to t first; one trim and
// a second try when the arena is full.  Cleared for M_ZERO unless fresh (reads as zeros).
template <class Get> void* malloc_pages(std::size_t size, std::size_t bytes, malloc_type t, int flags, kmem_status* st, Get get) {
  tcache* tc = tcache_get();
  unsigned indx = bucket_index(size);
  if (!account_alloc(tc, t, indx, bytes, flags, st)) return nullptr;
  bool fresh = false;
  void* p = get(&fresh);
  if (p == nullptr) {
    kmem::trim();
    p = get(&fresh);
  }
  if (p == nullptr) {
    account_free(tc, t, bytes, indx, true);
    g.types[t].mapblocks.fetch_add(1, std::memory_order_relaxed);
    set_status(st, KMEM_NOMEM);
    return nullptr;
  }
  if (g.diag) diag_on_alloc(reinterpret_cast<std::uintptr_t>(p), t);
  if ((flags & M_ZERO) != 0 && !fresh) zero_block(p, bytes);
  set_status(st, KMEM_OK);
  return p;
}

// Large blocks: whole pages from the source.  => pages lock; may trim once.
void* malloc_large(std::size_t size, std::size_t align, malloc_type t, int flags, kmem_status* st) {
  if (size > g.size || align > g.size) {
    set_status(st, KMEM_NOMEM);
    return nullptr;
  }
  std::size_t npages = (size + kPageMask) >> kPageShift;
  std::size_t align_pages = align > kPageSize ? align >> kPageShift : 1;
  return malloc_pages(size, npages << kPageShift, t, flags, st,
                      [&](bool* fresh) { return large_alloc(npages, align_pages, (flags & M_ZERO) != 0, fresh); });
}

// Medium blocks: packed in spans (kmem_medium.cpp).  => pages lock; may trim once.
void* malloc_medium(std::size_t size, malloc_type t, int flags, kmem_status* st) {
  return malloc_pages(size, (size + kGranSize - 1) & ~(kGranSize - 1), t, flags, st,
                      [&](bool* fresh) { return medium_alloc(size, fresh); });
}

// True when a medium request of `size` bytes goes to the spans (kmem_config::medium_spans_after).
// => any thread, no lock.
bool medium_in_spans(std::size_t size) {
  if (g.medium_spans_after == 0) return true;
  std::size_t asked = g.medium_asked.load(std::memory_order_relaxed);
  if (asked >= g.medium_spans_after) return true;
  return g.medium_asked.fetch_add(size, std::memory_order_relaxed) >= g.medium_spans_after;
}

// Everything malloc's fast path does not handle.
[[gnu::noinline]] void* malloc_slow(std::size_t size, malloc_type t, int flags, kmem_status* st) {
  KMEM_ASSERT(g.initialized.load(std::memory_order_acquire), "kmem::malloc before kmem_init");
  if (static_cast<unsigned>(t) >= M_LAST) {
    set_status(st, KMEM_INVALID);
    return nullptr;
  }
  if (size == 0) size = 1;
  if (size > kMaxAllocSave) {
    return size <= kMediumMax && medium_in_spans(size) ? malloc_medium(size, t, flags, st)
                                                       : malloc_large(size, kPageSize, t, flags, st);
  }
  const unsigned indx = bucket_index(size);
  const std::size_t bsize = bucket_size(indx);
  tcache* tc = tcache_get();
  if (!account_alloc(tc, t, indx, bsize, flags, st)) return nullptr;
  void* p = nullptr;
  for (;;) {
    p = elem_get(tc, indx);
    if (p == nullptr) {
      kmem::trim();
      p = elem_get(tc, indx);
    }
    if (p == nullptr) {
      account_free(tc, t, bsize, indx, true);
      g.types[t].mapblocks.fetch_add(1, std::memory_order_relaxed);
      set_status(st, KMEM_NOMEM);
      return nullptr;
    }
    if (!g.diag || diag_check_reuse(reinterpret_cast<std::uintptr_t>(p), bsize)) break;
    // Written after free: reported by diag_check_reuse; the block stays out of circulation.
  }
  static_cast<std::uintptr_t*>(p)[1] = 0;
  if (g.diag) diag_on_alloc(reinterpret_cast<std::uintptr_t>(p), t);
  if (tc == nullptr) g.classes[indx].kb.kb_calls.fetch_add(1, std::memory_order_relaxed);
  if ((flags & M_ZERO) != 0) std::memset(p, 0, bsize);
  set_status(st, KMEM_OK);
  return p;
}

[[gnu::noinline]] kmem_status free_slow(void* addr, malloc_type t) {
  if (addr == nullptr) return KMEM_OK;
  if (!g.initialized.load(std::memory_order_acquire)) return KMEM_FOREIGN;
  if (static_cast<unsigned>(t) >= M_LAST) return KMEM_INVALID;
  block b;
  kmem_status s = validate(addr, &b);
  if (s == KMEM_OK && g.diag) {
    std::uint8_t state = g.diag_state[(b.a - g.base) >> kMinBucket];
    if ((state & 0x7f) != t) s = KMEM_WRONG_TYPE;
  }
  if (s != KMEM_OK) {
    g.bad_frees.fetch_add(1, std::memory_order_relaxed);
    return s;
  }
  const bool first_call = t_tc == nullptr;  // this free sets the thread's cache up
  tcache* tc = tcache_get();
  if (b.indx == 0) {
    account_free(tc, t, b.size);
    if (g.diag) g.diag_state[(b.a - g.base) >> kMinBucket] = static_cast<std::uint8_t>(t);
    if (b.granules != 0) medium_free(b.a, b.granules);
    else large_free(b.a, b.pages);
    return KMEM_OK;
  }
  account_free(tc, t, b.size);
  // A first-chunk block freed once the process has had a second thread is retired: its
  // run's neighbours may be other threads' blocks, and handed out again by this thread it
  // would share their cache lines (allocsuite's cache_scratch: the main thread's two blocks,
  // adjacent in a run, freed and reused by two workers ran 12x slower).
  if (b.first && !__libc_single_threaded) {
    first_retire(b.a, b.indx);
    return KMEM_OK;
  }
  if (g.diag) diag_on_free(b.a, b.size, t);
  mark_free(b.a, reinterpret_cast<const std::uintptr_t*>(b.a)[0]);
  // A thread whose first call is a free got the block from another thread: it goes back
  // to its cluster, not into this thread's magazine, whose next malloc would hand it out
  // again — a small block sharing a cache line with the other thread's blocks, written
  // from two cores (Hoard's passive false sharing, allocsuite's cache_scratch: ~1.1-2x
  // jemalloc's time before).  The refill from the bucket lands it deep in the magazine.
  if (first_call && tc != nullptr) {
    bucket_free(b.indx, addr, 1);
    return KMEM_OK;
  }
  elem_put(tc, b.indx, addr);
  return KMEM_OK;
}

}  // namespace
}  // namespace vmrt::kmem::detail

namespace vmrt::kmem {
using namespace detail;

bool kmem_init(const kmem_page_source* src, const kmem_config& cfg) {
  static std::atomic<int> once{0};
  int expected = 0;
  if (src == nullptr || !once.compare_exchange_strong(expected, 1)) return false;
  KMEM_ASSERT((src->base & kPageMask) == 0 && src->size >= kPageSize, "page source arena not page aligned");
  KMEM_ASSERT((src->size >> kPageShift) < kNil, "arena too large for 32-bit page indexes");
  g.src = src;
  g.base = src->base;
  g.size = src->size & ~static_cast<std::size_t>(kPageMask);
  g.npages = g.size >> kPageShift;
  // The page codes and the kmemusage records, a table in two halves around the table
  // arena's hot block (vm/vm_tables.h, table_map_split): the codes stored downward from its
  // start, the records upward from its end.  A process writes both tables at their fronts
  // (its first pages), so these lie in the hot block's 2 MiB, with the window table and the
  // pmap's tables for the heap's first chunks: one host page-table page for all of them,
  // where the two tables and the pmap's front took two.
  void* codes_end = nullptr;
  void* records = nullptr;
  if (!vmrt::sys::table_map_split((g.npages + 63) & ~std::size_t{63}, g.npages * sizeof(kmemusage), &codes_end, &records))
    return false;
  g.pgindx = static_cast<std::uint8_t*>(codes_end);
  g.usage = static_cast<kmemusage*>(records);
  g.diag = cfg.diagnostics;
  g.caches = cfg.thread_caches;
  g.medium_spans_after = cfg.medium_spans_after;
  if (g.diag) {
    void* d = vmrt::sys::table_map(g.size >> kMinBucket);
    if (d == nullptr) return false;
    g.diag_state = static_cast<std::uint8_t*>(d);
  }
  std::uintptr_t cookie = 0;
  if (getrandom(&cookie, sizeof cookie, GRND_NONBLOCK) != static_cast<ssize_t>(sizeof cookie))
    cookie = reinterpret_cast<std::uintptr_t>(&cookie) * 0x9e3779b97f4a7c15ull ^ __builtin_ia32_rdtsc();
  // Never 0 (a zeroed word is never a marker); the top bit set: may_be_marked.
  g.cookie = cookie | 1 | kCookieTopBit;
  g.link_high = link_high_bits(g.base + g.size);
  KMEM_ASSERT((g.link_high & kCookieTopBit) != 0 && g.base + g.size <= ~g.link_high, "arena beyond user addresses");
  // The per-class constants are g's static image (kmem_globals' constructor); only a
  // configured magazine size is written.
  if (cfg.magazine_size != 0) {
    const std::uint32_t cap = cfg.magazine_size > kMagazineMax ? kMagazineMax : static_cast<std::uint32_t>(cfg.magazine_size);
    for (unsigned i = kMinBucket; i <= kMaxBucket; ++i) g.classes[i].dp.cap = cap;
  }
  for (unsigned t = 0; t < M_LAST; ++t) {
    g.types[t].limit = type_default_limit(static_cast<malloc_type>(t));
    g.types[t].limited = g.types[t].limit != 0;
    set_type_slow(static_cast<malloc_type>(t), g.diag || g.types[t].limited);
  }
  // decay in 2^24-ns ticks, rounded up, at most half the 16-bit tick space
  std::uint64_t ticks = (std::uint64_t{cfg.decay_ms} * 1000000ull + (1u << 24) - 1) >> 24;
  g.decay_ticks = static_cast<std::uint16_t>(ticks > 0x7fff ? 0x7fff : ticks);
  magazines_init();
  if (cfg.first_chunk) first_chunk_init();
  g.initialized.store(true, std::memory_order_release);
  return true;
}

bool kmem_initialized() { return g.initialized.load(std::memory_order_acquire); }

static_assert(vmrt::kVmFailKmemTypeCount == M_LAST, "vm_fail's kmem type names follow kmem.h");
void* malloc(std::size_t size, malloc_type type, int flags, kmem_status* status) {
  if ((flags & M_NOWAIT) && vm_fail_armed() && vm_fail_eval(FP_KMEM, size, type)) return set_status(status, KMEM_NOMEM), nullptr;
  if (__builtin_expect(static_cast<unsigned>(type) < M_LAST, 1)) {
    if (void* p = malloc_fast(size, type); __builtin_expect(p != nullptr, 1)) {
      if (status != nullptr) *status = KMEM_OK;
      if ((flags & M_ZERO) != 0) return std::memset(p, 0, bucket_size(bucket_index(size)));
      return p;
    }
  }
  return malloc_slow(size, type, flags, status);
}

kmem_status free(void* addr, malloc_type type) {
  if (__builtin_expect(static_cast<unsigned>(type) < M_LAST, 1) && free_fast(addr, type)) return KMEM_OK;
  return free_slow(addr, type);
}

void* malloc_aligned(std::size_t size, std::size_t align, malloc_type type, int flags, kmem_status* status) {
  if (align == 0 || (align & (align - 1)) != 0) {
    set_status(status, KMEM_INVALID);
    return nullptr;
  }
  if (size == 0) size = 1;
  if (align <= kMinAlloc) return kmem::malloc(size, type, flags, status);
  if (align <= kPageSize) {
    // Elements of power-of-two classes up to a page are aligned to their size, of
    // page-multiple classes to a page (the other classes only to 16 bytes): a power of
    // two up to a page, a page multiple above, lands in such a class.
    std::size_t need = size < align ? align : size;
    if (need <= kMaxAllocSave) {
      need = need <= kPageSize ? std::bit_ceil(need) : (need + kPageMask) & ~kPageMask;
      return kmem::malloc(need, type, flags, status);
    }
    if ((flags & M_NOWAIT) && vm_fail_armed() && vm_fail_eval(FP_KMEM, size, type)) return set_status(status, KMEM_NOMEM), nullptr;
    return malloc_large(size, kPageSize, type, flags, status);
  }
  if (static_cast<unsigned>(type) >= M_LAST) {
    set_status(status, KMEM_INVALID);
    return nullptr;
  }
  if ((flags & M_NOWAIT) && vm_fail_armed() && vm_fail_eval(FP_KMEM, size, type)) return set_status(status, KMEM_NOMEM), nullptr;
  return malloc_large(size, align, type, flags, status);
}

std::size_t usable_size(const void* addr) {
  if (addr == nullptr || !kmem_initialized()) return 0;
  block b;
  return validate(addr, &b) == KMEM_OK ? b.size : 0;
}

bool owns(const void* addr) {
  return kmem_initialized() && reinterpret_cast<std::uintptr_t>(addr) - g.base < g.size;
}

void* realloc(void* addr, std::size_t size, malloc_type type, int flags, kmem_status* status) {
  if (addr == nullptr) return kmem::malloc(size, type, flags, status);
  if (static_cast<unsigned>(type) >= M_LAST) {
    set_status(status, KMEM_INVALID);
    return nullptr;
  }
  if (size == 0) size = 1;
  block b;
  kmem_status s = validate(addr, &b);
  if (s == KMEM_OK && g.diag && (g.diag_state[(b.a - g.base) >> kMinBucket] & 0x7f) != type) s = KMEM_WRONG_TYPE;
  if (s != KMEM_OK) {
    g.bad_frees.fetch_add(1, std::memory_order_relaxed);
    set_status(status, s);
    return nullptr;
  }
  if (b.indx != 0) {
    // Kept while the new size is over half of it (with power-of-two buckets: while it stays
    // in its bucket).  Growing: moved to the power-of-two class that holds the new size, so a
    // block grown a little at a time (realloc to the exact length on every append) moves once
    // per doubling and growing blocks share a few classes, as with power-of-two buckets, not
    // at every quarter step through every class (allocsuite's realloc_growth
    // without it: 1.89x jemalloc's time and 1.77x its peak RSS, against 0.99x and 1.30x with
    // power-of-two buckets; not for limited types or diagnostics, whose accounting follows
    // each block exactly).
    if (size <= b.size && (size > b.size / 2 || bucket_index(size) == b.indx)) {
      set_status(status, KMEM_OK);
      return addr;
    }
    if (size > b.size && size <= kMaxAllocSave && !g.diag && !g.types[type].limited) size = std::bit_ceil(size);
  } else if (b.granules != 0) {
    // Medium: kept while the new size is over half of it (shrinking leaves the block
    // as it is: its tail is not worth a span edit).  Growing: into the free space right
    // after it, else moved — with a quarter of slack, so a block growing a little at a time
    // moves a few times on its way through the medium sizes, not at every granule (not
    // for limited types or diagnostics, whose accounting follows each block exactly).
    if (size <= b.size && (size > b.size / 2 || bucket_index(size) == b.indx)) {
      set_status(status, KMEM_OK);
      return addr;
    }
    if (size > b.size && size <= kMediumMax && !g.diag && !g.types[type].limited) {
      std::size_t want = size;
      std::size_t slack = b.size + b.size / 4;
      if (slack > want && slack <= kMediumMax) want = slack;
      auto granules = static_cast<std::uint32_t>((want + kGranSize - 1) >> kGranShift);
      if (medium_grow(b.a, b.granules, granules)) {
        std::size_t grown = (std::size_t{granules} << kGranShift) - b.size;
        account_resize(tcache_get(), type, static_cast<std::int64_t>(grown));
        if ((flags & M_ZERO) != 0) std::memset(reinterpret_cast<char*>(b.a) + b.size, 0, grown);
        set_status(status, KMEM_OK);
        return addr;
      }
      size = want;  // moved below, with the slack
    }
  } else if (size > kMaxAllocSave && size <= g.size) {
    std::uint32_t npages = static_cast<std::uint32_t>((size + kPageMask) >> kPageShift);
    if (npages == b.pages) {
      set_status(status, KMEM_OK);
      return addr;
    }
    if (npages < b.pages && b.pages - npages < b.pages / 4) {  // keep small slack (growth headroom)
      set_status(status, KMEM_OK);
      return addr;
    }
    if (npages < b.pages) {
      account_resize(tcache_get(), type, -static_cast<std::int64_t>(std::size_t{b.pages - npages} << kPageShift));
      large_shrink(b.a, b.pages, npages);
      set_status(status, KMEM_OK);
      return addr;
    }
    // Growing: no copy through the CPU when the page source can resize (the VM grows the
    // block in place or moves its frames).  A quarter of slack keeps a block that grows a
    // little at a time (string building) from resizing at every page.  Not for limited
    // types or diagnostics, whose accounting and granule states follow each block exactly.
    if (!g.diag && !g.types[type].limited) {  // new pages read as zeros: M_ZERO holds
      std::uint32_t want = npages;
      std::uint32_t slack = b.pages + b.pages / 4;
      if (slack > want && (std::size_t{slack} << kPageShift) <= g.size) want = slack;
      std::uintptr_t na = large_grow(b.a, b.pages, want);
      if (na != 0) {
        account_resize(tcache_get(), type, static_cast<std::int64_t>(std::size_t{want - b.pages} << kPageShift));
        set_status(status, KMEM_OK);
        return reinterpret_cast<void*>(na);
      }
    }
  }
  void* n = kmem::malloc(size, type, flags & ~M_ZERO, status);
  if (n == nullptr) return nullptr;  // the old block is untouched
  std::memcpy(n, addr, b.size < size ? b.size : size);
  if ((flags & M_ZERO) != 0 && size > b.size) {
    std::memset(static_cast<char*>(n) + b.size, 0, kmem::usable_size(n) - b.size);
  }
  kmem::free(addr, type);
  return n;
}

void fast_paths_hold(std::uint8_t bits, bool on) {
  KMEM_ASSERT((bits & ~kFastHoldBits) == 0, "fast path hold bits");
  for (unsigned t = 0; t < M_LAST; ++t) {
    if (on) g.type_slow[t].fetch_or(bits, std::memory_order_seq_cst);
    else g.type_slow[t].fetch_and(static_cast<std::uint8_t>(~bits), std::memory_order_seq_cst);
  }
}

void set_limit(malloc_type type, std::size_t bytes) {
  if (static_cast<unsigned>(type) >= M_LAST) return;
  kmemstats& ks = g.types[type];
  kmem_guard guard(ks.lock);
  if (bytes != 0 && !ks.limited) {
    // Freeze the unlimited-mode total (flushed + live threads' deltas) as base.
    std::int64_t base = ks.memuse.load(std::memory_order_relaxed);
    {
      kmem_guard tg(g.threads_lock);
      for (tcache* tc = g.threads; tc != nullptr; tc = tc->next) base += rd(tc->td[type].memuse);
    }
    ks.base = base;
    ks.limited = true;
  } else if (bytes == 0) {
    ks.limited = false;
  }
  ks.limit = bytes;
  set_type_slow(type, g.diag || ks.limited);
  ks.seq.fetch_add(1, std::memory_order_relaxed);
  if (ks.sleepers.load(std::memory_order_relaxed) != 0) futex_wake_all(&ks.seq);
}

std::size_t trim() {
  if (!kmem_initialized()) return 0;
  std::uint64_t before;
  {
    kmem_guard guard(g.pages_lock);
    before = g.pages_from_source;
  }
  thread_cache_drain();
  depot_drain_all();
  bucket_trim_all();
  g.trims.fetch_add(1, std::memory_order_relaxed);
  kmem_guard guard(g.pages_lock);
  medium_trim_locked();
  // Pages other threads took meanwhile can make this negative: report 0 then.
  return before > g.pages_from_source ? (before - g.pages_from_source) << kPageShift : 0;
}

// The forking thread's own cache is kept: it is valid on both sides of the fork (the child's
// only thread is this one).  Draining it sent every malloc and free after each fork through
// the bucket layer, writing to the clusters' pages — each write a copy-on-write fault while
// the child lives (bash's $(...) loop: ~50 extra faults a fork, ~1.5 ms on these guests).
//
// A process that has never had a second thread (glibc's __libc_single_threaded) has no other
// thread inside kmem, and signal handlers do not run under a kmem lock: nothing to lock, so
// nothing for the parent to unlock or the child to reset.  Those writes fall on the pages
// holding kmem's lock words (types, buckets, depots: spread over several pages of g), each
// a copy-on-write fault on both sides of every fork (bash's $(...) loop).  t_fork_locked
// tells fork_parent / fork_child (the same thread, on both sides) what prepare did; it is
// written only when it changes.
namespace {
__thread bool t_fork_locked __attribute__((tls_model("initial-exec"))) = false;
}  // namespace

// The forking thread's flag is looked at before kmem's own state: a single-threaded
// process (a shell) forks without reading a page of `g` (each page a fork touches costs
// both processes: README, "Faults per fork and exec").
VMRT_FORK_PARENT_TEXT void fork_prepare() {
  const bool lock_all = __libc_single_threaded == 0 && kmem_initialized();
  if (t_fork_locked != lock_all) t_fork_locked = lock_all;
  if (!lock_all) return;
  for (unsigned t = 0; t < M_LAST; ++t) g.types[t].lock.lock();
  magazines_fork_prepare();
  for (unsigned i = kMinBucket; i <= kMaxBucket; ++i) g.classes[i].kb.kb_lock.lock();
  g.pages_lock.lock();
}

VMRT_FORK_PARENT_TEXT void fork_parent() {
  if (!t_fork_locked) return;  // set only when kmem was initialized (fork_prepare)
  g.pages_lock.unlock();
  for (unsigned i = kMaxBucket + 1; i-- > kMinBucket;) g.classes[i].kb.kb_lock.unlock();
  magazines_fork_parent();
  for (unsigned t = M_LAST; t-- > 0;) g.types[t].lock.unlock();
}

// In VMRT_FORK_TEXT with the other fork handlers: every child runs it (a text page fault
// a fork when it sat among cold code).
VMRT_FORK_CHILD_TEXT void fork_child() {
  if (!t_fork_locked) return;  // set only when kmem was initialized (fork_prepare)
  g.pages_lock.reinit();
  for (unsigned i = kMinBucket; i <= kMaxBucket; ++i) g.classes[i].kb.kb_lock.reinit();
  for (unsigned t = 0; t < M_LAST; ++t) {
    g.types[t].lock.reinit();
    g.types[t].sleepers.store(0, std::memory_order_relaxed);
  }
  magazines_fork_child();
}

// ---- statistics ------------------------------------------------------------------------------------

bool get_type_stats(malloc_type t, type_stats* out) {
  if (static_cast<unsigned>(t) >= M_LAST || out == nullptr) return false;
  kmemstats& ks = g.types[t];
  std::int64_t inuse = ks.inuse.load(std::memory_order_relaxed) + ks.exact_inuse.load(std::memory_order_relaxed);
  std::int64_t memuse = ks.memuse.load(std::memory_order_relaxed) + ks.exact_memuse.load(std::memory_order_relaxed);
  std::uint64_t calls = ks.calls.load(std::memory_order_relaxed);
  std::uint32_t mask = ks.mask.load(std::memory_order_relaxed);
  std::int64_t maxused = ks.maxused.load(std::memory_order_relaxed);
  std::int64_t over = 0;  // the largest (peak - current) of any live thread
  {
    kmem_guard guard(g.threads_lock);
    for (tcache* tc = g.threads; tc != nullptr; tc = tc->next) {
      type_delta& d = tc->td[t];
      std::int64_t m = rd(d.memuse);
      std::int64_t p = rd(d.peak);
      std::uint64_t c = tc_type_calls(tc, t);
      inuse += static_cast<std::int64_t>(c - rd(d.frees));
      memuse += m;
      calls += c;
      mask |= tc_type_mask(tc, t);
      if (p - m > over) over = p - m;
    }
  }
  if (memuse + over > maxused) maxused = memuse + over;
  out->inuse = inuse > 0 ? static_cast<std::uint64_t>(inuse) : 0;
  out->memuse = memuse > 0 ? static_cast<std::uint64_t>(memuse) : 0;
  out->calls = calls;
  out->maxused = maxused > 0 ? static_cast<std::uint64_t>(maxused) : 0;
  out->limit = ks.limit;
  out->limblocks = ks.limblocks.load(std::memory_order_relaxed);
  out->size_mask = mask;
  out->mapblocks = ks.mapblocks.load(std::memory_order_relaxed);
  return true;
}

std::size_t bucket_count() { return kNumIndx; }

std::size_t bucket_index_of(std::size_t size) { return bucket_index(size); }

bool get_bucket_stats(std::size_t index, bucket_stats* out) {
  if (out == nullptr || index < kMinBucket || index > kMaxBucket) return false;
  kmembucket& kb = g.classes[index].kb;
  std::uint64_t calls = kb.kb_calls.load(std::memory_order_relaxed);
  std::uint64_t cached = 0;
  {
    kmem_guard guard(g.threads_lock);
    for (tcache* tc = g.threads; tc != nullptr; tc = tc->next) {
      calls += tc_bucket_calls(tc, static_cast<unsigned>(index));
      // Racy reads of another thread's record: a retiring thread's cap drops to 0.
      const std::uint32_t cap = rd(tc->b[index].cap), room = rd(tc->b[index].room);
      cached += std::uint64_t{room <= cap ? cap - room : 0} + rd(tc->b[index].prev_count);
    }
  }
  cached += depot_rounds(static_cast<unsigned>(index));
  kmem_guard guard(kb.kb_lock);
  out->size = bucket_size(static_cast<unsigned>(index));
  out->calls = calls;
  std::uint64_t first_out, first_retired;  // first-chunk elements count as the bucket's
  first_counts(static_cast<unsigned>(index), &first_out, &first_retired);
  out->total = kb.kb_total + first_out;
  out->totalfree = kb.kb_nfree + cached + first_retired;
  out->elmpercl = kb.kb_elmpercl;
  out->highwat = kb.kb_highwat;
  out->couldfree = kb.kb_couldfree;
  return true;
}

bool get_kmem_counters(kmem_counters* out) {
  if (out == nullptr || !kmem_initialized()) return false;
  std::memset(out, 0, sizeof *out);
  {
    kmem_guard guard(g.pages_lock);
    out->pages_from_source = g.pages_from_source;
    out->page_cache_pages = g.page_cache_n + g.pool_pages;
    out->pool_pages = g.pool_pages;
    out->pool_reused = g.pool_reused;
    for (unsigned i = kMinBucket; i <= kMaxBucket; ++i)
      out->page_cache_pages += std::uint64_t{g.run_cache_n[i]} * pages_per_cluster(i);
    out->large_blocks = g.large_blocks;
    out->large_pages = g.large_pages;
    out->large_cache_pages = g.lcache_pages;
    out->large_cache_runs = g.lcache_n;
    out->large_cache_hits = g.lcache_hits;
    out->large_cache_sweeps = g.lcache_sweeps;
    out->large_cache_discarded = g.lcache_discarded;
    out->shortage_releases = g.short_releases;
    out->shortage_pages = g.short_pages;
    out->medium_blocks = g.medium_blocks;
    out->medium_bytes = g.medium_granules << kGranShift;
    out->medium_spans = medium_spans_locked();
  }
  {
    kmem_guard guard(g.threads_lock);
    for (tcache* tc = g.threads; tc != nullptr; tc = tc->next) ++out->live_thread_caches;
    out->exited_thread_caches = g.threads_exited;
  }
  {
    kmem_guard guard(g.meta_lock);
    out->magazines = g.magazines_made;
  }
  for (unsigned i = kMinBucket; i <= kMaxBucket; ++i)
    out->depot_exchanges += g.classes[i].dp.exchanges.load(std::memory_order_relaxed);
  out->corrupt_detected = g.corrupt_detected.load(std::memory_order_relaxed);
  out->bad_frees = g.bad_frees.load(std::memory_order_relaxed);
  out->trims = g.trims.load(std::memory_order_relaxed);
  return true;
}

}  // namespace vmrt::kmem
