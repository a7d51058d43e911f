// kmem_first_chunk.h — the first chunk: a process's first blocks of every small class,
// packed together in shared pages, the way a bump heap packs them.
//
// Without it a class's first refill makes the class a cluster of its own, a page at least:
// a short process that mallocs in 30 classes (git commit: 33) writes 30 pages where glibc's
// heap holds the same blocks in a handful, and on these guests each page's first touch is
// what a short process pays for (README, "The shim's image laid out by who reads it").  The
// first chunk is kFirstPages pages of address space taken at the first refill of a class
// up to kFirstMaxSize; while the process has a single thread, a class's refill that the
// depot cannot serve is cut from the chunk instead of a cluster: a *run* of the class's
// elements (kFirstRun: about 512 bytes, or one element of the larger classes; a whole
// number of elements and of 128-byte lines), carved at the chunk's bump pointer, so the
// runs of all the classes a process uses lie side by side in allocation order.  A class
// takes at most kFirstClassBytes of the chunk; then its refills come from clusters as
// before.  The chunk's pages are made resident as the bump pointer reaches them.
//
// A run's elements go into the thread's loaded chain like any refill's: malloc pops them on
// its fast path, and free pushes them back on its fast path too, so they are reused as
// cluster elements are.  The 4.4BSD lookup stays: every chunk page carries the page code
// kFirstCode, which no class uses, so free's fast path fails its one-multiply test there
// and, in that failure branch (nothing added before it), looks the pointer up in the line
// table: a byte per 128-byte line of the chunk, the class index on a run's first line and
// "k lines back" on the others (512 bytes for the chunk's 16 pages: it sits in .bss, whose
// pages every process writes at boot anyway; scenario exec_boot).  A run is a whole number
// of elements, so every line-table hit at a multiple of the size from the run's start is an
// element start: free stays size-free and exact (interior and never-carved pointers fail).  An element that reaches
// the bucket layer (a depot over its bound, a thread's exit) cannot join a cluster, and a
// block freed once the process has had a second thread could share a line with another
// thread's block in its run (Hoard's passive false sharing: allocsuite's cache_scratch):
// both are retired (marked free, never handed out again), at most the chunk's pages for the
// life of the process.
#pragma once

#include <cstddef>
#include <cstdint>

#include "kmem/kmem_bucket_index.h"

namespace vmrt::kmem::detail {

inline constexpr std::size_t kFirstMaxSize = 2048;     // classes up to this size take runs
inline constexpr std::size_t kFirstClassBytes = 4096;  // about this much of the chunk per class
inline constexpr std::size_t kFirstRunTarget = 512;    // a run's bytes, about
inline constexpr unsigned kFirstLineShift = 7;         // the line table's granule: 128 bytes
inline constexpr std::size_t kFirstLine = std::size_t{1} << kFirstLineShift;
inline constexpr std::uint32_t kFirstMaxPages = 16;    // the chunk, at most

constexpr std::size_t first_gcd(std::size_t a, std::size_t b) {
  while (b != 0) {
    const std::size_t t = a % b;
    a = b;
    b = t;
  }
  return a;
}

// A class's run: `bytes` (a multiple of both the element size and a line), `elems` elements,
// started at a multiple of `align` (a line, or the size for a power-of-two class:
// malloc_aligned relies on those elements being aligned to their size), at most `runs`.
struct first_run {
  std::uint32_t bytes;
  std::uint32_t elems;
  std::uint32_t align;
  std::uint32_t runs;
};
struct first_run_table {
  first_run r[kNumIndx];
};
constexpr first_run_table make_first_run_table() {
  first_run_table t{};
  for (unsigned i = kMinBucket; i <= kMaxBucket; ++i) {
    const std::size_t s = kClasses.size[i];
    if (s > kFirstMaxSize) continue;
    const std::size_t unit = s / first_gcd(s, kFirstLine) * kFirstLine;  // lcm(size, line)
    std::size_t bytes = unit;
    while (bytes + unit <= kFirstRunTarget) bytes += unit;
    t.r[i].bytes = static_cast<std::uint32_t>(bytes);
    t.r[i].elems = static_cast<std::uint32_t>(bytes / s);
    t.r[i].align = static_cast<std::uint32_t>(kClasses.straddle[i] || s < kFirstLine ? kFirstLine : s);
    t.r[i].runs = static_cast<std::uint32_t>(kFirstClassBytes / bytes > 0 ? kFirstClassBytes / bytes : 1);
  }
  return t;
}
inline constexpr first_run_table kFirstRun = make_first_run_table();

// The chunk: room for every class's runs at their worst alignment, up to kFirstMaxPages
// (a process whose classes want more takes the rest of their refills from clusters).
constexpr std::size_t first_bytes_bound() {
  std::size_t b = 0;
  for (unsigned i = kMinBucket; i <= kMaxBucket; ++i)
    b += std::size_t{kFirstRun.r[i].runs} * (kFirstRun.r[i].bytes + kFirstRun.r[i].align - kFirstLine);
  return b;
}
inline constexpr std::uint32_t kFirstPages =
    (first_bytes_bound() + kPageMask) >> kPageShift < kFirstMaxPages
        ? static_cast<std::uint32_t>((first_bytes_bound() + kPageMask) >> kPageShift)
        : kFirstMaxPages;
inline constexpr std::size_t kFirstLines = std::size_t{kFirstPages} << (kPageShift - kFirstLineShift);

constexpr bool first_runs_ok() {
  for (unsigned i = kMinBucket; i <= kMaxBucket; ++i) {
    const first_run& r = kFirstRun.r[i];
    if (kClasses.size[i] > kFirstMaxSize) {
      if (r.elems != 0) return false;
      continue;
    }
    const std::size_t s = kClasses.size[i];
    if (r.elems == 0 || r.bytes != r.elems * s || r.bytes % kFirstLine != 0) return false;  // whole elements, whole lines
    if ((r.bytes >> kFirstLineShift) > 0x7f) return false;  // "k lines back" fits the table's 7 bits
    if (r.align % kFirstLine != 0 || (!kClasses.straddle[i] && r.align % s != 0)) return false;
    if (r.elems > magazine_cap(i)) return false;  // a run fits an empty loaded chain
  }
  return true;
}
static_assert(first_runs_ok(), "a run is whole elements and lines, aligned as a cluster's elements, one chain's worth");
static_assert(kMaxBucket < 0x80, "a run's first line holds its class, below the continuation bit");
static_assert(kFirstPages == kFirstMaxPages && kFirstLines == 512, "the first chunk: 16 pages, a 512-byte line table");

// The page code of every first-chunk page: a code no class uses, with no magic (free's
// fast path and chain_elem_ok fail it and then ask the line table; kFreeMask is all ones).
inline constexpr std::uint8_t kFirstCode = 255;
static_assert(kCodes.ncodes <= kFirstCode && kCodes.magic[kFirstCode] == 0 && kFreeMask.m[kFirstCode] == ~std::uintptr_t{0},
              "the first chunk's page code is free");

// The line table (kmem_first_chunk.cpp).  Written only while the process has one thread
// (runs are carved then), read by any thread after: pthread_create orders the writes first.
struct first_table {
  std::uintptr_t base;              // the chunk; 0 until a class's first refill takes it
  std::uint8_t line[kFirstLines];  // 0: no run; a class: a run's first line; 0x80 | k: k lines into one
};
extern first_table g_first __attribute__((visibility("hidden")));

// => any thread, no lock, no sleep.  The class of the run holding byte off of the chunk, 0
// when no run holds it; *run: the run's offset in the chunk.
[[gnu::always_inline]] inline unsigned first_run_at(std::uintptr_t off, std::uintptr_t* run) {
  std::uintptr_t l = off >> kFirstLineShift;
  if (__builtin_expect(l >= kFirstLines, 0)) return 0;
  unsigned v = g_first.line[l];
  if (v & 0x80) {
    l -= v & 0x7f;
    v = g_first.line[l];
  }
  if (v < kMinBucket || v > kMaxBucket) return 0;  // no run (or a broken table entry)
  *run = l << kFirstLineShift;
  return v;
}

// => any thread, no lock, no sleep.  The class of the chunk element that starts at a (a on a
// page of code kFirstCode), 0 when no element starts there.  Free's fast path calls it in
// its failure branch.
[[gnu::always_inline]] inline unsigned first_elem_class(std::uintptr_t a) {
  const std::uintptr_t off = a - g_first.base;
  std::uintptr_t run = 0;
  const unsigned v = first_run_at(off, &run);
  const std::uint64_t magic = kCodes.magic[v];  // a class's first-page code is the class; 0: none
  if ((off - run) * magic >= magic) return 0;
  return v;
}

// => the process's only thread, no lock held; may take the pages lock and make chunk pages
// resident.  A run of class indx for an empty loaded chain of capacity cap: its elements
// chained in address order (each marked free, the first at *head), or 0 when the class
// takes no run (too big, its share used, the chunk full, a second thread, no chunk).
std::uint32_t first_refill(unsigned indx, std::uint32_t cap, void** head);
// => any thread, no lock (the caller holds the element: the bucket layer, given it in a
// chain).  Retires the marked chunk element of class indx at a: marked free with no link,
// never handed out again.
void first_retire(std::uintptr_t a, unsigned indx);
// => any thread, no lock.  Class of the chunk element holding byte a, 0 when no run holds
// it; *start: the element's address, *handed_out: it was carved (in a thread's or the
// depot's chains, or live, or retired).
unsigned first_block_of(std::uintptr_t a, std::uintptr_t* start, bool* handed_out);
// => any thread, no lock.  Elements of class indx carved from the chunk and retired (bucket stats).
void first_counts(unsigned indx, std::uint64_t* handed_out, std::uint64_t* retired);
// => kmem_init, before any malloc: the process will have a chunk (not under diagnostics),
// taken from the page source by its first refill of a class that takes runs.
void first_chunk_init();
// => the chunk's pages, for the unit tests.
constexpr std::size_t first_chunk_bytes() { return std::size_t{kFirstPages} << kPageShift; }

}  // namespace vmrt::kmem::detail
