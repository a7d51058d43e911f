// kmem.h — the 4.4BSD kernel malloc (McKusick & Karels 1988, kern_malloc.c),
// rebuilt over vmrt's VM.
//
// Buckets (size classes) from MINBUCKET (16 bytes) to MAXALLOCSAVE: 16-byte steps to
// 128 bytes, then four per doubling (4.4BSD's powers of two with -DKMEM_POW2_CLASSES=1);
// a record per page of the kmem arena says which bucket the page serves (or how
// many pages a large block spans), so free() takes no size.  Malloc types keep
// statistics and limits (vmstat -m).  Beyond 4.4BSD: bounded per-thread caches
// ("magazines") so two threads scale, drained back on thread exit.
//
// Memory comes from a kmem_page_source: whole pages inside one contiguous arena
// [base, base + size).  In vmrt the source is the VM's kmem submap (wired,
// always-mapped frames: seed 001, "physical memory is allocated and is not
// paged"); unit tests may use kmem_host_page_source().
//
// Nothing here throws or calls the C library's malloc.  All calls are
// thread-safe.  None may be called from a signal handler.
#pragma once

#include <cstddef>
#include <cstdint>

namespace vmrt::kmem {

// ---- flags (4.4BSD sys/malloc.h) -------------------------------------------
inline constexpr int M_WAITOK = 0x0000;  // sleep until memory is freed (never returns null
                                         // unless the arena itself is exhausted for good)
inline constexpr int M_NOWAIT = 0x0001;  // fail with null instead of sleeping
inline constexpr int M_ZERO = 0x0100;    // zero the block

// ---- malloc types -------------------------------------------------------------
// Each allocation is charged to a type; vmstat -m reports per type.  The table of
// names and default limits is data (kmem_types.cpp), checked with static_assert.
enum malloc_type : std::uint16_t {
  M_FREE = 0,   // should be on a free list
  M_TEMP,       // misc temporary data buffers
  M_DEVBUF,     // device driver memory
  M_VMMAP,      // VM map structures
  M_VMOBJ,      // VM object structures
  M_LIBC,       // libc malloc family, served by the shim
  M_CXX,        // C++ operator new, served by the shim
  M_TEST,       // unit tests
  M_LAST
};

// ---- status ------------------------------------------------------------------
enum kmem_status : int {
  KMEM_OK = 0,
  KMEM_FOREIGN,      // pointer not inside the kmem arena (not ours)
  KMEM_NOT_BLOCK,    // inside the arena but not the start of a live block (interior)
  KMEM_DOUBLE_FREE,  // block is already free
  KMEM_WRONG_TYPE,   // (diagnostics) freed with another type than it was allocated with
  KMEM_CORRUPT,      // (diagnostics) write-after-free or overrun detected
  KMEM_LIMIT,        // type over its ks_limit and M_NOWAIT
  KMEM_NOMEM,        // arena exhausted
  KMEM_INVALID,      // bad argument: alignment not a power of two, type out of range
};
const char* kmem_status_name(kmem_status s);

// ---- page source -----------------------------------------------------------------
struct kmem_page_source {
  std::uintptr_t base;  // arena start, page aligned
  std::size_t size;     // arena length in bytes
  // Allocate npages whole pages, aligned to align_pages pages (a power of two),
  // mapped read/write and zero-filled.  Returns null when the arena is full.
  // May sleep only when wait is true.
  void* (*alloc_pages)(void* ctx, std::size_t npages, std::size_t align_pages, bool wait);
  // Give back pages from alloc_pages (any sub-range of one allocation).
  void (*free_pages)(void* ctx, void* addr, std::size_t npages);
  void* ctx;
  // Optional (null: kmem copies).  Grow the run [addr, addr + old_npages pages) from
  // alloc_pages to new_npages > old_npages without copying its contents: in place, or by
  // moving its frames to another address.  The new pages read as zeros.  Returns the run's
  // address, or null when it cannot (the old run is untouched).  Never sleeps.
  // (No default member initializers here: a page source is often a global that the first
  // malloc fills in before any constructor runs; a dynamic initializer would undo that.)
  void* (*resize_pages)(void* ctx, void* addr, std::size_t old_npages, std::size_t new_npages);
  // Optional (null: kmem writes zeros).  Make npages whole pages of an allocation read as
  // zeros, writing only the ones that may not: a calloc that reuses a large block touched
  // sparsely need not fault in every page of it.  Never sleeps.
  void (*zero_pages)(void* ctx, void* addr, std::size_t npages);
  // Optional (null: alloc_pages).  As alloc_pages, but the pages need not read as zeros:
  // they may hold data the arena's user freed (a source that defers giving freed pages
  // back hands them out again as they are, with no call to the host).  *zeroed tells
  // whether they read as zeros all the same.  kmem uses it for large blocks that are not
  // M_ZERO.  Never sleeps.
  void* (*alloc_pages_any)(void* ctx, std::size_t npages, std::size_t align_pages, bool* zeroed);
  // Optional (null: kmem cannot see which pages hold memory).  Counts the pages of npages
  // whole pages of an allocation that hold memory now and, when 1 to max_resident of them
  // do, gives that memory back (the pages stay allocated and read as zeros).  Returns the
  // count, any larger value once it passes max_resident, SIZE_MAX when it cannot tell.  kmem uses it on the cached runs of
  // freed large blocks (pages the program touched in blocks cut from a run stay resident
  // in it).  Never sleeps.
  std::size_t (*discard_sparse)(void* ctx, void* addr, std::size_t npages, std::size_t max_resident);
  // Optional (null: pages fault in as kmem writes them).  Make npages whole pages of an
  // allocation that kmem is about to write resident now, in one call where each first
  // write would be a page fault.  Failure is not an error.  Never sleeps.
  void (*populate_pages)(void* ctx, void* addr, std::size_t npages);
  // Optional (null: never short).  A count the source moves each time it runs short of
  // memory (a pager reclaiming its frames).  When it has moved, kmem gives back at once what
  // it keeps for the decay time (the large cache, the free-run pool, the page cache, the
  // spare medium span) and keeps nothing for a decay time after the last move: freed memory
  // kept for reuse would otherwise be written to swap as if it held data.  Lock-free; never
  // sleeps.
  std::uint32_t (*shortages)(void* ctx);
};

// A page source over a private host reservation (mmap), for tests and for
// running kmem without the VM.  Reserves `size` bytes once.
const kmem_page_source* kmem_host_page_source(std::size_t size);

// ---- configuration -----------------------------------------------------------------
struct kmem_config {
  bool diagnostics = false;      // fill freed blocks, detect write-after-free / double free
  bool thread_caches = true;     // per-thread magazines
  std::size_t magazine_size = 0; // 0: the per-bucket default table
  // All-free clusters beyond a bucket's high-water mark go back to the page source
  // once they have stayed free this long (0: at once, as 4.4BSD did).  Keeps
  // phase-shaped workloads from re-faulting the same pages; trim() ignores it.
  unsigned decay_ms = 1000;
  // A young process's small classes refill from a chunk shared by all of them
  // (kmem_first_chunk.h), not from a cluster of their own each: a short process touches a
  // few pages, not one per class.
  bool first_chunk = true;
  // Medium requests (kmem_medium) are served as large blocks (whole pages, first fit among
  // the heap's ranges, next to the clusters) until this many bytes of them have been asked
  // for; then from 8 MiB spans, whose first lies in a 2 MiB block of its own.  A short
  // process (git: four medium blocks) then touches one block of the heap fewer: a host
  // page-table page, tens of microseconds on these guests.  0: spans from the first.
  std::size_t medium_spans_after = 0;
};

// Initialise once, before any other call.  Returns false if already initialised.
bool kmem_init(const kmem_page_source* src, const kmem_config& cfg);
bool kmem_initialized();

// ---- the allocator ---------------------------------------------------------------------
// malloc: size 0 returns a valid minimal block.  Returns null only for M_NOWAIT
// failures, a size past the arena, or overflow; sets *status when non-null.
void* malloc(std::size_t size, malloc_type type, int flags, kmem_status* status = nullptr);
// A block aligned to `align` (a power of two, any size).  Same failure rules.
void* malloc_aligned(std::size_t size, std::size_t align, malloc_type type, int flags,
                     kmem_status* status = nullptr);
// Size-free free.  Returns KMEM_OK, or why the pointer was refused (nothing is
// changed when it is refused).  free(nullptr) is KMEM_OK.
kmem_status free(void* addr, malloc_type type);
// Bytes usable in the block at addr (its bucket size or page-rounded size);
// 0 when addr is not the start of a live block.
std::size_t usable_size(const void* addr);
// True when addr lies inside the kmem arena.
bool owns(const void* addr);
// realloc: grows in place when the bucket already fits.  On failure returns null and
// leaves the old block untouched.
void* realloc(void* addr, std::size_t size, malloc_type type, int flags, kmem_status* status = nullptr);

// Per-type limit (ks_limit) in bytes; 0 = unlimited.
void set_limit(malloc_type type, std::size_t bytes);

// Make every inline fast path (kmem_fast.h: malloc_fast, free_fast) of every type decline
// while any hold bit is set: a caller whose slow path checks more than kmem does (the
// shim: fault injection armed, a fork child setting itself up) sets a bit instead of
// testing its own flags on every call.  `bits`: within kFastHoldBits, one per reason, each
// set and cleared by one owner.  Lock-free (callable in a fork child before fork_child);
// may be called before kmem_init.
inline constexpr std::uint8_t kFastHoldBits = 0xFE;  // bit 0 is kmem's own (diagnostics, limits)
void fast_paths_hold(std::uint8_t bits, bool on);

// Drain this thread's magazines back to the buckets (called on thread exit, at fork).
void thread_cache_drain();
// Give free whole pages of empty buckets and large blocks back to the page source.
std::size_t trim();

// fork support: take / release every kmem lock around a host fork() (none in a process
// that has never had a second thread: no other thread can be inside kmem).  The same
// thread calls prepare and then parent or child.
void fork_prepare();
void fork_parent();
void fork_child();

// ---- statistics -------------------------------------------------------------------------
struct type_stats {
  std::uint64_t inuse;       // blocks in use
  std::uint64_t calls;       // total requests
  std::uint64_t memuse;      // bytes in use (bucket sizes)
  std::uint64_t maxused;     // high water of memuse
  std::uint64_t limit;       // ks_limit
  std::uint64_t limblocks;   // times a request was blocked/failed by the limit
  std::uint32_t size_mask;   // bit i set: blocks of (2^(i-1), 2^i] bytes used by this type (bit 31: >= 2^31)
  std::uint64_t mapblocks;   // times a request failed because the arena was exhausted
};
struct bucket_stats {
  std::size_t size;          // element size
  std::uint64_t calls;       // kb_calls
  std::uint64_t total;       // kb_total: elements in live clusters (carved, not yet given back)
  std::uint64_t totalfree;   // kb_totalfree: elements on free lists (incl. magazines)
  std::uint64_t elmpercl;    // elements per cluster
  std::uint64_t highwat;     // kb_highwat
  std::uint64_t couldfree;   // kb_couldfree
};
bool get_type_stats(malloc_type t, type_stats* out);
// Bucket indexes run from 0 to bucket_count() - 1; get_bucket_stats is false for the
// indexes that name no bucket (the first few).
std::size_t bucket_count();
bool get_bucket_stats(std::size_t index, bucket_stats* out);
// The bucket index that serves a request of `size` bytes (bucket_count() or more when no
// bucket does: 0 bytes, or over MAXALLOCSAVE).
std::size_t bucket_index_of(std::size_t size);
const char* type_name(malloc_type t);

// Allocator-wide counters (beyond 4.4BSD).
struct kmem_counters {
  std::uint64_t pages_from_source;     // pages currently taken from the page source
  std::uint64_t page_cache_pages;      // free pages kmem keeps mapped for bucket refills
                                       // (single pages + never-used multi-page runs + the pool)
  std::uint64_t pool_pages;            // of which in the free-run pool (clusters given back, any bucket carves them)
  std::uint64_t pool_reused;           // clusters carved from the pool
  std::uint64_t large_blocks;          // live whole-page blocks (> kMediumMax, or over-page aligned)
  std::uint64_t large_pages;           // their pages
  std::uint64_t large_cache_pages;     // freed large blocks kept mapped for reuse (the large cache)
  std::uint64_t large_cache_runs;      // the runs they are merged into
  std::uint64_t large_cache_hits;      // large mallocs served from the cache
  std::uint64_t large_cache_sweeps;    // sweeps of the cache for sparse runs
  std::uint64_t large_cache_discarded; // resident pages of sparse cached runs given back
  std::uint64_t shortage_releases;     // times the source's shortage count moved (kmem_page_source::shortages)
  std::uint64_t shortage_pages;        // pages kept for reuse given back at those times
  std::uint64_t medium_blocks;         // live blocks > MAXALLOCSAVE packed in spans (kmem_medium.cpp)
  std::uint64_t medium_bytes;          // their bytes (256-byte granules)
  std::uint64_t medium_spans;          // 8 MiB spans they are cut from
  std::uint64_t live_thread_caches;
  std::uint64_t exited_thread_caches;  // drained by thread exit (or by fork_child)
  std::uint64_t magazines;             // magazines ever made
  std::uint64_t depot_exchanges;       // magazine swaps with the depot
  std::uint64_t corrupt_detected;      // write-after-free found on reuse (diagnostics)
  std::uint64_t bad_frees;             // frees/reallocs refused (foreign, interior, double, type)
  std::uint64_t trims;
};
bool get_kmem_counters(kmem_counters* out);

// ---- diagnostics and misuse reports ---------------------------------------------------------
// A message for a refused pointer, naming the block address, its type (known with
// diagnostics) and bucket size, e.g.
//   "kmem: double free of 0x7f0012340040 (64-byte bucket, type libc)".
// `given` is the type the caller passed (for KMEM_WRONG_TYPE), M_LAST if none.
// Writes at most len bytes including the NUL; returns the message length.
// No malloc: usable from the shim's free() to print glibc-like messages.
std::size_t describe(const void* addr, kmem_status status, char* buf, std::size_t len,
                     malloc_type given = M_LAST);

// What kmem knows about the block containing addr (for messages and tests).
struct block_info {
  std::uintptr_t start;     // start of the block containing addr (0: none)
  std::size_t size;         // its bucket size or page-rounded size
  bool large;               // a page-granular block above MAXALLOCSAVE
  bool allocated;           // live (false: free, or unknown page)
  malloc_type type;         // allocating type (diagnostics only, else M_LAST)
};
bool get_block_info(const void* addr, block_info* out);

// Misuse kmem finds on its own (a block written after free, found when it is
// reused; a corrupted free list) cannot be returned to a caller: it is reported
// through this hook (default: the message on fd 2).  The corrupt block is taken
// out of circulation.  Returns the previous hook; null restores the default.
struct kmem_report {
  kmem_status status;
  const void* addr;          // block start
  std::size_t bucket_size;
  malloc_type type;          // last owner's type (diagnostics), else M_LAST
  std::size_t offset;        // first modified byte within the block
  const char* message;       // NUL-terminated, valid during the call
};
using report_hook = void (*)(const kmem_report& r);
report_hook set_report_hook(report_hook hook);

// vmstat -m: the three tables of the 4.4BSD report (by bucket size, type by bucket
// size, by type) written to fd with write(2) only (safe at exit, no malloc).
void report_vmstat_m(int fd);

}  // namespace vmrt::kmem
