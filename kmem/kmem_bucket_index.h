// kmem_bucket_index.h — the size classes (buckets) and every per-class table, as constexpr data.
//
// A bucket index names a size class (4.4BSD's `indx`).  Indexes below kMinBucket are page
// states (kmem_internal.h: KU_*); kMinBucket .. kMaxBucket are the classes, sorted by size.
// Two geometries, chosen at compile time (KMEM_POW2_CLASSES, kept for measurement):
//
//  * power-of-two buckets (KMEM_POW2_CLASSES=1): 4.4BSD's, 16 B .. 64 KiB, index = log2;
//  * the default: 16-byte steps to 128 B, then four classes per doubling (quarter steps:
//    160, 192, 224, 256, 320, ...), 44 classes to MAXALLOCSAVE = 64 KiB.  Under a page the
//    power-of-two buckets hold a request in up to twice its size, and a request just over a
//    page in two pages (sqlite's 4 KiB pages plus a header: 1.33x jemalloc's peak RSS).
//
// A cluster (a slab in Bonwick's terms) is the smallest run of pages that the class's
// elements fill exactly: lcm(size, page) bytes.  Power-of-two classes up to a page: one page;
// size = d * 2^k with d odd (3, 5, 7) and under a page or between pages: d pages (a 112-byte
// class fills 7 pages with 256 elements, 5 KiB fills 5 pages with 4); page multiples: one
// element of whole pages.  Nothing is left over, so every offset in a cluster that is a
// multiple of the size is an element start, and free() can check a pointer exactly.
//
// Each arena page carries one byte, page_code(pg) (kmem_internal.h): its *page code*.  The first
// page of a cluster carries the class index; the further pages of a cluster whose elements
// straddle pages carry a *tail code* (class, page offset in the cluster), so a pointer into
// any page finds its class and cluster start from one byte; the tail pages of a whole-page
// element carry KU_UNUSED (no element starts there).  free() tests a pointer with
// kFreeMask[code] (one AND: the classes whose elements are aligned to a power of two) or,
// for the others, a divisibility test of its offset in the cluster by the class size with
// one multiply (n is a multiple of d iff n * ceil(2^64/d) mod 2^64 < ceil(2^64/d), for
// n < 2^32: Lemire, Kaser and Kurz, "Faster remainder by direct computation", 2019).
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <numeric>

namespace vmrt::kmem::detail {

inline constexpr unsigned kPageShift = 12;
inline constexpr std::size_t kPageSize = std::size_t{1} << kPageShift;
inline constexpr std::uintptr_t kPageMask = kPageSize - 1;

#ifndef KMEM_POW2_CLASSES
#define KMEM_POW2_CLASSES 0
#endif
inline constexpr bool kPow2Classes = KMEM_POW2_CLASSES != 0;

inline constexpr unsigned kMinBucket = 4;  // the first class index (16 bytes); below: page states
inline constexpr std::size_t kMinAlloc = 16;
inline constexpr unsigned kMaxAllocShift = 16;
inline constexpr std::size_t kMaxAllocSave = std::size_t{1} << kMaxAllocShift;  // MAXALLOCSAVE
inline constexpr unsigned kNumClasses = kPow2Classes ? kMaxAllocShift - 4 + 1 : 8 + 4 * (kMaxAllocShift - 7);
inline constexpr unsigned kMaxBucket = kMinBucket + kNumClasses - 1;  // the last class index
inline constexpr unsigned kNumIndx = kMaxBucket + 1;                   // arrays indexed by class
inline constexpr unsigned kNoBucket = 64;  // bucket_index of sizes no class holds
static_assert(kMaxBucket < 64, "class indexes fit the page-code byte with room for tail codes");

// The size of class indx (kMinBucket <= indx <= kMaxBucket).
constexpr std::size_t class_size_of(unsigned indx) {
  unsigned c = indx - kMinBucket;
  if (kPow2Classes) return std::size_t{16} << c;
  if (c < 8) return std::size_t{16} * (c + 1);
  c -= 8;
  unsigned k = 7 + c / 4;  // the class lies in (2^k, 2^(k+1)]
  return std::size_t{5 + c % 4} << (k - 2);
}

// The power-of-two band of a size: the smallest i >= 4 with 2^i >= size (4.4BSD's BUCKETINDX;
// a type's size mask in vmstat -m has one bit per band).  One OR, one lzcnt.
constexpr unsigned size_band(std::size_t size) {
  return 64u - static_cast<unsigned>(std::countl_zero((size - 1) | (kMinAlloc - 1)));
}

constexpr std::size_t lcm_page(std::size_t size) {
  std::size_t a = size, b = kPageSize;
  while (b != 0) {
    std::size_t t = a % b;
    a = b;
    b = t;
  }
  return size / a * kPageSize;
}

struct class_table {
  std::uint32_t size[kNumIndx];   // element bytes
  std::uint16_t pages[kNumIndx];  // pages per cluster
  std::uint16_t elms[kNumIndx];   // elements per cluster
  std::uint8_t band[kNumIndx];    // size_band(size)
  bool straddle[kNumIndx];        // elements are not aligned to a power of two (divisibility test)
};
constexpr class_table make_class_table() {
  class_table t{};
  for (unsigned i = kMinBucket; i <= kMaxBucket; ++i) {
    std::size_t s = class_size_of(i);
    std::size_t bytes = lcm_page(s);
    t.size[i] = static_cast<std::uint32_t>(s);
    t.pages[i] = static_cast<std::uint16_t>(bytes / kPageSize);
    t.elms[i] = static_cast<std::uint16_t>(bytes / s);
    t.band[i] = static_cast<std::uint8_t>(size_band(s));
    t.straddle[i] = !(std::has_single_bit(s) && s <= kPageSize) && s % kPageSize != 0;
  }
  return t;
}
inline constexpr class_table kClasses = make_class_table();

constexpr std::size_t bucket_size(unsigned indx) { return kClasses.size[indx]; }
constexpr std::uint32_t elm_per_cluster(unsigned indx) { return kClasses.elms[indx]; }
constexpr std::uint32_t pages_per_cluster(unsigned indx) { return kClasses.pages[indx]; }

// ---- size -> class ---------------------------------------------------------------------
// Up to a page, by 16-byte steps; above, by 1 KiB steps (every class above a page is a
// multiple of 1 KiB).  small[0] (size 0) is 0, a state index: its thread-cache slot is the
// empty sentinel, so malloc's fast path sends size 0 to the slow path.
struct size_index_table {
  std::uint8_t small[kPageSize / 16 + 1];
  std::uint8_t big[kMaxAllocSave / 1024];
};
constexpr unsigned class_for_slow(std::size_t size) {
  for (unsigned i = kMinBucket; i <= kMaxBucket; ++i)
    if (class_size_of(i) >= size) return i;
  return kNoBucket;
}
constexpr size_index_table make_size_index_table() {
  size_index_table t{};
  for (std::size_t j = 1; j <= kPageSize / 16; ++j) t.small[j] = static_cast<std::uint8_t>(class_for_slow(j * 16));
  for (std::size_t j = kPageSize / 1024; j < kMaxAllocSave / 1024; ++j)
    t.big[j] = static_cast<std::uint8_t>(class_for_slow((j + 1) * 1024));
  return t;
}
inline constexpr size_index_table kSizeIndex = make_size_index_table();

// The class of a request, or kNoBucket (size 0, or over MAXALLOCSAVE).
constexpr unsigned bucket_index(std::size_t size) {
  if (size == 0) return kNoBucket;
  if (size <= kPageSize) return kSizeIndex.small[(size + 15) >> 4];
  if (size <= kMaxAllocSave) return kSizeIndex.big[(size - 1) >> 10];
  return kNoBucket;
}

constexpr bool bucket_index_table_ok(std::size_t to) {
  unsigned i = kMinBucket;  // the smallest class >= s, walked up with s
  for (std::size_t s = 1; s <= to; ++s) {
    while (i <= kMaxBucket && class_size_of(i) < s) ++i;
    if (bucket_index(s) != (i <= kMaxBucket ? i : kNoBucket)) return false;
  }
  return true;
}
static_assert(bucket_index_table_ok(70000), "the size tables agree with the class list");
static_assert(bucket_index(1) == kMinBucket && bucket_index(16) == kMinBucket && bucket_index(17) == kMinBucket + 1);
static_assert(bucket_size(bucket_index(kPageSize)) == kPageSize && bucket_size(kMaxBucket) == kMaxAllocSave);
static_assert(bucket_index(kMaxAllocSave + 1) == kNoBucket && bucket_index(0) == kNoBucket);
static_assert(kPow2Classes || (bucket_size(bucket_index(4096 + 100)) == 5120 && bucket_size(bucket_index(100)) == 112 &&
                               bucket_size(bucket_index(600)) == 640 && kNumClasses == 44));
static_assert(!kPow2Classes || (bucket_index(4096) == 12 && bucket_index(4097) == 13 && kMaxBucket == 16));

// malloc_aligned relies on these: a power of two up to a page lands in a class of exactly
// that size (aligned to it), a page multiple in a page-multiple class (page aligned).
constexpr bool aligned_requests_ok() {
  for (std::size_t p = 16; p <= kPageSize; p <<= 1)
    if (bucket_size(bucket_index(p)) != p) return false;
  for (std::size_t n = kPageSize; n <= kMaxAllocSave; n += kPageSize)
    if (bucket_size(bucket_index(n)) % kPageSize != 0) return false;
  return true;
}
static_assert(aligned_requests_ok());

// ---- page codes ------------------------------------------------------------------------------
// Code c: c < kMinBucket a page state; kMinBucket..kMaxBucket the first page of a cluster of
// that class; above, tail codes (tail_base[class] + page offset - 1) for straddling classes.
// Three parallel arrays, not an array of 16-byte records: free's fast path then reaches
// each field with one scaled index off one base (a record array needed a shift and an add
// to form the record's address first: 2 instructions of every free).
struct code_table {
  std::uint64_t magic[256];  // ceil(2^64 / class size); 0: nothing starts here
  std::uint32_t rel[256];    // byte offset of the page in its cluster
  std::uint8_t cls[256];     // class index
  std::uint8_t tail_base[kNumIndx];
  unsigned ncodes;
};
constexpr code_table make_code_table() {
  code_table t{};
  unsigned next = kMaxBucket + 1;
  auto set = [&t](unsigned c, std::uint64_t magic, std::uint32_t rel, unsigned cls) {
    t.magic[c] = magic;
    t.rel[c] = rel;
    t.cls[c] = static_cast<std::uint8_t>(cls);
  };
  for (unsigned i = kMinBucket; i <= kMaxBucket; ++i) {
    const std::uint64_t magic = ~std::uint64_t{0} / kClasses.size[i] + 1;
    set(i, magic, 0, i);
    if (!kClasses.straddle[i]) continue;
    t.tail_base[i] = static_cast<std::uint8_t>(next);
    for (unsigned p = 1; p < kClasses.pages[i]; ++p)
      if (next < 256) set(next++, magic, static_cast<std::uint32_t>(p * kPageSize), i);
  }
  t.ncodes = next;
  return t;
}
inline constexpr code_table kCodes = make_code_table();
static_assert(kCodes.ncodes <= 256, "page codes fit a byte");

constexpr std::uint8_t tail_code(unsigned indx, unsigned pgoff) {
  return static_cast<std::uint8_t>(kCodes.tail_base[indx] + pgoff - 1);
}

// Alignment every element start has, for the classes aligned to a power of two: its size
// up to a page, a page above.
constexpr std::uintptr_t elm_align_mask(unsigned indx) {
  return (kClasses.size[indx] <= kPageSize ? kClasses.size[indx] : kPageSize) - 1;
}

// free()'s one-load test, indexed by a page code: the bits that must be clear in a block
// start.  Power-of-two-aligned classes: the element alignment; every other code (states,
// straddling classes, tail codes) is all ones, so no pointer passes and the divisibility
// test (elem_class) decides.
struct free_mask_table {
  std::uintptr_t m[256];
};
constexpr free_mask_table make_free_mask_table() {
  free_mask_table t{};
  for (unsigned c = 0; c < 256; ++c)
    t.m[c] = (c >= kMinBucket && c <= kMaxBucket && !kClasses.straddle[c]) ? elm_align_mask(c) : ~std::uintptr_t{0};
  return t;
}
inline constexpr free_mask_table kFreeMask = make_free_mask_table();
static_assert(kFreeMask.m[0] == ~std::uintptr_t{0} && kFreeMask.m[kMinBucket - 1] == ~std::uintptr_t{0});
static_assert(kFreeMask.m[kMinBucket] == 15 && kFreeMask.m[bucket_index(kPageSize)] == kPageMask &&
              kFreeMask.m[kMaxBucket] == kPageMask);

// => pure.  The class of the element that starts at a, whose page has code `code`; 0 when
// no element starts at a (states, interior pointers, a tail page of a whole-page element).
[[gnu::always_inline]] constexpr unsigned elem_class(std::size_t code, std::uintptr_t a) {
  if ((a & kFreeMask.m[code]) == 0) return static_cast<unsigned>(code);
  const std::uint64_t magic = kCodes.magic[code];
  const std::uint64_t rel = (a & kPageMask) + kCodes.rel[code];
  if (rel * magic >= magic) return 0;  // not a multiple of the size (magic 0: never)
  return kCodes.cls[code];
}
// => pure.  elem_class's answer with no branch on the class: every code takes the
// divisibility test (a power-of-two class's offset is a multiple of its size iff the
// multiply says so too; a state's magic is 0, so nothing passes), and the one branch
// left, "not an element start", is never taken by a correct free.  free()'s fast path
// uses this one: with random sizes the AND test's "straddling or not" branch went
// whichever way the size class said, a misprediction on about every other free
// (cachegrind --branch-sim on allocsuite's xmalloc worker: 0.48 per free, jemalloc's
// free 0.005).  Two table loads and a multiply instead of an 8-byte load and an AND.
// A passing test implies a nonzero class (magic_implies_class below), which the compiler is
// told, so a caller's "indx == 0" test folds into the multiply's compare (free's fast path:
// 3 instructions fewer).
[[gnu::always_inline]] constexpr unsigned free_class(std::size_t code, std::uintptr_t a) {
  const std::uint64_t magic = kCodes.magic[code];
  const std::uint64_t rel = (a & kPageMask) + kCodes.rel[code];
  if (rel * magic >= magic) return 0u;
  const unsigned cls = kCodes.cls[code];
  if (cls == 0) __builtin_unreachable();  // magic != 0 here: magic_implies_class
  return cls;
}

// The first page of the cluster holding a page of code `code` (a class or tail code).
constexpr std::uint32_t cluster_first_page(std::uint32_t pg, std::size_t code) {
  return pg - (kCodes.rel[code] >> kPageShift);
}

constexpr bool code_table_ok() {
  for (unsigned i = kMinBucket; i <= kMaxBucket; ++i) {
    const std::uint64_t s = kClasses.size[i];
    // every element start passes, every other 16-byte offset fails, over the whole cluster
    for (std::uint64_t off = 0; off < std::uint64_t{kClasses.pages[i]} * kPageSize; off += 16) {
      unsigned pg = static_cast<unsigned>(off >> kPageShift);
      std::size_t code = pg == 0 ? i : (kClasses.straddle[i] ? tail_code(i, pg) : 0);
      std::uintptr_t a = (std::uintptr_t{1} << 40) + off;  // any cluster start is page aligned
      unsigned want = off % s == 0 ? i : 0;
      if (elem_class(code, a) != want || free_class(code, a) != want) return false;
      if (code != 0 && cluster_first_page(pg, code) != 0) return false;
    }
  }
  for (unsigned c = 0; c < kMinBucket; ++c)
    if (elem_class(c, std::uintptr_t{1} << 40) != 0 || elem_class(c, (std::uintptr_t{1} << 40) + 16) != 0 ||
        free_class(c, std::uintptr_t{1} << 40) != 0 || free_class(c, (std::uintptr_t{1} << 40) + 16) != 0)
      return false;
  for (unsigned c = kCodes.ncodes; c < 256; ++c)  // unused codes: nothing starts there
    if (free_class(c, std::uintptr_t{1} << 40) != 0) return false;
  return true;
}
static_assert(code_table_ok(), "the page codes find exactly the element starts of every class");
// free_class's promise to the compiler: every code whose magic can pass names a class.
constexpr bool magic_implies_class() {
  for (unsigned c = 0; c < 256; ++c)
    if (kCodes.magic[c] != 0 && kCodes.cls[c] == 0) return false;
  return true;
}
static_assert(magic_implies_class(), "a code with a magic has a class (free_class's unreachable)");

// kb_highwat: free elements a bucket keeps before it gives whole clusters back.  4.4BSD
// kept 5 one-page clusters; here ~5 pages of elements up to a page (at least one cluster),
// ~64 KiB above.
constexpr std::uint64_t bucket_highwat(unsigned indx) {
  const std::uint64_t s = kClasses.size[indx];
  std::uint64_t n = s <= kPageSize ? 5 * kPageSize / s : (std::uint64_t{64} << 10) / s;
  if (n < kClasses.elms[indx]) n = kClasses.elms[indx];
  return n < 1 ? 1 : n;
}

// Magazine capacity (rounds) per class, the default when kmem_config leaves it 0.
// Small classes get 256 rounds: with 64, two threads churning independently
// overflowed into the shared depot ~4x as often, and every exchange hands one
// thread's freshly freed (cache-hot, on its core) blocks to the other, mixing
// both threads' objects into the same cache lines (churn_2t: 130 -> 115 ms,
// prodcons 1.8x -> 2.7x jemalloc; mixed_server RSS unchanged).
inline constexpr std::uint32_t kMagazineMax = 256;
constexpr std::uint32_t magazine_cap(unsigned indx) {
  const std::size_t s = kClasses.size[indx];
  if (s <= 256) return 256;
  if (s <= 1024) return 32;
  if (s <= 4096) return 16;
  if (s <= 8192) return 8;
  if (s <= 16384) return 4;
  return 2;
}
// Full magazines the depot keeps per class before it returns rounds to the bucket: ~512 KiB
// per power-of-two band, shared by the band's classes, so the bound on what depots hold does
// not grow 3.4x with the class count (allocsuite's xmalloc peak RSS did not move with it:
// 8.1 MB either way, 7.1 MB with power-of-two buckets).
inline constexpr std::uint64_t kDepotBytes = (std::uint64_t{512} << 10) * (kMaxAllocShift - 3) / kNumClasses;
constexpr std::uint32_t depot_max_full(unsigned indx) {
  std::uint64_t per_mag = std::uint64_t{magazine_cap(indx)} * kClasses.size[indx];
  std::uint64_t n = kDepotBytes / per_mag;
  return n < 2 ? 2 : (n > 32 ? 32 : static_cast<std::uint32_t>(n));
}

// Elements in the shortest run of class indx that ends on a cache-line boundary when it
// starts on one (64 / gcd(size, 64): 4 for 16, 48 and 80 bytes, 2 for 32 and 96, 1 from
// 192 on).  Clusters start page-aligned and hold a whole number of such runs, so a refill
// whose length is a multiple of it, taken from a fresh cluster in batches that are too,
// ends where the next refill (perhaps another thread's) starts a new line: two threads'
// first blocks never share a line (Hoard's active false sharing; a 48-byte class's first
// refill of 85 elements left its last block in the line of the next thread's first).
inline constexpr std::uint64_t kCacheLine = 64;
constexpr std::uint32_t line_run(unsigned indx) {
  return static_cast<std::uint32_t>(kCacheLine / std::gcd(std::uint64_t{kClasses.size[indx]}, kCacheLine));
}

constexpr bool bucket_tables_ok() {
  for (unsigned i = kMinBucket; i <= kMaxBucket; ++i) {
    if (magazine_cap(i) == 0 || magazine_cap(i) > kMagazineMax) return false;
    if (magazine_cap(i) % line_run(i) != 0 || elm_per_cluster(i) % line_run(i) != 0) return false;
    if (std::uint64_t{elm_per_cluster(i)} * bucket_size(i) != std::uint64_t{pages_per_cluster(i)} * kPageSize) return false;
    if (bucket_highwat(i) == 0 || depot_max_full(i) < 2) return false;
    if (pages_per_cluster(i) * kPageSize > 0x10000) return false;  // offsets fit ku_freehead
    if (bucket_size(i) % 16 != 0 || (i > kMinBucket && bucket_size(i) <= bucket_size(i - 1))) return false;
  }
  return true;
}
static_assert(bucket_tables_ok(), "per-class tables are consistent");
static_assert(elm_per_cluster(kMinBucket) == 256 && pages_per_cluster(bucket_index(kPageSize)) == 1 &&
              pages_per_cluster(kMaxBucket) == 16);

}  // namespace vmrt::kmem::detail
