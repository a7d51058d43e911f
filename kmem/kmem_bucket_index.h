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

// kb_highwat: free elements a bucket keeps before it gives whole clusters back.
// 4.4BSD used 5 clusters; above a page we keep ~64 KiB of free elements.
constexpr std::uint64_t bucket_highwat(unsigned indx) {
  if (indx <= kPageShift) return 5u * elm_per_cluster(indx);
  std::uint64_t n = (std::uint64_t{64} << 10) >> indx;
  return n < 1 ? 1 : n;
}

// Magazine capacity (rounds) per bucket, the default when kmem_config leaves it 0.
inline constexpr std::uint32_t kMagazineMax = 64;
constexpr std::uint32_t magazine_cap(unsigned indx) {
  if (indx <= 8) return 64;   // <= 256 B
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
