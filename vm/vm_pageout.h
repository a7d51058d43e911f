// vm_pageout.h — reclaiming frames: the pageout daemon and direct reclaim (McKusick et al.,
// The Design and Implementation of the 4.4BSD Operating System, "The Pageout Daemon";
// FreeBSD vm_pageout.c).
//
// Mechanism only: which page goes next is the policy's choice (vm_pdpolicy.h).  A victim
// that is clean (its swap copy is current, PG_SWAPCOPY) is unmapped and freed; a dirty one
// goes to the laundry queue, and once a cluster's worth waits there (or the pass needs the
// frames) it is laundered: unmapped, written to the swap pager together with its object's
// dirty neighbours in the laundry or on the inactive queue (one write per cluster), then
// freed.  Pages under I/O are busy;
// the daemon drops the VM lock while it writes, so faults on other pages go on.
//
// Two callers.  The daemon (a host thread the machine starts) sleeps until free frames fall
// below its wake threshold (halfway between the free minimum, a quarter of the target, and
// the free target), then reclaims up to the target with the lock dropped during I/O;
// after a pass that freed nothing it waits (20 ms, doubled up to 1 s) until something that
// could make a page takeable changes.
// An allocation that finds no frame reclaims directly (vm_fault, in the faulting thread).
//
// Without a swap device nothing is laundered: only clean pages could be freed, and there
// are none, so physical memory is a hard limit again.
#pragma once

#include "vm/vm_pdpolicy.h"
#include "vm/vm_thread_safety.h"
#include "vm/vm_types.h"

namespace vmrt {

struct vm_map;

// Turn paging on: policy `kind` gets the pmap's reference emulation, the daemon its targets
// (free_target frames: the daemon reclaims up to it, woken some way below it).
//  => boot, after swap_pager_init; VM lock not held.
void vm_pageout_init(vm_pdpolicy_kind kind, frame_t free_target);
bool vm_pageout_enabled();
frame_t vm_pageout_free_target();

// Reclaim up to `want` frames.  Returns how many were freed.  With inactive_only, only
// pages already on the inactive queue are taken (vm_pdpolicy_select_victim).
//  => VM lock held.  May drop it during the pager's I/O when may_unlock (everything may
//     have changed on return); otherwise the I/O runs with the lock held.
frame_t vm_pageout_reclaim(frame_t want, bool may_unlock, bool inactive_only = false) VMRT_REQUIRES(g_vm_lock);

// Take the page m now, whatever the policy says (whole-vmspace swapout, vm_swapout.h):
// freed if clean or all zeros, laundered with its dirty inactive neighbours if dirty.
// Returns frames freed (0: m is not pageable, or nothing could take it).
//  => VM lock held; may drop it during the write (may_unlock).
frame_t vm_pageout_evict(vm_page* m, bool may_unlock) VMRT_REQUIRES(g_vm_lock);

// What vm_pageout_range does to each page it visits.
enum vm_pageout_range_op : std::uint8_t {
  VM_PAGEOUT_RANGE_COLD = 0,     // the page loses its reference (the pmap drops its PTE) and
                                 // goes to the head of the inactive queue (Linux MADV_COLD)
  VM_PAGEOUT_RANGE_EVICT = 1,    // the range goes cold, then each page is taken as
                                 // vm_pageout_evict takes it: a dirty page is laundered with
                                 // its now inactive neighbours, a cluster per write (Linux
                                 // MADV_PAGEOUT)
};

// Act on every pageable resident page that [s, t) of `map` shows and that no other map
// entry or vmspace can reach: the page's object, and every object between the entry and
// it in the shadow chain, is referenced by this entry alone (ref_count 1, or an entry's
// object flagged OBJ_ONEMAPPING).  A page copy-on-write shared with a fork, a shared
// mapping's page or a file page another mapping also shows is skipped (Linux: a page mapped
// by more than one process), as are wired, busy and loaned pages, submaps and host memory.
// Returns the pages deactivated (COLD) or frames freed (EVICT).  Without paging (no pageout
// daemon) COLD still reorders the queues and EVICT frees nothing; without a swap device
// EVICT frees only clean pages and pages that read as zeros.
//  => VM lock held; may drop it: EVICT during writes (may_unlock), either while it waits
//     for pager I/O in flight (a page passed over for its object's second reference may
//     be the I/O's).  The walk goes on by address, looking entries up again; the map must
//     stay alive (the caller's).
frame_t vm_pageout_range(vm_map* map, vaddr_t s, vaddr_t t, vm_pageout_range_op op, bool may_unlock)
    VMRT_REQUIRES(g_vm_lock);

// Is pager I/O in progress with the VM lock dropped (a laundering write frees its frames
// when it ends)?  => any context.
bool vm_pageout_in_flight();
// Bracket pager I/O that runs with the VM lock dropped (laundering, page-in).
void vm_pager_io_enter();
void vm_pager_io_exit();

// Wake the daemon when free frames are below the target.  => any context (a futex wake).
void vm_pageout_wakeup_if_short() VMRT_REQUIRES(g_vm_lock);

// Host fork child: pager I/O that was in flight in the parent's other threads never ends
// here.  Pages being written out are whole: they become ordinary pages again; pages being
// read in hold nothing yet: they go (their swap copies stay).  => the child's only thread,
// VM lock free.
void vm_pageout_fork_child();

// The daemon's body: loops forever (the machine runs it in its own thread with every
// signal blocked).  => VM lock not held.
[[noreturn]] void vm_pageout_daemon_loop();

}  // namespace vmrt
