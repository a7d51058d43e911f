// kmem_touch_test.cpp — memory kmem never hands out is never touched: the first malloc of
// each size class touches the pages of the block it returns (and at most one element
// ahead, lazy carving), not the whole cluster (3-7 pages for classes whose elements
// straddle pages) nor a full magazine of rounds (16 pages for 256 rounds of 256 bytes):
// the refill from the bucket starts at about a page of rounds and doubles (slow start).
// Residency is read with mincore(2) over kmem's host page source (pages appear when written).
// Its own binary: kmem must be fresh (no class used before the first case).
#include <doctest/doctest.h>

#include <sys/mman.h>
#include <sys/single_threaded.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <vector>

#include "kmem/kmem.h"
#include "kmem/kmem_internal.h"
#include "tests/unit/kmem_test_support.h"

using namespace vmrt::kmem;
namespace kmem = vmrt::kmem;
namespace d = vmrt::kmem::detail;

TEST_CASE("touch: the first malloc of each class touches the block's pages, not its cluster or a magazine") {
  kmem_test::counting_source* src = kmem_test::boot(false);
  REQUIRE(src != nullptr);
  // Warm the thread's cache and kmem's metadata with one class (16 bytes).
  void* warm = kmem::malloc(16, M_TEST, M_WAITOK);
  REQUIRE(warm != nullptr);
  long total = 0;
  for (unsigned i = d::kMinBucket + 1; i <= d::kMaxBucket; ++i) {
    const std::size_t size = d::bucket_size(i);
    CAPTURE(size);
    CAPTURE(d::pages_per_cluster(i));
    long before = kmem_test::resident(src);
    const long ahead0 = src->populated_pages.load();
    void* p = kmem::malloc(size, M_TEST, M_WAITOK);
    REQUIRE(p != nullptr);
    long grew = kmem_test::resident(src) - before;
    // Single pages for new clusters are populated kPopulateAhead at a time: the pages a call
    // made resident for the clusters to come are theirs, not this malloc's.
    const long ahead = src->populated_pages.load() - ahead0;
    total += grew;
    // The block's first page (a malloc clears the free marker in its first words), the page
    // of the element carved ahead, and one more (the thread cache keeps no per-class array now).
    CHECK(grew <= 3 + ahead);
    // The whole block is still usable.
    static_cast<unsigned char*>(p)[size - 1] = 1;
  }
  MESSAGE("pages touched by the first malloc of " << d::kMaxBucket - d::kMinBucket << " classes: " << total);
  // Every class that straddles pages used to carve its whole cluster, every small class a
  // magazine of 256 rounds: ~300 pages for the first block of each class.
  // (And the single pages populated ahead: at most one run of them not taken yet.)
  CHECK(total <= 2 * static_cast<long>(d::kMaxBucket - d::kMinBucket) + 8);
  kmem::free(warm, M_TEST);
}

// Right after the first case, which took one block of every class: the second block of each
// one-element multi-page class (8-32 KiB) lies near the others, not 64 pages of heap address
// space apart — a class's run batches start at one run and double, where each class's first
// batch took 64 pages and spread a short process's heap (git status: 30 pages over 1.9 MiB)
// into a second 2 MiB block, a host page-table page more (failed before: ~320 pages apart).
TEST_CASE("layout: a young process's multi-page clusters of different classes lie close together") {
  const std::size_t sizes[] = {8192, 12288, 16384, 24576, 32768};
  std::uintptr_t lo = UINTPTR_MAX, hi = 0;
  std::size_t pages = 0;
  std::vector<void*> v;
  for (std::size_t size : sizes) {
    const unsigned indx = d::bucket_index(size);
    REQUIRE(d::bucket_size(indx) == size);
    REQUIRE(d::elm_per_cluster(indx) == 1);
    void* p = kmem::malloc(size, M_TEST, M_WAITOK);
    REQUIRE(p != nullptr);
    v.push_back(p);
    const auto a = reinterpret_cast<std::uintptr_t>(p);
    lo = std::min(lo, a);
    hi = std::max(hi, a + size);
    pages += size >> d::kPageShift;
  }
  const std::size_t span = (hi - lo) >> d::kPageShift;
  MESSAGE("5 classes' second blocks (" << pages << " pages) span " << span << " pages");
  // Each class's second batch is two runs (the first was the first case's block): at most
  // twice the blocks' pages, plus a batch of single pages between them.
  CHECK(span <= 2 * pages + 64);
  for (void* p : v) kmem::free(p, M_TEST);
}

TEST_CASE("touch: a class used again refills with more rounds each time, up to the magazine") {
  // Correctness of slow start and lazy carving together: many blocks of every class, each
  // written whole, all distinct, freed and allocated again.
  for (unsigned i = d::kMinBucket; i <= d::kMaxBucket; ++i) {
    const std::size_t size = d::bucket_size(i);
    CAPTURE(size);
    const std::size_t n = 3 * std::size_t{d::elm_per_cluster(i)} + 7;
    std::vector<unsigned char*> v;
    for (int round = 0; round < 2; ++round) {
      for (std::size_t k = 0; k < n; ++k) {
        auto* p = static_cast<unsigned char*>(kmem::malloc(size, M_TEST, M_WAITOK));
        REQUIRE(p != nullptr);
        for (std::size_t b = 0; b < size; b += 64) p[b] = static_cast<unsigned char>(k);
        v.push_back(p);
      }
      bool ok = true;
      for (std::size_t k = 0; k < n; ++k)
        for (std::size_t b = 0; b < size; b += 64) ok &= v[k][b] == static_cast<unsigned char>(k);
      CHECK(ok);
      for (unsigned char* p : v) kmem::free(p, M_TEST);
      v.clear();
    }
  }
}

// A fork in a process that never had a second thread writes none of kmem's lock words: with
// every lock taken, the parent's unlocks and the child's resets were copy-on-write faults
// on each page of g holding one (failed before: prepare took them all).
TEST_CASE("touch: a fork of a single-threaded process takes no kmem lock, and the child allocates") {
  kmem_test::boot(false);
  if (__libc_single_threaded == 0) {
    MESSAGE("SKIP: this test process has had a second thread (glibc's __libc_single_threaded)");
    return;
  }
  auto any_held = [] {
    bool h = d::g.pages_lock.held() || d::g.threads_lock.held() || d::g.meta_lock.held();
    for (unsigned i = d::kMinBucket; i <= d::kMaxBucket; ++i) h |= d::g.classes[i].kb.kb_lock.held() || d::g.classes[i].dp.lock.held();
    for (unsigned t = 0; t < M_LAST; ++t) h |= d::g.types[t].lock.held();
    return h;
  };
  void* before = kmem::malloc(100, M_TEST, M_WAITOK);
  REQUIRE(before != nullptr);
  kmem::fork_prepare();
  CHECK_FALSE(any_held());
  pid_t pid = ::fork();
  if (pid == 0) {
    kmem::fork_child();
    int ok = !any_held();
    void* v[300];
    for (int i = 0; i < 300; ++i) ok &= (v[i] = kmem::malloc(16 + i * 40, M_TEST, M_WAITOK)) != nullptr;
    for (int i = 0; i < 300; ++i) ok &= kmem::free(v[i], M_TEST) == KMEM_OK;
    ok &= kmem::free(before, M_TEST) == KMEM_OK;
    ::_exit(ok ? 0 : 1);
  }
  kmem::fork_parent();
  REQUIRE(pid > 0);
  CHECK_FALSE(any_held());
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  CHECK(kmem::free(before, M_TEST) == KMEM_OK);
}

// A class's bucket and depot are one record, after the page layer: a refill past a thread's
// chains in a small class writes the depot, the bucket and the page layer, and for every
// class up to 256 bytes those records lie within 4 KiB of each other — at most two pages of
// g, one when it does not straddle.  In separate arrays of buckets and depots, with the page
// layer after both, a fork child's refills in two classes wrote four pages of g: each a
// copy-on-write fault on both sides of the fork (bash's $(...) children).
TEST_CASE("layout: the records a small class's refill writes span at most 4 KiB of kmem's globals") {
  const auto at = [](const void* p) { return reinterpret_cast<std::uintptr_t>(p); };
  std::uintptr_t lo = at(&d::g.pages_lock), hi = lo + sizeof d::g.pages_lock;
  for (unsigned i = d::kMinBucket; i <= d::kMaxBucket && d::bucket_size(i) <= 256; ++i) {
    const d::kmem_class& c = d::g.classes[i];
    lo = std::min({lo, at(&c.kb), at(&c.dp)});
    hi = std::max({hi, at(&c.kb) + sizeof c.kb, at(&c.dp) + sizeof c.dp});
  }
  CAPTURE(hi - lo);
  CHECK(hi - lo <= 4096);
}
