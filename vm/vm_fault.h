// vm_fault.h — resolving a page fault (FreeBSD vm_fault.c).
#pragma once

#include "vm/vm_thread_safety.h"
#include "vm/vm_types.h"

namespace vmrt {

struct vmspace;

// What vm_fault did, for the trap backend and the counters.
struct vm_fault_result {
  vaddr_t first;    // first page made resident / mapped
  vsize_t npages;   // pages mapped by this fault (fault-around included)
};

// Resolve a fault on va in vs for an access of `type`.
//  => called by the trap backends (SIGSEGV handler in the faulting thread, or the
//     userfaultfd thread) with no VM lock held; takes the VM lock.
//  => walks the map entry and the shadow chain: zero-fill, copy-on-write copy-up (or
//     move-up when the backing object has one reference), needs-copy turned into a shadow,
//     protection checked against the entry, fault-around per the entry's advice.
//  => KERN_SUCCESS: the access can be retried.  KERN_INVALID_ADDRESS: no entry (SEGV_MAPERR).
//     KERN_PROTECTION_FAILURE: entry forbids the access (SEGV_ACCERR).
//     KERN_RESOURCE_SHORTAGE / KERN_MEMORY_ERROR: could not be resolved (SIGBUS).
//  => async-signal-safe: no malloc, no stdio.
kern_return_t vm_fault(vmspace* vs, vaddr_t va, vm_fault_type type, vm_fault_result* res = nullptr);

// ---- for vm/ itself (mmap family, kmem) ----------------------------------------------
struct vm_map;

enum vm_fault_flags : unsigned {
  VM_FAULT_NORMAL = 0,
  VM_FAULT_WIRE = 0x1,      // wire the page that was faulted (mlock)
  VM_FAULT_POPULATE = 0x2,  // fault around forward up to `populate_end` instead of the advice window
};

// vm_fault with the VM lock already held, on a given map (submaps followed one level).
//  => VM lock held; returns as vm_fault.  With paging on it may sleep: it drops the lock
//     while a pager reads, while another fault's I/O keeps a page busy, and while the pageout
//     code writes pages to free frames, and restarts from the map lookup afterwards; a
//     caller must not keep map entries or page pointers across the call.
//     With POPULATE, pages [va, populate_end) within
//     the entry that are not resident are made resident (as far as one window allows).
kern_return_t vm_fault_locked(vm_map* map, vaddr_t va, vm_fault_type type, unsigned flags, vaddr_t populate_end,
                              vm_fault_result* res) VMRT_REQUIRES(g_vm_lock);

// Swap read-around (vm_fault.cpp): the pageout code reports each page it takes, so that a
// page read around a random fault and never used counts as a miss and narrows the window.
//  => VM lock held.
struct vm_page;
void vm_fault_readaround_miss(vm_page* m) VMRT_REQUIRES(g_vm_lock);

// Largest run one fault makes resident (fault-around and populate).
inline constexpr unsigned kFaultMaxRun = 512;
// Sequential streams (a fault where the entry's previous fault run ended): the ahead window
// starts at the advice's and doubles per fault up to kSeqAheadMax, so a long stream costs
// ~1 trap per 512 pages.  Under userfaultfd a trap is a handler-thread round trip
// (~50 us here, DESIGN.md), so the window is what amortises it (bench/fault_bench).
inline constexpr unsigned kSeqAheadMax = 511;
// Entries whose zero-fill faults take only their page (MAP_ENTRY_ZERO_SINGLE: a program's
// pageable mmaps, resident page by page as on Linux) switch to fault-around once a run of
// sequential faults has filled this many pages: a buffer written front to back up to here
// is resident exactly where it was touched (mmap_diff compares residency with Linux on
// mappings of up to 48 pages); a longer run pays one trap per window, not per page.
inline constexpr unsigned kZeroStreamMin = 64;
// Dense blocks: a zero-fill fault that would take only its page (above, and any fault off a
// stream with paging on) fills its aligned block of kZeroBlock pages (clamped to the entry;
// every gap between the pages the object holds, one enter a gap) once the object holds at
// least kZeroDenseMin of the block's pages: a program filling a table at random pays a
// trap per page only until a quarter of each block is proven in use (Linux's khugepaged
// fills a 2 MiB range around far fewer pages, max_ptes_none = 511), and a sparse table
// (xz's match finder hash, api_paging_test's 1000 scattered pages in 16384: 6%) stays page
// by page.  Residency is at most kZeroBlock / kZeroDenseMin times the pages touched.  Not
// while memory is short (twice the pageout free target), nor when the process disabled
// transparent huge pages (PR_SET_THP_DISABLE: residency page by page, as Linux's; the
// differential test mmap_diff), nor when the host's THP is "never" (the runtime's probe).
// (A quarter, not less: at 4 or 8 of 64 the 1000 scattered pages filled 3.6 k.)
inline constexpr unsigned kZeroBlock = 64;
inline constexpr unsigned kZeroDenseMin = 16;
static_assert((kZeroBlock & (kZeroBlock - 1)) == 0 && kZeroDenseMin >= 2 && kZeroDenseMin < kZeroBlock);
// Installed by the runtime: true when a dense-block zero fill may map more than the
// faulting page now (the process has not disabled THP, the host's THP is not "never").
// Asked once per fill, never per fault; none installed = allowed.
//  => any thread, VM lock held; async-signal-safe.
using vm_zero_dense_probe = bool (*)();
void vm_fault_set_zero_dense_probe(vm_zero_dense_probe probe);
// Copy-on-write copy-ahead: a write fault that continues where the entry's previous fault
// ended copies backing pages ahead (within the advice window) in one go: kCowAheadMin
// pages at first, doubling along the stream up to kCowAheadMax.
inline constexpr unsigned kCowAheadMin = 16;
inline constexpr unsigned kCowAheadMax = 64;
static_assert(kSeqAheadMax + 1 <= kFaultMaxRun);
static_assert(kCowAheadMin <= kCowAheadMax && kCowAheadMax <= kFaultMaxRun);

// Stack growth: a fault at most this far below a GROWS_DOWN entry extends it
// (keeping at least kStackGuardPages free above the entry below).
inline constexpr vsize_t kStackGrowMax = vsize_t{8} << 20;
inline constexpr unsigned kStackGuardPages = 1;

}  // namespace vmrt
