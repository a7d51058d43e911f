// rt_stats.h — the machine-dependent layer's counters (host mapping calls, host
// VMAs, traps, fault paths).  Lock-free atomics: safe in signal handlers and in
// the userfaultfd thread.  Printed in vmstat -s and readable by name through
// vmrt_counter().  vm/'s own counters live in vm/vm_stats.h.
#pragma once

#include <atomic>
#include <cstdint>

#include "vm/vm_stats.h"

namespace vmrt::rt {

enum rt_counter : unsigned {
  RC_HOST_MMAP,          // host mmap(2) calls made by pmap/physmem (enter, remove, reserve)
  RC_HOST_MPROTECT,      // host mprotect(2) calls (protect, page_protect, ref/mod emulation)
  RC_HOST_VMAS,          // host VMAs in the region (estimate, maintained incrementally)
  RC_HOST_VMAS_PEAK,     // high water of RC_HOST_VMAS
  RC_PMAP_ENTER_PAGES,   // pages entered by pmap_enter
  RC_PMAP_ENTER_RUNS,    // frame-contiguous runs entered (one host mmap each)
  RC_PMAP_REMOVE_PAGES,  // resident pages removed
  RC_SIGSEGV_FAULTS,     // SIGSEGV/SIGBUS in the region handled by the trap handler
  RC_SIGSEGV_RESOLVED,   // ... resolved by vm_fault
  RC_UFFD_FAULTS,        // userfaultfd missing-page events
  RC_UFFD_RESOLVED,      // ... resolved by vm_fault (or already resident)
  RC_UFFD_REFUSED,       // ... refused: page made PROT_NONE so the access traps
  RC_UFFD_CONTINUES,     // ... resolved by mapping the zapped page again (reference taken)
  RC_UFFD_CONTINUED_AROUND,  // ... neighbours a fork child's minor fault mapped with it (pmap_linux)
  RC_PMAP_ZAPS,          // host PTE runs dropped with the VMA kept (reference emulation)
  RC_PMAP_ZAP_CALLS,     // ... host calls that did it (a batch of a scan's clears: one process_madvise)
  RC_UFFD_BOOTSTRAP_SERVED,  // events served by the thread starting the first handler thread
  RC_UFFD_RELAYED,       // ... of them, handed to it by a relay thread (uffd_relay.h)
  RC_UFFD_HOLDER_STALE,  // events of the VM lock holder found stale (it was not waiting in a fault)
  RC_UFFD_EMPTY_READS,   // handler-thread reads that found no event (the descriptor non-blocking)
  RC_FORK_PREFAULTS,     // pages glibc's fork touches, faulted in before vmrt's fork locks
  RC_FORK_PREFAULT_RETRIES,  // ... taken back meanwhile: the locks let go and the pages touched again
  RC_FORK_POPULATED,     // pages made writable at once after a host fork (rt_populate), parent and child
  RC_HEAP_POPULATED,     // heap pages kmem was about to write, made writable in one call (rt_populate)
  RC_TRAPS,              // accesses refused (trap hook, chained handler, or death)
  RC_TRAPS_NO_ENTRY,
  RC_TRAPS_PROTECTION,
  RC_TRAPS_RESOURCE,
  RC_TRAP_HOOK_CALLS,    // traps delivered to the vmrt trap hook
  RC_CHAINED_SIGNALS,    // signals passed on to the program's previous handler
  RC_ALTSTACKS,          // alternate signal stacks installed
  RC_HOST_FORKS,         // host fork() children that got their own physmem
  RC_QUIET_FORKS,        // ... of them taken quietly (one thread: no lock, no fork data written)
  RC_FORK_FRAMES_COPIED, // frames copied into a fork child's physmem
  RC_PAGES_ZEROED,       // frames zeroed through the direct map
  RC_PAGES_RELEASED,     // frames given back to the host (hole punched)
  RC_FORK_SETUP_FAILED,  // host forks refused: the child's physmem could not be set up
  RC_HOST_MEM_MAPPED,    // host-memory bytes mapped (pmap host_map: heap windows)
  RC_HOST_MEM_DISCARDS,  // host-memory ranges discarded (MADV_DONTNEED)
  RC_HOST_DISCARD_CALLS, // ... host calls that did it (madvise, or process_madvise for many)
  RC_MMAP_TO_HOST,       // program mmaps passed to the host: no room in the mmap area
  RC_MMAP_PAGED,         // program mmaps served as pageable VM memory (paging on)
  RC_MREMAP_PAGED_MOVES, // program mremaps that moved pageable memory (objects moved, no copy)
  RC_VMA_REFUSED,        // program mappings refused (ENOMEM) within vmrt's headroom of vm.max_map_count
  RC_VMA_RECOUNTS,       // /proc/self/maps counted again (boot, and near the mapping limit)
  RC_RESERVE_IN_PLACE,   // unmaps done in place (mprotect + discard) when the host refused a new mapping
  RC_VMA_SWEEPS,         // sweeps giving frame mappings' VMAs back near the mapping limit (pmap_linux_vmas)
  RC_VMA_GIVEN_BACK,     // ... host VMAs they gave back
  RC_VMA_PAGES_UNMAPPED, // ... resident pages they unmapped (faulted back in at the next access)
  RC_BRK_GROWS,          // program brk/sbrk calls that grew the data segment (rt_brk)
  RC_BRK_SHRINKS,        // ... that shrank it
  RC_BRK_REFUSED,        // ... refused (a mapping in the way, or the host's limits)
  RC_VSLOCK_CALLS,       // system calls whose region buffers were held (rt_vslock: sigsegv backend)
  RC_VSLOCK_PARTIAL,     // ... buffers held in part (hold budget, or a page that could not be held)
  RC_UFFD_WP_FAULTS,     // userfaultfd write-protect faults (a write to a copy-on-write page, user or kernel)
  RC_UFFD_WP_PAGES,      // pages write-protected through the userfaultfd instead of mprotect
  RC_COW_FORKS,          // host forks that shared frames copy-on-write (physmem_cow)
  RC_COW_SHARED_AT_FORK, // ... frames in use they shared
  RC_COW_PUSHES,         // frames a parent copied into a child before changing them
  RC_COW_PULLS,          // frames a child copied from its parent at first use
  RC_COW_CLAIMS,         // frames a child overwrote or freed without copying
  RC_COW_WP_FAULTS,      // write-protect faults that pushed frames (a parent's first write after a fork)
  RC_COW_PUSH_FAILURES,  // pushes the host refused (no memory for the child's memfd): the child was killed
  RC_COUNT
};

struct rt_counter_info {
  vm_name<64> name;  // as printed by vmstat -s (in place: never relocated, vm/vm_types.h)
  vm_counter mirror; // the vm_stats counter it also feeds (V_COUNTER_COUNT: none)
};
inline constexpr rt_counter_info kRtCounters[RC_COUNT] = {
    {"host mmap calls", V_HOST_MMAP},
    {"host mprotect calls", V_COUNTER_COUNT},
    {"host VMAs in region (estimate)", V_HOST_VMAS},
    {"host VMAs in region (peak)", V_HOST_VMAS_PEAK},
    {"pmap pages entered", V_PMAP_ENTER_PAGES},
    {"pmap runs entered", V_PMAP_ENTER},
    {"pmap pages removed", V_COUNTER_COUNT},
    {"sigsegv faults", V_COUNTER_COUNT},
    {"sigsegv faults resolved", V_COUNTER_COUNT},
    {"userfaultfd faults", V_COUNTER_COUNT},
    {"userfaultfd faults resolved", V_COUNTER_COUNT},
    {"userfaultfd faults refused", V_COUNTER_COUNT},
    {"userfaultfd minor faults continued", V_COUNTER_COUNT},
    {"pages a fork child's minor faults mapped around them", V_COUNTER_COUNT},
    {"pmap PTE runs zapped", V_COUNTER_COUNT},
    {"pmap zap calls", V_COUNTER_COUNT},
    {"userfaultfd events served while a handler thread started", V_COUNTER_COUNT},
    {"userfaultfd events relayed to a handler thread's creator", V_COUNTER_COUNT},
    {"userfaultfd events of the VM lock holder found stale", V_COUNTER_COUNT},
    {"userfaultfd handler reads that found no event", V_COUNTER_COUNT},
    {"pages libc's fork touches, faulted in before the fork locks", V_COUNTER_COUNT},
    {"fork locks retaken (a page libc's fork touches was taken back)", V_COUNTER_COUNT},
    {"pages made writable in one call after a host fork", V_COUNTER_COUNT},
    {"heap pages made writable in one call before kmem wrote them", V_COUNTER_COUNT},
    {"traps", V_COUNTER_COUNT},
    {"traps no entry", V_COUNTER_COUNT},
    {"traps protection", V_COUNTER_COUNT},
    {"traps resource", V_COUNTER_COUNT},
    {"trap hook calls", V_COUNTER_COUNT},
    {"chained signals", V_COUNTER_COUNT},
    {"alternate signal stacks", V_COUNTER_COUNT},
    {"host forks", V_COUNTER_COUNT},
    {"host forks taken quietly (one thread, no lock)", V_COUNTER_COUNT},
    {"fork frames copied", V_COUNTER_COUNT},
    {"frames zeroed", V_COUNTER_COUNT},
    {"frames released to host", V_COUNTER_COUNT},
    {"host forks refused (no memory/descriptor)", V_COUNTER_COUNT},
    {"host memory bytes mapped", V_COUNTER_COUNT},
    {"host memory discards", V_COUNTER_COUNT},
    {"host memory discard calls (batched)", V_COUNTER_COUNT},
    {"program mmaps passed to the host (no room)", V_COUNTER_COUNT},
    {"program mmaps served as pageable memory", V_COUNTER_COUNT},
    {"program mremaps moving pageable memory", V_COUNTER_COUNT},
    {"program mappings refused near the host's mapping limit", V_COUNTER_COUNT},
    {"host VMA recounts", V_COUNTER_COUNT},
    {"unmaps done in place at the host's mapping limit", V_COUNTER_COUNT},
    {"sweeps giving host VMAs back near the mapping limit", V_COUNTER_COUNT},
    {"host VMAs given back by them", V_COUNTER_COUNT},
    {"resident pages they unmapped (faulted back in)", V_COUNTER_COUNT},
    {"data segment grows (brk)", V_COUNTER_COUNT},
    {"data segment shrinks (brk)", V_COUNTER_COUNT},
    {"data segment changes refused (brk)", V_COUNTER_COUNT},
    {"syscall buffers held", V_COUNTER_COUNT},
    {"syscall buffers held in part", V_COUNTER_COUNT},
    {"userfaultfd write-protect faults", V_COUNTER_COUNT},
    {"pages write-protected through userfaultfd", V_COUNTER_COUNT},
    {"copy-on-write host forks", V_COUNTER_COUNT},
    {"frames shared copy-on-write at host forks", V_COUNTER_COUNT},
    {"frames pushed to fork children (copied before a write)", V_COUNTER_COUNT},
    {"frames pulled from the fork parent (copied at first use)", V_COUNTER_COUNT},
    {"frames a fork child overwrote without copying", V_COUNTER_COUNT},
    {"write faults after a fork that pushed frames", V_COUNTER_COUNT},
    {"pushes to fork children the host refused (child killed)", V_COUNTER_COUNT},
};
static_assert(sizeof(kRtCounters) / sizeof(kRtCounters[0]) == RC_COUNT, "one name per counter");
// The mirrors alone, packed: rt_count reads one where its counter is not a constant, and the
// names' rows put them 68 bytes apart over 4 KiB of cold read-only data.
struct rt_mirror_table {
  vm_counter m[RC_COUNT];
};
constexpr rt_mirror_table make_rt_mirrors() {
  rt_mirror_table t{};
  for (unsigned c = 0; c < RC_COUNT; ++c) t.m[c] = kRtCounters[c].mirror;
  return t;
}
inline constexpr rt_mirror_table kRtMirror = make_rt_mirrors();

extern std::atomic<std::int64_t> g_rt_counters[RC_COUNT];

inline void rt_count(rt_counter c, std::int64_t n = 1) {
  g_rt_counters[c].fetch_add(n, std::memory_order_relaxed);
  if (kRtMirror.m[c] != V_COUNTER_COUNT) vm_stat_add(kRtMirror.m[c], n);
}
inline std::int64_t rt_get(rt_counter c) { return g_rt_counters[c].load(std::memory_order_relaxed); }

// A quiet fork's counts (runtime/rt_fork.cpp, fork_can_be_quiet): the fork (RC_HOST_FORKS,
// RC_QUIET_FORKS) and the TLS pages its parent handler populates (RC_FORK_POPULATED), kept
// in the forking thread's TLS until rt_fold_pending_forks adds them to the counters.  The
// counters are on the fork data page, which the parent then wrote in every prepare: a
// copy-on-write fault a fork (the page was shared with the last child), where its TLS is
// written after the fork anyway.  Only a process with one thread forks quietly; it folds
// before it starts a second (the shim's pthread_create, start_machine_thread), before a
// fork that is not quiet, and a report or a read by name folds first.
struct pending_forks {
  std::uint32_t forks;      // quiet forks made
  std::uint32_t populated;  // TLS pages their parent handlers populated
};
extern __thread pending_forks t_pending_forks __attribute__((tls_model("initial-exec")));
// => the calling thread; no lock.  Adds its pending quiet-fork counts to the counters.
void rt_fold_pending_forks();
// Adjust the host VMA estimate by delta and keep the peak.
void rt_host_vmas_add(std::int64_t delta);

// Counter by name (exact match); false when unknown.
bool rt_counter_by_name(const char* name, std::int64_t* out);

// vmstat -s lines for the runtime counters that vm_stats does not already print.
void rt_report_counters(int fd);

}  // namespace vmrt::rt
