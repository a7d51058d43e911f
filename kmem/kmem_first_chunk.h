// kmem_first_chunk.h — the first chunk: a process's first few blocks of every small class,
// packed together in a few shared pages.
//
// Without it a class's first malloc makes the class a cluster of its own and carves about
// a page of elements into the thread's cache: a short process that mallocs in 20 classes
// (git --version) writes ~20 pages, each a host zero-fill fault.  The first chunk is
// kFirstPages pages taken from the page source by the first malloc, cut into one slot per class
// up to kFirstMaxSize (first_count(indx) elements each); the first malloc calls of a class
// are served from its slot, one element at a time and in address order, before the class
// gets any cluster, while the process has a single thread.  The 4.4BSD lookup stays: every
// first-chunk page carries the page code kFirstCode, and the slot table (kFirst: each
// class's slot offset and count, as kmemusage is a record per page) gives the class of a
// pointer into the chunk, so free stays size-free and interior and foreign pointers fail
// exactly.
//
// kFirstCode has no magic, so free's fast path refuses the whole chunk (no instruction added
// to it) and the slow path frees the block.  A freed first-chunk block is retired: it gets
// its free marker (so a second free is a double free) and is never handed out again.  Reusing
// it would put it in a thread's cache, where every later free of it would take the slow path
// (a malloc/free loop of one size would run slow for ever); retired blocks hold at most the
// chunk's kFirstPages pages for the life of the process.
#pragma once

#include <cstddef>
#include <cstdint>

#include "kmem/kmem_bucket_index.h"

namespace vmrt::kmem::detail {

inline constexpr std::size_t kFirstMaxSize = 2048;  // classes up to this size have a slot
inline constexpr std::size_t kFirstSlotBytes = 1024; // about this much of each class
inline constexpr std::uint32_t kFirstMaxCount = 32;

// Elements of class indx in the first chunk: ~kFirstSlotBytes of it, at least one, at most
// kFirstMaxCount; none above kFirstMaxSize.
constexpr std::uint32_t first_count(unsigned indx) {
  const std::size_t s = kClasses.size[indx];
  if (s > kFirstMaxSize) return 0;
  std::size_t n = kFirstSlotBytes / s;
  if (n < 1) n = 1;
  if (n > kFirstMaxCount) n = kFirstMaxCount;
  return static_cast<std::uint32_t>(n);
}

constexpr std::size_t first_bytes() {
  std::size_t b = 0;
  for (unsigned i = kMinBucket; i <= kMaxBucket; ++i) b += std::size_t{first_count(i)} * kClasses.size[i];
  return b;
}
inline constexpr std::uint32_t kFirstPages = static_cast<std::uint32_t>((first_bytes() + kPageMask) >> kPageShift);

// Slot placement: the power-of-two classes first, largest first, from the chunk's (page
// aligned) start, so each of their elements is aligned to its size as in a cluster
// (malloc_aligned relies on it); then the others, which need 16 bytes.
// The table is read by first-chunk frees only (a slow path): no per-granule class map (it
// was 1.8 KiB of the read-only data next to the fast paths' tables, a page more for every
// process that frees a first-chunk block); a lookup walks the slots.
struct first_layout {
  std::uint32_t off[kNumIndx];      // slot start in the chunk
  std::uint32_t count[kNumIndx];    // elements in the slot (0: no slot)
};
constexpr first_layout make_first_layout() {
  first_layout t{};
  std::uint32_t at = 0;
  auto place = [&](unsigned i) {
    t.off[i] = at;
    t.count[i] = first_count(i);
    at += t.count[i] * kClasses.size[i];
  };
  for (unsigned i = kMaxBucket + 1; i-- > kMinBucket;)
    if (first_count(i) != 0 && !kClasses.straddle[i]) place(i);
  for (unsigned i = kMinBucket; i <= kMaxBucket; ++i)
    if (first_count(i) != 0 && kClasses.straddle[i]) place(i);
  return t;
}
inline constexpr first_layout kFirst = make_first_layout();

// The page code of every first-chunk page: a code no class uses, with no magic (free's
// fast path and chain_elem_ok refuse it; kFreeMask is all ones there).
inline constexpr std::uint8_t kFirstCode = 255;
static_assert(kCodes.ncodes <= kFirstCode && kCodes.magic[kFirstCode] == 0 && kFreeMask.m[kFirstCode] == ~std::uintptr_t{0},
              "the first chunk's page code is free");

constexpr bool first_layout_ok() {
  std::size_t end = 0;
  for (unsigned i = kMinBucket; i <= kMaxBucket; ++i) {
    if (kFirst.count[i] != first_count(i)) return false;
    if (kFirst.count[i] == 0) continue;
    const std::size_t s = kClasses.size[i];
    if (kFirst.off[i] % (kClasses.straddle[i] ? 16 : s) != 0) return false;  // aligned as in a cluster
    for (unsigned j = kMinBucket; j < i; ++j) {  // disjoint from every other slot
      if (kFirst.count[j] == 0) continue;
      const std::size_t lo = kFirst.off[j], hi = lo + kFirst.count[j] * kClasses.size[j];
      if (kFirst.off[i] < hi && lo < kFirst.off[i] + kFirst.count[i] * s) return false;
    }
    if (kFirst.off[i] + kFirst.count[i] * s > end) end = kFirst.off[i] + kFirst.count[i] * s;
  }
  return end == first_bytes() && end <= (std::size_t{kFirstPages} << kPageShift);
}
static_assert(first_layout_ok(), "the first chunk's slots are aligned and disjoint");
static_assert(kFirstPages <= 8, "the first chunk stays a few pages");

// The class of the slot holding byte off of the chunk, 0 when no slot holds it; *start: the
// offset of the element holding it.  => pure.
constexpr unsigned first_class_at(std::uintptr_t off, std::uintptr_t* start) {
  for (unsigned i = kMinBucket; i <= kMaxBucket; ++i) {
    const std::uintptr_t lo = kFirst.off[i];
    if (kFirst.count[i] == 0 || off < lo || off >= lo + std::uintptr_t{kFirst.count[i]} * kClasses.size[i]) continue;
    *start = off - (off - lo) % kClasses.size[i];
    return i;
  }
  return 0;
}
constexpr bool first_class_at_ok() {
  for (unsigned i = kMinBucket; i <= kMaxBucket; ++i)
    for (std::uint32_t k = 0; k < kFirst.count[i]; ++k) {
      const std::uintptr_t e = kFirst.off[i] + std::uintptr_t{k} * kClasses.size[i];
      std::uintptr_t s0 = 1, s1 = 1;
      if (first_class_at(e, &s0) != i || s0 != e) return false;
      if (first_class_at(e + kClasses.size[i] - 1, &s1) != i || s1 != e) return false;
    }
  std::uintptr_t s = 0;
  return first_class_at(first_bytes(), &s) == 0 && first_class_at(std::uintptr_t{kFirstPages} << kPageShift, &s) == 0;
}
static_assert(first_class_at_ok(), "every byte of a slot finds its element's start");

// ---- the first chunk's state (kmem_first_chunk.cpp) ------------------------------------------
// => any thread, no lock.  A never-used block of class indx from its slot (reads as zeros),
// or null when the slot is used up, the class has none, there is no chunk, or the process
// has (had) a second thread.
void* first_take(unsigned indx);
// => any thread, no lock.  Retires a live first-chunk block of class indx at a: marked free,
// never handed out again.
void first_retire(std::uintptr_t a, unsigned indx);
// => any thread, no lock.  Class of the first-chunk block holding byte a (on a page of code
// kFirstCode), 0 when no slot holds it; *start: the block's address, *handed_out: the
// block was ever handed out (a never-used one is not a block yet).
unsigned first_block_of(std::uintptr_t a, std::uintptr_t* start, bool* handed_out);
// => any thread, no lock.  Elements of class indx handed out and retired (bucket stats).
void first_counts(unsigned indx, std::uint64_t* handed_out, std::uint64_t* retired);
// => kmem_init, before any malloc: the process will have a chunk (not under diagnostics),
// taken from the page source by its first malloc of a size that has a slot.
void first_chunk_init();

}  // namespace vmrt::kmem::detail
