// api_madvise_pageout_test.cpp — MADV_COLD and MADV_PAGEOUT through the C API, both trap
// backends, 16 MiB of physmem and a swap device (vm/vm_pageout.h, vm_pageout_range):
// PAGEOUT reclaims a range now (dirty pages laundered to swap a cluster per write, clean
// ones freed without a write) and a touch pages it back intact; COLD moves the range's
// pages to the inactive queue and keeps them; pages a fork shares are skipped; the errno
// cases are Linux's (EINVAL unaligned or locked, ENOMEM for a hole, the mapped part acted
// on all the same).
#include <doctest/doctest.h>

#include <cerrno>
#include <cstdint>
#include <vector>
#include <sys/mman.h>

#include "paging_test_support.h"
#include "runtime_test_support.h"

RUNTIME_TESTS_WITH_PHYSMEM("16M")
RUNTIME_TESTS_UNDER_BOTH_BACKENDS()

using namespace ptt;  // paging_test_support.h: kPage, map_filled, bad_pages, since, new_vmspace

namespace {
// Pages of [p, p + pages) the VM holds (mincore: resident, mapped or not).
size_t in_core(vmrt_vmspace* vs, char* p, size_t pages) {
  std::vector<unsigned char> v(pages);
  REQUIRE(vmrt_mincore(vs, p, pages * kPage, v.data()) == 0);
  size_t n = 0;
  for (unsigned char c : v) n += c & 1;
  return n;
}

vmrt_vmspace* new_vmspace() { return ptt::new_vmspace(64u << 20); }  // 4x physmem: room to spare

// Pages of [p, p + pages) whose first word is not zero.
size_t nonzero_pages(const char* p, size_t pages) {
  size_t n = 0;
  for (size_t i = 0; i < pages; ++i) n += reinterpret_cast<const std::uint64_t*>(p + i * kPage)[0] != 0;
  return n;
}
}  // namespace

TEST_CASE("MADV_PAGEOUT writes a dirty range to swap in clusters and frees it; every byte comes back") {
  vmrt_vmspace* vs = new_vmspace();
  const size_t n = 1024;  // 4 MiB of 16
  char* p = map_filled(vs, n, 1);
  size_t before = in_core(vs, p, n);
  since out("swap pager pages paged out"), writes("swap pager pageouts"), advised("pages paged out by MADV_PAGEOUT");
  REQUIRE(vmrt_madvise(vs, p, n * kPage, MADV_PAGEOUT) == 0);
  MESSAGE(before << " pages in core before; " << out() << " paged out in " << writes() << " writes; "
                 << advised() << " counted");
  CHECK(in_core(vs, p, n) == 0);
  CHECK(vmrt_resident(vs, p, n * kPage) == 0);
  CHECK(out() >= static_cast<long long>(before));  // every page written (none reads as zeros)
  CHECK(advised() >= static_cast<long long>(before));
  CHECK(writes() <= static_cast<long long>(before / 8));  // clusters, not a write per page
  CHECK(rtt::check_ok(vs));
  since ins("swap pager pages paged in");
  CHECK(bad_pages(p, n, 1) == 0);
  CHECK(ins() >= static_cast<long long>(before));
  // The pages now have current swap copies (read back, not written since): a second
  // PAGEOUT frees them without writing them again.
  since out2("swap pager pages paged out");
  REQUIRE(vmrt_madvise(vs, p, n * kPage, MADV_PAGEOUT) == 0);
  CHECK(in_core(vs, p, n) == 0);
  CHECK(out2() < static_cast<long long>(n / 4));
  CHECK(bad_pages(p, n, 1) == 0);
  CHECK(rtt::check_ok(vs));
  vmrt_vmspace_destroy(vs);
}

TEST_CASE("MADV_COLD moves a range's pages to the inactive queue and keeps them") {
  vmrt_vmspace* vs = new_vmspace();
  const size_t n = 512;
  char* p = map_filled(vs, n, 2);
  long long inactive0 = vmrt_counter("pages inactive");
  since cooled("pages deactivated by MADV_COLD"), out("swap pager pages paged out");
  REQUIRE(vmrt_madvise(vs, p, n * kPage, MADV_COLD) == 0);
  long long inactive = vmrt_counter("pages inactive") - inactive0;
  MESSAGE(cooled() << " pages deactivated; inactive queue +" << inactive);
  CHECK(cooled() == static_cast<long long>(n));
  CHECK(inactive >= static_cast<long long>(n) * 9 / 10);  // the daemon sleeps: nothing else moves them
  CHECK(in_core(vs, p, n) == n);                        // contents kept, in core
  CHECK(out() == 0);
  CHECK(bad_pages(p, n, 2) == 0);
  CHECK(rtt::check_ok(vs));
  vmrt_vmspace_destroy(vs);
}

TEST_CASE("MADV_COLD and MADV_PAGEOUT errno cases are Linux's") {
  vmrt_vmspace* vs = new_vmspace();
  const size_t n = 64;
  char* p = map_filled(vs, n, 3);
  for (int adv : {MADV_COLD, MADV_PAGEOUT}) {
    CAPTURE(adv);
    errno = 0;
    CHECK(vmrt_madvise(vs, p + 1, kPage, adv) == -1);
    CHECK(errno == EINVAL);
    CHECK(vmrt_madvise(vs, p, 0, adv) == 0);
  }
  // A hole after the mapping: ENOMEM, and the mapped part is paged out all the same.
  REQUIRE(vmrt_munmap(vs, p + (n - 8) * kPage, 8 * kPage) == 0);
  since advised("pages paged out by MADV_PAGEOUT");
  errno = 0;
  CHECK(vmrt_madvise(vs, p, n * kPage, MADV_PAGEOUT) == -1);
  CHECK(errno == ENOMEM);
  CHECK(advised() >= static_cast<long long>(n - 8));
  CHECK(in_core(vs, p, n - 8) == 0);
  CHECK(bad_pages(p, n - 8, 3) == 0);
  errno = 0;
  CHECK(vmrt_madvise(vs, p, n * kPage, MADV_COLD) == -1);
  CHECK(errno == ENOMEM);
  // Locked memory: EINVAL, nothing taken (Linux: VM_LOCKED).
  REQUIRE(vmrt_mlock(vs, p, 8 * kPage) == 0);
  since advised2("pages paged out by MADV_PAGEOUT"), cooled("pages deactivated by MADV_COLD");
  for (int adv : {MADV_COLD, MADV_PAGEOUT}) {
    CAPTURE(adv);
    errno = 0;
    CHECK(vmrt_madvise(vs, p, 8 * kPage, adv) == -1);
    CHECK(errno == EINVAL);
  }
  CHECK(advised2() == 0);
  CHECK(cooled() == 0);
  CHECK(in_core(vs, p, 8) == 8);
  REQUIRE(vmrt_munlock(vs, p, 8 * kPage) == 0);
  CHECK(vmrt_madvise(vs, p, 8 * kPage, MADV_PAGEOUT) == 0);
  CHECK(in_core(vs, p, 8) == 0);
  CHECK(bad_pages(p, n - 8, 3) == 0);
  CHECK(rtt::check_ok(vs));
  vmrt_vmspace_destroy(vs);
}

TEST_CASE("MADV_PAGEOUT skips pages a fork shares and takes the ones copied since") {
  vmrt_vmspace* parent = new_vmspace();
  const size_t n = 256;
  char* p = map_filled(parent, n, 4);
  vmrt_vmspace* child = vmrt_vmspace_fork(parent);
  REQUIRE(child != nullptr);
  char* c = static_cast<char*>(vmrt_translate(parent, child, p));
  // Shared copy-on-write with the child: nothing is the parent's alone.
  since advised("pages paged out by MADV_PAGEOUT");
  REQUIRE(vmrt_madvise(parent, p, n * kPage, MADV_PAGEOUT) == 0);
  CHECK(advised() == 0);
  CHECK(in_core(parent, p, n) == n);
  // Pages the parent wrote are its own copies now (with the neighbours its copy-on-write
  // faults copied around them): those go, the pages still shared stay.
  for (size_t i = 0; i < 16; ++i) reinterpret_cast<std::uint64_t*>(p + i * kPage)[9] = 7;
  since advised2("pages paged out by MADV_PAGEOUT");
  REQUIRE(vmrt_madvise(parent, p, n * kPage, MADV_PAGEOUT) == 0);
  MESSAGE(advised2() << " of " << n << " pages the parent's own after 16 writes");
  CHECK(advised2() >= 16);
  CHECK(advised2() < static_cast<long long>(n));
  CHECK(in_core(parent, p, 16) == 0);
  CHECK(in_core(parent, p, n) == n - static_cast<size_t>(advised2()));
  CHECK(in_core(child, c, n) == n);
  for (size_t i = 0; i < 16; ++i) reinterpret_cast<std::uint64_t*>(p + i * kPage)[9] = 0;
  CHECK(bad_pages(p, n, 4) == 0);
  CHECK(bad_pages(c, n, 4) == 0);
  CHECK(rtt::check_ok(parent));
  CHECK(rtt::check_ok(child));
  vmrt_vmspace_destroy(child);
  vmrt_vmspace_destroy(parent);
}

// MADV_FREE on private anonymous memory is lazy (vm_object_madvise_free): the pages stay in
// core and keep their data; the pageout daemon frees those the program has not used since,
// without a write, and a page used again (any access faults: the translations went) keeps
// its data, as on Linux.  Before, FREE was DONTNEED: every page zeroed at once.
TEST_CASE("MADV_FREE is lazy: used pages keep their data, the others are freed without a write") {
  vmrt_vmspace* vs = new_vmspace();
  const size_t n = 2048;  // 8 MiB: four 2 MiB blocks, the unit a fault takes back
  char* p = map_filled(vs, n, 4);
  size_t before = in_core(vs, p, n);
  REQUIRE(before == n);
  since marked("pages freed lazily by MADV_FREE"), reused("lazily freed pages used again"),
      reclaimed("lazily freed pages reclaimed"), out("swap pager pages paged out");
  REQUIRE(vmrt_madvise(vs, p, n * kPage, MADV_FREE) == 0);
  CHECK(marked() == static_cast<long long>(n));
  CHECK(in_core(vs, p, n) == n);  // nothing goes until the daemon wants it
  // The first quarter written, the second read; the second half left alone.  A fault on a
  // lazily freed page maps the lazily freed pages of its 2 MiB block with it (in use again
  // too): block-aligned quarters, so exactly the first half.
  for (size_t i = 0; i < n / 4; ++i) reinterpret_cast<std::uint64_t*>(p + i * kPage)[100] = 0xfeed0000 + i;
  std::uint64_t sum = 0;
  for (size_t i = n / 4; i < n / 2; ++i) sum += reinterpret_cast<volatile std::uint64_t*>(p + i * kPage)[0];
  const long long used = reused();
  MESSAGE(marked() << " marked, " << used << " used again; read sum " << sum);
  CHECK(used == static_cast<long long>(n / 2));
  REQUIRE(vmrt_madvise(vs, p, n * kPage, MADV_PAGEOUT) == 0);
  MESSAGE(reclaimed() << " reclaimed without a write; " << out() << " pages written to swap");
  CHECK(reclaimed() == static_cast<long long>(n) - used);
  CHECK(out() >= used);  // the pages in use went to swap, data and all
  CHECK(out() < static_cast<long long>(n));  // the rest was not written
  // Every page: its data (in use again) or zeros (reclaimed), the first half its data.
  size_t bad = 0, zero = 0;
  for (size_t i = 0; i < n; ++i) {
    auto* w = reinterpret_cast<const std::uint64_t*>(p + i * kPage);
    bool is_zero = true;
    for (size_t k = 0; k < 512; ++k) is_zero &= w[k] == 0;
    if (is_zero && i >= n / 2) {
      ++zero;
      continue;
    }
    bad += w[0] != word(i, 4) || w[511] != ~word(i, 4) || (i < n / 4 && w[100] != 0xfeed0000 + i);
  }
  CHECK(bad == 0);
  CHECK(static_cast<long long>(zero) == reclaimed());  // freed: zero-fill on the next touch
  CHECK(rtt::check_ok(vs));
  vmrt_vmspace_destroy(vs);
}

TEST_CASE("MADV_FREE frees the swap copies of paged-out pages: they read zeros, their slots go back") {
  vmrt_vmspace* vs = new_vmspace();
  const size_t n = 256;
  char* p = map_filled(vs, n, 5);
  REQUIRE(vmrt_madvise(vs, p, n * kPage, MADV_PAGEOUT) == 0);
  REQUIRE(in_core(vs, p, n) == 0);
  long long used = vmrt_counter("swap slots in use");
  REQUIRE(used >= static_cast<long long>(n));
  since marked("pages freed lazily by MADV_FREE"), ins("swap pager pages paged in");
  REQUIRE(vmrt_madvise(vs, p, n * kPage, MADV_FREE) == 0);
  CHECK(marked() == 0);  // nothing resident to mark
  CHECK(vmrt_counter("swap slots in use") <= used - static_cast<long long>(n));
  CHECK(nonzero_pages(p, n) == 0);
  CHECK(ins() == 0);
  CHECK(rtt::check_ok(vs));
  vmrt_vmspace_destroy(vs);
}

TEST_CASE("MADV_FREE of memory a fork shares stays eager: the child keeps its view, the parent reads zeros") {
  vmrt_vmspace* vs = new_vmspace();
  const size_t n = 64;
  char* p = map_filled(vs, n, 6);
  vmrt_vmspace* child = vmrt_vmspace_fork(vs);
  REQUIRE(child != nullptr);
  const char* c = static_cast<const char*>(vmrt_translate(vs, child, p));
  REQUIRE(c != nullptr);
  since marked("pages freed lazily by MADV_FREE");
  REQUIRE(vmrt_madvise(vs, p, n * kPage, MADV_FREE) == 0);
  CHECK(marked() == 0);
  CHECK(nonzero_pages(p, n) == 0);
  CHECK(bad_pages(c, n, 6) == 0);  // the child's copy-on-write view is untouched
  CHECK(rtt::check_ok(vs));
  CHECK(rtt::check_ok(child));
  vmrt_vmspace_destroy(child);
  vmrt_vmspace_destroy(vs);
}
