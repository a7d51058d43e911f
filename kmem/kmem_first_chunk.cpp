// kmem_first_chunk.cpp — the first chunk's state: where it is and how far each slot is used
// (the layout is constexpr: kmem_first_chunk.h).
#include "kmem/kmem_first_chunk.h"

#include <sys/single_threaded.h>

#include <atomic>

#include "kmem/kmem_internal.h"

namespace vmrt::kmem::detail {
namespace {

struct first_state {
  bool wanted = false;      // kmem_init: the configuration asks for a chunk
  std::uintptr_t base = 0;  // the chunk (0: none yet); written once, by its first malloc
  std::atomic<std::uint32_t> used[kNumIndx]{};     // elements handed out (may run past count)
  std::atomic<std::uint32_t> retired[kNumIndx]{};  // elements freed (never reused)
};
constinit first_state fs;

// => the process's only thread (its first malloc of a class size); takes the pages lock.
// Takes the chunk from the page source and marks its pages; false when the source has none.
bool first_chunk_alloc() {
  kmem_guard guard(g.pages_lock);
  void* p = source_alloc_locked(kFirstPages, 1);
  if (p == nullptr) return false;
  const std::uintptr_t a = reinterpret_cast<std::uintptr_t>(p);
  // Its blocks are written as they go out, a class's slot at a time: made resident in one
  // call instead of a page fault each (rt_populate.h).
  if (g.src->populate_pages != nullptr) g.src->populate_pages(g.src->ctx, p, kFirstPages);
  for (std::uint32_t i = 0; i < kFirstPages; ++i) g.pgindx[page_of(a) + i] = kFirstCode;
  fs.base = a;
  return true;
}

}  // namespace

void first_chunk_init() { fs.wanted = !g.diag; }  // diagnostics keep a state per granule of every block

void* first_take(unsigned indx) {
  const std::uint32_t n = kFirst.count[indx];
  // Only while the process has one thread (glibc's flag: false for good once a second
  // thread was created): consecutive blocks of a slot share cache lines, and handed to two
  // threads in turn they would be false sharing (allocsuite's cache_thrash: two threads'
  // malloc(8)-write-free loops got neighbouring blocks for their first 16 rounds each).
  // So the chunk is taken and handed out by one thread; threads created later see it
  // (pthread_create orders the writes before them).
  if (!__libc_single_threaded || n == 0) return nullptr;
  if (fs.base == 0) {
    // Taken at the first malloc, not at kmem_init: a process whose kmem never serves a
    // small block holds no chunk (the VM's heap gives whole windows back on trim).
    if (!fs.wanted) return nullptr;
    fs.wanted = false;
    if (!first_chunk_alloc()) return nullptr;
  }
  if (fs.used[indx].load(std::memory_order_relaxed) >= n) return nullptr;
  const std::uint32_t k = fs.used[indx].fetch_add(1, std::memory_order_relaxed);
  if (k >= n) return nullptr;
  return reinterpret_cast<void*>(fs.base + kFirst.off[indx] + std::uintptr_t{k} * kClasses.size[indx]);
}

void first_retire(std::uintptr_t a, unsigned indx) {
  mark_free(a, 0);
  fs.retired[indx].fetch_add(1, std::memory_order_relaxed);
}

unsigned first_block_of(std::uintptr_t a, std::uintptr_t* start, bool* handed_out) {
  *handed_out = false;
  std::uintptr_t off = 0;
  if (fs.base == 0 || a < fs.base) return 0;
  const unsigned i = first_class_at(a - fs.base, &off);
  if (i == 0) return 0;
  *start = fs.base + off;
  *handed_out = (off - kFirst.off[i]) / kClasses.size[i] < fs.used[i].load(std::memory_order_relaxed);
  return i;
}

void first_counts(unsigned indx, std::uint64_t* handed_out, std::uint64_t* retired) {
  const std::uint32_t u = fs.used[indx].load(std::memory_order_relaxed);
  *handed_out = u < kFirst.count[indx] ? u : kFirst.count[indx];
  *retired = fs.retired[indx].load(std::memory_order_relaxed);
}

}  // namespace vmrt::kmem::detail
