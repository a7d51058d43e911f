// vm_lock_test.cpp — the VM lock's stack hooks (vm_lock.h): the holder's stack is made
// resident before the lock is taken and checked under it, and lost pages are made resident
// again, a bounded number of times.
#include <doctest/doctest.h>

#include "vm/vm_lock.h"
#include "vm/vm_stats.h"

using namespace vmrt;

namespace {

int g_prepares, g_readies, g_not_ready;  // calls so far; ready answers false this many times
bool g_on_paged_stack;
bool g_held_in_ready;

bool prepare() {
  ++g_prepares;
  CHECK_FALSE(vm_lock_owned());  // made resident with no lock held
  return g_on_paged_stack;
}

bool ready() {
  ++g_readies;
  g_held_in_ready = vm_lock_owned();
  if (g_not_ready == 0) return true;
  --g_not_ready;
  return false;
}

constexpr vm_lock_stack_hooks kHooks{prepare, ready};

struct hooks_fixture {
  hooks_fixture() {
    g_prepares = g_readies = g_not_ready = 0;
    g_on_paged_stack = true;
    g_held_in_ready = false;
    vm_lock_set_stack_hooks(&kHooks);
  }
  ~hooks_fixture() { vm_lock_set_stack_hooks(nullptr); }
};

}  // namespace

TEST_CASE_FIXTURE(hooks_fixture, "a thread on a host stack: prepare says so, the lock is taken as it is") {
  g_on_paged_stack = false;
  const auto probes = vm_stat_get(V_VM_LOCK_STACK_PROBES);
  vm_lock_acquire();
  CHECK(vm_lock_owned());
  vm_lock_release();
  CHECK(g_prepares == 1);
  CHECK(g_readies == 0);
  CHECK(vm_stat_get(V_VM_LOCK_STACK_PROBES) == probes);
}

TEST_CASE_FIXTURE(hooks_fixture, "a stack still in place under the lock: one prepare, one check, held") {
  const auto probes = vm_stat_get(V_VM_LOCK_STACK_PROBES), retries = vm_stat_get(V_VM_LOCK_STACK_RETRIES);
  vm_lock_acquire();
  CHECK(vm_lock_owned());
  vm_lock_release();
  CHECK(g_prepares == 1);
  CHECK(g_readies == 1);
  CHECK(g_held_in_ready);
  CHECK(vm_stat_get(V_VM_LOCK_STACK_PROBES) == probes + 1);
  CHECK(vm_stat_get(V_VM_LOCK_STACK_RETRIES) == retries);
}

TEST_CASE_FIXTURE(hooks_fixture, "pages lost before the lock: the lock goes, the stack is prepared again") {
  g_not_ready = 3;
  const auto retries = vm_stat_get(V_VM_LOCK_STACK_RETRIES);
  vm_lock_acquire();
  CHECK(vm_lock_owned());
  vm_lock_release();
  CHECK(g_prepares == 4);
  CHECK(g_readies == 4);
  CHECK(vm_stat_get(V_VM_LOCK_STACK_RETRIES) == retries + 3);
}

TEST_CASE_FIXTURE(hooks_fixture, "a stack never in place: the lock is taken after a bounded number of attempts") {
  g_not_ready = 1000;
  vm_lock_acquire();
  CHECK(vm_lock_owned());
  vm_lock_release();
  CHECK(g_prepares >= 2);
  CHECK(g_prepares <= 16);
  CHECK(g_readies == g_prepares - 1);  // the last attempt keeps the lock unasked
}

TEST_CASE_FIXTURE(hooks_fixture, "vm_lock_try runs no hook") {
  REQUIRE(vm_lock_try());
  vm_lock_release();
  CHECK(g_prepares == 0);
  CHECK(g_readies == 0);
}
