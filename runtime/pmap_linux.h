// pmap_linux.h — the pmap (vm/pmap.h) for a Linux host.
//
// A translation is a host mapping of physmem frames into the region:
// mmap(va, n*4096, prot, MAP_SHARED|MAP_FIXED, physmem memfd, frame*4096), one
// call per run of frame-contiguous pages, so contiguous object ranges (vm_reserv)
// become one host VMA.  Per region page the pmap keeps a software PTE (frame,
// protection, pv link) and the page's reservation (the accesses its map entry
// allows).  Non-resident pages are "reserved":
//   sigsegv backend:      anonymous PROT_NONE: every access traps into vmrt;
//   userfaultfd backend:  anonymous mapping with the entry's protection, registered
//                         with the userfaultfd (MISSING): allowed accesses, user or
//                         kernel mode, reach the handler thread; others SIGSEGV.
//
// enter fills the host page tables of each run at once (madvise(MADV_POPULATE_READ):
// shmem has no write-notify, so writable mappings get writable PTEs and the guest's first
// touch takes no host fault); enter_lazy (fork prefault) leaves them empty: a first access
// is a host minor fault the host resolves alone.
//
// pv lists: each vm_page's md holds the first region page mapping it; each PTE
// links to the next mapping of the same frame.  No separate allocation.
//
// Reference/modify emulation:
//   modified   = "entered writable since the last clear_modify" (conservative);
//                clear_modify write-protects every mapping, so the next write
//                faults into vm_fault, which re-enters the page writable.
//   referenced = set on every enter; ts_referenced clears it and removes every
//                mapping of the page, so the next access faults and sets it again.
//                Under userfaultfd with minor faults and paging, it drops the host PTEs
//                and keeps the VMAs (zapped pages), and page_protect(NONE) leaves stale
//                VMAs: no kernel access ever meets an instant without a mapping.
// Write protection (userfaultfd with write protection on shmem): a page of the API's
// vmspaces mapped read-only while its entry allows writes (copy-on-write) is mapped
// writable with its PTE write-protected through the userfaultfd, so a kernel-mode write
// (read(2) into the page) waits for the handler instead of getting EFAULT
// (pmap_linux_wp.cpp).  Elsewhere, and under sigsegv, such a page is
// mprotect'ed read-only and a kernel-mode write to it gets EFAULT.
//
// Locking: one spinlock (the pmap lock) guards PTEs, reservations, pv lists and
// page md bits; the VM lock is held by callers of every pmap_ops entry.
#pragma once

#include <cstddef>
#include <cstdint>

#include "vm/pmap.h"
#include "vm/vm_thread_safety.h"

namespace vmrt::rt {

// The operations table (pmap_set_machine_ops(&g_pmap_linux_ops) at boot).
extern const pmap_ops g_pmap_linux_ops;

// Map the software page tables for the region.  Once, after region_reserve.  `center`:
// where the heap will begin (its tables are laid out around it, pmap_linux.cpp), or 0 for
// the region's own order (boot under resource limits: kPmapBytesPer4k holds only then).
bool pmap_linux_init(vaddr_t center = 0);
// The host address space (all of it private, writable memory: RLIMIT_AS and RLIMIT_DATA)
// the pmap's tables take per page of region (boot's sizing for limits).
inline constexpr std::size_t kPmapBytesPer4k = 16;  // a chunk's 8 KiB block per 512 pages

// The userfaultfd the pmap registers reservations with, as its vm_fds handle (vm/vm_fds.h;
// -1: sigsegv backend); `minor`: it reports minor faults on shmem (UFFD_FEATURE_MINOR_SHMEM),
// so reference emulation and pageout can drop a page's PTE and keep its VMA (pmap_linux.cpp,
// "Reference tracking").
void pmap_linux_set_uffd(int fh, bool minor);
// The pageout daemon exists: pages are taken from the program while it runs.
void pmap_linux_set_paging();
// The userfaultfd handler's first step for a fault at va wanting `access`: true when the
// page is mapped with that access (a zapped page is mapped again and marked referenced;
// the caller wakes the waiters), false when vm_fault must resolve it.  May block briefly on
// the pmap lock; never on the VM lock.
bool pmap_linux_uffd_resolve(vaddr_t va, vm_prot_t access);
int pmap_linux_uffd();  // the handle given to pmap_linux_set_uffd

// The userfaultfd offers write protection on shmem: use it (see the header comment).  Once,
// after pmap_linux_set_uffd.
void pmap_linux_set_uffd_wp(bool wp);
// The handler could not resolve a write-protect fault at va: write-protect the page with
// mprotect instead, so the retried access traps (user mode) or gets EFAULT (kernel mode).
void pmap_linux_wp_refuse(vaddr_t va);
// True when va is mapped with every access in `access` (lock-free hint).
bool pmap_linux_allows(vaddr_t va, vm_prot_t access);
// True when an access to va with `access` takes no fault at all: mapped with that access,
// its host PTE in place (not zapped) and, for writes, not write-protected through the
// userfaultfd.  Exact while the VM lock is held (pageout and reference scans change it only
// under that lock); a hint otherwise.
bool pmap_linux_ready(vaddr_t va, vm_prot_t access);
// Is a write to va vmrt's to serve: a page of a vmspace entry reserved writable, not host
// memory?  (Lock-free hint.)
bool pmap_linux_serves_write(vaddr_t va);
// Reservation protection of the page at va (lock-free hint).
vm_prot_t pmap_linux_reservation(vaddr_t va);
// The userfaultfd thread could not resolve va: make the page PROT_NONE (if still not
// resident) so a user access traps through SIGSEGV and a kernel access gets EFAULT.
void pmap_linux_refuse(vaddr_t va);
// Window teardown: assert nothing is mapped in [sva, eva), reset reservations to holes.
void pmap_linux_reset(vaddr_t sva, vaddr_t eva);
// Fork child (userfaultfd backend): register every reservation with the new uffd.
void pmap_linux_reregister();
// Host memory (pmap_ops host_map) beyond what the VM's table offers, for the program's own
// mappings (runtime/rt_mmap).  Each returns 0 or the host's errno (nothing changed then).
// protect: mprotect pages that are all host memory.
int pmap_linux_host_protect(vaddr_t sva, vaddr_t eva, vm_prot_t prot);
// adopt: [sva, eva) was just mapped by a host call made for the program (a file mapping
// placed in the mmap area, pages an mremap moved there): it is host memory from now on.
void pmap_linux_host_adopt(vaddr_t sva, vaddr_t eva, vm_prot_t prot, bool shared);
// grow: extend host memory [addr, addr + oldsize) in place to newsize over free pages.
int pmap_linux_host_grow(vaddr_t addr, vsize_t oldsize, vsize_t newsize);
// shared: is the host memory page at va shared (MAP_SHARED) memory?
bool pmap_linux_host_shared(vaddr_t va);
// punch / unpunch: take the empty reservation [sva, eva) (no host memory, nothing
// resident) off the host for one host call that must see a real hole there, as Linux
// would (rt_mmap: mlock stops at a hole without touching what follows); EBUSY (nothing
// done) when a page of it is not an empty reservation.  unpunch puts it back unless
// something else was mapped there meanwhile (then it stays: the host's).
int pmap_linux_host_punch(vaddr_t sva, vaddr_t eva);
void pmap_linux_host_unpunch(vaddr_t sva, vaddr_t eva);
// ---- copy-on-write host fork of frames (runtime/physmem_cow.h) -----------------------------
// Write protection through the userfaultfd on shmem is there: a fork may share frames.
bool pmap_linux_cow_capable();
// Parent, fork set-up, VM and pmap locks held: write-protect through the userfaultfd every writable,
// unwired resident page of the heap [heap_lo, heap_hi) (a write, user or kernel mode, waits
// for the handler, which pushes: pmap_linux_cow_write); push every other resident frame at
// once (the VM's own memory, wired pages, the program's own mappings: see pmap_linux_fork.cpp).
// False when the host refused a registration (the caller copies instead).
bool pmap_linux_cow_protect(vaddr_t heap_lo, vaddr_t heap_hi) VMRT_REQUIRES(g_vm_lock);
// Parent, fork set-up, pmap lock held: the pages glibc's fork writes after vmrt's handler
// (rt_fork_prefault): pushed now and writable again, so the forking thread never waits.
void pmap_linux_cow_release(const vaddr_t* pages, std::size_t n);
// Handler, a write-protect fault at va: when the page's frame is pending for a child, push
// it, and when the VM lets the page be written, lift the write protection.  True when
// the waiter may be woken (nothing for vm_fault to do).  Takes the pmap lock.
bool pmap_linux_cow_write(vaddr_t va);
// Fork child, SIGBUS in the set-up window at va: pull the frame mapped there.  True when
// served.  Lock-free (the child is single-threaded then); async-signal-safe.
bool pmap_linux_cow_fault(vaddr_t va);
// Fork child: register every frame mapping of the region with the SIGBUS-mode userfaultfd
// `fd` for missing pages.  False when the host refused one (or /proc/self/maps).
bool pmap_linux_cow_register_boot(int fd);

// Number of resident pages in [sva, eva) (tests, reports).
std::size_t pmap_linux_resident(vaddr_t sva, vaddr_t eva);

}  // namespace vmrt::rt

namespace vmrt::rt {
// Host fork: hold the pmap lock across fork(); parent releases, child resets it.
// `replaced`: the child's frame mappings were replaced by its own memfd's (a fork that
// shared or copied frames), so every mapped page lacks its host PTE until first touched.
void pmap_linux_fork_prepare();
void pmap_linux_fork_parent();
void pmap_linux_fork_child(bool replaced);
}  // namespace vmrt::rt
