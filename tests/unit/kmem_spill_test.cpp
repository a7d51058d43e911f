// kmem_spill_test — chains moving between a thread's magazines and the clusters
// (kmem_bucket.cpp: bucket_free walks a chain straight onto its clusters, bucket_alloc builds
// a chain straight off them): a chain broken in the middle of a spill longer than one lock
// hold is caught there, counted, reported, the rest dropped; a cluster free list written
// after free (its link, its marker, a forged lazy flag) is caught by the refill and nothing
// live or dropped is handed out; bulk malloc/free of several classes, in random order,
// leaves every bucket consistent (bucket_consistent) and hands no block out twice.
#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <functional>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "kmem/kmem.h"
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

std::atomic<int> g_corrupt_reports{0};
void count_corrupt(const kmem_report& r) {
  if (r.status == KMEM_CORRUPT) g_corrupt_reports.fetch_add(1);
}


std::uint64_t corrupt_count() {
  kmem_counters c{};
  REQUIRE(get_kmem_counters(&c));
  return c.corrupt_detected;
}

void check_buckets() {
  for (unsigned i = d::kMinBucket; i <= d::kMaxBucket; ++i) {
    const char* why = d::bucket_consistent(i);
    INFO("bucket " << i << " (" << d::bucket_size(i) << " B): " << std::string(why ? why : ""));
    CHECK(why == nullptr);
  }
}

std::uintptr_t addr(const void* p) { return reinterpret_cast<std::uintptr_t>(p); }

// Runs body in a thread of its own (a fresh thread cache); checks that it ran to its end.
void in_fresh_thread(const std::function<void()>& body) {
  bool ok = false;
  std::thread t([&] {
    body();
    ok = true;
  });
  t.join();
  CHECK(ok);
}

// Takes n blocks of `size`, each checked to be none of `forbidden` (live or dropped blocks)
// and handed out once; the caller frees them.
std::vector<void*> malloc_avoiding(std::size_t size, int n, const std::set<void*>& forbidden) {
  std::set<void*> got;
  std::vector<void*> v;
  for (int i = 0; i < n; ++i) {
    void* p = kmem::malloc(size, M_TEST, M_WAITOK);
    REQUIRE(p != nullptr);
    CHECK(forbidden.count(p) == 0);
    CHECK(got.insert(p).second);
    v.push_back(p);
  }
  return v;
}
}  // namespace

// A 200-element chain (the loaded magazine) drained to the bucket layer, its element 60
// written after free: the walk crosses two lock drops (64 elements a hold), stops at element
// 60 (its free marker binds its link), and only the 139 elements above it (freed later:
// nearer the head) go back to their clusters; 60 and below keep their chain words, out of
// circulation.  One class per kind of damage, each fresh.
TEST_CASE("spill: a chain broken in its third batch stops there; the rest is dropped, never handed out") {
  boot();
  report_hook old = set_report_hook(count_corrupt);
  struct wild {
    const char* name;
    std::size_t size;
    void (*hit)(std::uintptr_t* w, void* const* blocks, void* live, void* other);
  };
  const wild kinds[] = {
      {"a wild link outside the arena", 96,
       [](std::uintptr_t* w, void* const*, void*, void*) { w[0] = 0x4141414141414140; }},
      {"the marker overwritten, the link kept", 80, [](std::uintptr_t* w, void* const*, void*, void*) { w[1] ^= 0x10; }},
      {"a link inside the arena, not an element start", 176,
       [](std::uintptr_t* w, void* const* b, void*, void*) { w[0] = addr(b[59]) + 16; }},
      {"a link to a live block of the class", 208,
       [](std::uintptr_t* w, void* const*, void* live, void*) { w[0] = addr(live); }},
      {"a link to a free block of another class", 240,
       [](std::uintptr_t* w, void* const*, void*, void* other) { w[0] = addr(other); }},
  };
  for (const wild& k : kinds) {
    CAPTURE(k.name);
    constexpr int kChain = 200, kBad = 60;
    in_fresh_thread([&] {
      // A free block of another class: on its cluster's list, marked (its marker binds a
      // list offset), refused by its page's class.
      void* other = kmem::malloc(160, M_TEST, M_WAITOK);
      REQUIRE(kmem::free(other, M_TEST) == KMEM_OK);
      void* blocks[kChain];
      for (void*& b : blocks) {
        b = kmem::malloc(k.size, M_TEST, M_WAITOK);
        REQUIRE(b != nullptr);
      }
      void* live = kmem::malloc(k.size, M_TEST, M_WAITOK);
      thread_cache_drain();  // chains empty; other on its cluster's list
      for (void* b : blocks) REQUIRE(kmem::free(b, M_TEST) == KMEM_OK);  // loaded: exactly blocks
      k.hit(static_cast<std::uintptr_t*>(blocks[kBad]), blocks, live, other);
      const std::uint64_t c0 = corrupt_count();
      const int r0 = g_corrupt_reports.load();
      thread_cache_drain();  // walks the chain onto the clusters, head (block 199) first
      CHECK(corrupt_count() == c0 + 1);
      CHECK(g_corrupt_reports.load() == r0 + 1);
      // Above the break: on their clusters' lists (a marker binding a list offset).  Below:
      // untouched chain elements (a marker binding the next block's address).
      for (int i = kBad + 1; i < kChain; ++i) {
        const std::uintptr_t* w = static_cast<const std::uintptr_t*>(blocks[i]);
        CHECK((w[0] & ~d::kLazyLink) <= d::kMaxListLink);
        CHECK(d::is_marked(addr(blocks[i])));
      }
      for (int i = 0; i < kBad; ++i) {
        const std::uintptr_t* w = static_cast<const std::uintptr_t*>(blocks[i]);
        CHECK(w[0] == (i == 0 ? 0 : addr(blocks[i - 1])));
        CHECK(d::is_marked(addr(blocks[i])));
      }
      check_buckets();
      // Blocks 0..60 are out of circulation: many mallocs of the class hand out none of
      // them, nor the live block, nor any block twice.
      std::set<void*> forbidden(blocks, blocks + kBad + 1);
      forbidden.insert(live);
      const std::vector<void*> v = malloc_avoiding(k.size, 2000, forbidden);
      for (void* p : v) CHECK(kmem::free(p, M_TEST) == KMEM_OK);
      CHECK(kmem::free(live, M_TEST) == KMEM_OK);
      thread_cache_drain();
      check_buckets();
    });
  }
  set_report_hook(old);
}

// A one-page cluster of a power-of-two class, every other block freed back to it (its list:
// 1, 3, 5, ...), the rest kept live and holding a pattern; then block 5's words are written
// after free.  The refill checks each list link through its element's free marker: block 5
// and the rest of that cluster's list are dropped, counted and reported once; no live block,
// no dropped block and no block twice is handed out, and the live blocks keep their bytes.
// A forged lazy flag (the link's offset kept) and a link to a live element start are the
// cases the link range check alone let through: the refill took the rest of the cluster for
// never carved, or followed the link, and handed out live blocks.  One class per kind.
TEST_CASE("refill: a cluster free list written after free is caught; nothing live or dropped is handed out") {
  boot();
  report_hook old = set_report_hook(count_corrupt);
  struct wild {
    const char* name;
    std::size_t size;
    void (*hit)(std::uintptr_t* w, std::size_t size);
  };
  const wild kinds[] = {
      {"a forged lazy flag", 256, [](std::uintptr_t* w, std::size_t) { w[0] |= d::kLazyLink; }},
      {"a link to a live element start", 128, [](std::uintptr_t* w, std::size_t s) { w[0] = 6 * s; }},
      {"a wild link", 512, [](std::uintptr_t* w, std::size_t) { w[0] = 0x4141414141414140; }},
      {"the marker overwritten", 64, [](std::uintptr_t* w, std::size_t) { w[1] = 0; }},
  };
  for (const wild& k : kinds) {
    CAPTURE(k.name);
    in_fresh_thread([&] {
      const std::size_t size = k.size;
      const int n = static_cast<int>(4096 / size);  // one page, page-aligned
      thread_cache_drain();
      // A cluster (a page) whose every block this thread holds: the class is fresh, so
      // among a few pages' worth some page is whole.  The other blocks stay live.
      std::vector<void*> held;
      for (int i = 0; i < 4 * n; ++i) held.push_back(kmem::malloc(size, M_TEST, M_WAITOK));
      std::sort(held.begin(), held.end());
      std::vector<void*> blocks, others;
      for (std::size_t i = 0; i < held.size(); ++i) {
        if (blocks.empty() && (addr(held[i]) & 4095) == 0 && i + n <= held.size() &&
            addr(held[i + n - 1]) == addr(held[i]) + (n - 1) * size) {
          blocks.assign(held.begin() + static_cast<std::ptrdiff_t>(i), held.begin() + static_cast<std::ptrdiff_t>(i) + n);
          i += n - 1;
          continue;
        }
        others.push_back(held[i]);
      }
      REQUIRE(static_cast<int>(blocks.size()) == n);
      thread_cache_drain();
      for (int i = 0; i < n; i += 2) std::memset(blocks[i], 0x30 + i, size);
      for (int i = 1; i < n; i += 2) REQUIRE(kmem::free(blocks[i], M_TEST) == KMEM_OK);
      thread_cache_drain();  // the odd blocks go back to the cluster: list 1, 3, 5, ...
      check_buckets();
      k.hit(static_cast<std::uintptr_t*>(blocks[5]), size);
      const std::uint64_t c0 = corrupt_count();
      const int r0 = g_corrupt_reports.load();
      std::set<void*> forbidden;
      for (int j = 0; j < n; j += 2) forbidden.insert(blocks[j]);  // live
      for (int j = 5; j < n; j += 2) forbidden.insert(blocks[j]);  // broken, dropped
      const std::vector<void*> v = malloc_avoiding(size, 600, forbidden);
      const std::set<void*> got(v.begin(), v.end());
      CHECK(got.count(blocks[1]) == 1);  // before the break: handed out
      CHECK(got.count(blocks[3]) == 1);
      CHECK(corrupt_count() == c0 + 1);
      CHECK(g_corrupt_reports.load() == r0 + 1);
      for (int i = 0; i < n; i += 2) {
        bool same = true;
        for (std::size_t b = 0; b < size; ++b) same &= static_cast<unsigned char*>(blocks[i])[b] == 0x30 + i;
        CHECK(same);
        CHECK(kmem::free(blocks[i], M_TEST) == KMEM_OK);
      }
      for (void* p : v) CHECK(kmem::free(p, M_TEST) == KMEM_OK);
      for (void* p : others) CHECK(kmem::free(p, M_TEST) == KMEM_OK);
      thread_cache_drain();
      check_buckets();
    });
  }
  set_report_hook(old);
}

// Many blocks of several classes (one-page, straddling and whole-page clusters), allocated
// interleaved and freed in random order: spills (depot full) and refills cross clusters on
// every element and lock holds of 64; every block is distinct while live and keeps its tag,
// and the buckets are consistent at each step and back to their free counts at the end.
TEST_CASE("bulk malloc/free of several classes in random order round-trips; the buckets stay consistent") {
  boot();
  const std::size_t sizes[] = {16, 48, 112, 256, 640, 3072, 5120, 12288};
  in_fresh_thread([&] {
    std::mt19937 rng(7);
    for (int round = 0; round < 3; ++round) {
      std::vector<std::pair<std::uint64_t*, std::size_t>> live;
      std::set<void*> seen;
      for (int i = 0; i < 60000; ++i) {
        const std::size_t s = sizes[rng() % (round == 2 ? 2 : 8)];
        auto* p = static_cast<std::uint64_t*>(kmem::malloc(s, M_TEST, M_WAITOK));
        REQUIRE(p != nullptr);
        REQUIRE(seen.insert(p).second);
        p[0] = reinterpret_cast<std::uintptr_t>(p) ^ s;  // its own while live (16-byte blocks: words 0-1)
        live.push_back({p, s});
      }
      check_buckets();
      std::shuffle(live.begin(), live.end(), rng);
      // Free half, malloc a quarter back (refills from partial clusters), free the rest.
      const std::size_t half = live.size() / 2;
      for (std::size_t i = 0; i < half; ++i) {
        CHECK(live[i].first[0] == (reinterpret_cast<std::uintptr_t>(live[i].first) ^ live[i].second));
        seen.erase(live[i].first);
        REQUIRE(kmem::free(live[i].first, M_TEST) == KMEM_OK);
      }
      live.erase(live.begin(), live.begin() + static_cast<std::ptrdiff_t>(half));
      for (std::size_t i = 0; i < half / 2; ++i) {
        const std::size_t s = sizes[rng() % 8];
        auto* p = static_cast<std::uint64_t*>(kmem::malloc(s, M_TEST, M_WAITOK));
        REQUIRE(p != nullptr);
        REQUIRE(seen.insert(p).second);
        p[0] = reinterpret_cast<std::uintptr_t>(p) ^ s;
        live.push_back({p, s});
      }
      if (round == 1) thread_cache_drain();
      check_buckets();
      std::shuffle(live.begin(), live.end(), rng);
      for (auto [p, s] : live) {
        CHECK(p[0] == (reinterpret_cast<std::uintptr_t>(p) ^ s));
        REQUIRE(kmem::free(p, M_TEST) == KMEM_OK);
      }
      thread_cache_drain();
      check_buckets();
    }
  });
  kmem_counters c{};
  REQUIRE(get_kmem_counters(&c));
  // Nothing in this case was corrupted (the cases above count theirs before they end).
  check_buckets();
}

// Two threads churn the same classes at once, each spilling to and refilling from the same
// buckets (lock holds interleave every 64 elements); then every bucket is consistent and
// no block was handed to both.
TEST_CASE("spill and refill of the same classes from two threads at once keep the buckets consistent") {
  boot();
  const std::uint64_t c0 = corrupt_count();
  std::atomic<int> bad{0};
  std::vector<void*> last[2];
  auto worker = [&](int id) {
    std::mt19937 rng(100 + id);
    const std::size_t sizes[] = {32, 48, 96, 256};
    std::vector<void*> v;
    for (int round = 0; round < 6; ++round) {
      for (int i = 0; i < 20000; ++i) {
        void* p = kmem::malloc(sizes[rng() % 4], M_TEST, M_WAITOK);
        if (p == nullptr) ++bad;
        v.push_back(p);
      }
      std::shuffle(v.begin(), v.end(), rng);
      const std::size_t keep = round == 5 ? v.size() : v.size() / 4;
      for (std::size_t i = keep; i < v.size(); ++i)
        if (kmem::free(v[i], M_TEST) != KMEM_OK) ++bad;
      v.resize(keep);
    }
    last[id] = v;
  };
  std::thread a(worker, 0), b(worker, 1);
  a.join();
  b.join();
  CHECK(bad.load() == 0);
  std::set<void*> both(last[0].begin(), last[0].end());
  for (void* p : last[1]) CHECK(both.insert(p).second);
  for (int id = 0; id < 2; ++id)
    for (void* p : last[id]) CHECK(kmem::free(p, M_TEST) == KMEM_OK);
  CHECK(corrupt_count() == c0);
  check_buckets();
}
