// vm_pdpolicy_clock.cpp — the CLOCK family of page replacement policies (vm_pdpolicy.h),
// after NetBSD UVM's uvm_pdpolicy_clock.c (Cranor's UVM dissertation) and the FreeBSD pageout
// daemon's queues (McKusick et al., The Design and Implementation of the 4.4BSD Operating
// System, "The Pageout Daemon"; FreeBSD vm_pageout.c for act_count).
//
// Two queues, active and inactive, doubly linked through vm_page::q_next / q_prev; a page's
// `queue` field says which one (PQ_ACTIVE, PQ_INACTIVE, or PQ_NONE when on neither).  A third,
// the laundry (PQ_LAUNDRY, FreeBSD's), holds dirty victims the mechanism has not written yet;
// the scan never looks at it, and a laundry page referenced again is activated like any other.
// The variants differ only in where pages enter and how the active queue is aged:
//
//  PDPOL_CLOCK  (FreeBSD): pages enter active with act_count = ACT_INIT.  The scan takes from
//    the inactive head: referenced -> back to active (act_count up), not -> the victim.  While
//    the inactive queue holds fewer than inactive_pct% of the queued pages, active pages are
//    aged from the head: referenced -> act_count += ACT_ADVANCE (at most ACT_MAX) and requeued
//    at the tail; not -> act_count -= ACT_DECLINE, moved to the inactive tail at 0.
//  PDPOL_CLOCK1 (4.4BSD book's one-handed second chance, the VAX-era global CLOCK): one ring,
//    the active queue.  The hand is its head: referenced -> moved to the tail (the hand passes
//    it), not -> the victim.  act_count is only a "referenced through a fault" mark (0/1).
//    Pages deactivated by the mechanism wait on the inactive queue, which is looked at first.
//  PDPOL_2Q: as PDPOL_CLOCK, but a new page enters the inactive queue with its reference bit
//    cleared, and is promoted to active only when referenced again while there (a second
//    reference, as in Johnson & Shasha's 2Q, without the ghost queue).  A one-time scan flows
//    through the inactive queue and leaves the active pages alone.
//  PDPOL_CLOCK_NOAGE: as PDPOL_CLOCK, but the active queue is a plain second chance: a
//    referenced active page is requeued at the tail, an unreferenced one goes inactive at
//    once (no act_count: fewer looks, fewer bits cleared on pages still in use).
//  PDPOL_CLOCK2 (the two-handed clock of 4.3BSD and later systems, McKusick et al.): one
//    ring, in ring order the inactive queue then the active queue.  The front hand (active
//    head) clears the reference bit and the fault mark of every page it passes and moves it
//    to the inactive tail; the back hand (inactive head), a gap of inactive_pct% of the
//    queued pages behind it, takes a page not referenced since, or passes a referenced one
//    to the active tail.  The one-handed clock clears a bit a whole revolution before it
//    looks again: with memory barely short, every page in use is referenced by then, the
//    hand clears the whole ring for one victim, and each clear costs vmrt a soft fault.
//    Here a clear costs one only when the page is used within the gap.
//
// Locking: the VM lock (vm_page.cpp's wrappers assert it; the simulator is single-threaded).
// Nothing here allocates, sleeps, frees, unmaps or writes a page.
#include "vm/vm_pdpolicy.h"

#include <cstring>

#include "vm/vm_assert.h"
#include "vm/vm_page.h"
#include "vm/vm_stats.h"

namespace vmrt {

namespace {

struct page_queue {
  vm_page* head;
  vm_page* tail;
  std::uint64_t count;
};

page_queue g_active VMRT_GUARDED_BY(g_vm_lock) = {nullptr, nullptr, 0};
page_queue g_inactive VMRT_GUARDED_BY(g_vm_lock) = {nullptr, nullptr, 0};
page_queue g_laundry VMRT_GUARDED_BY(g_vm_lock) = {nullptr, nullptr, 0};
// [VM lock]
vm_pdpolicy_kind g_kind = PDPOL_CLOCK;
const vm_pdpolicy_env* g_env = nullptr;
unsigned g_inactive_pct = PDPOL_INACTIVE_PCT_DEFAULT;

struct kind_name {
  vm_pdpolicy_kind kind;
  const char* name;
};
constexpr kind_name kKindNames[PDPOL_COUNT] = {
    {PDPOL_CLOCK, "clock"},
    {PDPOL_CLOCK1, "clock1"},
    {PDPOL_2Q, "2q"},
    {PDPOL_CLOCK_NOAGE, "clock-noage"},
    {PDPOL_CLOCK2, "clock2"},
};
constexpr bool names_in_enum_order() {
  for (unsigned k = 0; k < PDPOL_COUNT; ++k)
    if (kKindNames[k].kind != k || kKindNames[k].name == nullptr) return false;
  return true;
}
static_assert(names_in_enum_order(), "kKindNames must list every policy once, in enum order");
static_assert(ACT_INIT > 0 && ACT_INIT <= ACT_MAX && ACT_DECLINE > 0 && ACT_ADVANCE > 0);

page_queue& queue_of(vm_page_queue q) {
  return q == PQ_ACTIVE ? g_active : q == PQ_INACTIVE ? g_inactive : g_laundry;
}

void gauge(vm_page_queue q, std::int64_t d) {
  vm_stat_add(q == PQ_ACTIVE ? V_ACTIVE_COUNT : q == PQ_INACTIVE ? V_INACTIVE_COUNT : V_LAUNDRY_COUNT, d);
}

void insert_tail(vm_page* m, vm_page_queue q) VMRT_REQUIRES(g_vm_lock) {
  page_queue& pq = queue_of(q);
  m->q_next = nullptr;
  m->q_prev = pq.tail;
  if (pq.tail != nullptr) pq.tail->q_next = m;
  else pq.head = m;
  pq.tail = m;
  pq.count++;
  m->queue = q;
  gauge(q, 1);
}

void insert_head(vm_page* m, vm_page_queue q) VMRT_REQUIRES(g_vm_lock) {
  page_queue& pq = queue_of(q);
  m->q_prev = nullptr;
  m->q_next = pq.head;
  if (pq.head != nullptr) pq.head->q_prev = m;
  else pq.tail = m;
  pq.head = m;
  pq.count++;
  m->queue = q;
  gauge(q, 1);
}

// Take m off its queue (=> m is on PQ_ACTIVE, PQ_INACTIVE or PQ_LAUNDRY).
void remove(vm_page* m) VMRT_REQUIRES(g_vm_lock) {
  vm_page_queue q = static_cast<vm_page_queue>(m->queue);
  page_queue& pq = queue_of(q);
  VMRT_ASSERT(pq.count > 0);
  if (m->q_prev != nullptr) m->q_prev->q_next = m->q_next;
  else pq.head = m->q_next;
  if (m->q_next != nullptr) m->q_next->q_prev = m->q_prev;
  else pq.tail = m->q_prev;
  m->q_next = m->q_prev = nullptr;
  pq.count--;
  m->queue = PQ_NONE;
  gauge(q, -1);
}

bool on_policy_queue(const vm_page* m) VMRT_REQUIRES(g_vm_lock) {
  return m->queue == PQ_ACTIVE || m->queue == PQ_INACTIVE || m->queue == PQ_LAUNDRY;
}

// Ask the environment (and clear its bit).  No env => never referenced.
bool test_clear_referenced(vm_page* m) {
  return g_env != nullptr && g_env->test_clear_referenced != nullptr && g_env->test_clear_referenced(m);
}

std::uint8_t act_up(std::uint8_t a, std::uint8_t by) {
  unsigned v = static_cast<unsigned>(a) + by;
  return static_cast<std::uint8_t>(v > ACT_MAX ? ACT_MAX : v);
}

// Is the inactive queue below its target share of the queued pages?
bool inactive_short() VMRT_REQUIRES(g_vm_lock) {
  if (g_kind == PDPOL_CLOCK1) return false;
  std::uint64_t total = g_active.count + g_inactive.count;
  return g_inactive.count * 100 < static_cast<std::uint64_t>(g_inactive_pct) * total;
}

// Age the active head (PDPOL_CLOCK, PDPOL_2Q, PDPOL_CLOCK_NOAGE): see the file comment.
//  => active not empty.
void age_active_head() VMRT_REQUIRES(g_vm_lock) {
  vm_page* m = g_active.head;
  vm_stat_inc(V_PDPOL_SCANNED);
  remove(m);
  if (g_kind == PDPOL_CLOCK2) {  // the front hand: clear, and on into the gap
    (void)test_clear_referenced(m);
    m->act_count = 0;
    insert_tail(m, PQ_INACTIVE);
    vm_stat_inc(V_PDPOL_DEACTIVATED);
    return;
  }
  if (g_kind == PDPOL_CLOCK_NOAGE) {
    if (test_clear_referenced(m)) {
      insert_tail(m, PQ_ACTIVE);
    } else {
      insert_tail(m, PQ_INACTIVE);
      vm_stat_inc(V_PDPOL_DEACTIVATED);
    }
    return;
  }
  if (test_clear_referenced(m)) {
    m->act_count = act_up(m->act_count, ACT_ADVANCE);
    insert_tail(m, PQ_ACTIVE);
    return;
  }
  m->act_count = static_cast<std::uint8_t>(m->act_count > ACT_DECLINE ? m->act_count - ACT_DECLINE : 0);
  if (m->act_count != 0) {
    insert_tail(m, PQ_ACTIVE);
    return;
  }
  insert_tail(m, PQ_INACTIVE);
  vm_stat_inc(V_PDPOL_DEACTIVATED);
}

}  // namespace

void vm_pdpolicy_init(vm_pdpolicy_kind kind, const vm_pdpolicy_env* env) {
  VMRT_ASSERT(kind < PDPOL_COUNT);
  g_kind = kind;
  g_env = env;
  g_inactive_pct = kind == PDPOL_CLOCK2 ? PDPOL_CLOCK2_GAP_PCT_DEFAULT : PDPOL_INACTIVE_PCT_DEFAULT;
}

vm_pdpolicy_kind vm_pdpolicy_current() { return g_kind; }

const char* vm_pdpolicy_name(vm_pdpolicy_kind kind) { return kind < PDPOL_COUNT ? kKindNames[kind].name : "?"; }

bool vm_pdpolicy_parse(const char* name, vm_pdpolicy_kind* out) {
  if (name == nullptr) return false;
  for (const kind_name& k : kKindNames) {
    if (std::strcmp(k.name, name) == 0) {
      *out = k.kind;
      return true;
    }
  }
  return false;
}

void vm_pdpolicy_reset() VMRT_REQUIRES(g_vm_lock) {
  g_active = page_queue{nullptr, nullptr, 0};
  g_inactive = page_queue{nullptr, nullptr, 0};
  g_laundry = page_queue{nullptr, nullptr, 0};
  vm_stat_set(V_ACTIVE_COUNT, 0);
  vm_stat_set(V_INACTIVE_COUNT, 0);
  vm_stat_set(V_LAUNDRY_COUNT, 0);
}

void vm_pdpolicy_set_inactive_pct(unsigned pct) {
  VMRT_ASSERT(pct >= 1 && pct <= 90);
  g_inactive_pct = pct;
}

unsigned vm_pdpolicy_inactive_pct() { return g_inactive_pct; }

void vm_pdpolicy_activate(vm_page* m) VMRT_REQUIRES(g_vm_lock) {
  if (m->wire_count != 0) return;
  switch (g_kind) {
    case PDPOL_CLOCK1:
    case PDPOL_CLOCK2:
      // A reference through a fault: the mark the hand tests (with the env's bit).
      if (m->queue == PQ_ACTIVE) {
        m->act_count = 1;
        return;
      }
      if (m->queue == PQ_INACTIVE || m->queue == PQ_LAUNDRY) remove(m);
      m->act_count = 1;
      insert_tail(m, PQ_ACTIVE);
      return;
    case PDPOL_2Q:
      if (m->queue == PQ_ACTIVE) {
        m->act_count = act_up(m->act_count, 1);
        return;
      }
      if (m->queue == PQ_INACTIVE || m->queue == PQ_LAUNDRY) {  // second reference: promoted
        remove(m);
        m->act_count = ACT_INIT;
        insert_tail(m, PQ_ACTIVE);
        return;
      }
      // New: the reference that brought it in does not count as a second one.
      (void)test_clear_referenced(m);
      m->act_count = 0;
      insert_tail(m, PQ_INACTIVE);
      return;
    case PDPOL_CLOCK:
    case PDPOL_CLOCK_NOAGE:
    default:
      if (m->queue == PQ_ACTIVE) {
        m->act_count = act_up(m->act_count, 1);
        return;
      }
      if (m->queue == PQ_INACTIVE || m->queue == PQ_LAUNDRY) remove(m);
      m->act_count = ACT_INIT;
      insert_tail(m, PQ_ACTIVE);
      return;
  }
}

void vm_pdpolicy_deactivate(vm_page* m) VMRT_REQUIRES(g_vm_lock) {
  if (m->wire_count != 0) return;
  if (on_policy_queue(m)) remove(m);
  m->act_count = 0;
  insert_head(m, PQ_INACTIVE);  // taken first (FreeBSD vm_page_deactivate_noreuse)
}

void vm_pdpolicy_launder(vm_page* m) VMRT_REQUIRES(g_vm_lock) {
  if (m->wire_count != 0) return;
  if (on_policy_queue(m)) remove(m);
  insert_tail(m, PQ_LAUNDRY);
}

vm_page* vm_pdpolicy_laundry_first() VMRT_REQUIRES(g_vm_lock) { return g_laundry.head; }

void vm_pdpolicy_dequeue(vm_page* m) VMRT_REQUIRES(g_vm_lock) {
  if (on_policy_queue(m)) remove(m);
}

bool vm_pdpolicy_queued(const vm_page* m) VMRT_REQUIRES(g_vm_lock) { return on_policy_queue(m); }

// The scan: first refill the inactive queue (age active pages while it is short, with at
// most half of max_scan), then take the inactive head (the active head, for PDPOL_CLOCK1,
// once inactive is empty) until an unreferenced page turns up or max_scan looks are spent.
namespace {
// The end of a scan that looked at n pages: the page chosen (or none) counted, *scanned set.
vm_page* scan_result(vm_page* chosen, unsigned n, unsigned* scanned) VMRT_REQUIRES(g_vm_lock) {
  if (chosen != nullptr) {
    chosen->act_count = 0;
    vm_stat_inc(V_PDPOL_VICTIMS);
  } else {
    vm_stat_inc(V_PDPOL_NO_VICTIM);
  }
  if (scanned != nullptr) *scanned = n;
  return chosen;
}
}  // namespace

vm_page* vm_pdpolicy_select_victim(unsigned max_scan, unsigned* scanned, bool inactive_only) VMRT_REQUIRES(g_vm_lock) {
  unsigned n = 0;
  vm_page* victim = nullptr;
  unsigned refill = inactive_only ? 0 : max_scan / 2;
  while (n < refill && g_active.head != nullptr && inactive_short()) {
    age_active_head();
    ++n;
  }
  while (n < max_scan && victim == nullptr) {
    vm_page* m = g_inactive.head;
    if (m != nullptr) {
      ++n;
      vm_stat_inc(V_PDPOL_SCANNED);
      bool ref = test_clear_referenced(m);
      const bool one_ring = g_kind == PDPOL_CLOCK1 || g_kind == PDPOL_CLOCK2;
      if (one_ring && m->act_count != 0) ref = true;
      remove(m);
      if (ref) {
        m->act_count = one_ring ? 0 : act_up(m->act_count < ACT_INIT ? ACT_INIT : m->act_count, ACT_ADVANCE);
        insert_tail(m, PQ_ACTIVE);
        vm_stat_inc(V_PDPOL_REACTIVATED);
        continue;
      }
      victim = m;
      break;
    }
    m = g_active.head;
    if (m == nullptr || inactive_only) break;
    ++n;
    if (g_kind != PDPOL_CLOCK1) {  // inactive empty: age until a page drops into it
      age_active_head();
      continue;
    }
    vm_stat_inc(V_PDPOL_SCANNED);
    bool ref = test_clear_referenced(m);
    if (m->act_count != 0) ref = true;
    remove(m);
    if (ref) {  // second chance: the hand passes it
      m->act_count = 0;
      insert_tail(m, PQ_ACTIVE);
      continue;
    }
    victim = m;
  }
  return scan_result(victim, n, scanned);
}

vm_page* vm_pdpolicy_select_takeable(unsigned max_scan, unsigned* scanned, bool (*can_go)(const vm_page*))
    VMRT_REQUIRES(g_vm_lock) {
  unsigned n = 0;
  vm_page* taken = nullptr;
  for (const vm_page_queue q : {PQ_INACTIVE, PQ_ACTIVE}) {
    page_queue& pq = queue_of(q);
    // One look at each page at most: refused pages go round to the tail.
    for (std::uint64_t left = pq.count; left > 0 && n < max_scan; --left) {
      vm_page* m = pq.head;
      ++n;
      vm_stat_inc(V_PDPOL_SCANNED);
      remove(m);
      if (can_go(m)) {
        taken = m;
        break;
      }
      insert_tail(m, q);
    }
    if (taken != nullptr || n >= max_scan) break;
  }
  return scan_result(taken, n, scanned);
}

std::uint64_t vm_pdpolicy_active_count() VMRT_REQUIRES(g_vm_lock) { return g_active.count; }
std::uint64_t vm_pdpolicy_inactive_count() VMRT_REQUIRES(g_vm_lock) { return g_inactive.count; }
std::uint64_t vm_pdpolicy_laundry_count() VMRT_REQUIRES(g_vm_lock) { return g_laundry.count; }

}  // namespace vmrt
