// vm_share_test.cpp — sharing between address spaces (vm_loan.h, vm_share.h,
// vm_map_extract.h): page loanout, page transfer and map entry passing, each on its own
// and in random interleavings with writes on either side, mprotect, munmap, fork and exit,
// checked against a plain-copy model with the whole-system and loan checkers after every
// step, and frames, objects and loans counted back to where they started.
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>

#include "vm/vm_loan.h"
#include "vm/vm_share.h"
#include "vm_fakepmap.h"

using namespace vmrt;
using fake::rd;
using fake::wr;

namespace {

constexpr vsize_t kPages = 128;
constexpr vsize_t kWin = vsize_t{4} << 20;
vaddr_t g_next = vaddr_t{5} << 40;

fake::space* new_space() {
  auto* s = new fake::space(g_next, kWin);
  g_next += kWin;
  return s;
}

std::string loan_check() {
  vm_lock_guard g;
  int fds[2];
  if (pipe(fds) != 0) return "pipe";
  bool ok = vm_loan_check(fds[1]);
  close(fds[1]);
  char buf[256] = {};
  ssize_t n = read(fds[0], buf, sizeof buf - 1);
  close(fds[0]);
  return ok ? std::string() : std::string("loan check: ") + (n > 0 ? buf : "?");
}

std::string check() {
  std::string e = fake::check_all();
  return e.empty() ? loan_check() : e;
}

std::int64_t objects() { return fake::ctr(V_OBJ_CURRENT); }
frame_t free_frames() {
  vm_lock_guard g;
  vm_page_free_flush();
  return vm_page_free_count();
}
unsigned loans() {
  vm_lock_guard g;
  return vm_loan_records();
}
std::uint64_t loan_count_at(vmspace* vs, vaddr_t va) {
  vm_lock_guard g;
  vm_map_entry* e;
  auto* map = reinterpret_cast<vm_map*>(vs);
  if (!vm_map_lookup_entry(map, va, &e) || e->object == nullptr) return 0;
  vm_page* m = vm_object_chain_lookup(e->object, atop(va - e->start + e->offset), nullptr);
  return m != nullptr ? vm_loan_count(m) : 0;
}

struct baseline {
  frame_t frames = free_frames();
  std::int64_t objs = objects();
  void expect_back() const {
    CHECK(loans() == 0);
    CHECK(fake::ctr(V_LOANED_NOW) == 0);
    CHECK(objects() == objs);
    CHECK(free_frames() == frames);
  }
};

// A sender s and a receiver r over fresh fake pmaps, for body(s, r); then every loan,
// frame and object must be back where they were, and the checkers clean.
template <class Body>
void with_two_spaces(Body body) {
  fake::boot();
  baseline b0;
  {
    fake::space s(g_next, kWin), r(g_next + kWin, kWin);
    g_next += 2 * kWin;
    body(s, r);
    CHECK(check() == "");
  }
  CHECK(check() == "");
  b0.expect_back();
}

// n pages mapped in s, page k holding k + 1 + bias.
vaddr_t filled(fake::space& s, int n, int bias = 0) {
  vaddr_t a = s.mmap(static_cast<vsize_t>(n) * PAGE_SIZE);
  for (int k = 0; k < n; ++k) wr(s.vs, a + k * PAGE_SIZE, static_cast<std::uint8_t>(k + 1 + bias));
  return a;
}

}  // namespace

TEST_CASE("loan: the borrower reads the lender's frames; a write on either side breaks that page's loan") {
  with_two_spaces([](fake::space& l, fake::space& bo) {
    vaddr_t a = filled(l, 16);
    auto loans0 = fake::ctr(V_LOANS);
    vaddr_t d = 0;
    REQUIRE(vm_loan(l.vs, a, 16 * PAGE_SIZE, bo.vs, 0, &d) == KERN_SUCCESS);
    CHECK(fake::ctr(V_LOANS) == loans0 + 1);
    CHECK(fake::ctr(V_LOANED_NOW) == 16);
    CHECK(check() == "");
    // Same frames on both sides, read-only for both.
    for (int k = 0; k < 16; ++k) {
      CHECK(rd(bo.vs, d + k * PAGE_SIZE) == k + 1);
      CHECK(fake::mapped_frame(bo.vs, d + k * PAGE_SIZE) == fake::mapped_frame(l.vs, a + k * PAGE_SIZE));
      CHECK((fake::mapped_prot(l.vs, a + k * PAGE_SIZE) & VM_PROT_WRITE) == 0);
      CHECK(loan_count_at(bo.vs, d + k * PAGE_SIZE) == 1);
    }
    // The borrower may not write its read-only view.
    std::uint8_t v = 9;
    kern_return_t kr = KERN_SUCCESS;
    CHECK_FALSE(fake::access(bo.vs, d, true, &v, &kr));
    CHECK(kr == KERN_PROTECTION_FAILURE);
    // A lender write copies the page for the lender: the borrower keeps the old contents.
    auto breaks0 = fake::ctr(V_LOAN_BREAKS);
    wr(l.vs, a + 3 * PAGE_SIZE, 99);
    CHECK(fake::ctr(V_LOAN_BREAKS) >= breaks0 + 1);
    CHECK(rd(bo.vs, d + 3 * PAGE_SIZE) == 4);
    CHECK(rd(l.vs, a + 3 * PAGE_SIZE) == 99);
    CHECK(loan_count_at(bo.vs, d + 3 * PAGE_SIZE) == 0);
    CHECK(check() == "");
    // A borrower that makes its view writable and writes gets its own copy too.
    REQUIRE(vm_mprotect(bo.vs, d, 16 * PAGE_SIZE, VM_PROT_DEFAULT) == KERN_SUCCESS);
    wr(bo.vs, d + 10 * PAGE_SIZE, 77);
    CHECK(rd(l.vs, a + 10 * PAGE_SIZE) == 11);
    CHECK(rd(bo.vs, d + 10 * PAGE_SIZE) == 77);
    CHECK(check() == "");
    // procstat names the loan on both sides.
    vmspace_report_procstat(l.vs, 2);
    vmspace_report_procstat(bo.vs, 2);
    // Unloan ends it: every page given back.
    CHECK(vm_unloan(l.vs, a, PAGE_SIZE) == KERN_INVALID_ADDRESS);  // not a borrowed view
    REQUIRE(vm_unloan(bo.vs, d, 16 * PAGE_SIZE) == KERN_SUCCESS);
    CHECK(loans() == 0);
    CHECK(fake::ctr(V_LOANED_NOW) == 0);
    CHECK(check() == "");
    for (int k = 0; k < 16; ++k) CHECK(rd(l.vs, a + k * PAGE_SIZE) == (k == 3 ? 99 : k + 1));
  });
}

TEST_CASE("loan: a loan ends when the lender exits; the borrower keeps the pages") {
  fake::boot();
  baseline b0;
  auto* l = new_space();
  auto* bo = new_space();
  vaddr_t a = filled(*l, 8, 39);
  vaddr_t d = 0;
  REQUIRE(vm_loan(l->vs, a, 8 * PAGE_SIZE, bo->vs, 0, &d) == KERN_SUCCESS);
  delete l;
  CHECK(loans() == 0);
  CHECK(check() == "");
  for (int k = 0; k < 8; ++k) CHECK(rd(bo->vs, d + k * PAGE_SIZE) == k + 40);
  delete bo;
  CHECK(check() == "");
  b0.expect_back();
}

TEST_CASE("transfer: pages move to another vmspace without a copy; the sender reads zeros or nothing") {
  with_two_spaces([](fake::space& s, fake::space& r) {
    vaddr_t a = filled(s, 32);
    frame_t f5 = fake::mapped_frame(s.vs, a + 5 * PAGE_SIZE);
    auto cow0 = fake::ctr(V_COW_FAULTS), zeroed0 = fake::ctr(V_FAULT_ZERO_PAGES);
    vaddr_t d = 0;
    REQUIRE(vm_transfer(s.vs, a, 16 * PAGE_SIZE, r.vs, 0, VM_TRANSFER_ZERO, &d) == KERN_SUCCESS);
    REQUIRE(vm_transfer(s.vs, a + 16 * PAGE_SIZE, 16 * PAGE_SIZE, r.vs, d + 16 * PAGE_SIZE, VM_TRANSFER_UNMAP, &d) ==
            KERN_SUCCESS);
    d -= 16 * PAGE_SIZE;
    for (int k = 0; k < 32; ++k) CHECK(rd(r.vs, d + k * PAGE_SIZE) == k + 1);
    CHECK(fake::mapped_frame(r.vs, d + 5 * PAGE_SIZE) == f5);  // the same frame: nothing copied
    CHECK(fake::ctr(V_COW_FAULTS) == cow0);
    CHECK(fake::ctr(V_FAULT_ZERO_PAGES) == zeroed0);
    wr(r.vs, d, 200);  // the receiver owns them: written in place
    CHECK(fake::mapped_frame(r.vs, d) != 0);
    CHECK(rd(s.vs, a) == 0);  // zero-fill
    std::uint8_t v = 0;
    kern_return_t kr = KERN_SUCCESS;
    CHECK_FALSE(fake::access(s.vs, a + 20 * PAGE_SIZE, false, &v, &kr));  // unmapped
    CHECK(kr == KERN_INVALID_ADDRESS);
  });
}

TEST_CASE("extract: SHARE sees the same pages both ways, COW copies on write, in time independent of residency") {
  with_two_spaces([](fake::space& s, fake::space& r) {
    vaddr_t a = filled(s, 64);
    auto enters0 = r.f->enters;
    auto sh0 = fake::ctr(V_EXTRACT_ENTRIES);
    vaddr_t ds = 0, dc = 0;
    REQUIRE(vm_extract(s.vs, a, 32 * PAGE_SIZE, r.vs, 0, VM_EXTRACT_SHARE, &ds) == KERN_SUCCESS);
    REQUIRE(vm_extract(s.vs, a + 32 * PAGE_SIZE, 32 * PAGE_SIZE, r.vs, 0, VM_EXTRACT_COW, &dc) == KERN_SUCCESS);
    CHECK(r.f->enters == enters0);                       // no page looked at or entered
    CHECK(fake::ctr(V_EXTRACT_ENTRIES) == sh0 + 2);      // one entry each (the source was one)
    CHECK(check() == "");
    wr(r.vs, ds + PAGE_SIZE, 111);
    CHECK(rd(s.vs, a + PAGE_SIZE) == 111);  // shared both ways
    wr(s.vs, a + 2 * PAGE_SIZE, 112);
    CHECK(rd(r.vs, ds + 2 * PAGE_SIZE) == 112);
    wr(r.vs, dc, 113);
    CHECK(rd(s.vs, a + 32 * PAGE_SIZE) == 33);  // copy-on-write both ways
    wr(s.vs, a + 33 * PAGE_SIZE, 114);
    CHECK(rd(r.vs, dc + PAGE_SIZE) == 34);
  });
}

TEST_CASE("error cases give the documented statuses") {
  with_two_spaces([](fake::space& s, fake::space& r) {
    vaddr_t a = s.mmap(8 * PAGE_SIZE);
    vaddr_t taken = r.mmap(4 * PAGE_SIZE);
    vaddr_t d = 0;
    // Unaligned, zero length.
    CHECK(vm_loan(s.vs, a + 1, PAGE_SIZE, r.vs, 0, &d) == KERN_INVALID_ARGUMENT);
    CHECK(vm_loan(s.vs, a, 0, r.vs, 0, &d) == KERN_INVALID_ARGUMENT);
    CHECK(vm_loan(s.vs, a, 100, r.vs, 0, &d) == KERN_INVALID_ARGUMENT);
    CHECK(vm_transfer(s.vs, a, PAGE_SIZE, r.vs, taken + 5, VM_TRANSFER_ZERO, &d) == KERN_INVALID_ARGUMENT);
    CHECK(vm_extract(s.vs, a, PAGE_SIZE + 1, r.vs, 0, VM_EXTRACT_SHARE, &d) == KERN_INVALID_ARGUMENT);
    CHECK(vm_extract(s.vs, a, PAGE_SIZE, r.vs, 0, static_cast<vm_extract_mode>(7), &d) == KERN_INVALID_ARGUMENT);
    CHECK(vm_unloan(r.vs, taken, 0) == KERN_INVALID_ARGUMENT);
    // Source not (fully) mapped, outside the map.
    CHECK(vm_loan(s.vs, a, 9 * PAGE_SIZE, r.vs, 0, &d) == KERN_INVALID_ADDRESS);
    CHECK(vm_transfer(s.vs, a + 8 * PAGE_SIZE, PAGE_SIZE, r.vs, 0, VM_TRANSFER_UNMAP, &d) == KERN_INVALID_ADDRESS);
    CHECK(vm_extract(s.vs, vmspace_max(s.vs), PAGE_SIZE, r.vs, 0, VM_EXTRACT_COW, &d) == KERN_INVALID_ADDRESS);
    // Destination overlapping a mapping, or outside the receiver.
    CHECK(vm_loan(s.vs, a, 2 * PAGE_SIZE, r.vs, taken + PAGE_SIZE, &d) == KERN_ALREADY_EXISTS);
    CHECK(vm_transfer(s.vs, a, 2 * PAGE_SIZE, r.vs, taken + 3 * PAGE_SIZE, VM_TRANSFER_ZERO, &d) == KERN_ALREADY_EXISTS);
    CHECK(vm_extract(s.vs, a, 2 * PAGE_SIZE, r.vs, vmspace_max(r.vs) - PAGE_SIZE, VM_EXTRACT_SHARE, &d) ==
          KERN_INVALID_ADDRESS);
    // Same vmspace, overlapping ranges: the destination is not free.
    CHECK(vm_extract(s.vs, a, 4 * PAGE_SIZE, s.vs, a + 2 * PAGE_SIZE, VM_EXTRACT_COW, &d) == KERN_ALREADY_EXISTS);
    // An unreadable lender range.
    REQUIRE(vm_mprotect(s.vs, a, PAGE_SIZE, VM_PROT_NONE) == KERN_SUCCESS);
    CHECK(vm_loan(s.vs, a, 2 * PAGE_SIZE, r.vs, 0, &d) == KERN_PROTECTION_FAILURE);
    // No room in the receiver.
    CHECK(vm_extract(s.vs, a, 8 * PAGE_SIZE, r.vs, 0, VM_EXTRACT_COW, &d) == KERN_SUCCESS);
    fake::space tiny(g_next, 4 * PAGE_SIZE);
    g_next += kWin;
    CHECK(vm_transfer(s.vs, a, 8 * PAGE_SIZE, tiny.vs, 0, VM_TRANSFER_UNMAP, &d) == KERN_NO_SPACE);
  });
}

namespace {

const char kZeroPage[PAGE_SIZE] = {};

// The model: one byte per page (at offset 8; every other byte zero, checked whole) and who
// shares it.
struct mpage {
  bool mapped = false;
  bool shared = false;
  vm_prot_t prot = 0;
  vm_inherit_t inh = VM_INHERIT_COPY;
  std::shared_ptr<int> cell;
};
struct mspace {
  fake::space* s;
  std::vector<mpage> pg;
};

bool covered(const mspace& m, vsize_t a, vsize_t n) {
  for (vsize_t k = a; k < a + n; ++k)
    if (!m.pg[k].mapped) return false;
  return true;
}
bool free_in(const mspace& m, vsize_t a, vsize_t n) {
  for (vsize_t k = a; k < a + n; ++k)
    if (m.pg[k].mapped) return false;
  return true;
}

// A random start of n pages in m that are all mapped (want) or all free (!want), else
// `fallback`: most sharing calls then succeed, the rest test the refusals.
vsize_t pick(const mspace& m, vsize_t n, bool want, vsize_t fallback, std::mt19937_64& rng) {
  vsize_t start = rng() % (kPages - n + 1);
  for (vsize_t i = 0; i <= kPages - n; ++i) {
    vsize_t a = (start + i) % (kPages - n + 1);
    if (want ? covered(m, a, n) : free_in(m, a, n)) return a;
  }
  return fallback;
}

void run_share_model(std::uint64_t seed, int steps) {
  fake::boot();
  INFO("seed " << seed);
  baseline b0;
  std::mt19937_64 rng(seed);
  bool trace = getenv("VM_SHARE_TRACE") != nullptr;
  std::vector<mspace> sp;
  for (int i = 0; i < 2; ++i) sp.push_back({new_space(), std::vector<mpage>(kPages)});
  auto base = [](const mspace& m) { return vmspace_min(m.s->vs); };
  std::int64_t loans0 = fake::ctr(V_LOANS), breaks0 = fake::ctr(V_LOAN_BREAKS), xfer0 = fake::ctr(V_TRANSFERS),
               ext0 = fake::ctr(V_EXTRACTS);
  auto verify = [&](int step, int op) {
    for (auto& m : sp)
      for (vsize_t k = 0; k < kPages; ++k) {
        const mpage& p = m.pg[k];
        std::uint8_t v = 0, z = 1;
        kern_return_t kr = KERN_SUCCESS;
        bool ok = fake::access(m.s->vs, base(m) + k * PAGE_SIZE + 8, false, &v, &kr);
        if (!p.mapped) {
          REQUIRE(!ok);
          REQUIRE(kr == KERN_INVALID_ADDRESS);
        } else if (!(p.prot & VM_PROT_READ)) {
          REQUIRE(!ok);
        } else {
          REQUIRE(ok);
          if (v != *p.cell) FAIL("step " << step << " op " << op << " space " << (&m - &sp[0]) << " page " << k);
          REQUIRE(fake::access(m.s->vs, base(m) + k * PAGE_SIZE + PAGE_SIZE - 1, false, &z));
          REQUIRE(z == 0);
          // Every other byte of the page (mapped readable now) is as a plain copy has it: zero.
          const char* mem = fake::page_bytes(m.s->vs, base(m) + k * PAGE_SIZE);
          bool rest_zero = std::memcmp(mem, kZeroPage, 8) == 0 && std::memcmp(mem + 9, kZeroPage, PAGE_SIZE - 9) == 0;
          if (!rest_zero) FAIL("step " << step << " op " << op << " space " << (&m - &sp[0]) << " page " << k << ": stray bytes");
        }
      }
    std::string err = check();
    if (!err.empty()) FAIL("step " << step << " op " << op << ": " << err);
  };
  for (int step = 0; step < steps; ++step) {
    mspace& m = sp[rng() % sp.size()];
    mspace& o = sp[rng() % sp.size()];
    vsize_t a = rng() % kPages, n = 1 + rng() % 10;
    if (a + n > kPages) n = kPages - a;
    vsize_t a2 = rng() % (kPages - n + 1);
    int op = static_cast<int>(rng() % 100);
    if (op >= 21 && op < 43 && rng() % 4 != 0) {  // sharing calls: mostly on mapped sources, free targets
      a = pick(m, n, true, a, rng);
      a2 = pick(o, n, false, a2, rng);
    }
    vaddr_t va = base(m) + a * PAGE_SIZE, va2 = base(o) + a2 * PAGE_SIZE;
    if (trace)
      fprintf(stderr, "step %d op %d space %zu a %zu n %zu -> space %zu a2 %zu\n", step, op,
              static_cast<size_t>(&m - &sp[0]), a, n, static_cast<size_t>(&o - &sp[0]), a2);
    bool same_overlap = &m == &o && a2 < a + n && a < a2 + n;
    // What a transfer or an extract of m[a, a+n) to o[a2, a2+n) must answer.
    auto moved_want = [&] {
      return !covered(m, a, n) ? KERN_INVALID_ADDRESS
             : (same_overlap || !free_in(o, a2, n)) ? KERN_ALREADY_EXISTS
                                                    : KERN_SUCCESS;
    };
    if (op < 10) {  // mmap FIXED
      bool shared = rng() % 4 == 0;
      vm_prot_t prot = rng() % 6 == 0 ? VM_PROT_READ : VM_PROT_DEFAULT;
      m.s->mmap(n * PAGE_SIZE, prot, (shared ? VM_MMAP_SHARED : VM_MMAP_PRIVATE) | VM_MMAP_FIXED, va);
      for (vsize_t k = a; k < a + n; ++k)
        m.pg[k] = mpage{true, shared, prot, shared ? VM_INHERIT_SHARE : VM_INHERIT_COPY, std::make_shared<int>(0)};
    } else if (op < 16) {  // munmap
      REQUIRE(vm_munmap(m.s->vs, va, n * PAGE_SIZE) == KERN_SUCCESS);
      for (vsize_t k = a; k < a + n; ++k) m.pg[k] = mpage{};
    } else if (op < 21) {  // mprotect (a borrower making its view writable, or anything else)
      vm_prot_t prot = static_cast<vm_prot_t>(rng() % 4);
      bool cov = covered(m, a, n);
      REQUIRE(vm_mprotect(m.s->vs, va, n * PAGE_SIZE, prot) == (cov ? KERN_SUCCESS : KERN_INVALID_ADDRESS));
      if (cov)
        for (vsize_t k = a; k < a + n; ++k) m.pg[k].prot = prot;
    } else if (op < 31) {  // loan m[a, a+n) -> o[a2, a2+n)
      bool readable = true;
      for (vsize_t k = a; k < a + n && covered(m, a, n); ++k) readable &= (m.pg[k].prot & VM_PROT_READ) != 0;
      vaddr_t d = 0;
      kern_return_t kr = vm_loan(m.s->vs, va, n * PAGE_SIZE, o.s->vs, va2, &d);
      kern_return_t want = !covered(m, a, n)          ? KERN_INVALID_ADDRESS
                           : !readable                ? KERN_PROTECTION_FAILURE
                           : (same_overlap || !free_in(o, a2, n)) ? KERN_ALREADY_EXISTS
                                                                  : KERN_SUCCESS;
      REQUIRE(kr == want);
      if (kr == KERN_SUCCESS) {
        REQUIRE(d == va2);
        for (vsize_t k = 0; k < n; ++k) {
          const mpage& p = m.pg[a + k];
          o.pg[a2 + k] = mpage{true, false, static_cast<vm_prot_t>(p.prot & ~VM_PROT_WRITE), p.inh,
                               std::make_shared<int>(*p.cell)};
        }
      }
    } else if (op < 43) {  // transfer (op < 37) or extract m[a, a+n) -> o[a2, a2+n)
      const bool transfer = op < 37, flag = rng() % 2 == 0;  // flag: ZERO / SHARE
      vaddr_t d = 0;
      kern_return_t kr =
          transfer ? vm_transfer(m.s->vs, va, n * PAGE_SIZE, o.s->vs, va2, flag ? VM_TRANSFER_ZERO : VM_TRANSFER_UNMAP, &d)
                   : vm_extract(m.s->vs, va, n * PAGE_SIZE, o.s->vs, va2, flag ? VM_EXTRACT_SHARE : VM_EXTRACT_COW, &d);
      REQUIRE(kr == moved_want());
      if (kr == KERN_SUCCESS && transfer) {  // the pages go; the sender reads zeros or nothing
        std::vector<mpage> moved(m.pg.begin() + static_cast<long>(a), m.pg.begin() + static_cast<long>(a + n));
        for (vsize_t k = 0; k < n; ++k) {
          mpage& p = m.pg[a + k];
          p = flag ? mpage{true, false, p.prot, p.inh, std::make_shared<int>(0)} : mpage{};
        }
        for (vsize_t k = 0; k < n; ++k) o.pg[a2 + k] = moved[k];
      } else if (kr == KERN_SUCCESS) {  // shared both ways, or a copy-on-write copy
        for (vsize_t k = 0; k < n; ++k) {
          mpage& p = m.pg[a + k];
          if (flag) p.shared = true;
          mpage q = p;
          if (!flag) {
            q.cell = std::make_shared<int>(*p.cell);
            q.shared = false;
          }
          o.pg[a2 + k] = q;
        }
      }
    } else if (op < 47) {  // fork or exit
      if (sp.size() < 4 && rng() % 2 == 0) {
        mspace child{fake::fork_into(*m.s, g_next, kWin), std::vector<mpage>(kPages)};
        g_next += kWin;
        for (vsize_t k = 0; k < kPages; ++k) {
          if (m.pg[k].mapped) child.pg[k] = fake::model_fork_page(m.pg[k]);
        }
        sp.push_back(std::move(child));
      } else if (sp.size() > 2) {
        size_t victim = 2 + rng() % (sp.size() - 2);
        delete sp[victim].s;
        sp.erase(sp.begin() + static_cast<long>(victim));
        continue;  // m / o may have gone
      }
    } else if (op < 49) {  // unloan: the borrower's view goes (only borrowed views may)
      kern_return_t kr = vm_unloan(m.s->vs, va, n * PAGE_SIZE);
      if (kr == KERN_SUCCESS)
        for (vsize_t k = a; k < a + n; ++k) m.pg[k] = mpage{};
      else
        REQUIRE(kr == KERN_INVALID_ADDRESS);
    } else if (op < 80) {  // write
      mpage& p = m.pg[a];
      std::uint8_t v = static_cast<std::uint8_t>(1 + rng() % 250);
      kern_return_t kr = KERN_SUCCESS;
      bool ok = fake::access(m.s->vs, va + 8, true, &v, &kr);
      if (!p.mapped) {
        REQUIRE(kr == KERN_INVALID_ADDRESS);
      } else if (!(p.prot & VM_PROT_WRITE)) {
        REQUIRE(kr == KERN_PROTECTION_FAILURE);
      } else {
        REQUIRE(ok);
        *p.cell = v;
      }
    }
    // (op >= 80: nothing but the check)
    verify(step, op);
  }
  CHECK(fake::ctr(V_LOANS) > loans0);
  CHECK(fake::ctr(V_TRANSFERS) > xfer0);
  CHECK(fake::ctr(V_EXTRACTS) > ext0);
  if (trace) fprintf(stderr, "loan breaks %lld\n", static_cast<long long>(fake::ctr(V_LOAN_BREAKS) - breaks0));
  for (auto& m : sp) delete m.s;
  CHECK(check() == "");
  b0.expect_back();
}

}  // namespace

TEST_CASE("random loans, transfers, extracts, writes, unmaps, forks and exits agree with a plain-copy model") {
  // VM_SHARE_SEED / VM_SHARE_STEPS reproduce or explore; VM_SHARE_TRACE=1 traces.
  const char* seed_env = getenv("VM_SHARE_SEED");
  const char* steps_env = getenv("VM_SHARE_STEPS");
  int steps = steps_env != nullptr ? atoi(steps_env) : 1500;
  if (seed_env != nullptr) {
    run_share_model(std::strtoull(seed_env, nullptr, 10), steps);
  } else {
    auto breaks0 = fake::ctr(V_LOAN_BREAKS);
    for (std::uint64_t seed : {11u, 2026u, 4004u}) run_share_model(seed, steps);
    CHECK(fake::ctr(V_LOAN_BREAKS) > breaks0);  // the seeds do break loans
  }
}
