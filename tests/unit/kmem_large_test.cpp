// kmem_large_test.cpp — large blocks: the cache of freed large blocks (kept mapped, decaying),
// and growth without copying through a page source that can resize.
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <thread>
#include <unistd.h>

#include "kmem/kmem.h"
#include "tests/unit/kmem_test_support.h"

using namespace vmrt::kmem;

namespace {
constexpr std::size_t kBig = 1 << 20;  // 256 pages: a large block

// A freshly booted kmem with a 100 ms decay (the default is 1 s).
kmem_test::counting_source* boot() { return kmem_test::boot(false, 100); }
}  // namespace

TEST_CASE("a freed large block is reused without going back to the page source") {
  auto* src = boot();
  REQUIRE(src != nullptr);
  trim();
  char* a = static_cast<char*>(malloc(kBig, M_TEST, M_NOWAIT));
  REQUIRE(a != nullptr);
  std::memset(a, 0x33, kBig);
  long calls = src->alloc_calls.load(), frees = src->free_calls.load();
  REQUIRE(free(a, M_TEST) == KMEM_OK);
  CHECK(src->free_calls.load() == frees);  // kept: still mapped, still counted as RSS
  char* b = static_cast<char*>(malloc(kBig, M_TEST, M_NOWAIT));
  CHECK(b == a);                              // the cached block came back
  CHECK(src->alloc_calls.load() == calls);    // without asking the page source
  // A cached block is dirty: M_ZERO clears it.
  REQUIRE(free(b, M_TEST) == KMEM_OK);
  char* z = static_cast<char*>(malloc(kBig, M_TEST, M_NOWAIT | M_ZERO));
  REQUIRE(z == a);
  bool zero = true;
  for (std::size_t i = 0; i < kBig; i += 511) zero = zero && z[i] == 0;
  CHECK(zero);
  REQUIRE(free(z, M_TEST) == KMEM_OK);
  // While cached it is still a freed block: freeing it again is a double free.
  CHECK(free(z, M_TEST) == KMEM_DOUBLE_FREE);
  CHECK(usable_size(z) == 0);
  // trim gives the cache back.
  long out = src->pages_out.load();
  CHECK(trim() >= kBig);
  CHECK(src->pages_out.load() <= out - static_cast<long>(kBig / 4096));
}

TEST_CASE("the large cache decays, is bounded, and does not split huge blocks for small requests") {
  auto* src = boot();
  REQUIRE(src != nullptr);
  trim();
  long out0 = src->pages_out.load();
  // Bounded: 160 freed blocks of 1 MiB cannot all stay (128 MiB at most, merged or not).
  void* blocks[160];
  for (auto& p : blocks) REQUIRE((p = malloc(kBig, M_TEST, M_NOWAIT)) != nullptr);
  for (auto& p : blocks) REQUIRE(free(p, M_TEST) == KMEM_OK);
  long kept = src->pages_out.load() - out0;
  CHECK(kept <= 128 * static_cast<long>(kBig / 4096));
  CHECK(kept > 0);
  // A request much smaller than the cached blocks does not take one (no huge split).
  long calls = src->alloc_calls.load();
  long kept_before = src->pages_out.load();
  // (600 KiB: past the medium blocks, which come from spans: kmem_medium.cpp.)
  char* small = static_cast<char*>(malloc(600 * 1024, M_TEST, M_NOWAIT));
  REQUIRE(small != nullptr);
  CHECK(src->alloc_calls.load() == calls + 1);                   // from the page source
  CHECK(src->pages_out.load() == kept_before + (600 * 1024) / 4096);  // no cached block split
  REQUIRE(free(small, M_TEST) == KMEM_OK);
  // Decay: after the decay time, the next large free/malloc gives the old ones back.
  usleep(300 * 1000);
  void* again = malloc(kBig * 3, M_TEST, M_NOWAIT);  // no cached block fits 3 MiB
  REQUIRE(again != nullptr);
  CHECK(src->pages_out.load() - out0 <= static_cast<long>(3 * kBig / 4096) + 64);
  REQUIRE(free(again, M_TEST) == KMEM_OK);
  trim();
}

TEST_CASE("a memory shortage of the page source gives back what kmem keeps for reuse") {
  // Under paging the freed memory kmem keeps for the decay time is memory the pageout
  // daemon would write to swap as if it held data (python building a dict under
  // --physmem 64M: the dict's old tables, 15 MB, paged out and in).  A move of the
  // source's shortage count gives it back at once, and for a decay time after it nothing
  // freed is kept.
  auto* src = boot();
  REQUIRE(src != nullptr);
  trim();
  char* a = static_cast<char*>(malloc(kBig, M_TEST, M_NOWAIT));
  char* b = static_cast<char*>(malloc(kBig, M_TEST, M_NOWAIT));
  char* c = static_cast<char*>(malloc(kBig, M_TEST, M_NOWAIT));
  REQUIRE((a != nullptr && b != nullptr && c != nullptr));
  std::memset(a, 1, kBig);
  std::memset(b, 2, kBig);
  std::memset(c, 3, kBig);
  kmem_counters k0{};
  REQUIRE(get_kmem_counters(&k0));
  const long out0 = src->pages_out.load();
  REQUIRE(free(a, M_TEST) == KMEM_OK);
  CHECK(src->pages_out.load() == out0);  // cached, as without a shortage
  src->shortages.fetch_add(1);
  REQUIRE(free(b, M_TEST) == KMEM_OK);   // the move is seen: a's run and b go back
  CHECK(src->pages_out.load() <= out0 - 2 * long{kBig >> 12});
  kmem_counters k1{};
  REQUIRE(get_kmem_counters(&k1));
  CHECK(k1.shortage_releases == k0.shortage_releases + 1);
  CHECK(k1.shortage_pages >= k0.shortage_pages + (kBig >> 12));
  CHECK(k1.large_cache_pages == 0);
  // Within the decay time after the move nothing is kept either.
  const long out1 = src->pages_out.load();
  REQUIRE(free(c, M_TEST) == KMEM_OK);
  CHECK(src->pages_out.load() == out1 - long{kBig >> 12});
  // Once a decay time has passed with no move, freed blocks are cached again.
  std::this_thread::sleep_for(std::chrono::milliseconds(250));
  char* d = static_cast<char*>(malloc(kBig, M_TEST, M_NOWAIT));
  REQUIRE(d != nullptr);
  d[0] = 4;
  const long out2 = src->pages_out.load();
  REQUIRE(free(d, M_TEST) == KMEM_OK);
  CHECK(src->pages_out.load() == out2);
  trim();
}

TEST_CASE("big blocks of varying sizes freed and allocated in a loop settle on one cached run") {
  auto* src = boot();
  REQUIRE(src != nullptr);
  trim();
  // The bench/medium_bench bigloop shape: 5..25 MiB, a few pages touched, freed.  Freed runs
  // that touch merge and later requests are cut from the merged run, so after the first
  // few the page source is never asked again, whatever the size.
  std::uint64_t r = 12345;
  auto next_size = [&] {
    r = r * 6364136223846793005ull + 1442695040888963407ull;
    return static_cast<std::size_t>(5 + (r >> 33) % 21) << 20;
  };
  for (int i = 0; i < 8; ++i) {  // warm up: reach the biggest size once
    std::size_t sz = i == 0 ? std::size_t{25} << 20 : next_size();
    char* p = static_cast<char*>(malloc(sz, M_TEST, M_NOWAIT));
    REQUIRE(p != nullptr);
    p[0] = 1;
    p[sz - 1] = 2;
    REQUIRE(free(p, M_TEST) == KMEM_OK);
  }
  long calls = src->alloc_calls.load(), frees = src->free_calls.load();
  for (int i = 0; i < 200; ++i) {
    std::size_t sz = next_size();
    char* p = static_cast<char*>(malloc(sz, M_TEST, M_NOWAIT));
    REQUIRE(p != nullptr);
    p[sz / 2] = 3;
    p[sz - 1] = 4;
    CHECK(usable_size(p) >= sz);
    REQUIRE(free(p, M_TEST) == KMEM_OK);
  }
  CHECK(src->alloc_calls.load() == calls);
  CHECK(src->free_calls.load() == frees);
  // A block cut from a merged run is still a block: a second free of it is a double free.
  char* p = static_cast<char*>(malloc(std::size_t{6} << 20, M_TEST, M_NOWAIT));
  REQUIRE(p != nullptr);
  REQUIRE(free(p, M_TEST) == KMEM_OK);
  CHECK(free(p, M_TEST) == KMEM_DOUBLE_FREE);
  trim();
}

TEST_CASE("several live big blocks replaced in turn keep reusing the cached runs") {
  auto* src = boot();
  REQUIRE(src != nullptr);
  trim();
  // allocsuite's large_blocks: four live blocks of 5..25 MiB, the oldest freed and replaced.
  // Each request is cut from a cached run and leaves a remainder; remainders under 1 MiB
  // once never merged with the runs freed next to them, filled the cache's 16 slots, and
  // every free then evicted a big run: a third of the requests went to the page source
  // (and the evicted runs' pages back to the host).
  std::uint64_t r = 91;
  auto next_size = [&] {
    r = r * 6364136223846793005ull + 1442695040888963407ull;
    return (std::size_t{5} << 20) + static_cast<std::size_t>((r >> 33) % (std::size_t{20} << 20));
  };
  constexpr int kLive = 4;
  char* live[kLive] = {};
  std::size_t len[kLive] = {};
  auto step = [&](int i) {
    int s = i % kLive;
    if (live[s] != nullptr) {
      CHECK(live[s][len[s] - 1] == static_cast<char>(len[s]));
      REQUIRE(free(live[s], M_TEST) == KMEM_OK);
    }
    len[s] = next_size();
    live[s] = static_cast<char*>(malloc(len[s], M_TEST, M_NOWAIT));
    REQUIRE(live[s] != nullptr);
    live[s][0] = 1;
    live[s][len[s] - 1] = static_cast<char>(len[s]);
  };
  for (int i = 0; i < 40; ++i) step(i);  // warm up: the cache fills
  long calls = src->alloc_calls.load(), frees = src->free_calls.load();
  for (int i = 40; i < 440; ++i) step(i);
  CHECK(src->alloc_calls.load() - calls <= 8);
  CHECK(src->free_calls.load() - frees <= 8);
  for (auto* p : live) REQUIRE(free(p, M_TEST) == KMEM_OK);
  trim();
}

TEST_CASE("a cached run in constant use still gives its pages back after the decay time") {
  auto* src = boot();
  REQUIRE(src != nullptr);
  trim();
  // Two live blocks cut in turn from the head of a big cached run, each freed back into it:
  // the run is in use at every step, and never wholly handed out.  Pages a block
  // touched stay resident in the cached run once it is freed; a merged run that took the
  // stamp of its newest part would never age, and a loop like this would hold a cache full
  // of pages touched once (up to 128 MiB) for as long as it ran.
  char* big = static_cast<char*>(malloc(std::size_t{64} << 20, M_TEST, M_NOWAIT));
  REQUIRE(big != nullptr);
  REQUIRE(free(big, M_TEST) == KMEM_OK);  // one cached run, far bigger than the blocks below
  long frees = src->free_calls.load();
  char* live[2] = {};
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; std::chrono::steady_clock::now() - t0 < std::chrono::milliseconds(400); ++i) {
    int s = i % 2;
    if (live[s] != nullptr) REQUIRE(free(live[s], M_TEST) == KMEM_OK);
    std::size_t sz = (std::size_t{4} + static_cast<std::size_t>(i % 3)) << 20;
    live[s] = static_cast<char*>(malloc(sz, M_TEST, M_NOWAIT));
    REQUIRE(live[s] != nullptr);
    live[s][sz / 2] = 1;
    usleep(1000);
  }
  CHECK(src->free_calls.load() > frees);  // the decay (100 ms) gave runs back meanwhile
  for (auto* p : live) REQUIRE(free(p, M_TEST) == KMEM_OK);
  trim();
}

TEST_CASE("the tail cut off a shrinking big block is cached and serves the next request") {
  auto* src = boot();
  REQUIRE(src != nullptr);
  trim();
  char* p = static_cast<char*>(malloc(std::size_t{8} << 20, M_TEST, M_NOWAIT));
  REQUIRE(p != nullptr);
  long frees = src->free_calls.load();
  char* q = static_cast<char*>(realloc(p, std::size_t{2} << 20, M_TEST, M_NOWAIT));
  REQUIRE(q == p);
  CHECK(src->free_calls.load() == frees);  // the 6 MiB tail stayed cached
  long calls = src->alloc_calls.load();
  char* t = static_cast<char*>(malloc(std::size_t{5} << 20, M_TEST, M_NOWAIT));
  CHECK(t == p + (std::size_t{2} << 20));  // cut from the cached tail
  CHECK(src->alloc_calls.load() == calls);
  REQUIRE(free(t, M_TEST) == KMEM_OK);
  REQUIRE(free(q, M_TEST) == KMEM_OK);
  trim();
}

namespace {
std::atomic<long> g_resize_calls{0};
void* refusing_resize(void*, void*, std::size_t, std::size_t) {
  ++g_resize_calls;
  return nullptr;
}
}  // namespace

TEST_CASE("a big block growing moves into a cached run before asking the page source") {
  auto* src = boot();
  REQUIRE(src != nullptr);
  trim();
  src->pub.resize_pages = refusing_resize;  // counts the source resizes kmem asks for
  char* cached = static_cast<char*>(malloc(std::size_t{12} << 20, M_TEST, M_NOWAIT));
  char* p = static_cast<char*>(malloc(std::size_t{2} << 20, M_TEST, M_NOWAIT));
  char* guard = static_cast<char*>(malloc(std::size_t{1} << 20, M_TEST, M_NOWAIT));  // nothing free after p
  REQUIRE((cached != nullptr && p != nullptr && guard != nullptr));
  std::memset(cached, 0x5a, std::size_t{12} << 20);
  std::memset(p, 0x11, std::size_t{2} << 20);
  REQUIRE(free(cached, M_TEST) == KMEM_OK);  // a dirty cached run
  long calls = src->alloc_calls.load(), resizes = g_resize_calls.load();
  char* q = static_cast<char*>(realloc(p, std::size_t{8} << 20, M_TEST, M_NOWAIT | M_ZERO));
  REQUIRE(q != nullptr);
  CHECK(q == cached);
  CHECK(g_resize_calls.load() == resizes);  // no source resize, no source allocation
  CHECK(src->alloc_calls.load() == calls);
  bool kept = true, zero = true;
  for (std::size_t i = 0; i < (std::size_t{2} << 20); i += 4093) kept = kept && q[i] == 0x11;
  for (std::size_t i = std::size_t{2} << 20; i < usable_size(q); i += 4093) zero = zero && q[i] == 0;
  CHECK(kept);
  CHECK(zero);
  CHECK(free(p, M_TEST) == KMEM_DOUBLE_FREE);  // the old block is a freed (cached) block
  src->pub.resize_pages = nullptr;
  REQUIRE(free(q, M_TEST) == KMEM_OK);
  REQUIRE(free(guard, M_TEST) == KMEM_OK);
  trim();
}

#include <sys/mman.h>

#include "kmem/kmem_internal.h"

// A cut of a cached run writes no page record for what stays cached: a loop of big blocks
// walking the heap touched a page of kmemusage per megabyte that way.  Checked with
// mincore on the record's page (the test arena's kmemusage pages are touched only by kmem).
TEST_CASE("cutting a block from a cached run touches no page record of the rest") {
  auto* src = boot();
  REQUIRE(src != nullptr);
  trim();
  constexpr std::size_t kRun = std::size_t{64} << 20;  // 16384 pages: records over 64 pages
  char* a = static_cast<char*>(malloc(kRun, M_TEST, M_NOWAIT));
  REQUIRE(a != nullptr);
  a[0] = 1;
  REQUIRE(free(a, M_TEST) == KMEM_OK);  // cached whole
  // The page of records where the rest will begin (32 MiB in) covers 1 MiB inside the
  // cached run, whose records nobody needs: earlier cases may have touched it, so it is
  // dropped (it reads as zeros, KU_UNUSED) and must stay dropped through the cut.
  using namespace vmrt::kmem::detail;
  const kmemusage* rest = usage_of(reinterpret_cast<std::uintptr_t>(a) + kRun / 2);
  const std::uintptr_t page = reinterpret_cast<std::uintptr_t>(rest) & ~std::uintptr_t{4095};
  REQUIRE(madvise(reinterpret_cast<void*>(page), 4096, MADV_DONTNEED) == 0);
  char* b = static_cast<char*>(malloc(kRun / 2, M_TEST, M_NOWAIT));
  REQUIRE(b == a);
  unsigned char in = 0;
  REQUIRE(mincore(reinterpret_cast<void*>(page), 4096, &in) == 0);
  CHECK((in & 1) == 0);
  // The rest is still cached and still refused as a block: a free of it is an error.
  CHECK(free(b + kRun / 2, M_TEST) != KMEM_OK);
  REQUIRE(free(b, M_TEST) == KMEM_OK);
  trim();
}

namespace {
// allocsuite's large_blocks loop: `live` blocks of [lo, lo + span) bytes, the oldest freed
// and replaced, `steps` times; each new block gets `touch` (0: every page written).
struct block_loop {
  static constexpr int kMaxLive = 4;
  char* live[kMaxLive] = {};
  std::size_t len[kMaxLive] = {};
  std::uint64_t r = 91;
  void run(int live_n, std::size_t lo, std::size_t span, int steps, int touch) {
    for (int i = 0; i < steps; ++i) {
      int s = i % live_n;
      if (live[s] != nullptr) REQUIRE(free(live[s], M_TEST) == KMEM_OK);
      r = r * 6364136223846793005ull + 1442695040888963407ull;
      len[s] = lo + static_cast<std::size_t>((r >> 33) % span);
      live[s] = static_cast<char*>(malloc(len[s], M_TEST, M_NOWAIT));
      REQUIRE(live[s] != nullptr);
      if (touch == 0) std::memset(live[s], 1, len[s]);
      for (int k = 0; k < touch; ++k) live[s][(len[s] - 1) / 3 * static_cast<std::size_t>(k % 4)] = 1;
    }
  }
  void release() {
    for (char*& p : live) {
      if (p != nullptr) REQUIRE(free(p, M_TEST) == KMEM_OK);
      p = nullptr;
    }
    trim();
  }
};

kmem_counters counters() {
  kmem_counters c{};
  REQUIRE(get_kmem_counters(&c));
  return c;
}
}  // namespace

// Blocks cut from cached runs and touched in a few pages each leave those pages resident in
// the runs once freed: before the sweep, 400 blocks of 5-25 MiB held ~1,600 such pages
// (6 MiB) until the decay time.  The loop takes a few milliseconds, far below the 100 ms
// decay, so the bound holds by the sweep alone.
TEST_CASE("a loop of big blocks touched sparsely does not pile up resident pages in the cached runs") {
  auto* src = boot();
  REQUIRE(src != nullptr);
  trim();
  block_loop loop;
  loop.run(4, std::size_t{5} << 20, std::size_t{20} << 20, 40, 4);  // the cache fills
  const long base = kmem_test::resident(src);
  const kmem_counters before = counters();
  const long frees = src->free_calls.load();
  loop.run(4, std::size_t{5} << 20, std::size_t{20} << 20, 400, 4);
  const kmem_counters after = counters();
  CHECK(after.large_cache_sweeps > before.large_cache_sweeps);
  CHECK(after.large_cache_discarded > before.large_cache_discarded);
  // Between two sweeps 512 MiB of freed blocks enter the cache: at most 102 (of 5 MiB, the
  // smallest) of 4 pages each, and the live blocks hold 16 (without the sweep: ~1,500).
  const long grew = kmem_test::resident(src) - base;
  MESSAGE("resident pages grew by " << grew);
  CHECK(grew < 102 * 4 + 16);
  // Given back in place: the runs stay cached (no extra trips to the page source).
  CHECK(src->free_calls.load() - frees <= 8);
  loop.release();
}

// A run the program wrote whole is dense: its pages are what the next block cut from it
// reuses without a fault, and the sweep leaves them.
TEST_CASE("the sweep of the large cache leaves runs the program filled") {
  auto* src = boot();
  REQUIRE(src != nullptr);
  trim();
  block_loop loop;
  const kmem_counters before = counters();
  const long discards = src->discard_calls.load();
  loop.run(2, std::size_t{4} << 20, std::size_t{4} << 20, 200, 0);  // ~1.2 GiB freed
  const kmem_counters after = counters();
  CHECK(after.large_cache_sweeps > before.large_cache_sweeps);
  CHECK(src->discard_calls.load() == discards);
  CHECK(after.large_cache_discarded == before.large_cache_discarded);
  loop.release();
}
