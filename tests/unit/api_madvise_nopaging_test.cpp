// api_madvise_nopaging_test.cpp — MADV_COLD and MADV_PAGEOUT through the C API without
// paging (no --physmem: no pageout daemon, no swap device), both trap backends: as Linux
// without swap, PAGEOUT answers 0 and the anonymous pages stay; COLD answers 0 and keeps
// them; locked memory is still EINVAL.  (The paging side: api_madvise_pageout_test.)
#include <doctest/doctest.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <vector>
#include <sys/mman.h>

#include "runtime_test_support.h"

RUNTIME_TESTS_UNDER_BOTH_BACKENDS()

TEST_CASE("without paging MADV_PAGEOUT and MADV_COLD answer 0 and keep every page") {
  REQUIRE(vmrt_init() == 0);
  if (vmrt_counter("swap slots") > 0) {
    MESSAGE("SKIP: paging is on in this environment (VMRT_PHYSMEM set): nothing to check here");
    return;
  }
  vmrt_vmspace* vs = vmrt_vmspace_create(16u << 20);
  REQUIRE(vs != nullptr);
  const size_t page = 4096, n = 256;
  char* p = static_cast<char*>(vmrt_mmap(vs, nullptr, n * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  REQUIRE(p != VMRT_MAP_FAILED);
  for (size_t i = 0; i < n; ++i) std::memset(p + i * page, static_cast<int>(i % 251) + 1, page);
  long long out0 = vmrt_counter("pages paged out by MADV_PAGEOUT");
  CHECK(vmrt_madvise(vs, p, n * page, MADV_PAGEOUT) == 0);
  CHECK(vmrt_madvise(vs, p, n * page, MADV_COLD) == 0);
  CHECK(vmrt_counter("pages paged out by MADV_PAGEOUT") == out0);
  std::vector<unsigned char> v(n);
  REQUIRE(vmrt_mincore(vs, p, n * page, v.data()) == 0);
  size_t in = 0, bad = 0;
  for (unsigned char c : v) in += c & 1;
  for (size_t i = 0; i < n; ++i) bad += p[i * page] != static_cast<char>(i % 251 + 1) || p[i * page + page - 1] != static_cast<char>(i % 251 + 1);
  CHECK(in == n);
  CHECK(bad == 0);
  REQUIRE(vmrt_mlock(vs, p, page) == 0);
  errno = 0;
  CHECK(vmrt_madvise(vs, p, page, MADV_PAGEOUT) == -1);
  CHECK(errno == EINVAL);
  CHECK(rtt::check_ok(vs));
  vmrt_vmspace_destroy(vs);
}
