// vm_kern.h — the kernel's own address space and its kmem submap (4.4BSD vm_kern.c).
//
// The kernel vmspace covers a window of the region; kmem_map is a submap of it
// that kmem (the 4.4BSD malloc) draws whole pages from.  kmem pages are wired:
// allocated, zeroed and mapped when handed out, never paged (seed 001), so the
// program and the host kernel can use them without ever faulting into vmrt.
#pragma once

#include "vm/vm_thread_safety.h"
#include "vm/vm_types.h"

namespace vmrt {

struct vmspace;

// Create kmem_map, a submap of `size` bytes inside the kernel vmspace.
//  => once, at boot, before any kmem_alloc_wired; returns its range in *base.
kern_return_t kmem_submap_init(vmspace* kernel_vs, vsize_t size, vaddr_t* base);

// Allocate `size` bytes (page multiple) of wired, zeroed, mapped memory in kmem_map,
// aligned to `align` bytes (power of two, >= PAGE_SIZE).
//  => takes the VM lock; no malloc.  Physically contiguous frames when possible, so the
//     host mapping is one VMA.
//  => KERN_NO_SPACE when kmem_map is full, KERN_RESOURCE_SHORTAGE when out of frames.
kern_return_t kmem_alloc_wired(vsize_t size, vsize_t align, vaddr_t* out);
// Grow the wired block [addr, addr + oldsize) to newsize (page multiples, newsize > oldsize)
// without copying its contents: in place when kmem_map is free after it, else by moving its
// frames to a new range (renamed in the kmem object, remapped; the old range becomes free),
// as UVM's page transfer.  The new tail is zeroed.  *out = the block's address.
//  => takes the VM lock.  KERN_NO_SPACE / KERN_RESOURCE_SHORTAGE leave the block unchanged
//     where it was (a failed move is rolled back).
kern_return_t kmem_resize_wired(vaddr_t addr, vsize_t oldsize, vsize_t newsize, vaddr_t* out);
// Free [addr, addr + size): unmap, unwire, release the frames to the host.
//  => the range was returned by kmem_alloc_wired (any page-aligned sub-range of one).
void kmem_free_wired(vaddr_t addr, vsize_t size);

// The object behind every kmem page (it holds one reference of its own) and the submap;
// for checkers and reports.  Null before kmem_submap_init.
struct vm_object;
struct vm_map;
vm_object* kmem_object();
vm_map* kmem_map() VMRT_REQUIRES(g_vm_lock);

}  // namespace vmrt
