// vm_phys.h — the buddy allocator over physmem frames (FreeBSD vm_phys.c).
//
// Free frames live in power-of-two blocks (orders 0 .. VM_NFREEORDER-1) on per-order
// lists, plus one "bump" region [bump, nframes) of frames never used since startup:
// their vm_page records are untouched (the page array is mapped lazily, so untouched
// records cost no memory) and their frames read as zeros.  Blocks are carved from the
// bump region only when the lists cannot serve a request, so startup is O(1).
//
// Locking: VM lock.  Page records of free frames: the head of a free block has
// queue == PQ_FREE and order == its order; the other records of the block are
// PQ_NONE.
#pragma once

#include "vm/vm_page.h"
#include "vm/vm_types.h"

namespace vmrt {

inline constexpr unsigned VM_NFREEORDER = 11;  // orders 0..10: blocks of 1 .. 1024 frames (4 MiB)
static_assert(VM_NFREEORDER >= 10, "reservations need order-9 blocks");

// Set up for nframes frames (all in the bump region).
void vm_phys_init(frame_t nframes) VMRT_REQUIRES(g_vm_lock);
// A block of 2^order frames, aligned to its size; records initialised (PQ_NONE, PG_ZERO
// kept as known).  Null when no block that large is free.
vm_page* vm_phys_alloc(unsigned order);
// n contiguous frames (any n >= 1); the excess of the power-of-two block goes back.
vm_page* vm_phys_alloc_contig(frame_t n);
// Free a block of 2^order frames at m (aligned), coalescing with free buddies.
void vm_phys_free(vm_page* m, unsigned order);
// Free an arbitrary run of frames [f, f + n) as maximal aligned blocks.
void vm_phys_free_run(frame_t f, frame_t n);
// Free frames held by the buddy lists and the bump region.
frame_t vm_phys_free_count() VMRT_REQUIRES(g_vm_lock);
// First frame of the never-used region.
frame_t vm_phys_bump() VMRT_REQUIRES(g_vm_lock);
// The same, read without the lock, for a hint: the region's start only grows (vm_phys_init
// aside), so a nonzero answer stays true; a zero one may miss a frame handed out meanwhile.
frame_t vm_phys_bump_unlocked();
// The machine's hook for the first frame handed out from an empty bump region
// (vm_phys_bump() == 0): runtime/physmem gives a fork child that inherited its parent's
// pool a pool of its own there (physmem_first_use).  False fails the allocation (null).
// Called with the VM lock held; no malloc.  Null (the default): nothing to do.
void vm_phys_set_first_use_hook(bool (*hook)());
// Is frame f the head of a free block (or in the bump region)?  Checker use.
bool vm_phys_frame_is_free(frame_t f) VMRT_REQUIRES(g_vm_lock);
// Is frame f inside a free block (or in the bump region)?  O(VM_NFREEORDER).
bool vm_phys_frame_in_free_block(frame_t f) VMRT_REQUIRES(g_vm_lock);
// Call fn(first, n, arg) for every free block on the buddy lists (not the bump region).
// fn may change page flags but not the lists.
void vm_phys_foreach_free_block(void (*fn)(frame_t first, frame_t n, void* arg), void* arg) VMRT_REQUIRES(g_vm_lock);

}  // namespace vmrt
