// api_vmspace_test.cpp — the public API over real memory, both backends:
// vmspace_fork copy-on-write, minherit, mlock, reports, the consistency checker.
#include <doctest/doctest.h>

#include <sys/mman.h>

#include "runtime_test_support.h"

RUNTIME_TESTS_UNDER_BOTH_BACKENDS()

namespace {
constexpr size_t kPage = 4096;
}

TEST_CASE("vmspace_fork: copy-on-write between parent and child vmspaces") {
  REQUIRE(vmrt_init() == 0);
  vmrt_vmspace* parent = vmrt_vmspace_create(64u << 20);
  REQUIRE(parent != nullptr);
  const size_t n = 64;
  char* p = static_cast<char*>(vmrt_mmap(parent, nullptr, n * kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  REQUIRE(p != VMRT_MAP_FAILED);
  for (size_t i = 0; i < n; ++i) std::memset(p + i * kPage, static_cast<int>('A' + i % 26), kPage);
  CHECK(rtt::check_ok(parent));
  long long cow0 = vmrt_counter("copy-on-write faults") + vmrt_counter("copy-on-write optimized faults");
  vmrt_vmspace* child = vmrt_vmspace_fork(parent);
  REQUIRE(child != nullptr);
  CHECK(vmrt_vmspace_size(child) == vmrt_vmspace_size(parent));
  char* c = static_cast<char*>(vmrt_translate(parent, child, p));
  REQUIRE(c != nullptr);
  CHECK(c != p);
  CHECK(rtt::check_ok(parent));
  CHECK(rtt::check_ok(child));
  // The child sees the parent's contents.
  int bad = 0;
  for (size_t i = 0; i < n; ++i) bad += c[i * kPage + 7] != static_cast<char>('A' + i % 26);
  CHECK(bad == 0);
  // Writes in the child are invisible to the parent...
  for (size_t i = 0; i < n; i += 2) c[i * kPage] = 'c';
  for (size_t i = 0; i < n; i += 2) bad += p[i * kPage] != static_cast<char>('A' + i % 26);
  CHECK(bad == 0);
  // ... and the parent's writes to the child.
  for (size_t i = 1; i < n; i += 2) p[i * kPage] = 'p';
  for (size_t i = 1; i < n; i += 2) bad += c[i * kPage] != static_cast<char>('A' + i % 26);
  for (size_t i = 0; i < n; i += 2) bad += c[i * kPage] != 'c';
  for (size_t i = 1; i < n; i += 2) bad += p[i * kPage] != 'p';
  CHECK(bad == 0);
  long long cow = vmrt_counter("copy-on-write faults") + vmrt_counter("copy-on-write optimized faults") - cow0;
  MESSAGE("copy-on-write faults: ", cow);
  CHECK(cow >= static_cast<long long>(n / 2));
  CHECK(rtt::check_ok(parent));
  CHECK(rtt::check_ok(child));
  vmrt_report_procstat(child, 1);
  vmrt_vmspace_destroy(parent);
  // The child keeps its memory after the parent is gone.
  for (size_t i = 1; i < n; i += 2) bad += c[i * kPage] != static_cast<char>('A' + i % 26);
  CHECK(bad == 0);
  CHECK(rtt::check_ok(child));
  vmrt_vmspace_destroy(child);
}

TEST_CASE("minherit: share, none and zero at vmspace_fork") {
  REQUIRE(vmrt_init() == 0);
  vmrt_vmspace* parent = vmrt_vmspace_create(16u << 20);
  REQUIRE(parent != nullptr);
  char* p = static_cast<char*>(vmrt_mmap(parent, nullptr, 3 * kPage, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0));
  REQUIRE(p != VMRT_MAP_FAILED);
  p[0] = 's';
  p[kPage] = 'n';
  p[2 * kPage] = 'z';
  REQUIRE(vmrt_minherit(parent, p, kPage, VMRT_INHERIT_SHARE) == 0);
  REQUIRE(vmrt_minherit(parent, p + kPage, kPage, VMRT_INHERIT_NONE) == 0);
  REQUIRE(vmrt_minherit(parent, p + 2 * kPage, kPage, VMRT_INHERIT_ZERO) == 0);
  vmrt_vmspace* child = vmrt_vmspace_fork(parent);
  REQUIRE(child != nullptr);
  char* c = static_cast<char*>(vmrt_translate(parent, child, p));
  CHECK(c[0] == 's');
  c[0] = 'S';
  CHECK(p[0] == 'S');  // shared both ways
  volatile char* none = c + kPage;
  CHECK(rtt::traps([&] { (void)*none; }));
  CHECK(rtt::trap_catcher::last.reason == VMRT_TRAP_NO_ENTRY);
  CHECK(c[2 * kPage] == 0);
  CHECK(rtt::check_ok(child));
  vmrt_vmspace_destroy(child);
  vmrt_vmspace_destroy(parent);
}

TEST_CASE("mlock makes pages resident; reports and counters") {
  REQUIRE(vmrt_init() == 0);
  vmrt_vmspace* vs = vmrt_vmspace_create(16u << 20);
  REQUIRE(vs != nullptr);
  char* p = static_cast<char*>(vmrt_mmap(vs, nullptr, 32 * kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  REQUIRE(p != VMRT_MAP_FAILED);
  REQUIRE(vmrt_mlock(vs, p + 100, 8 * kPage) == 0);
  unsigned char vec[9];
  REQUIRE(vmrt_mincore(vs, p, 9 * kPage, vec) == 0);
  for (int i = 0; i < 9; ++i) CHECK((vec[i] & 1) == 1);
  REQUIRE(vmrt_munlock(vs, p + 100, 8 * kPage) == 0);
  CHECK(vmrt_counter("no such counter") == -1);
  CHECK(vmrt_counter("host mmap calls") > 0);
  CHECK(vmrt_counter("page faults") >= 0);
  int devnull = open("/dev/null", O_WRONLY);
  vmrt_report_vmstat(devnull);
  vmrt_report_malloc(devnull);
  vmrt_report_procstat(vs, devnull);
  vmrt::runtime_report(devnull);
  close(devnull);
  CHECK(rtt::check_ok(vs));
  CHECK(vmrt_check(nullptr, 2) == 0);  // the kernel map
  vmrt_vmspace_destroy(vs);
}
