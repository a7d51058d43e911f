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

TEST_CASE("recycled frames: freed memory stays cached, reads as zeros when reused (also in a host fork child)") {
  REQUIRE(vmrt_init() == 0);
  const size_t len = 8u << 20, n = len / kPage;
  auto fill_and_destroy = [&]() {
    vmrt_vmspace* vs = vmrt_vmspace_create(len + (4u << 20));
    REQUIRE(vs != nullptr);
    char* p = static_cast<char*>(vmrt_mmap(vs, nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
    REQUIRE(p != VMRT_MAP_FAILED);
    for (size_t i = 0; i < n; ++i) std::memset(p + i * kPage, 0xAB, kPage);
    vmrt_vmspace_destroy(vs);
  };
  auto check_zero = [&]() -> bool {
    vmrt_vmspace* vs = vmrt_vmspace_create(len + (4u << 20));
    if (vs == nullptr) return false;
    char* p = static_cast<char*>(vmrt_mmap(vs, nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
    if (p == VMRT_MAP_FAILED) return false;
    bool z = true;
    for (size_t i = 0; i < n; ++i)
      for (size_t off = 0; off < kPage; off += 512) z = z && p[i * kPage + off] == 0 && p[i * kPage + off + 511] == 0;
    vmrt_vmspace_destroy(vs);
    return z;
  };
  fill_and_destroy();
  long long cached = rtt::counter("free frames cached");
  MESSAGE("free frames cached after freeing 8 MiB: ", cached);
  CHECK(cached >= static_cast<long long>(n));  // default limit: min(physmem / 4, 1 GiB)
  long long reused0 = rtt::counter("cached frames reused");
  long long populated0 = rtt::counter("pmap populated pages");
  CHECK(check_zero());
  CHECK(rtt::counter("cached frames reused") - reused0 >= static_cast<long long>(n));
  MESSAGE("pmap populated pages while touching 8 MiB: ", rtt::counter("pmap populated pages") - populated0);
  // A host fork child does not copy free (cached) frames: they must still read as zeros there.
  fill_and_destroy();
  pid_t pid = rtt::vm_fork();
  REQUIRE(pid >= 0);
  if (pid == 0) _exit(check_zero() ? 0 : 1);
  int st = 0;
  REQUIRE(waitpid(pid, &st, 0) == pid);
  CHECK(WIFEXITED(st));
  CHECK(WEXITSTATUS(st) == 0);
  CHECK(check_zero());
}

TEST_CASE("vmspace_fork prefault: child reads take no fault, writes stay private both ways, mincore unchanged") {
  REQUIRE(vmrt_init() == 0);
  const size_t n = 512;
  vmrt_vmspace* vs = vmrt_vmspace_create(16u << 20);
  REQUIRE(vs != nullptr);
  char* p = static_cast<char*>(vmrt_mmap(vs, nullptr, n * kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  REQUIRE(p != VMRT_MAP_FAILED);
  REQUIRE(vmrt_madvise(vs, p, n * kPage, MADV_RANDOM) == 0);  // page-exact residency
  for (size_t i = 0; i < n; ++i)
    if (i % 4 != 3) p[i * kPage + 5] = static_cast<char>(i | 1);
  unsigned char pvec[n], cvec[n];
  REQUIRE(vmrt_mincore(vs, p, n * kPage, pvec) == 0);
  long long pre0 = rtt::counter("fork prefaulted pages");
  vmrt_vmspace* child = vmrt_vmspace_fork(vs);
  REQUIRE(child != nullptr);
  CHECK(rtt::counter("fork prefaulted pages") - pre0 == static_cast<long long>(n - n / 4));
  char* c = static_cast<char*>(vmrt_translate(vs, child, p));
  REQUIRE(c != nullptr);
  REQUIRE(vmrt_mincore(child, c, n * kPage, cvec) == 0);
  bool same = true;
  for (size_t i = 0; i < n; ++i) same = same && (cvec[i] & 1) == (pvec[i] & 1);
  CHECK(same);
  // Reads of the parent's resident pages: no vmrt fault at all (the host fills the PTEs).
  long long f0 = rtt::counter("page faults");
  bool data = true;
  for (size_t i = 0; i < n; ++i)
    if (i % 4 != 3) data = data && c[i * kPage + 5] == static_cast<char>(i | 1);
  CHECK(data);
  CHECK(rtt::counter("page faults") == f0);
  // Child writes are protection faults in the writing thread, never userfaultfd events --
  // except where the pages are write-protected through the userfaultfd (the API's vmspaces
  // under userfaultfd with write protection: pmap_linux.h), so that kernel-mode writes wait
  // instead of failing: there every write fault is a write-protect event.
  long long u0 = rtt::counter("userfaultfd faults");
  long long w0 = rtt::counter("userfaultfd write-protect faults");
  bool wp = rtt::counter("pages write-protected through userfaultfd") > 0;
  for (size_t i = 0; i < n; i += 2)
    if (i % 4 != 3) c[i * kPage + 5] = 'c';
  if (wp) CHECK(rtt::counter("userfaultfd faults") - u0 == rtt::counter("userfaultfd write-protect faults") - w0);
  else CHECK(rtt::counter("userfaultfd faults") == u0);
  for (size_t i = 1; i < n; i += 2)
    if (i % 4 != 3) p[i * kPage + 5] = 'p';
  bool priv = true;
  for (size_t i = 0; i < n; ++i) {
    if (i % 4 == 3) continue;
    char want_c = i % 2 == 0 ? 'c' : static_cast<char>(i | 1);
    char want_p = i % 2 == 1 ? 'p' : static_cast<char>(i | 1);
    priv = priv && c[i * kPage + 5] == want_c && p[i * kPage + 5] == want_p;
  }
  CHECK(priv);
  // Never-touched pages read zeros on both sides.
  bool zeros = true;
  for (size_t i = 3; i < n; i += 4) zeros = zeros && c[i * kPage] == 0 && p[i * kPage] == 0;
  CHECK(zeros);
  CHECK(rtt::check_ok(vs));
  CHECK(rtt::check_ok(child));
  vmrt_vmspace_destroy(child);
  bool kept = true;
  for (size_t i = 1; i < n; i += 2)
    if (i % 4 != 3) kept = kept && p[i * kPage + 5] == 'p';
  CHECK(kept);
  vmrt_vmspace_destroy(vs);
}
