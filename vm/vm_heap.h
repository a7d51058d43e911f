// vm_heap.h — a process's heap: one pageable anonymous entry of its vmspace, handed out in
// page-granular ranges (the malloc arena), populated a 2 MiB reservation window at a time.
//
// 4.4BSD's kernel malloc draws wired pages from kmem_map (McKusick et al., The Design and
// Implementation of the 4.4BSD Operating System: "physical memory is allocated and is not
// paged").  A program's heap is different: memory it asks for and never touches must cost
// nothing, and freed memory must go back.  vmrt's heap is therefore
//   - one map entry (MAP_ENTRY_SUPERPAGE) over an anonymous object covering the whole arena,
//     so the heap is ordinary vmrt virtual memory: procstat shows it, vm_fault serves it;
//   - populated a reservation window (2 MiB, vm_reserv) at a time, entered lazily: the window
//     is one run of contiguous frames and one host mapping, and the host fills its page
//     tables only for the pages the program touches (host RSS = pages touched);
//   - handed out by range: a second vm_map without a pmap records which ranges are allocated
//     (a range allocator like vmem), so an allocation or a free never clips the real entry;
//   - freed by discarding: the range's frames give their host memory back (they read as
//     zeros afterwards) but stay mapped, so the number of host mappings is at most one per
//     populated window, whatever the pattern of allocations and frees (vm.max_map_count).
//     Discards are deferred while little has been freed (up to a quarter of the heap in
//     use, 1-16 MiB): a range handed out
//     again first is zeroed where the host holds its pages, which is cheaper;
//   - trimmed by window: a window with no allocated range left is unmapped and its frames
//     freed (vm_heap_trim).
// Windows are populated when a range is allocated, so system calls never meet an
// unpopulated heap page under any trap backend; a window dropped later (trim) is populated
// again by vm_fault when touched.
//
// Locking: every call takes the VM lock itself; none may be called with it held or from a
// signal handler.  No malloc.
#pragma once

#include "vm/vm_types.h"

namespace vmrt {

struct vmspace;
struct vm_object;

// Create the heap: an entry of `size` bytes (rounded up to 2 MiB windows) in vs, 2 MiB
// aligned.  *base = its start.  KERN_FAILURE if a heap exists; KERN_NO_SPACE if vs has no
// room; KERN_RESOURCE_SHORTAGE when out of map entries or objects.
kern_return_t vm_heap_init(vmspace* vs, vsize_t size, vaddr_t* base);
bool vm_heap_exists();

// Allocate a range of `size` bytes (page multiple) aligned to `align` (power of two,
// >= PAGE_SIZE).  Reads as zeros.  KERN_NO_SPACE when the arena has no such range,
// KERN_RESOURCE_SHORTAGE when out of frames or range records.
kern_return_t vm_heap_alloc(vsize_t size, vsize_t align, vaddr_t* out);
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
// Discard every freed range, then unmap every populated window with no allocated range
// left and free its frames.  Returns the pages freed.
vsize_t vm_heap_trim();

// Is frame f a heap page whose contents nobody needs (inside a freed range waiting to be
// discarded)?  A host fork child need not copy it.  => VM lock held, or the process
// single-threaded (host fork child).
bool vm_heap_frame_unused(frame_t f);

// For reports and checkers.
struct vm_heap_info {
  vaddr_t base;
  vsize_t size;
  vsize_t allocated;         // bytes in allocated ranges
  std::uint64_t windows;     // populated windows
  std::uint32_t ranges;      // range records (allocated runs after merging)
};
bool vm_heap_get_info(vm_heap_info* out);
vm_object* vm_heap_object();

}  // namespace vmrt
