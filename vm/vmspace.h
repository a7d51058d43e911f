// vmspace.h — an address space: a vm_map plus its pmap, and the mmap-level calls
// on it (FreeBSD vm_mmap.c / vm_map.c entry points, NetBSD uvm_mmap.c).
//
// Every call here:
//  => takes the VM lock itself (callers hold no VM lock);
//  => returns a kern_return_t; the API edge (runtime/vmrt_api.cpp) turns it into
//     the errno Linux would give for the same arguments (see the table there);
//  => never touches guest memory (contents are filled through the direct map).
#pragma once

#include "vm/pmap.h"
#include "vm/vm_types.h"

namespace vmrt {

struct vmspace;  // vm/vmspace.cpp: { vm_map map; pmap* pm; counters; ... }
struct vm_object;

// vm_mmap flags: the MI meaning of the host MAP_* flags (translated at the API edge).
enum vm_mmap_flags : std::uint32_t {
  VM_MMAP_PRIVATE = 0x0001,    // copy-on-write private mapping
  VM_MMAP_SHARED = 0x0002,     // shared mapping (writes visible to every sharer, and forks)
  VM_MMAP_FIXED = 0x0004,      // exactly at addr, replacing what is there
  VM_MMAP_NOREPLACE = 0x0008,  // exactly at addr, KERN_ALREADY_EXISTS if anything is there
  VM_MMAP_POPULATE = 0x0010,   // make every page resident now
  VM_MMAP_NORESERVE = 0x0020,  // no swap reservation (accounting only)
  VM_MMAP_GROWSDOWN = 0x0040,  // stack: entry grows down on faults below it
};

struct vm_mmap_request {
  vaddr_t addr;          // hint, or the exact address with FIXED/NOREPLACE
  vsize_t len;           // bytes, > 0 (rounded up to pages)
  vm_prot_t prot;        // initial protection
  vm_prot_t maxprot;     // max_protection (VM_PROT_ALL for anonymous memory)
  std::uint32_t flags;   // vm_mmap_flags; exactly one of PRIVATE / SHARED
  vm_object* object;     // null: anonymous memory; else mapped with a new reference
  vm_ooffset_t offset;   // byte offset into object, page aligned
};

// Create an empty vmspace covering [min, max) whose translations go through pm.
//  => min/max page aligned, min < max; pm outlives the vmspace.
kern_return_t vmspace_create(vaddr_t min, vaddr_t max, pmap* pm, vmspace** out);
// Destroy: remove every entry (dropping object references), then free the vmspace.
void vmspace_destroy(vmspace* vs);
vaddr_t vmspace_min(const vmspace* vs);
vaddr_t vmspace_max(const vmspace* vs);
pmap* vmspace_pmap(vmspace* vs);

// Fork (FreeBSD vmspace_fork): a new vmspace over child_pm covering a range of the same
// size, whose entries follow inheritance: SHARE shares the object, COPY makes both sides
// copy-on-write (needs-copy; resident pages write-protected in the parent), NONE leaves a
// hole, ZERO gives fresh zero-fill memory.  The child's addresses are the parent's shifted
// by (child_pm->min - parent min).
kern_return_t vmspace_fork(vmspace* parent, pmap* child_pm, vmspace** out);

// The mmap family.  Validation follows Linux: zero length, unaligned addr, ranges outside
// [min, max), exactly-one-of PRIVATE/SHARED, prot beyond maxprot.
kern_return_t vm_mmap(vmspace* vs, const vm_mmap_request& req, vaddr_t* out);
kern_return_t vm_munmap(vmspace* vs, vaddr_t addr, vsize_t len);
kern_return_t vm_mprotect(vmspace* vs, vaddr_t addr, vsize_t len, vm_prot_t prot);
kern_return_t vm_madvise(vmspace* vs, vaddr_t addr, vsize_t len, vm_advice_t advice);
// mincore: vec[i] bit 0 = page i resident (in this map's object chain, mapped or not).
kern_return_t vm_mincore(vmspace* vs, vaddr_t addr, vsize_t len, std::uint8_t* vec);
kern_return_t vm_minherit(vmspace* vs, vaddr_t addr, vsize_t len, vm_inherit_t inherit);
// mlock: fault in and wire every page (wire_count++); munlock undoes it.
kern_return_t vm_mlock(vmspace* vs, vaddr_t addr, vsize_t len);
kern_return_t vm_munlock(vmspace* vs, vaddr_t addr, vsize_t len);

// Reports written with write(2) to fd: procstat -v for the vmspace; consistency check
// (0 errors -> KERN_SUCCESS; else KERN_FAILURE and the first violation written to fd).
void vmspace_report_procstat(const vmspace* vs, int fd);
kern_return_t vmspace_check(const vmspace* vs, int fd);

}  // namespace vmrt
