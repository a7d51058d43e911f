// kmem_test.cpp — the 4.4BSD kernel malloc without diagnostics: bucket index,
// size-free free, alignment, M_ZERO, realloc, limits, cheap misuse detection,
// statistics, trim, vmstat -m.
#include <doctest/doctest.h>

#include <cstdint>
#include <algorithm>
#include <bit>
#include <cstring>
#include <pthread.h>
#include <random>
#include <string>
#include <thread>
#include <unistd.h>
#include <vector>

#include "kmem/kmem.h"
#include "kmem/kmem_bucket_index.h"
#include "kmem/kmem_internal.h"
#include "kmem_test_support.h"

using namespace vmrt::kmem;
namespace kmem = vmrt::kmem;
namespace d = vmrt::kmem::detail;

namespace {
kmem_test::counting_source* src() {
  auto* s = kmem_test::boot(false, 0);  // 4.4BSD: give clusters back at once above highwat
  REQUIRE(s != nullptr);
  return s;
}
}  // namespace

TEST_CASE("init once; names; trivial pointers") {
  auto* s = src();
  CHECK(kmem_initialized());
  kmem_config cfg;
  CHECK_FALSE(kmem_init(&s->pub, cfg));
  CHECK_FALSE(owns(nullptr));
  CHECK(usable_size(nullptr) == 0);
  CHECK(std::string(kmem_status_name(KMEM_DOUBLE_FREE)) == "KMEM_DOUBLE_FREE");
  CHECK(std::string(kmem_status_name(KMEM_INVALID)) == "KMEM_INVALID");
  CHECK(std::string(type_name(M_VMMAP)) == "VM map");
  CHECK(std::string(type_name(static_cast<malloc_type>(200))) == "undefined");
  kmem_status st = KMEM_OK;
  CHECK(kmem::malloc(10, static_cast<malloc_type>(M_LAST), M_WAITOK, &st) == nullptr);
  CHECK(st == KMEM_INVALID);
  CHECK(kmem::malloc(SIZE_MAX, M_TEST, M_NOWAIT, &st) == nullptr);
  CHECK(st == KMEM_NOMEM);
  CHECK(malloc_aligned(SIZE_MAX - 4096, 8192, M_TEST, M_NOWAIT, &st) == nullptr);
  CHECK(st == KMEM_NOMEM);
  void* p = kmem::malloc(100, M_TEST, M_WAITOK);
  block_info bi{};
  REQUIRE(get_block_info(static_cast<char*>(p) + 50, &bi));
  CHECK(bi.start == reinterpret_cast<std::uintptr_t>(p));
  CHECK(bi.size == d::bucket_size(d::bucket_index(100)));  // 112 (128: powers of two)
  CHECK(bi.allocated);
  CHECK(bi.type == M_LAST);  // unknown without diagnostics
  kmem::free(p, M_TEST);
  REQUIRE(get_block_info(p, &bi));
  CHECK_FALSE(bi.allocated);
}

TEST_CASE("bucket index: the smallest class >= size, from 16 bytes") {
  src();
  for (std::size_t s = 1; s <= d::kMaxAllocSave; ++s) {
    unsigned i = d::bucket_index(s);
    REQUIRE(i >= d::kMinBucket);
    REQUIRE(i <= d::kMaxBucket);
    CHECK(d::bucket_size(i) >= s);
    if (i > d::kMinBucket) CHECK(d::bucket_size(i - 1) < s);
    if (d::kPow2Classes) CHECK(d::bucket_size(i) == std::bit_ceil(std::max<std::size_t>(s, 16)));
    // the geometry: 16-byte steps to 128, then at most a quarter over the request
    else CHECK(d::bucket_size(i) <= (s <= 128 ? ((s + 15) & ~std::size_t{15}) : s + s / 4 + 16));
  }
  CHECK(d::bucket_index(0) > d::kMaxBucket);
  CHECK(d::bucket_index(d::kMaxAllocSave + 1) > d::kMaxBucket);
  CHECK(d::bucket_index(SIZE_MAX) > d::kMaxBucket);
  CHECK(bucket_count() == d::kMaxBucket + 1);
  CHECK(bucket_index_of(100) == d::bucket_index(100));
}

TEST_CASE("size-free free for every bucket and for large blocks") {
  src();
  for (unsigned i = d::kMinBucket; i <= d::kMaxBucket; ++i) {
    const std::size_t b = d::bucket_size(i);
    for (std::size_t s : {b, b - 1, d::bucket_size(i - 1) + 1}) {  // i - 1 < kMinBucket: size 0 + 1
      if (s == 0 || d::bucket_index(s) != i) continue;
      kmem_status st = KMEM_NOMEM;
      auto* p = static_cast<unsigned char*>(kmem::malloc(s, M_TEST, M_WAITOK, &st));
      REQUIRE(p != nullptr);
      CHECK(st == KMEM_OK);
      CHECK(owns(p));
      CHECK(usable_size(p) == b);
      std::memset(p, 0x5a, b);
      CHECK(kmem::free(p, M_TEST) == KMEM_OK);
      CHECK(usable_size(p) == 0);
    }
  }
  for (std::size_t s : {d::kMaxAllocSave + 1, std::size_t{1} << 20, std::size_t{10} << 20}) {
    auto* p = static_cast<unsigned char*>(kmem::malloc(s, M_TEST, M_WAITOK));
    REQUIRE(p != nullptr);
    // Medium blocks (to 512 KiB) are cut at 256-byte granularity, larger ones whole pages.
    std::size_t unit = s <= d::kMediumMax ? d::kGranSize : 4096;
    CHECK(usable_size(p) == ((s + unit - 1) & ~(unit - 1)));
    p[0] = 1;
    p[s - 1] = 2;
    CHECK(kmem::free(p, M_TEST) == KMEM_OK);
    CHECK(usable_size(p) == 0);
  }
  // size 0 gives a valid minimal block
  void* z = kmem::malloc(0, M_TEST, M_WAITOK);
  REQUIRE(z != nullptr);
  CHECK(usable_size(z) == 16);
  CHECK(kmem::free(z, M_TEST) == KMEM_OK);
  CHECK(kmem::free(nullptr, M_TEST) == KMEM_OK);
}

TEST_CASE("many live blocks of mixed sizes are distinct and keep their contents") {
  src();
  std::mt19937 rng(7);
  std::vector<std::pair<unsigned char*, std::size_t>> live;
  for (int i = 0; i < 20000; ++i) {
    std::size_t s = 1 + rng() % (rng() % 8 == 0 ? 70000 : 600);
    auto* p = static_cast<unsigned char*>(kmem::malloc(s, M_TEST, M_WAITOK));
    REQUIRE(p != nullptr);
    std::memset(p, static_cast<int>(i & 0xff), s);
    live.push_back({p, s});
    if (rng() % 3 == 0) {
      std::size_t k = rng() % live.size();
      auto [q, qs] = live[k];
      unsigned char want = q[0];
      bool ok = true;
      for (std::size_t j = 0; j < qs; ++j) ok &= q[j] == want;
      CHECK(ok);
      CHECK(kmem::free(q, M_TEST) == KMEM_OK);
      live[k] = live.back();
      live.pop_back();
    }
  }
  for (auto [q, qs] : live) CHECK(kmem::free(q, M_TEST) == KMEM_OK);
}

TEST_CASE("alignment: any power of two") {
  src();
  for (std::size_t align = 1; align <= (std::size_t{4} << 20); align <<= 1) {
    for (std::size_t s : {std::size_t{1}, std::size_t{100}, std::size_t{5000}, std::size_t{70000}}) {
      kmem_status st = KMEM_NOMEM;
      void* p = malloc_aligned(s, align, M_TEST, M_WAITOK, &st);
      REQUIRE(p != nullptr);
      CHECK(st == KMEM_OK);
      CHECK(reinterpret_cast<std::uintptr_t>(p) % align == 0);
      CHECK(usable_size(p) >= s);
      std::memset(p, 1, s);
      CHECK(kmem::free(p, M_TEST) == KMEM_OK);
    }
  }
  kmem_status st = KMEM_OK;
  CHECK(malloc_aligned(10, 48, M_TEST, M_WAITOK, &st) == nullptr);
  CHECK(st == KMEM_INVALID);
}

TEST_CASE("M_ZERO zeroes reused and large blocks") {
  src();
  for (std::size_t s : {std::size_t{24}, std::size_t{256}, std::size_t{3000}, std::size_t{40000},
                        std::size_t{300000}}) {
    auto* p = static_cast<unsigned char*>(kmem::malloc(s, M_TEST, M_WAITOK));
    std::memset(p, 0xab, usable_size(p));
    kmem::free(p, M_TEST);
    auto* q = static_cast<unsigned char*>(kmem::malloc(s, M_TEST, M_WAITOK | M_ZERO));
    REQUIRE(q != nullptr);
    bool zero = true;
    for (std::size_t i = 0; i < usable_size(q); ++i) zero &= q[i] == 0;
    CHECK(zero);
    kmem::free(q, M_TEST);
  }
}

TEST_CASE("realloc: in place within the bucket, moves otherwise, old block kept on failure") {
  src();
  auto* p = static_cast<char*>(kmem::malloc(20, M_TEST, M_WAITOK));
  std::strcpy(p, "hello kmem");
  CHECK(kmem::realloc(p, 30, M_TEST, M_WAITOK) == p);
  auto* q = static_cast<char*>(kmem::realloc(p, 5000, M_TEST, M_WAITOK));
  REQUIRE(q != nullptr);
  CHECK(std::strcmp(q, "hello kmem") == 0);
  CHECK(usable_size(q) == 8192);  // growing: the power-of-two class that holds it
  auto* r = static_cast<char*>(kmem::realloc(q, 1 << 20, M_TEST, M_WAITOK));
  CHECK(std::strcmp(r, "hello kmem") == 0);
  r[(1 << 20) - 1] = 'x';
  // a large block shrinks in place
  CHECK(kmem::realloc(r, 300000, M_TEST, M_WAITOK) == r);
  CHECK(usable_size(r) == ((300000 + 4095) & ~4095u));
  auto* s = static_cast<char*>(kmem::realloc(r, 10, M_TEST, M_WAITOK));
  CHECK(std::strncmp(s, "hello kmem", 10) == 0);
  int x = 0;
  kmem_status st = KMEM_OK;
  CHECK(kmem::realloc(&x, 10, M_TEST, M_WAITOK, &st) == nullptr);
  CHECK(st == KMEM_FOREIGN);
  CHECK(kmem::realloc(s + 1, 10, M_TEST, M_WAITOK, &st) == nullptr);
  CHECK(st == KMEM_NOT_BLOCK);
  CHECK(kmem::free(s, M_TEST) == KMEM_OK);
}

TEST_CASE("misuse is refused without diagnostics: foreign, interior, double free") {
  src();
  kmem_counters c0{};
  get_kmem_counters(&c0);
  int on_stack = 0;
  CHECK(kmem::free(&on_stack, M_TEST) == KMEM_FOREIGN);
  CHECK(kmem::free(reinterpret_cast<void*>(0x1000), M_TEST) == KMEM_FOREIGN);
  CHECK_FALSE(owns(&on_stack));

  auto* p = static_cast<char*>(kmem::malloc(64, M_TEST, M_WAITOK));
  CHECK(kmem::free(p + 8, M_TEST) == KMEM_NOT_BLOCK);
  CHECK(kmem::free(p + 16, M_TEST) == KMEM_NOT_BLOCK);  // 16-aligned, not 64-aligned
  CHECK(kmem::free(p + 1, M_TEST) == KMEM_NOT_BLOCK);
  CHECK(kmem::free(p, M_TEST) == KMEM_OK);
  CHECK(kmem::free(p, M_TEST) == KMEM_DOUBLE_FREE);
  // the refused frees corrupted nothing: p comes back exactly once
  std::vector<void*> v;
  int seen = 0;
  for (int i = 0; i < 300; ++i) {
    v.push_back(kmem::malloc(64, M_TEST, M_WAITOK));
    seen += v.back() == p;
  }
  CHECK(seen <= 1);
  std::sort(v.begin(), v.end());
  CHECK(std::adjacent_find(v.begin(), v.end()) == v.end());
  for (void* q : v) CHECK(kmem::free(q, M_TEST) == KMEM_OK);

  auto* big = static_cast<char*>(kmem::malloc(200000, M_TEST, M_WAITOK));
  CHECK(kmem::free(big + 4096, M_TEST) == KMEM_NOT_BLOCK);
  CHECK(kmem::free(big + 64, M_TEST) == KMEM_NOT_BLOCK);
  auto* mid = static_cast<char*>(kmem::malloc(32768, M_TEST, M_WAITOK));
  CHECK(kmem::free(mid + 4096, M_TEST) == KMEM_NOT_BLOCK);  // tail page of a multi-page element
  CHECK(kmem::free(mid, M_TEST) == KMEM_OK);
  CHECK(kmem::free(mid, M_TEST) == KMEM_DOUBLE_FREE);
  CHECK(kmem::free(big, M_TEST) == KMEM_OK);
  CHECK(kmem::free(big, M_TEST) == KMEM_DOUBLE_FREE);
  // a page of the arena kmem never used
  auto* s = src();
  CHECK(kmem::free(reinterpret_cast<void*>(s->pub.base + s->pub.size - 4096), M_TEST) == KMEM_NOT_BLOCK);

  char msg[256];
  CHECK(describe(p, KMEM_DOUBLE_FREE, msg, sizeof msg) > 0);
  CHECK(std::string(msg).find("double free") != std::string::npos);
  CHECK(std::string(msg).find("64-byte bucket") != std::string::npos);
  describe(&on_stack, KMEM_FOREIGN, msg, sizeof msg);
  CHECK(std::string(msg).find("invalid pointer") != std::string::npos);

  kmem_counters c1{};
  get_kmem_counters(&c1);
  CHECK(c1.bad_frees - c0.bad_frees == 12);
}

TEST_CASE("statistics stay consistent after random alloc/free sequences") {
  src();
  type_stats t0{};
  REQUIRE(get_type_stats(M_TEMP, &t0));
  CHECK(t0.calls == 0);  // nobody else uses M_TEMP in this process
  std::mt19937 rng(42);
  std::vector<std::pair<void*, std::size_t>> live;
  std::uint64_t memuse = 0, maxused = 0, calls = 0;
  std::uint32_t mask = 0;
  for (int i = 0; i < 100000; ++i) {
    if (live.empty() || rng() % 100 < 55) {
      std::size_t s = 1 + rng() % (rng() % 50 == 0 ? 200000 : 2000);
      void* p = kmem::malloc(s, M_TEMP, M_WAITOK);
      REQUIRE(p != nullptr);
      std::size_t u = usable_size(p);
      live.push_back({p, u});
      memuse += u;
      ++calls;
      mask |= 1u << d::size_band(u);
      if (memuse > maxused) maxused = memuse;
    } else {
      std::size_t k = rng() % live.size();
      memuse -= live[k].second;
      CHECK(kmem::free(live[k].first, M_TEMP) == KMEM_OK);
      live[k] = live.back();
      live.pop_back();
    }
    if (i % 25000 == 0) trim();  // flushes this thread's deltas mid-run
  }
  type_stats t{};
  get_type_stats(M_TEMP, &t);
  CHECK(t.inuse == live.size());
  CHECK(t.memuse == memuse);
  CHECK(t.calls == calls);
  CHECK(t.maxused == maxused);
  CHECK(t.size_mask == mask);
  for (auto [p, u] : live) kmem::free(p, M_TEMP);
  get_type_stats(M_TEMP, &t);
  CHECK(t.inuse == 0);
  CHECK(t.memuse == 0);
  CHECK(t.maxused == maxused);
}

TEST_CASE("bucket statistics: in use = total - free") {
  src();
  bucket_stats b0{};
  const std::size_t b512 = bucket_index_of(500);  // the 512-byte bucket
  REQUIRE(get_bucket_stats(b512, &b0));
  std::vector<void*> v;
  for (int i = 0; i < 1000; ++i) v.push_back(kmem::malloc(500, M_TEST, M_WAITOK));
  bucket_stats b1{};
  get_bucket_stats(b512, &b1);
  CHECK(b1.size == 512);
  CHECK((b1.total - b1.totalfree) - (b0.total - b0.totalfree) == 1000);
  CHECK(b1.calls - b0.calls == 1000);
  CHECK(b1.elmpercl == 8);
  for (void* p : v) kmem::free(p, M_TEST);
  bucket_stats b2{};
  get_bucket_stats(b512, &b2);
  CHECK(b2.total - b2.totalfree == b0.total - b0.totalfree);
}

TEST_CASE("per-type limits: M_NOWAIT fails, M_WAITOK sleeps until a free") {
  src();
  set_limit(M_DEVBUF, 4 * 4096);
  void* a[4];
  for (auto& p : a) {
    p = kmem::malloc(4096, M_DEVBUF, M_WAITOK);
    REQUIRE(p != nullptr);
  }
  kmem_status st = KMEM_OK;
  CHECK(kmem::malloc(4096, M_DEVBUF, M_NOWAIT, &st) == nullptr);
  CHECK(st == KMEM_LIMIT);
  CHECK(kmem::malloc(100000, M_DEVBUF, M_WAITOK, &st) == nullptr);  // can never fit
  CHECK(st == KMEM_LIMIT);
  type_stats t{};
  get_type_stats(M_DEVBUF, &t);
  CHECK(t.limit == 4 * 4096);
  CHECK(t.limblocks == 2);
  CHECK(t.memuse == 4 * 4096);

  std::atomic<bool> done{false};
  void* got = nullptr;
  std::thread waiter([&] {
    got = kmem::malloc(4096, M_DEVBUF, M_WAITOK);
    done = true;
  });
  usleep(100000);
  CHECK_FALSE(done.load());
  CHECK(kmem::free(a[0], M_DEVBUF) == KMEM_OK);
  waiter.join();
  CHECK(done.load());
  CHECK(got != nullptr);
  get_type_stats(M_DEVBUF, &t);
  CHECK(t.limblocks == 3);
  CHECK(t.memuse == 4 * 4096);
  CHECK(t.maxused == 4 * 4096);
  kmem::free(got, M_DEVBUF);
  for (int i = 1; i < 4; ++i) kmem::free(a[i], M_DEVBUF);
  set_limit(M_DEVBUF, 0);
  get_type_stats(M_DEVBUF, &t);
  CHECK(t.memuse == 0);
  CHECK(t.inuse == 0);
  void* x = kmem::malloc(64 * 4096, M_DEVBUF, M_NOWAIT);
  CHECK(x != nullptr);
  kmem::free(x, M_DEVBUF);
}

TEST_CASE("trim gives free memory back to the page source") {
  auto* s = src();
  trim();
  long before = s->pages_out.load();
  std::vector<void*> v;
  for (int i = 0; i < 20000; ++i) v.push_back(kmem::malloc(256, M_TEST, M_WAITOK));
  for (int i = 0; i < 300; ++i) v.push_back(kmem::malloc(30000, M_TEST, M_WAITOK));
  for (int i = 0; i < 20; ++i) v.push_back(kmem::malloc(500000, M_TEST, M_WAITOK));
  long peak = s->pages_out.load();
  CHECK(peak - before >= (20000 * 256 + 300 * 32768 + 20 * 500000) / 4096);
  for (void* p : v) kmem::free(p, M_TEST);
  // The high-water marks already gave most of it back (all but one empty medium span,
  // kept for the next medium request)...
  long after_free = s->pages_out.load();
  CHECK(after_free - before < (peak - before) / 4 + static_cast<long>(d::kSpanPages));
  // ...and trim gives back everything free.
  std::size_t bytes = trim();
  long after_trim = s->pages_out.load();
  CHECK(after_trim <= before);
  CHECK(static_cast<long>(bytes / 4096) == after_free - after_trim);
  kmem_counters c{};
  get_kmem_counters(&c);
  CHECK(static_cast<long>(c.pages_from_source) == after_trim);
  CHECK(c.page_cache_pages == 0);
}

// A page taken for a new cluster is written at once; the pages of a fresh batch go out in
// address order, so kmem populates them kPopulateAhead (8) at a time: a call where each page
// was a fault of its own.
TEST_CASE("pages for new clusters are populated ahead, a call per eight") {
  auto* s = src();
  trim();
  const std::size_t b = bucket_index_of(2048);
  bucket_stats b0{}, b1{};
  REQUIRE(get_bucket_stats(b, &b0));
  const long calls = s->populate_calls.load(), pages = s->populated_pages.load();
  std::vector<void*> v;
  for (int i = 0; i < 160; ++i) v.push_back(kmem::malloc(2048, M_TEST, M_WAITOK));  // 2 a page
  REQUIRE(get_bucket_stats(b, &b1));
  const long clusters = static_cast<long>(b1.total - b0.total) / 2;  // new one-page clusters
  const long c = s->populate_calls.load() - calls, p = s->populated_pages.load() - pages;
  MESSAGE("populate calls " << c << " for " << p << " pages, " << clusters << " new clusters");
  CHECK(clusters >= 80);
  CHECK(p >= clusters);      // every new cluster's page (it came from fresh batches)
  CHECK(p <= clusters + 8);  // and no more, but for the last call's run ahead
  CHECK(c <= p / 8 + 2);     // eight a call (a new batch of 64 starts a new run)
  for (void* q : v) kmem::free(q, M_TEST);
  trim();
}

// A multi-page cluster's first page is written when it is made (its first element carved),
// the rest as its elements go out: that page alone is populated.
TEST_CASE("a new multi-page cluster has its first page populated, and only that") {
  auto* s = src();
  trim();
  unsigned indx = 0;  // the smallest class whose clusters span pages
  for (unsigned i = d::kMinBucket; i <= d::kMaxBucket && indx == 0; ++i)
    if (d::pages_per_cluster(i) > 1 && d::elm_per_cluster(i) > 1) indx = i;
  REQUIRE(indx != 0);
  const std::size_t size = d::bucket_size(indx);
  CAPTURE(size);
  const std::uint32_t per = d::elm_per_cluster(indx);
  bucket_stats b0{}, b1{};
  REQUIRE(get_bucket_stats(indx, &b0));
  kmem::free(kmem::malloc(size, M_TEST, M_WAITOK), M_TEST);  // the first chunk (populated whole) is taken
  const long pages = s->populated_pages.load();
  std::vector<void*> v;
  for (std::uint32_t i = 0; i < 20 * per; ++i) v.push_back(kmem::malloc(size, M_TEST, M_WAITOK));
  REQUIRE(get_bucket_stats(indx, &b1));
  const long clusters = static_cast<long>((b1.total - b0.total) / per);
  const long p = s->populated_pages.load() - pages;
  MESSAGE(clusters << " new clusters of " << d::pages_per_cluster(indx) << " pages: " << p << " pages populated");
  CHECK(clusters >= 20);
  CHECK(p <= clusters);      // one page a cluster at most (none for one reused from the pool)
  CHECK(p >= clusters / 2);  // the fresh ones (all of them here, but for what earlier cases left)
  for (void* q : v) kmem::free(q, M_TEST);
  trim();
}

namespace {
// The vmstat -m report, as text.
std::string vmstat_m_text() {
  int fds[2];
  REQUIRE(pipe(fds) == 0);
  report_vmstat_m(fds[1]);
  close(fds[1]);
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = read(fds[0], buf, sizeof buf)) > 0) out.append(buf, static_cast<std::size_t>(n));
  close(fds[0]);
  return out;
}
}  // namespace

TEST_CASE("vmstat -m prints the three 4.4BSD tables with the right counts") {
  src();
  std::vector<void*> v;
  for (int i = 0; i < 7; ++i) v.push_back(kmem::malloc(1000, M_VMMAP, M_WAITOK));
  std::string out = vmstat_m_text();
  MESSAGE(out);
  CHECK(out.find("Memory statistics by bucket size") != std::string::npos);
  CHECK(out.find("    Size   In Use   Free   Requests  HighWater  Couldfree") != std::string::npos);
  CHECK(out.find("Memory usage type by bucket size") != std::string::npos);
  CHECK(out.find("Memory statistics by type") != std::string::npos);
  CHECK(out.find("Memory Totals:") != std::string::npos);
  // the VM map line: 7 in use, 7 requests, 1024-byte blocks (7K), size 1024
  std::size_t at = out.find("        VM map");
  REQUIRE(at != std::string::npos);
  std::string line = out.substr(at, out.find('\n', at) - at);
  CHECK(line == "        VM map      7     7K      7K     0K        7    0     0  1024");
  // the 1024 bucket lists VM map among its types
  std::size_t t = out.find("\n    1024  ", out.find("Memory usage type by bucket size"));
  REQUIRE(t != std::string::npos);
  CHECK(out.substr(t, out.find('\n', t + 1) - t).find("VM map") != std::string::npos);
  for (void* p : v) kmem::free(p, M_VMMAP);
}

TEST_CASE("vmstat -m keeps a six-digit InUse apart from the type name") {
  src();
  std::vector<void*> v;
  for (int i = 0; i < 123456; ++i) v.push_back(kmem::malloc(16, M_TEMP, M_WAITOK));
  std::string out = vmstat_m_text();
  std::size_t at = out.find("Memory statistics by type");
  REQUIRE(at != std::string::npos);
  std::string name = type_name(M_TEMP);
  CHECK(out.find(name + " 123456 ", at) != std::string::npos);  // was "temp123456"
  for (void* p : v) kmem::free(p, M_TEMP);
}
