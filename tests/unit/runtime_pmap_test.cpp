// runtime_pmap_test.cpp — the Linux pmap on its own (no vm_map above it): host
// mappings of physmem frames, runs, pv lists, page_protect, reference/modify
// emulation, reservations, and the host VMA estimate against /proc/self/maps.
// Both backends.  Frames come from the VM's allocator; the window has no vmspace,
// so every access the pmap does not allow traps (reason no-entry).
#include <doctest/doctest.h>

#include <sys/mman.h>

#include "runtime/pmap_linux.h"
#include "runtime/physmem.h"
#include "runtime/region.h"
#include "runtime/rt_maps.h"
#include "runtime/rt_stats.h"
#include "runtime_test_support.h"
#include "vm/vm_lock.h"
#include "vm/vm_page.h"

RUNTIME_TESTS_UNDER_BOTH_BACKENDS()

using namespace vmrt;

namespace {

constexpr size_t kPage = 4096;

struct fixture {
  rt::window* w = nullptr;
  vm_page* run = nullptr;  // contiguous frames
  size_t nrun = 64;
  fixture() {
    REQUIRE(vmrt_init() == 0);
    w = rt::window_alloc(64u << 20, rt::WK_API);
    REQUIRE(w != nullptr);
    w->pm.ops = &rt::g_pmap_linux_ops;
    vm_lock_guard g;
    run = vm_page_alloc_contig(nrun, VM_ALLOC_ZERO | VM_ALLOC_WIRED);
    REQUIRE(run != nullptr);
  }
  ~fixture() {
    {
      vm_lock_guard g;
      pmap_remove(&w->pm, w->base, w->base + w->size);
      for (size_t i = 0; i < nrun; ++i) {
        vm_page_unwire(run + i);
        vm_page_free(run + i);
      }
      vm_page_free_flush();
    }
    rt::pmap_linux_reset(w->base, w->base + w->size);
    rt::window_free(w);
  }
  char* va(size_t page) const { return reinterpret_cast<char*>(w->base + page * kPage); }
  char* dm(size_t i) const { return static_cast<char*>(rt::g_pmap_linux_ops.page_address(run + i)); }
};

bool estimate_matches_maps() {
  rt::vma_count c = rt::maps_count(rt::region_base(), rt::region_base() + rt::region_size());
  long long est = rt::rt_get(rt::RC_HOST_VMAS);
  if (static_cast<long long>(c.in_range) != est) MESSAGE("maps ", c.in_range, " estimate ", est);
  return static_cast<long long>(c.in_range) == est;
}

bool reads_trap(const volatile char* p) {
  return rtt::traps([&] { (void)*p; });
}
bool writes_trap(volatile char* p) {
  return rtt::traps([&] { *p = 1; });
}

}  // namespace

TEST_CASE("enter maps a frame-contiguous run with one host mmap; data is the frame's") {
  fixture f;
  for (size_t i = 0; i < f.nrun; ++i) std::memset(f.dm(i), static_cast<int>(i + 1), kPage);
  long long mmaps0 = rt::rt_get(rt::RC_HOST_MMAP);
  vm_page* pages[64];
  for (size_t i = 0; i < 64; ++i) pages[i] = f.run + i;
  {
    vm_lock_guard g;
    CHECK(pmap_enter(&f.w->pm, f.w->base + 16 * kPage, pages, 64, VM_PROT_READ | VM_PROT_WRITE) == KERN_SUCCESS);
  }
  CHECK(rt::rt_get(rt::RC_HOST_MMAP) == mmaps0 + 1);
  CHECK(rt::pmap_linux_resident(f.w->base, f.w->base + f.w->size) == 64);
  int bad = 0;
  for (size_t i = 0; i < 64; ++i) bad += f.va(16 + i)[100] != static_cast<char>(i + 1);
  CHECK(bad == 0);
  f.va(16)[0] = 'x';  // writes land in the frame
  CHECK(f.dm(0)[0] == 'x');
  CHECK(estimate_matches_maps());
  // Pages outside the run trap (no vmspace here: no-entry).
  CHECK(reads_trap(f.va(15)));
  CHECK(reads_trap(f.va(80)));
  CHECK(estimate_matches_maps());
}

TEST_CASE("non-contiguous frames need one mapping per run; remove restores the reservation") {
  fixture f;
  vm_page* pages[16];
  for (size_t i = 0; i < 16; ++i) pages[i] = f.run + 15 - i;  // reversed: 16 runs
  long long runs0 = rt::rt_get(rt::RC_PMAP_ENTER_RUNS);
  {
    vm_lock_guard g;
    CHECK(pmap_enter(&f.w->pm, f.w->base, pages, 16, VM_PROT_READ) == KERN_SUCCESS);
  }
  CHECK(rt::rt_get(rt::RC_PMAP_ENTER_RUNS) == runs0 + 16);
  CHECK(estimate_matches_maps());
  f.dm(15)[7] = 'q';
  CHECK(f.va(0)[7] == 'q');
  CHECK(writes_trap(f.va(0)));  // read-only
  {
    vm_lock_guard g;
    pmap_remove(&f.w->pm, f.w->base + 4 * kPage, f.w->base + 8 * kPage);
  }
  CHECK(rt::pmap_linux_resident(f.w->base, f.w->base + 16 * kPage) == 12);
  CHECK(reads_trap(f.va(5)));
  CHECK(f.va(3)[0] == 0);
  CHECK(estimate_matches_maps());
}

TEST_CASE("pv lists: one frame at two addresses; page_protect reaches both") {
  fixture f;
  vm_page* m = f.run + 3;
  {
    vm_lock_guard g;
    CHECK(pmap_enter(&f.w->pm, f.w->base + 100 * kPage, &m, 1, VM_PROT_READ | VM_PROT_WRITE) == KERN_SUCCESS);
    CHECK(pmap_enter(&f.w->pm, f.w->base + 200 * kPage, &m, 1, VM_PROT_READ | VM_PROT_WRITE) == KERN_SUCCESS);
  }
  f.va(100)[10] = 'a';
  CHECK(f.va(200)[10] == 'a');
  {
    vm_lock_guard g;
    rt::g_pmap_linux_ops.page_protect(m, VM_PROT_READ);
  }
  CHECK(writes_trap(f.va(100)));
  CHECK(writes_trap(f.va(200)));
  CHECK(f.va(200)[10] == 'a');
  CHECK(estimate_matches_maps());
  {
    vm_lock_guard g;
    rt::g_pmap_linux_ops.page_protect(m, VM_PROT_NONE);
  }
  CHECK(reads_trap(f.va(100)));
  CHECK(reads_trap(f.va(200)));
  CHECK(rt::pmap_linux_resident(f.w->base, f.w->base + f.w->size) == 0);
  CHECK(estimate_matches_maps());
}

TEST_CASE("reference/modify emulation") {
  fixture f;
  vm_page* m = f.run + 9;
  {
    vm_lock_guard g;
    CHECK(pmap_enter(&f.w->pm, f.w->base + 7 * kPage, &m, 1, VM_PROT_READ | VM_PROT_WRITE) == KERN_SUCCESS);
    CHECK(rt::g_pmap_linux_ops.is_modified(m));  // entered writable: may be written
    rt::g_pmap_linux_ops.clear_modify(m);
    CHECK(!rt::g_pmap_linux_ops.is_modified(m));
  }
  CHECK(writes_trap(f.va(7)));  // write-protected so the next write is seen
  CHECK(!reads_trap(f.va(7)));
  {
    vm_lock_guard g;
    CHECK(rt::g_pmap_linux_ops.ts_referenced(m));   // mapped => referenced; clears and unmaps
    CHECK(!rt::g_pmap_linux_ops.ts_referenced(m));  // nothing since
  }
  CHECK(reads_trap(f.va(7)));  // the next access would fault (and set it again)
  {
    vm_lock_guard g;
    CHECK(pmap_enter(&f.w->pm, f.w->base + 7 * kPage, &m, 1, VM_PROT_READ) == KERN_SUCCESS);
    CHECK(rt::g_pmap_linux_ops.ts_referenced(m));
  }
  CHECK(estimate_matches_maps());
}

TEST_CASE("protect lowers resident mappings only; re-entering the same frames only changes protection") {
  fixture f;
  vm_page* pages[32];
  for (size_t i = 0; i < 32; ++i) pages[i] = f.run + i;
  {
    vm_lock_guard g;
    CHECK(pmap_enter(&f.w->pm, f.w->base, pages, 32, VM_PROT_READ | VM_PROT_WRITE) == KERN_SUCCESS);
    pmap_protect(&f.w->pm, f.w->base + 8 * kPage, f.w->base + 40 * kPage, VM_PROT_READ);
  }
  CHECK(!writes_trap(f.va(7)));
  CHECK(writes_trap(f.va(8)));
  CHECK(writes_trap(f.va(31)));
  CHECK(reads_trap(f.va(33)));  // protect did not make the reservation accessible
  CHECK(estimate_matches_maps());
  long long mmaps0 = rt::rt_get(rt::RC_HOST_MMAP);
  {
    vm_lock_guard g;
    CHECK(pmap_enter(&f.w->pm, f.w->base + 8 * kPage, pages + 8, 24, VM_PROT_READ | VM_PROT_WRITE) == KERN_SUCCESS);
  }
  CHECK(rt::rt_get(rt::RC_HOST_MMAP) == mmaps0);  // an mprotect, not a new mapping
  CHECK(!writes_trap(f.va(20)));
  CHECK(estimate_matches_maps());
}

TEST_CASE("reservations: allowed accesses reach the trap backend; refused ones trap") {
  fixture f;
  {
    vm_lock_guard g;
    pmap_reserve(&f.w->pm, f.w->base + 300 * kPage, f.w->base + 400 * kPage, VM_PROT_READ | VM_PROT_WRITE);
  }
  CHECK(estimate_matches_maps());
  CHECK(rt::pmap_linux_reservation(f.w->base + 350 * kPage) == (VM_PROT_READ | VM_PROT_WRITE));
  // No vmspace in this window: the fault cannot be resolved, whatever the backend.
  CHECK(reads_trap(f.va(350)));
  CHECK(rtt::trap_catcher::last.reason == VMRT_TRAP_NO_ENTRY);
  int zfd = open("/dev/zero", O_RDONLY);
  errno = 0;
  CHECK(read(zfd, f.va(360), 16) == -1);  // kernel access: EFAULT, never a silent zero page
  CHECK(errno == EFAULT);
  close(zfd);
  CHECK(estimate_matches_maps());
}
