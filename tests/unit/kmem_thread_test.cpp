// kmem_thread_test.cpp — kmem across threads: producer/consumer (blocks freed by
// a thread that did not allocate them), magazine drain on thread exit, fork.
#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <pthread.h>
#include <sys/wait.h>
#include <string>
#include <thread>
#include <unistd.h>
#include <vector>

#include "kmem/kmem.h"
#include "kmem_test_support.h"

using namespace vmrt::kmem;
namespace kmem = vmrt::kmem;

namespace {
void boot() { REQUIRE(kmem_test::boot(false) != nullptr); }

// Single-producer single-consumer ring of block pointers.
struct ring {
  static constexpr std::size_t N = 4096;
  std::atomic<std::uint64_t> head{0}, tail{0};
  void* slot[N];
  bool push(void* p) {
    std::uint64_t h = head.load(std::memory_order_relaxed);
    if (h - tail.load(std::memory_order_acquire) == N) return false;
    slot[h % N] = p;
    head.store(h + 1, std::memory_order_release);
    return true;
  }
  void* pop() {
    std::uint64_t t = tail.load(std::memory_order_relaxed);
    if (t == head.load(std::memory_order_acquire)) return nullptr;
    void* p = slot[t % N];
    tail.store(t + 1, std::memory_order_release);
    return p;
  }
};

// Block layout: [u64 seq][u32 size][payload bytes = f(seq, i)].
unsigned char fill_byte(std::uint64_t seq, std::size_t i) { return static_cast<unsigned char>(seq * 31 + i * 7); }
}  // namespace

// Hoard's cache-thrash (active false sharing): two threads that allocate small blocks at
// the same time must not be handed blocks in one cache line, or their writes bounce the
// line between cores (allocsuite's cache_thrash).  Each thread's chain is filled from the
// bucket a run at a time; runs end on line boundaries (line_run), so two threads' blocks
// share no line even when each takes its whole first refill (a page's worth) and the
// second thread's refill continues the first one's cluster: before, a 48-byte class's
// first refill of 85 blocks ended mid-line and the next thread's started in that line.
// Both orders: one thread after the other (deterministic), both at once (the refills'
// batches interleave).  The first frees of a fresh thread stay on its own chains: nothing
// is reported corrupt.  First in the file, with classes no earlier round used: a class
// used before refills from clusters whose free lists hold drained chains in any order,
// and runs from such a list are not contiguous.
TEST_CASE("two threads allocating small blocks never share a cache line") {
  boot();
  constexpr std::uintptr_t kLine = 64;
  kmem_counters c0{}, c1{};
  REQUIRE(get_kmem_counters(&c0));
  struct round {
    std::size_t size;
    bool at_once;
  };
  for (round r : {round{48, false}, round{80, false}, round{8, true}, round{32, true}, round{112, true}}) {
    const std::size_t n = 4096 / ((r.size + 15) / 16 * 16);  // the class's first refill, unrounded
    std::vector<std::uintptr_t> got[2];
    got[0].resize(n);
    got[1].resize(n);
    std::atomic<int> ready{0}, taken{0};
    auto run = [&](int who) {
      // The thread's cache set up first (a block of another class), so the threads reach
      // the bucket together (a spinning start: a sleeping barrier wakes one tens of us late).
      CHECK(kmem::free(kmem::malloc(1000, M_TEST, M_WAITOK), M_TEST) == KMEM_OK);
      ready.fetch_add(1);
      while (ready.load() < 2) {
      }
      if (!r.at_once && who == 1)
        while (taken.load() < 1) {
        }
      for (std::size_t i = 0; i < n; ++i) {
        auto* p = static_cast<char*>(kmem::malloc(r.size, M_TEST, M_WAITOK));
        std::memset(p, who, r.size);
        got[who][i] = reinterpret_cast<std::uintptr_t>(p);
      }
      taken.fetch_add(1);
      while (taken.load() < 2) {  // both hold all their blocks
      }
      for (std::uintptr_t x : got[who]) CHECK(kmem::free(reinterpret_cast<void*>(x), M_TEST) == KMEM_OK);
    };
    std::thread a(run, 0), b(run, 1);
    a.join();
    b.join();
    int shared = 0;
    for (std::uintptr_t x : got[0])
      for (std::uintptr_t y : got[1]) {
        const std::uintptr_t lo = std::max(x, y) / kLine, hi = std::min(x + r.size - 1, y + r.size - 1) / kLine;
        shared += lo <= hi;
      }
    INFO("size ", r.size, std::string(r.at_once ? " at once" : " one after the other"));
    CHECK(shared == 0);
  }
  REQUIRE(get_kmem_counters(&c1));
  CHECK(c1.corrupt_detected == c0.corrupt_detected);
}

TEST_CASE("producer/consumer: blocks allocated by one thread, checked and freed by another") {
  boot();
  type_stats t0{};
  get_type_stats(M_TEST, &t0);
  constexpr std::uint64_t kOps = 2'000'000;
  ring r;
  std::atomic<std::uint64_t> bad{0};
  auto t_start = std::chrono::steady_clock::now();
  std::thread producer([&] {
    std::uint64_t x = 88172645463325252ull;
    for (std::uint64_t seq = 0; seq < kOps; ++seq) {
      x ^= x << 13;
      x ^= x >> 7;
      x ^= x << 17;
      std::size_t size = 16 + x % (x % 16 == 0 ? 4000 : 500);
      auto* p = static_cast<unsigned char*>(kmem::malloc(size, M_TEST, M_WAITOK));
      std::memcpy(p, &seq, 8);
      std::uint32_t s32 = static_cast<std::uint32_t>(size);
      std::memcpy(p + 8, &s32, 4);
      for (std::size_t i = 12; i < size; i += 61) p[i] = fill_byte(seq, i);
      while (!r.push(p)) std::this_thread::yield();
    }
    r.push(nullptr);
  });
  std::thread consumer([&] {
    std::uint64_t expect = 0;
    for (;;) {
      void* v = r.pop();
      if (v == nullptr) {
        if (expect == kOps) break;
        std::this_thread::yield();
        continue;
      }
      auto* p = static_cast<unsigned char*>(v);
      std::uint64_t seq;
      std::uint32_t size;
      std::memcpy(&seq, p, 8);
      std::memcpy(&size, p + 8, 4);
      bool ok = seq == expect && usable_size(p) >= size;
      for (std::size_t i = 12; ok && i < size; i += 61) ok = p[i] == fill_byte(seq, i);
      if (!ok) bad.fetch_add(1);
      if (kmem::free(p, M_TEST) != KMEM_OK) bad.fetch_add(1);
      ++expect;
    }
  });
  producer.join();
  consumer.join();
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count();
  MESSAGE("producer/consumer: " << kOps << " blocks in " << secs << " s, " << secs * 1e9 / kOps
                                << " ns per malloc+free pair");
  CHECK(bad.load() == 0);
  type_stats t1{};
  get_type_stats(M_TEST, &t1);
  CHECK(t1.inuse == t0.inuse);
  CHECK(t1.memuse == t0.memuse);
  CHECK(t1.calls - t0.calls == kOps);
  kmem_counters c{};
  get_kmem_counters(&c);
  CHECK(c.depot_exchanges > 0);
}

TEST_CASE("a thread's magazines are drained back when it exits") {
  boot();
  kmem_counters c0{};
  get_kmem_counters(&c0);
  bucket_stats b0{};
  get_bucket_stats(bucket_index_of(64), &b0);
  std::atomic<std::uint64_t> cached_in_thread{0};
  std::thread t([&] {
    std::vector<void*> v;
    for (int i = 0; i < 1000; ++i) v.push_back(kmem::malloc(64, M_TEST, M_WAITOK));
    for (void* p : v) kmem::free(p, M_TEST);
    bucket_stats b{};
    get_bucket_stats(bucket_index_of(64), &b);
    cached_in_thread = b.totalfree;
  });
  t.join();
  kmem_counters c1{};
  get_kmem_counters(&c1);
  CHECK(c1.exited_thread_caches == c0.exited_thread_caches + 1);
  CHECK(c1.live_thread_caches == c0.live_thread_caches);
  bucket_stats b1{};
  get_bucket_stats(bucket_index_of(64), &b1);
  CHECK(b1.total - b1.totalfree == b0.total - b0.totalfree);  // nothing leaked in use
  CHECK(b1.calls - b0.calls == 1000);
  // after exit the blocks are back on their clusters: trim can give them all back
  trim();
  bucket_stats b2{};
  get_bucket_stats(bucket_index_of(64), &b2);
  CHECK(b2.total - b2.totalfree == b0.total - b0.totalfree);
  CHECK(b2.totalfree <= b1.totalfree);
  type_stats ts{};
  get_type_stats(M_TEST, &ts);
  CHECK(ts.calls >= 1000);
}

// After a trim (*before: the source's pages out then), this thread allocates 2000 blocks of
// 8 KiB (2-page clusters), frees them and drains its cache: their clusters are all free.
// Returns the pages out at the peak.
static long free_8k_clusters(kmem_test::counting_source* s, long* before) {
  trim();
  *before = s->pages_out.load();
  std::vector<void*> v;
  for (int i = 0; i < 2000; ++i) v.push_back(kmem::malloc(8192, M_TEST, M_WAITOK));
  const long peak = s->pages_out.load();
  CHECK(peak - *before >= 4000);
  for (void* p : v) kmem::free(p, M_TEST);
  thread_cache_drain();
  return peak;
}

TEST_CASE("all-free clusters above the high-water mark go back after the decay time") {
  auto* s = kmem_test::boot(false);  // default decay: 1000 ms
  REQUIRE(s != nullptr);
  std::thread t([&] {
    long before = 0;
    free_8k_clusters(s, &before);
    // freshly freed: kept (a phase-shaped program will want them again)
    CHECK(s->pages_out.load() > before + 3000);
    usleep(1200 * 1000);
    // the next free past the high-water mark gives the old clusters back
    for (int round = 0; round < 200; ++round) {
      void* p = kmem::malloc(8192, M_TEST, M_WAITOK);
      kmem::free(p, M_TEST);
      thread_cache_drain();
    }
    CHECK(s->pages_out.load() < before + 200);
    bucket_stats b{};
    get_bucket_stats(bucket_index_of(8192), &b);
    CHECK(b.couldfree >= 1900);
  });
  t.join();
}

// Clusters given back above the high-water mark go to the free-run pool, where any bucket
// carves them: blocks that move up through the classes (realloc growth) reuse the pages the
// smaller classes just freed instead of each class keeping its peak for the decay time
// (before the pool: +4000 fresh pages for the 16 KiB blocks below, allocsuite's
// realloc_growth at 1.18x jemalloc's peak RSS).
TEST_CASE("all-free clusters are carved again by other buckets before the source is asked") {
  auto* s = kmem_test::boot(false);  // default decay: 1000 ms
  REQUIRE(s != nullptr);
  std::thread t([&] {
    long before = 0;
    const long peak = free_8k_clusters(s, &before);
    std::vector<void*> v;
    // 4-page clusters, then single-page ones (1 KiB), from the same pages: no overlap.
    for (int i = 0; i < 1000; ++i) {
      auto* p = static_cast<std::uint32_t*>(kmem::malloc(16384, M_TEST, M_WAITOK));
      for (std::size_t k = 0; k < 16384 / 4; k += 256) p[k] = static_cast<std::uint32_t>(i);
      v.push_back(p);
    }
    CHECK(s->pages_out.load() < peak + 200);
    for (int i = 0; i < 1000; ++i)
      for (std::size_t k = 0; k < 16384 / 4; k += 256) REQUIRE(static_cast<std::uint32_t*>(v[i])[k] == std::uint32_t(i));
    for (void* p : v) kmem::free(p, M_TEST);
    thread_cache_drain();
    // A block of a pooled cluster freed again is refused (its page is no cluster now).
    int refused = 0;
    for (int i = 0; i < 1000; i += 50) refused += kmem::free(v[i], M_TEST) != KMEM_OK;
    CHECK(refused == 20);
    v.clear();
    for (int i = 0; i < 12000; ++i) {
      auto* p = static_cast<std::uint32_t*>(kmem::malloc(1024, M_TEST, M_WAITOK));
      p[0] = p[255] = static_cast<std::uint32_t>(i);
      v.push_back(p);
    }
    CHECK(s->pages_out.load() < peak + 200);
    for (int i = 0; i < 12000; ++i) {
      auto* p = static_cast<std::uint32_t*>(v[i]);
      REQUIRE((p[0] == std::uint32_t(i) && p[255] == std::uint32_t(i)));
    }
    for (void* p : v) CHECK(kmem::free(p, M_TEST) == KMEM_OK);
    thread_cache_drain();
    trim();  // the pool goes back with everything else
    CHECK(s->pages_out.load() <= before + 64);
    kmem_counters c{};
    get_kmem_counters(&c);
    CHECK(c.page_cache_pages == 0);
  });
  t.join();
}

// Hoard's cache-scratch (passive false sharing): a thread handed a small block by another
// thread frees it and then allocates its own.  Had the block gone into the new thread's
// magazine, the malloc would return it, in the cache line of the other thread's neighbour
// block (before the fix: q == a every round).  Which block the refill hands out instead
// depends on what earlier tests left free, so only q != a is checked here.
TEST_CASE("a thread's first free does not hand the other thread's block back to it") {
  boot();
  for (int round = 0; round < 20; ++round) {
    auto* a = static_cast<char*>(kmem::malloc(8, M_TEST, M_WAITOK));
    auto* b = static_cast<char*>(kmem::malloc(8, M_TEST, M_WAITOK));
    char* q = nullptr;
    std::thread t([&] {
      CHECK(kmem::free(a, M_TEST) == KMEM_OK);
      q = static_cast<char*>(kmem::malloc(8, M_TEST, M_WAITOK));
    });
    t.join();
    CHECK(q != a);
    CHECK(kmem::free(q, M_TEST) == KMEM_OK);
    CHECK(kmem::free(b, M_TEST) == KMEM_OK);
  }
}

TEST_CASE("fork: every kmem lock taken before fork, child allocates freely") {
  boot();
  std::atomic<bool> stop{false};
  // A busy thread so some lock is likely to be held at the moment of fork.
  std::thread busy([&] {
    std::vector<void*> v;
    while (!stop.load()) {
      for (int i = 0; i < 100; ++i) v.push_back(kmem::malloc(32 + i * 40, M_TEST, M_WAITOK));
      for (void* p : v) kmem::free(p, M_TEST);
      v.clear();
    }
  });
  for (int round = 0; round < 20; ++round) {
    fork_prepare();
    pid_t pid = fork();
    if (pid == 0) {
      fork_child();
      int ok = 1;
      void* v[1000];
      for (int i = 0; i < 1000; ++i) {
        v[i] = kmem::malloc(16 + (i % 300) * 8, M_TEST, M_WAITOK);
        if (v[i] == nullptr) ok = 0;
      }
      for (int i = 0; i < 1000; ++i)
        if (kmem::free(v[i], M_TEST) != KMEM_OK) ok = 0;
      trim();
      kmem_counters c{};
      get_kmem_counters(&c);
      if (c.live_thread_caches != 1) ok = 0;  // the busy thread's cache was drained
      _exit(ok ? 0 : 1);
    }
    fork_parent();
    REQUIRE(pid > 0);
    int status = 0;
    REQUIRE(waitpid(pid, &status, 0) == pid);
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
  }
  stop = true;
  busy.join();
}

// The forking thread's cache is kept across a fork (kmem::fork_child, in VMRT_FORK_TEXT):
// its chains, linked through the blocks themselves, must hand the same blocks back in the
// child and in the parent, last freed first, with nothing taken for a broken chain.
TEST_CASE("fork: the forking thread's chains stay whole on both sides") {
  boot();
  constexpr int kN = 64;
  void* blocks[kN];
  for (void*& b : blocks) b = kmem::malloc(48, M_TEST, M_WAITOK);
  thread_cache_drain();  // the chain holds exactly these blocks
  for (void* b : blocks) REQUIRE(kmem::free(b, M_TEST) == KMEM_OK);
  kmem_counters c0{};
  REQUIRE(get_kmem_counters(&c0));
  // Same blocks back, last freed first, none counted broken; 0 when so.
  auto take_back = [&]() -> int {
    int bad = 0;
    void* got[kN];
    for (int i = 0; i < kN; ++i) {
      got[i] = kmem::malloc(48, M_TEST, M_WAITOK);
      if (got[i] != blocks[kN - 1 - i]) ++bad;
    }
    kmem_counters c{};
    get_kmem_counters(&c);
    if (c.corrupt_detected != c0.corrupt_detected) ++bad;
    for (void* p : got)
      if (kmem::free(p, M_TEST) != KMEM_OK) ++bad;
    return bad;
  };
  fork_prepare();
  pid_t pid = fork();
  if (pid == 0) {
    fork_child();
    _exit(take_back() == 0 ? 0 : 1);
  }
  fork_parent();
  REQUIRE(pid > 0);
  CHECK(take_back() == 0);
  int status = 0;
  REQUIRE(waitpid(pid, &status, 0) == pid);
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
}
