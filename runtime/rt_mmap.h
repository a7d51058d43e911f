// rt_mmap.h — the program's own mappings (anonymous and of regular files), served by vmrt (the
// shim's mmap family; rt_mmap.cpp, and rt_mremap.cpp for mremap).
//
// VMRT_MMAP=vmrt.  Linux's answers come from Linux itself where they depend on its VMAs:
// each mapping of the area is host memory made by the same call at the same place, so
// the host holds the program's VMAs as Linux would (merges and splits, anon_vma and pgoff
// included), and the calls whose answer depends on them (mremap's "one VMA", moves of
// several mappings, mlock stopping at a hole) are asked of the host — with the area's
// reservation taken off the holes concerned for the call, so the host sees real holes —
// and the map follows what the host did.  New mappings are placed top-down (Linux's
// default layout), so their neighbours are the ones they would have natively.  Scenarios
// mmap_differential (40 seeds, 240 tried) and mmap_linux_rules check it.
//
// The process vmspace's window holds the heap (vm/vm_heap) and, above it, the mmap area:
// a program's anonymous mmap lands there as a map entry of the process vmspace
// (MAP_ENTRY_HOSTMEM: procstat -v lists it; the VM's map keeps its protection and
// inheritance) whose pages are host anonymous memory (pmap host_map), private or shared
// as asked — so the host's own fork shares them copy-on-write (or shared, MAP_SHARED),
// kernel-mode accesses never fault, and MADV_FREE, MADV_DONTFORK, MADV_WIPEONFORK, mlock
// act as they do natively.  munmap puts the area's reservation back (the host never
// places its own mappings there).
//
// Each call either answers (mm_handled: the result and errno are Linux's for the same
// call) or passes (mm_host: the caller makes the host call unchanged):
//   - mappings of what is not a regular file (devices, /dev/zero, pipes), exotic flags
//     (MAP_GROWSDOWN, MAP_HUGETLB, MAP_LOCKED, MAP_32BIT, MAP_SHARED_VALIDATE, MAP_SYNC, ...), and calls
//     whose arguments the host refuses anyway — the host answers them identically (placed
//     in the area with MAP_FIXED, or moved there by mremap, the map adopts them);
//   - ranges wholly outside the mmap area (the heap, the host's own mappings);
//   - a request the area has no room for (counted: "mmaps passed to the host (no room)").
// A range that straddles the area's edge is refused by vmrt only for munmap (each side
// handled by its owner); for the other calls it goes to the host as a whole (rare:
// programs work on ranges they mapped).
//
// Locking: each call takes the VM lock; none may be called with it held or from a signal
// handler.  No malloc.
#pragma once

#include <cstddef>
#include <sys/types.h>

#include "vm/vm_thread_safety.h"
#include "vm/vm_types.h"

namespace vmrt {
struct vm_map;
}

namespace vmrt::rt {

// The area [lo, hi) of map (the process vmspace's), below the heap.  Once, at boot.
void mm_area_init(vm_map* map, vaddr_t lo, vaddr_t hi, bool paging);
bool mm_area_ready();
// The area's bounds [*lo, *hi) (both 0 before mm_area_init); rt_brk places the data segment
// at its bottom.
void mm_area_bounds(vaddr_t* lo, vaddr_t* hi);
// Is [a, a + n) of the area free of mappings (the map's view)?  Takes the VM lock.
bool mm_area_range_free(vaddr_t a, vsize_t n);

enum class mm_route : unsigned char { handled, host };

struct mm_answer {
  long value;  // the call's return value (an address for mmap/mremap, else 0 or -1)
  int err;     // errno when value is -1 (or MAP_FAILED)
};

mm_route mm_mmap(void* addr, std::size_t len, int prot, int flags, int fd, off_t off, mm_answer* out);
mm_route mm_munmap(void* addr, std::size_t len, mm_answer* out);
mm_route mm_mprotect(void* addr, std::size_t len, int prot, mm_answer* out);
mm_route mm_madvise(void* addr, std::size_t len, int advice, mm_answer* out);
mm_route mm_mremap(void* old_addr, std::size_t old_len, std::size_t new_len, int flags, void* new_addr, mm_answer* out);
mm_route mm_mincore(void* addr, std::size_t len, unsigned char* vec, mm_answer* out);
mm_route mm_msync(void* addr, std::size_t len, int flags, mm_answer* out);
// The host's fork child, single-threaded, VM lock reset: the map forgets what the host did
// not give the child (MADV_DONTFORK ranges).
void mm_fork_child();
// mlock (lock) / munlock.
mm_route mm_mlock(const void* addr, std::size_t len, bool lock, mm_answer* out);

// The first mapping of the area that ends above `from`: false when there is none.  For
// mlockall (rt_mlockall), which walks the area entry by entry.  Takes the VM lock.
struct mm_entry_view {
  vaddr_t start, end;
  bool pageable;  // VM memory (vm_fault's), not host memory
  bool prot_none;
};
bool mm_next_entry(vaddr_t from, mm_entry_view* out);

}  // namespace vmrt::rt
