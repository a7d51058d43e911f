// vm_model_test.cpp — random mmap / munmap / mprotect / madvise / minherit / fork / destroy
// / read / write on a few vmspaces, checked byte for byte against a reference model of
// what Linux-like semantics promise, with the whole-system checker after every step.
#include <cstdlib>
#include <memory>
#include <random>

#include "vm_fakepmap.h"

using namespace vmrt;

namespace {

constexpr vsize_t kPages = 192;
constexpr vsize_t kWin = vsize_t{4} << 20;  // each space's window (pages used: the first kPages)

struct mpage {
  bool mapped = false;
  bool shared = false;  // MAP_SHARED
  vm_prot_t prot = 0;
  vm_inherit_t inh = VM_INHERIT_COPY;
  bool locked = false;  // mlock
  std::shared_ptr<int> cell;  // contents (shared between spaces when the memory is shared)
};

struct mspace {
  fake::space* s;
  std::vector<mpage> pg;
};

vaddr_t g_next = vaddr_t{3} << 40;

fake::space* new_space() {
  auto* s = new fake::space(g_next, kWin);
  g_next += kWin;
  return s;
}

// On a mismatch: the map and the page's shadow chain.
void dump(vmspace* vs, vaddr_t va) {
  vmspace_report_procstat(vs, 2);
  vm_lock_guard g;
  vm_map* map = reinterpret_cast<vm_map*>(vs);
  vm_map_entry* e;
  if (!vm_map_lookup_entry(map, va, &e)) return;
  vm_pindex_t p = atop(va - e->start + e->offset);
  fprintf(stderr, "entry [%lx,%lx) off %lx eflags %x obj %p pindex %lu\n", e->start, e->end,
          static_cast<unsigned long>(e->offset), e->eflags, static_cast<void*>(e->object), static_cast<unsigned long>(p));
  for (vm_object* o = e->object; o != nullptr; o = o->backing_object) {
    vm_page* m = vm_page_lookup(o, p);
    fprintf(stderr, "  obj %lu ref %d shd %d size %lu flags %x boff %lu page %s\n", static_cast<unsigned long>(o->id),
            o->ref_count, o->shadow_count, static_cast<unsigned long>(o->size), o->flags,
            static_cast<unsigned long>(o->backing_offset), m ? "yes" : "no");
    p += o->backing_offset;
  }
}

}  // namespace

void run_model(std::uint64_t seed, int steps) {
  fake::boot();
  INFO("seed " << seed);
  std::mt19937_64 rng(seed);
  bool trace = getenv("VM_MODEL_TRACE") != nullptr;
  std::vector<mspace> sp;
  sp.push_back({new_space(), std::vector<mpage>(kPages)});
  auto base = [&](mspace& m) { return vmspace_min(m.s->vs); };
  int forks = 0, cows0 = static_cast<int>(fake::ctr(V_COW_FAULTS));
  for (int step = 0; step < steps; ++step) {
    mspace& m = sp[rng() % sp.size()];
    vsize_t a = rng() % kPages;
    vsize_t n = 1 + rng() % 12;
    if (a + n > kPages) n = kPages - a;
    vaddr_t va = base(m) + a * PAGE_SIZE;
    int op = static_cast<int>(rng() % 108);
    if (trace) fprintf(stderr, "step %d space %zu op %d a %zu n %zu\n", step, static_cast<size_t>(&m - &sp[0]), op, a, n);
    if (op < 12) {  // mmap FIXED
      bool shared = rng() % 4 == 0;
      vm_prot_t prot = (rng() % 5 == 0) ? VM_PROT_READ : VM_PROT_DEFAULT;
      vm_mmap_request r{};
      r.addr = va;
      r.len = n * PAGE_SIZE;
      r.prot = prot;
      r.maxprot = VM_PROT_ALL;
      r.flags = (shared ? VM_MMAP_SHARED : VM_MMAP_PRIVATE) | VM_MMAP_FIXED;
      vaddr_t out = 0;
      REQUIRE(vm_mmap(m.s->vs, r, &out) == KERN_SUCCESS);
      REQUIRE(out == va);
      // Shared memory of one mmap call is one object: one cell per page, shared by forks.
      for (vsize_t k = a; k < a + n; ++k)
        m.pg[k] = mpage{true, shared, prot, shared ? VM_INHERIT_SHARE : VM_INHERIT_COPY, false, std::make_shared<int>(0)};
    } else if (op < 18) {  // munmap
      REQUIRE(vm_munmap(m.s->vs, va, n * PAGE_SIZE) == KERN_SUCCESS);
      for (vsize_t k = a; k < a + n; ++k) m.pg[k] = mpage{};
    } else if (op < 26) {  // mprotect
      vm_prot_t prot = static_cast<vm_prot_t>(rng() % 4);  // NONE, R, W, RW
      bool covered = true;
      for (vsize_t k = a; k < a + n; ++k) covered &= m.pg[k].mapped;
      kern_return_t kr = vm_mprotect(m.s->vs, va, n * PAGE_SIZE, prot);
      REQUIRE(kr == (covered ? KERN_SUCCESS : KERN_INVALID_ADDRESS));
      if (covered)
        for (vsize_t k = a; k < a + n; ++k) m.pg[k].prot = prot;
    } else if (op < 32) {  // madvise DONTNEED
      bool covered = true, locked = false;
      for (vsize_t k = a; k < a + n; ++k) {
        covered &= m.pg[k].mapped;
        locked |= m.pg[k].mapped && m.pg[k].locked;
      }
      kern_return_t kr = vm_madvise(m.s->vs, va, n * PAGE_SIZE, VM_ADVICE_DONTNEED);
      if (locked) {
        REQUIRE(kr == KERN_INVALID_ARGUMENT);  // Linux: EINVAL on mlocked memory
        continue;
      }
      REQUIRE(kr == (covered ? KERN_SUCCESS : KERN_INVALID_ADDRESS));
      for (vsize_t k = a; k < a + n; ++k)
        if (m.pg[k].mapped && !m.pg[k].shared) m.pg[k].cell = std::make_shared<int>(0);
    } else if (op < 36) {  // minherit
      vm_inherit_t inh = static_cast<vm_inherit_t>(rng() % 4);
      bool covered = true;
      for (vsize_t k = a; k < a + n; ++k) covered &= m.pg[k].mapped;
      kern_return_t kr = vm_minherit(m.s->vs, va, n * PAGE_SIZE, inh);
      REQUIRE(kr == (covered ? KERN_SUCCESS : KERN_INVALID_ADDRESS));
      if (covered)
        for (vsize_t k = a; k < a + n; ++k) m.pg[k].inh = inh;
    } else if (op < 39) {  // fork or destroy
      if (sp.size() < 4 && rng() % 2 == 0) {
        mspace child{fake::fork_into(*m.s, g_next, kWin), std::vector<mpage>(kPages)};
        g_next += kWin;
        for (vsize_t k = 0; k < kPages; ++k) {
          if (!m.pg[k].mapped) continue;
          mpage q = fake::model_fork_page(m.pg[k]);
          q.locked = false;  // mlock is not inherited
          child.pg[k] = q;
        }
        sp.push_back(std::move(child));
        if (trace) fprintf(stderr, "  fork -> space %zu\n", sp.size() - 1);
        ++forks;
      } else if (sp.size() > 1) {
        size_t victim = 1 + rng() % (sp.size() - 1);
        if (trace) fprintf(stderr, "  destroy space %zu\n", victim);
        delete sp[victim].s;
        sp.erase(sp.begin() + static_cast<long>(victim));
      }
    } else if (op >= 100) {  // mlock / munlock
      bool covered = true, accessible = true;
      for (vsize_t k = a; k < a + n; ++k) {
        covered &= m.pg[k].mapped;
        accessible &= m.pg[k].mapped && m.pg[k].prot != VM_PROT_NONE;
      }
      if (op < 104) {
        kern_return_t kr = vm_mlock(m.s->vs, va, n * PAGE_SIZE);
        REQUIRE(kr == (accessible ? KERN_SUCCESS : KERN_INVALID_ADDRESS));
        if (accessible)
          for (vsize_t k = a; k < a + n; ++k) m.pg[k].locked = true;
      } else {
        kern_return_t kr = vm_munlock(m.s->vs, va, n * PAGE_SIZE);
        REQUIRE(kr == (covered ? KERN_SUCCESS : KERN_INVALID_ADDRESS));
        if (covered)
          for (vsize_t k = a; k < a + n; ++k) m.pg[k].locked = false;
      }
    } else if (op < 70) {  // write
      mpage& p = m.pg[a];
      std::uint8_t v = static_cast<std::uint8_t>(1 + rng() % 250);
      kern_return_t kr = KERN_SUCCESS;
      bool ok = fake::access(m.s->vs, va + 8, true, &v, &kr);
      if (!p.mapped) {
        REQUIRE(!ok);
        REQUIRE(kr == KERN_INVALID_ADDRESS);
      } else if (!(p.prot & VM_PROT_WRITE)) {
        REQUIRE(!ok);
        REQUIRE(kr == KERN_PROTECTION_FAILURE);
      } else {
        REQUIRE(ok);
        *p.cell = v;
        if (trace) fprintf(stderr, "  wrote %d\n", v);
      }
    } else {  // read
      mpage& p = m.pg[a];
      std::uint8_t v = 0;
      kern_return_t kr = KERN_SUCCESS;
      bool ok = fake::access(m.s->vs, va + 8, false, &v, &kr);
      if (!p.mapped) {
        REQUIRE(!ok);
        REQUIRE(kr == KERN_INVALID_ADDRESS);
      } else if (!(p.prot & VM_PROT_READ)) {
        REQUIRE(!ok);
        REQUIRE(kr == KERN_PROTECTION_FAILURE);
      } else {
        REQUIRE(ok);
        if (v != *p.cell) dump(m.s->vs, va);
        REQUIRE(v == *p.cell);
      }
    }
    std::string err = fake::check_all();
    if (!err.empty()) FAIL("step " << step << " op " << op << ": " << err);
  }
  // Final sweep: every readable page of every space reads its model contents.
  for (auto& m : sp)
    for (vsize_t k = 0; k < kPages; ++k)
      if (m.pg[k].mapped && (m.pg[k].prot & VM_PROT_READ)) {
        std::uint8_t v = 0;
        REQUIRE(fake::access(m.s->vs, base(m) + k * PAGE_SIZE + 8, false, &v));
        REQUIRE(v == *m.pg[k].cell);
      }
  CHECK(forks > 10);
  CHECK(fake::ctr(V_COW_FAULTS) > cows0);
  for (auto& m : sp) delete m.s;
  CHECK(fake::check_all() == "");
}

TEST_CASE("random operations on several vmspaces agree with a reference model") {
  // VM_MODEL_SEED / VM_MODEL_STEPS reproduce or explore other runs; VM_MODEL_TRACE=1 traces.
  const char* seed_env = getenv("VM_MODEL_SEED");
  const char* steps_env = getenv("VM_MODEL_STEPS");
  int steps = steps_env != nullptr ? atoi(steps_env) : 20000;
  if (seed_env != nullptr) {
    run_model(std::strtoull(seed_env, nullptr, 10), steps);
  } else {
    for (std::uint64_t seed : {2024u, 6u, 77u, 31337u}) run_model(seed, steps);
  }
}
