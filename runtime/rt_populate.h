// rt_populate.h — pages vmrt knows a process is about to touch, populated in one system call
// instead of one page fault each.
//
// On these guests a page fault costs 15-50 us, while MADV_POPULATE_WRITE / _READ fill a
// whole range at 1-4 us a page (measured side by side: README, "Faults per fork and exec").
// Some pages are touched by every process under the shim, or by both sides of every fork,
// before control returns to the program:
//   - at load, this object's code and read-only data (a read fault per 64 KiB of
//     fault-around, ~8 in every exec'd process);
//   - after a host fork, in the parent and in the child: vmrt's fork data page (its fork
//     handlers' locks, counters and state: VMRT_FORK_DATA) and the forking thread's static
//     TLS (vmrt's thread cache and critical-section depth next to libc's errno and thread
//     descriptor), each a copy-on-write fault (the parent of a quiet fork, which writes no
//     fork data after it: its TLS alone); in the child also the read-only data again
//     (a fork copies no page-table entry of a file mapping without private pages, so the
//     first malloc in every child faulted on the size-class table) — .rodata only, not the
//     unwind tables after it in the same segment (10 pages, not 26);
//   - heap pages kmem writes as soon as it takes them: its first chunk (the first blocks of
//     every small class, ~6 pages, a fault each in every process: git, sed, bash), and
//     single pages for new clusters, handed out in address order from a fresh batch
//     (populated kmem::kPopulateAhead at a time).
// Only pages that are touched anyway: RSS is unchanged (fault-around mapped nearly all the
// code already).  A host that refuses the advice (Linux before 5.14) is asked once; the
// faults then stay as they were.  VMRT_POPULATE=0 turns it off, for measurement: getrusage
// counts each populated page as a minor fault (scenario fork_faults).
#pragma once

#include <cstddef>
#include <cstdint>

namespace vmrt::rt {

// quiet_parent: the parent of a quiet fork (runtime/rt_fork.cpp, fork_can_be_quiet), which
// writes no fork data after it: its static TLS alone (the program's next malloc writes it).
enum class fork_side : unsigned char { parent, child, quiet_parent };

// Make the fork data page and the calling thread's static TLS writable now, and in the child
// map the read-only data.  First thing in the fork parent and child handlers, before any
// write there.  No lock, no malloc.
void fork_populate_written(fork_side side);
// The pages the parent's fork_populate_written(quiet_parent) populates, which counts
// nothing itself: a quiet fork counts them before it (rt_stats.h, pending_forks).
std::uint32_t fork_populate_quiet_pages();

// Make [addr, addr + bytes) of the host-memory heap writable now: pages kmem is about to
// write (the first chunk; the next single pages of a fresh batch).  False when the host
// refused or VMRT_POPULATE=0 (the pages then fault in as they are written).  No lock, no
// malloc.
bool populate_heap(void* addr, std::size_t bytes);

}  // namespace vmrt::rt
