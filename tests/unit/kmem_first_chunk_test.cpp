// kmem_first_chunk_test.cpp — a class's first blocks come from the first chunk, a few pages
// shared by all the small classes (kmem_first_chunk.h): a process that mallocs in every class
// up to 1 KiB touches those pages, not a page per class; free stays size-free and catches
// double frees, interior pointers and never-used slot elements; power-of-two classes stay
// aligned; freed chunk blocks are not handed out again; a used-up slot falls back to clusters;
// a process that has had a second thread takes nothing more from the chunk.
// Its own binary: kmem must be fresh (no class used before the first case).
#include <doctest/doctest.h>

#include <sys/mman.h>
#include <sys/single_threaded.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <cstdint>
#include <cstring>
#include <thread>
#include <vector>

#include "kmem/kmem.h"
#include "kmem/kmem_fast.h"
#include "kmem/kmem_first_chunk.h"
#include "kmem/kmem_internal.h"
#include "tests/unit/kmem_test_support.h"

using namespace vmrt::kmem;
namespace kmem = vmrt::kmem;
namespace d = vmrt::kmem::detail;

namespace {

bool in_chunk(const void* p) {
  const std::uintptr_t a = reinterpret_cast<std::uintptr_t>(p);
  return d::g.pgindx[d::page_of(a)] == d::kFirstCode;
}

}  // namespace

// Failed before the first chunk: a page or two a class (its first refill carves about a page).
TEST_CASE("first chunk: the first blocks of every class up to 2 KiB touch the chunk's few pages") {
  kmem_test::counting_source* src = kmem_test::boot(false);
  REQUIRE(src != nullptr);
  const long before = kmem_test::resident(src);
  unsigned classes = 0;
  std::vector<void*> v;
  for (unsigned i = d::kMinBucket; i <= d::kMaxBucket && d::bucket_size(i) <= d::kFirstMaxSize; ++i) {
    void* p = kmem::malloc(d::bucket_size(i), M_TEST, M_WAITOK);  // written whole
    REQUIRE(p != nullptr);
    CHECK(in_chunk(p));
    std::memset(p, 0x5a, d::bucket_size(i));
    v.push_back(p);
    ++classes;
  }
  const long grew = kmem_test::resident(src) - before;
  MESSAGE("pages touched by a block of each of " << classes << " classes: " << grew << " (chunk: " << d::kFirstPages << ")");
  CHECK(classes == 24);
  CHECK(grew <= static_cast<long>(d::kFirstPages));
  for (void* p : v) {
    CHECK(kmem::free(p, M_TEST) == KMEM_OK);
    CHECK(kmem::free(p, M_TEST) == KMEM_DOUBLE_FREE);
  }
}

TEST_CASE("first chunk: a slot element never handed out is no block; realloc moves a chunk block with its bytes") {
  REQUIRE(kmem_test::boot(false) != nullptr);
  const unsigned indx = d::bucket_index(48);
  REQUIRE(d::kFirst.count[indx] > 4);
  auto* p = static_cast<char*>(kmem::malloc(48, M_TEST, M_WAITOK));  // the slot's second
  REQUIRE(in_chunk(p));
  char* next = p + 48;  // never handed out
  CHECK(usable_size(next) == 0);
  CHECK(kmem::free(next, M_TEST) == KMEM_NOT_BLOCK);
  block_info bi;
  REQUIRE(get_block_info(next, &bi));
  CHECK(bi.start == reinterpret_cast<std::uintptr_t>(next));
  CHECK_FALSE(bi.allocated);
  std::memset(p, 7, 48);
  CHECK(kmem::realloc(p, 40, M_TEST, M_WAITOK) == p);  // still fits: kept
  auto* grown = static_cast<char*>(kmem::realloc(p, 3000, M_TEST, M_WAITOK));
  REQUIRE(grown != nullptr);
  CHECK_FALSE(in_chunk(grown));
  bool same = true;
  for (int b = 0; b < 48; ++b) same &= grown[b] == 7;
  CHECK(same);
  CHECK(kmem::free(p, M_TEST) == KMEM_DOUBLE_FREE);  // realloc freed (retired) it
  CHECK(kmem::free(grown, M_TEST) == KMEM_OK);
}

TEST_CASE("first chunk: free is size-free and exact; double, interior and never-used frees are refused") {
  REQUIRE(kmem_test::boot(false) != nullptr);
  for (unsigned i = d::kMinBucket; i <= d::kMaxBucket; ++i) {
    if (d::kFirst.count[i] == 0 || d::bucket_size(i) == 32) continue;  // 32: left for the last case
    const std::size_t size = d::bucket_size(i);
    CAPTURE(size);
    const std::uint32_t n = d::kFirst.count[i];
    std::vector<char*> v;
    // Take what is left of the slot (the cases above took some), then one more.
    for (;;) {
      auto* p = static_cast<char*>(kmem::malloc(size, M_TEST, M_WAITOK | M_ZERO));
      REQUIRE(p != nullptr);
      v.push_back(p);
      if (!in_chunk(p)) break;
      CHECK(usable_size(p) == size);
      if (std::has_single_bit(size)) CHECK(reinterpret_cast<std::uintptr_t>(p) % size == 0);
      bool zero = true;
      for (std::size_t b = 0; b < size; ++b) zero &= p[b] == 0;
      CHECK(zero);
      block_info bi;
      REQUIRE(get_block_info(p + size - 1, &bi));
      CHECK(bi.start == reinterpret_cast<std::uintptr_t>(p));
      CHECK(bi.size == size);
      CHECK(bi.allocated);
      if (size > 16) CHECK(kmem::free(p + 16, M_TEST) == KMEM_NOT_BLOCK);
      CHECK_FALSE(d::free_fast(p, M_TEST));  // the fast path refuses the chunk's page code
      REQUIRE(v.size() <= n);
    }
    // The slot used up: the next block is a cluster's, which the fast path frees.
    char* last = v.back();
    v.pop_back();
    CHECK(d::free_fast(last, M_TEST));
    for (char* p : v) {
      std::memset(p, 0x33, size);
      CHECK(kmem::free(p, M_TEST) == KMEM_OK);
      CHECK(kmem::free(p, M_TEST) == KMEM_DOUBLE_FREE);
      CHECK(usable_size(p) == 0);
      block_info bi;
      REQUIRE(get_block_info(p, &bi));
      CHECK_FALSE(bi.allocated);
    }
    // Freed chunk blocks are never handed out again.
    for (int k = 0; k < 4; ++k) {
      void* q = kmem::malloc(size, M_TEST, M_WAITOK);
      CHECK_FALSE(in_chunk(q));
      CHECK(kmem::free(q, M_TEST) == KMEM_OK);
    }
  }
}

// Last: a second thread turns the chunk off for the rest of the process.
TEST_CASE("first chunk: once the process has a second thread, no block comes from the chunk") {
  REQUIRE(kmem_test::boot(false) != nullptr);
  // The 32-byte slot: 32 blocks, one taken by the first case.
  REQUIRE(__libc_single_threaded);
  void* before = kmem::malloc(32, M_TEST, M_WAITOK);
  CHECK(in_chunk(before));
  // Blocks of one slot handed to two threads in turn would share cache lines (false sharing).
  std::vector<void*> got[2];
  std::vector<std::thread> ts;
  for (auto& g : got)
    ts.emplace_back([&g] {
      for (int k = 0; k < 40; ++k) g.push_back(kmem::malloc(16, M_TEST, M_WAITOK));
    });
  for (auto& t : ts) t.join();
  void* after = kmem::malloc(32, M_TEST, M_WAITOK);
  CHECK_FALSE(in_chunk(after));
  for (auto& g : got)
    for (void* p : g) {
      REQUIRE(p != nullptr);
      CHECK_FALSE(in_chunk(p));
      CHECK(kmem::free(p, M_TEST) == KMEM_OK);
    }
  CHECK(kmem::free(before, M_TEST) == KMEM_OK);  // a chunk block is still freed (retired)
  CHECK(kmem::free(before, M_TEST) == KMEM_DOUBLE_FREE);
  CHECK(kmem::free(after, M_TEST) == KMEM_OK);
}
