// vm_map_test.cpp — map entries: insert / clip / merge / lookup / free-space search,
// randomised against a per-page reference model, with vm_map_check after every step.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <unistd.h>

#include <random>
#include <vector>

#include "vm/vm_lock.h"
#include "vm/vm_map.h"
#include "vm/vm_object.h"
#include "vm/vm_radix.h"

using namespace vmrt;

namespace {

constexpr vaddr_t kMin = vaddr_t{0x10000000};

struct model {
  std::vector<int> prot;  // per page: -1 unmapped, else protection
  explicit model(size_t n) : prot(n, -1) {}
  bool free(size_t s, size_t n) const {
    for (size_t k = s; k < s + n; ++k)
      if (prot[k] != -1) return false;
    return true;
  }
  // First fit at or above hint.
  long first_fit(size_t hint, size_t n) const {
    for (size_t s = hint; s + n <= prot.size(); ++s)
      if (free(s, n)) return static_cast<long>(s);
    return -1;
  }
};

int null_fd() {
  static int fd = -1;
  if (fd < 0) fd = open("/dev/null", O_WRONLY);
  return fd;
}

void check_against(vm_map* map, const model& md) {
  REQUIRE(vm_map_check(map, 2));
  for (size_t p = 0; p < md.prot.size(); ++p) {
    vm_map_entry* e;
    bool in = vm_map_lookup_entry(map, kMin + p * PAGE_SIZE, &e);
    REQUIRE(in == (md.prot[p] != -1));
    if (in) REQUIRE(e->protection == md.prot[p]);
  }
}

void set_prot(vm_map* map, vaddr_t s, vaddr_t t, vm_prot_t prot) {
  vm_map_entry* e;
  if (vm_map_lookup_entry(map, s, &e)) vm_map_clip_start(map, e, s);
  else e = e->next;
  while (!vm_map_is_end(map, e) && e->start < t) {
    vm_map_clip_end(map, e, t);
    e->protection = prot;
    e = e->next;
  }
  if (!vm_map_lookup_entry(map, s, &e)) e = e->next;
  if (!vm_map_is_end(map, e) && e->prev != &map->header) e = e->prev;
  while (!vm_map_is_end(map, e) && e->start <= t) e = vm_map_simplify_entry(map, e)->next;
}

}  // namespace

TEST_CASE("random map operations agree with the reference model") {
  constexpr size_t kPages = 2048;
  vm_lock_guard g;
  vm_map map;
  vm_map_init(&map, kMin, kMin + kPages * PAGE_SIZE, nullptr);
  model md(kPages);
  std::mt19937_64 rng(12345);
  for (int step = 0; step < 6000; ++step) {
    int op = static_cast<int>(rng() % 10);
    size_t s = rng() % kPages;
    size_t n = 1 + rng() % 24;
    if (s + n > kPages) n = kPages - s;
    vm_prot_t prot = (rng() % 2) ? VM_PROT_READ : VM_PROT_DEFAULT;
    vaddr_t va = kMin + s * PAGE_SIZE, ve = va + n * PAGE_SIZE;
    if (op <= 3) {  // insert
      kern_return_t kr = vm_map_insert(&map, nullptr, 0, va, ve, prot, VM_PROT_ALL, MAP_ENTRY_COW, VM_INHERIT_COPY);
      bool fr = md.free(s, n);
      REQUIRE((kr == KERN_SUCCESS) == fr);
      if (fr)
        for (size_t k = s; k < s + n; ++k) md.prot[k] = prot;
    } else if (op <= 5) {  // delete
      vm_map_delete(&map, va, ve);
      for (size_t k = s; k < s + n; ++k) md.prot[k] = -1;
    } else if (op == 6) {  // free-space search
      vaddr_t out = 0;
      kern_return_t kr = vm_map_findspace(&map, va, n * PAGE_SIZE, PAGE_SIZE, &out);
      long want = md.first_fit(s, n);
      REQUIRE((kr == KERN_SUCCESS) == (want >= 0));
      if (want >= 0) REQUIRE(out == kMin + static_cast<vaddr_t>(want) * PAGE_SIZE);
    } else if (op == 7) {  // aligned search
      vaddr_t out = 0;
      vsize_t align = PAGE_SIZE << (rng() % 4);
      if (vm_map_findspace(&map, va, n * PAGE_SIZE, align, &out) == KERN_SUCCESS) {
        REQUIRE(out % align == 0);
        REQUIRE(out >= va);
        REQUIRE(md.free((out - kMin) / PAGE_SIZE, n));
      }
    } else if (op == 8) {  // change protection (clip + simplify)
      bool covered = true;
      for (size_t k = s; k < s + n; ++k) covered &= md.prot[k] != -1;
      if (covered) {
        set_prot(&map, va, ve, prot);
        for (size_t k = s; k < s + n; ++k) md.prot[k] = prot;
      }
    } else {  // clip only
      vm_map_entry* e;
      if (vm_map_lookup_entry(&map, va, &e)) {
        if (rng() % 2) vm_map_clip_start(&map, e, va);
        else vm_map_clip_end(&map, e, va + PAGE_SIZE < e->end ? va + PAGE_SIZE : e->end);
      }
    }
    if (step % 7 == 0 || step < 200) check_against(&map, md);
    else REQUIRE(vm_map_check(&map, 2));
  }
  check_against(&map, md);
  // Adjacent compatible entries were merged by simplify: no two neighbours mergeable after a full pass.
  for (vm_map_entry* e = vm_map_first(&map); !vm_map_is_end(&map, e);) e = vm_map_simplify_entry(&map, e)->next;
  for (vm_map_entry* e = vm_map_first(&map); !vm_map_is_end(&map, e) && !vm_map_is_end(&map, e->next); e = e->next)
    CHECK(!(e->end == e->next->start && e->protection == e->next->protection));
  REQUIRE(vm_map_check(&map, 2));
  vm_map_deinit(&map);
}

TEST_CASE("tree stays balanced with many entries; lookup and search are logarithmic in depth") {
  vm_lock_guard g;
  vm_map map;
  constexpr size_t kN = 20000;
  vm_map_init(&map, kMin, kMin + 2 * kN * PAGE_SIZE, nullptr);
  for (size_t k = 0; k < kN; ++k) {
    vaddr_t va = kMin + 2 * k * PAGE_SIZE;  // a hole between every two entries: nothing merges
    REQUIRE(vm_map_insert(&map, nullptr, 0, va, va + PAGE_SIZE, VM_PROT_READ, VM_PROT_ALL, 0, VM_INHERIT_COPY) ==
            KERN_SUCCESS);
  }
  CHECK(map.nentries == kN);
  CHECK(map.root->height <= 20);  // AVL: < 1.45 log2(n+2)
  REQUIRE(vm_map_check(&map, 2));
  // No 2-page hole anywhere below the top: the search must find the tail.
  vaddr_t out;
  REQUIRE(vm_map_findspace(&map, kMin, 2 * PAGE_SIZE, PAGE_SIZE, &out) == KERN_NO_SPACE);
  // Open a 3-page hole in the middle and find it from below.
  vm_map_delete(&map, kMin + 20000 * PAGE_SIZE, kMin + 20002 * PAGE_SIZE);
  REQUIRE(vm_map_findspace(&map, kMin, 3 * PAGE_SIZE, PAGE_SIZE, &out) == KERN_SUCCESS);
  CHECK(out == kMin + 19999 * PAGE_SIZE);
  REQUIRE(vm_map_check(&map, 2));
  vm_map_deinit(&map);
}

TEST_CASE("the checker catches corrupted maps") {
  vm_lock_guard g;
  vm_map map;
  vm_map_init(&map, kMin, kMin + 1024 * PAGE_SIZE, nullptr);
  for (int k = 0; k < 50; ++k) {
    vaddr_t va = kMin + 4 * k * PAGE_SIZE;
    REQUIRE(vm_map_insert(&map, nullptr, 0, va, va + 2 * PAGE_SIZE, VM_PROT_READ, VM_PROT_ALL, 0, VM_INHERIT_COPY) ==
            KERN_SUCCESS);
  }
  int fd = null_fd();
  REQUIRE(vm_map_check(&map, fd));
  vm_map_entry* e = map.root;
  // 1. overlapping entries
  vaddr_t old_end = e->end;
  e->end = e->next->start + PAGE_SIZE;
  CHECK_FALSE(vm_map_check(&map, fd));
  e->end = old_end;
  REQUIRE(vm_map_check(&map, fd));
  // 2. wrong gap augmentation
  vsize_t mfree = e->max_free;
  e->max_free = mfree + PAGE_SIZE;
  CHECK_FALSE(vm_map_check(&map, fd));
  e->max_free = mfree;
  // 3. broken parent pointer
  vm_map_entry* l = e->left;
  vm_map_entry* par = l->parent;
  l->parent = e->right;
  CHECK_FALSE(vm_map_check(&map, fd));
  l->parent = par;
  // 4. protection above max_protection
  e->max_protection = VM_PROT_NONE;
  CHECK_FALSE(vm_map_check(&map, fd));
  e->max_protection = VM_PROT_ALL;
  // 5. an object whose reference count does not cover the entries mapping it
  vm_object* obj = vm_object_allocate(OBJT_DEFAULT, 2);
  vm_map_entry* oe = vm_map_first(&map);
  oe->object = obj;  // one reference, one entry: consistent
  REQUIRE(vm_map_check(&map, fd));
  vm_map_entry* oe2 = oe->next;
  oe2->object = obj;  // a second entry without a reference
  CHECK_FALSE(vm_map_check(&map, fd));
  oe2->object = nullptr;
  obj->ref_count = 0;
  CHECK_FALSE(vm_map_check(&map, fd));  // dead object still mapped
  obj->ref_count = 1;
  REQUIRE(vm_map_check(&map, fd));
  // 6. entry outside bounds
  vm_map_entry* last = map.header.prev;
  vaddr_t le = last->end;
  last->end = map.max + PAGE_SIZE;
  CHECK_FALSE(vm_map_check(&map, fd));
  last->end = le;
  REQUIRE(vm_map_check(&map, fd));
  vm_map_deinit(&map);
}
