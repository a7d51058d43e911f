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
}
