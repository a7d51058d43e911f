// kmem_test_support.h — shared by the kmem unit tests: a page source that counts
// the pages it has handed out (wrapping kmem_host_page_source), and one-time init.
#pragma once

#include <sys/mman.h>

#include <atomic>
#include <cstddef>
#include <vector>

#include "kmem/kmem.h"

namespace kmem_test {

struct counting_source {
  const vmrt::kmem::kmem_page_source* inner;
  std::atomic<long> pages_out{0};
  std::atomic<long> alloc_calls{0};
  std::atomic<long> free_calls{0};
  std::atomic<long> discard_calls{0};
  std::atomic<long> populate_calls{0};
  std::atomic<long> populated_pages{0};
  std::atomic<std::uint32_t> shortages{0};  // moved by a test: the source runs short of memory
  vmrt::kmem::kmem_page_source pub;
};

inline std::uint32_t counting_shortages(void* ctx) {
  return static_cast<counting_source*>(ctx)->shortages.load(std::memory_order_relaxed);
}

inline void* counting_alloc(void* ctx, std::size_t n, std::size_t align, bool wait) {
  auto* c = static_cast<counting_source*>(ctx);
  void* p = c->inner->alloc_pages(c->inner->ctx, n, align, wait);
  if (p != nullptr) {
    c->pages_out += static_cast<long>(n);
    ++c->alloc_calls;
  }
  return p;
}

inline void counting_free(void* ctx, void* p, std::size_t n) {
  auto* c = static_cast<counting_source*>(ctx);
  c->pages_out -= static_cast<long>(n);
  ++c->free_calls;
  c->inner->free_pages(c->inner->ctx, p, n);
}

inline std::size_t counting_discard_sparse(void* ctx, void* p, std::size_t n, std::size_t most) {
  auto* c = static_cast<counting_source*>(ctx);
  std::size_t r = c->inner->discard_sparse(c->inner->ctx, p, n, most);
  if (r != 0 && r <= most) ++c->discard_calls;
  return r;
}

inline void counting_populate(void* ctx, void* p, std::size_t n) {
  auto* c = static_cast<counting_source*>(ctx);
  ++c->populate_calls;
  c->populated_pages += static_cast<long>(n);
  c->inner->populate_pages(c->inner->ctx, p, n);
}

// Resident pages of the source's arena (mincore(2): kmem's host source makes a page
// resident when it is written), or -1 when mincore fails.
inline long resident(const counting_source* src) {
  static std::vector<unsigned char> vec;
  vec.resize(src->inner->size >> 12);
  if (::mincore(reinterpret_cast<void*>(src->inner->base), src->inner->size, vec.data()) != 0) return -1;
  long n = 0;
  for (unsigned char c : vec) n += c & 1;
  return n;
}

// Boots kmem once per test process over a counting host source of `arena` bytes.
// first_chunk false: every refill comes from the clusters (kmem_first_chunk.h is its own test).
inline counting_source* boot(bool diagnostics, unsigned decay_ms = 1000, std::size_t arena = std::size_t{4} << 30,
                             bool first_chunk = true) {
  static counting_source src;
  static bool done = false;
  if (!done) {
    done = true;
    src.inner = vmrt::kmem::kmem_host_page_source(arena);
    src.pub = {src.inner->base, src.inner->size, counting_alloc, counting_free, &src};
    src.pub.discard_sparse = counting_discard_sparse;
    src.pub.populate_pages = counting_populate;
    src.pub.shortages = counting_shortages;
    vmrt::kmem::kmem_config cfg;
    cfg.diagnostics = diagnostics;
    cfg.decay_ms = decay_ms;
    cfg.first_chunk = first_chunk;
    if (!vmrt::kmem::kmem_init(&src.pub, cfg)) return nullptr;
  }
  return &src;
}

}  // namespace kmem_test
