// vm_stats.h — VM event counters and gauges, and the `vmstat -s` report.
//
// One relaxed atomic per counter; the names are those FreeBSD's `vmstat -s` prints
// where FreeBSD has the concept, vmrt's own otherwise.  The table is constexpr data
// (vm_stats.cpp) checked with static_assert against the enum.  Any thread may add;
// no lock needed.  runtime/ updates the pmap and host counters through vm_stat_add /
// vm_stat_set / vm_stat_max.
#pragma once

#include <atomic>
#include <cstdint>

#include "vm/vm_types.h"

namespace vmrt {

enum vm_counter : unsigned {
  // FreeBSD vmstat -s names
  V_FAULTS,               // "page faults": vm_fault calls
  V_ZFOD_ZEROED,          // "zero fill pages zeroed": frames zeroed with zero_pages (not PG_ZERO)
  V_COW_FAULTS,           // "copy-on-write faults": page copied up from a backing object
  V_COW_OPTIM,            // "copy-on-write optimized faults": page moved up (backing had one ref)
  V_COLLAPSES,            // "object collapses"
  V_BYPASSES,             // "object bypasses"
  V_PAGES_FREED,          // "pages freed"
  V_WIRE_COUNT,           // "pages wired down" (gauge)
  V_WIRE_REFUSED,         // "wirings refused (a third of memory wired)": mlock past the bound
  V_ACTIVE_COUNT,         // "pages active" (gauge)
  V_INACTIVE_COUNT,       // "pages inactive" (gauge)
  V_LAUNDRY_COUNT,        // "pages in laundry" (gauge): dirty victims waiting for a cluster write
  V_FREE_COUNT,           // "pages free" (gauge)
  V_PAGE_COUNT,           // "pages managed" (frames described by vm_page_startup)
  V_FORKS,                // "forks"
  // faults by kind
  V_FAULT_ZERO_FILL,      // "zero-fill faults"
  V_FAULT_ZERO_PAGES,     // "zero-fill pages"
  V_FAULT_RESIDENT,       // "resident page faults": page already in the first object, re-mapped
  V_FAULT_BACKING_READ,   // "backing page read faults": read of a shadowed page, mapped read-only
  V_FAULT_NEEDS_COPY,     // "needs-copy shadows created"
  V_FAULT_NEEDS_COPY_CLR, // "needs-copy cleared without shadow"
  V_FAULT_AROUND_PAGES,   // "fault-around pages"
  V_FAULT_ZERO_DENSE,     // "zero fills of dense blocks": a gap filled where the block was mostly touched
  V_FAULT_PROT_TRAPS,     // "protection traps"
  V_FAULT_NOENTRY_TRAPS,  // "no-entry traps"
  V_FAULT_HOSTMEM_TRAPS,  // "host-memory traps": a fault in host memory not mapped (trimmed heap)
  V_FAULT_STACK_GROW,     // "stack growth faults"
  V_FAULT_SHORTAGE,       // "faults failed for resources"
  // objects
  V_OBJ_ALLOC,            // "objects allocated"
  V_OBJ_CURRENT,          // "objects current" (gauge)
  V_OBJ_SHADOWS,          // "shadow objects created"
  V_COLLAPSE_PAGES,       // "pages moved by collapse"
  // reservations / physical allocator
  V_RESERV_ALLOC,         // "reservations allocated"
  V_RESERV_FREED,         // "reservations freed"
  V_RESERV_BROKEN,        // "reservations broken"
  V_RESERV_PAGES,         // "pages allocated from reservations"
  V_CONTIG_ALLOC,         // "contiguous runs allocated"
  V_PAGES_RELEASED,       // "pages released to host"
  V_RELEASE_CALLS,        // "host release calls"
  V_FRAME_CACHE,          // "free frames cached" (gauge): free, host-resident, not known zero
  V_FRAME_CACHE_REUSED,   // "cached frames reused": allocations served by a cached frame
  V_FRAME_CACHE_TRIMMED,  // "cached frames trimmed": released by vm_page_cache_trim
  V_FORK_PREFAULT_PAGES,  // "fork prefaulted pages": entered read-only into a fork child
  V_PMAP_POPULATE_PAGES,  // "pmap populated pages": host page tables filled at enter
  // maps
  V_MAP_ENTRIES,          // "map entries" (gauge)
  V_MAP_CLIPS,            // "map entry clips"
  V_MAP_MERGES,           // "map entry merges"
  V_MAP_FINDSPACE,        // "free space searches"
  V_MMAP_CALLS,           // "mmap calls"
  V_MUNMAP_CALLS,         // "munmap calls"
  V_MPROTECT_CALLS,       // "mprotect calls"
  V_MADVISE_CALLS,        // "madvise calls"
  V_KMEM_PAGES,           // "kmem pages wired" (gauge)
  V_KMEM_GROWN_IN_PLACE,  // "kmem blocks grown in place"
  V_KMEM_MOVED,           // "kmem blocks moved without copying"
  V_HEAP_WINDOWS,         // "heap windows populated" (gauge): 2 MiB windows of the heap mapped
  V_HEAP_RANGES,          // "heap ranges allocated"
  V_HEAP_DISCARDED,       // "heap pages discarded": contents dropped on free (host memory back)
  V_HEAP_DIRTY_REUSED,    // "heap pages reused before discard": freed, handed out again as they were (vm_heap_alloc_any)
  V_HEAP_GROWN_IN_PLACE,  // "heap ranges grown in place"
  V_HEAP_COPIED,          // "heap ranges moved by copy"
  V_HEAP_MOVED,           // "heap ranges moved without copying": host page tables moved (mremap)
  V_HEAP_WINDOWS_TRIMMED, // "heap windows trimmed": unmapped, frames freed
  V_HEAP_PHYSMEM_REFUSED, // "heap ranges refused (physmem)": host heap at physmem, paged heap at physmem + swap
  V_PROG_MMAPS,           // "program mmaps served": the shim's mmap answered by vmrt (rt_mmap)
  V_PROG_MUNMAPS,         // "program munmaps served"
  V_PROG_MPROTECTS,       // "program mprotects served"
  V_PROG_MADVISES,        // "program madvises served"
  V_MREMAP_MOVES,         // "mremap moves": pages moved to a new address, not copied
  V_MREMAP_IN_PLACE,      // "mremap resized in place"
  // mapped files (vnode_pager.h, runtime/rt_mmap)
  V_FILE_MMAPS,           // "file mappings made": program mmaps of files served by vmrt
  V_VNODE_PAGEIN_OPS,     // "vnode pager pageins": read operations (runs)
  V_VNODE_PAGEINS,        // "vnode pager pages paged in": file pages read into frames
  V_FILE_MSYNCS,          // "msync calls on file mappings"
  V_FILE_MSYNC_WRITES,    // "msync writebacks asked of the host": shared file pieces msync'd
  V_FILE_SIGBUS,          // "SIGBUS past end of file": accesses to file pages the file does not have
  // sharing between address spaces (vm_map_extract.h, vm_loan.h)
  V_EXTRACTS,             // "map entry extracts": vm_map_extract calls
  V_EXTRACT_ENTRIES,      // "map entries extracted"
  V_TRANSFERS,            // "page transfers": vm_map_transfer calls
  V_TRANSFER_ENTRIES,     // "map entries transferred"
  V_LOANS,                // "loans made"
  V_LOAN_PAGES,           // "pages loaned": pages lent by all loans so far
  V_LOANED_NOW,           // "pages on loan" (gauge): page loans outstanding
  V_LOAN_BREAKS,          // "loan breaks": a write on either side copied a loaned page
  V_LOANS_ENDED,          // "loans ended": every page given back (unloan, unmap, exit, breaks)
  // paging: the swap pager and the pageout daemon (vm_pageout.cpp, swap_pager.cpp)
  V_PAGEIN_OPS,           // "swap pager pageins": read operations
  V_PAGEIN_PAGES,         // "swap pager pages paged in"
  V_PAGEOUT_OPS,          // "swap pager pageouts": write operations (one per cluster)
  V_PAGEOUT_PAGES,        // "swap pager pages paged out"
  V_SWAP_ZERO_PAGES,      // "pages stored as zeros": paged out without a slot
  V_SWAP_CHECKSUM_FAILS,  // "swap checksum failures": a page read back did not match
  V_SWAP_IO_ERRORS,       // "swap I/O errors"
  V_SWAP_FULL,            // "pageouts refused: swap full"
  V_SWAP_SLOTS,           // "swap slots" (gauge)
  V_SWAP_SLOTS_USED,      // "swap slots in use" (gauge)
  V_SWAP_FORK_COPIES,     // "swap slots copied at host fork": merging frozen devices
  V_SWAP_FORK_FROZEN,     // "swap devices shared at host fork": frozen, read by both sides
  V_PD_WAKEUPS,           // "pageout daemon wakeups": runs of passes, each to the free target
  V_PD_PASSES,            // "pageout passes": reclaim runs (daemon and direct)
  V_PD_BACKOFFS,          // "pageout daemon back-offs": a pass freed nothing, the daemon waits for a change
  V_PD_DIRECT,            // "direct reclaims": an allocation reclaimed pages itself
  V_PD_FREED,             // "pages freed by pageout"
  V_PD_CLEAN_FREED,       // "clean pages freed without a write": their swap copy is current
  V_SWAP_COPIES_DROPPED,  // "swap copies dropped by writable mappings": clean paged-in pages
                          // mapped writable become dirty (vm_fault.cpp, drop_swap_copy)
  V_SWAP_COPIES_KEPT,     // "swap copies kept under writable mappings": a read fault mapped a
                          // clean paged-in page writable and its copy stayed (PG_SWAPKEPT)
  V_SWAP_UNCHANGED,       // "pages unchanged at pageout (no write)": PG_SWAPKEPT pages that
                          // matched their kept copy
  V_FAULT_READAROUND,     // "pages read around a random fault": the faulting page's swap cluster
  V_FAULT_READAROUND_HITS,  // "read-around hits": read-around pages faulted on later
  V_FAULT_READAROUND_MISSES,  // "read-around misses": read-around pages paged out unused
  V_FAULT_READAROUND_LATE,  // "read-around late hits": read-around pages first faulted on more
                            // than kRaTimely page-ins after their read (vm_fault.cpp)
  V_FAULT_READAROUND_PROBES,  // "read-around probe hits": at a window of one page, page-ins next
                              // to the one before (vm_fault.cpp, ra_probe)
  V_PD_LAUNDERED,         // "pages laundered": written to swap, then freed
  V_PD_ZERO_FREED,        // "zero pages freed by pageout": read as zeros, nothing behind them
  V_PD_REDIRTIED,         // "pageouts abandoned": the page died or was wired during the write
  V_PD_LAUNDRY_WRITES,    // "laundry writes": cluster writes of laundered pages
  V_PD_LAUNDRY_REACT,     // "laundry pages reactivated": referenced while waiting for the write
  V_FAULT_PAGEIN,         // "page-in faults": a fault that read from a pager
  V_FAULT_READAHEAD,      // "pages read ahead": paged in with a fault's cluster, not asked for
  V_FAULT_BUSY_WAITS,     // "faults waited for busy pages"
  V_FAULT_RESTARTS,       // "fault restarts": the world changed while the fault slept
  V_WILLNEED_PAGEINS,     // "page-ins started by MADV_WILLNEED" (vm_map_willneed_locked)
  V_FAULT_DROP_BEHIND,    // "pages dropped behind a sequential stream" (MADV_SEQUENTIAL, or a
                          // stream of page-ins)
  V_VMSPACE_SWAPOUTS,     // "vmspace swapouts": whole vmspaces swapped out (vm_swapout.h)
  V_VMSPACE_SWAPOUT_PAGES,// "pages freed by vmspace swapouts"
  V_VMSPACE_SWAPINS,      // "vmspace swapins": first faults in swapped-out vmspaces
  V_MADV_COLD_PAGES,      // "pages deactivated by MADV_COLD": lost their reference, now inactive
  V_MADV_PAGEOUT_PAGES,   // "pages paged out by MADV_PAGEOUT": freed (clean) or laundered (dirty)
  V_MADV_FREE_PAGES,      // "pages freed lazily by MADV_FREE": resident pages made PG_FREEABLE
  V_FREEABLE_REUSED,      // "lazily freed pages used again": mapped writable before the daemon came
  V_PD_FREEABLE_FREED,    // "lazily freed pages reclaimed": freed by the daemon without a write
  // machine-dependent (runtime/ updates these)
  V_HOST_MMAP,            // "host mmap calls"
  V_HOST_VMAS,            // "host VMAs current" (gauge)
  V_HOST_VMAS_PEAK,       // "host VMAs peak" (gauge, vm_stat_max)
  V_PMAP_ENTER,           // "pmap enters"
  V_PMAP_ENTER_PAGES,     // "pmap entered pages"
  V_PMAP_REMOVE,          // "pmap removes"
  V_PMAP_PROTECT,         // "pmap protects"
  V_PMAP_PAGE_PROTECT,    // "pmap page protects"
  // locking
  V_VM_LOCK_CONTENDED,    // "VM lock contended"
  V_VM_LOCK_SLEEPS,       // "VM lock sleeps"
  V_VM_LOCK_STACK_PROBES, // "VM lock holder stacks made resident" (vm_lock.h, stack hooks)
  V_VM_LOCK_STACK_RETRIES,// "VM lock holder stacks lost before the lock: retried"
  V_SIGNALS_DEFERRED,     // "signals deferred out of vmrt locks" (vm_critical.h)
  // system call buffers held (vm_fault_hold.cpp: vslock for the sigsegv trap backend)
  V_HOLD_PAGES,           // "syscall buffer pages held"
  V_HOLD_FAULTS,          // "syscall buffer pages faulted in to be held"
  // page replacement policy (vm_pdpolicy_clock.cpp)
  V_PDPOL_SCANNED,        // "pages scanned by policy": queued pages looked at by select_victim
  V_PDPOL_REACTIVATED,    // "pages reactivated by policy": inactive page found referenced -> active
  V_PDPOL_DEACTIVATED,    // "pages deactivated by policy": active page aged to inactive
  V_PDPOL_VICTIMS,        // "pages selected by policy": pages select_victim returned
  V_PDPOL_NO_VICTIM,      // "policy scans without victim": select_victim returned null
  V_COUNTER_COUNT
};

struct vm_counter_desc {
  vm_counter id;
  vm_name<52> name;  // in place: the table is never relocated (vm_types.h)
};
inline constexpr vm_counter_desc kVmCounters[V_COUNTER_COUNT] = {
    {V_FAULTS, "page faults"},
    {V_ZFOD_ZEROED, "zero fill pages zeroed"},
    {V_COW_FAULTS, "copy-on-write faults"},
    {V_COW_OPTIM, "copy-on-write optimized faults"},
    {V_COLLAPSES, "object collapses"},
    {V_BYPASSES, "object bypasses"},
    {V_PAGES_FREED, "pages freed"},
    {V_WIRE_COUNT, "pages wired down"},
    {V_WIRE_REFUSED, "wirings refused (a third of memory wired)"},
    {V_ACTIVE_COUNT, "pages active"},
    {V_INACTIVE_COUNT, "pages inactive"},
    {V_LAUNDRY_COUNT, "pages in laundry"},
    {V_FREE_COUNT, "pages free"},
    {V_PAGE_COUNT, "pages managed"},
    {V_FORKS, "forks"},
    {V_FAULT_ZERO_FILL, "zero-fill faults"},
    {V_FAULT_ZERO_PAGES, "zero-fill pages"},
    {V_FAULT_RESIDENT, "resident page faults"},
    {V_FAULT_BACKING_READ, "backing page read faults"},
    {V_FAULT_NEEDS_COPY, "needs-copy shadows created"},
    {V_FAULT_NEEDS_COPY_CLR, "needs-copy cleared without shadow"},
    {V_FAULT_AROUND_PAGES, "fault-around pages"},
    {V_FAULT_ZERO_DENSE, "zero fills of dense blocks"},
    {V_FAULT_PROT_TRAPS, "protection traps"},
    {V_FAULT_NOENTRY_TRAPS, "no-entry traps"},
    {V_FAULT_HOSTMEM_TRAPS, "host-memory traps"},
    {V_FAULT_STACK_GROW, "stack growth faults"},
    {V_FAULT_SHORTAGE, "faults failed for resources"},
    {V_OBJ_ALLOC, "objects allocated"},
    {V_OBJ_CURRENT, "objects current"},
    {V_OBJ_SHADOWS, "shadow objects created"},
    {V_COLLAPSE_PAGES, "pages moved by collapse"},
    {V_RESERV_ALLOC, "reservations allocated"},
    {V_RESERV_FREED, "reservations freed"},
    {V_RESERV_BROKEN, "reservations broken"},
    {V_RESERV_PAGES, "pages allocated from reservations"},
    {V_CONTIG_ALLOC, "contiguous runs allocated"},
    {V_PAGES_RELEASED, "pages released to host"},
    {V_RELEASE_CALLS, "host release calls"},
    {V_FRAME_CACHE, "free frames cached"},
    {V_FRAME_CACHE_REUSED, "cached frames reused"},
    {V_FRAME_CACHE_TRIMMED, "cached frames trimmed"},
    {V_FORK_PREFAULT_PAGES, "fork prefaulted pages"},
    {V_PMAP_POPULATE_PAGES, "pmap populated pages"},
    {V_MAP_ENTRIES, "map entries"},
    {V_MAP_CLIPS, "map entry clips"},
    {V_MAP_MERGES, "map entry merges"},
    {V_MAP_FINDSPACE, "free space searches"},
    {V_MMAP_CALLS, "mmap calls"},
    {V_MUNMAP_CALLS, "munmap calls"},
    {V_MPROTECT_CALLS, "mprotect calls"},
    {V_MADVISE_CALLS, "madvise calls"},
    {V_KMEM_PAGES, "kmem pages wired"},
    {V_KMEM_GROWN_IN_PLACE, "kmem blocks grown in place"},
    {V_KMEM_MOVED, "kmem blocks moved without copying"},
    {V_HEAP_WINDOWS, "heap windows populated"},
    {V_HEAP_RANGES, "heap ranges allocated"},
    {V_HEAP_DISCARDED, "heap pages discarded"},
    {V_HEAP_DIRTY_REUSED, "heap pages reused before discard"},
    {V_HEAP_GROWN_IN_PLACE, "heap ranges grown in place"},
    {V_HEAP_COPIED, "heap ranges moved by copy"},
    {V_HEAP_MOVED, "heap ranges moved without copying"},
    {V_HEAP_WINDOWS_TRIMMED, "heap windows trimmed"},
    {V_HEAP_PHYSMEM_REFUSED, "heap ranges refused (physmem)"},
    {V_PROG_MMAPS, "program mmaps served"},
    {V_PROG_MUNMAPS, "program munmaps served"},
    {V_PROG_MPROTECTS, "program mprotects served"},
    {V_PROG_MADVISES, "program madvises served"},
    {V_MREMAP_MOVES, "mremap moves"},
    {V_MREMAP_IN_PLACE, "mremap resized in place"},
    {V_FILE_MMAPS, "file mappings made"},
    {V_VNODE_PAGEIN_OPS, "vnode pager pageins"},
    {V_VNODE_PAGEINS, "vnode pager pages paged in"},
    {V_FILE_MSYNCS, "msync calls on file mappings"},
    {V_FILE_MSYNC_WRITES, "msync writebacks asked of the host"},
    {V_FILE_SIGBUS, "SIGBUS past end of file"},
    {V_EXTRACTS, "map entry extracts"},
    {V_EXTRACT_ENTRIES, "map entries extracted"},
    {V_TRANSFERS, "page transfers"},
    {V_TRANSFER_ENTRIES, "map entries transferred"},
    {V_LOANS, "loans made"},
    {V_LOAN_PAGES, "pages loaned"},
    {V_LOANED_NOW, "pages on loan"},
    {V_LOAN_BREAKS, "loan breaks"},
    {V_LOANS_ENDED, "loans ended"},
    {V_PAGEIN_OPS, "swap pager pageins"},
    {V_PAGEIN_PAGES, "swap pager pages paged in"},
    {V_PAGEOUT_OPS, "swap pager pageouts"},
    {V_PAGEOUT_PAGES, "swap pager pages paged out"},
    {V_SWAP_ZERO_PAGES, "pages stored as zeros"},
    {V_SWAP_CHECKSUM_FAILS, "swap checksum failures"},
    {V_SWAP_IO_ERRORS, "swap I/O errors"},
    {V_SWAP_FULL, "pageouts refused: swap full"},
    {V_SWAP_SLOTS, "swap slots"},
    {V_SWAP_SLOTS_USED, "swap slots in use"},
    {V_SWAP_FORK_COPIES, "swap slots copied at host fork"},
    {V_SWAP_FORK_FROZEN, "swap devices shared at host fork"},
    {V_PD_WAKEUPS, "pageout daemon wakeups"},
    {V_PD_PASSES, "pageout passes"},
    {V_PD_BACKOFFS, "pageout daemon back-offs"},
    {V_PD_DIRECT, "direct reclaims"},
    {V_PD_FREED, "pages freed by pageout"},
    {V_PD_CLEAN_FREED, "clean pages freed without a write"},
    {V_SWAP_COPIES_DROPPED, "swap copies dropped by writable mappings"},
    {V_SWAP_COPIES_KEPT, "swap copies kept under writable mappings"},
    {V_SWAP_UNCHANGED, "pages unchanged at pageout (no write)"},
    {V_FAULT_READAROUND, "pages read around a random fault"},
    {V_FAULT_READAROUND_HITS, "read-around hits"},
    {V_FAULT_READAROUND_MISSES, "read-around misses"},
    {V_FAULT_READAROUND_LATE, "read-around late hits"},
    {V_FAULT_READAROUND_PROBES, "read-around probe hits"},
    {V_PD_LAUNDERED, "pages laundered"},
    {V_PD_ZERO_FREED, "zero pages freed by pageout"},
    {V_PD_REDIRTIED, "pageouts abandoned"},
    {V_PD_LAUNDRY_WRITES, "laundry writes"},
    {V_PD_LAUNDRY_REACT, "laundry pages reactivated"},
    {V_FAULT_PAGEIN, "page-in faults"},
    {V_FAULT_READAHEAD, "pages read ahead"},
    {V_FAULT_BUSY_WAITS, "faults waited for busy pages"},
    {V_FAULT_RESTARTS, "fault restarts"},
    {V_WILLNEED_PAGEINS, "page-ins started by MADV_WILLNEED"},
    {V_FAULT_DROP_BEHIND, "pages dropped behind a sequential stream"},
    {V_VMSPACE_SWAPOUTS, "vmspace swapouts"},
    {V_VMSPACE_SWAPOUT_PAGES, "pages freed by vmspace swapouts"},
    {V_VMSPACE_SWAPINS, "vmspace swapins"},
    {V_MADV_COLD_PAGES, "pages deactivated by MADV_COLD"},
    {V_MADV_PAGEOUT_PAGES, "pages paged out by MADV_PAGEOUT"},
    {V_MADV_FREE_PAGES, "pages freed lazily by MADV_FREE"},
    {V_FREEABLE_REUSED, "lazily freed pages used again"},
    {V_PD_FREEABLE_FREED, "lazily freed pages reclaimed"},
    {V_HOST_MMAP, "host mmap calls"},
    {V_HOST_VMAS, "host VMAs current"},
    {V_HOST_VMAS_PEAK, "host VMAs peak"},
    {V_PMAP_ENTER, "pmap enters"},
    {V_PMAP_ENTER_PAGES, "pmap entered pages"},
    {V_PMAP_REMOVE, "pmap removes"},
    {V_PMAP_PROTECT, "pmap protects"},
    {V_PMAP_PAGE_PROTECT, "pmap page protects"},
    {V_VM_LOCK_CONTENDED, "VM lock contended"},
    {V_VM_LOCK_SLEEPS, "VM lock sleeps"},
    {V_VM_LOCK_STACK_PROBES, "VM lock holder stacks made resident"},
    {V_VM_LOCK_STACK_RETRIES, "VM lock holder stacks lost before the lock: retried"},
    {V_SIGNALS_DEFERRED, "signals deferred out of vmrt locks"},
    {V_HOLD_PAGES, "syscall buffer pages held"},
    {V_HOLD_FAULTS, "syscall buffer pages faulted in to be held"},
    // page replacement policy
    {V_PDPOL_SCANNED, "pages scanned by policy"},
    {V_PDPOL_REACTIVATED, "pages reactivated by policy"},
    {V_PDPOL_DEACTIVATED, "pages deactivated by policy"},
    {V_PDPOL_VICTIMS, "pages selected by policy"},
    {V_PDPOL_NO_VICTIM, "policy scans without victim"},
};

extern std::atomic<std::int64_t> g_vm_counters[V_COUNTER_COUNT];

// Width of the number column in vmstat -s lines ("%9u %s", as FreeBSD prints them); every
// layer that adds lines to the report uses it.
inline constexpr int kVmstatColumn = 9;

inline void vm_stat_add(vm_counter c, std::int64_t n) { g_vm_counters[c].fetch_add(n, std::memory_order_relaxed); }
inline void vm_stat_inc(vm_counter c) { vm_stat_add(c, 1); }
inline void vm_stat_set(vm_counter c, std::int64_t v) { g_vm_counters[c].store(v, std::memory_order_relaxed); }
// Raise a peak gauge to v if v is higher.
void vm_stat_max(vm_counter c, std::int64_t v);
inline std::int64_t vm_stat_get(vm_counter c) { return g_vm_counters[c].load(std::memory_order_relaxed); }
// The counter named `name` (as printed by vmstat -s); false if unknown.
bool vm_stat_find(const char* name, vm_counter* out);
const char* vm_stat_name(vm_counter c);

// `vmstat -s`: one line per counter, the value right-aligned in 9+ columns, then the name.
void vm_stats_report(int fd);

}  // namespace vmrt
