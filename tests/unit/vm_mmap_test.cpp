// vm_mmap_test.cpp — argument validation statuses, mprotect, madvise, mincore, mlock,
// FIXED / NOREPLACE / hints, populate, stack growth, reports.
#include <fcntl.h>

#include <string>

#include <sys/mman.h>

#include "vm/vm_lock.h"
#include "vm/vm_zone.h"
#include "vm_fakepmap.h"

using namespace vmrt;
using fake::rd;
using fake::wr;

namespace {
constexpr vaddr_t kBase = vaddr_t{1} << 42;
constexpr vsize_t kSize = vsize_t{256} << 20;

vm_mmap_request req(vaddr_t addr, vsize_t len, std::uint32_t flags, vm_prot_t prot = VM_PROT_DEFAULT,
                    vm_prot_t maxprot = VM_PROT_ALL) {
  vm_mmap_request r{};
  r.addr = addr;
  r.len = len;
  r.prot = prot;
  r.maxprot = maxprot;
  r.flags = flags;
  return r;
}

std::string capture(void (*fn)(const vmspace*, int), const vmspace* vs) {
  int fds[2];
  REQUIRE(pipe(fds) == 0);
  fn(vs, fds[1]);
  close(fds[1]);
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = read(fds[0], buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
  close(fds[0]);
  return out;
}
}  // namespace

TEST_CASE("argument validation gives the statuses the errno table expects") {
  fake::space s(kBase, kSize);
  vaddr_t out;
  CHECK(vm_mmap(s.vs, req(0, 0, VM_MMAP_PRIVATE), &out) == KERN_INVALID_ARGUMENT);
  CHECK(vm_mmap(s.vs, req(0, PAGE_SIZE, VM_MMAP_PRIVATE | VM_MMAP_SHARED), &out) == KERN_INVALID_ARGUMENT);
  CHECK(vm_mmap(s.vs, req(0, PAGE_SIZE, 0), &out) == KERN_INVALID_ARGUMENT);
  CHECK(vm_mmap(s.vs, req(kBase + 1, PAGE_SIZE, VM_MMAP_PRIVATE | VM_MMAP_FIXED), &out) == KERN_INVALID_ARGUMENT);
  CHECK(vm_mmap(s.vs, req(0, PAGE_SIZE, VM_MMAP_PRIVATE, VM_PROT_DEFAULT, VM_PROT_READ), &out) == KERN_NO_ACCESS);
  CHECK(vm_mmap(s.vs, req(kBase + kSize, PAGE_SIZE, VM_MMAP_PRIVATE | VM_MMAP_FIXED), &out) == KERN_NO_SPACE);
  CHECK(vm_mmap(s.vs, req(0, kSize + PAGE_SIZE, VM_MMAP_PRIVATE), &out) == KERN_NO_SPACE);
  CHECK(vm_mmap(s.vs, req(0, ~vsize_t{0} - 5, VM_MMAP_PRIVATE), &out) == KERN_NO_SPACE);
  vaddr_t a = s.mmap(4 * PAGE_SIZE);
  CHECK(vm_mmap(s.vs, req(a + PAGE_SIZE, PAGE_SIZE, VM_MMAP_PRIVATE | VM_MMAP_NOREPLACE), &out) == KERN_ALREADY_EXISTS);
  CHECK(vm_munmap(s.vs, a + 1, PAGE_SIZE) == KERN_INVALID_ARGUMENT);
  CHECK(vm_munmap(s.vs, a, 0) == KERN_INVALID_ARGUMENT);
  CHECK(vm_munmap(s.vs, kBase + kSize, PAGE_SIZE) == KERN_INVALID_ARGUMENT);
  CHECK(vm_munmap(s.vs, a + 100 * PAGE_SIZE, PAGE_SIZE) == KERN_SUCCESS);  // nothing there: fine
  CHECK(vm_mprotect(s.vs, a + 1, PAGE_SIZE, VM_PROT_READ) == KERN_INVALID_ARGUMENT);
  CHECK(vm_mprotect(s.vs, a, 0, VM_PROT_READ) == KERN_SUCCESS);
  CHECK(vm_mprotect(s.vs, a, 5 * PAGE_SIZE, VM_PROT_READ) == KERN_INVALID_ADDRESS);  // hole after
  CHECK(vm_mprotect(s.vs, a, PAGE_SIZE, 0x10) == KERN_INVALID_ARGUMENT);
  CHECK(vm_madvise(s.vs, a + 1, PAGE_SIZE, VM_ADVICE_NORMAL) == KERN_INVALID_ARGUMENT);
  CHECK(vm_madvise(s.vs, a, PAGE_SIZE, VM_ADVICE_COUNT) == KERN_INVALID_ARGUMENT);
  CHECK(vm_madvise(s.vs, a, 0, VM_ADVICE_DONTNEED) == KERN_SUCCESS);
  CHECK(vm_madvise(s.vs, a + 50 * PAGE_SIZE, PAGE_SIZE, VM_ADVICE_NORMAL) == KERN_INVALID_ADDRESS);
  std::uint8_t vec[8];
  CHECK(vm_mincore(s.vs, a + 1, PAGE_SIZE, vec) == KERN_INVALID_ARGUMENT);
  CHECK(vm_mincore(s.vs, a, 8 * PAGE_SIZE, vec) == KERN_INVALID_ADDRESS);
  CHECK(vm_mincore(s.vs, a, 0, vec) == KERN_SUCCESS);
  CHECK(vm_minherit(s.vs, a, PAGE_SIZE, static_cast<vm_inherit_t>(9)) == KERN_INVALID_ARGUMENT);
  CHECK(vm_mlock(s.vs, a + 100 * PAGE_SIZE, PAGE_SIZE) == KERN_INVALID_ADDRESS);
  CHECK(vm_mlock(s.vs, a, 0) == KERN_SUCCESS);
  CHECK(fake::check_all() == "");
}

TEST_CASE("FIXED replaces, NOREPLACE refuses, hints are honoured when free") {
  fake::space s(kBase, kSize);
  vaddr_t a = s.mmap(8 * PAGE_SIZE);
  wr(s.vs, a + PAGE_SIZE, 9);
  vaddr_t out = 0;
  REQUIRE(vm_mmap(s.vs, req(a + PAGE_SIZE, PAGE_SIZE, VM_MMAP_PRIVATE | VM_MMAP_FIXED), &out) == KERN_SUCCESS);
  CHECK(out == a + PAGE_SIZE);
  CHECK(rd(s.vs, a + PAGE_SIZE) == 0);  // replaced by fresh memory
  vaddr_t h = kBase + (64 << 20);
  REQUIRE(vm_mmap(s.vs, req(h + 5, PAGE_SIZE, VM_MMAP_PRIVATE), &out) == KERN_SUCCESS);
  CHECK(out == h);
  REQUIRE(vm_mmap(s.vs, req(h, PAGE_SIZE, VM_MMAP_PRIVATE), &out) == KERN_SUCCESS);
  CHECK(out == h + PAGE_SIZE);  // first fit above the hint
  REQUIRE(vm_mmap(s.vs, req(h + 8 * PAGE_SIZE, PAGE_SIZE, VM_MMAP_PRIVATE | VM_MMAP_NOREPLACE), &out) == KERN_SUCCESS);
  CHECK(out == h + 8 * PAGE_SIZE);
  CHECK(fake::check_all() == "");
}

TEST_CASE("adjacent anonymous mappings coalesce into one entry and one object") {
  fake::space s(kBase, kSize);
  vaddr_t a = s.mmap(4 * PAGE_SIZE);
  wr(s.vs, a, 1);  // gives the entry an object
  vaddr_t b = s.mmap(4 * PAGE_SIZE);
  CHECK(b == a + 4 * PAGE_SIZE);
  {
    vm_lock_guard g;
    vm_map* m = reinterpret_cast<vm_map*>(s.vs);
    CHECK(m->nentries == 1);
  }
  wr(s.vs, b, 2);
  CHECK(rd(s.vs, a) == 1);
  CHECK(fake::check_all() == "");
}

TEST_CASE("mprotect lowers resident mappings, raising works by faulting, max_protection is enforced") {
  fake::space s(kBase, kSize);
  vaddr_t a = s.mmap(8 * PAGE_SIZE);
  wr(s.vs, a, 1);
  REQUIRE(vm_mprotect(s.vs, a, 2 * PAGE_SIZE, VM_PROT_READ) == KERN_SUCCESS);
  CHECK(fake::mapped_prot(s.vs, a) == VM_PROT_READ);
  std::uint8_t b = 5;
  kern_return_t kr = KERN_SUCCESS;
  CHECK_FALSE(fake::access(s.vs, a, true, &b, &kr));
  CHECK(kr == KERN_PROTECTION_FAILURE);
  CHECK(rd(s.vs, a) == 1);
  CHECK(fake::check_all() == "");
  REQUIRE(vm_mprotect(s.vs, a, 2 * PAGE_SIZE, VM_PROT_DEFAULT) == KERN_SUCCESS);
  wr(s.vs, a, 2);
  CHECK(rd(s.vs, a) == 2);
  REQUIRE(vm_mprotect(s.vs, a, 8 * PAGE_SIZE, VM_PROT_NONE) == KERN_SUCCESS);
  CHECK(!fake::mapped(s.vs, a));
  CHECK_FALSE(fake::access(s.vs, a, false, &b, &kr));
  CHECK(kr == KERN_PROTECTION_FAILURE);
  REQUIRE(vm_mprotect(s.vs, a, 8 * PAGE_SIZE, VM_PROT_DEFAULT) == KERN_SUCCESS);
  CHECK(rd(s.vs, a) == 2);
  {
    vm_lock_guard g;
    CHECK(reinterpret_cast<vm_map*>(s.vs)->nentries == 1);  // re-merged
  }
  vaddr_t ro = 0;
  REQUIRE(vm_mmap(s.vs, req(0, PAGE_SIZE, VM_MMAP_PRIVATE, VM_PROT_READ, VM_PROT_READ), &ro) == KERN_SUCCESS);
  CHECK(vm_mprotect(s.vs, ro, PAGE_SIZE, VM_PROT_DEFAULT) == KERN_NO_ACCESS);
  CHECK(fake::check_all() == "");
}

TEST_CASE("madvise: DONTNEED reads zeros on private memory, keeps shared contents; FREE is lazy; WILLNEED prefaults") {
  fake::space s(kBase, kSize);
  vaddr_t a = s.mmap(16 * PAGE_SIZE);
  for (int k = 0; k < 16; ++k) wr(s.vs, a + k * PAGE_SIZE, 3);
  auto freed0 = fake::ctr(V_PAGES_FREED);
  REQUIRE(vm_madvise(s.vs, a + 4 * PAGE_SIZE, 4 * PAGE_SIZE, VM_ADVICE_DONTNEED) == KERN_SUCCESS);
  CHECK(fake::ctr(V_PAGES_FREED) >= freed0 + 4);
  std::uint8_t vec[16];
  REQUIRE(vm_mincore(s.vs, a, 16 * PAGE_SIZE, vec) == KERN_SUCCESS);
  CHECK(vec[3] == 1);
  CHECK(vec[4] == 0);
  CHECK(vec[7] == 0);
  CHECK(vec[8] == 1);
  CHECK(rd(s.vs, a + 5 * PAGE_SIZE) == 0);
  CHECK(rd(s.vs, a + 8 * PAGE_SIZE) == 3);
  // FREE is lazy: the data stays until the pageout daemon takes a page (none runs here), and
  // a page used again keeps it (api_madvise_pageout_test has the daemon's side).
  REQUIRE(vm_madvise(s.vs, a, 16 * PAGE_SIZE, VM_ADVICE_FREE) == KERN_SUCCESS);
  CHECK(rd(s.vs, a + 9 * PAGE_SIZE) == 3);
  CHECK(rd(s.vs, a + 5 * PAGE_SIZE) == 0);
  vaddr_t sh = s.mmap(4 * PAGE_SIZE, VM_PROT_DEFAULT, VM_MMAP_SHARED);
  wr(s.vs, sh, 8);
  REQUIRE(vm_madvise(s.vs, sh, 4 * PAGE_SIZE, VM_ADVICE_DONTNEED) == KERN_SUCCESS);
  CHECK(!fake::mapped(s.vs, sh));
  CHECK(rd(s.vs, sh) == 8);
  CHECK(vm_madvise(s.vs, sh, PAGE_SIZE, VM_ADVICE_FREE) == KERN_INVALID_ARGUMENT);
  vaddr_t w = s.mmap(300 * PAGE_SIZE);
  REQUIRE(vm_madvise(s.vs, w, 300 * PAGE_SIZE, VM_ADVICE_WILLNEED) == KERN_SUCCESS);
  std::uint8_t v2[300];
  REQUIRE(vm_mincore(s.vs, w, 300 * PAGE_SIZE, v2) == KERN_SUCCESS);
  for (int k = 0; k < 300; ++k) CHECK(v2[k] == 1);
  REQUIRE(vm_madvise(s.vs, w, 300 * PAGE_SIZE, VM_ADVICE_RANDOM) == KERN_SUCCESS);
  vaddr_t r = s.mmap(64 * PAGE_SIZE);
  REQUIRE(vm_madvise(s.vs, r, 64 * PAGE_SIZE, VM_ADVICE_RANDOM) == KERN_SUCCESS);
  wr(s.vs, r + 10 * PAGE_SIZE, 1);
  CHECK(!fake::mapped(s.vs, r + 11 * PAGE_SIZE));  // random: no fault-around
  CHECK(fake::check_all() == "");
}

TEST_CASE("POPULATE makes everything resident in few enters") {
  fake::space s(kBase, kSize);
  auto e0 = s.f->enters;
  vaddr_t a = s.mmap(2048 * PAGE_SIZE, VM_PROT_DEFAULT, VM_MMAP_PRIVATE | VM_MMAP_POPULATE);
  CHECK(s.f->enters - e0 <= 8);
  std::uint8_t vec[2048];
  REQUIRE(vm_mincore(s.vs, a, 2048 * PAGE_SIZE, vec) == KERN_SUCCESS);
  int res = 0;
  for (auto v : vec) res += v;
  CHECK(res == 2048);
  CHECK(fake::check_all() == "");
}

TEST_CASE("mlock wires and munlock unwires; munmap of wired memory unwires") {
  fake::space s(kBase, kSize);
  vaddr_t a = s.mmap(8 * PAGE_SIZE);
  auto w0 = fake::ctr(V_WIRE_COUNT);
  REQUIRE(vm_mlock(s.vs, a + 10, 3 * PAGE_SIZE) == KERN_SUCCESS);  // unaligned: widened to 4 pages
  CHECK(fake::ctr(V_WIRE_COUNT) == w0 + 4);
  CHECK(vm_madvise(s.vs, a, PAGE_SIZE, VM_ADVICE_DONTNEED) == KERN_INVALID_ARGUMENT);
  REQUIRE(vm_munlock(s.vs, a, 2 * PAGE_SIZE) == KERN_SUCCESS);
  CHECK(fake::ctr(V_WIRE_COUNT) == w0 + 2);
  REQUIRE(vm_munmap(s.vs, a, 8 * PAGE_SIZE) == KERN_SUCCESS);
  CHECK(fake::ctr(V_WIRE_COUNT) == w0);
  CHECK(fake::check_all() == "");
}

TEST_CASE("a GROWS_DOWN entry grows on faults just below it") {
  fake::space s(kBase, kSize);
  vaddr_t top = kBase + (128 << 20);
  vaddr_t out;
  REQUIRE(vm_mmap(s.vs, req(top - 4 * PAGE_SIZE, 4 * PAGE_SIZE, VM_MMAP_PRIVATE | VM_MMAP_FIXED | VM_MMAP_GROWSDOWN),
                  &out) == KERN_SUCCESS);
  auto g0 = fake::ctr(V_FAULT_STACK_GROW);
  wr(s.vs, top - 20 * PAGE_SIZE, 4);
  CHECK(fake::ctr(V_FAULT_STACK_GROW) == g0 + 1);
  CHECK(rd(s.vs, top - 20 * PAGE_SIZE) == 4);
  std::uint8_t b;
  kern_return_t kr;
  CHECK_FALSE(fake::access(s.vs, top - (64 << 20), false, &b, &kr));  // too far below
  CHECK(kr == KERN_INVALID_ADDRESS);
  CHECK(fake::check_all() == "");
}

TEST_CASE("munmap frees private pages and the frames come back") {
  fake::space s(kBase, kSize);
  frame_t free0;
  {
    vm_lock_guard g;
    free0 = vm_page_free_count();
  }
  vaddr_t a = s.mmap(1024 * PAGE_SIZE);
  for (int k = 0; k < 1024; k += 7) wr(s.vs, a + k * PAGE_SIZE, 1);
  REQUIRE(vm_munmap(s.vs, a, 1024 * PAGE_SIZE) == KERN_SUCCESS);
  {
    vm_lock_guard g;
    CHECK(vm_page_free_count() == free0);
  }
  CHECK(fake::check_all() == "");
}

TEST_CASE("procstat and vmstat reports") {
  fake::space s(kBase, kSize);
  vaddr_t a = s.mmap(8 * PAGE_SIZE);
  wr(s.vs, a, 1);
  std::string ps = capture(vmspace_report_procstat, s.vs);
  CHECK(ps.find("START") != std::string::npos);
  CHECK(ps.find(": in core, idle ") != std::string::npos);  // the swapper's state line
  CHECK(ps.find("rw-") != std::string::npos);
  CHECK(ps.find(" df") != std::string::npos);
  int fds[2];
  REQUIRE(pipe(fds) == 0);
  vm_stats_report(fds[1]);
  close(fds[1]);
  char buf[16384];
  ssize_t n = read(fds[0], buf, sizeof buf - 1);
  close(fds[0]);
  REQUIRE(n > 0);
  buf[n] = 0;
  std::string vs(buf);
  CHECK(vs.find(" page faults\n") != std::string::npos);
  CHECK(vs.find(" copy-on-write optimized faults\n") != std::string::npos);
  CHECK(vmspace_check(s.vs, 2) == KERN_SUCCESS);
  REQUIRE(pipe(fds) == 0);
  vm_zone_report(fds[1]);
  close(fds[1]);
  n = read(fds[0], buf, sizeof buf - 1);
  close(fds[0]);
  REQUIRE(n > 0);
  buf[n] = 0;
  std::string z(buf);
  CHECK(z.find("VM MAP ENTRY:") != std::string::npos);
  CHECK(z.find("VM OBJECT:") != std::string::npos);
  CHECK(z.find("VM RADIX:") != std::string::npos);
}

TEST_CASE("mapping a pager-backed object: the device stub refuses faults with a memory error, a vnode object without its file with KERN_PAGER_ABSENT") {
  for (vm_object_type type : {OBJT_DEVICE, OBJT_VNODE}) {
    fake::space s(kBase, kSize);
    vm_object* obj;
    {
      vm_lock_guard g;
      obj = vm_object_allocate(type, 4);
    }
    vm_mmap_request r = req(0, 4 * PAGE_SIZE, VM_MMAP_SHARED);
    r.object = obj;
    vaddr_t a = 0;
    REQUIRE(vm_mmap(s.vs, r, &a) == KERN_SUCCESS);
    CHECK(fake::check_all({{obj, 1}}) == "");
    std::uint8_t b;
    kern_return_t kr = KERN_SUCCESS;
    CHECK_FALSE(fake::access(s.vs, a, false, &b, &kr));
    CHECK(kr == (type == OBJT_DEVICE ? KERN_MEMORY_ERROR : KERN_PAGER_ABSENT));
    REQUIRE(vm_munmap(s.vs, a, 4 * PAGE_SIZE) == KERN_SUCCESS);
    {
      vm_lock_guard g;
      CHECK(obj->ref_count == 1);
      vm_object_deallocate(obj);
    }
    CHECK(fake::check_all() == "");
  }
}

TEST_CASE("a zone touches only the pages it hands out") {
  // A slab used to be threaded into a free list through every item when mapped: each zone
  // touched at boot cost 64 KB of RSS (and pages a host fork copied).
  static vm_zone z = VM_ZONE_INIT("TEST LAZY", 96, 0);
  vm_lock_guard g;
  auto* first = static_cast<char*>(vm_zone_alloc(&z));
  REQUIRE(first != nullptr);
  // Items come out in address order, zeroed, and a freed one is handed out again first.
  auto* second = static_cast<char*>(vm_zone_alloc(&z));
  CHECK(second == first + 96);
  vm_zone_free(&z, first);
  CHECK(vm_zone_alloc(&z) == first);
  CHECK(z.nfree == kZoneFirstItems - 2);
  // Runs of 4, 8, 16, ... items from the shared chunk, then slabs of their own.
  const std::size_t per_slab = kZoneSlabBytes / 96;
  std::size_t small = 0, runs = 0;
  for (std::size_t n = kZoneFirstItems; n < per_slab; n *= 2, ++runs) small += n;
  for (std::size_t k = 2; k < small; ++k) REQUIRE(vm_zone_alloc(&z) != nullptr);
  CHECK(z.runs == runs);
  CHECK(z.nfree == 0);
  // The next item starts a slab: only its page is touched.
  auto* slab = static_cast<char*>(vm_zone_alloc(&z));
  REQUIRE(slab != nullptr);
  CHECK((reinterpret_cast<std::uintptr_t>(slab) & 4095) == 0);
  unsigned char vec[kZoneSlabBytes / 4096];
  REQUIRE(mincore(slab, kZoneSlabBytes, vec) == 0);
  int resident = 0;
  for (unsigned char v : vec) resident += v & 1;
  CHECK(resident == 1);
  // Past it, a second slab.
  for (std::size_t k = 1; k < per_slab + 3; ++k) REQUIRE(vm_zone_alloc(&z) != nullptr);
  CHECK(z.runs == runs + 2);
  CHECK(z.used == small + per_slab + 3);
}

TEST_CASE("zones share the pages of their first runs") {
  // Every process uses four zones at boot (vmspaces, maps, objects, map entries), a few
  // items each: with a 64 KB slab of its own per zone, that was four pages written (four
  // page faults in every exec'd process) where one holds them all.
  static vm_zone a = VM_ZONE_INIT("TEST SHARE A", 272, 0);
  static vm_zone b = VM_ZONE_INIT("TEST SHARE B", 200, 0);
  static vm_zone c = VM_ZONE_INIT("TEST SHARE C", 120, 0);
  vm_lock_guard g;
  auto pg = [](void* p) { return reinterpret_cast<std::uintptr_t>(p) >> 12; };
  auto* pa = vm_zone_alloc(&a);
  auto* pb = vm_zone_alloc(&b);
  auto* pc = vm_zone_alloc(&c);
  REQUIRE((pa != nullptr && pb != nullptr && pc != nullptr));
  // Their runs are carved one after another (a new chunk at most once among three runs
  // this small): two of them at least share a page.
  CHECK((pg(pa) == pg(pb) || pg(pb) == pg(pc)));
  CHECK((a.runs == 1 && b.runs == 1 && c.runs == 1));
}
