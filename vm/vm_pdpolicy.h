// vm_pdpolicy.h — the page replacement policy, behind a small interface (NetBSD UVM's
// uvmpdpol_*, Cranor's UVM dissertation; McKusick et al., The Design and Implementation of
// the 4.4BSD Operating System, "The Pageout Daemon").
//
// Mechanism and policy are apart.  The mechanism (vm_page.cpp: allocation, wiring, freeing;
// vm_pageout.cpp: the daemon that launders and frees pages) tells the policy what happened
// to a page and asks it which page to take next; the policy owns the paging queues (active,
// inactive, and the laundry where dirty victims wait for their write) and decides the order.  It never frees, unmaps or writes a page itself: it only
// orders pages and asks the environment whether a page was referenced.
//
// The same policy code runs inside vmrt and inside bench/pdpolicy_sim, which replays
// recorded reference strings against it (and against LRU and Belady's OPT) with fake
// vm_page records and a simulated reference bit.
//
// Locking: every call => the VM lock is held (in the simulator: single-threaded).  No call
// allocates or sleeps.
#pragma once

#include <cstdint>

#include "vm/vm_thread_safety.h"
#include "vm/vm_types.h"

namespace vmrt {

struct vm_page;

// The policies vmrt carries (VMRT_PDPOLICY selects one at boot; the simulator runs all).
enum vm_pdpolicy_kind : std::uint8_t {
  PDPOL_CLOCK = 0,  // two-handed FreeBSD style: active/inactive, act_count aging, second chance
  // Variants the simulator measures against it (vm_pdpolicy_clock.cpp says how each works).
  // bench/pdpolicy_sim (figures in bench/README.md): clock is within 0.5% of exact LRU on
  // recorded xz/python/sqlite traces, 4-8% fewer faults than clock1, 2.5-4% fewer than 2q;
  // 2q wins on a hot set mixed with scans (17% fewer faults than LRU).  But clock's aging
  // clears bits of pages still in use: ~5-10 reference faults per fault on those traces
  // (an access after a clear: a soft fault in vmrt, which unmaps to emulate the bit),
  // clock1 ~1-2.
  PDPOL_CLOCK1 = 1,  // one-handed second-chance CLOCK (McKusick et al., 4.4BSD book): one ring
  PDPOL_2Q = 2,      // 2Q-like CLOCK: new pages enter inactive, promoted on a second reference
  PDPOL_CLOCK_NOAGE = 3,  // as PDPOL_CLOCK without act_count: an active page seen unreferenced
                          // once goes inactive (Linux's two lists before MGLRU)
  PDPOL_CLOCK2 = 4,  // two-handed CLOCK: the front hand clears, the back hand a small gap behind
                     // takes what was not referenced since (a clear costs a fault only if the
                     // page is used within the gap, not within a whole revolution)
  PDPOL_COUNT
};

// act_count steps (FreeBSD vm_pageout.c): a referenced active page gains ACT_ADVANCE (to at
// most ACT_MAX), an unreferenced one loses ACT_DECLINE and is deactivated at 0.  ACT_INIT and
// ACT_MAX are in vm_page.h.
inline constexpr std::uint8_t ACT_ADVANCE = 3;
inline constexpr std::uint8_t ACT_DECLINE = 1;
// Default inactive target: the active queue is aged while the inactive queue holds fewer than
// this percentage of the queued pages (PDPOL_CLOCK and PDPOL_2Q; PDPOL_CLOCK1 has one ring).
inline constexpr unsigned PDPOL_INACTIVE_PCT_DEFAULT = 33;
// PDPOL_CLOCK2's gap between its hands (the inactive queue), in percent of the queued pages:
// its inactive target, set by vm_pdpolicy_init.
inline constexpr unsigned PDPOL_CLOCK2_GAP_PCT_DEFAULT = 10;

// What the policy may ask the machine.
struct vm_pdpolicy_env {
  // Was m referenced since the last call?  Clears the (emulated) reference bit: vmrt's pmap
  // unmaps the page so that the next access faults and sets it again.
  bool (*test_clear_referenced)(vm_page* m);
};

// Select the policy and its environment, and the kind's default inactive target
// (PDPOL_CLOCK2_GAP_PCT_DEFAULT or PDPOL_INACTIVE_PCT_DEFAULT); resets the queues (=> no page queued).  (Pages
// still queued, if any, are kept where they are: every variant shares the two queues, so a
// switch leaves them consistent.  vm_page_startup empties the queues with vm_pdpolicy_reset.)
// env may be null: then no page counts as referenced (except through vm_pdpolicy_activate).
void vm_pdpolicy_init(vm_pdpolicy_kind kind, const vm_pdpolicy_env* env);
vm_pdpolicy_kind vm_pdpolicy_current();
const char* vm_pdpolicy_name(vm_pdpolicy_kind kind);
// The kind named `name` ("clock", "clock1", "2q", "clock-noage"; what vm_pdpolicy_name
// prints); false if none.
bool vm_pdpolicy_parse(const char* name, vm_pdpolicy_kind* out);
// Forget every queued page (the page array was just described anew), zero the queue gauges.
// Kind and env stay.
void vm_pdpolicy_reset() VMRT_REQUIRES(g_vm_lock);
// The inactive target in percent of queued pages (1..90; PDPOL_INACTIVE_PCT_DEFAULT at start).
void vm_pdpolicy_set_inactive_pct(unsigned pct);
unsigned vm_pdpolicy_inactive_pct();

// ---- events from the mechanism ---------------------------------------------------------
// m was just allocated for an object, or referenced through a fault: queue it as active
// (or age it up if it already is).  Wired pages (wire_count != 0) are never queued.
void vm_pdpolicy_activate(vm_page* m) VMRT_REQUIRES(g_vm_lock);
// m is unlikely to be needed soon (MADV_DONTNEED / FREE / drop-behind): move it where it is
// taken first.
void vm_pdpolicy_deactivate(vm_page* m) VMRT_REQUIRES(g_vm_lock);
// m, a victim the scan returned, is dirty: it waits at the tail of the laundry queue until
// the mechanism writes it with its neighbours (FreeBSD's PQ_LAUNDRY).  A fault on it before
// then activates it like any other page.
void vm_pdpolicy_launder(vm_page* m) VMRT_REQUIRES(g_vm_lock);
// The laundry's oldest page (null when empty); it stays queued.
vm_page* vm_pdpolicy_laundry_first() VMRT_REQUIRES(g_vm_lock);
// m leaves the queues (wired, freed, busy for I/O).  A page on no queue is left alone.
void vm_pdpolicy_dequeue(vm_page* m) VMRT_REQUIRES(g_vm_lock);
// Is m on one of the policy's queues?
bool vm_pdpolicy_queued(const vm_page* m) VMRT_REQUIRES(g_vm_lock);

// ---- the scan ----------------------------------------------------------------------------
// The next page to reclaim: scans at most `max_scan` queued pages, giving referenced ones
// another chance (the policy calls env->test_clear_referenced), balancing active against
// inactive as it goes.  The page returned was not referenced since it was last looked at;
// it is taken off the queues (queue PQ_NONE), and the mechanism either reclaims it or hands
// it back with vm_pdpolicy_activate / vm_pdpolicy_deactivate.  Null when no page qualified
// within max_scan looks (everything recently referenced, or nothing queued).
// With inactive_only, only the inactive queue is looked at (no aging, no hand on the active
// queue): the pages already judged cold or dropped behind a stream, which cost no reference
// clears of pages in use (each clear is a host PTE drop, and a fault if the page is used).
//  => *scanned (optional) gets how many pages were looked at.
vm_page* vm_pdpolicy_select_victim(unsigned max_scan, unsigned* scanned, bool inactive_only = false)
    VMRT_REQUIRES(g_vm_lock);

// With nowhere to write pages (no swap device): the next queued page `can_go` accepts,
// looked for without aging or clearing references.  A page that holds data cannot go
// whatever its age, and each reference clear is a host PTE drop and, for a page in use, a
// fault (72 k of them in scenario paging_hard_limit's 3 s hold).  Looks at most `max_scan`
// pages, the inactive queue's then the active queue's, each from its head; a page refused
// goes to its queue's tail, so the next call goes on where this one stopped.  The page
// returned is taken off the queues as select_victim's.  Null when none within max_scan.
//  => *scanned (optional) gets how many pages were looked at.
vm_page* vm_pdpolicy_select_takeable(unsigned max_scan, unsigned* scanned, bool (*can_go)(const vm_page*))
    VMRT_REQUIRES(g_vm_lock);

// Queue lengths, for vmstat and the daemon's targets.
std::uint64_t vm_pdpolicy_active_count() VMRT_REQUIRES(g_vm_lock);
std::uint64_t vm_pdpolicy_inactive_count();
std::uint64_t vm_pdpolicy_laundry_count() VMRT_REQUIRES(g_vm_lock);

}  // namespace vmrt
