// vm_phys_test.cpp — buddy allocator, reservations and their breaking, memory exhaustion,
// PG_ZERO tracking; a small physmem (4096 frames = 16 MiB).
#include "vm/vm_phys.h"
#include "vm/vm_reserv.h"
#include "vm_fakepmap.h"

using namespace vmrt;
using fake::wr;

namespace {
constexpr vaddr_t kBase = vaddr_t{1} << 44;
constexpr vsize_t kSize = vsize_t{1} << 30;
constexpr frame_t kFrames = 4096;
}  // namespace

TEST_CASE("buddy: blocks split and coalesce back; never-used frames are carved lazily") {
  fake::boot(kFrames);
  vm_lock_guard g;
  frame_t free0 = vm_page_free_count();
  CHECK(free0 == kFrames);
  CHECK(vm_phys_bump() == 0);  // nothing touched yet
  vm_page* a = vm_phys_alloc(0);
  vm_page* b = vm_phys_alloc(3);
  vm_page* c = vm_phys_alloc_contig(37);
  REQUIRE((a && b && c));
  CHECK(vm_page_frame(b) % 8 == 0);
  CHECK(vm_phys_free_count() == kFrames - 1 - 8 - 37);
  CHECK(vm_phys_bump() <= 128);  // only what was needed was carved
  vm_phys_free_run(vm_page_frame(c), 37);
  vm_phys_free(b, 3);
  vm_phys_free(a, 0);
  CHECK(vm_phys_free_count() == kFrames);
  // Everything below the bump coalesced into maximal blocks: a big block can be had again.
  vm_page* big = vm_phys_alloc(VM_NFREEORDER - 1);
  REQUIRE(big != nullptr);
  vm_phys_free(big, VM_NFREEORDER - 1);
  CHECK(vm_phys_free_count() == kFrames);
}

TEST_CASE("reservations are broken when memory is short, and exhaustion is a clean error") {
  fake::boot(kFrames);
  fake::space s(kBase, kSize);
  // 8 windows of 2 MiB: touching one page in each reserves all 4096 frames.
  vaddr_t a = s.mmap(16 << 20);
  vm_madvise(s.vs, a, 16 << 20, VM_ADVICE_RANDOM);
  auto alloc0 = fake::ctr(V_RESERV_ALLOC), broken0 = fake::ctr(V_RESERV_BROKEN);
  for (int w = 0; w < 7; ++w) wr(s.vs, a + w * (2 << 20), 1);
  CHECK(fake::ctr(V_RESERV_ALLOC) == alloc0 + 7);
  {
    vm_lock_guard g;
    CHECK(vm_reserv_active() == 7);
    CHECK(vm_page_free_count() == kFrames - 7);  // reserved frames still count as free
  }
  // A small object elsewhere needs frames: the remaining 512 free, then reservations break.
  vaddr_t b = s.mmap(1200 * PAGE_SIZE);
  vm_madvise(s.vs, b, 1200 * PAGE_SIZE, VM_ADVICE_SEQUENTIAL);
  for (int p = 0; p < 1200; ++p) wr(s.vs, b + p * PAGE_SIZE, 2);
  CHECK(fake::ctr(V_RESERV_BROKEN) > broken0);
  CHECK(fake::check_all() == "");
  // Fill memory until the fault fails with a resource shortage (never a crash).
  kern_return_t kr = KERN_SUCCESS;
  int touched = 0;
  for (int p = 0; p < 4096; ++p) {
    std::uint8_t v = 3;
    if (!fake::access(s.vs, a + p * PAGE_SIZE, true, &v, &kr)) break;
    ++touched;
  }
  CHECK(touched < 4096);
  CHECK(kr == KERN_RESOURCE_SHORTAGE);
  {
    vm_lock_guard g;
    CHECK(vm_page_free_count() == 0);
  }
  CHECK(fake::check_all() == "");
  // Give it all back: every frame is free again, released to the host (PG_ZERO).
  REQUIRE(vm_munmap(s.vs, a, 16 << 20) == KERN_SUCCESS);
  REQUIRE(vm_munmap(s.vs, b, 1200 * PAGE_SIZE) == KERN_SUCCESS);
  {
    vm_lock_guard g;
    CHECK(vm_page_free_count() == kFrames);
    CHECK(vm_reserv_active() == 0);
  }
  auto zeroed0 = fake::ctr(V_ZFOD_ZEROED);
  vaddr_t c = s.mmap(64 * PAGE_SIZE);
  wr(s.vs, c, 1);
  CHECK(fake::ctr(V_ZFOD_ZEROED) == zeroed0);  // released frames need no zeroing
  CHECK(fake::check_all() == "");
}
