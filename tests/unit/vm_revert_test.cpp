// vm_revert_test.cpp — vmspace_revert (back to an image, in place) and vmspace_switch (two
// siblings over one range) over the fake pmap: contents, what stays mapped, what is redone.
#include "vm/vmspace.h"
#include "vm/vmspace_revert.h"
#include "vm_fakepmap.h"

using namespace vmrt;
using fake::rd;
using fake::wr;

namespace {
constexpr vaddr_t kBase = vaddr_t{1} << 41;
constexpr vsize_t kSize = vsize_t{64} << 20;
vaddr_t g_next = (vaddr_t{1} << 41) + (vsize_t{1} << 32);

// A fork of s over a new fake pmap at `at` (0: a fresh range of its own; s's base: a
// sibling over the same addresses).
fake::space* fork_of(fake::space& s, vaddr_t at = 0) {
  if (at == 0) {
    at = g_next;
    g_next += kSize;
  }
  fake::fpmap* f = fake::new_pmap(at, kSize);
  vmspace* c = nullptr;
  REQUIRE(vmspace_fork(s.vs, &f->pm, &c) == KERN_SUCCESS);
  return new fake::space(c, f);
}

struct copy_back_limit {
  std::uint64_t saved = g_revert_tunables.copy_back_max;
  explicit copy_back_limit(std::uint64_t v) { g_revert_tunables.copy_back_max = v; }
  ~copy_back_limit() { g_revert_tunables.copy_back_max = saved; }
};
}  // namespace

TEST_CASE("vmspace_revert: written pages get the image's bytes back, untouched mappings stay, reshaped entries are rebuilt") {
  for (std::uint64_t limit : {std::uint64_t{4096}, std::uint64_t{0}}) {
    copy_back_limit lim(limit);
    INFO("copy_back_max ", limit);
    fake::space s(kBase, kSize);
    vaddr_t a = s.mmap(64 * PAGE_SIZE);
    for (int p = 0; p < 64; ++p) wr(s.vs, a + p * PAGE_SIZE, static_cast<std::uint8_t>(p + 1));
    vaddr_t z = s.mmap(16 * PAGE_SIZE);  // never touched before the image: no object
    fake::space* img = fork_of(s);
    // After the image: writes, a new mapping, a touched empty one, a protection change.
    wr(s.vs, a + 3 * PAGE_SIZE, 99);
    wr(s.vs, a + 40 * PAGE_SIZE, 98);
    CHECK(rd(s.vs, a + 10 * PAGE_SIZE) == 11);  // a read: the image's page, mapped read-only
    frame_t shared = fake::mapped_frame(s.vs, a + 10 * PAGE_SIZE);
    wr(s.vs, z + 2 * PAGE_SIZE, 5);
    vaddr_t n = s.mmap(8 * PAGE_SIZE);
    wr(s.vs, n, 1);
    vmspace_revert_stats st{};
    REQUIRE(vmspace_revert(s.vs, img->vs, &st) == KERN_SUCCESS);
    CHECK(st.entries_rebuilt >= 1);  // the new mapping went (with z, if it merged into z)
    CHECK(st.pages_copied + st.pages_unmapped > 0);
    CHECK(st.pages_copied + st.pages_unmapped < 40);  // the written pages (and their fault-around), not all
    CHECK((limit == 0 ? st.pages_copied : st.pages_unmapped) == 0);
    CHECK(fake::mapped(s.vs, a + 10 * PAGE_SIZE));  // the shared page stayed mapped
    CHECK(fake::mapped_frame(s.vs, a + 10 * PAGE_SIZE) == shared);
    CHECK(rd(s.vs, a + 3 * PAGE_SIZE) == 4);
    CHECK(rd(s.vs, a + 40 * PAGE_SIZE) == 41);
    CHECK(rd(s.vs, z + 2 * PAGE_SIZE) == 0);
    CHECK(!fake::mapped(s.vs, n));
    std::uint8_t vec[8];
    CHECK(vm_mincore(s.vs, n, 8 * PAGE_SIZE, vec) == KERN_INVALID_ADDRESS);  // gone
    // A reshaped entry (protection of part of it changed) is copied again from the image.
    REQUIRE(vm_mprotect(s.vs, a, 4 * PAGE_SIZE, VM_PROT_READ) == KERN_SUCCESS);
    REQUIRE(vmspace_revert(s.vs, img->vs, &st) == KERN_SUCCESS);
    CHECK(st.entries_rebuilt >= 2);
    wr(s.vs, a, 7);  // writable again
    CHECK(rd(s.vs, a + PAGE_SIZE) == 2);
    // Again and again: nothing accumulates.
    for (int i = 0; i < 50; ++i) {
      wr(s.vs, a + 5 * PAGE_SIZE, static_cast<std::uint8_t>(i));
      REQUIRE(vmspace_revert(s.vs, img->vs, &st) == KERN_SUCCESS);
      REQUIRE(rd(s.vs, a + 5 * PAGE_SIZE) == 6);
    }
    CHECK(rd(img->vs, a - kBase + img->f->pm.min) == 1);  // the image never changed
    CHECK(fake::check_all() == "");
    delete img;
  }
}

TEST_CASE("vmspace_switch: siblings over one range keep their own pages; only what differs is unmapped") {
  fake::space s(kBase, kSize);
  vaddr_t a = s.mmap(32 * PAGE_SIZE);
  for (int p = 0; p < 32; ++p) wr(s.vs, a + p * PAGE_SIZE, static_cast<std::uint8_t>(p + 1));
  // A sibling over the same addresses; its pmap stands for the "inert" one of a parked member
  // (a separate fake pmap: what it records is never looked at while s is live).
  fake::space* sib = fork_of(s, kBase);
  CHECK(rd(s.vs, a + 20 * PAGE_SIZE) == 21);  // a shared page, mapped read-only in s's pmap
  frame_t shared = fake::mapped_frame(s.vs, a + 20 * PAGE_SIZE);
  wr(s.vs, a + 2 * PAGE_SIZE, 100);             // s's own
  wr(sib->vs, a + 9 * PAGE_SIZE, 200);          // the sibling's own (through its own pmap)
  vmspace_revert_stats st{};
  REQUIRE(vmspace_switch(s.vs, sib->vs, &st) == KERN_SUCCESS);
  CHECK(st.entries_kept == 1);
  CHECK(st.entries_rebuilt == 0);
  CHECK(!fake::mapped(s.vs, a + 2 * PAGE_SIZE));   // s's private page: out
  CHECK(!fake::mapped(s.vs, a + 9 * PAGE_SIZE));   // hides a page the sibling wrote
  CHECK(fake::mapped(s.vs, a + 20 * PAGE_SIZE));   // shared: stays
  CHECK(fake::mapped_frame(s.vs, a + 20 * PAGE_SIZE) == shared);
  CHECK(rd(sib->vs, a + 2 * PAGE_SIZE) == 3);
  CHECK(rd(sib->vs, a + 9 * PAGE_SIZE) == 200);
  CHECK(rd(s.vs, a + 2 * PAGE_SIZE) == 100);
  // Different shapes: the whole range is dropped and the incoming side's entries reserved.
  REQUIRE(vm_munmap(sib->vs, a + 16 * PAGE_SIZE, 16 * PAGE_SIZE) == KERN_SUCCESS);
  REQUIRE(vmspace_switch(s.vs, sib->vs, &st) == KERN_SUCCESS);
  CHECK(st.entries_rebuilt == 1);
  CHECK(!fake::mapped(s.vs, a + 20 * PAGE_SIZE));
  CHECK(vmspace_switch(s.vs, s.vs, &st) == KERN_INVALID_ARGUMENT);
  CHECK(fake::check_all() == "");
  delete sib;
}
