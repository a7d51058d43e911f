// kmem_first_chunk.cpp — the first chunk's state: where it is, how far it is carved, each
// class's runs, and the line table free's fast path reads (the geometry is constexpr:
// kmem_first_chunk.h).
#include "kmem/kmem_first_chunk.h"

#include <sys/single_threaded.h>

#include <atomic>

#include "kmem/kmem_internal.h"

namespace vmrt::kmem::detail {

constinit first_table g_first{};

namespace {

struct first_state {
  bool wanted = false;        // kmem_init: the configuration asks for a chunk
  std::uint32_t bump = 0;     // chunk bytes carved (the next run starts at or after it)
  std::uint32_t resident = 0; // chunk bytes made resident (a page multiple)
  std::uint8_t runs[kNumIndx]{};                   // runs carved per class
  std::atomic<std::uint16_t> retired[kNumIndx]{};  // elements retired (never reused: at most a class's share)
};
constinit first_state fs;

// => the process's only thread (a class's first refill); takes the pages lock.  Takes the
// chunk's address space from the page source and marks its pages; false when the source
// has none.  Nothing is made resident yet: first_refill does, a run at a time.
bool first_chunk_alloc() {
  kmem_guard guard(g.pages_lock);
  void* p = source_alloc_locked(kFirstPages, 1);
  if (p == nullptr) return false;
  const std::uintptr_t a = reinterpret_cast<std::uintptr_t>(p);
  for (std::uint32_t i = 0; i < kFirstPages; ++i) page_code(page_of(a) + i) = kFirstCode;
  g_first.base = a;
  return true;
}

}  // namespace

void first_chunk_init() { fs.wanted = !g.diag; }  // diagnostics keep a state per granule of every block

std::uint32_t first_refill(unsigned indx, std::uint32_t cap, void** head) {
  const first_run& r = kFirstRun.r[indx];
  // Only while the process has one thread (glibc's flag: false for good once a second
  // thread was created): the runs of different classes share pages and lines, and handed to
  // two threads they would be false sharing (allocsuite's cache_thrash).  So the chunk is
  // carved by one thread; threads created later see the line table (pthread_create orders
  // the writes before them).
  if (r.elems == 0 || r.elems > cap || !__libc_single_threaded) return 0;
  if (fs.runs[indx] >= r.runs) return 0;
  if (g_first.base == 0) {
    // Taken at the first refill, not at kmem_init: a process whose kmem never serves a
    // small block holds no chunk.
    if (!fs.wanted) return 0;
    fs.wanted = false;
    if (!first_chunk_alloc()) return 0;
  }
  const std::uint32_t start = (fs.bump + r.align - 1) & ~(r.align - 1);
  const std::uint32_t end = start + r.bytes;
  if (end > first_chunk_bytes()) return 0;  // full: the refill comes from the bucket
  if (end > fs.resident) {
    // Written right away (the chain's links): resident in one call for the pages the run
    // reaches, not a page fault each (rt_populate.h).
    const std::uint32_t to = (end + static_cast<std::uint32_t>(kPageMask)) & ~static_cast<std::uint32_t>(kPageMask);
    if (g.src->populate_pages != nullptr)
      g.src->populate_pages(g.src->ctx, reinterpret_cast<void*>(g_first.base + fs.resident), (to - fs.resident) >> kPageShift);
    fs.resident = to;
  }
  const std::uint32_t l0 = start >> kFirstLineShift;
  g_first.line[l0] = static_cast<std::uint8_t>(indx);
  for (std::uint32_t k = 1; k < (r.bytes >> kFirstLineShift); ++k) g_first.line[l0 + k] = static_cast<std::uint8_t>(0x80 | k);
  fs.bump = end;
  ++fs.runs[indx];
  // Chained in address order, the first element at the head: handed out first.
  const std::uintptr_t a0 = g_first.base + start;
  const std::size_t size = kClasses.size[indx];
  std::uintptr_t link = 0;
  for (std::uint32_t k = r.elems; k-- > 0;) {
    const std::uintptr_t a = a0 + k * size;
    mark_free(a, link);
    link = a;
  }
  *head = reinterpret_cast<void*>(a0);
  return r.elems;
}

void first_retire(std::uintptr_t a, unsigned indx) {
  mark_free(a, 0);
  fs.retired[indx].fetch_add(1, std::memory_order_relaxed);
}

unsigned first_block_of(std::uintptr_t a, std::uintptr_t* start, bool* handed_out) {
  *handed_out = false;
  if (g_first.base == 0 || a < g_first.base) return 0;
  const std::uintptr_t off = a - g_first.base;
  std::uintptr_t run = 0;
  const unsigned v = first_run_at(off, &run);
  if (v == 0) return 0;
  const std::size_t size = kClasses.size[v];
  *start = g_first.base + run + (off - run) / size * size;
  *handed_out = true;  // a run's elements are all carved at once
  return v;
}

void first_counts(unsigned indx, std::uint64_t* handed_out, std::uint64_t* retired) {
  *handed_out = std::uint64_t{fs.runs[indx]} * kFirstRun.r[indx].elems;
  *retired = fs.retired[indx].load(std::memory_order_relaxed);
}

}  // namespace vmrt::kmem::detail
