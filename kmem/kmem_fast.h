// kmem_fast.h — the malloc/free fast paths, inline, for kmem_malloc.cpp and the
// libc shim (which inlines them into its entry points with a constant type, so
// the type checks and the statistics offsets fold to constants).
//
// malloc: the size class (one byte from kSizeIndex), this thread's cache (TLS),
//         a type-bypass byte, a pop from the loaded chain (the head's free
//         marker, which binds its link, checked: one XOR and compare), the free marker
//         cleared, plain stores to this thread's statistics.
// free:   arena range check, the page's code from the dense page_code byte
//         array, the element-start and page-state check as one multiply for every
//         class (free_class: no branch on the class; a first-chunk page fails it and
//         its line table answers, in the failure branch), the
//         always-on double-free check (word 1 could be a free marker: may_be_marked;
//         word 0 is not read), a push onto the loaded
//         chain (the link in the element's word 0), plain stores to this
//         thread's statistics.
// Each returns "not served" (null / false) for everything else — no thread
// cache yet, empty/full chain, a broken chain, limited types, diagnostics, large blocks, bad
// pointers — and the caller then calls kmem::malloc / kmem::free, which do the
// full job (and, for free, the refusal with its status).  Neither touches errno,
// takes a lock, or executes an atomic read-modify-write.
#pragma once

#include <sys/single_threaded.h>

#include <cstdint>

#include "kmem/kmem_internal.h"

namespace vmrt::kmem::detail {

// => any thread, no lock, no sleep.  A block of bucket_index(size) for type t
// (t < M_LAST), or null when the fast path cannot serve the request (size 0 maps to
// state index 0, whose cache slot is the empty sentinel).
[[gnu::always_inline]] inline void* malloc_fast(std::size_t size, malloc_type t) {
  std::size_t indx;
  if (__builtin_expect(size <= kPageSize, 1)) {
    indx = kSizeIndex.small[(size + 15) >> 4];
  } else {
    if (__builtin_expect(size > kMaxAllocSave, 0)) return nullptr;
    indx = kSizeIndex.big[(size - 1) >> 10];
  }
  if (__builtin_expect(g.type_slow[t].load(std::memory_order_relaxed) != 0, 0)) return nullptr;
  tcache* tc = &t_cache;  // all zero until set up: a null head fails below
  tc_bucket& B = tc->b[indx];
  // An empty loaded chain has a null head (tc_bucket), so the head, loaded anyway, is the
  // test.
  void* p = B.head;
  if (__builtin_expect(p == nullptr, 0)) return nullptr;
  // The head is a trusted address: pushed by free (checked there), set by the slow paths,
  // or a link read below from an element whose marker held.  Its marker proves both that
  // it is still a cached free element and that its link was not written after free; a
  // broken one goes to the slow path, which reports it and drops the rest of the chain.
  std::uintptr_t* w = static_cast<std::uintptr_t*>(p);
  const std::uintptr_t next = w[0];
  if (__builtin_expect(w[1] != free_marker(reinterpret_cast<std::uintptr_t>(p), next), 0)) return nullptr;
  // The next malloc's load of next's words would otherwise be a dependent miss when
  // another thread wrote next last (xmalloc: blocks freed by other threads).
  __builtin_prefetch(reinterpret_cast<const void*>(next), 1);
  B.head = reinterpret_cast<void*>(next);
  ++B.room;
  w[1] = 0;  // clear the free marker
  count_bucket_malloc(tc, t, indx);
  type_delta& d = tc->td[t];
  const std::int64_t m = d.memuse + B.size;
  d.memuse = m;
  // A conditional move, not a branch: memuse hovers at its peak in steady churn, where
  // "above the peak" went either way (cachegrind: 0.19 mispredictions per malloc on xmalloc).
  const std::int64_t pk = d.peak;
  d.peak = m > pk ? m : pk;
  return p;
}

// => any thread, no lock, no sleep.  Frees addr (charged to t < M_LAST) when it
// is a live bucket element and this thread's loaded chain has room; false
// (nothing changed) otherwise, including null and every misuse.
[[gnu::always_inline]] inline bool free_fast(void* addr, malloc_type t) {
  const std::uintptr_t a = reinterpret_cast<std::uintptr_t>(addr);
  const std::uintptr_t off = a - g.base;
  if (__builtin_expect(off >= g.size, 0)) return false;
  if (__builtin_expect(g.type_slow[t].load(std::memory_order_relaxed) != 0, 0)) return false;
  const std::size_t code = page_code(off >> kPageShift);
  // Not a bucket page, or not an element start: the slow path says which.  A first-chunk
  // page (kmem_first_chunk.h) fails the test too; its line table names the class, in this
  // branch, so its blocks are freed here as a cluster's are while the process has one
  // thread (after, the slow path retires them: kmem_first_chunk.h).
  std::size_t indx = free_class(code, a);
  if (__builtin_expect(indx == 0, 0)) {
    if (code != kFirstCode || !__libc_single_threaded) return false;
    indx = first_elem_class(a);
    if (indx == 0) return false;
  }
  std::uintptr_t* w = reinterpret_cast<std::uintptr_t*>(a);
  const std::uintptr_t m = free_marker(a, 0);  // loaded once: the stores below may alias g
  // Perhaps a double free (word 1 alone: may_be_marked): the slow path tells and reports it.
  if (__builtin_expect(may_be_marked_m0(m, w[1]), 0)) return false;
  tcache* tc = &t_cache;  // all zero until set up: room 0 fails below
  tc_bucket& B = tc->b[indx];
  // Room left on the loaded chain, less the slot this free takes: the borrow of the
  // subtraction is the "full" test.
  std::uint16_t room;
  if (__builtin_expect(__builtin_sub_overflow(B.room, std::uint16_t{1}, &room), 0)) return false;
  const std::uintptr_t link = reinterpret_cast<std::uintptr_t>(B.head);
  // Read before the block's stores (which may alias the record, as far as the compiler
  // knows), so the memuse update below is one read-modify-write, not a load, a subtract
  // and a store.
  const std::int64_t size = B.size;
  // The head's store between the block's two: as adjacent stores GCC's SLP pass paired them
  // into one 16-byte vector store built from two general registers (3 instructions more).
  w[1] = m ^ link;  // free_marker(a, link)
  B.head = addr;
  w[0] = link;
  B.room = room;
  type_delta& d = tc->td[t];
  ++d.frees;
  d.memuse -= size;
  return true;
}

}  // namespace vmrt::kmem::detail
