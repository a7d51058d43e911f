// kmem_bucket_index.h — BUCKETINDX and the per-bucket tables, as constexpr data.
//
// A bucket index is log2 of the element size (4.4BSD's `indx`): bucket 4 holds
// 16-byte elements, bucket kMaxBucket holds MAXALLOCSAVE-byte elements.  Larger
// requests take whole pages from the page source.
//
// MAXALLOCSAVE was chosen by measurement (see kmem/README.md): 64 KiB keeps the
// whole 16 B – 64 KiB mixed workload on the magazine fast path; the power-of-two
// waste above a page costs address space, not RSS, because a block's untouched
// tail pages are never faulted in.  Override with -DKMEM_MAXBUCKET=<log2>.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>

namespace vmrt::kmem::detail {

inline constexpr unsigned kPageShift = 12;
inline constexpr std::size_t kPageSize = std::size_t{1} << kPageShift;
inline constexpr std::uintptr_t kPageMask = kPageSize - 1;

inline constexpr unsigned kMinBucket = 4;  // MINBUCKET: 16 bytes
#ifndef KMEM_MAXBUCKET
#define KMEM_MAXBUCKET 16
#endif
inline constexpr unsigned kMaxBucket = KMEM_MAXBUCKET;
inline constexpr std::size_t kMinAlloc = std::size_t{1} << kMinBucket;
inline constexpr std::size_t kMaxAllocSave = std::size_t{1} << kMaxBucket;  // MAXALLOCSAVE
inline constexpr unsigned kNumIndx = kMaxBucket + 1;  // arrays indexed by bucket index
static_assert(kMaxBucket >= kPageShift && kMaxBucket <= 20, "MAXALLOCSAVE between one page and 1 MiB");

// BUCKETINDX(size): the smallest i >= MINBUCKET with 2^i >= size.  Branch-free:
// one OR, one lzcnt.  Size 0 and sizes past 2^63 map to 64 (> kMaxBucket, the
// slow path sorts them out).
constexpr unsigned bucket_index(std::size_t size) {
  return 64u - static_cast<unsigned>(std::countl_zero((size - 1) | (kMinAlloc - 1)));
}
constexpr std::size_t bucket_size(unsigned indx) { return std::size_t{1} << indx; }

// The reference definition, used only to check bucket_index at compile time.
constexpr unsigned bucket_index_slow(std::size_t size) {
  unsigned i = kMinBucket;
  while (bucket_size(i) < size) ++i;
  return i;
}
constexpr bool bucket_index_table_ok(std::size_t from, std::size_t to) {
  for (std::size_t s = from; s <= to; ++s)
    if (bucket_index(s) != bucket_index_slow(s)) return false;
  return true;
}
static_assert(bucket_index_table_ok(1, 70000), "BUCKETINDX agrees with its definition");
static_assert(bucket_index(1) == 4 && bucket_index(16) == 4 && bucket_index(17) == 5);
static_assert(bucket_index(4096) == 12 && bucket_index(4097) == 13);
static_assert(bucket_index(kMaxAllocSave) == kMaxBucket && bucket_index(kMaxAllocSave + 1) == kMaxBucket + 1);
static_assert(bucket_index(0) == 64, "size 0 leaves the fast path");

// Elements per cluster: a cluster is one page for buckets up to a page, one
// element (of several pages) above.
constexpr std::uint32_t elm_per_cluster(unsigned indx) {
  return indx <= kPageShift ? static_cast<std::uint32_t>(kPageSize >> indx) : 1u;
}
constexpr std::uint32_t pages_per_cluster(unsigned indx) {
  return indx <= kPageShift ? 1u : static_cast<std::uint32_t>(bucket_size(indx) >> kPageShift);
}
// Alignment every element start has (the interior-pointer check): its size
// within a page, page alignment above.
constexpr std::uintptr_t elm_align_mask(unsigned indx) {
  return (indx <= kPageShift ? bucket_size(indx) : kPageSize) - 1;
}

// free()'s one-load validity test, indexed by a page's ku_indx byte: the bits
// that must be clear in a block start.  Bucket pages: the element alignment;
// every other state (unused, large, freed large, cached: values below
// MINBUCKET) is all ones, so no pointer passes and free takes its slow path,
// which tells those cases apart.
struct free_mask_table {
  std::uintptr_t m[kNumIndx];
};
constexpr free_mask_table make_free_mask_table() {
  free_mask_table t{};
  for (unsigned i = 0; i < kNumIndx; ++i) t.m[i] = i < kMinBucket ? ~std::uintptr_t{0} : elm_align_mask(i);
  return t;
}
inline constexpr free_mask_table kFreeMask = make_free_mask_table();
static_assert(kFreeMask.m[0] == ~std::uintptr_t{0} && kFreeMask.m[kMinBucket - 1] == ~std::uintptr_t{0});
static_assert(kFreeMask.m[kMinBucket] == 15 && kFreeMask.m[kPageShift] == kPageMask &&
              kFreeMask.m[kMaxBucket] == kPageMask);

// kb_highwat: free elements a bucket keeps before it gives whole clusters back.
// 4.4BSD used 5 clusters; above a page we keep ~64 KiB of free elements.
constexpr std::uint64_t bucket_highwat(unsigned indx) {
  if (indx <= kPageShift) return 5u * elm_per_cluster(indx);
  std::uint64_t n = (std::uint64_t{64} << 10) >> indx;
  return n < 1 ? 1 : n;
}

// Magazine capacity (rounds) per bucket, the default when kmem_config leaves it 0.
// Small buckets get 256 rounds: with 64, two threads churning independently
// overflowed into the shared depot ~4x as often, and every exchange hands one
// thread's freshly freed (cache-hot, on its core) blocks to the other, mixing
// both threads' objects into the same cache lines (churn_2t: 130 -> 115 ms,
// prodcons 1.8x -> 2.7x jemalloc; mixed_server RSS unchanged).
inline constexpr std::uint32_t kMagazineMax = 256;
constexpr std::uint32_t magazine_cap(unsigned indx) {
  if (indx <= 8) return 256;  // <= 256 B
  if (indx <= 10) return 32;  // <= 1 KiB
  if (indx <= 12) return 16;  // <= 4 KiB
  if (indx == 13) return 8;
  if (indx == 14) return 4;
  return 2;
}
// Full magazines the depot keeps per bucket before it returns rounds to the bucket.
constexpr std::uint32_t depot_max_full(unsigned indx) {
  std::uint64_t per_mag = std::uint64_t{magazine_cap(indx)} << indx;
  std::uint64_t n = (std::uint64_t{512} << 10) / per_mag;
  return n < 2 ? 2 : (n > 32 ? 32 : static_cast<std::uint32_t>(n));
}

constexpr bool bucket_tables_ok() {
  for (unsigned i = kMinBucket; i <= kMaxBucket; ++i) {
    if (magazine_cap(i) == 0 || magazine_cap(i) > kMagazineMax) return false;
    if (elm_per_cluster(i) * bucket_size(i) != pages_per_cluster(i) * kPageSize) return false;
    if (bucket_highwat(i) == 0 || depot_max_full(i) < 2) return false;
    if (elm_per_cluster(i) > 0xffff) return false;  // fits ku_freecnt
  }
  return true;
}
static_assert(bucket_tables_ok(), "per-bucket tables are consistent");
static_assert(elm_per_cluster(4) == 256 && elm_per_cluster(12) == 1 && pages_per_cluster(16) == 16);

}  // namespace vmrt::kmem::detail
