// vm_swapout.h — the second level of memory management: swapping out a whole vmspace
// (McKusick et al., The Design and Implementation of the 4.4BSD Operating System,
// "Swapping"; 4.4BSD's swapout() and scheduler()).
//
// The pageout daemon takes pages that were not used recently, from everyone.  When that is
// not enough (free memory stays below its floor pass after pass, or faults keep having to
// reclaim for themselves), the daemon swaps out the vmspace that ran least recently and
// has been idle for a while: every pageable page of it — anonymous, not wired, not busy,
// held by objects only that vmspace maps — is freed if clean or laundered to swap if dirty.
// Nothing else happens to the vmspace: the first fault in it afterwards counts a swap-in,
// and its pages come back one fault (and read-ahead cluster) at a time, as 4.4BSD brings a
// swapped process's pages back on demand once its user structure is in.
//
// "Ran" means a fault in the vmspace, or vm_swapout_note_run (a guest call, an API call
// that switches to it).  A vmspace whose pages are all resident and never fault looks idle;
// the reference emulation makes active memory fault now and then, which keeps it current.
#pragma once

#include <cstdint>

#include "vm/vm_thread_safety.h"
#include "vm/vm_types.h"

namespace vmrt {

struct vmspace;

// Milliseconds on a monotonic clock (the swapper's notion of time).
std::uint64_t vm_swapout_clock();

// vs ran now.  => any context, lock free.
void vm_swapout_note_run(vmspace* vs);

// A fault in vs: note the run, and count a swap-in when vs was swapped out.
//  => VM lock held.
void vm_swapout_faulted(vmspace* vs);

// Swap out every pageable page of vs now.  Returns frames freed.
//  => VM lock held; may drop it during the writes (may_unlock): vs must stay alive (the
//     caller's reference, or the daemon's selection under the lock it re-takes).
frame_t vm_swapout_vmspace(vmspace* vs, bool may_unlock);

// The daemon's check after each pass that freed `reclaimed` frames, leaving `free_now`.
// Once a period (100 ms) it judges the shortage: severe when the daemon freed twice its
// free target or more in the period, page-ins were worth the target, or free frames are
// below the floor (a quarter of the target).  Then the least recently run vmspace idle for
// long enough is swapped out.  Returns frames freed.  => VM lock held (dropped for writes).
frame_t vm_swapout_scheduler(frame_t reclaimed, frame_t free_now, frame_t free_target);

// A fault found no free frame (the daemon did not keep up): the most severe shortage.
// Swap out an idle vmspace now if there is one (same choice and period as the scheduler),
// before the fault reclaims pages of running vmspaces.  Returns frames freed.
//  => VM lock held (dropped during writes: the fault restarts).
frame_t vm_swapout_direct();

// Per-vmspace state for reports.
struct vm_swapout_info {
  bool swapped;              // swapped out, no fault since
  std::uint64_t idle_ms;     // since it last ran
  std::uint64_t swapouts;    // times swapped out
  std::uint64_t swapins;     // first faults after a swapout
  std::uint64_t pages_out;   // pages freed by its swapouts
};
void vm_swapout_get_info(const vmspace* vs, vm_swapout_info* out) VMRT_REQUIRES(g_vm_lock);

}  // namespace vmrt
