// vm_fork_test.cpp — vmspace_fork: inheritance, copy-on-write (copy vs move-up), shadow
// chains kept short by collapse (the fork-and-reap case), contents checked through the
// direct map.
#include "vm/vm_fault.h"
#include "vm/vmspace.h"
#include "vm_fakepmap.h"

using namespace vmrt;
using fake::rd;
using fake::wr;

namespace {
constexpr vaddr_t kBase = vaddr_t{1} << 40;
constexpr vsize_t kSize = vsize_t{64} << 20;
vaddr_t g_next_child = (vaddr_t{1} << 41);

// Fork s into a fresh window.
fake::space* fork_of(fake::space& s) {
  fake::fpmap* f = fake::new_pmap(g_next_child, kSize);
  g_next_child += kSize;
  vmspace* c = nullptr;
  REQUIRE(vmspace_fork(s.vs, &f->pm, &c) == KERN_SUCCESS);
  return new fake::space(c, f);
}

vm_object* object_at(vmspace* vs, vaddr_t va) {
  bool held = vm_lock_owned();
  if (!held) vm_lock_acquire();
  vm_map* m = reinterpret_cast<vm_map*>(vs);  // vmspace starts with its map
  vm_map_entry* e;
  bool found = vm_map_lookup_entry(m, va, &e);
  if (!held) vm_lock_release();
  REQUIRE(found);
  return e->object;
}
}  // namespace

TEST_CASE("COPY inheritance: both sides see the old contents, writes stay private") {
  fake::space p(kBase, kSize);
  vaddr_t a = p.mmap(32 * PAGE_SIZE);
  for (int k = 0; k < 32; ++k) wr(p.vs, a + k * PAGE_SIZE, static_cast<std::uint8_t>(k + 1));
  fake::space* c = fork_of(p);
  vaddr_t ca = a - kBase + vmspace_min(c->vs);
  CHECK(fake::check_all() == "");
  // Parent's resident pages are write-protected now.
  CHECK((fake::mapped_prot(p.vs, a) & VM_PROT_WRITE) == 0);
  for (int k = 0; k < 32; ++k) CHECK(rd(c->vs, ca + k * PAGE_SIZE) == k + 1);
  auto cow0 = fake::ctr(V_COW_FAULTS);
  wr(c->vs, ca, 100);
  // The child's reads took no fault (fork prefault), so this write starts the entry's
  // sequential stream at its first page: kCowAheadMin pages are copied ahead.
  CHECK(fake::ctr(V_COW_FAULTS) == cow0 + kCowAheadMin);
  CHECK(rd(p.vs, a) == 1);
  wr(p.vs, a + PAGE_SIZE, 200);
  CHECK(rd(c->vs, ca + PAGE_SIZE) == 2);
  CHECK(rd(p.vs, a + PAGE_SIZE) == 200);
  CHECK(rd(c->vs, ca) == 100);
  CHECK(fake::check_all() == "");
  delete c;
  CHECK(fake::check_all() == "");
  // After the child is gone the parent's chain collapsed back to one object.
  CHECK(vm_object_chain_depth(object_at(p.vs, a)) == 1);
  for (int k = 2; k < 32; ++k) CHECK(rd(p.vs, a + k * PAGE_SIZE) == k + 1);
}

TEST_CASE("a child's read faults map runs of the parent's pages read-only, one enter each") {
  g_vmspace_tunables.fork_prefault = false;  // read faults in the child are what is tested
  fake::space p(kBase, kSize);
  vaddr_t a = p.mmap(64 * PAGE_SIZE);
  for (int k = 0; k < 64; ++k) wr(p.vs, a + k * PAGE_SIZE, static_cast<std::uint8_t>(k));
  fake::space* c = fork_of(p);
  vaddr_t d = vmspace_min(c->vs) - kBase;
  auto e0 = c->f->enters;
  CHECK(rd(c->vs, a + d + 20 * PAGE_SIZE) == 20);
  CHECK(c->f->enters == e0 + 1);
  // The normal advice window around page 20, clamped to the 64 pages.
  const int lo = 20 - kFaultWindow[VM_ADVICE_NORMAL].behind > 0 ? 20 - kFaultWindow[VM_ADVICE_NORMAL].behind : 0;
  const int hi = 20 + kFaultWindow[VM_ADVICE_NORMAL].ahead + 1 < 64 ? 20 + kFaultWindow[VM_ADVICE_NORMAL].ahead + 1 : 64;
  for (int k = lo; k < hi; ++k) {
    CHECK(fake::mapped(c->vs, a + d + k * PAGE_SIZE));
    CHECK(fake::mapped_prot(c->vs, a + d + k * PAGE_SIZE) == VM_PROT_READ);
  }
  for (int k = 0; k < lo; ++k) CHECK(!fake::mapped(c->vs, a + d + k * PAGE_SIZE));
  for (int k = hi; k < 64; ++k) CHECK(!fake::mapped(c->vs, a + d + k * PAGE_SIZE));
  for (int k = 0; k < 64; ++k) CHECK(rd(c->vs, a + d + k * PAGE_SIZE) == k);
  wr(c->vs, a + d + 30 * PAGE_SIZE, 99);  // still copy-on-write
  CHECK(rd(p.vs, a + 30 * PAGE_SIZE) == 30);
  CHECK(fake::check_all() == "");
  delete c;
  g_vmspace_tunables.fork_prefault = true;
}

TEST_CASE("fork prefault: the child's pmap gets the parent's resident pages read-only, residency unchanged") {
  REQUIRE(g_vmspace_tunables.fork_prefault);
  fake::space p(kBase, kSize);
  vaddr_t a = p.mmap(96 * PAGE_SIZE);
  vm_madvise(p.vs, a, 96 * PAGE_SIZE, VM_ADVICE_RANDOM);  // exactly the pages written are resident
  for (int k = 0; k < 96; ++k)
    if (k % 3 != 2) wr(p.vs, a + k * PAGE_SIZE, static_cast<std::uint8_t>(k + 1));
  std::uint8_t pvec[96];
  REQUIRE(vm_mincore(p.vs, a, 96 * PAGE_SIZE, pvec) == KERN_SUCCESS);
  auto pre0 = fake::ctr(V_FORK_PREFAULT_PAGES);
  fake::space* c = fork_of(p);
  vaddr_t d = vmspace_min(c->vs) - kBase;
  CHECK(fake::ctr(V_FORK_PREFAULT_PAGES) == pre0 + 64);
  CHECK(fake::check_all() == "");
  // Exactly the parent's resident pages are mapped in the child, read-only.
  for (int k = 0; k < 96; ++k) {
    bool res = k % 3 != 2;
    CHECK(fake::mapped(c->vs, a + d + k * PAGE_SIZE) == res);
    if (res) CHECK(fake::mapped_prot(c->vs, a + d + k * PAGE_SIZE) == VM_PROT_READ);
  }
  // mincore is about the VM's residency (the object chain), not translations: the child
  // reports what the parent does, before and after.
  std::uint8_t cvec[96];
  REQUIRE(vm_mincore(c->vs, a + d, 96 * PAGE_SIZE, cvec) == KERN_SUCCESS);
  for (int k = 0; k < 96; ++k) CHECK((cvec[k] & 1) == (pvec[k] & 1));
  // Child reads of resident pages take no fault and see the parent's data.
  auto f0 = fake::ctr(V_FAULTS);
  for (int k = 0; k < 96; ++k)
    if (k % 3 != 2) CHECK(rd(c->vs, a + d + k * PAGE_SIZE) == k + 1);
  CHECK(fake::ctr(V_FAULTS) == f0);
  // Never-touched pages read zeros (a fault) in the child.
  CHECK(rd(c->vs, a + d + 2 * PAGE_SIZE) == 0);
  // Writes stay private in both directions.
  wr(c->vs, a + d + 10 * PAGE_SIZE, 200);
  wr(p.vs, a + 13 * PAGE_SIZE, 201);
  CHECK(rd(p.vs, a + 10 * PAGE_SIZE) == 11);
  CHECK(rd(c->vs, a + d + 13 * PAGE_SIZE) == 14);
  CHECK(rd(c->vs, a + d + 10 * PAGE_SIZE) == 200);
  CHECK(rd(p.vs, a + 13 * PAGE_SIZE) == 201);
  for (int k = 0; k < 96; ++k) {
    if (k % 3 == 2 || k == 10 || k == 13) continue;
    CHECK(rd(c->vs, a + d + k * PAGE_SIZE) == k + 1);
    CHECK(rd(p.vs, a + k * PAGE_SIZE) == k + 1);
  }
  CHECK(fake::check_all() == "");
  // A grandchild forked from the child sees the child's view.
  fake::space* g = fork_of(*c);
  vaddr_t gd = vmspace_min(g->vs) - vmspace_min(c->vs);
  CHECK(rd(g->vs, a + d + gd + 10 * PAGE_SIZE) == 200);
  CHECK(rd(g->vs, a + d + gd + 13 * PAGE_SIZE) == 14);
  CHECK(fake::check_all() == "");
  delete g;
  delete c;
  CHECK(fake::check_all() == "");
  for (int k = 0; k < 96; ++k)
    if (k % 3 != 2 && k != 13) CHECK(rd(p.vs, a + k * PAGE_SIZE) == k + 1);
}

TEST_CASE("SHARE, NONE and ZERO inheritance") {
  fake::space p(kBase, kSize);
  vaddr_t sh = p.mmap(4 * PAGE_SIZE);
  vaddr_t no = p.mmap(4 * PAGE_SIZE);
  vaddr_t ze = p.mmap(4 * PAGE_SIZE);
  vaddr_t sa = p.mmap(4 * PAGE_SIZE, VM_PROT_DEFAULT, VM_MMAP_SHARED);  // MAP_SHARED: shared by default
  REQUIRE(vm_minherit(p.vs, sh, 4 * PAGE_SIZE, VM_INHERIT_SHARE) == KERN_SUCCESS);
  REQUIRE(vm_minherit(p.vs, no, 4 * PAGE_SIZE, VM_INHERIT_NONE) == KERN_SUCCESS);
  REQUIRE(vm_minherit(p.vs, ze, 4 * PAGE_SIZE, VM_INHERIT_ZERO) == KERN_SUCCESS);
  wr(p.vs, sh, 11);
  wr(p.vs, ze, 33);
  wr(p.vs, sa + PAGE_SIZE, 44);
  fake::space* c = fork_of(p);
  vaddr_t d = vmspace_min(c->vs) - kBase;
  CHECK(fake::check_all() == "");
  CHECK(rd(c->vs, sh + d) == 11);
  wr(c->vs, sh + d, 12);
  CHECK(rd(p.vs, sh) == 12);
  wr(p.vs, sh + PAGE_SIZE, 13);
  CHECK(rd(c->vs, sh + PAGE_SIZE + d) == 13);
  std::uint8_t b;
  kern_return_t kr = KERN_SUCCESS;
  CHECK_FALSE(fake::access(c->vs, no + d, false, &b, &kr));
  CHECK(kr == KERN_INVALID_ADDRESS);
  CHECK(rd(c->vs, ze + d) == 0);
  CHECK(rd(p.vs, ze) == 33);
  CHECK(rd(c->vs, sa + PAGE_SIZE + d) == 44);
  wr(c->vs, sa + d, 45);
  CHECK(rd(p.vs, sa) == 45);
  CHECK(fake::check_all() == "");
  delete c;
  CHECK(fake::check_all() == "");
  CHECK(rd(p.vs, sh) == 12);
}

TEST_CASE("repeated fork and reap keeps the parent's shadow chain short") {
  fake::space p(kBase, kSize);
  constexpr int kPages = 16;
  vaddr_t a = p.mmap(kPages * PAGE_SIZE);
  for (int k = 0; k < kPages; ++k) wr(p.vs, a + k * PAGE_SIZE, 1);
  unsigned max_depth = 0;
  auto col0 = fake::ctr(V_COLLAPSES);
  for (int cycle = 0; cycle < 1000; ++cycle) {
    fake::space* c = fork_of(p);
    vaddr_t d = vmspace_min(c->vs) - kBase;
    wr(p.vs, a + (cycle % kPages) * PAGE_SIZE, static_cast<std::uint8_t>(cycle));
    if (cycle % 3 == 0) wr(c->vs, a + ((cycle + 1) % kPages) * PAGE_SIZE + d, 0xFF);
    if (cycle % 5 == 0) CHECK(rd(c->vs, a + (cycle % kPages) * PAGE_SIZE + d) != static_cast<std::uint8_t>(cycle) + 0);
    unsigned depth = vm_object_chain_depth(object_at(p.vs, a));
    if (depth > max_depth) max_depth = depth;
    if (cycle % 50 == 0) REQUIRE(fake::check_all() == "");
    delete c;
    depth = vm_object_chain_depth(object_at(p.vs, a));
    if (depth > max_depth) max_depth = depth;
  }
  CHECK(max_depth <= 2);
  CHECK(fake::ctr(V_COLLAPSES) > col0);
  CHECK(fake::check_all() == "");
  // Contents: the last value written to each page survives.
  for (int k = 0; k < kPages; ++k) {
    int last = -1;
    for (int cycle = 0; cycle < 1000; ++cycle)
      if (cycle % kPages == k) last = cycle;
    CHECK(rd(p.vs, a + k * PAGE_SIZE) == static_cast<std::uint8_t>(last));
  }
}

TEST_CASE("copy-on-write move-up when the backing object has one reference (collapse deferred)") {
  g_vm_object_tunables.collapse_on_deallocate = false;
  {
    fake::space p(kBase, kSize);
    vaddr_t a = p.mmap(8 * PAGE_SIZE);
    for (int k = 0; k < 8; ++k) wr(p.vs, a + k * PAGE_SIZE, static_cast<std::uint8_t>(50 + k));
    fake::space* c = fork_of(p);
    auto cow0 = fake::ctr(V_COW_FAULTS), opt0 = fake::ctr(V_COW_OPTIM);
    wr(p.vs, a, 1);  // shadow + copy: the child still shares the page
    CHECK(fake::ctr(V_COW_FAULTS) == cow0 + 1);
    delete c;
    CHECK(vm_object_chain_depth(object_at(p.vs, a)) == 2);
    frame_t before = 0;
    {
      vm_lock_guard g;
      vm_object* o = object_at(p.vs, a);
      before = vm_page_frame(vm_object_chain_lookup(o, 3, nullptr));
    }
    wr(p.vs, a + 3 * PAGE_SIZE, 9);  // backing has one reference: the page moves up
    CHECK(fake::ctr(V_COW_OPTIM) == opt0 + 1);
    CHECK(fake::ctr(V_COW_FAULTS) == cow0 + 1);
    CHECK(fake::mapped_frame(p.vs, a + 3 * PAGE_SIZE) == before);
    CHECK(rd(p.vs, a + 3 * PAGE_SIZE) == 9);
    CHECK(rd(p.vs, a + 4 * PAGE_SIZE) == 54);
    CHECK(fake::check_all() == "");
    // An explicit collapse now folds the chain.
    {
      vm_lock_guard g;
      vm_object_collapse(object_at(p.vs, a));
    }
    CHECK(vm_object_chain_depth(object_at(p.vs, a)) == 1);
    for (int k = 4; k < 8; ++k) CHECK(rd(p.vs, a + k * PAGE_SIZE) == 50 + k);
    CHECK(fake::check_all() == "");
  }
  g_vm_object_tunables.collapse_on_deallocate = true;
}

TEST_CASE("bypass: a shadow that covers every backing page skips it") {
  fake::space p(kBase, kSize);
  vaddr_t a = p.mmap(4 * PAGE_SIZE);
  for (int k = 0; k < 4; ++k) wr(p.vs, a + k * PAGE_SIZE, 1);
  fake::space* c = fork_of(p);  // child keeps the original object alive (ref 2)
  for (int k = 0; k < 4; ++k) wr(p.vs, a + k * PAGE_SIZE, 2);  // parent shadows every page
  auto by0 = fake::ctr(V_BYPASSES);
  {
    vm_lock_guard g;
    vm_object* o = object_at(p.vs, a);
    REQUIRE(vm_object_chain_depth(o) == 2);
    vm_object_collapse(o);
    CHECK(vm_object_chain_depth(o) == 1);
  }
  CHECK(fake::ctr(V_BYPASSES) == by0 + 1);
  vaddr_t d = vmspace_min(c->vs) - kBase;
  for (int k = 0; k < 4; ++k) CHECK(rd(c->vs, a + k * PAGE_SIZE + d) == 1);
  for (int k = 0; k < 4; ++k) CHECK(rd(p.vs, a + k * PAGE_SIZE) == 2);
  CHECK(fake::check_all() == "");
  delete c;
  CHECK(fake::check_all() == "");
}

TEST_CASE("DONTNEED after fork gives zeros without touching the other side") {
  fake::space p(kBase, kSize);
  vaddr_t a = p.mmap(8 * PAGE_SIZE);
  for (int k = 0; k < 8; ++k) wr(p.vs, a + k * PAGE_SIZE, 7);
  fake::space* c = fork_of(p);
  vaddr_t d = vmspace_min(c->vs) - kBase;
  REQUIRE(vm_madvise(c->vs, a + d + 2 * PAGE_SIZE, 2 * PAGE_SIZE, VM_ADVICE_DONTNEED) == KERN_SUCCESS);
  CHECK(rd(c->vs, a + d + 2 * PAGE_SIZE) == 0);
  CHECK(rd(c->vs, a + d + 3 * PAGE_SIZE) == 0);
  CHECK(rd(c->vs, a + d + 4 * PAGE_SIZE) == 7);
  CHECK(rd(p.vs, a + 2 * PAGE_SIZE) == 7);
  CHECK(fake::check_all() == "");
  delete c;
  CHECK(fake::check_all() == "");
}

TEST_CASE("wired private memory is copied for the child at fork") {
  fake::space p(kBase, kSize);
  vaddr_t a = p.mmap(4 * PAGE_SIZE);
  wr(p.vs, a, 5);
  REQUIRE(vm_mlock(p.vs, a, 4 * PAGE_SIZE) == KERN_SUCCESS);
  fake::space* c = fork_of(p);
  vaddr_t d = vmspace_min(c->vs) - kBase;
  CHECK(rd(c->vs, a + d) == 5);
  wr(p.vs, a, 6);  // parent keeps writable mappings: no fault needed
  CHECK(rd(c->vs, a + d) == 5);
  CHECK(fake::check_all() == "");
  delete c;
  REQUIRE(vm_munlock(p.vs, a, 4 * PAGE_SIZE) == KERN_SUCCESS);
  CHECK(fake::check_all() == "");
}

TEST_CASE("procstat RES counts pages visible through the shadow chain") {
  fake::space p(kBase, kSize);
  vaddr_t a = p.mmap(16 * PAGE_SIZE);
  REQUIRE(vm_madvise(p.vs, a, 16 * PAGE_SIZE, VM_ADVICE_RANDOM) == KERN_SUCCESS);
  for (int k = 0; k < 10; ++k) wr(p.vs, a + k * PAGE_SIZE, 1);
  fake::space* c = fork_of(p);
  for (int k = 5; k < 12; ++k) wr(p.vs, a + k * PAGE_SIZE, 2);  // 5 copies + 2 new pages
  vm_lock_guard g;
  vm_map* m = reinterpret_cast<vm_map*>(p.vs);
  vm_map_entry* e;
  REQUIRE(vm_map_lookup_entry(m, a, &e));
  unsigned pres = 0;
  CHECK(vm_map_entry_resident(e, &pres) == 12);  // 0..4 from the backing object, 5..11 own
  CHECK(pres == 7);
  vm_lock_release();
  delete c;
  vm_lock_acquire();
}

TEST_CASE("sequential copy-on-write faults copy ahead in runs") {
  fake::space p(kBase, kSize);
  vaddr_t a = p.mmap(64 * PAGE_SIZE);
  for (int k = 0; k < 64; ++k) wr(p.vs, a + k * PAGE_SIZE, static_cast<std::uint8_t>(k));
  fake::space* c = fork_of(p);
  vaddr_t d = vmspace_min(c->vs) - kBase;
  auto cow0 = fake::ctr(V_COW_FAULTS);
  auto f0 = fake::ctr(V_FAULTS);
  for (int k = 0; k < 64; ++k) wr(c->vs, a + d + k * PAGE_SIZE, static_cast<std::uint8_t>(100 + k));
  CHECK(fake::ctr(V_COW_FAULTS) - cow0 == 64);  // every page copied exactly once
  CHECK(fake::ctr(V_FAULTS) - f0 <= 8);          // 1 + 63/16 runs (+ the needs-copy fault)
  for (int k = 0; k < 64; ++k) {
    CHECK(rd(c->vs, a + d + k * PAGE_SIZE) == 100 + k);
    CHECK(rd(p.vs, a + k * PAGE_SIZE) == k);
  }
  // Copied runs get contiguous frames (the child's shadow object covers < 2 MiB: buddy runs).
  CHECK(fake::mapped_frame(c->vs, a + d + 2 * PAGE_SIZE) == fake::mapped_frame(c->vs, a + d + PAGE_SIZE) + 1);
  CHECK(fake::check_all() == "");
  delete c;
  CHECK(fake::check_all() == "");
}
