// vm_vmspace_test.cpp — the mmap family, faults, fork and inheritance over the fake pmap.
#include "vm_fakepmap.h"

using namespace vmrt;
using fake::rd;
using fake::wr;

namespace {
constexpr vaddr_t kBase = vaddr_t{1} << 40;
constexpr vsize_t kSize = vsize_t{1} << 30;
}  // namespace

TEST_CASE("zero fill, fault-around in one enter, contents through the direct map") {
  fake::space s(kBase, kSize);
  constexpr int kPages = 256, kAt = 40;
  constexpr int kLo = kAt - kFaultWindow[VM_ADVICE_NORMAL].behind;   // first page made resident
  constexpr int kHi = kAt + kFaultWindow[VM_ADVICE_NORMAL].ahead;    // last page made resident
  static_assert(kLo > 0 && kHi + 1 < kPages, "the window fits inside the mapping");
  vaddr_t a = s.mmap(kPages * PAGE_SIZE);
  CHECK(a == kBase);
  auto enters0 = s.f->enters;
  auto zf0 = fake::ctr(V_FAULT_ZERO_FILL);
  CHECK(rd(s.vs, a + kAt * PAGE_SIZE) == 0);
  CHECK(s.f->enters == enters0 + 1);
  CHECK(fake::ctr(V_FAULT_ZERO_FILL) == zf0 + 1);
  // NORMAL window: `behind` pages behind, `ahead` ahead, resident in one fault.
  for (int p = kLo; p <= kHi; ++p) CHECK(fake::mapped(s.vs, a + p * PAGE_SIZE));
  CHECK(!fake::mapped(s.vs, a + (kLo - 1) * PAGE_SIZE));
  CHECK(!fake::mapped(s.vs, a + (kHi + 1) * PAGE_SIZE));
  // Frames are contiguous for the run (buddy run; object < 2 MiB has no reservation).
  for (int p = kLo + 1; p <= kHi; ++p)
    CHECK(fake::mapped_frame(s.vs, a + p * PAGE_SIZE) == fake::mapped_frame(s.vs, a + kLo * PAGE_SIZE) + (p - kLo));
  // Private anonymous read fault maps writable right away.
  CHECK((fake::mapped_prot(s.vs, a + kAt * PAGE_SIZE) & VM_PROT_WRITE) != 0);
  wr(s.vs, a + kAt * PAGE_SIZE + 7, 42);
  CHECK(rd(s.vs, a + kAt * PAGE_SIZE + 7) == 42);
  std::uint8_t vec[kPages];
  REQUIRE(vm_mincore(s.vs, a, kPages * PAGE_SIZE, vec) == KERN_SUCCESS);
  CHECK(vec[kLo] == 1);
  CHECK(vec[kHi] == 1);
  CHECK(vec[kLo - 1] == 0);
  CHECK(vec[kHi + 1] == 0);
  CHECK(fake::check_all() == "");
  REQUIRE(vm_munmap(s.vs, a, kPages * PAGE_SIZE) == KERN_SUCCESS);
  CHECK(!fake::mapped(s.vs, a + kAt * PAGE_SIZE));
  CHECK(fake::check_all() == "");
}

TEST_CASE("reservations: a 4 MiB object gets 2 MiB-contiguous frames across separate faults") {
  fake::space s(kBase, kSize);
  vaddr_t a = s.mmap(4 << 20);
  auto rv0 = fake::ctr(V_RESERV_ALLOC);
  wr(s.vs, a, 1);
  wr(s.vs, a + 300 * PAGE_SIZE, 2);  // separate fault, same window
  wr(s.vs, a + 100 * PAGE_SIZE, 3);
  CHECK(fake::ctr(V_RESERV_ALLOC) == rv0 + 1);
  frame_t f0 = fake::mapped_frame(s.vs, a);
  CHECK(f0 % 512 == 0);
  CHECK(fake::mapped_frame(s.vs, a + 300 * PAGE_SIZE) == f0 + 300);
  CHECK(fake::mapped_frame(s.vs, a + 100 * PAGE_SIZE) == f0 + 100);
  wr(s.vs, a + 600 * PAGE_SIZE, 4);  // second window
  CHECK(fake::ctr(V_RESERV_ALLOC) == rv0 + 2);
  CHECK(fake::check_all() == "");
}
