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
// The child's pmap gets the parent's resident pages of every copy-on-write entry entered
// read-only (one enter per frame-contiguous run, like the host kernel copying PTEs), so
// child reads take no fault and child writes are protection faults (in the faulting
// thread under every trap backend); mincore and object residency are unchanged by it.
kern_return_t vmspace_fork(vmspace* parent, pmap* child_pm, vmspace** out);

// Tunables (tests flip them to compare paths).
struct vmspace_tunables {
  bool fork_prefault = true;  // enter COW pages read-only into the child at vmspace_fork
};
extern vmspace_tunables g_vmspace_tunables;

// The mmap family.  Validation follows Linux: zero length, unaligned addr, ranges outside
// [min, max), exactly-one-of PRIVATE/SHARED, prot beyond maxprot.
//
// Status -> errno (what Linux gives for the same arguments; runtime/vmrt_api.cpp's tables):
//
//   call        condition                                       status                  errno
//   vm_mmap     len == 0; both/neither PRIVATE|SHARED; offset    KERN_INVALID_ARGUMENT   EINVAL
//               or FIXED/NOREPLACE addr unaligned; prot bits
//               len rounds past the end; FIXED range outside     KERN_NO_SPACE           ENOMEM
//               [min,max); no free range of len anywhere
//               prot beyond maxprot                              KERN_NO_ACCESS          EACCES
//               NOREPLACE and something is mapped there          KERN_ALREADY_EXISTS     EEXIST
//               out of entries / objects                         KERN_RESOURCE_SHORTAGE  ENOMEM
//               (a hint that does not fit is ignored: first fit from the hint, then from min)
//   vm_munmap   addr unaligned; len == 0; range outside [min,max) KERN_INVALID_ARGUMENT  EINVAL
//               nothing mapped there                             KERN_SUCCESS            0
//   vm_mprotect addr unaligned; unknown prot bits                KERN_INVALID_ARGUMENT   EINVAL
//               len == 0                                         KERN_SUCCESS            0
//               hole in range / outside [min,max) / submap       KERN_INVALID_ADDRESS    ENOMEM
//                 (checked first: nothing is changed, where Linux changes the part
//                  before the hole)
//               prot beyond some entry's max_protection          KERN_NO_ACCESS          EACCES
//   vm_madvise  addr unaligned; unknown advice                   KERN_INVALID_ARGUMENT   EINVAL
//               DONTNEED/FREE on mlocked memory; FREE on shared  KERN_INVALID_ARGUMENT   EINVAL
//               len == 0                                         KERN_SUCCESS            0
//               holes (advice applied to the mapped parts)       KERN_INVALID_ADDRESS    ENOMEM
//   vm_mincore  addr unaligned                                   KERN_INVALID_ARGUMENT   EINVAL
//               len == 0                                         KERN_SUCCESS            0
//               hole / outside                                   KERN_INVALID_ADDRESS    ENOMEM
//   vm_minherit addr unaligned; inherit > ZERO                   KERN_INVALID_ARGUMENT   EINVAL
//               hole / outside                                   KERN_INVALID_ADDRESS    ENOMEM
//   vm_mlock    (addr need not be aligned; the range is widened to pages, like Linux)
//               len == 0                                         KERN_SUCCESS            0
//               hole / outside / PROT_NONE entry                 KERN_INVALID_ADDRESS    ENOMEM
//               out of frames while wiring                       KERN_RESOURCE_SHORTAGE  EAGAIN
//               a file page past the end / unreadable            KERN_PAGER_ABSENT /     ENOMEM
//                 (Linux: populating faults, EFAULT -> ENOMEM)   KERN_MEMORY_ERROR
//   vm_munlock  hole / outside                                   KERN_INVALID_ADDRESS    ENOMEM
//
// Semantics worth knowing: MADV_DONTNEED / MADV_FREE on private memory make the range read
// zeros on the next touch (FREE is served eagerly, like DONTNEED); on shared memory they
// only drop the mappings (the pages stay, like Linux shmem).  mlock breaks copy-on-write
// on private writable memory (like Linux) and wires one page per page; a fork copies wired
// private memory eagerly for the child.  Protection raised with mprotect needs no pmap
// work (pages fault in with the new rights); copy-on-write pages stay read-only in the
// pmap until written.
kern_return_t vm_mmap(vmspace* vs, const vm_mmap_request& req, vaddr_t* out);
kern_return_t vm_munmap(vmspace* vs, vaddr_t addr, vsize_t len);
kern_return_t vm_mprotect(vmspace* vs, vaddr_t addr, vsize_t len, vm_prot_t prot);
kern_return_t vm_madvise(vmspace* vs, vaddr_t addr, vsize_t len, vm_advice_t advice);
// MADV_WILLNEED as Linux serves it on anonymous memory: the paged-out pages of
// [addr, addr + len) (clamped to the map) are read back now; nothing else is touched
// (vm_map_willneed_locked).  Returns page-ins started.  => VM lock not held; may sleep.
std::uint64_t vm_willneed_pageout(vmspace* vs, vaddr_t addr, vsize_t len);
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
