// swap_pager.h — the swap device and the swap pager (McKusick et al., The Design and
// Implementation of the 4.4BSD Operating System, "The Swap Pager"; FreeBSD swap_pager.c).
//
// The device is a host file (a private temporary file by default) cut into page-sized
// slots; after a host fork, several (swap_pager_fork_prepare).  Slots are handed out from a bitmap, next fit, as contiguous runs so that a cluster
// of adjacent dirty pages is one write and a cluster of adjacent pages one read.  Each slot
// carries an xxHash (XXH3-64) checksum of the page written there, checked on every page-in:
// a mismatch is VM_PAGER_BAD (the fault becomes a machine-check trap naming the page), never
// wrong data.  A page that reads as zeros takes no slot at all: its record says "zero".
//
// Per object, the pager keeps one record per stored page index in the object's pager_meta
// radix (the same radix trie that holds resident pages).  Records die with their pages
// (free_range: unmap, MADV_DONTNEED, a write to a clean page-in, object termination) and
// move with them on collapse.
//
// Locking: the device's bitmap and every object's records => the VM lock.  The data I/O runs
// without it when the caller allows (vm_pager.h).
#pragma once

#include <cstdint>

#include "vm/vm_thread_safety.h"
#include "vm/vm_types.h"

namespace vmrt {

struct vm_object;

// Open the swap device: `path` (created if absent; its previous contents are ignored), or
// with path null a private unlinked file in `dir` ($TMPDIR, else /var/tmp when dir is
// null).  `bytes` is rounded down to whole pages (at least one cluster).
//  => boot: no paging in progress; takes the VM lock.  KERN_INVALID_ARGUMENT for a size below one cluster,
//     KERN_FAILURE when the file cannot be made (errno says why).
kern_return_t swap_pager_init(const char* path, const char* dir, std::uint64_t bytes);
// Is a swap device configured?
bool swap_pager_active();

struct swap_pager_info {
  std::uint64_t slots;       // page slots on the device
  std::uint64_t used;        // slots holding a page
  std::uint64_t zero_pages;  // stored pages that took no slot (read as zeros)
  int fd;                    // the device new pageouts go to, -1 until made (tests corrupt it)
};
void swap_pager_get_info(swap_pager_info* out) VMRT_REQUIRES(g_vm_lock);

// The slot that holds obj's page at pindex; -1 when none (not stored, or stored as zeros).
//  => VM lock held.
std::int64_t swap_pager_slot_of(vm_object* obj, vm_pindex_t pindex);

// Host fork: the two sides must not write one device (each hands out slots from its own
// copy of the bitmap).  prepare (=> VM lock held, as across the fork) freezes the own device
// when pages are on it: both sides go on reading their pages from it, neither writes it
// again, and each makes a new own device at its next pageout; no slot is copied.  A device
// with none of our pages stays the parent's (the child closes it).  When kMaxDevices files
// are open, prepare first merges the idle frozen ones into one (copy_file_range).  False when
// that merge failed: fork should fail.
bool swap_pager_fork_prepare();
void swap_pager_fork_parent() VMRT_REQUIRES(g_vm_lock);
void swap_pager_fork_child() VMRT_REQUIRES(g_vm_lock);

}  // namespace vmrt
