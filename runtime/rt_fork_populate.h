// rt_fork_populate.h — the pages every host fork writes, made writable in one system call.
//
// After fork() every private page is copy-on-write in both processes, and the first write
// to each is a page fault.  On these guests a fault costs 15-50 us, while
// MADV_POPULATE_WRITE breaks copy-on-write for a whole range in one call at 1-4 us a page
// (runtime/README: measured side by side).  Some pages are written after every fork, in
// the parent and in the child, before control returns to the program: vmrt's fork data
// page (its fork handlers' locks, counters and state, VMRT_FORK_DATA) and the forking
// thread's static TLS (vmrt's thread cache and critical-section depth next to libc's errno
// and thread descriptor).  The fork handlers populate them first thing.  The child also maps
// this object's read-only data (MADV_POPULATE_READ): a fork copies no page-table entry of a
// file mapping without private pages, so the first malloc in every child faulted on the
// size-class table.  A host that refuses the advice (Linux before 5.14) is asked once; the
// faults then stay as they were.
#pragma once

namespace vmrt::rt {

// Record, at boot, the size of this object's TLS block (PT_TLS), which bounds the TLS range
// populated below, and where its read-only data segment is.  Once, single-threaded.
void fork_populate_init();

enum class fork_side : unsigned char { parent, child };

// Make the fork data page and the calling thread's static TLS writable now, and in the child
// map the read-only data.  First thing in the fork parent and child handlers, before any
// write there.  No lock, no malloc.
void fork_populate_written(fork_side side);

}  // namespace vmrt::rt
