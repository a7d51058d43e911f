// runtime_fault_test.cpp — first-touch faults on real memory, both trap backends:
// concurrent first touch, host VMA bound, mincore, madvise(DONTNEED), syscalls on
// never-touched memory.
#include <doctest/doctest.h>

#include <atomic>
#include <pthread.h>
#include <sys/mman.h>

#include "runtime_test_support.h"

RUNTIME_TESTS_UNDER_BOTH_BACKENDS()

namespace {

constexpr size_t kPage = 4096;

struct toucher {
  char* base;
  size_t npages;
  std::atomic<int>* go;
  bool altstack;  // the thread has an alternate signal stack after touching
};

void* touch_all(void* arg) {
  auto* t = static_cast<toucher*>(arg);
  while (t->go->load() == 0) {
  }
  for (size_t i = 0; i < t->npages; ++i) {
    auto* word = reinterpret_cast<std::atomic<long>*>(t->base + i * kPage);
    word->fetch_add(1);
  }
  stack_t ss;
  t->altstack = sigaltstack(nullptr, &ss) == 0 && (ss.ss_flags & SS_DISABLE) == 0;
  return nullptr;
}

}  // namespace

TEST_CASE("two threads first-touching the same pages: every page zero-filled exactly once") {
  REQUIRE(vmrt_init() == 0);
  const size_t npages = 8192;  // 32 MiB
  vmrt_vmspace* vs = vmrt_vmspace_create(npages * kPage * 2);
  REQUIRE(vs != nullptr);
  char* p = static_cast<char*>(vmrt_mmap(vs, nullptr, npages * kPage, PROT_READ | PROT_WRITE,
                                         MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  REQUIRE(p != VMRT_MAP_FAILED);
  long long zf0 = rtt::counter("zero-fill pages");
  long long alt0 = rtt::counter("alternate signal stacks");
  std::atomic<int> go{0};
  toucher a{p, npages, &go, false}, b{p, npages, &go, false};
  pthread_t ta, tb;
  pthread_create(&ta, nullptr, touch_all, &a);
  pthread_create(&tb, nullptr, touch_all, &b);
  go.store(1);
  pthread_join(ta, nullptr);
  pthread_join(tb, nullptr);
  size_t bad = 0;
  for (size_t i = 0; i < npages; ++i) {
    long v = *reinterpret_cast<long*>(p + i * kPage);
    if (v != 2) ++bad;
    // the rest of the page still reads zero
    if (p[i * kPage + 100] != 0) ++bad;
  }
  CHECK(bad == 0);
  long long zf = rtt::counter("zero-fill pages") - zf0;
  if (zf0 >= 0) CHECK(zf == static_cast<long long>(npages));
  // Under sigsegv traps a new thread gets an alternate signal stack at its first fault
  // (one of the two may never fault if the other mapped everything ahead of it; under
  // ASan the sanitizer installs its own, and vmrt keeps it).
  if (!rtt::uffd_backend()) {
    CHECK((a.altstack || b.altstack));
    CHECK(rtt::counter("alternate signal stacks") <= alt0 + 2);
  }
  CHECK(rtt::check_ok(vs));
  vmrt_vmspace_destroy(vs);
}

TEST_CASE("sequential first touch of 256 MiB keeps host VMAs in the hundreds") {
  REQUIRE(vmrt_init() == 0);
  const size_t len = 256u << 20;
  vmrt_vmspace* vs = vmrt_vmspace_create(len + (16u << 20));
  REQUIRE(vs != nullptr);
  size_t before = 0;
  vmrt_host_vmas(&before, nullptr);
  char* p = static_cast<char*>(vmrt_mmap(vs, nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  REQUIRE(p != VMRT_MAP_FAILED);
  for (size_t i = 0; i < len; i += kPage) p[i] = static_cast<char>(i >> 12);
  size_t after = 0, total = 0;
  vmrt_host_vmas(&after, &total);
  MESSAGE("host VMAs in region: before ", before, ", after touching 256 MiB ", after, " (process total ", total,
          "), estimate ", rtt::counter("host VMAs current"));
  CHECK(after < before + 1000);
  CHECK(vmrt_resident(vs, p, len) == len / kPage);
  // The incremental estimate tracks /proc/self/maps.
  long long est = rtt::counter("host VMAs current");
  CHECK(est > 0);
  CHECK(static_cast<long long>(after) - est <= 8);
  CHECK(est - static_cast<long long>(after) <= 8);
  bool ok = true;
  for (size_t i = 0; i < len; i += kPage) ok = ok && p[i] == static_cast<char>(i >> 12);
  CHECK(ok);
  CHECK(rtt::check_ok(vs));
  vmrt_vmspace_destroy(vs);
}

TEST_CASE("mincore reports resident pages; madvise(DONTNEED) then touch reads zeros") {
  REQUIRE(vmrt_init() == 0);
  vmrt_vmspace* vs = vmrt_vmspace_create(64u << 20);
  REQUIRE(vs != nullptr);
  const size_t n = 64;
  char* p = static_cast<char*>(vmrt_mmap(vs, nullptr, n * kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  REQUIRE(p != VMRT_MAP_FAILED);
  REQUIRE(vmrt_madvise(vs, p, n * kPage, MADV_RANDOM) == 0);  // no fault-around: page-exact residency
  unsigned char vec[n];
  REQUIRE(vmrt_mincore(vs, p, n * kPage, vec) == 0);
  for (size_t i = 0; i < n; ++i) CHECK((vec[i] & 1) == 0);
  for (size_t i = 0; i < n; i += 2) p[i * kPage] = 'x';
  REQUIRE(vmrt_mincore(vs, p, n * kPage, vec) == 0);
  for (size_t i = 0; i < n; ++i) CHECK((vec[i] & 1) == (i % 2 == 0 ? 1 : 0));
  REQUIRE(vmrt_madvise(vs, p, n * kPage, MADV_DONTNEED) == 0);
  REQUIRE(vmrt_mincore(vs, p, n * kPage, vec) == 0);
  for (size_t i = 0; i < n; ++i) CHECK((vec[i] & 1) == 0);
  bool zeros = true;
  for (size_t i = 0; i < n; i += 2) zeros = zeros && p[i * kPage] == 0;
  CHECK(zeros);
  CHECK(rtt::check_ok(vs));
  vmrt_vmspace_destroy(vs);
}

TEST_CASE("read(2) into and write(2) from never-touched memory") {
  REQUIRE(vmrt_init() == 0);
  vmrt_vmspace* vs = vmrt_vmspace_create(64u << 20);
  REQUIRE(vs != nullptr);
  char* p = static_cast<char*>(vmrt_mmap(vs, nullptr, 4u << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  REQUIRE(p != VMRT_MAP_FAILED);
  int zfd = open("/dev/zero", O_RDONLY);
  REQUIRE(zfd >= 0);
  char tmpl[] = "/tmp/vmrt_rt_XXXXXX";
  int tfd = mkstemp(tmpl);
  REQUIRE(tfd >= 0);
  unlink(tmpl);
  errno = 0;
  ssize_t r = read(zfd, p + 8 * kPage, 3 * kPage);
  int read_errno = errno;
  errno = 0;
  ssize_t w = write(tfd, p + 200 * kPage, 2 * kPage);
  int write_errno = errno;
  if (rtt::uffd_backend()) {
    // The default configuration here: the userfaultfd thread serves kernel-mode faults.
    CHECK(r == static_cast<ssize_t>(3 * kPage));
    CHECK(w == static_cast<ssize_t>(2 * kPage));
    char back[64];
    CHECK(pread(tfd, back, sizeof back, 0) == static_cast<ssize_t>(sizeof back));
    bool z = true;
    for (char c : back) z = z && c == 0;
    CHECK(z);
  } else {
    // Documented: under sigsegv traps the host kernel cannot fault into vmrt.
    CHECK(r == -1);
    CHECK(read_errno == EFAULT);
    CHECK(w == -1);
    CHECK(write_errno == EFAULT);
  }
  // After a user touch both work in every backend.
  p[300 * kPage] = 7;
  CHECK(read(zfd, p + 300 * kPage, kPage) == static_cast<ssize_t>(kPage));
  CHECK(p[300 * kPage] == 0);
  close(zfd);
  close(tfd);
  CHECK(rtt::check_ok(vs));
  vmrt_vmspace_destroy(vs);
}
