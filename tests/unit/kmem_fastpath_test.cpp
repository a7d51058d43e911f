// kmem_fastpath_test — the inline fast paths (kmem_fast.h): the dense page-index
// copy stays equal to kmemusage, misuse still leaves the fast path and is refused,
// a thread's first calls (cache not set up) work, magazines hold 256 rounds for
// small buckets, statistics stay exact through the fast path.
#include <doctest/doctest.h>

#include <atomic>
#include <cstdint>
#include <cstring>
#include <thread>
#include <vector>

#include "kmem/kmem.h"
#include "kmem/kmem_fast.h"
#include "kmem/kmem_first_chunk.h"
#include "kmem/kmem_internal.h"
#include "kmem_test_support.h"

using namespace vmrt::kmem;
namespace kmem = vmrt::kmem;
namespace d = vmrt::kmem::detail;

namespace {
// Without the first chunk: the cases are about clusters, chains and the depot, and a
// class's first refills would otherwise be first-chunk runs (kmem_first_chunk_test).
void boot() { REQUIRE(kmem_test::boot(false, 1000, std::size_t{4} << 30, false) != nullptr); }


// Every page of the arena that kmem has touched: pgindx == ku_indx, except on the
// further pages of a cluster whose elements straddle pages: KU_UNUSED in the record,
// a tail code naming the class of the cluster's first page in pgindx.
bool pgindx_mirrors_usage(std::uintptr_t from, std::uintptr_t to) {
  for (std::uintptr_t a = from; a < to; a += d::kPageSize) {
    std::uint32_t pg = d::page_of(a);
    const unsigned code = d::page_code(pg);
    if (code > d::kMaxBucket) {
      if (d::g.usage[pg].ku_indx != d::KU_UNUSED) return false;
      if (d::g.usage[d::cluster_first_page(pg, code)].ku_indx != d::kCodes.cls[code]) return false;
    } else if (code != d::g.usage[pg].ku_indx) {
      return false;
    }
  }
  return true;
}
}  // namespace

TEST_CASE("fast path: the page-index bytes mirror kmemusage through carve, large blocks and trim") {
  boot();
  std::vector<void*> v;
  std::uintptr_t lo = UINTPTR_MAX, hi = 0;
  for (std::size_t s : {1, 16, 17, 100, 500, 4096, 5000, 40000, 65536, 70000, 1 << 20}) {
    for (int i = 0; i < 40; ++i) {
      void* p = kmem::malloc(s, M_TEST, M_WAITOK);
      REQUIRE(p != nullptr);
      v.push_back(p);
      std::uintptr_t a = reinterpret_cast<std::uintptr_t>(p);
      lo = std::min(lo, a & ~d::kPageMask);
      hi = std::max(hi, a + usable_size(p));
    }
  }
  CHECK(pgindx_mirrors_usage(lo, hi));
  for (void* p : v) CHECK(kmem::free(p, M_TEST) == KMEM_OK);
  CHECK(pgindx_mirrors_usage(lo, hi));
  trim();
  CHECK(pgindx_mirrors_usage(lo, hi));
}

TEST_CASE("fast path: misuse leaves the fast path and is refused, nothing changed") {
  boot();
  void* p = kmem::malloc(64, M_TEST, M_WAITOK);
  REQUIRE(p != nullptr);
  char* c = static_cast<char*>(p);
  CHECK_FALSE(d::free_fast(c + 16, M_TEST));
  CHECK(kmem::free(c + 16, M_TEST) == KMEM_NOT_BLOCK);
  CHECK(d::free_fast(p, M_TEST));  // the fast path takes a valid block
  CHECK_FALSE(d::free_fast(p, M_TEST));
  CHECK(kmem::free(p, M_TEST) == KMEM_DOUBLE_FREE);
  // A large block: the page state (not a bucket) makes the fast path decline.
  void* big = kmem::malloc(std::size_t{1} << 20, M_TEST, M_WAITOK);
  REQUIRE(big != nullptr);
  CHECK_FALSE(d::free_fast(big, M_TEST));
  CHECK(kmem::free(big, M_TEST) == KMEM_OK);
  CHECK(kmem::free(big, M_TEST) == KMEM_DOUBLE_FREE);
  int local = 0;
  CHECK_FALSE(d::free_fast(&local, M_TEST));
  CHECK_FALSE(d::free_fast(nullptr, M_TEST));
}

TEST_CASE("fast path: a new thread's first calls take the slow path and set its cache up") {
  boot();
  bool before_ok = false, after_ok = false;
  std::thread t([&] {
    before_ok = d::t_tc == nullptr && d::malloc_fast(32, M_TEST) == nullptr;  // cache not set up
    void* p = kmem::malloc(32, M_TEST, M_WAITOK);
    if (p != nullptr && kmem::free(p, M_TEST) == KMEM_OK) {
      // Set up now: the freed block is in the loaded magazine and comes straight back.
      void* q = d::malloc_fast(32, M_TEST);
      after_ok = d::t_tc == &d::t_cache && q == p && kmem::free(q, M_TEST) == KMEM_OK;
    }
  });
  t.join();
  CHECK(before_ok);
  CHECK(after_ok);
}

TEST_CASE("fast path: small buckets keep 256 rounds per magazine in the thread cache") {
  boot();
  static_assert(d::magazine_cap(d::bucket_index(16)) == 256 && d::magazine_cap(d::bucket_index(256)) == 256 &&
                d::magazine_cap(d::bucket_index(257)) == 32);
  kmem_counters c0{};
  REQUIRE(get_kmem_counters(&c0));
  std::vector<void*> v;
  std::thread t([&] {
    for (int i = 0; i < 256; ++i) v.push_back(kmem::malloc(48, M_TEST, M_WAITOK));
    thread_cache_drain();
    kmem_counters c1{};
    get_kmem_counters(&c1);
    // 256 frees into a freshly loaded magazine: no depot exchange.
    for (void* p : v) CHECK(kmem::free(p, M_TEST) == KMEM_OK);
    kmem_counters c2{};
    get_kmem_counters(&c2);
    CHECK(c2.depot_exchanges == c1.depot_exchanges);
  });
  t.join();
}

TEST_CASE("fast path: exact statistics for one thread (calls, inuse, memuse, high water)") {
  boot();
  std::thread t([] {
    type_stats s0{};
    REQUIRE(get_type_stats(M_DEVBUF, &s0));
    std::vector<void*> v;
    const std::int64_t bs = static_cast<std::int64_t>(d::bucket_size(d::bucket_index(100)));  // 112 (128: powers of two)
    for (int i = 0; i < 1000; ++i) v.push_back(kmem::malloc(100, M_DEVBUF, M_WAITOK));
    for (int i = 0; i < 500; ++i) CHECK(kmem::free(v[i], M_DEVBUF) == KMEM_OK);
    type_stats s1{};
    REQUIRE(get_type_stats(M_DEVBUF, &s1));
    CHECK(s1.calls - s0.calls == 1000);
    CHECK(s1.inuse - s0.inuse == 500);
    CHECK(s1.memuse - s0.memuse == 500 * bs);
    CHECK(s1.maxused >= s0.memuse + 1000 * bs);
    for (int i = 500; i < 1000; ++i) CHECK(kmem::free(v[i], M_DEVBUF) == KMEM_OK);
    type_stats s2{};
    REQUIRE(get_type_stats(M_DEVBUF, &s2));
    CHECK(s2.memuse == s0.memuse);
    CHECK(s2.inuse == s0.inuse);
  });
  t.join();
}

namespace {
std::atomic<int> g_corrupt_reports{0};
void count_corrupt(const kmem_report& r) {
  if (r.status == KMEM_CORRUPT) g_corrupt_reports.fetch_add(1);
}

// A write after free over a cached block's chain link (word 0), then the class is used
// again: every block handed out must be a live kmem block other than the wild link and
// neither the broken block nor any after it on the chain; the break is counted and
// reported; other blocks keep their bytes.  `wild` gives the overwritten link.  (On main's
// rounds arrays word 0 of a cached block was not a link: this is the hole chains open.)
template <class Wild>
void chain_write_after_free(Wild wild) {
  constexpr std::size_t kSize = 48;
  constexpr int kChain = 8;
  bool ok = false;
  std::thread t([&] {
    // Live blocks of the class holding a pattern: untouched by what follows.
    std::vector<unsigned char*> keep;
    for (int i = 0; i < 16; ++i) {
      auto* k = static_cast<unsigned char*>(kmem::malloc(kSize, M_TEST, M_WAITOK));
      REQUIRE(k != nullptr);
      std::memset(k, 0x5a + i, kSize);
      keep.push_back(k);
    }
    void* blocks[kChain];
    for (void*& b : blocks) b = kmem::malloc(kSize, M_TEST, M_WAITOK);
    thread_cache_drain();  // the chain below holds exactly these blocks, last freed first
    for (void* b : blocks) REQUIRE(kmem::free(b, M_TEST) == KMEM_OK);
    const std::uintptr_t bad = wild(blocks);
    // The write after free: block 5's link (to block 4) is overwritten.
    static_cast<std::uintptr_t*>(blocks[5])[0] = bad;
    kmem_counters c0{};
    REQUIRE(get_kmem_counters(&c0));
    const int r0 = g_corrupt_reports.load();
    std::vector<void*> got;
    for (int i = 0; i < 4 * kChain; ++i) {
      void* p = kmem::malloc(kSize, M_TEST, M_WAITOK);
      REQUIRE(p != nullptr);
      CHECK(reinterpret_cast<std::uintptr_t>(p) != bad);
      for (int j = 0; j < 6; ++j) CHECK(p != blocks[j]);  // the broken block and the rest: dropped
      std::memset(p, 0xee, kSize);
      got.push_back(p);
    }
    kmem_counters c1{};
    REQUIRE(get_kmem_counters(&c1));
    CHECK(c1.corrupt_detected == c0.corrupt_detected + 1);
    CHECK(g_corrupt_reports.load() == r0 + 1);
    // Blocks 7 and 6 came back first; block 5's marker (which binds its link) no longer
    // holds, so it is not handed out either.
    CHECK(got[0] == blocks[7]);
    CHECK(got[1] == blocks[6]);
    for (void* p : got) CHECK(kmem::free(p, M_TEST) == KMEM_OK);
    for (int i = 0; i < 16; ++i) {
      bool same = true;
      for (std::size_t b = 0; b < kSize; ++b) same &= keep[i][b] == static_cast<unsigned char>(0x5a + i);
      CHECK(same);
      CHECK(kmem::free(keep[i], M_TEST) == KMEM_OK);
    }
    ok = true;
  });
  t.join();
  CHECK(ok);
}
}  // namespace

TEST_CASE("thread cache chains: a link overwritten after free is caught, counted, its chain dropped") {
  boot();
  report_hook old = set_report_hook(count_corrupt);
  SUBCASE("a wild pointer outside the arena") {
    chain_write_after_free([](void* const*) { return std::uintptr_t{0x4141414141414140}; });
  }
  SUBCASE("null (a chain cut short under its count)") {
    chain_write_after_free([](void* const*) { return std::uintptr_t{0}; });
  }
  SUBCASE("inside the arena, not an element start of the class") {
    chain_write_after_free([](void* const* b) { return reinterpret_cast<std::uintptr_t>(b[4]) + 16; });
  }
  SUBCASE("an element of the class that is allocated (no free marker)") {
    static void* live = nullptr;
    live = kmem::malloc(48, M_TEST, M_WAITOK);
    chain_write_after_free([](void* const*) { return reinterpret_cast<std::uintptr_t>(live); });
    CHECK(kmem::free(live, M_TEST) == KMEM_OK);
  }
  set_report_hook(old);
}

TEST_CASE("thread cache chains: a broken chain drained back to the bucket stops at the break") {
  boot();
  report_hook old = set_report_hook(count_corrupt);
  bool ok = false;
  std::thread t([&] {
    void* blocks[8];
    for (void*& b : blocks) b = kmem::malloc(80, M_TEST, M_WAITOK);
    thread_cache_drain();
    for (void* b : blocks) REQUIRE(kmem::free(b, M_TEST) == KMEM_OK);
    static_cast<std::uintptr_t*>(blocks[6])[0] = 0x4141414141414140;
    kmem_counters c0{};
    REQUIRE(get_kmem_counters(&c0));
    thread_cache_drain();  // walks the chain into the bucket layer: must not follow the wild link
    kmem_counters c1{};
    REQUIRE(get_kmem_counters(&c1));
    CHECK(c1.corrupt_detected == c0.corrupt_detected + 1);
    // Block 7 went back to its cluster, 6 (broken) and the rest were dropped; the class
    // still works.
    std::vector<void*> v;
    for (int i = 0; i < 64; ++i) {
      void* p = kmem::malloc(80, M_TEST, M_WAITOK);
      REQUIRE(p != nullptr);
      for (int j = 0; j < 7; ++j) CHECK(p != blocks[j]);
      v.push_back(p);
    }
    for (void* p : v) CHECK(kmem::free(p, M_TEST) == KMEM_OK);
    ok = true;
  });
  t.join();
  CHECK(ok);
  set_report_hook(old);
}

TEST_CASE("fast path: free's one-word marker test passes every free element, whatever its link") {
  boot();
  const std::uintptr_t a = d::g.base + 5 * d::kPageSize + 48;
  // Every kind of link a free element's marker binds (may_be_marked's contract).
  const std::uintptr_t links[] = {0,
                                  d::g.base,
                                  d::g.base + d::g.size - 16,
                                  a + 96,
                                  0,
                                  0x30,
                                  d::kNoFree,
                                  d::kLazyLink | 0x40,
                                  d::kLazyLink | (0x10000 - 16)};
  for (std::uintptr_t l : links) CHECK(d::may_be_marked(a, d::free_marker(a, l)));
  // What allocated blocks hold in word 1: malloc's 0, small numbers, addresses.
  const std::uintptr_t words[] = {0, 1, 0x30, 0xffff, a, d::g.base, 0x7fffffffffffULL, 0x4141414141414141ULL};
  for (std::uintptr_t w : words) CHECK_FALSE(d::may_be_marked(a, w));
  // free's fast path asks the same question given free_marker(a, 0).
  const std::uintptr_t m0 = d::free_marker(a, 0);
  for (std::uintptr_t l : links) CHECK(d::may_be_marked_m0(m0, d::free_marker(a, l)));
  for (std::uintptr_t w : words) CHECK_FALSE(d::may_be_marked_m0(m0, w));
}

TEST_CASE("fast path: a free whose word 1 looks like a marker (not free) is freed, not refused") {
  boot();
  std::thread t([] {
    void* p = kmem::malloc(32, M_TEST, M_WAITOK);
    REQUIRE(p != nullptr);
    auto* w = static_cast<std::uintptr_t*>(p);
    const std::uintptr_t a = reinterpret_cast<std::uintptr_t>(p);
    // Word 1 is a marker for a link other than word 0: not free, but the one-word test
    // cannot tell, so the slow path's exact test decides.
    w[0] = 0x1234;
    w[1] = d::free_marker(a, d::g.base);
    CHECK_FALSE(d::free_fast(p, M_TEST));
    CHECK(kmem::free(p, M_TEST) == KMEM_OK);
    CHECK(kmem::free(p, M_TEST) == KMEM_DOUBLE_FREE);
    void* q = kmem::malloc(32, M_TEST, M_WAITOK);
    CHECK(q == p);  // back in this thread's cache
    CHECK(kmem::free(q, M_TEST) == KMEM_OK);
  });
  t.join();
}

TEST_CASE("fast path: a double free is refused whether the block sits in a chain or on its cluster's list") {
  boot();
  std::thread t([] {
    void* blocks[4];
    for (void*& b : blocks) b = kmem::malloc(96, M_TEST, M_WAITOK);
    for (void* b : blocks) REQUIRE(kmem::free(b, M_TEST) == KMEM_OK);
    // In this thread's chain (the last one pushed links to the chain's old head).
    for (void* b : blocks) {
      CHECK_FALSE(d::free_fast(b, M_TEST));
      CHECK(kmem::free(b, M_TEST) == KMEM_DOUBLE_FREE);
    }
    // On their clusters' free lists (offset links, kNoFree at a list's end).
    thread_cache_drain();
    for (void* b : blocks) {
      CHECK_FALSE(d::free_fast(b, M_TEST));
      CHECK(kmem::free(b, M_TEST) == KMEM_DOUBLE_FREE);
    }
  });
  t.join();
}

TEST_CASE("fast path: link_high leaves every arena address, list link and the lazy flag out, and takes the cookie's top bit") {
  boot();
  CHECK((d::g.link_high & (d::g.base + d::g.size - 1)) == 0);
  CHECK((d::g.link_high & (d::kLazyLink | d::kMaxListLink)) == 0);
  CHECK((d::g.link_high & d::g.cookie) != 0);
}
