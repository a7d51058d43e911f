// api_errno_test.cpp — errno for bad arguments, as Linux gives for the same calls.
#include <doctest/doctest.h>

#include <sys/mman.h>

#include "runtime_test_support.h"

RUNTIME_TEST_ROUTE_SIGACTION()

namespace {
constexpr size_t kPage = 4096;

// Expect -1 (or MAP_FAILED) with errno e.
#define EXPECT_ERRNO(call, e)        \
  do {                               \
    errno = 0;                       \
    long r_ = (long)(call);          \
    CHECK(r_ == -1);                 \
    CHECK(errno == (e));             \
  } while (0)
}  // namespace

TEST_CASE("errno table: mmap") {
  REQUIRE(vmrt_init() == 0);
  vmrt_vmspace* vs = vmrt_vmspace_create(16u << 20);
  REQUIRE(vs != nullptr);
  char* base = static_cast<char*>(vmrt_vmspace_base(vs));
  const int A = MAP_PRIVATE | MAP_ANONYMOUS;
  const int RW = PROT_READ | PROT_WRITE;
  EXPECT_ERRNO(vmrt_mmap(vs, nullptr, 0, RW, A, -1, 0), EINVAL);                            // zero length
  EXPECT_ERRNO(vmrt_mmap(vs, base + 1, kPage, RW, A | MAP_FIXED, -1, 0), EINVAL);           // unaligned fixed
  EXPECT_ERRNO(vmrt_mmap(vs, nullptr, kPage, RW, MAP_ANONYMOUS, -1, 0), EINVAL);            // neither private nor shared
  EXPECT_ERRNO(vmrt_mmap(vs, nullptr, kPage, RW, A, -1, 1), EINVAL);                        // unaligned offset
  EXPECT_ERRNO(vmrt_mmap(vs, nullptr, kPage, 0x100, A, -1, 0), EINVAL);                     // unknown prot bits
  EXPECT_ERRNO(vmrt_mmap(vs, nullptr, kPage, RW, MAP_PRIVATE, 0, 0), ENODEV);               // fd-backed
  EXPECT_ERRNO(vmrt_mmap(vs, base + (16u << 20), kPage, RW, A | MAP_FIXED, -1, 0), ENOMEM); // outside the window
  EXPECT_ERRNO(vmrt_mmap(vs, nullptr, (size_t)-1, RW, A, -1, 0), ENOMEM);                   // length overflow
  EXPECT_ERRNO(vmrt_mmap(vs, nullptr, 32u << 20, RW, A, -1, 0), ENOMEM);                    // no room
  void* p = vmrt_mmap(vs, base, 4 * kPage, RW, A | MAP_FIXED, -1, 0);
  REQUIRE(p == base);
  EXPECT_ERRNO(vmrt_mmap(vs, base + kPage, kPage, RW, A | MAP_FIXED_NOREPLACE, -1, 0), EEXIST);
  void* q = vmrt_mmap(vs, base + 8 * kPage, kPage, RW, A | MAP_FIXED_NOREPLACE, -1, 0);
  CHECK(q == base + 8 * kPage);
  CHECK(rtt::check_ok(vs));
  vmrt_vmspace_destroy(vs);
}

TEST_CASE("errno table: munmap, mprotect, madvise, mincore, minherit, mlock") {
  REQUIRE(vmrt_init() == 0);
  vmrt_vmspace* vs = vmrt_vmspace_create(16u << 20);
  REQUIRE(vs != nullptr);
  char* base = static_cast<char*>(vmrt_vmspace_base(vs));
  char* p = static_cast<char*>(vmrt_mmap(vs, base, 4 * kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0));
  REQUIRE(p == base);
  char* hole = base + 64 * kPage;
  unsigned char vec[4];

  EXPECT_ERRNO(vmrt_munmap(vs, p + 1, kPage), EINVAL);
  EXPECT_ERRNO(vmrt_munmap(vs, p, 0), EINVAL);
  EXPECT_ERRNO(vmrt_munmap(vs, base + (16u << 20), kPage), EINVAL);
  CHECK(vmrt_munmap(vs, hole, kPage) == 0);  // unmapping nothing is fine

  EXPECT_ERRNO(vmrt_mprotect(vs, p + 1, kPage, PROT_READ), EINVAL);
  EXPECT_ERRNO(vmrt_mprotect(vs, p, kPage, 0x100), EINVAL);
  EXPECT_ERRNO(vmrt_mprotect(vs, hole, kPage, PROT_READ), ENOMEM);
  EXPECT_ERRNO(vmrt_mprotect(vs, p, 8 * kPage, PROT_READ), ENOMEM);  // runs into a hole
  CHECK(vmrt_mprotect(vs, p, 0, PROT_READ) == 0);

  EXPECT_ERRNO(vmrt_madvise(vs, p + 1, kPage, MADV_NORMAL), EINVAL);
  EXPECT_ERRNO(vmrt_madvise(vs, p, kPage, 12345), EINVAL);
  EXPECT_ERRNO(vmrt_madvise(vs, hole, kPage, MADV_DONTNEED), ENOMEM);
  CHECK(vmrt_madvise(vs, p, kPage, MADV_HUGEPAGE) == 0);
  EXPECT_ERRNO(vmrt_madvise(vs, hole, kPage, MADV_HUGEPAGE), ENOMEM);

  EXPECT_ERRNO(vmrt_mincore(vs, p + 1, kPage, vec), EINVAL);
  EXPECT_ERRNO(vmrt_mincore(vs, hole, kPage, vec), ENOMEM);

  EXPECT_ERRNO(vmrt_minherit(vs, p, kPage, 17), EINVAL);
  EXPECT_ERRNO(vmrt_minherit(vs, p + 1, kPage, VMRT_INHERIT_COPY), EINVAL);
  EXPECT_ERRNO(vmrt_minherit(vs, hole, kPage, VMRT_INHERIT_COPY), ENOMEM);

  EXPECT_ERRNO(vmrt_mlock(vs, hole, kPage), ENOMEM);
  CHECK(vmrt_mlock(vs, p + 1, 10) == 0);  // rounded, as Linux does
  CHECK(vmrt_munlock(vs, p + 1, 10) == 0);

  // Compare a few with the host kernel itself.
  char* h = static_cast<char*>(mmap(nullptr, 4 * kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  REQUIRE(h != MAP_FAILED);
  errno = 0;
  CHECK(munmap(h + 1, kPage) == -1);
  int host_e = errno;
  errno = 0;
  CHECK(vmrt_munmap(vs, p + 1, kPage) == -1);
  CHECK(errno == host_e);
  errno = 0;
  CHECK(madvise(h, kPage, 12345) == -1);
  host_e = errno;
  errno = 0;
  CHECK(vmrt_madvise(vs, p, kPage, 12345) == -1);
  CHECK(errno == host_e);
  munmap(h, 4 * kPage);
  CHECK(rtt::check_ok(vs));
  vmrt_vmspace_destroy(vs);
}
