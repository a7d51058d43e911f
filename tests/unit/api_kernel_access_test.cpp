// api_kernel_access_test.cpp — system calls given vmspace memory (the kernel's own accesses),
// both backends: read(2) into never-touched memory, and into pages that are copy-on-write
// after vmrt_vmspace_fork, in the child and in the parent, with the other side unchanged.
// Under userfaultfd every call must behave as natively.  Under sigsegv the host kernel's
// accesses raise no signal: the calls get EFAULT (the shim's libc wrappers hold a program's
// buffers, libc_shim/shim_vslock.cpp; a C API caller calling the kernel itself is not
// covered) — checked as that, and said visibly as a KNOWN LIMIT.
#include <doctest/doctest.h>

#include <cerrno>
#include <string>
#include <sys/mman.h>
#include <unistd.h>

#include "runtime_test_support.h"

RUNTIME_TESTS_UNDER_BOTH_BACKENDS()

namespace {
constexpr size_t kPage = 4096;

// read(2) `n` bytes of `fill` from a pipe into p: the bytes read, or -errno.
long pipe_read(void* p, size_t n, char fill) {
  int fds[2];
  REQUIRE(pipe(fds) == 0);
  char buf[kPage];
  std::memset(buf, fill, sizeof buf);
  for (size_t k = 0; k < n; k += kPage) REQUIRE(write(fds[1], buf, n - k < kPage ? n - k : kPage) > 0);
  ssize_t r = read(fds[0], p, n);
  int e = errno;
  close(fds[0]);
  close(fds[1]);
  return r < 0 ? -e : r;
}

bool all(const char* p, size_t n, char c) {
  for (size_t k = 0; k < n; ++k)
    if (p[k] != c) return false;
  return true;
}

// A new vmspace of 16 MiB and `pages` private anonymous pages in it.
char* new_anon(vmrt_vmspace** vs, size_t pages) {
  REQUIRE(vmrt_init() == 0);
  *vs = vmrt_vmspace_create(16u << 20);
  REQUIRE(*vs != nullptr);
  void* p = vmrt_mmap(*vs, nullptr, pages * kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  REQUIRE(p != VMRT_MAP_FAILED);
  return static_cast<char*>(p);
}

void known_limit(const char* what, long r) {
  std::string m = std::string("KNOWN LIMIT (sigsegv backend, not a pass): ") + what + " gets " +
                  (r == -EFAULT ? std::string("EFAULT") : std::to_string(r));
  MESSAGE(m);
  CHECK(r == -EFAULT);
}
}  // namespace

TEST_CASE("read(2) into never-touched vmspace memory") {
  vmrt_vmspace* vs = nullptr;
  char* p = new_anon(&vs, 8);
  long r = pipe_read(p + 100, 3 * kPage, 'u');
  if (rtt::uffd_backend()) {
    CHECK(r == static_cast<long>(3 * kPage));
    CHECK(all(p + 100, 3 * kPage, 'u'));
    CHECK(all(p, 100, 0));
  } else {
    known_limit("read(2) into never-touched vmspace memory", r);
  }
  vmrt_vmspace_destroy(vs);
}

TEST_CASE("read(2) into copy-on-write pages after vmrt_vmspace_fork, child and parent") {
  const size_t n = 16;
  vmrt_vmspace* parent = nullptr;
  char* p = new_anon(&parent, n);
  std::memset(p, 'A', n * kPage);
  vmrt_vmspace* child = vmrt_vmspace_fork(parent);
  REQUIRE(child != nullptr);
  char* c = static_cast<char*>(vmrt_translate(parent, child, p));
  REQUIRE(c != nullptr);
  CHECK(all(c, n * kPage, 'A'));  // the child has read every page: all mapped read-only, shared
  long long wp0 = vmrt_counter("userfaultfd write-protect faults");

  // The child: pages 2..5 (a kernel write spanning four copy-on-write pages, unaligned).
  long rc = pipe_read(c + 2 * kPage + 10, 3 * kPage, 'c');
  // The parent: pages 8..9.
  long rp = pipe_read(p + 8 * kPage, 2 * kPage, 'p');
  if (rtt::uffd_backend()) {
    CHECK(rc == static_cast<long>(3 * kPage));
    CHECK(rp == static_cast<long>(2 * kPage));
    CHECK(all(c + 2 * kPage + 10, 3 * kPage, 'c'));
    CHECK(all(c + 2 * kPage, 10, 'A'));
    CHECK(all(c + 5 * kPage + 10, kPage - 10, 'A'));
    CHECK(all(p + 8 * kPage, 2 * kPage, 'p'));
    // Each side sees only its own writes.
    CHECK(all(p, 8 * kPage, 'A'));
    CHECK(all(p + 10 * kPage, (n - 10) * kPage, 'A'));
    CHECK(all(c, 2 * kPage, 'A'));
    CHECK(all(c + 8 * kPage, 2 * kPage, 'A'));
    MESSAGE("userfaultfd write-protect faults: ", vmrt_counter("userfaultfd write-protect faults") - wp0);
    CHECK(vmrt_counter("userfaultfd write-protect faults") > wp0);
    // User-mode writes to the remaining copy-on-write pages still copy.
    c[12 * kPage] = 'x';
    p[13 * kPage] = 'y';
    CHECK(p[12 * kPage] == 'A');
    CHECK(c[13 * kPage] == 'A');
    CHECK(rtt::check_ok(parent));
    CHECK(rtt::check_ok(child));
  } else {
    known_limit("read(2) into a copy-on-write page of the child", rc);
    known_limit("read(2) into a copy-on-write page of the parent", rp);
    CHECK(all(p, n * kPage, 'A'));  // nothing leaked across
    CHECK(all(c, n * kPage, 'A'));
  }
  vmrt_vmspace_destroy(child);
  vmrt_vmspace_destroy(parent);
}

namespace {
sigjmp_buf g_trap_env;
void on_trap(const vmrt_trap*, void*) { siglongjmp(g_trap_env, 1); }
}  // namespace

TEST_CASE("a write to a copy-on-write page made read-only traps, every time") {
  // Write protection (userfaultfd) must not let a write through that the VM refuses: clearing
  // a page's write protection woke the writer before its mprotect (cow_demo's write to a
  // read-only page succeeded in 8 runs of 20).  Many rounds: the race was a few microseconds.
  const size_t n = 4;
  int traps = 0, rounds = 40;
  for (int round = 0; round < rounds; ++round) {
    vmrt_vmspace* parent = nullptr;
    char* p = new_anon(&parent, n);
    std::memset(p, 'A', n * kPage);
    vmrt_vmspace* child = vmrt_vmspace_fork(parent);
    REQUIRE(child != nullptr);
    p[kPage] = 'w';  // a copy-on-write copy: the parent's page is its own again
    REQUIRE(vmrt_mprotect(parent, p, n * kPage, PROT_READ) == 0);
    vmrt_set_trap_hook(on_trap, nullptr);
    if (sigsetjmp(g_trap_env, 1) == 0) {
      *static_cast<volatile char*>(p + 10) = 'X';  // a copy-on-write page, now read-only
    } else {
      ++traps;
    }
    vmrt_set_trap_hook(nullptr, nullptr);
    CHECK(p[10] == 'A');
    vmrt_vmspace_destroy(child);
    vmrt_vmspace_destroy(parent);
  }
  CHECK(traps == rounds);
}
