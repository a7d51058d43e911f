// vm_radix_test.cpp — the page radix trie against std::map.
#include <doctest/doctest.h>

#include <map>
#include <random>
#include <vector>

#include "vm/vm_lock.h"
#include "vm/vm_page.h"
#include "vm/vm_radix.h"

using namespace vmrt;

TEST_CASE("radix insert / remove / lookup / lookup_ge / lookup_le agree with std::map") {
  vm_lock_guard g;
  std::vector<vm_page> pages(4096);
  std::map<vm_pindex_t, vm_page*> ref;
  vm_radix rt;
  std::mt19937_64 rng(7);
  auto key = [&]() -> vm_pindex_t {
    switch (rng() % 4) {
      case 0: return rng() % 64;
      case 1: return rng() % 5000;
      case 2: return rng() % (vm_pindex_t{1} << 24);
      default: return rng() >> (rng() % 40);
    }
  };
  size_t next_page = 0;
  for (int step = 0; step < 40000; ++step) {
    vm_pindex_t k = key();
    int op = static_cast<int>(rng() % 3);
    if (op == 0 && next_page < pages.size()) {
      if (ref.count(k) == 0) {
        vm_page* m = &pages[next_page++ % pages.size()];
        REQUIRE(vm_radix_insert(&rt, k, m) == KERN_SUCCESS);
        ref[k] = m;
      }
    } else if (op == 1) {
      vm_page* m = vm_radix_remove(&rt, k);
      auto it = ref.find(k);
      REQUIRE(m == (it == ref.end() ? nullptr : it->second));
      if (it != ref.end()) ref.erase(it);
    }
    REQUIRE(vm_radix_lookup(&rt, k) == (ref.count(k) ? ref[k] : nullptr));
    auto ge = ref.lower_bound(k);
    REQUIRE(vm_radix_lookup_ge(&rt, k) == (ge == ref.end() ? nullptr : ge->second));
    auto le = ref.upper_bound(k);
    vm_page* want_le = le == ref.begin() ? nullptr : std::prev(le)->second;
    REQUIRE(vm_radix_lookup_le(&rt, k) == want_le);
    if (next_page >= pages.size()) next_page = 0;  // reuse page records (identity only)
  }
  REQUIRE(vm_radix_count(&rt) == ref.size());
  for (auto& [k, m] : ref) REQUIRE(vm_radix_remove(&rt, k) == m);
  CHECK(vm_radix_is_empty(&rt));
  CHECK(vm_radix_lookup_ge(&rt, 0) == nullptr);
}
