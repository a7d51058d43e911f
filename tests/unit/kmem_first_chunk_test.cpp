// kmem_first_chunk_test.cpp — a young process's small classes take runs of the first chunk
// (kmem_first_chunk.h): the runs of all the classes it uses lie side by side, so a process
// that mallocs in a few classes touches a page or two, not a page per class; chunk blocks
// are freed and reused on the fast paths like cluster blocks; free stays size-free and
// exact (interior pointers, never-carved space, double frees); power-of-two classes stay
// aligned; a class's share used up falls back to clusters; an element the bucket layer
// gets is retired, not corrupt; a process that has had a second thread carves no more.
// Its own binary: kmem must be fresh (no class used before the first case).
#include <doctest/doctest.h>

#include <sys/single_threaded.h>

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
  return d::page_code(d::page_of(a)) == d::kFirstCode;
}

std::uint64_t corrupt_count() {
  kmem_counters c{};
  REQUIRE(get_kmem_counters(&c));
  return c.corrupt_detected;
}

}  // namespace

// Failed before: the chunk was 7 pages of static 1 KiB slots, all made resident by the
// first malloc, a used class's slot wherever its size put it.
TEST_CASE("first chunk: blocks of eight classes lie side by side on one or two pages") {
  kmem_test::counting_source* src = kmem_test::boot(false);
  REQUIRE(src != nullptr);
  const long before = kmem_test::resident(src);
  const std::size_t sizes[] = {24, 100, 40, 200, 300, 72, 500, 136};
  std::vector<char*> v;
  for (std::size_t s : sizes) {
    auto* p = static_cast<char*>(kmem::malloc(s, M_TEST, M_WAITOK));
    REQUIRE(p != nullptr);
    CHECK(in_chunk(p));
    std::memset(p, 0x5a, s);
    v.push_back(p);
  }
  const long grew = kmem_test::resident(src) - before;
  std::size_t runs = 0;
  for (std::size_t s : sizes) runs += d::kFirstRun.r[d::bucket_index(s)].bytes + d::kFirstRun.r[d::bucket_index(s)].align - 64;
  MESSAGE("pages made resident for a block of each of 8 classes: " << grew << " (their runs: " << runs << " bytes)");
  CHECK(grew <= static_cast<long>((runs + d::kPageMask) >> d::kPageShift));
  CHECK(grew <= 2);
  // In allocation order, each run right after the last.
  for (std::size_t i = 1; i < v.size(); ++i) CHECK(v[i] > v[i - 1]);
  CHECK(v.back() - v.front() < static_cast<std::ptrdiff_t>(runs));
  for (char* p : v) CHECK(kmem::free(p, M_TEST) == KMEM_OK);
}

// Failed before: chunk blocks were refused by free's fast path and retired by the slow one.
TEST_CASE("first chunk: its blocks are freed on the fast path and handed out again") {
  REQUIRE(kmem_test::boot(false) != nullptr);
  void* p = kmem::malloc(48, M_TEST, M_WAITOK);
  REQUIRE(in_chunk(p));
  CHECK(d::free_fast(p, M_TEST));
  void* q = kmem::malloc(48, M_TEST, M_WAITOK);
  CHECK(q == p);  // the thread's chain is LIFO
  CHECK(kmem::free(q, M_TEST) == KMEM_OK);
  CHECK(kmem::free(q, M_TEST) == KMEM_DOUBLE_FREE);
}

TEST_CASE("first chunk: free is exact; interior, never-carved and double frees are refused") {
  REQUIRE(kmem_test::boot(false) != nullptr);
  auto* p = static_cast<char*>(kmem::malloc(80, M_TEST, M_WAITOK));
  REQUIRE(in_chunk(p));
  CHECK_FALSE(d::free_fast(p + 16, M_TEST));
  CHECK(kmem::free(p + 16, M_TEST) == KMEM_NOT_BLOCK);
  CHECK(usable_size(p) == 80);
  block_info bi;
  REQUIRE(get_block_info(p + 79, &bi));
  CHECK(bi.start == reinterpret_cast<std::uintptr_t>(p));
  CHECK(bi.size == 80);
  CHECK(bi.allocated);
  // The chunk's last line: carved by nothing yet.
  auto* never = reinterpret_cast<char*>(d::g_first.base + d::first_chunk_bytes() - d::kFirstLine);
  REQUIRE(in_chunk(never));
  CHECK_FALSE(d::free_fast(never, M_TEST));
  CHECK(kmem::free(never, M_TEST) == KMEM_NOT_BLOCK);
  CHECK(usable_size(never) == 0);
  CHECK_FALSE(get_block_info(never, &bi));
  std::memset(p, 7, 80);
  auto* grown = static_cast<char*>(kmem::realloc(p, 3000, M_TEST, M_WAITOK));
  REQUIRE(grown != nullptr);
  CHECK_FALSE(in_chunk(grown));
  bool same = true;
  for (int b = 0; b < 80; ++b) same &= grown[b] == 7;
  CHECK(same);
  CHECK(kmem::free(p, M_TEST) == KMEM_DOUBLE_FREE);  // realloc freed it
  CHECK(kmem::free(grown, M_TEST) == KMEM_OK);
}

TEST_CASE("first chunk: every class up to 1 KiB: zeroed on M_ZERO, power-of-two classes aligned, a share then clusters") {
  REQUIRE(kmem_test::boot(false) != nullptr);
  // Taking every class's whole share fills the chunk's 16 pages before the largest classes
  // get theirs: from then on a class takes what is left, then clusters.
  bool full = false;
  for (unsigned i = d::kMinBucket; i <= d::kMaxBucket; ++i) {
    const d::first_run& r = d::kFirstRun.r[i];
    if (r.elems == 0 || d::bucket_size(i) == 32) continue;  // 32: left for the last case
    const std::size_t size = d::bucket_size(i);
    CAPTURE(size);
    std::vector<char*> v;
    // Without freeing, the class's share of the chunk (the cases above took some), then
    // blocks of its clusters.
    for (std::uint32_t k = 0; k <= r.runs * r.elems; ++k) {
      auto* p = static_cast<char*>(kmem::malloc(size, M_TEST, M_WAITOK | M_ZERO));
      REQUIRE(p != nullptr);
      v.push_back(p);
      if (!in_chunk(p)) break;
      bool zero = true;
      for (std::size_t b = 0; b < size; ++b) zero &= p[b] == 0;
      CHECK(zero);
      if (std::has_single_bit(size)) CHECK(reinterpret_cast<std::uintptr_t>(p) % size == 0);
      std::memset(p, 0x33, size);
    }
    CHECK_FALSE(in_chunk(v.back()));
    std::uint64_t out = 0, retired = 0;
    d::first_counts(i, &out, &retired);
    if (out != std::uint64_t{r.runs} * r.elems) {
      CHECK(out < std::uint64_t{r.runs} * r.elems);
      full = true;
    } else {
      CHECK_FALSE(full);  // a full chunk gives no class its whole share after
    }
    for (char* p : v) CHECK(kmem::free(p, M_TEST) == KMEM_OK);
  }
  CHECK(full);
}

// An element that reaches the bucket layer (a depot over its bound, a thread's exit) has no
// cluster: it is retired, not reported as a broken chain.
TEST_CASE("first chunk: an element given to the bucket layer is retired") {
  REQUIRE(kmem_test::boot(false) != nullptr);
  const unsigned indx = d::bucket_index(112);
  // The case above left the class's cached blocks in the thread's chain, a cluster's on top.
  std::vector<void*> held;
  void* p = nullptr;
  for (int k = 0; k < 256 && p == nullptr; ++k) {
    void* q = kmem::malloc(112, M_TEST, M_WAITOK);
    if (in_chunk(q)) p = q;
    else held.push_back(q);
  }
  REQUIRE(p != nullptr);
  std::uint64_t out0 = 0, retired0 = 0;
  d::first_counts(indx, &out0, &retired0);
  const std::uint64_t corrupt0 = corrupt_count();
  // As free's slow path would hand a block to the bucket (accounting aside).
  d::mark_free(reinterpret_cast<std::uintptr_t>(p), 0);
  CHECK(d::bucket_free(indx, p, 1) == 1);
  std::uint64_t out1 = 0, retired1 = 0;
  d::first_counts(indx, &out1, &retired1);
  CHECK(retired1 == retired0 + 1);
  CHECK(corrupt_count() == corrupt0);
  std::vector<void*> v;
  for (int k = 0; k < 64; ++k) {
    v.push_back(kmem::malloc(112, M_TEST, M_WAITOK));
    CHECK(v.back() != p);
  }
  for (void* q : v) CHECK(kmem::free(q, M_TEST) == KMEM_OK);
  for (void* q : held) CHECK(kmem::free(q, M_TEST) == KMEM_OK);
}

// Last: a second thread turns the chunk off for the rest of the process.
TEST_CASE("first chunk: once the process has a second thread, no class takes a run") {
  REQUIRE(kmem_test::boot(false) != nullptr);
  REQUIRE(__libc_single_threaded);
  void* before = kmem::malloc(32, M_TEST, M_WAITOK);
  CHECK(in_chunk(before));
  void* handed = kmem::malloc(32, M_TEST, M_WAITOK);  // its run neighbour, on the same line
  CHECK(in_chunk(handed));
  // Runs of neighbouring classes handed to two threads would share cache lines.
  std::vector<void*> got[2];
  std::vector<std::thread> ts;
  for (auto& g : got)
    ts.emplace_back([&g] {
      for (int k = 0; k < 40; ++k) g.push_back(kmem::malloc(16, M_TEST, M_WAITOK));
    });
  for (auto& t : ts) t.join();
  // 1024: no block of it taken before, no run of it now.
  void* after = kmem::malloc(1024, M_TEST, M_WAITOK);
  CHECK_FALSE(in_chunk(after));
  for (auto& g : got)
    for (void* p : g) {
      REQUIRE(p != nullptr);
      CHECK(kmem::free(p, M_TEST) == KMEM_OK);
    }
  std::thread([before] { CHECK(kmem::free(before, M_TEST) == KMEM_OK); }).join();  // another thread frees a chunk block
  // Failed before the chunk's blocks were retired once the process has threads: a worker
  // that freed the block handed to it and mallocked again got it back, writing the line
  // the main thread's neighbour block is on (allocsuite's cache_scratch, 12x slower).
  std::thread([handed] {
    void* warm = kmem::malloc(64, M_TEST, M_WAITOK);  // the thread's cache is set up: not its first call
    CHECK(kmem::free(handed, M_TEST) == KMEM_OK);
    for (int k = 0; k < 8; ++k) {
      void* q = kmem::malloc(32, M_TEST, M_WAITOK);
      CHECK(q != handed);
      CHECK_FALSE(in_chunk(q));
      CHECK(kmem::free(q, M_TEST) == KMEM_OK);
    }
    CHECK(kmem::free(warm, M_TEST) == KMEM_OK);
  }).join();
  CHECK(kmem::free(handed, M_TEST) == KMEM_DOUBLE_FREE);
  CHECK(kmem::free(before, M_TEST) == KMEM_DOUBLE_FREE);
  CHECK(kmem::free(after, M_TEST) == KMEM_OK);
}
