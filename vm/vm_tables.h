// vm_tables.h — host memory for vmrt's own big tables (the pmap's per-page tables,
// vm_page_array, the reservations, kmem's kmemusage and page-index arrays, the window
// table), in one place.
//
// Each table is sized for the whole region, all of physical memory or the whole heap (tens
// to hundreds of MB of address space), and a short-lived process touches a page or two at
// the front of each.  Mapped one by one, the host put them wherever it had room: in a shell
// under the shim they lay in four different GiB of address space, and every GiB a process
// touches costs a host page-middle-directory page and every 2 MiB a page-table page, filled
// at first touch, copied by every fork and torn down at every exit (measured with a fork
// loop: ~13 us a fork for a touched 2 MiB block in a GiB of its own, ~3 us for one in a GiB
// already used; README, Known limits, "The VM's tables in one place").  Here they are carved, in the
// order they are asked for, from one reservation aligned to a GiB (the table arena), mapped
// readable and writable in one call when it opens: carving a table is no system call.
//
// The arena has a hot block: the 2 MiB every short process writes.  Its middle holds the
// small tables (TABLE_HOT: the window table, the pmap's per-chunk records and the tables of
// the chunks around the heap's start); kmem's page codes end where it begins and its
// kmemusage records start where it ends (table_map_split), the fronts of both, which every
// process writes, in the same 2 MiB.  They were two blocks (the pmap's front, and kmem's
// codes and records 600 MiB further on): a host page-table page more in every process.
// Layout, from the arena's GiB-aligned base:
//   GiB 0      the other tables, carved upward in the order asked for (vm_page_array, the
//              reservations, the cold part of the pmap's blocks), up to kmem's codes
//   GiB 1      kmem's codes, downward from the hot block; the hot block (kHotOffset into
//              the GiB); kmem's records upward from it
//
// The arena exists only when RLIMIT_AS is unlimited (its reservation is address space the
// program's limit would otherwise have to pay for); a table that does not fit in it, or
// any table when there is no arena, is mapped by itself as before.
#pragma once

#include <cstddef>

namespace vmrt::sys {

// Flags for table_map.
enum table_flags : unsigned {
  TABLE_LAZY = 0,      // pages appear (zero) at first touch
  TABLE_POPULATE = 1,  // every page made present in the call (MAP_POPULATE)
  TABLE_HOT = 2,       // from the arena's hot block while it has room (a small table every
                       // process writes); elsewhere as any other when it has none
};

// => any thread; may sleep (mmap, outside the arena or when its open mapping was refused).
// `bytes` (rounded up to pages) of zeroed, readable and writable private memory, not charged
// to overcommit (MAP_NORESERVE).  Null, with
// errno set, when the host refuses.
void* table_map(std::size_t bytes, unsigned flags = TABLE_LAZY);

// => any thread; may sleep (page allocation).  Make the pages holding [p, p + bytes) of a
// table in the arena resident and writable now (MADV_POPULATE_WRITE): a page boot is about
// to write, in one call instead of a page fault.  Nothing outside the arena, nor when the
// host refuses (the pages then fault in as they are written).
void table_populate(const void* p, std::size_t bytes);

// => any thread; may sleep (as table_map).  A table in two halves around the arena's hot block:
// [*below_end - below, *below_end) ends where the block begins and [*above_start,
// *above_start + above) starts where it ends (kmem: its page codes, stored downward from
// *below_end, and its kmemusage records, upward from *above_start).  One such table per
// process; for a second one, without the arena or when the arena has no room, the halves
// are adjacent (*below_end == *above_start) in one mapping.  False, with errno set, when
// the host refuses.
bool table_map_split(std::size_t below, std::size_t above, void** below_end, void** above_start);

// The process's soft RLIMIT_AS and RLIMIT_DATA as boot read them (true: unlimited): the
// arena's opening then asks the host no more (two prlimit calls in every process).  Before
// the first table_map; without it the arena reads them itself when it opens.
void table_arena_limits_known(bool as_unlimited, bool data_unlimited);

// => any thread.  Gives back a table from table_map (same size): its memory returns to
// the host; inside the arena its address space stays reserved (never handed out again).
// 0, or -1 with errno.
int table_unmap(void* p, std::size_t bytes);

// Address space the arena holds reserved (0 when there is none), the bytes of tables
// carved from it and the bytes of tables mapped outside it: with these the runtime tells
// its footprint (the part of a program's RLIMIT_AS and RLIMIT_DATA that is vmrt's,
// runtime/boot.cpp).
std::size_t table_arena_reserved();
std::size_t table_bytes_inside();
std::size_t table_bytes_outside();
// The private writable memory the tables hold as the host counts it (VmData, which
// RLIMIT_DATA bounds): the arena's read-write mapping whole (two GiB, most of it never
// touched) and the tables outside it.
std::size_t table_bytes_writable();
// The mmap calls made for the tables (the arena's reservation and read-write mapping, each
// table mapped by itself): boot's share of system calls (scenario exec_boot).
std::size_t table_host_calls();

// True when [p, p + bytes) lies in the arena's reservation.
bool table_in_arena(const void* p, std::size_t bytes);

// => any thread; reads the host's residency (mincore, a call per 2 MiB of tables handed
// out).  How many 2 MiB blocks of the arena hold a resident page: the host page-table pages
// vmrt's tables cost this process (the stats report; scenario exec_boot bounds it).
std::size_t table_arena_blocks_resident();

}  // namespace vmrt::sys
