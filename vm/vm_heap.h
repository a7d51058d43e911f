// vm_heap.h — a process's heap: one anonymous entry of its vmspace, handed out in
// page-granular ranges (the malloc arena), populated a 2 MiB window at a time.
//
// 4.4BSD's kernel malloc draws wired pages from kmem_map (McKusick et al., The Design and
// Implementation of the 4.4BSD Operating System: "physical memory is allocated and is not
// paged").  A program's heap is different: memory it asks for and never touches must cost
// nothing, freed memory must go back, and a host fork() of the program must share it
// copy-on-write.  vmrt's heap is therefore
//   - one map entry of the process vmspace covering the whole arena (procstat -v shows it);
//   - populated a window (2 MiB) at a time when a range is handed out, so a system call never
//     meets an unpopulated heap page under any trap backend; the host fills its page tables
//     only for the pages the program touches (host RSS = pages touched);
//   - handed out by range: a second vm_map without a pmap records which ranges are allocated
//     (a range allocator like vmem), so an allocation or a free never clips the real entry;
//   - freed by discarding: the range's contents go back to the host (it reads as zeros
//     afterwards) but stays mapped, so the number of host mappings is bounded by the windows
//     in use whatever the pattern of allocations and frees (vm.max_map_count).  Discards are
//     deferred while little has been freed (up to a quarter of the heap in use, 1-16 MiB): a
//     range handed out again first is zeroed where the host holds its pages, which is cheaper;
//   - trimmed by window: a window with no allocated range left is given back (vm_heap_trim).
//
// Two backings, chosen at init:
//   VM_HEAP_HOST   (the default under the shim) — the pages are the host's own anonymous
//     memory (pmap host_map; the entry is MAP_ENTRY_HOSTMEM).  The host's fork() shares them
//     copy-on-write, its kernel-mode accesses never fault into vmrt, and no vm_page record
//     exists per page.  vmrt keeps the map, the ranges, the windows and the accounting.
//   VM_HEAP_FRAMES — the pages are vmrt frames (physmem): the entry is MAP_ENTRY_SUPERPAGE
//     over an anonymous object, a window is one reservation (vm_reserv) entered lazily, and
//     the frames count against physmem's size.  A host fork copies the frames in use.
//   VM_HEAP_PAGED — the pages are vmrt frames of an anonymous object, demand paged: a window
//     is only a reservation, each page is zero-filled at first touch (fault-around), and the
//     pageout daemon may write it to swap and free its frame (vm_pageout.h).  Freed ranges
//     drop their pages and swap copies at once; a range that moves to grow takes its pages
//     with it (renamed, not copied).  What the shim uses when physical memory is bounded.
// A fault in a trimmed window: FRAMES populates it again through vm_fault; HOST refuses it
// (nothing is mapped there: the program gets SIGSEGV, as after munmap).
//
// Locking: every call takes the VM lock itself; none may be called with it held or from a
// signal handler.  No malloc.
#pragma once

#include "vm/vm_thread_safety.h"
#include "vm/vm_types.h"

namespace vmrt {

struct vmspace;
struct vm_object;

enum vm_heap_backing : std::uint8_t {
  VM_HEAP_HOST,    // host anonymous memory (pmap host_map)
  VM_HEAP_FRAMES,  // vmrt frames (physmem), one reservation per window
  VM_HEAP_PAGED,   // vmrt frames, demand paged and pageable (physical memory bounded)
};

// Create the heap: an entry of `size` bytes (rounded up to 2 MiB windows) in vs, with the
// given backing: 2 MiB aligned for frames (a window is one reservation), page aligned for
// host memory (its windows are 2 MiB apart from its base).  *base = its start.  KERN_FAILURE if a heap exists;
// KERN_NOT_SUPPORTED for VM_HEAP_HOST when the machine has no host memory ops;
// KERN_INVALID_ARGUMENT for a size of 0 or above 16 TiB; KERN_NO_SPACE if vs has no room;
// KERN_RESOURCE_SHORTAGE when out of map entries or objects.
kern_return_t vm_heap_init(vmspace* vs, vsize_t size, vm_heap_backing backing, vaddr_t* base);
// The same, placed at the first room at or above `hint` (vm_map_findspace).
kern_return_t vm_heap_init_at(vmspace* vs, vsize_t size, vm_heap_backing backing, vaddr_t hint, vaddr_t* base);
bool vm_heap_exists();
vm_heap_backing vm_heap_get_backing();
// Is there a heap, demand paged (VM_HEAP_PAGED)?  => takes the VM lock.
bool vm_heap_is_paged();

// Allocate a range of `size` bytes (page multiple) aligned to `align` (power of two,
// >= PAGE_SIZE).  Reads as zeros.  KERN_NO_SPACE when the arena has no such range,
// KERN_RESOURCE_SHORTAGE when out of frames or range records.
kern_return_t vm_heap_alloc(vsize_t size, vsize_t align, vaddr_t* out);
// The same for a caller that does not need zeros (kmem's large blocks for malloc, which
// the program will write): freed ranges still waiting to be discarded are handed out as
// they are, the program's own freed data in them and their pages still the host's, with
// no host call (vm_heap_alloc discards or zeroes them).  *zeroed: the range reads as zeros
// all the same (no freed range waiting lay inside).
kern_return_t vm_heap_alloc_any(vsize_t size, vsize_t align, vaddr_t* out, bool* zeroed);

// Strict commit shared with the program's pageable mmaps (a private writable mapping is
// charged when made, as Linux's overcommit_memory=2 charges it): the paged heap's ranges
// plus what is charged here never exceed physical memory plus swap.
//  => VM lock held.  vm_commit_charge: KERN_RESOURCE_SHORTAGE (nothing charged) when the
//     bytes do not fit.
kern_return_t vm_commit_charge(vsize_t bytes);
void vm_commit_uncharge(vsize_t bytes);
// Grow the range [addr, addr + oldsize) to newsize in place when the arena is free after
// it; else move it: a new range (at the start of a free slot four times its size, in the
// upper half of the arena, so that it can keep growing in place), the old one's contents
// copied (only pages the host holds: untouched pages stay untouched), the old range freed.  *out = its address.  The new tail
// reads as zeros.  On failure the range is unchanged.
kern_return_t vm_heap_resize(vaddr_t addr, vsize_t oldsize, vsize_t newsize, vaddr_t* out);
// Free [addr, addr + size) (a page-aligned part of an allocated range): its contents are
// discarded (host memory given back; the pages stay mapped and read as zeros) — with the
// next batch, once more than a quarter of the heap in use (1-16 MiB) waits (vm_heap_trim
// discards them all).
void vm_heap_free(vaddr_t addr, vsize_t size);
// Count the pages of [addr, addr + size) (part of an allocated range) that hold memory now
// (host memory under VM_HEAP_HOST, resident pages under VM_HEAP_PAGED; VM_HEAP_FRAMES
// cannot tell) and, when 1 to max_pages of
// them do, give that memory back: the range stays allocated and reads as zeros.  Returns
// the count (past max_pages, any larger value); ~0 when the pmap cannot tell (nothing
// given back).  => takes the VM lock.
vsize_t vm_heap_discard_sparse(vaddr_t addr, vsize_t size, vsize_t max_pages);
// Discard every freed range, then unmap every populated window with no allocated range
// left and free its frames.  Returns the pages freed.
vsize_t vm_heap_trim();

// Is frame f a heap page whose contents nobody needs (inside a freed range waiting to be
// discarded)?  A host fork child need not copy it.  (Always false under VM_HEAP_HOST.)  => VM lock held, or the process
// single-threaded (host fork child).
bool vm_heap_frame_unused(frame_t f) VMRT_REQUIRES(g_vm_lock);

// mlockall (runtime/rt_mlockall) under VM_HEAP_HOST: the next populated window at or after
// `from` ([*w, *we)); false when there is none (or the heap is not host memory).  And the
// lock new windows get when populated (MCL_FUTURE): 0, PMAP_HOST_LOCKED, or with
// PMAP_HOST_LOCK_ONFAULT.  Each takes the VM lock.
bool vm_heap_next_host_window(vaddr_t from, vaddr_t* w, vaddr_t* we);
void vm_heap_set_future_lock(unsigned pmap_host_lock_flags);

// For reports and checkers.
struct vm_heap_info {
  vaddr_t base;
  vsize_t size;
  vsize_t allocated;         // bytes in allocated ranges
  std::uint64_t windows;     // populated windows
  std::uint32_t ranges;      // range records (allocated runs after merging)
};
bool vm_heap_get_info(vm_heap_info* out);
// The heap's address range [*lo, *hi) (both 0 without a heap).  => VM lock held.
void vm_heap_range(vaddr_t* lo, vaddr_t* hi);
vm_object* vm_heap_object();  // null under VM_HEAP_HOST
struct vm_map;
vm_map* vm_heap_map();        // the map holding the heap (its vmspace's)

}  // namespace vmrt
