// runtime_fork_test.cpp — host fork(): parent and child memory are independent
// (physmem is MAP_SHARED; the child gets its own copy), both backends.
#include <doctest/doctest.h>

#include <sys/mman.h>

#include "kmem/kmem.h"
#include "runtime_test_support.h"
#include "vm/vm_phys.h"

RUNTIME_TESTS_UNDER_BOTH_BACKENDS()

namespace {
constexpr size_t kPage = 4096;
}

// First in the file (doctest runs a file's cases in order): the process has not handed out
// a frame yet, so the fork is lazy (no memfd, no copy, no wait); the child makes its own
// physmem at its first frame.  Before that existed, a child sharing the parent's memfd
// would find the parent's bytes in its "fresh" frames.
TEST_CASE("a fork with no frame in use is lazy, and the child's first frames are its own") {
  REQUIRE(vmrt_init() == 0);
  if (vmrt::vm_phys_bump() != 0) {
    MESSAGE("SKIP: frames already in use at the start of this process (the lazy fork needs none)");
    return;
  }
  long forks_before = vmrt_counter("host forks");
  int to_child[2], to_parent[2];
  REQUIRE(pipe(to_child) == 0);
  REQUIRE(pipe(to_parent) == 0);
  pid_t pid = rtt::vm_fork();
  REQUIRE(pid >= 0);
  const size_t n = 64;
  if (pid == 0) {
    char c = 0;
    (void)!read(to_child[0], &c, 1);  // the parent has filled its first frames
    int bad = 0;
    vmrt_vmspace* vs = vmrt_vmspace_create(16u << 20);
    char* p = vs ? static_cast<char*>(vmrt_mmap(vs, nullptr, n * kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)) : nullptr;
    if (p == nullptr || p == VMRT_MAP_FAILED) _exit(100);
    for (size_t i = 0; i < n; ++i) bad += p[i * kPage + 7] != 0;  // fresh frames read as zeros
    for (size_t i = 0; i < n; ++i) std::memset(p + i * kPage, 'c', kPage);
    (void)!write(to_parent[1], &c, 1);
    (void)!read(to_child[0], &c, 1);  // the parent checked its bytes and wrote again
    for (size_t i = 0; i < n; ++i) bad += p[i * kPage + 100] != 'c';
    _exit(bad > 99 ? 99 : bad);
  }
  vmrt_vmspace* vs = vmrt_vmspace_create(16u << 20);
  REQUIRE(vs != nullptr);
  char* p = static_cast<char*>(vmrt_mmap(vs, nullptr, n * kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  REQUIRE(p != VMRT_MAP_FAILED);
  for (size_t i = 0; i < n; ++i) std::memset(p + i * kPage, 'p', kPage);
  char c = 0;
  REQUIRE(write(to_child[1], &c, 1) == 1);
  REQUIRE(read(to_parent[0], &c, 1) == 1);  // the child filled its own
  int bad = 0;
  for (size_t i = 0; i < n; ++i) bad += p[i * kPage + 100] != 'p';
  CHECK(bad == 0);
  for (size_t i = 0; i < n; ++i) std::memset(p + i * kPage, 'q', kPage);
  REQUIRE(write(to_child[1], &c, 1) == 1);
  int st = 0;
  REQUIRE(waitpid(pid, &st, 0) == pid);
  CHECK(WIFEXITED(st));
  CHECK(WEXITSTATUS(st) == 0);
  CHECK(vmrt_counter("host forks") == forks_before + 1);
  CHECK(vmrt_counter("fork frames copied") == 0);
  CHECK(rtt::check_ok(vs));
  vmrt_vmspace_destroy(vs);
  for (int fd : {to_child[0], to_child[1], to_parent[0], to_parent[1]}) close(fd);
}

TEST_CASE("after a host fork, writes in the child are invisible to the parent and vice versa") {
  REQUIRE(vmrt_init() == 0);
  vmrt_vmspace* vs = vmrt_vmspace_create(64u << 20);
  REQUIRE(vs != nullptr);
  const size_t n = 256;
  char* p = static_cast<char*>(vmrt_mmap(vs, nullptr, n * kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  REQUIRE(p != VMRT_MAP_FAILED);
  for (size_t i = 0; i < n / 2; ++i) p[i * kPage] = 'p';  // half resident
  long forks_before = vmrt_counter("host forks");
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
  CHECK(vmrt_counter("host forks") == forks_before + 1);  // counted in the parent, once the child has its memory
  CHECK(rtt::check_ok(vs));
  vmrt::kmem::free(k, vmrt::kmem::M_TEST);
  vmrt_vmspace_destroy(vs);
}
