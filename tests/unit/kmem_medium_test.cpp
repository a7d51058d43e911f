// kmem_medium_test.cpp — medium blocks (over MAXALLOCSAVE up to kMediumMax) packed end to end
// in spans (kmem_medium.cpp): neighbours share pages, free needs no size and refuses interior
// pointers and second frees, realloc grows in place, every byte survives a random mix of
// operations checked against a model, and all spans go back.
#include <doctest/doctest.h>

#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include "kmem/kmem.h"
#include "kmem/kmem_internal.h"
#include "tests/unit/kmem_test_support.h"

using namespace vmrt::kmem;
namespace d = vmrt::kmem::detail;

namespace {

kmem_test::counting_source* boot() { return kmem_test::boot(false, 100); }

std::size_t granular(std::size_t n) { return (n + d::kGranSize - 1) & ~(d::kGranSize - 1); }

// Fill every 64th byte and the last with a pattern of the block's id; check it.
void fill(unsigned char* p, std::size_t n, unsigned id) {
  for (std::size_t i = 0; i < n; i += 64) p[i] = static_cast<unsigned char>(id + i / 64);
  p[n - 1] = static_cast<unsigned char>(id ^ 0xa5);
}
bool intact(const unsigned char* p, std::size_t n, unsigned id) {
  for (std::size_t i = 0; i < n - 1; i += 64)
    if (p[i] != static_cast<unsigned char>(id + i / 64)) return false;
  return p[n - 1] == static_cast<unsigned char>(id ^ 0xa5);
}

}  // namespace

TEST_CASE("medium blocks are packed end to end: the next block starts in the page the last one ends in") {
  REQUIRE(boot() != nullptr);
  trim();
  constexpr std::size_t n = 100000;  // 24.4 pages: not a page multiple
  auto* a = static_cast<char*>(malloc(n, M_TEST, M_NOWAIT));
  auto* b = static_cast<char*>(malloc(n, M_TEST, M_NOWAIT));
  REQUIRE(a != nullptr);
  REQUIRE(b != nullptr);
  CHECK(b == a + granular(n));
  CHECK(usable_size(a) == granular(n));
  CHECK(((reinterpret_cast<std::uintptr_t>(a + n - 1) ^ reinterpret_cast<std::uintptr_t>(b)) >> d::kPageShift) == 0);
  block_info bi{};
  REQUIRE(get_block_info(b + 5000, &bi));
  CHECK(bi.start == reinterpret_cast<std::uintptr_t>(b));
  CHECK(bi.allocated);
  REQUIRE(get_block_info(a + n - 1, &bi));  // in b's first page, before b: a's
  CHECK(bi.start == reinterpret_cast<std::uintptr_t>(a));
  CHECK(free(a, M_TEST) == KMEM_OK);
  CHECK(free(b, M_TEST) == KMEM_OK);
}

TEST_CASE("free of a medium block: interior pointers refused, a second free is a double free") {
  REQUIRE(boot() != nullptr);
  auto* a = static_cast<char*>(malloc(70000, M_TEST, M_NOWAIT));
  auto* b = static_cast<char*>(malloc(70000, M_TEST, M_NOWAIT));
  REQUIRE(a != nullptr);
  REQUIRE(b != nullptr);
  CHECK(free(a + 256, M_TEST) == KMEM_NOT_BLOCK);   // a granule inside
  CHECK(free(a + 4096, M_TEST) == KMEM_NOT_BLOCK);  // a page inside
  CHECK(free(b - 256, M_TEST) == KMEM_NOT_BLOCK);   // a's tail, in b's first page
  CHECK(free(a, M_TEST) == KMEM_OK);
  CHECK(free(a, M_TEST) == KMEM_DOUBLE_FREE);
  CHECK(usable_size(a) == 0);
  CHECK(free(b, M_TEST) == KMEM_OK);
}

TEST_CASE("calloc of reused medium memory reads zeros; a fresh span is not cleared by hand") {
  REQUIRE(boot() != nullptr);
  auto* a = static_cast<unsigned char*>(malloc(200000, M_TEST, M_NOWAIT));
  REQUIRE(a != nullptr);
  std::memset(a, 0x77, 200000);
  CHECK(free(a, M_TEST) == KMEM_OK);
  auto* z = static_cast<unsigned char*>(malloc(150000, M_TEST, M_NOWAIT | M_ZERO));
  REQUIRE(z != nullptr);
  bool zero = true;
  for (std::size_t i = 0; i < 150000; ++i) zero = zero && z[i] == 0;
  CHECK(zero);
  CHECK(free(z, M_TEST) == KMEM_OK);
}

TEST_CASE("realloc grows a medium block into the free space after it, without moving") {
  REQUIRE(boot() != nullptr);
  trim();
  auto* a = static_cast<unsigned char*>(malloc(80000, M_TEST, M_NOWAIT));
  REQUIRE(a != nullptr);
  fill(a, 80000, 7);
  auto* b = static_cast<unsigned char*>(realloc(a, 120000, M_TEST, M_NOWAIT));
  CHECK(b == a);  // the rest of the span is free
  CHECK(usable_size(b) >= 120000);
  CHECK(intact(b, 80000, 7) == true);
  // A neighbour after it: the next growth moves, with its contents.
  auto* wall = static_cast<unsigned char*>(malloc(70000, M_TEST, M_NOWAIT));
  REQUIRE(wall != nullptr);
  std::size_t have = usable_size(b);
  auto* c = static_cast<unsigned char*>(realloc(b, have + 50000, M_TEST, M_NOWAIT));
  REQUIRE(c != nullptr);
  CHECK(c != b);
  CHECK(intact(c, 80000, 7) == true);
  CHECK(free(c, M_TEST) == KMEM_OK);
  CHECK(free(wall, M_TEST) == KMEM_OK);
}

TEST_CASE("a random mix of medium mallocs, frees and reallocs keeps every byte (model), and every span goes back") {
  auto* src = boot();
  REQUIRE(src != nullptr);
  trim();
  long out0 = src->pages_out.load();
  struct live {
    unsigned char* p;
    std::size_t n;
    unsigned id;
  };
  std::vector<live> model;
  std::mt19937_64 rng(20261201);
  auto size = [&] { return d::kMaxAllocSave + 1 + rng() % (d::kMediumMax - d::kMaxAllocSave); };
  unsigned next_id = 1;
  int bad = 0;
  for (int step = 0; step < 6000; ++step) {
    unsigned op = static_cast<unsigned>(rng() % 10);
    if (op < 5 || model.empty()) {
      std::size_t n = size();
      auto* p = static_cast<unsigned char*>(malloc(n, M_TEST, M_NOWAIT));
      REQUIRE(p != nullptr);
      CHECK(usable_size(p) >= n);
      fill(p, n, next_id);
      model.push_back({p, n, next_id++});
    } else if (op < 8) {
      std::size_t k = rng() % model.size();
      bad += !intact(model[k].p, model[k].n, model[k].id);
      CHECK(free(model[k].p, M_TEST) == KMEM_OK);
      model[k] = model.back();
      model.pop_back();
    } else {
      std::size_t k = rng() % model.size();
      std::size_t n = size();
      auto* p = static_cast<unsigned char*>(realloc(model[k].p, n, M_TEST, M_NOWAIT));
      REQUIRE(p != nullptr);
      std::size_t kept = n < model[k].n ? n : model[k].n;
      // The kept prefix is the old block's: check its pattern up to there (its last byte holds
      // the end mark), then refill.
      for (std::size_t i = 0; i < kept && i + 1 < model[k].n; i += 64) bad += p[i] != static_cast<unsigned char>(model[k].id + i / 64);
      fill(p, n, next_id);
      model[k] = {p, n, next_id++};
    }
  }
  for (auto& m : model) {
    bad += !intact(m.p, m.n, m.id);
    CHECK(free(m.p, M_TEST) == KMEM_OK);
  }
  CHECK(bad == 0);
  kmem_counters c{};
  REQUIRE(get_kmem_counters(&c));
  CHECK(c.medium_blocks == 0);
  CHECK(c.medium_bytes == 0);
  trim();
  REQUIRE(get_kmem_counters(&c));
  CHECK(c.medium_spans == 0);
  CHECK(src->pages_out.load() <= out0);
}
