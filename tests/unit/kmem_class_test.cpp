// kmem_class_test.cpp — the size classes (kmem_bucket_index.h) through the whole allocator:
// for every class, blocks fill whole clusters without overlapping (every byte checked
// against a model), free needs no size and refuses every interior pointer (slow and fast
// path, including pointers to the page boundaries a block straddles) and second frees,
// realloc keeps contents across classes, aligned requests land on aligned blocks, and the
// page codes of clusters whose elements straddle pages go away with the clusters.
#include <doctest/doctest.h>

#include <bit>
#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include "kmem/kmem.h"
#include "kmem/kmem_fast.h"
#include "kmem/kmem_internal.h"
#include "tests/unit/kmem_test_support.h"

using namespace vmrt::kmem;
namespace kmem = vmrt::kmem;
namespace d = vmrt::kmem::detail;

namespace {

void boot() { REQUIRE(kmem_test::boot(false) != nullptr); }

// The model's byte at offset i of block `id`.
unsigned char model_byte(unsigned id, std::size_t i) { return static_cast<unsigned char>(id * 131 + i * 7 + (i >> 8)); }
void fill(unsigned char* p, std::size_t n, unsigned id) {
  for (std::size_t i = 0; i < n; ++i) p[i] = model_byte(id, i);
}
bool intact(const unsigned char* p, std::size_t n, unsigned id) {
  for (std::size_t i = 0; i < n; ++i)
    if (p[i] != model_byte(id, i)) return false;
  return true;
}

}  // namespace

TEST_CASE("classes: every class fills whole clusters; every byte of every block is its own") {
  boot();
  for (unsigned i = d::kMinBucket; i <= d::kMaxBucket; ++i) {
    CAPTURE(d::bucket_size(i));
    const std::size_t size = d::bucket_size(i);
    const std::size_t n = 2 * std::size_t{d::elm_per_cluster(i)} + 1;  // at least two clusters
    std::vector<unsigned char*> v;
    for (std::size_t k = 0; k < n; ++k) {
      auto* p = static_cast<unsigned char*>(kmem::malloc(size - (k % 3) * 5, M_TEST, M_WAITOK));
      REQUIRE(p != nullptr);
      REQUIRE(usable_size(p) == size);
      CHECK(reinterpret_cast<std::uintptr_t>(p) % 16 == 0);
      fill(p, size, static_cast<unsigned>(k));
      v.push_back(p);
    }
    bool all = true;
    for (std::size_t k = 0; k < n; ++k) all &= intact(v[k], size, static_cast<unsigned>(k));
    CHECK(all);
    // realloc within the class (or down to half of it) keeps the block; past it moves the
    // block with its bytes, with slack (up to twice the size)
    CHECK(kmem::realloc(v[0], size - 8, M_TEST, M_WAITOK) == v[0]);
    CHECK(kmem::realloc(v[0], size / 2 + 1, M_TEST, M_WAITOK) == v[0]);
    if (i < d::kMaxBucket) {
      auto* q = static_cast<unsigned char*>(kmem::realloc(v[0], size + 1, M_TEST, M_WAITOK));
      REQUIRE(q != nullptr);
      CHECK(usable_size(q) > size);
      CHECK(usable_size(q) <= 2 * size);
      CHECK(intact(q, size, 0));
      v[0] = q;
      fill(q, size, 0);
    }
    for (std::size_t k = 0; k < n; ++k) CHECK(kmem::free(v[k], M_TEST) == KMEM_OK);
  }
}

TEST_CASE("classes: interior pointers into every class are refused, fast and slow path; second frees too") {
  boot();
  std::mt19937 rng(9);
  for (unsigned i = d::kMinBucket; i <= d::kMaxBucket; ++i) {
    CAPTURE(d::bucket_size(i));
    const std::size_t size = d::bucket_size(i);
    // a whole cluster's worth and one more, so some blocks straddle pages and clusters
    const std::size_t n = std::size_t{d::elm_per_cluster(i)} + 1;
    std::vector<unsigned char*> v;
    for (std::size_t k = 0; k < n; ++k) {
      auto* p = static_cast<unsigned char*>(kmem::malloc(size, M_TEST, M_WAITOK));
      REQUIRE(p != nullptr);
      v.push_back(p);
    }
    type_stats s0{};
    get_type_stats(M_TEST, &s0);
    unsigned refused = 0, tried = 0;
    for (std::size_t k = 0; k < n; ++k) {
      const std::uintptr_t a = reinterpret_cast<std::uintptr_t>(v[k]);
      std::vector<std::uintptr_t> offs = {16, size / 2 & ~std::size_t{15}, size - 16};
      // every page boundary inside the block, and the 16 bytes on either side
      for (std::uintptr_t pb = (a + d::kPageSize) & ~d::kPageMask; pb < a + size; pb += d::kPageSize)
        for (std::uintptr_t x : {pb - 16, pb, pb + 16})
          if (x > a && x < a + size) offs.push_back(x - a);
      // the first block of each class: every 16-byte offset
      if (k == 0)
        for (std::size_t o = 16; o < size; o += 16) offs.push_back(o);
      offs.push_back(16 * (1 + rng() % (size / 16 - 1 > 0 ? size / 16 - 1 : 1)));
      for (std::uintptr_t o : offs) {
        if (o == 0 || o >= size) continue;
        void* x = reinterpret_cast<void*>(a + o);
        ++tried;
        bool ok = !d::free_fast(x, M_TEST) && kmem::free(x, M_TEST) == KMEM_NOT_BLOCK && usable_size(x) == 0;
        refused += ok ? 1 : 0;
        block_info bi{};
        if (k == 0 && o % 256 == 16) {
          REQUIRE(get_block_info(x, &bi));
          CHECK(bi.start == a);
          CHECK(bi.size == size);
          CHECK(bi.allocated);
        }
      }
    }
    CHECK(refused == tried);
    type_stats s1{};
    get_type_stats(M_TEST, &s1);
    CHECK(s1.inuse == s0.inuse);  // nothing was freed by the refused calls
    for (std::size_t k = 0; k < n; ++k) CHECK(kmem::free(v[k], M_TEST) == KMEM_OK);
    unsigned dbl = 0;
    for (std::size_t k = 0; k < n; ++k) dbl += kmem::free(v[k], M_TEST) == KMEM_DOUBLE_FREE ? 1 : 0;
    CHECK(dbl == n);
    // the blocks come back from the thread cache and free again cleanly
    for (std::size_t k = 0; k < n; ++k) {
      void* p = kmem::malloc(size, M_TEST, M_WAITOK);
      REQUIRE(p != nullptr);
      v[k] = static_cast<unsigned char*>(p);
    }
    for (std::size_t k = 0; k < n; ++k) CHECK(kmem::free(v[k], M_TEST) == KMEM_OK);
  }
}

TEST_CASE("classes: a random mix of sizes and frees keeps every byte (model check)") {
  boot();
  std::mt19937 rng(17);
  struct live {
    unsigned char* p;
    std::size_t n;
    unsigned id;
  };
  std::vector<live> v;
  unsigned next_id = 1;
  for (int step = 0; step < 60000; ++step) {
    if (v.empty() || rng() % 100 < 52) {
      std::size_t n = rng() % 8 == 0 ? 1 + rng() % d::kMaxAllocSave : 1 + rng() % 600;
      auto* p = static_cast<unsigned char*>(kmem::malloc(n, M_TEST, M_WAITOK));
      REQUIRE(p != nullptr);
      REQUIRE(usable_size(p) >= n);
      fill(p, n, next_id);
      v.push_back(live{p, n, next_id++});
    } else {
      std::size_t k = rng() % v.size();
      REQUIRE(intact(v[k].p, v[k].n, v[k].id));
      REQUIRE(kmem::free(v[k].p, M_TEST) == KMEM_OK);
      v[k] = v.back();
      v.pop_back();
    }
  }
  bool all = true;
  for (auto& l : v) {
    all &= intact(l.p, l.n, l.id);
    CHECK(kmem::free(l.p, M_TEST) == KMEM_OK);
  }
  CHECK(all);
}

TEST_CASE("classes: aligned requests up to a page land on aligned blocks of every class") {
  boot();
  for (std::size_t align = 32; align <= d::kPageSize; align <<= 1) {
    for (std::size_t s = 1; s <= d::kMaxAllocSave; s = s < 128 ? s + 13 : s + s / 7) {
      void* p = malloc_aligned(s, align, M_TEST, M_WAITOK);
      REQUIRE(p != nullptr);
      CAPTURE(s);
      CAPTURE(align);
      CHECK(reinterpret_cast<std::uintptr_t>(p) % align == 0);
      CHECK(usable_size(p) >= s);
      CHECK(kmem::free(p, M_TEST) == KMEM_OK);
    }
  }
}

TEST_CASE("classes: a request just over a page takes a quarter more, not two pages") {
  boot();
  // sqlite's page-cache entries: a 4 KiB page plus a ~100-byte header
  void* p = kmem::malloc(4096 + 100, M_TEST, M_WAITOK);
  REQUIRE(p != nullptr);
  if (d::kPow2Classes) {
    MESSAGE("SKIP: built with KMEM_POW2_CLASSES=1 (power-of-two buckets: 8192 bytes)");
    CHECK(usable_size(p) == 8192);
  } else {
    CHECK(usable_size(p) == 5120);
    CHECK(d::pages_per_cluster(d::bucket_index(4196)) == 5);
    CHECK(d::elm_per_cluster(d::bucket_index(4196)) == 4);
  }
  CHECK(kmem::free(p, M_TEST) == KMEM_OK);
}

TEST_CASE("classes: tail page codes are set with a cluster and cleared when it goes back") {
  boot();
  trim();
  const unsigned i = d::bucket_index(112);
  if (!d::kClasses.straddle[i]) {
    MESSAGE("SKIP: no class straddles pages (KMEM_POW2_CLASSES=1)");
    return;
  }
  std::vector<void*> v;
  for (std::uint32_t k = 0; k < 4 * d::elm_per_cluster(i); ++k) v.push_back(kmem::malloc(112, M_TEST, M_WAITOK));
  const std::uintptr_t a = reinterpret_cast<std::uintptr_t>(v.back());
  const std::uint32_t pg = d::page_of(a);
  const unsigned code = d::page_code(pg);
  const std::uint32_t first = d::cluster_first_page(pg, code);
  CHECK(d::g.usage[first].ku_indx == i);
  for (std::uint32_t p = 1; p < d::pages_per_cluster(i); ++p) CHECK(d::page_code(first + p) == d::tail_code(i, p));
  for (void* p : v) CHECK(kmem::free(p, M_TEST) == KMEM_OK);
  thread_cache_drain();
  trim();
  for (std::uint32_t p = 0; p < d::pages_per_cluster(i); ++p) CHECK(d::page_code(first + p) == d::KU_UNUSED);
  // a pointer into the released cluster is no block
  CHECK(kmem::free(reinterpret_cast<void*>(a), M_TEST) != KMEM_OK);
}
