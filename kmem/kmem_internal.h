// kmem_internal.h — kmem's private data structures, shared by its .cpp files.
//
// Layers, top to bottom:
//   malloc/free     (kmem_malloc.cpp)  type accounting, limits, the fast path
//   thread caches   (kmem_magazine.cpp) per-thread loaded/previous magazines + depot
//   buckets         (kmem_bucket.cpp)   per-page free lists, kmemusage, page cache
//   page source     (kmem_page_source)  whole pages of the arena
// Lock order (outer first): type lock -> threads lock -> depot lock -> bucket lock
// -> pages lock.  No lock is held across a call back into a higher layer.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "kmem/kmem.h"
#include "kmem/kmem_bucket_index.h"
#include "kmem/kmem_first_chunk.h"
#include "kmem/kmem_lock.h"

namespace vmrt::kmem::detail {

// ---- kmemusage: one record per arena page ------------------------------------------
// ku_indx values: a bucket index (kMinBucket..kMaxBucket) for the first page of a
// bucket cluster, else one of these states.  Zero-filled memory means KU_UNUSED.
inline constexpr std::uint8_t KU_UNUSED = 0;       // not kmem's: never used, released, or a tail page
inline constexpr std::uint8_t KU_LARGE = 1;        // first page of a live large block
inline constexpr std::uint8_t KU_FREED_LARGE = 2;  // first page of a large block already freed
inline constexpr std::uint8_t KU_CACHED = 3;       // in the page cache (free, mapped)
static_assert(kMinBucket > KU_CACHED, "states and bucket indexes do not overlap");

inline constexpr std::uint32_t kNil = 0xffffffffu;  // no page
inline constexpr std::uint16_t kNoFree = 0xffffu;   // empty per-page free list

// KL_MEDIUM: on a KU_LARGE / KU_FREED_LARGE page, a medium block starts in this page
// (kmem_medium.cpp): ku_pagecnt is its length in granules, ku_freehead its first granule
// within the page.
// KL_POOL_HEAD / KL_POOL_TAIL: on a KU_CACHED page, the first / last page of a run in the
// free-run pool (kmem_bucket.cpp): the head holds the run's length (ku_freecnt), its stamp
// and bin links, the tail (runs over a page) the head's page index in ku_next.
enum ku_list : std::uint8_t { KL_NONE = 0, KL_PARTIAL = 1, KL_EMPTY = 2, KL_MEDIUM = 3, KL_POOL_HEAD = 4, KL_POOL_TAIL = 5 };

// ---- medium blocks (kmem_medium.cpp) ------------------------------------------------------
inline constexpr unsigned kGranShift = 8;  // medium blocks are cut at 256-byte granularity
inline constexpr std::size_t kGranSize = std::size_t{1} << kGranShift;
inline constexpr unsigned kSpanShift = 23;  // from 8 MiB spans
inline constexpr std::uintptr_t kSpanBytes = std::uintptr_t{1} << kSpanShift;
inline constexpr std::uint32_t kSpanPages = std::uint32_t{1} << (kSpanShift - kPageShift);
inline constexpr std::uint32_t kSpanGranules = std::uint32_t{1} << (kSpanShift - kGranShift);
inline constexpr std::size_t kMediumMax = std::size_t{512} << 10;  // larger: whole pages (large blocks)
inline constexpr std::uint32_t kMediumMinGranules = static_cast<std::uint32_t>(kMaxAllocSave >> kGranShift) + 1;
static_assert(kMaxAllocSave > 4 * kPageSize, "at most one medium block starts in a page");
static_assert(kSpanGranules <= 65536, "granule indexes fit 16 bits");

struct kmemusage {
  std::uint8_t ku_indx;      // bucket index or KU_* state                (bucket lock / pages lock)
  std::uint8_t ku_list;      // ku_list: which bucket list the page is on (bucket lock)
  std::uint16_t ku_freecnt;  // free elements on this cluster's list      (bucket lock)
  std::uint16_t ku_freehead; // page offset of the first free element     (bucket lock)
  std::uint16_t ku_stamp;    // coarse time a pool run was freed            (pages lock)
  union {
    std::uint32_t ku_next;     // bucket list / page cache link (page index)
    std::uint32_t ku_pagecnt;  // KU_LARGE: pages in the block
  };
  std::uint32_t ku_prev;       // bucket list link
};
static_assert(sizeof(kmemusage) == 16);

// ---- magazines ------------------------------------------------------------------------
// A magazine is a chain of free elements of one bucket linked through the elements
// themselves (as glibc's tcache and mimalloc's free lists link theirs): an element on a
// chain holds the next element in word 0 (null at the end) and its free marker in word 1.
// Thread caches hold their chains in tc_bucket; this descriptor carries a full chain in
// the depot (and is recycled, never freed).
struct magazine {
  magazine* next;       // depot list / recycle list link (depot lock / meta lock)
  void* head;           // the chain's first element
  std::uint32_t count;  // elements on the chain
  std::uint32_t pad;
};

// Per-thread, per-type statistics deltas.  Only the owning thread writes them,
// with plain (non-atomic, non-RMW) instructions; reports read them racily with
// rd() (an atomic relaxed load) and sum them over live threads.
struct type_delta {
  std::uint64_t calls;   // mallocs of large blocks (bucket mallocs: tcache::acnt)
  std::uint64_t frees;   // inuse = calls + sum(acnt) - frees
  std::int64_t memuse;   // bytes allocated - bytes freed
  std::int64_t peak;     // max of memuse since the last flush
  std::uint32_t mask;    // size bands used by large blocks (buckets: acnt != 0)
  std::uint32_t pad;
};

template <class T>
inline T rd(const T& x) {
  return __atomic_load_n(&x, __ATOMIC_RELAXED);
}

// A thread's cache for one bucket: Bonwick's loaded and previous magazines as two
// intrusive LIFO chains.  free pushes an element (w[0] = head, w[1] = free marker,
// head = it), malloc pops the head after checking its free marker: only the element
// and this record are written, so a thread's cache is one 32-byte record per class —
// after a host fork, freeing into a class costs the element's page and this record's,
// not a page of a separate rounds array.  Owner writes; reports read counts racily
// with rd().  All zero (a thread whose cache is not set up yet, or that has exited)
// fails both fast paths: head null (malloc), room 0 (free).
// The loaded chain's length is kept as the room left (cap - length), so free's "full?"
// is a test of one field against zero and its update one decrement (a length needed a
// load, a compare with cap, an increment and a store); malloc tests the head, which is
// null exactly when the chain is empty (its last element's link is 0).
struct tc_bucket {
  void* head;            // the loaded chain's first element; null when it is empty
  std::int64_t size;     // the bucket's element size: the fast paths add it to memuse
  void* prev_head;       // the previous chain (full or empty: Bonwick's hysteresis)
  std::uint16_t room;    // cap - elements on the loaded chain
  std::uint16_t cap;     // the class's magazine capacity (0: no cache)
  std::uint16_t prev_count;
  std::uint16_t fill;    // rounds the next refill from the bucket takes (0: first)
  std::uint32_t loaded() const { return static_cast<std::uint32_t>(cap) - room; }
  void set_loaded(std::uint32_t n) { room = static_cast<std::uint16_t>(cap - n); }
};
static_assert(sizeof(tc_bucket) == 32, "two buckets per cache line");
static_assert(kMagazineMax <= 0xffff, "chain counts fit 16 bits");

// A thread's cache (Bonwick's per-CPU magazine layer, per thread here).  Lives in
// the thread's static TLS block (t_cache, initial-exec: the fast paths reach it
// with %fs-relative addressing, no pointer to load or test), zero until the
// thread's first slow-path call sets it up (tcache_get), and is on the threads
// list from then until the thread exits (its key destructor drains and unlinks
// it before the TLS block goes away).
struct tcache {
  tc_bucket b[kNumIndx];          // owner only (reports: rd())
  type_delta td[M_LAST];
  // Bucket mallocs per class, in rows: one for each of the shim's types (M_LIBC, M_CXX),
  // where the fast path's one increment gives the type's calls, the bucket's kb_calls and
  // the type's size mask; and one row the VM's own types share, whose bucket mallocs count
  // in their type_delta as well (calls, mask: count_bucket_malloc).  A row for every type
  // made the cache 5 KiB of the static TLS block, a page more than three rows: a page every
  // process touches and every fork copies on both sides (a shell's $(...) child and its
  // parent write their TLS at once).  The shim's rows come first, right after the buckets
  // and type records a libc malloc writes too.
  static constexpr unsigned kCallRows = 3;
  static constexpr unsigned kSharedRow = 2;
  std::uint64_t acnt[kCallRows][kNumIndx];
  tcache* next;  // threads list (threads lock)
  tcache* prev;

  static constexpr bool own_row(unsigned t) { return t == M_LIBC || t == M_CXX; }
  static constexpr unsigned row_of(unsigned t) { return t == M_LIBC ? 0 : t == M_CXX ? 1 : kSharedRow; }
};
static_assert(tcache::row_of(M_LIBC) == 0 && tcache::row_of(M_CXX) == 1 && tcache::row_of(M_TEMP) == tcache::kSharedRow &&
                  tcache::kSharedRow + 1 == tcache::kCallRows,
              "the shim's types own the first rows of acnt, the others share the last");

// => the owning thread.  Counts a bucket malloc of type t, class indx: its row's count, and
// for a type without a row of its own, its calls and size band in its type_delta.
[[gnu::always_inline]] inline void count_bucket_malloc(tcache* tc, unsigned t, unsigned indx) {
  ++tc->acnt[tcache::row_of(t)][indx];
  if (!tcache::own_row(t)) {
    type_delta& d = tc->td[t];
    ++d.calls;
    d.mask |= std::uint32_t{1} << kClasses.band[indx];
  }
}
// => the owning thread.  Takes back count_bucket_malloc (a malloc that failed after it); the
// size band stays set.
inline void uncount_bucket_malloc(tcache* tc, unsigned t, unsigned indx) {
  --tc->acnt[tcache::row_of(t)][indx];
  if (!tcache::own_row(t)) --tc->td[t].calls;
}

// ---- buckets ---------------------------------------------------------------------------
// A list of clusters, linked through their kmemusage records.
struct cl_list {
  std::uint32_t head = kNil;
  std::uint32_t tail = kNil;
};

struct kmembucket {
  kmem_lock kb_lock;
  cl_list kb_partial;                  // clusters with free and used elements (kb_lock)
  cl_list kb_empty;                    // all-free clusters, newest first      (kb_lock)
  std::uint64_t kb_nfree = 0;          // free elements on cluster lists       (kb_lock)
  std::uint64_t kb_total = 0;          // elements in live clusters            (kb_lock)
  std::uint64_t kb_highwat = 0;        // kb_lock
  std::uint64_t kb_couldfree = 0;      // clusters given back                  (kb_lock)
  std::uint64_t kb_clusters = 0;       // live clusters                        (kb_lock)
  std::atomic<std::uint64_t> kb_calls{0};  // flushed request count
  std::uint32_t kb_elmpercl = 0;
  std::uint32_t kb_npg = 0;            // pages per cluster
};

struct depot {
  kmem_lock lock;
  magazine* full = nullptr;     // full chains (lock)
  magazine* empty = nullptr;    // spare descriptors (lock)
  std::uint32_t nfull = 0;      // lock
  std::uint32_t nempty = 0;     // lock
  std::uint32_t max_full = 0;
  std::uint32_t cap = 0;        // elements per magazine (chain) for this bucket
  std::atomic<std::uint64_t> exchanges{0};
};

// One size class's shared state: its bucket (the clusters, 4.4BSD's kmembuckets[]) and its
// depot (the magazines), side by side.  In two arrays a class's bucket and its depot were
// 7 KiB apart, so a refill (depot lock, then bucket lock) wrote two pages of `g`, and a
// fork child's first refills in two classes four: each page one copy-on-write fault on both
// sides of a host fork (README, "Faults per fork and exec").  Each record starts a cache
// line of its own (its locks are taken by threads working other classes).
struct alignas(64) kmem_class {
  kmembucket kb;  // first: class_of
  depot dp;
};
static_assert(offsetof(kmem_class, kb) == 0 && sizeof(kmem_class) == 128, "a class is two cache lines, its bucket first");

// ---- per-type statistics (kmemstats) ------------------------------------------------------
struct kmemstats {
  kmem_lock lock;                        // limit accounting and sleeping
  std::atomic<std::int64_t> inuse{0};    // flushed deltas + cache-less ops
  std::atomic<std::int64_t> memuse{0};
  std::atomic<std::uint64_t> calls{0};
  std::atomic<std::int64_t> maxused{0};
  std::atomic<std::uint32_t> mask{0};
  std::atomic<std::uint64_t> limblocks{0};
  std::atomic<std::uint64_t> mapblocks{0};
  // Limited mode (limit != 0): exact accounting under lock.  Total memuse is
  // base + exact_memuse, where base is the unlimited-mode total frozen when the
  // limit was set.
  std::uint64_t limit = 0;               // lock (read racily by the fast path via type_slow)
  bool limited = false;                  // lock
  std::int64_t base = 0;                 // lock
  std::atomic<std::int64_t> exact_inuse{0};
  std::atomic<std::int64_t> exact_memuse{0};
  std::atomic<std::uint32_t> seq{0};     // bumped on every limited free (futex word)
  std::atomic<std::uint32_t> sleepers{0};
  char pad[64]{};
};

// ---- globals ------------------------------------------------------------------------------
struct alignas(64) kmem_globals {
  // Hot, read-only after init (the fast path's cache line: base, size, pgindx,
  // cookie, link_high, type_slow are all free() and malloc() read).
  std::uintptr_t base = 0;
  std::size_t size = 0;
  // Per arena page, its page code (kmem_bucket_index.h): a copy of its kmemusage
  // ku_indx (bucket lock / pages lock, written together with it by set_ku_indx),
  // or on the further pages of a cluster whose elements straddle pages a tail
  // code (bucket lock, set by cluster_new, cleared by cluster_detach; the
  // kmemusage records of those pages stay KU_UNUSED).  free() looks the class up
  // in this dense byte array (one byte per page stays in L1 where the 16-byte
  // records would not).  Stored downward from pgindx (page_code); the kmemusage records
  // begin a little above it, past the table arena's hot block: the two tables' fronts,
  // which every process writes, share one host 2 MiB block, one host page-table page
  // (kmem_init).
  std::uint8_t* pgindx = nullptr;
  std::uintptr_t cookie = 0;                 // free-marker secret
  std::uintptr_t link_high = 0;              // bits no free marker's link has (may_be_marked)
  kmemusage* usage = nullptr;
  // Nonzero: the type bypasses the fast paths.  Bit 0: diagnostics or a limit (kmem's);
  // the others: fast_paths_hold (kmem.h).
  std::atomic<std::uint8_t> type_slow[M_LAST]{};
  bool diag = false;
  bool caches = true;
  std::size_t medium_spans_after = 0;            // kmem_config's [set by kmem_init]
  std::atomic<std::size_t> medium_asked{0};      // bytes of medium requests until that bound
  std::uint8_t* diag_state = nullptr;        // per 16-byte granule: 0x80|type when allocated
  std::size_t npages = 0;
  const kmem_page_source* src = nullptr;
  std::atomic<bool> initialized{false};
  std::uint16_t decay_ticks = 0;             // pool runs, cached large blocks, the spare span are kept this long

  // Page layer (pages lock): single free pages kept mapped for bucket refills.
  kmem_lock pages_lock;
  std::uint32_t page_cache = kNil;           // pages_lock
  std::uint64_t page_cache_n = 0;            // pages_lock
  std::uint32_t fresh_end = 0;               // pages_lock: end of the last batch of single pages from the source
  std::uint32_t populated_to = 0;            // pages_lock: ... populated up to here (kmem_bucket.cpp, page_get)
  // Never-used runs for multi-page clusters, one list per bucket (pages_lock):
  // the source is asked for kRunBatchPages at a time and the runs wait here
  // uncarved (untouched, so not resident; KU_CACHED, so free() refuses them).
  std::uint32_t run_cache[kNumIndx] = {};   // pages_lock (valid when run_cache_n[i] != 0)
  std::uint32_t run_cache_n[kNumIndx] = {}; // pages_lock
  std::uint8_t run_batches[kNumIndx] = {};  // pages_lock: batches asked so far (they double)
  // Free-run pool (kmem_bucket.cpp): clusters given back above a bucket's high-water mark,
  // coalesced into runs of pages any bucket can carve, kept for the decay time.  Bin n
  // (1..kPoolExact) holds runs of n pages, bin 0 longer ones; newest at the head.
  static constexpr unsigned kPoolExact = 16;
  std::uint32_t pool_head[kPoolExact + 1] = {};  // pages_lock (kNil from the start: the constructor)
  std::uint32_t pool_tail[kPoolExact + 1] = {};  // pages_lock
  std::uint64_t pool_pages = 0;              // pages_lock
  std::uint64_t pool_reused = 0;             // pages_lock: clusters carved from the pool
  std::uint64_t pages_from_source = 0;       // pages_lock: outstanding pages
  std::uint64_t large_blocks = 0;            // pages_lock: live large blocks
  std::uint64_t large_pages = 0;             // pages_lock
  std::uint64_t medium_blocks = 0;           // pages_lock: live medium blocks
  std::uint64_t medium_granules = 0;         // pages_lock: their granules
  // Freed large blocks kept mapped for reuse (kmem_bucket.cpp, large cache) [pages_lock].
  struct large_cached {
    std::uintptr_t a;
    std::uint32_t pages;
    std::uint16_t stamp;  // coarse_ticks() when its oldest part was freed
  };
  large_cached lcache[16] = {};              // pages_lock
  std::uint32_t lcache_n = 0;                // pages_lock
  std::uint64_t lcache_pages = 0;            // pages_lock
  std::uint64_t lcache_hits = 0;             // pages_lock: large mallocs served from it
  std::uint64_t lcache_in = 0;               // pages_lock: pages of freed blocks cached since the last sweep
  std::uint64_t lcache_sweeps = 0;           // pages_lock: sweeps for sparse runs
  std::uint64_t lcache_discarded = 0;        // pages_lock: resident pages of sparse runs given back
  std::uint32_t short_seen = 0;              // pages_lock: the source's shortage count last seen
  std::uint16_t short_stamp = 0;             // pages_lock: coarse_ticks() when it last moved
  bool short_now = false;                    // pages_lock: within a decay time of that move
  std::uint64_t short_releases = 0;          // pages_lock: moves seen
  std::uint64_t short_pages = 0;             // pages_lock: pages given back at them

  // Threads (threads lock).
  kmem_lock threads_lock;
  tcache* threads = nullptr;                 // live caches
  std::uint64_t threads_exited = 0;

  // Metadata zone (meta lock): magazines and tcaches, carved from mmap'd chunks.
  kmem_lock meta_lock;
  char* meta_cur = nullptr;
  std::size_t meta_left = 0;
  magazine* free_magazines = nullptr;         // meta lock: recycled descriptors
  std::uint64_t magazines_made = 0;

  // Per size class (kmem_class): kept after the page layer, which every refill that takes a
  // page writes too, so that a short process's or a fork child's refills in the small
  // classes write one or two pages of `g`, not four.
  kmem_class classes[kNumIndx];
  kmemstats types[M_LAST];

  // Counters.
  std::atomic<std::uint64_t> corrupt_detected{0};
  std::atomic<std::uint64_t> bad_frees{0};
  std::atomic<std::uint64_t> trims{0};

  // The per-class constants (cluster shapes, high-water marks, magazine sizes, depot bounds)
  // and the empty pool are in the static image (constinit g): kmem_init writes none of them.
  // It wrote them in every process, two pages of .data past the ones the loader's
  // relocations and the first malloc write, each a copy-on-write fault of the file page
  // (perf record -e page-faults -d of an exec'd program that mallocs once).
  constexpr kmem_globals() {
    for (unsigned i = kMinBucket; i <= kMaxBucket; ++i) {
      classes[i].kb.kb_elmpercl = elm_per_cluster(i);
      classes[i].kb.kb_npg = pages_per_cluster(i);
      classes[i].kb.kb_highwat = bucket_highwat(i);
      classes[i].dp.cap = magazine_cap(i);
      classes[i].dp.max_full = depot_max_full(i);
    }
    for (unsigned b = 0; b <= kPoolExact; ++b) pool_head[b] = pool_tail[b] = kNil;
  }
};

extern kmem_globals g __attribute__((visibility("hidden")));

// Arena page pg's page code in the code table whose front is `top` (kmem_globals::pgindx:
// the codes lie below it, page 0's just under it).  A loop that keeps g.pgindx in a register
// calls this; others call page_code.  => as the code's writer or reader says (set_ku_indx).
[[gnu::always_inline]] inline std::uint8_t& code_below(std::uint8_t* top, std::size_t pg) {
  return top[~static_cast<std::ptrdiff_t>(pg)];
}
[[gnu::always_inline]] inline std::uint8_t& page_code(std::size_t pg) { return code_below(g.pgindx, pg); }

// The class whose bucket kb is (kb is a kmem_class's first member).
inline std::size_t class_of(const kmembucket& kb) {
  return static_cast<std::size_t>(reinterpret_cast<const kmem_class*>(&kb) - g.classes);
}

// ---- layer entry points ------------------------------------------------------------------------
inline kmemusage* usage_of(std::uintptr_t a) { return &g.usage[(a - g.base) >> kPageShift]; }
inline std::uint32_t page_of(std::uintptr_t a) { return static_cast<std::uint32_t>((a - g.base) >> kPageShift); }
inline std::uintptr_t page_addr(std::uint32_t pg) { return g.base + (std::uintptr_t{pg} << kPageShift); }
// The free marker: word 1 of a free bucket element is its address XOR the per-process
// secret cookie XOR word 0 (the element's link: a chain link in a thread cache or the
// depot, a free-list offset in its cluster).  Binding the link into the marker makes the
// pair authenticate itself: a write after free that changes either word breaks it, so a
// chain link is trusted exactly when its element's marker holds (malloc's pop checks one
// word against one XOR of two it loads anyway; glibc's tcache, by contrast, checks only a
// link's alignment, and a wild link there can still be followed).
inline std::uintptr_t free_marker(std::uintptr_t a, std::uintptr_t link) { return a ^ g.cookie ^ link; }
// A cluster free-list link with this bit set says the cluster was never carved from that
// offset on (lazy carving, kmem_bucket.cpp).
inline constexpr std::uintptr_t kLazyLink = std::uintptr_t{1} << 62;
// The links a free marker can bind (word 0 of a free element): 0 (a chain's end), an
// arena address (a chain link), or a cluster free-list link (an offset in the cluster or
// kNoFree, with kLazyLink perhaps set).
inline constexpr std::uintptr_t kMaxListLink = 0xffff;
constexpr bool list_links_fit() {
  for (unsigned i = kMinBucket; i <= kMaxBucket; ++i)
    if (pages_per_cluster(i) * kPageSize > kMaxListLink + 1) return false;
  return kNoFree <= kMaxListLink;
}
static_assert(list_links_fit(), "every cluster offset and kNoFree is at most kMaxListLink");
// The cookie's top bit is set (kmem_init); arena addresses are user addresses, below 2^63.
inline constexpr std::uintptr_t kCookieTopBit = std::uintptr_t{1} << 63;
// g.link_high: the bits none of those links has — every bit at or above the arena's end
// rounded up to a power of two (which is above kMaxListLink), except kLazyLink.
constexpr std::uintptr_t link_high_bits(std::uintptr_t arena_end) {
  std::uintptr_t top = std::uintptr_t{1} << 17;
  while (top < arena_end && top < (std::uintptr_t{1} << 62)) top <<= 1;
  return ~(top - 1) & ~kLazyLink;
}
static_assert(link_high_bits(0x7f0000000000) == (~((std::uintptr_t{1} << 47) - 1) & ~kLazyLink));
static_assert((link_high_bits(0x7f0000000000) & kCookieTopBit) != 0 && (link_high_bits(1) & kMaxListLink) == 0);
// => any thread, no lock.  True when the element at a whose word 1 is w1 may be free:
// w1 ^ a ^ cookie, the link its marker would bind, has none of the bits g.link_high no
// link has.  Every free element passes; an allocated one only when its word 1 carries the
// cookie's high bits (never when it is 0, as malloc leaves it, or any value below 2^63:
// the cookie's top bit survives the XOR).  free's fast path tests this one word (an
// XOR, an AND, as the exact test's XOR and compare) and leaves the exact test (is_marked,
// which also reads word 0) to the slow path: a program that writes a block's first byte
// or int right before freeing it made the fast path's 8-byte load of word 0 wait for
// that narrower store to reach the cache (no store forwarding): a malloc(16), byte
// write, free loop through the shim took 7.8 ns, now 5.5 (jemalloc 4.1).
// may_be_marked_m0 is the same test given m0 = free_marker(a, 0), which free's fast path
// computes anyway for the marker it stores (one XOR with the cookie, not two).
inline bool may_be_marked_m0(std::uintptr_t m0, std::uintptr_t w1) { return ((w1 ^ m0) & g.link_high) == 0; }
inline bool may_be_marked(std::uintptr_t a, std::uintptr_t w1) { return may_be_marked_m0(a ^ g.cookie, w1); }
// True when the element at a carries its free marker (is free).
inline bool is_marked(std::uintptr_t a) {
  const std::uintptr_t* w = reinterpret_cast<const std::uintptr_t*>(a);
  return w[1] == free_marker(a, w[0]);
}
// Makes the element at a free with word 0 = link.
inline void mark_free(std::uintptr_t a, std::uintptr_t link) {
  std::uintptr_t* w = reinterpret_cast<std::uintptr_t*>(a);
  w[0] = link;
  w[1] = free_marker(a, link);
}
// True when a is an element of bucket indx holding its free marker: inside the arena, on
// a page of that class at an element start (so mapped: reading it is safe) or a first-chunk
// element of the class (the line table says so), and marked free.  The slow paths check
// every chain element with it before they follow its link or hand it to the bucket layer
// (which needs exact element starts).  => any thread, no lock.
[[gnu::always_inline]] inline bool chain_elem_ok(std::uintptr_t a, unsigned indx) {
  const std::uintptr_t off = a - g.base;
  if (__builtin_expect(off >= g.size, 0)) return false;
  const std::size_t code = page_code(off >> kPageShift);
  unsigned c = free_class(code, a);
  if (__builtin_expect(c == 0 && code == kFirstCode, 0)) c = first_elem_class(a);
  if (__builtin_expect(c != indx, 0)) return false;
  return is_marked(a);
}
// Sets a page's ku_indx and its copy in g.pgindx.  => the lock guarding ku_indx.
// ku_indx is written under the lock of whoever owns the page (a bucket's lock for its
// clusters, the pages lock for cached and large pages) and read under the pages lock by
// pool_put_locked() looking at a neighbour: the store is atomic (relaxed, a plain byte store
// on x86) so that read is not a data race (TSan in kmem_thread_test: cluster_new's and
// cluster_detach's stores against pooled_neighbour()).  Only KU_CACHED matters to that
// reader, and it is set and cleared under the pages lock.
inline void set_ku_indx(kmemusage* ku, std::uint8_t v) {
  __atomic_store_n(&ku->ku_indx, v, __ATOMIC_RELAXED);
  page_code(ku - g.usage) = v;
}

// Sets bit 0 of t's type_slow (kmem's own reasons: diagnostics, a limit), keeping the
// hold bits (fast_paths_hold).  => t's type lock, or kmem_init.
inline void set_type_slow(malloc_type t, bool slow) {
  if (slow) g.type_slow[t].fetch_or(1, std::memory_order_relaxed);
  else g.type_slow[t].fetch_and(static_cast<std::uint8_t>(~1u), std::memory_order_relaxed);
}

// Sets the state (KU_LARGE, KU_FREED_LARGE) of a whole-page block's first page: its record
// stops naming a medium block that started there before (KL_MEDIUM).  => pages lock.
inline void set_large_state(kmemusage* ku, std::uint8_t v) {
  set_ku_indx(ku, v);
  ku->ku_list = KL_NONE;
}

// Buckets (kmem_bucket.cpp).
// bucket_alloc: takes up to n elements of bucket indx off their clusters as a chain (each
// pushed on it as taken: the first one ends deepest, its link 0), every link checked
// through its element's free marker; *chain is its head.  Returns how many (fewer than n
// only when the arena is exhausted; 0: *chain null).  An element whose marker or cluster
// link is broken (written after free) is counted, reported (KMEM_CORRUPT, once the bucket
// lock is dropped) and dropped with the rest of its cluster's list.  => no lock held; takes the bucket lock (dropped every
// kBatch elements), then perhaps the pages lock.  May not block otherwise.
std::uint32_t bucket_alloc(unsigned indx, void** chain, std::uint32_t n);
// bucket_free: returns the chain of n elements of bucket indx at chain to their clusters,
// each checked as chain_elem_ok does (in the arena, an element start of the class, free
// marker intact) before its link is followed or its cluster touched; gives clusters back
// above the high-water mark.  A broken chain is counted and reported (KMEM_CORRUPT) and
// the rest of it dropped (leaked, never handed out).  A single free element (any link,
// marked) is a chain of one.  Returns how many went back.  => no lock held; takes the
// bucket lock (dropped every kBatch elements), then the pages lock.
std::uint32_t bucket_free(unsigned indx, void* chain, std::uint32_t n);
// Give back every all-free cluster of every bucket and the page cache.  Returns bytes.
std::size_t bucket_trim_all();
// Coarse monotonic time in units of 2^24 ns (~16.8 ms), modulo 2^16 (decay stamps).
std::uint16_t coarse_ticks();
// The page source, under the pages lock (kmem_bucket.cpp).  source_alloc_locked: pages
// that read as zeros, or with `zeroed` given, pages that may hold freed data (the source's
// alloc_pages_any), *zeroed telling which.
void* source_alloc_locked(std::size_t npages, std::size_t align_pages, bool* zeroed = nullptr);
void source_free_locked(std::uintptr_t a, std::size_t npages);
// May freed pages be kept for reuse (the decay time) now?  False without decay, and while
// the source is short of memory (kmem_page_source::shortages): a move of its count gives
// back everything kept at once.  => pages lock held.
bool keep_freed_locked();
// Medium blocks (kmem_medium.cpp), over MAXALLOCSAVE up to kMediumMax, packed at 256-byte
// granularity.  medium_alloc: null when the arena is exhausted; *fresh when the block reads
// as zeros.  medium_free: a block validated live (its granules from its page record).
// => take the pages lock.
void* medium_alloc(std::size_t size, bool* fresh);
void medium_free(std::uintptr_t a, std::uint32_t granules);
// Grow a live medium block in place into the free extent right after it; false when that
// extent is missing or too short (block untouched).  The growth holds old bytes.
bool medium_grow(std::uintptr_t a, std::uint32_t old_granules, std::uint32_t new_granules);
// Give the spare empty span back; bytes given.  Spans held.  => pages lock held.
std::size_t medium_trim_locked();
std::uint64_t medium_spans_locked();
// Large blocks: whole pages from the source.  large_alloc: `zero` when the block must
// read as zeros (M_ZERO; else it may be cleared by the caller: *fresh false); *fresh when
// it reads as zeros.  => pages lock.
void* large_alloc(std::size_t npages, std::size_t align_pages, bool zero, bool* fresh);
void large_free(std::uintptr_t a, std::uint32_t npages);
// Give cached freed large blocks back to the page source: those older than the decay time,
// or all.  Returns the bytes given back.  => pages lock held.
std::size_t lcache_expire_locked(std::uint16_t now, bool all);
// Grow a live large block to new_pages without copying (the page source's resize_pages: in
// place or by moving its frames).  Returns its (possibly new) address, 0 when the source
// cannot (block untouched).  => takes the pages lock.
std::uintptr_t large_grow(std::uintptr_t a, std::uint32_t old_pages, std::uint32_t new_pages);
// Shrink a live large block in place to npages (< its page count).  => pages lock.
void large_shrink(std::uintptr_t a, std::uint32_t old_pages, std::uint32_t new_pages);
std::uint64_t bucket_free_elements(unsigned indx);  // page-level free (bucket lock)
// The bucket layer's consistency (kmem_check.cpp, for tests and debugging): every cluster on
// bucket indx's lists (record, page codes, list links, count against its list) and every
// element on their free lists (an element of the cluster, once, marked; a lazy link
// accounting for the rest); the bucket's counts.  Null when consistent, else what is not.
// => no lock held; takes the bucket lock.  Reads only free elements a cluster has carved.
const char* bucket_consistent(unsigned indx);

// Thread caches (kmem_magazine.cpp).
tcache* tcache_get();  // this thread's cache, created on first use; null when none
// An element of bucket indx from tc's loaded chain (checked by chain_elem_ok), else from
// the previous chain, the depot or the bucket; null when the arena is exhausted.  A chain
// found broken is counted and reported (KMEM_CORRUPT) and the rest of it dropped.
// => owner thread; takes depot, bucket, pages locks.  Free marker still set.
void* magazine_alloc_slow(tcache* tc, unsigned indx);
// A chain found broken at a: counted (corrupt_detected) and reported (KMEM_CORRUPT); the
// caller drops the rest.  => any lock or none.
[[gnu::cold]] void chain_broken(const void* a);
// Pops the loaded chain's head after checking it; null when the chain is empty or broken
// (then counted, reported and dropped).  => owner thread, no lock.
void* chain_pop(tc_bucket& B, unsigned indx);
// Puts p (marker set) on tc's loaded chain, moving full chains to the depot or the bucket.
void magazine_free_slow(tcache* tc, unsigned indx, void* p);
void tcache_flush_stats(tcache* tc);
void depot_drain_all();                 // full depot magazines back to buckets
std::uint64_t depot_rounds(unsigned indx);
void magazines_fork_prepare();
void magazines_fork_parent();
void magazines_fork_child();
void magazines_init();

// Metadata allocation from mmap (meta lock).  Never freed.
void* meta_alloc(std::size_t bytes);

// Diagnostics (kmem_diag.cpp).
void diag_on_free(std::uintptr_t a, std::size_t size, malloc_type t);
// Checks a block leaving a free list; false when it was written after free
// (reported, the caller drops the block).
bool diag_check_reuse(std::uintptr_t a, std::size_t size);
void diag_on_alloc(std::uintptr_t a, malloc_type t);
void report(kmem_status st, const void* addr, malloc_type given);

}  // namespace vmrt::kmem::detail

namespace vmrt::kmem::detail {
// Racy readers' views of another thread's deltas (see type_delta).
inline std::uint64_t tc_type_calls(const tcache* tc, unsigned t) {
  std::uint64_t c = rd(tc->td[t].calls);
  if (tcache::own_row(t))
    for (unsigned i = kMinBucket; i <= kMaxBucket; ++i) c += rd(tc->acnt[tcache::row_of(t)][i]);
  return c;
}
inline std::uint32_t tc_type_mask(const tcache* tc, unsigned t) {
  std::uint32_t m = rd(tc->td[t].mask);
  if (tcache::own_row(t))
    for (unsigned i = kMinBucket; i <= kMaxBucket; ++i)
      if (rd(tc->acnt[tcache::row_of(t)][i]) != 0) m |= std::uint32_t{1} << kClasses.band[i];
  return m;
}
inline std::uint64_t tc_bucket_calls(const tcache* tc, unsigned i) {
  std::uint64_t c = 0;
  for (unsigned r = 0; r < tcache::kCallRows; ++r) c += rd(tc->acnt[r][i]);
  return c;
}

// This thread's cache (null until its first slow-path call, and after exit):
// &t_cache once set up.  The fast paths use t_cache directly.
// __thread: no dynamic initialisation, so no TLS wrapper call on the fast path.
extern __thread tcache* t_tc __attribute__((tls_model("initial-exec"), visibility("hidden")));
extern __thread tcache t_cache __attribute__((tls_model("initial-exec"), visibility("hidden")));
}  // namespace vmrt::kmem::detail

namespace vmrt::kmem::detail {
// Default ks_limit of a type in bytes (kmem_types.cpp); 0 = unlimited.
std::uint64_t type_default_limit(malloc_type t);
}  // namespace vmrt::kmem::detail
