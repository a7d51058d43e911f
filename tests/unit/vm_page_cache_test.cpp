// vm_page_cache_test.cpp — the free-frame cache (vm_page.h): freed frames stay host-resident
// up to a limit, are zeroed on reuse (PG_ZERO stays truthful), are released above the limit
// and on trim; vm_page_frame_free agrees with the allocators.  Fake pmap, 4096 frames.
#include "vm/vm_phys.h"
#include "vm/vm_reserv.h"
#include "vm_fakepmap.h"

using namespace vmrt;
using fake::rd;
using fake::wr;

namespace {
constexpr vaddr_t kBase = vaddr_t{1} << 44;
constexpr vsize_t kSize = vsize_t{1} << 30;
constexpr frame_t kFrames = 4096;

bool frame_reads_zero(frame_t f) {
  const char* p = fake::g_fake.physmem + static_cast<std::size_t>(f) * PAGE_SIZE;
  for (std::size_t i = 0; i < PAGE_SIZE; ++i)
    if (p[i] != 0) return false;
  return true;
}

// Every free frame: PG_ZERO => reads as zeros; not PG_ZERO <=> counted in the cache.
// Returns the number of free frames without PG_ZERO (must equal vm_page_cache_count()).
frame_t check_free_frames(bool* zero_ok) {
  vm_lock_guard g;
  vm_page_free_flush();  // pending frees join the cache or are released
  frame_t dirty = 0;
  *zero_ok = true;
  for (frame_t f = 0; f < vm_phys_bump(); ++f) {
    if (!vm_page_frame_free(f)) continue;
    if (vm_page_array[f].flags & PG_ZERO) *zero_ok = *zero_ok && frame_reads_zero(f);
    else ++dirty;
  }
  return dirty;
}

void set_limit(frame_t n) {
  vm_lock_guard g;
  vm_page_cache_set_limit(n);
}
frame_t cached() {
  vm_lock_guard g;
  return vm_page_cache_count();
}
}  // namespace

TEST_CASE("freed frames are cached up to the limit, the rest released; reuse reads zeros") {
  fake::boot(kFrames);
  set_limit(64);
  fake::space s(kBase, kSize);
  vaddr_t a = s.mmap(256 * PAGE_SIZE);
  for (int k = 0; k < 256; ++k) wr(s.vs, a + k * PAGE_SIZE, static_cast<std::uint8_t>(k | 1));
  auto rel0 = fake::g_fake.released;
  REQUIRE(vm_munmap(s.vs, a, 256 * PAGE_SIZE) == KERN_SUCCESS);
  // The cap holds: 64 stay host-resident (dirty), 192 are released.
  CHECK(cached() == 64);
  CHECK(fake::ctr(V_FRAME_CACHE) == 64);
  CHECK(fake::g_fake.released - rel0 == 192);
  bool zero_ok = false;
  CHECK(check_free_frames(&zero_ok) == 64);
  CHECK(zero_ok);
  // Reuse: the cached frames are zeroed (through the direct map) before they are mapped.
  auto reused0 = fake::ctr(V_FRAME_CACHE_REUSED), zeroed0 = fake::ctr(V_ZFOD_ZEROED);
  vaddr_t b = s.mmap(256 * PAGE_SIZE);
  bool all_zero = true;
  for (int k = 0; k < 256; ++k) {
    all_zero = all_zero && rd(s.vs, b + k * PAGE_SIZE) == 0;
    all_zero = all_zero && rd(s.vs, b + k * PAGE_SIZE + PAGE_SIZE - 1) == 0;
  }
  CHECK(all_zero);
  CHECK(fake::ctr(V_FRAME_CACHE_REUSED) - reused0 == 64);
  CHECK(fake::ctr(V_ZFOD_ZEROED) - zeroed0 == 64);  // only the cached frames needed zeroing
  CHECK(cached() == 0);
  CHECK(fake::check_all() == "");
  REQUIRE(vm_munmap(s.vs, b, 256 * PAGE_SIZE) == KERN_SUCCESS);
  set_limit(0);
  CHECK(cached() == 0);  // lowering the limit trims
  CHECK(check_free_frames(&zero_ok) == 0);
  CHECK(zero_ok);
}

TEST_CASE("copy-on-write destinations and raised limits: the cache never exceeds its limit") {
  fake::boot(kFrames);
  set_limit(1000);
  fake::space s(kBase, kSize);
  vaddr_t a = s.mmap(512 * PAGE_SIZE);
  for (int round = 0; round < 4; ++round) {
    for (int k = 0; k < 512; ++k) wr(s.vs, a + k * PAGE_SIZE, static_cast<std::uint8_t>(round + 2));
    CHECK(cached() <= 1000);
    REQUIRE(vm_madvise(s.vs, a, 512 * PAGE_SIZE, VM_ADVICE_DONTNEED) == KERN_SUCCESS);
    {
      vm_lock_guard g;
      vm_page_free_flush();
    }
    CHECK(cached() <= 1000);
    CHECK(cached() >= 512);  // everything freed so far fits
    bool all_zero = true;
    for (int k = 0; k < 512; k += 7) all_zero = all_zero && rd(s.vs, a + k * PAGE_SIZE) == 0;
    CHECK(all_zero);
    REQUIRE(vm_madvise(s.vs, a, 512 * PAGE_SIZE, VM_ADVICE_DONTNEED) == KERN_SUCCESS);
  }
  bool zero_ok = false;
  CHECK(check_free_frames(&zero_ok) == cached());
  CHECK(zero_ok);
  // Trim: release down to a target; the count and PG_ZERO follow.
  frame_t before = cached();
  {
    vm_lock_guard g;
    CHECK(vm_page_cache_trim(100) == before - 100);
  }
  CHECK(cached() == 100);
  CHECK(check_free_frames(&zero_ok) == 100);
  CHECK(zero_ok);
  CHECK(fake::check_all() == "");
  REQUIRE(vm_munmap(s.vs, a, 512 * PAGE_SIZE) == KERN_SUCCESS);
  set_limit(0);
  CHECK(cached() == 0);
}

TEST_CASE("vm_page_frame_free agrees with the allocators (buddy, reservations, pending frees)") {
  fake::boot(kFrames);
  set_limit(kFrames);
  fake::space s(kBase, kSize);
  vaddr_t a = s.mmap(4 << 20);  // two reservation windows
  vm_madvise(s.vs, a, 4 << 20, VM_ADVICE_RANDOM);
  for (int k = 0; k < 1024; k += 5) wr(s.vs, a + k * PAGE_SIZE, 9);
  {
    vm_lock_guard g;
    CHECK(vm_reserv_active() >= 1);
    frame_t in_use = 0;
    for (frame_t f = 0; f < kFrames; ++f) in_use += vm_page_frame_free(f) ? 0 : 1;
    CHECK(in_use == kFrames - vm_page_free_count());
    for (int k = 0; k < 1024; k += 5) CHECK_FALSE(vm_page_frame_free(fake::mapped_frame(s.vs, a + k * PAGE_SIZE)));
  }
  REQUIRE(vm_munmap(s.vs, a, 4 << 20) == KERN_SUCCESS);
  {
    vm_lock_guard g;
    for (frame_t f = 0; f < kFrames; ++f) CHECK(vm_page_frame_free(f));
    CHECK(vm_page_free_count() == kFrames);
  }
  bool zero_ok = false;
  CHECK(check_free_frames(&zero_ok) == cached());
  CHECK(zero_ok);
  set_limit(0);
}
