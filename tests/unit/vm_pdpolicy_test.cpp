// vm_pdpolicy_test.cpp — the page replacement policies (vm_pdpolicy.h, vm_pdpolicy_clock.cpp):
// second chance, act_count aging, the inactive target, wired pages, max_scan, dequeue of a
// page on no queue, each variant; and the mechanism's wrappers (vm_page_activate/wire/free)
// keeping the queues right.  Policy cases use fake vm_page records and a fake reference bit.
#include <cstring>
#include <vector>

#include "vm/vm_object.h"
#include "vm/vm_pdpolicy.h"
#include "vm_fakepmap.h"

using namespace vmrt;

namespace {

// Fake pages and their reference bits (the policy's environment).
constexpr unsigned kPages = 64;
vm_page g_pages[kPages];
bool g_ref[kPages];
unsigned g_tests;  // test_clear_referenced calls

unsigned idx(const vm_page* m) { return static_cast<unsigned>(m - g_pages); }
bool fake_tcr(vm_page* m) {
  ++g_tests;
  bool r = g_ref[idx(m)];
  g_ref[idx(m)] = false;
  return r;
}
const vm_pdpolicy_env kEnv = {fake_tcr};

// Fresh policy of `kind` with nothing queued and every page unreferenced.
void setup(vm_pdpolicy_kind kind, const vm_pdpolicy_env* env = &kEnv) {
  std::memset(g_pages, 0, sizeof g_pages);
  std::memset(g_ref, 0, sizeof g_ref);
  g_tests = 0;
  vm_pdpolicy_reset();
  vm_pdpolicy_set_inactive_pct(PDPOL_INACTIVE_PCT_DEFAULT);
  vm_pdpolicy_init(kind, env);
}

// Queue pages [0, n) through vm_pdpolicy_activate, in order.
void activate_n(unsigned n) {
  for (unsigned k = 0; k < n; ++k) vm_pdpolicy_activate(&g_pages[k]);
}

unsigned queued_total() { return static_cast<unsigned>(vm_pdpolicy_active_count() + vm_pdpolicy_inactive_count()); }

}  // namespace

TEST_CASE("names parse back to their kinds") {
  for (unsigned k = 0; k < PDPOL_COUNT; ++k) {
    auto kind = static_cast<vm_pdpolicy_kind>(k);
    vm_pdpolicy_kind out = PDPOL_COUNT;
    CHECK(vm_pdpolicy_parse(vm_pdpolicy_name(kind), &out));
    CHECK(out == kind);
  }
  vm_pdpolicy_kind out = PDPOL_CLOCK;
  CHECK_FALSE(vm_pdpolicy_parse("lru", &out));
  CHECK_FALSE(vm_pdpolicy_parse(nullptr, &out));
  setup(PDPOL_CLOCK1);
  CHECK(vm_pdpolicy_current() == PDPOL_CLOCK1);
}

TEST_CASE("clock: pages enter active with ACT_INIT; activate again ages them up; gauges follow") {
  setup(PDPOL_CLOCK);
  auto a0 = vm_stat_get(V_ACTIVE_COUNT);
  activate_n(3);
  CHECK(vm_pdpolicy_active_count() == 3);
  CHECK(vm_pdpolicy_inactive_count() == 0);
  CHECK(vm_stat_get(V_ACTIVE_COUNT) - a0 == 3);
  CHECK(g_pages[0].queue == PQ_ACTIVE);
  CHECK(g_pages[0].act_count == ACT_INIT);
  vm_pdpolicy_activate(&g_pages[0]);
  CHECK(g_pages[0].act_count == ACT_INIT + 1);
  CHECK(vm_pdpolicy_queued(&g_pages[0]));
  CHECK_FALSE(vm_pdpolicy_queued(&g_pages[10]));
}

TEST_CASE("clock: second chance — a referenced inactive page goes back to active, the next is taken") {
  setup(PDPOL_CLOCK);
  activate_n(2);
  vm_pdpolicy_deactivate(&g_pages[1]);
  vm_pdpolicy_deactivate(&g_pages[0]);  // head: taken first
  CHECK(g_pages[0].queue == PQ_INACTIVE);
  CHECK(vm_pdpolicy_inactive_count() == 2);
  g_ref[0] = true;
  auto react0 = vm_stat_get(V_PDPOL_REACTIVATED);
  unsigned scanned = 0;
  vm_page* v = vm_pdpolicy_select_victim(2, &scanned);
  CHECK(v == &g_pages[1]);
  CHECK(scanned == 2);
  CHECK(v->queue == PQ_NONE);
  CHECK_FALSE(vm_pdpolicy_queued(v));
  CHECK(g_pages[0].queue == PQ_ACTIVE);
  CHECK(g_pages[0].act_count >= ACT_INIT);
  CHECK_FALSE(g_ref[0]);  // the scan cleared the bit
  CHECK(vm_stat_get(V_PDPOL_REACTIVATED) - react0 == 1);
  CHECK(queued_total() == 1);
}

TEST_CASE("clock: aging — unreferenced active pages decline to inactive, referenced ones gain ACT_ADVANCE") {
  setup(PDPOL_CLOCK);
  activate_n(2);
  g_ref[1] = true;
  // Nothing inactive: the scan ages the active queue until page 0 drops to inactive
  // (ACT_INIT declines of ACT_DECLINE) and is then taken.
  auto deact0 = vm_stat_get(V_PDPOL_DEACTIVATED);
  unsigned scanned = 0;
  vm_page* v = vm_pdpolicy_select_victim(1000, &scanned);
  REQUIRE(v == &g_pages[0]);
  CHECK(vm_stat_get(V_PDPOL_DEACTIVATED) - deact0 >= 1);
  // Page 1 was seen referenced once (+ACT_ADVANCE), then declined on later passes.
  CHECK(g_pages[1].queue != PQ_NONE);
  CHECK(scanned > ACT_INIT);
  CHECK(scanned <= 2 * (ACT_INIT + ACT_ADVANCE) + 2);
}

TEST_CASE("clock: act_count is capped at ACT_MAX") {
  setup(PDPOL_CLOCK);
  activate_n(1);
  for (int k = 0; k < 200; ++k) vm_pdpolicy_activate(&g_pages[0]);
  CHECK(g_pages[0].act_count == ACT_MAX);
  for (int k = 0; k < 50; ++k) {
    g_ref[0] = true;
    CHECK(vm_pdpolicy_select_victim(1, nullptr) == nullptr);
  }
  CHECK(g_pages[0].act_count == ACT_MAX);
}

TEST_CASE("clock: the active queue is aged only while inactive is short of its target") {
  setup(PDPOL_CLOCK);
  activate_n(30);
  // Deactivate 20 of 30: inactive (67%) is above the 33% target, nothing is aged.
  for (unsigned k = 0; k < 20; ++k) vm_pdpolicy_deactivate(&g_pages[k]);
  g_tests = 0;
  vm_page* v = vm_pdpolicy_select_victim(100, nullptr);
  CHECK(v != nullptr);
  CHECK(v->queue == PQ_NONE);
  CHECK(g_tests == 1);  // only the inactive head was asked
  for (unsigned k = 20; k < 30; ++k) CHECK(g_pages[k].act_count == ACT_INIT);
  // Now 19 inactive of 29; raise the target to 90%: the active queue gets aged first.
  vm_pdpolicy_set_inactive_pct(90);
  g_tests = 0;
  v = vm_pdpolicy_select_victim(100, nullptr);
  CHECK(v != nullptr);
  CHECK(g_tests > 1);
  unsigned aged = 0;
  for (unsigned k = 20; k < 30; ++k) aged += g_pages[k].act_count < ACT_INIT;
  CHECK(aged > 0);
}

TEST_CASE("wired pages are never queued") {
  for (unsigned k = 0; k < PDPOL_COUNT; ++k) {
    auto kind = static_cast<vm_pdpolicy_kind>(k);
    CAPTURE(vm_pdpolicy_name(kind));
    setup(kind);
    g_pages[0].wire_count = 1;
    vm_pdpolicy_activate(&g_pages[0]);
    vm_pdpolicy_deactivate(&g_pages[0]);
    CHECK(g_pages[0].queue == PQ_NONE);
    CHECK(queued_total() == 0);
    CHECK(vm_pdpolicy_select_victim(10, nullptr) == nullptr);
  }
}

TEST_CASE("select_victim honours max_scan and returns null when everything is referenced") {
  for (unsigned k = 0; k < PDPOL_COUNT; ++k) {
    auto kind = static_cast<vm_pdpolicy_kind>(k);
    // The two-handed clock counts only references made after its front hand passed (a
    // bit set before is cleared on the way into the gap): its own cases below.
    if (kind == PDPOL_CLOCK2) continue;
    CAPTURE(vm_pdpolicy_name(kind));
    setup(kind);
    activate_n(16);
    auto none0 = vm_stat_get(V_PDPOL_NO_VICTIM);
    auto scan0 = vm_stat_get(V_PDPOL_SCANNED);
    for (unsigned round = 0; round < 5; ++round) {
      for (unsigned p = 0; p < 16; ++p) g_ref[p] = true;
      unsigned scanned = 99;
      CHECK(vm_pdpolicy_select_victim(8, &scanned) == nullptr);
      CHECK(scanned <= 8);
      CHECK(scanned >= 1);
      CHECK(queued_total() == 16);
    }
    CHECK(vm_stat_get(V_PDPOL_NO_VICTIM) - none0 == 5);
    CHECK(vm_stat_get(V_PDPOL_SCANNED) - scan0 <= 40);
    unsigned scanned = 99;
    CHECK(vm_pdpolicy_select_victim(0, &scanned) == nullptr);
    CHECK(scanned == 0);
    // Nothing referenced any more: a victim turns up within a bounded scan.
    for (unsigned p = 0; p < 16; ++p) g_ref[p] = false;
    vm_page* v = vm_pdpolicy_select_victim(16 * (ACT_MAX + 2), &scanned);
    CHECK(v != nullptr);
    CHECK(queued_total() == 15);
  }
}

TEST_CASE("no env: nothing counts as referenced") {
  for (unsigned k = 0; k < PDPOL_COUNT; ++k) {
    auto kind = static_cast<vm_pdpolicy_kind>(k);
    CAPTURE(vm_pdpolicy_name(kind));
    setup(kind, nullptr);
    activate_n(4);
    for (unsigned p = 0; p < 4; ++p) g_ref[p] = true;  // ignored: no env to ask
    unsigned taken = 0;
    while (vm_pdpolicy_select_victim(1000, nullptr) != nullptr) ++taken;
    CHECK(taken == 4);
    CHECK(queued_total() == 0);
    CHECK(g_tests == 0);
  }
}

TEST_CASE("dequeue of a page on no queue leaves everything alone") {
  setup(PDPOL_CLOCK);
  activate_n(2);
  vm_pdpolicy_dequeue(&g_pages[5]);  // never queued
  CHECK(g_pages[5].queue == PQ_NONE);
  CHECK(queued_total() == 2);
  vm_pdpolicy_dequeue(&g_pages[0]);
  vm_pdpolicy_dequeue(&g_pages[0]);  // twice
  CHECK(queued_total() == 1);
  CHECK(g_pages[1].q_prev == nullptr);
  CHECK(vm_pdpolicy_select_victim(1000, nullptr) == &g_pages[1]);
  CHECK(vm_pdpolicy_select_victim(1000, nullptr) == nullptr);
}

TEST_CASE("clock1: one ring, the hand passes referenced pages once") {
  setup(PDPOL_CLOCK1);
  activate_n(4);
  CHECK(vm_pdpolicy_active_count() == 4);
  CHECK(vm_pdpolicy_inactive_count() == 0);
  // New pages carry the fault's reference mark: the first sweep clears it everywhere.
  g_ref[1] = true;
  unsigned scanned = 0;
  vm_page* v = vm_pdpolicy_select_victim(100, &scanned);
  CHECK(v == &g_pages[0]);
  CHECK(scanned == 5);  // 4 passed (marks cleared), page 0 again
  // Page 1 had both the mark and the bit: one pass clears both, so it goes next.
  g_ref[2] = true;  // referenced since: passed again
  v = vm_pdpolicy_select_victim(100, &scanned);
  CHECK(v == &g_pages[1]);
  v = vm_pdpolicy_select_victim(100, &scanned);
  CHECK(v == &g_pages[3]);
  CHECK(vm_pdpolicy_active_count() == 1);
  // A reference through a fault (activate on a queued page) is a second chance too.
  vm_pdpolicy_activate(&g_pages[0]);  // back in the ring, marked
  vm_pdpolicy_activate(&g_pages[2]);
  v = vm_pdpolicy_select_victim(100, &scanned);
  CHECK(v == &g_pages[2]);
  CHECK(scanned == 3);
}

TEST_CASE("2q: new pages enter inactive; a second reference promotes; a scan does not displace active pages") {
  setup(PDPOL_2Q);
  // Hot pages 0..3, each referenced twice: promoted to active.
  for (unsigned p = 0; p < 4; ++p) {
    g_ref[p] = true;  // the reference that brought it in: cleared on entry
    vm_pdpolicy_activate(&g_pages[p]);
    CHECK(g_pages[p].queue == PQ_INACTIVE);
    CHECK_FALSE(g_ref[p]);
  }
  for (unsigned p = 0; p < 4; ++p) g_ref[p] = true;
  // A cold scan of 8 pages, each referenced once.
  for (unsigned p = 8; p < 16; ++p) vm_pdpolicy_activate(&g_pages[p]);
  // Taking 8 victims: the hot pages are found referenced and promoted, the scan pages go.
  vm_pdpolicy_set_inactive_pct(10);
  for (unsigned k = 0; k < 8; ++k) {
    vm_page* v = vm_pdpolicy_select_victim(100, nullptr);
    REQUIRE(v != nullptr);
    CHECK(idx(v) >= 8);
  }
  for (unsigned p = 0; p < 4; ++p) CHECK(g_pages[p].queue == PQ_ACTIVE);
  // A fault on an inactive page promotes it at once.
  vm_pdpolicy_activate(&g_pages[20]);
  CHECK(g_pages[20].queue == PQ_INACTIVE);
  vm_pdpolicy_activate(&g_pages[20]);
  CHECK(g_pages[20].queue == PQ_ACTIVE);
  CHECK(g_pages[20].act_count == ACT_INIT);
}

TEST_CASE("deactivate puts the page where it is taken first, for every variant") {
  for (unsigned k = 0; k < PDPOL_COUNT; ++k) {
    auto kind = static_cast<vm_pdpolicy_kind>(k);
    CAPTURE(vm_pdpolicy_name(kind));
    setup(kind);
    activate_n(8);
    vm_pdpolicy_deactivate(&g_pages[5]);
    CHECK(g_pages[5].queue == PQ_INACTIVE);
    CHECK(vm_pdpolicy_select_victim(1, nullptr) == &g_pages[5]);
  }
}

// ---- the mechanism's wrappers keep the queues right ------------------------------------
TEST_CASE("vm_page alloc/wire/unwire/deactivate/free move pages through the policy's queues") {
  fake::boot(4096);
  vm_pdpolicy_reset();
  vm_pdpolicy_init(PDPOL_CLOCK, nullptr);
  vm_lock_guard g;
  vm_object* obj = vm_object_allocate(OBJT_DEFAULT, 16);
  REQUIRE(obj != nullptr);
  auto act0 = vm_page_queue_count(PQ_ACTIVE);
  auto inact0 = vm_page_queue_count(PQ_INACTIVE);
  vm_page* m = vm_page_alloc(obj, 0, VM_ALLOC_ZERO);
  REQUIRE(m != nullptr);
  CHECK(m->queue == PQ_ACTIVE);
  CHECK(vm_page_queue_count(PQ_ACTIVE) == act0 + 1);
  CHECK(vm_stat_get(V_ACTIVE_COUNT) == static_cast<std::int64_t>(vm_page_queue_count(PQ_ACTIVE)));
  vm_page* w = vm_page_alloc(obj, 1, VM_ALLOC_ZERO | VM_ALLOC_WIRED);
  REQUIRE(w != nullptr);
  CHECK(w->queue == PQ_NONE);
  vm_page_wire(m);
  CHECK(m->queue == PQ_NONE);
  CHECK(vm_page_queue_count(PQ_ACTIVE) == act0);
  vm_page_unwire(m);
  CHECK(m->queue == PQ_ACTIVE);
  vm_page_deactivate(m);
  CHECK(m->queue == PQ_INACTIVE);
  CHECK(vm_page_queue_count(PQ_INACTIVE) == inact0 + 1);
  vm_page_free(m);
  CHECK(vm_page_queue_count(PQ_INACTIVE) == inact0);
  CHECK(vm_page_queue_count(PQ_ACTIVE) == act0);
  CHECK(vm_stat_get(V_INACTIVE_COUNT) == static_cast<std::int64_t>(inact0));
  vm_page_free(w);
  CHECK(vm_page_queue_count(PQ_LAUNDRY) == 0);
  vm_page_free_flush();
  vm_object_deallocate(obj);
}

TEST_CASE("clock-noage: an active page seen unreferenced once goes inactive; a referenced one stays") {
  setup(PDPOL_CLOCK_NOAGE);
  activate_n(3);
  g_ref[0] = true;
  auto deact0 = vm_stat_get(V_PDPOL_DEACTIVATED);
  unsigned scanned = 0;
  // Inactive empty (short): page 0 (referenced) is requeued, page 1 goes inactive (33% of 3
  // reached), then page 1 is the victim: three looks, no act_count countdown.
  vm_page* v = vm_pdpolicy_select_victim(100, &scanned);
  CHECK(v == &g_pages[1]);
  CHECK(scanned == 3);
  CHECK(vm_stat_get(V_PDPOL_DEACTIVATED) - deact0 == 1);
  CHECK(g_pages[0].queue == PQ_ACTIVE);
  CHECK(g_pages[2].queue == PQ_ACTIVE);
  // The same start under PDPOL_CLOCK needs ACT_INIT looks per page before one goes.
  setup(PDPOL_CLOCK);
  activate_n(3);
  g_ref[0] = true;
  v = vm_pdpolicy_select_victim(100, &scanned);
  CHECK(v == &g_pages[1]);
  CHECK(scanned >= 3 * ACT_INIT);
}

TEST_CASE("laundry: a victim waits there in order, the scan never returns it, a reference takes it back") {
  for (unsigned k = 0; k < PDPOL_COUNT; ++k) {
    auto kind = static_cast<vm_pdpolicy_kind>(k);
    CAPTURE(vm_pdpolicy_name(kind));
    setup(kind);
    auto l0 = vm_stat_get(V_LAUNDRY_COUNT);
    activate_n(4);
    for (int i = 0; i < 2; ++i) {
      vm_page* v = vm_pdpolicy_select_victim(100, nullptr);
      REQUIRE(v != nullptr);
      vm_pdpolicy_launder(v);
      CHECK(v->queue == PQ_LAUNDRY);
    }
    CHECK(vm_pdpolicy_laundry_count() == 2);
    CHECK(vm_stat_get(V_LAUNDRY_COUNT) - l0 == 2);
    vm_page* first = vm_pdpolicy_laundry_first();
    REQUIRE(first != nullptr);
    // The scan takes the other pages, never the laundry's.
    for (vm_page* v; (v = vm_pdpolicy_select_victim(100, nullptr)) != nullptr;) CHECK(v->queue == PQ_NONE);
    CHECK(vm_pdpolicy_laundry_count() == 2);
    CHECK(vm_pdpolicy_laundry_first() == first);
    vm_pdpolicy_activate(first);  // referenced again before its write
    CHECK(first->queue != PQ_LAUNDRY);
    CHECK(vm_pdpolicy_queued(first));
    CHECK(vm_pdpolicy_laundry_count() == 1);
    vm_page* second = vm_pdpolicy_laundry_first();
    vm_pdpolicy_dequeue(second);  // its write begins
    CHECK(second->queue == PQ_NONE);
    CHECK(vm_pdpolicy_laundry_count() == 0);
    CHECK(vm_pdpolicy_laundry_first() == nullptr);
    CHECK(vm_stat_get(V_LAUNDRY_COUNT) == l0);
  }
}

TEST_CASE("clock2: the front hand clears, the back hand a gap behind takes what was not referenced since") {
  setup(PDPOL_CLOCK2);
  CHECK(vm_pdpolicy_inactive_pct() == PDPOL_CLOCK2_GAP_PCT_DEFAULT);
  vm_pdpolicy_set_inactive_pct(25);
  activate_n(8);  // each with the fault's mark
  CHECK(vm_pdpolicy_active_count() == 8);
  // The front hand clears pages 0 and 1 (the gap: 25% of 8) into the inactive queue; the
  // back hand finds page 0 unreferenced since.
  unsigned scanned = 0;
  CHECK(vm_pdpolicy_select_victim(100, &scanned) == &g_pages[0]);
  CHECK(scanned == 3);
  CHECK(g_pages[1].queue == PQ_INACTIVE);
  CHECK(g_pages[1].act_count == 0);  // the mark cleared by the front hand
  // Page 1 is referenced in the gap: passed to the active tail.  Page 3's reference came
  // before the front hand reached it: cleared, it does not save it.
  g_ref[1] = true;
  g_ref[3] = true;
  CHECK(vm_pdpolicy_select_victim(100, &scanned) == &g_pages[2]);
  CHECK(g_pages[1].queue == PQ_ACTIVE);
  CHECK(vm_pdpolicy_select_victim(100, &scanned) == &g_pages[3]);
  CHECK_FALSE(g_ref[3]);
  // A page faulted on in the gap (activate) leaves it for the active tail.
  CHECK(g_pages[4].queue == PQ_INACTIVE);
  vm_pdpolicy_activate(&g_pages[4]);
  CHECK(g_pages[4].queue == PQ_ACTIVE);
  CHECK(vm_pdpolicy_select_victim(100, &scanned) == &g_pages[5]);
}

TEST_CASE("clock2 clears about its gap per victim where clock1 clears the whole ring") {
  // Every page referenced (memory barely short, every page in use): the one-handed CLOCK
  // clears each page's bit, a soft fault apiece in vmrt, before it finds a victim; the
  // two-handed one clears only the gap.
  constexpr unsigned kN = 40;
  for (vm_pdpolicy_kind kind : {PDPOL_CLOCK1, PDPOL_CLOCK2}) {
    setup(kind);
    if (kind == PDPOL_CLOCK2) vm_pdpolicy_set_inactive_pct(10);
    activate_n(kN);
    for (unsigned k = 0; k < kN; ++k) g_ref[k] = true;
    vm_page* v = vm_pdpolicy_select_victim(1000, nullptr);
    CHECK(v == &g_pages[0]);
    if (kind == PDPOL_CLOCK1) CHECK(g_tests == kN + 1);
    else CHECK(g_tests == kN / 10 + 1);
  }
}
