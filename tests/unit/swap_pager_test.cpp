// swap_pager_test.cpp — the swap pager's devices across host forks (swap_pager.h): a fork
// freezes the own device, the fork that finds the device table full merges the idle frozen
// devices into one file (merge_frozen), and a device with a laundering write in flight is
// left out of that merge (before, its counted but unwritten slots were copied and pointed
// at the copy, which the write then missed: a checksum failure at the next page-in).
// Every page is read back through get_pages, whose checksum check makes a stale copy
// VM_PAGER_BAD.  Deterministic: the forks are the parent side of a fork called directly
// (prepare under the VM lock, then parent), no host fork; the write in flight is held by
// the pager_write fail point's sleep= while the merge runs.  (Before this test only the
// forkchain case of scenario paging reached the merge, when laundering timing allowed.)
// Fake pmap (vm_fakepmap.h) for physmem.
#include <atomic>
#include <cstdint>
#include <map>
#include <string>
#include <thread>

#include <time.h>

#include "vm/swap_pager.h"
#include "vm/vm_fail.h"
#include "vm/vm_pager.h"
#include "vm_fakepmap.h"

using namespace vmrt;

namespace {

constexpr unsigned kMaxDevices = 16;  // swap_pager.cpp's device table (own + frozen)
constexpr unsigned kRun = 8;          // pages written per fork round
constexpr vm_pindex_t kObjPages = 4096;
constexpr std::uint64_t kSwapBytes = std::uint64_t{64} << 20;

// The bytes of page pindex written in generation gen: every 8-byte word distinct.
std::uint64_t word(vm_pindex_t pindex, unsigned gen, std::size_t k) {
  std::uint64_t x = (pindex * 0x9E3779B97F4A7C15ull) ^ (std::uint64_t{gen} << 40) ^ (k * 0xBF58476D1CE4E5B9ull);
  x ^= x >> 31;
  return x | 1;  // never a page of zeros (those take no slot)
}

void fill(vm_page* m, unsigned gen) {
  auto* w = static_cast<std::uint64_t*>(pmap_machine_ops()->page_address(m));
  for (std::size_t k = 0; k < PAGE_SIZE / 8; ++k) w[k] = word(m->pindex, gen, k);
}

bool holds(const vm_page* m, unsigned gen) {
  const auto* w = static_cast<const std::uint64_t*>(pmap_machine_ops()->page_address(m));
  for (std::size_t k = 0; k < PAGE_SIZE / 8; ++k)
    if (w[k] != word(m->pindex, gen, k)) return false;
  return true;
}

struct swap_fixture {
  vm_object* obj = nullptr;
  std::map<vm_pindex_t, unsigned> gen;  // what each stored page must read back as

  swap_fixture() {
    fake::boot();
    static bool inited = false;
    if (!inited) {
      REQUIRE(swap_pager_init(nullptr, nullptr, kSwapBytes) == KERN_SUCCESS);
      inited = true;
    }
    vm_lock_guard g;
    obj = vm_object_allocate(OBJT_DEFAULT, kObjPages);
    REQUIRE(obj != nullptr);
    obj->flags |= OBJ_ANON;
  }
  ~swap_fixture() {
    vm_lock_guard g;
    vm_object_deallocate(obj);
  }

  // Write pages [lo, lo + n) holding generation g to swap, as the laundry does: resident
  // and busy during put_pages, freed after it (the records stay).  may_unlock: the VM lock
  // is dropped for the write.  => VM lock held.
  void put_locked(vm_pindex_t lo, unsigned n, unsigned g, bool may_unlock) {
    vm_page* run[kPagerMaxRun];
    REQUIRE(n <= kPagerMaxRun);
    REQUIRE(vm_page_alloc_run(obj, lo, n, VM_ALLOC_NORMAL, run) == n);
    for (unsigned k = 0; k < n; ++k) {
      fill(run[k], g);
      run[k]->flags |= PG_BUSY;
    }
    vm_object_reference(obj);
    vm_pager_result rt[kPagerMaxRun];
    vm_pager_for_put(obj)->put_pages(obj, run, n, VM_PAGER_PUT_NONE, may_unlock, rt);
    for (unsigned k = 0; k < n; ++k) {
      CHECK(rt[k] == VM_PAGER_OK);
      vm_page_unbusy(run[k]);
      vm_page_free(run[k]);
    }
    vm_page_free_flush();
    vm_object_deallocate(obj);
    for (unsigned k = 0; k < n; ++k) gen[lo + k] = g;
  }
  void put(vm_pindex_t lo, unsigned n, unsigned g) {
    vm_lock_guard lk;
    put_locked(lo, n, g, false);
  }

  // Read every stored page back (runs of up to kPagerMaxRun); returns how many pages did
  // not come back as written (an I/O error, a checksum mismatch, other bytes).
  unsigned read_back() {
    vm_lock_guard lk;
    unsigned bad = 0;
    for (auto it = gen.begin(); it != gen.end();) {
      vm_pindex_t lo = it->first;
      unsigned n = 0;
      while (it != gen.end() && it->first == lo + n && n < kPagerMaxRun) {
        ++n;
        ++it;
      }
      vm_page* run[kPagerMaxRun];
      REQUIRE(vm_page_alloc_run(obj, lo, n, VM_ALLOC_NORMAL, run) == n);
      for (unsigned k = 0; k < n; ++k) run[k]->flags |= PG_BUSY;
      vm_pager_result rt[kPagerMaxRun];
      vm_pager_of(obj)->get_pages(obj, run, n, false, rt);
      for (unsigned k = 0; k < n; ++k) {
        if (rt[k] != VM_PAGER_OK || !holds(run[k], gen[lo + k])) {
          if (bad++ == 0)
            MESSAGE("page " << lo + k << ": "
                            << std::string(rt[k] == VM_PAGER_OK ? "other bytes" : kPagerResultNames[rt[k]]));
        }
        vm_page_unbusy(run[k]);
        vm_page_free(run[k]);
      }
      vm_page_free_flush();
    }
    return bad;
  }
};

// The parent side of a host fork: true when prepare succeeded (a merge did not fail).
bool fork_parent_side() {
  bool ok;
  {
    vm_lock_guard lk;
    ok = swap_pager_fork_prepare();
  }
  swap_pager_fork_parent();
  return ok;
}

// One fork round: kRun new pages (generation r) at r * kRun, a rewrite of half of the
// previous round's pages (their older slots die: devices lose slots but keep some), then a
// fork.  Returns the slots the fork's merge copied (0: no merge).
std::int64_t round(swap_fixture& f, unsigned r) {
  f.put(vm_pindex_t{r} * kRun, kRun, r);
  if (r > 0) f.put(vm_pindex_t{r - 1} * kRun, kRun / 2, r + 1000);
  std::int64_t before = vm_stat_get(V_SWAP_FORK_COPIES);
  CHECK(fork_parent_side());
  return vm_stat_get(V_SWAP_FORK_COPIES) - before;
}

}  // namespace

TEST_CASE("forks past the device table merge the frozen devices; every page reads back") {
  swap_fixture f;
  std::int64_t frozen0 = vm_stat_get(V_SWAP_FORK_FROZEN);
  unsigned merges = 0, first_merge = 0;
  constexpr unsigned kRounds = 2 * kMaxDevices + 4;
  for (unsigned r = 0; r < kRounds; ++r) {
    std::int64_t copied = round(f, r);
    if (copied > 0 && merges++ == 0) first_merge = r;
  }
  // Every round froze a device with pages; the table filled at least twice.
  CHECK(vm_stat_get(V_SWAP_FORK_FROZEN) - frozen0 == kRounds);
  CHECK(merges >= 2);
  CHECK(first_merge <= kMaxDevices);
  CHECK(f.read_back() == 0);
  // Pages die on merged devices as on any other: rewrite a merged range, read all again.
  f.put(0, kRun, 5000);
  CHECK(fork_parent_side());
  CHECK(f.read_back() == 0);
}

TEST_CASE("a device with a laundering write in flight is left out of a fork's merge") {
  swap_fixture f;
  // Fill the table to one short: rounds until a merge (which leaves one file: the merged
  // one, every device being idle), then kMaxDevices - 2 more frozen ones.
  unsigned r = 0;
  while (round(f, r++) == 0) REQUIRE(r < 4 * kMaxDevices);
  for (unsigned k = 0; k < kMaxDevices - 2; ++k) CHECK(round(f, r++) == 0);

  // The 16th device: its pages counted and their slots handed out, the write held back
  // (pager_write sleep=) with the VM lock dropped, while the fork freezes it and merges.
  vm_fail_spec spec{};
  vm_fail_error err{};
  REQUIRE(vm_fail_parse("pager_write:sleep=1s,times=1", &spec, &err));
  vm_fail_arm(spec);
  const vm_pindex_t lo = vm_pindex_t{1000} * kRun;  // clear of every round's pages
  std::atomic<bool> written{false};
  std::thread writer([&] {
    vm_lock_guard lk;
    f.put_locked(lo, kRun, 77, true);
    written = true;
  });
  // The delay is counted with the VM lock held, just before put_pages drops it: once the
  // lock is ours again the write is in its sleep (or past it: then `written` is set).
  timespec ts{0, 1000000};
  while (vm_fail_get_counts(FP_PAGER_WRITE).delays == 0) nanosleep(&ts, nullptr);
  std::int64_t copies0 = vm_stat_get(V_SWAP_FORK_COPIES);
  bool ok;
  bool in_flight;
  {
    vm_lock_guard lk;
    in_flight = !written;
    ok = swap_pager_fork_prepare();
  }
  swap_pager_fork_parent();
  writer.join();
  vm_fail_disarm();
  REQUIRE(in_flight);  // (else the machine stalled a whole second: rerun)
  CHECK(ok);
  CHECK(vm_stat_get(V_SWAP_FORK_COPIES) > copies0);  // the idle ones were merged
  CHECK(vm_fail_get_counts(FP_PAGER_WRITE).delays == 1);
  CHECK(f.read_back() == 0);  // the in-flight pages included
  // The device that was busy is merged at a later fork once idle.
  unsigned more = 0;
  while (round(f, r++) == 0) REQUIRE(++more < 2 * kMaxDevices);
  CHECK(f.read_back() == 0);
}
