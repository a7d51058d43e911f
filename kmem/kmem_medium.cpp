// kmem_medium.cpp — medium blocks (over MAXALLOCSAVE, up to kMediumMax), packed end to end.
//
// Blocks above MAXALLOCSAVE used to be whole pages each (large blocks).  A program that keeps
// tens of thousands of 68-164 KB blocks and touches the first and last bytes of each then
// holds two pages per block, where glibc, packing blocks end to end, holds about 1.3 (the
// last byte of one block and the first of the next share a page): 1.76x glibc's RSS and
// twice its page faults (bench/medium_bench live).  Here medium blocks are carved at 256-byte
// granularity from 8 MiB spans of the page source, first fit by address inside a span, so
// neighbours share pages as glibc's do.
//
// The 4.4BSD contract stays: free needs no size.  A medium block is over 16 pages long, so at
// most one starts in any page; the kmemusage record of that page says so (KU_LARGE with
// ku_list KL_MEDIUM; ku_pagecnt = length in granules, ku_freehead = the start's granule within
// the page), and free validates the pointer against it exactly — an interior pointer is
// refused, a second free is a double free (the record says KU_FREED_LARGE).  Each span keeps
// its free extents in its own first granules (sorted by address, merged on free) and sits on
// a bin by its largest free extent (log2 granules), so a request looks at one bin's spans and
// then takes the first span of any larger bin.  A span whose blocks are all free goes back to
// the page source (one empty span is kept for the next request).
//
// Locking: the pages lock guards everything here (spans, bins, kmemusage of span pages).
#include "kmem/kmem_assert.h"
#include "kmem/kmem_internal.h"

#include <cstring>

namespace vmrt::kmem::detail {

namespace {

struct medium_extent {
  std::uint16_t start;  // granule within the span
  std::uint16_t len;    // granules
};

// Extents a span can hold: free extents are separated by blocks, so one more than the
// blocks that fit in it (and one to spare).
inline constexpr std::uint32_t kMaxExtents = (kSpanGranules / (kMediumMinGranules)) + 2;

struct medium_span {
  medium_span* next;  // bin list
  medium_span* prev;
  std::uint32_t live;       // blocks allocated
  std::uint16_t next_free;  // extents in use
  std::uint16_t largest;    // largest free extent, granules (0: full)
  std::uint16_t fresh;      // granules at and above this were never handed out (read as zeros)
  std::uint8_t bin;         // bin it is on (kBins: none)
  medium_extent ext[kMaxExtents];
};

inline constexpr std::uint32_t kHeaderGranules =
    static_cast<std::uint32_t>((sizeof(medium_span) + kGranSize - 1) >> kGranShift);
inline constexpr unsigned kBins = 16;  // floor(log2(largest)): 2^15 = 32768 granules at most
static_assert(kSpanGranules == (std::uint32_t{1} << (kBins - 1)), "bins cover every extent length");
static_assert(kSpanGranules - kHeaderGranules >= (kMediumMax >> kGranShift), "the largest medium block fits a span");
static_assert(kHeaderGranules <= 4, "the span header stays within its first KiB");

medium_span* g_bins[kBins];   // pages lock
medium_span* g_spare;         // an empty span kept for the next request (pages lock)
std::uint16_t g_spare_stamp;  // coarse_ticks() when it became the spare (pages lock)
std::uint64_t g_spans;        // spans taken from the source (pages lock)

inline unsigned bin_of(std::uint32_t granules) { return 31U - static_cast<unsigned>(__builtin_clz(granules)); }
inline medium_span* span_of(std::uintptr_t a) { return reinterpret_cast<medium_span*>(a & ~(kSpanBytes - 1)); }

void bin_remove(medium_span* s) {
  if (s->bin == kBins) return;
  if (s->prev != nullptr) s->prev->next = s->next;
  else g_bins[s->bin] = s->next;
  if (s->next != nullptr) s->next->prev = s->prev;
  s->bin = kBins;
}

// Take n granules from the front of extent i (which holds at least n); an extent emptied
// leaves the table.
void extent_take_front(medium_span* s, std::uint32_t i, std::uint32_t n) {
  s->ext[i].start = static_cast<std::uint16_t>(s->ext[i].start + n);
  s->ext[i].len = static_cast<std::uint16_t>(s->ext[i].len - n);
  if (s->ext[i].len != 0) return;
  std::memmove(&s->ext[i], &s->ext[i + 1], (s->next_free - i - 1) * sizeof(medium_extent));
  --s->next_free;
}

// Recompute the largest extent and put the span on its bin (none when nothing medium fits).
void rebin(medium_span* s) {
  bin_remove(s);
  std::uint16_t big = 0;
  for (std::uint32_t i = 0; i < s->next_free; ++i) big = s->ext[i].len > big ? s->ext[i].len : big;
  s->largest = big;
  if (big < kMediumMinGranules) return;
  unsigned b = bin_of(big);
  s->bin = static_cast<std::uint8_t>(b);
  s->prev = nullptr;
  s->next = g_bins[b];
  if (s->next != nullptr) s->next->prev = s;
  g_bins[b] = s;
}

// The span as one free extent after its header.
void span_reset(medium_span* s) {
  s->next_free = 1;
  s->ext[0] = {static_cast<std::uint16_t>(kHeaderGranules), static_cast<std::uint16_t>(kSpanGranules - kHeaderGranules)};
  s->largest = s->ext[0].len;
}

medium_span* span_new() {
  medium_span* s = g_spare;
  if (s != nullptr) {
    g_spare = nullptr;
    return s;
  }
  void* p = source_alloc_locked(kSpanPages, kSpanPages);
  if (p == nullptr) return nullptr;
  ++g_spans;
  s = static_cast<medium_span*>(p);  // zero-filled by the source
  s->bin = kBins;
  span_reset(s);
  s->fresh = static_cast<std::uint16_t>(kHeaderGranules);
  return s;
}

// Give an empty span back to the source.  Its pages' records keep naming the blocks freed
// there (a second free is still a double free, as for large blocks given back); whatever
// the source hands out there next rewrites the records it uses (set_large_state, the
// bucket clusters' own states).
void span_give_back(medium_span* s) {
  bin_remove(s);
  --g_spans;
  source_free_locked(reinterpret_cast<std::uintptr_t>(s), kSpanPages);
}

// A span whose blocks are all free becomes the spare (one extent again); the previous
// spare goes back.  (The newest is kept: its pages are the warm ones.)  With no decay
// (4.4BSD) it goes back at once.  Either way its records still name the blocks just freed,
// so a second free of one is reported as such.
void span_empty(medium_span* s) {
  if (g_spare != nullptr) {
    span_give_back(g_spare);
    g_spare = nullptr;
  }
  if (!keep_freed_locked()) {
    span_give_back(s);
    return;
  }
  bin_remove(s);
  span_reset(s);
  g_spare = s;
  g_spare_stamp = coarse_ticks();
}

// The spare goes back once it has waited the decay time (as the large cache's blocks do).
void spare_expire() {
  if (g_spare == nullptr || static_cast<std::uint16_t>(coarse_ticks() - g_spare_stamp) < g.decay_ticks) return;
  medium_span* s = g_spare;
  g_spare = nullptr;
  span_give_back(s);
}

}  // namespace

void* medium_alloc(std::size_t size, bool* fresh) {
  KMEM_ASSERT(size > kMaxAllocSave && size <= kMediumMax, "medium block size");
  auto need = static_cast<std::uint16_t>((size + kGranSize - 1) >> kGranShift);
  kmem_guard guard(g.pages_lock);
  medium_span* s = nullptr;
  for (medium_span* t = g_bins[bin_of(need)]; t != nullptr && s == nullptr; t = t->next)
    if (t->largest >= need) s = t;
  for (unsigned b = bin_of(need) + 1; b < kBins && s == nullptr; ++b) s = g_bins[b];
  if (s == nullptr && (s = span_new()) == nullptr) return nullptr;
  spare_expire();
  // First fit by address: blocks pack towards the span's start.
  std::uint32_t i = 0;
  while (s->ext[i].len < need) ++i;
  std::uint16_t start = s->ext[i].start;
  extent_take_front(s, i, need);
  *fresh = start >= s->fresh;
  if (start + need > s->fresh) s->fresh = static_cast<std::uint16_t>(start + need);
  ++s->live;
  rebin(s);
  std::uintptr_t a = reinterpret_cast<std::uintptr_t>(s) + (std::uintptr_t{start} << kGranShift);
  kmemusage* ku = usage_of(a);
  set_ku_indx(ku, KU_LARGE);
  ku->ku_list = KL_MEDIUM;
  ku->ku_pagecnt = need;
  ku->ku_freehead = static_cast<std::uint16_t>((a & kPageMask) >> kGranShift);
  ++g.medium_blocks;
  g.medium_granules += need;
  return reinterpret_cast<void*>(a);
}

void medium_free(std::uintptr_t a, std::uint32_t granules) {
  kmem_guard guard(g.pages_lock);
  kmemusage* ku = usage_of(a);
  set_ku_indx(ku, KU_FREED_LARGE);  // ku_list, ku_freehead stay: a second free is a double free
  medium_span* s = span_of(a);
  auto start = static_cast<std::uint16_t>((a - reinterpret_cast<std::uintptr_t>(s)) >> kGranShift);
  auto len = static_cast<std::uint16_t>(granules);
  // Insert [start, start + len) among the sorted extents, merged with its neighbours.
  std::uint32_t i = 0;
  while (i < s->next_free && s->ext[i].start < start) ++i;
  bool joins_prev = i > 0 && s->ext[i - 1].start + s->ext[i - 1].len == start;
  bool joins_next = i < s->next_free && start + len == s->ext[i].start;
  if (joins_prev && joins_next) {
    s->ext[i - 1].len = static_cast<std::uint16_t>(s->ext[i - 1].len + len + s->ext[i].len);
    std::memmove(&s->ext[i], &s->ext[i + 1], (s->next_free - i - 1) * sizeof(medium_extent));
    --s->next_free;
  } else if (joins_prev) {
    s->ext[i - 1].len = static_cast<std::uint16_t>(s->ext[i - 1].len + len);
  } else if (joins_next) {
    s->ext[i].start = start;
    s->ext[i].len = static_cast<std::uint16_t>(s->ext[i].len + len);
  } else {
    KMEM_ASSERT(s->next_free < kMaxExtents, "medium span extent table full");
    std::memmove(&s->ext[i + 1], &s->ext[i], (s->next_free - i) * sizeof(medium_extent));
    s->ext[i] = {start, len};
    ++s->next_free;
  }
  --g.medium_blocks;
  g.medium_granules -= granules;
  if (--s->live == 0) {
    span_empty(s);
    return;
  }
  rebin(s);
}

bool medium_grow(std::uintptr_t a, std::uint32_t old_granules, std::uint32_t new_granules) {
  KMEM_ASSERT(new_granules > old_granules, "medium_grow sizes");
  kmem_guard guard(g.pages_lock);
  medium_span* s = span_of(a);
  auto end = static_cast<std::uint32_t>((a - reinterpret_cast<std::uintptr_t>(s)) >> kGranShift) + old_granules;
  std::uint32_t more = new_granules - old_granules;
  std::uint32_t i = 0;
  while (i < s->next_free && s->ext[i].start < end) ++i;
  if (i == s->next_free || s->ext[i].start != end || s->ext[i].len < more) return false;
  extent_take_front(s, i, more);
  if (end + more > s->fresh) s->fresh = static_cast<std::uint16_t>(end + more);
  usage_of(a)->ku_pagecnt = new_granules;
  g.medium_granules += more;
  rebin(s);
  return true;
}

std::size_t medium_trim_locked() {
  medium_span* s = g_spare;
  if (s == nullptr) return 0;
  g_spare = nullptr;
  span_give_back(s);
  return kSpanBytes;
}

std::uint64_t medium_spans_locked() { return g_spans; }

}  // namespace vmrt::kmem::detail
