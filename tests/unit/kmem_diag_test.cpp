// kmem_diag_test.cpp — kmem with diagnostics: freed blocks filled with a
// pattern, write-after-free found on reuse, double free, interior, foreign and
// wrong-type frees refused with messages naming block, type and bucket size.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "kmem/kmem.h"
#include "kmem_test_support.h"

using namespace vmrt::kmem;
namespace kmem = vmrt::kmem;

namespace {
std::vector<kmem_report> g_reports;
std::vector<std::string> g_messages;
void capture(const kmem_report& r) {
  g_reports.push_back(r);  // test-only: std::vector is fine here (glibc malloc)
  g_messages.emplace_back(r.message);
}
void boot() {
  REQUIRE(kmem_test::boot(true) != nullptr);
  set_report_hook(capture);
}
std::string describe_str(void* p, kmem_status st, malloc_type given = M_LAST) {
  char buf[256];
  describe(p, st, buf, sizeof buf, given);
  return buf;
}
}  // namespace

TEST_CASE("freed blocks are filled with the pattern") {
  boot();
  auto* p = static_cast<std::uint32_t*>(kmem::malloc(256, M_TEST, M_WAITOK));
  std::memset(p, 0, 256);
  REQUIRE(kmem::free(p, M_TEST) == KMEM_OK);
  int pattern_words = 0;
  for (int i = 4; i < 64; ++i) pattern_words += p[i] == 0xdeadc0deu;
  CHECK(pattern_words == 60);
  void* q = kmem::malloc(256, M_TEST, M_WAITOK);
  CHECK(q == p);  // LIFO reuse, pattern intact: no report
  CHECK(g_reports.empty());
  kmem::free(q, M_TEST);
}

TEST_CASE("write after free is detected when the block is reused") {
  boot();
  g_reports.clear();
  kmem_counters c0{};
  get_kmem_counters(&c0);
  auto* p = static_cast<char*>(kmem::malloc(128, M_TEST, M_WAITOK));
  REQUIRE(kmem::free(p, M_TEST) == KMEM_OK);
  p[40] = 'X';  // the bug
  void* q = kmem::malloc(128, M_TEST, M_WAITOK);
  REQUIRE(g_reports.size() == 1);
  CHECK(g_reports[0].status == KMEM_CORRUPT);
  CHECK(g_reports[0].addr == p);
  CHECK(g_reports[0].bucket_size == 128);
  CHECK(g_reports[0].type == M_TEST);
  CHECK(g_reports[0].offset == 40);
  CHECK(g_messages[0].find("write after free") != std::string::npos);
  CHECK(g_messages[0].find("128-byte bucket") != std::string::npos);
  CHECK(g_messages[0].find("test") != std::string::npos);
  CHECK(q != nullptr);
  CHECK(q != p);  // the corrupt block is out of circulation
  kmem_counters c1{};
  get_kmem_counters(&c1);
  CHECK(c1.corrupt_detected - c0.corrupt_detected == 1);
  kmem::free(q, M_TEST);
  // the dropped block is not freeable as a live M_TEST block
  CHECK(kmem::free(p, M_TEST) != KMEM_OK);
}

TEST_CASE("double free, interior, foreign, wrong type: refused, named, nothing changed") {
  boot();
  g_reports.clear();
  type_stats t0{};
  get_type_stats(M_TEST, &t0);

  auto* p = static_cast<char*>(kmem::malloc(64, M_TEST, M_WAITOK));
  CHECK(kmem::free(p, M_TEMP) == KMEM_WRONG_TYPE);
  std::string m = describe_str(p, KMEM_WRONG_TYPE, M_TEMP);
  CHECK(m.find("64-byte bucket") != std::string::npos);
  CHECK(m.find("type test") != std::string::npos);
  CHECK(m.find("freed as type temp") != std::string::npos);
  CHECK(kmem::free(p + 32, M_TEST) == KMEM_NOT_BLOCK);
  m = describe_str(p + 32, KMEM_NOT_BLOCK);
  CHECK(m.find("32 bytes into block") != std::string::npos);
  int local = 0;
  CHECK(kmem::free(&local, M_TEST) == KMEM_FOREIGN);
  CHECK(kmem::free(p, M_TEST) == KMEM_OK);
  CHECK(kmem::free(p, M_TEST) == KMEM_DOUBLE_FREE);
  CHECK(kmem::free(p, M_TEMP) == KMEM_DOUBLE_FREE);
  m = describe_str(p, KMEM_DOUBLE_FREE);
  CHECK(m.find("double free") != std::string::npos);
  CHECK(m.find("64-byte bucket, type test") != std::string::npos);

  auto* big = static_cast<char*>(kmem::malloc(100000, M_TEST, M_WAITOK));
  CHECK(kmem::free(big, M_CXX) == KMEM_WRONG_TYPE);
  CHECK(kmem::free(big + 8192, M_TEST) == KMEM_NOT_BLOCK);
  CHECK(describe_str(big + 8192, KMEM_NOT_BLOCK).find("8192 bytes into block") != std::string::npos);
  CHECK(kmem::free(big, M_TEST) == KMEM_OK);
  CHECK(kmem::free(big, M_TEST) == KMEM_DOUBLE_FREE);

  // Nothing was corrupted: no reports, distinct blocks, stats back where they were.
  std::vector<char*> v;
  for (int i = 0; i < 2000; ++i) {
    v.push_back(static_cast<char*>(kmem::malloc(64, M_TEST, M_WAITOK)));
    std::memset(v.back(), i & 0xff, 64);
  }
  std::vector<char*> s = v;
  std::sort(s.begin(), s.end());
  CHECK(std::adjacent_find(s.begin(), s.end()) == s.end());
  for (char* q : v) CHECK(kmem::free(q, M_TEST) == KMEM_OK);
  CHECK(g_reports.empty());
  type_stats t1{};
  get_type_stats(M_TEST, &t1);
  CHECK(t1.inuse == t0.inuse);
  CHECK(t1.memuse == t0.memuse);
}

TEST_CASE("block info knows the type with diagnostics") {
  boot();
  void* p = kmem::malloc(3000, M_VMOBJ, M_WAITOK);
  block_info bi{};
  REQUIRE(get_block_info(static_cast<char*>(p) + 100, &bi));
  CHECK(bi.start == reinterpret_cast<std::uintptr_t>(p));
  CHECK(bi.size == usable_size(p));  // 3072 (4096 with power-of-two buckets)
  CHECK(bi.size >= 3000);
  CHECK(bi.allocated);
  CHECK(bi.type == M_VMOBJ);
  kmem::free(p, M_VMOBJ);
  REQUIRE(get_block_info(p, &bi));
  CHECK_FALSE(bi.allocated);
}
