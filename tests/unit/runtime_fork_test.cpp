// runtime_fork_test.cpp — host fork(): parent and child memory are independent
// (physmem is MAP_SHARED; the child gets its own copy), both backends.
#include <doctest/doctest.h>

#include <sys/mman.h>

#include "kmem/kmem.h"
#include "runtime_test_support.h"

RUNTIME_TESTS_UNDER_BOTH_BACKENDS()

namespace {
constexpr size_t kPage = 4096;
}

TEST_CASE("after a host fork, writes in the child are invisible to the parent and vice versa") {
  REQUIRE(vmrt_init() == 0);
  vmrt_vmspace* vs = vmrt_vmspace_create(64u << 20);
  REQUIRE(vs != nullptr);
  const size_t n = 256;
  char* p = static_cast<char*>(vmrt_mmap(vs, nullptr, n * kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  REQUIRE(p != VMRT_MAP_FAILED);
  for (size_t i = 0; i < n / 2; ++i) p[i * kPage] = 'p';  // half resident
  char* k = static_cast<char*>(vmrt::kmem::malloc(100, vmrt::kmem::M_TEST, vmrt::kmem::M_WAITOK));
  REQUIRE(k != nullptr);
  std::strcpy(k, "parent");
  int to_child[2], to_parent[2];
  REQUIRE(pipe(to_child) == 0);
  REQUIRE(pipe(to_parent) == 0);
  pid_t pid = rtt::vm_fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    int bad = 0;
    for (size_t i = 0; i < n / 2; ++i) bad += p[i * kPage] != 'p';
    for (size_t i = n / 2; i < n; ++i) bad += p[i * kPage] != 0;
    if (std::strcmp(k, "parent") != 0) bad += 1000;
    for (size_t i = 0; i < n; ++i) p[i * kPage] = 'c';  // resident and fresh pages
    std::strcpy(k, "child");
    char c = 0;
    (void)!write(to_parent[1], &c, 1);
    (void)!read(to_child[0], &c, 1);  // the parent wrote meanwhile
    for (size_t i = 0; i < n; ++i) bad += p[i * kPage] != 'c';
    if (std::strcmp(k, "child") != 0) bad += 1000;
    // The child's own vmrt keeps working: a new vmspace, faults, kmem.
    vmrt_vmspace* cv = vmrt_vmspace_create(16u << 20);
    char* q = cv ? static_cast<char*>(vmrt_mmap(cv, nullptr, kPage * 4, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)) : nullptr;
    if (q == nullptr || q == VMRT_MAP_FAILED) bad += 10000;
    else q[kPage] = 1;
    _exit(bad > 255 ? 255 : bad);
  }
  char c;
  REQUIRE(read(to_parent[0], &c, 1) == 1);  // the child wrote
  int bad = 0;
  for (size_t i = 0; i < n / 2; ++i) bad += p[i * kPage] != 'p';
  for (size_t i = n / 2; i < n; ++i) bad += p[i * kPage] != 0;
  CHECK(bad == 0);
  CHECK(std::strcmp(k, "parent") == 0);
  for (size_t i = 0; i < n; ++i) p[i * kPage] = 'q';
  std::strcpy(k, "parent2");
  REQUIRE(write(to_child[1], &c, 1) == 1);
  int st = 0;
  REQUIRE(waitpid(pid, &st, 0) == pid);
  CHECK(WIFEXITED(st));
  CHECK(WEXITSTATUS(st) == 0);
  CHECK(vmrt_counter("host forks") == 1);  // counted in the parent, once the child has its memory
  CHECK(rtt::check_ok(vs));
  vmrt::kmem::free(k, vmrt::kmem::M_TEST);
  vmrt_vmspace_destroy(vs);
}
