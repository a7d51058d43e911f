// physmem_cow.h — copy-on-write host fork of physmem frames.
//
// A host fork of a process whose memory is in frames (paging, VMRT_HEAP=frames) gives the
// child a memfd of its own.  Without this file the child copies every frame in use into it
// before it runs.  With it the child's memfd starts empty and each frame reaches it once,
// when it is needed — the 4.4BSD vmspace_fork's copy-on-write (McKusick et al., ch. 5.6),
// across two host processes that cannot change each other's mappings:
//
//   - The parent keeps its memfd.  Before it changes a frame that was in use at the fork
//     it "pushes" the frame: writes it into the child's memfd (pwrite on a descriptor of it
//     the parent keeps).  Its writable mappings of such frames are write-protected
//     through the userfaultfd at the fork, so a write (user or kernel mode) waits for the
//     handler, which pushes; the VM's own writes through the direct map push first
//     (pmap_linux's zero/copy/release/page_address hooks).
//   - The child maps its empty memfd everywhere the parent's was, keeps a read-only view of
//     the parent's memfd (the source view), and "pulls" a frame on its first access: a
//     missing-page fault on the new memfd copies the frame from the source view.
//   - Both write a frame into the child's memfd with pwrite from a buffer (physmem_write),
//     never with stores through a mapping: a page of the memfd exists from the first store
//     on, and a touch of a page that exists does not fault, so another thread of the child
//     read a page the push or pull had only begun to fill (zeros; kmem then found its free
//     lists "modified after free").  The write fills the page before any fault can map it.
//
// One byte per frame, in memory both share (the fork record), says who copied it:
//   COW_CLEAN    nothing to do (not in use at the fork, or already copied, or overwritten)
//   COW_PENDING  in use at the fork, in neither memfd's copy yet
//   COW_PUSHING  the parent is copying it into the child's memfd
//   COW_PULLING  the child has read it and is copying it into its own memfd
// The child reads the source frame into a buffer BEFORE it claims the frame (PENDING ->
// PULLING): a successful claim proves the parent had not started to push, and the parent
// writes its frame only after its own claim failed or its push finished, so the bytes
// read are the bytes of the fork.  The parent never waits for the child; the child waits
// for a parent's push in flight only (and takes over if the parent died meanwhile).
//
// A parent keeps up to kCowChildren records (a child's record goes when the child has
// exited or everything was copied; the oldest is completed when a fork finds them full).
// A child that forks while it still pulls from its parent pulls everything first.
// Availability: the userfaultfd backend with write protection on shmem (Linux 5.19);
// anything else copies at the fork as before (physmem.cpp).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <sys/types.h>

#include "vm/vm_thread_safety.h"
#include "vm/vm_types.h"

namespace vmrt::rt {

enum cow_state : std::uint8_t { COW_CLEAN = 0, COW_PENDING = 1, COW_PUSHING = 2, COW_PULLING = 3 };

inline constexpr unsigned kCowChildren = 4;

// Any record (as parent or as child) is live: the hooks have work to look at.  A hint read
// without locks by the hooks' fast path; changed with the VM and pmap locks held.
extern std::atomic<bool> g_cow_live;

// ---- parent: fork set-up (VM and pmap locks held) -----------------------------------------
// VMRT_FORK_COW=0 says no (read by the trap backend's start, never under the fork's locks).
void physmem_cow_allow(bool allow);
// May this fork share frames instead of copying them?  (The trap backend's userfaultfd has
// write protection on shmem and VMRT_FORK_COW does not say no.)  `used` frames in use.
bool physmem_cow_wanted(std::size_t used);
// Make the record and the child view for a child whose memfd is `child_fd`, mark every frame
// in use PENDING and write-protect every writable mapping of them (pmap_linux_cow_protect).
// False (nothing changed) when the host refused memory or a mapping: the caller copies.
bool physmem_cow_prepare(int child_fd) VMRT_REQUIRES(g_vm_lock);
// After fork(): the new record belongs to `pid` (> 0); pid <= 0: the fork failed, the
// record goes.
void physmem_cow_parent(pid_t pid);

// ---- child: in the fork child's physmem set-up, single-threaded ----------------------------
// Keep a read-only view of the parent's memfd (the direct map as it is now) as the source of
// pulls, drop the parent's other records.  Before physmem's mappings are replaced.
bool physmem_cow_child_begin();
// The source view's address (physmem_fork_child leaves that mapping of the old memfd alone).
const void* physmem_cow_source_view();
// After the replacement: until the userfaultfd handler runs, a first touch of a pending
// frame through a program mapping raises SIGBUS (a userfaultfd of its own in SIGBUS mode),
// which the fault handler serves by pulling (physmem_cow_fault).
void physmem_cow_child_ready();
// The child's handler userfaultfd takes over (pmap_linux_reregister): the SIGBUS-mode one
// is closed.
void physmem_cow_child_handover();
// Is the range a frame mapping the SIGBUS-mode userfaultfd watches (the rereg code moves it).
int physmem_cow_boot_uffd();

// ---- hooks ------------------------------------------------------------------------------------
// The bytes of frames [f, f + n) are about to be read (child: pull) or changed in part
// (parent: push; child: pull).  No lock needed; never sleeps except to wait for a push in
// flight in the other process.
void physmem_cow_touch(frame_t f, std::size_t n, bool write);
// Frames [f, f + n) are about to be overwritten whole or released: the parent pushes, the
// child claims them without copying.
void physmem_cow_overwrite(frame_t f, std::size_t n);
// Is frame f waiting for a push to any child (parent) / for a pull (child)?
bool physmem_cow_pending(frame_t f);
// SIGBUS at a program address whose frame is pending (the child's set-up window): pull it.
// True when served.  Async-signal-safe.
bool physmem_cow_fault(vaddr_t va);

// A child that still pulls is about to fork: pull every pending frame first.
void physmem_cow_complete_source();

}  // namespace vmrt::rt
