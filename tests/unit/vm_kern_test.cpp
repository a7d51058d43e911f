// vm_kern_test.cpp — the kmem submap: wired, zeroed, contiguous, mapped in one enter.
#include "vm/vm_kern.h"
#include "vm_fakepmap.h"

using namespace vmrt;

namespace {
constexpr vaddr_t kBase = vaddr_t{1} << 43;
constexpr vsize_t kSize = vsize_t{1} << 30;
}  // namespace

TEST_CASE("kmem_alloc_wired / kmem_free_wired") {
  fake::space k(kBase, kSize);
  vaddr_t base = 0;
  REQUIRE(kmem_submap_init(k.vs, 256 << 20, &base) == KERN_SUCCESS);
  CHECK(base % (2 << 20) == 0);
  std::map<vm_object*, int> extra{{kmem_object(), 1}};
  CHECK(fake::check_all(extra) == "");
  auto e0 = k.f->enters;
  auto w0 = fake::ctr(V_WIRE_COUNT);
  vaddr_t a = 0;
  REQUIRE(kmem_alloc_wired(64 * PAGE_SIZE, PAGE_SIZE, &a) == KERN_SUCCESS);
  CHECK(k.f->enters == e0 + 1);
  CHECK(fake::ctr(V_WIRE_COUNT) == w0 + 64);
  frame_t f0 = fake::mapped_frame(k.vs, a);
  for (int p = 0; p < 64; ++p) {
    CHECK(fake::mapped(k.vs, a + p * PAGE_SIZE));
    CHECK(fake::mapped_frame(k.vs, a + p * PAGE_SIZE) == f0 + p);
    CHECK(fake::mapped_prot(k.vs, a + p * PAGE_SIZE) == VM_PROT_DEFAULT);
  }
  // Zeroed: dirty the frames through the direct map, free, reallocate: zeros again.
  std::memset(fake::g_fake.physmem + static_cast<size_t>(f0) * PAGE_SIZE, 0xAB, 64 * PAGE_SIZE);
  kmem_free_wired(a, 64 * PAGE_SIZE);
  CHECK(!fake::mapped(k.vs, a));
  CHECK(fake::ctr(V_WIRE_COUNT) == w0);
  vaddr_t b = 0;
  REQUIRE(kmem_alloc_wired(64 * PAGE_SIZE, PAGE_SIZE, &b) == KERN_SUCCESS);
  frame_t fb = fake::mapped_frame(k.vs, b);
  for (size_t i = 0; i < 64 * PAGE_SIZE; i += 512) CHECK(fake::g_fake.physmem[static_cast<size_t>(fb) * PAGE_SIZE + i] == 0);
  // Alignment, many allocations, partial frees, entries merge.
  std::vector<std::pair<vaddr_t, vsize_t>> live;
  for (int i = 0; i < 200; ++i) {
    vsize_t sz = PAGE_SIZE * (1 + i % 9);
    vsize_t al = PAGE_SIZE << (i % 5);
    vaddr_t x = 0;
    REQUIRE(kmem_alloc_wired(sz, al, &x) == KERN_SUCCESS);
    CHECK(x % al == 0);
    live.push_back({x, sz});
  }
  CHECK(fake::check_all(extra) == "");
  for (size_t i = 0; i < live.size(); i += 2) kmem_free_wired(live[i].first, live[i].second);
  // A sub-range free of a multi-page block.
  for (size_t i = 1; i < live.size(); i += 2)
    if (live[i].second > PAGE_SIZE) kmem_free_wired(live[i].first + PAGE_SIZE, live[i].second - PAGE_SIZE);
  CHECK(fake::check_all(extra) == "");
  {
    vm_lock_guard g;
    CHECK(vm_map_check(kmem_map(), 2));
  }
  // Submap is visible in the kernel map's report as "sm".
  int fds[2];
  REQUIRE(pipe(fds) == 0);
  vmspace_report_procstat(k.vs, fds[1]);
  close(fds[1]);
  char buf[4096];
  ssize_t n = read(fds[0], buf, sizeof buf - 1);
  close(fds[0]);
  REQUIRE(n > 0);
  buf[n] = 0;
  CHECK(std::string(buf).find(" sm") != std::string::npos);
  // A fault in kmem memory that is not allocated is refused.
  CHECK(vm_fault(k.vs, base + (200 << 20), VM_FAULT_READ) == KERN_INVALID_ADDRESS);

  // kmem caches freed memory itself (decay), so its frames must not also sit in the VM's
  // free-frame cache: they go straight back to the host (else the host holds memory that
  // no RSS figure shows).
  {
    frame_t cached0;
    {
      vm_lock_guard g;
      vm_page_cache_set_limit(4096);
      cached0 = vm_page_cache_count();
    }
    auto released0 = fake::ctr(V_PAGES_RELEASED);
    vaddr_t c = 0;
    REQUIRE(kmem_alloc_wired(128 * PAGE_SIZE, PAGE_SIZE, &c) == KERN_SUCCESS);
    kmem_free_wired(c, 128 * PAGE_SIZE);
    vm_lock_guard g;
    CHECK(vm_page_cache_count() == cached0);
    CHECK(fake::ctr(V_PAGES_RELEASED) >= released0 + 128);
    vm_page_cache_set_limit(0);
  }

  // kmem_resize_wired: grow in place when the map is free after the block; else move the
  // block's frames (same frames, new address, no copy); contents and wiring preserved.
  {
    // Start from an empty submap: free what the steps above left (the odd blocks kept their
    // first page, or all of a one-page block) and b.
    for (size_t i = 1; i < live.size(); i += 2) kmem_free_wired(live[i].first, PAGE_SIZE);
    kmem_free_wired(b, 64 * PAGE_SIZE);
    // First fit: allocate single pages until one lands exactly at `at` (the holes below it fill
    // first); the others are returned in fillers.
    std::vector<vaddr_t> fillers;
    auto occupy = [&](vaddr_t at) {
      for (int i = 0; i < 100000; ++i) {
        vaddr_t z = 0;
        REQUIRE(kmem_alloc_wired(PAGE_SIZE, PAGE_SIZE, &z) == KERN_SUCCESS);
        if (z == at) return z;
        fillers.push_back(z);
      }
      FAIL("first fit never reached the page after the block");
      return vaddr_t{0};
    };
    vaddr_t x = 0, grown = 0, moved = 0;
    REQUIRE(kmem_alloc_wired(4 * PAGE_SIZE, PAGE_SIZE, &x) == KERN_SUCCESS);
    frame_t fx = fake::mapped_frame(k.vs, x);
    std::memset(fake::g_fake.physmem + static_cast<size_t>(fx) * PAGE_SIZE, 0x5A, PAGE_SIZE);
    // In place: the page after x is made free, then x grows into it.
    vaddr_t y = occupy(x + 4 * PAGE_SIZE);
    kmem_free_wired(y, PAGE_SIZE);
    REQUIRE(kmem_resize_wired(x, 4 * PAGE_SIZE, 5 * PAGE_SIZE, &grown) == KERN_SUCCESS);
    CHECK(grown == x);
    CHECK(fake::mapped_frame(k.vs, x) == fx);
    CHECK(fake::mapped(k.vs, x + 4 * PAGE_SIZE));
    // Moved: the page after x is taken, so growing must move x's frames elsewhere.
    y = occupy(x + 5 * PAGE_SIZE);
    REQUIRE(kmem_resize_wired(x, 5 * PAGE_SIZE, 64 * PAGE_SIZE, &moved) == KERN_SUCCESS);
    CHECK(moved != x);
    CHECK(!fake::mapped(k.vs, x));                 // the old range is gone
    CHECK(fake::mapped_frame(k.vs, moved) == fx);  // the same frame: moved, not copied
    CHECK(fake::g_fake.physmem[static_cast<size_t>(fx) * PAGE_SIZE + 100] == 0x5A);
    for (int p = 0; p < 64; ++p) CHECK(fake::mapped(k.vs, moved + p * PAGE_SIZE));
    frame_t ftail = fake::mapped_frame(k.vs, moved + 63 * PAGE_SIZE);
    CHECK(fake::g_fake.physmem[static_cast<size_t>(ftail) * PAGE_SIZE + 7] == 0);  // tail zeroed
    CHECK(kmem_resize_wired(moved, 64 * PAGE_SIZE, 32 * PAGE_SIZE, &grown) == KERN_INVALID_ARGUMENT);
    CHECK(fake::check_all(extra) == "");
    {
      vm_lock_guard g;
      CHECK(vm_map_check(kmem_map(), 2));
    }
    kmem_free_wired(moved, 64 * PAGE_SIZE);
    kmem_free_wired(y, PAGE_SIZE);
    for (vaddr_t z : fillers) kmem_free_wired(z, PAGE_SIZE);
    CHECK(fake::check_all(extra) == "");
  }
}
