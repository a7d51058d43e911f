// physmem.h — the frame pool: one memfd ("vmrt-physmem"), one vm_page per 4 KiB
// frame, and the direct map (one MAP_SHARED mapping of the whole memfd) through
// which the VM fills, copies and zeroes frames.  Guest addresses map frames by
// duplicating direct-map pages (mremap with old size 0, runtime/pmap_linux), so no
// descriptor is needed once the direct map exists: the memfd is closed once mapped and the
// program never sees a vmrt descriptor (issue 14).  A host fork gets a new memfd, made
// in the parent before fork() and closed in the child once its mappings are replaced.
// Until the first frame is handed out there is no memfd at all (physmem_first_use).
#pragma once

#include <cstddef>
#include <cstdint>

#include "vm/vm_thread_safety.h"
#include "vm/vm_types.h"

namespace vmrt::rt {

// Reserve the direct map's address range for `bytes` (rounded down to pages) and map the
// page array (vm_page_startup).  Once, at boot.  The memfd itself is made when the first
// frame is handed out (physmem_first_use): most processes never use one.  False with a
// message on failure (nothing of physmem is left mapped or open).
// Sets the free-frame cache limit (vm_page_cache_set_limit): VMRT_FRAME_CACHE=<size>
// (suffixes K/M/G; 0 = release every freed frame at once), default min(physmem / 4, 1 GiB).
bool physmem_init(std::size_t bytes, std::size_t frame_cache);
frame_t physmem_nframes();
std::size_t physmem_bytes();
// The frame's bytes in the direct map.
inline char* physmem_frame(frame_t f);

// Zero n frames: memset through the direct map (frames that need zeroing are cached frames,
// host-resident: cheaper than punching and re-faulting fresh host pages).
void physmem_zero(frame_t f, std::size_t n);
// Give the host memory of n frames back (punch a hole); they read as zeros afterwards.
void physmem_release(frame_t f, std::size_t n);
// Write len bytes at byte offset off of the physmem memfd behind vm_fds handle h (this
// process's, or a copy-on-write fork child's) with pwrite: one page-cache write, so a
// concurrent fault on those pages, in any process, waits for it and never maps a page half
// filled.  (A store through a mapping makes the page visible at its first byte, before the
// rest is in: physmem_cow.h.)  src must be mapped, e.g. a buffer the caller has just
// written: the host copies with page faults disabled, and a copy that faults hands the page
// over zero-filled and up to date before the write is retried.  Under a soft RLIMIT_FSIZE
// below the write's end it goes through the limit (fsize_room).  True when every byte was
// written, else false with errno.  Safe in the fault handler and in a signal handler; no
// malloc.
bool physmem_write(int h, const void* src, std::size_t len, std::size_t off);
// Host bytes currently resident in physmem (mincore over the direct map), for reports.
std::size_t physmem_host_bytes();

// ---- host fork ------------------------------------------------------------------------
// What obtaining the child's physmem in the parent can run out of.
enum class fork_setup : std::uint8_t { ok, no_descriptor, no_memory, file_size };
inline constexpr const char* kForkSetupNames[] = {"ok", "no descriptor", "no memory",
                                                  "RLIMIT_FSIZE below physmem"};
static_assert(sizeof(kForkSetupNames) / sizeof(kForkSetupNames[0]) == 4);

// Parent, VM lock held (the set of frames in use is stable): make sure the child's memfd
// exists and has host memory for every frame in use below the allocation high-water mark
// (fallocate), so the child only copies and remaps.  Idempotent: a memfd reserved
// earlier is kept and topped up.  No malloc.
fork_setup physmem_fork_reserve() VMRT_REQUIRES(g_vm_lock);
// Parent, fork set-up (VM and pmap locks held), after physmem_fork_reserve: share the
// frames in use copy-on-write with the child (runtime/physmem_cow.h) when the trap backend
// allows, else obtain host memory for the copy as physmem_fork_reserve does without it.
// `pages` (rt_fork_prefault) are written by glibc's fork after vmrt's handler: they are
// given to the child at once and stay writable.
fork_setup physmem_fork_share(const vaddr_t* pages, std::size_t npages) VMRT_REQUIRES(g_vm_lock);
// Parent after fork() (or when the fork is abandoned): close the reserved memfd.
void physmem_fork_release() VMRT_REQUIRES(g_vm_lock);
// Child, single-threaded, VM lock state inherited: copy every frame in use into the
// reserved memfd (pwrite from the direct map: no extra mapping, so nothing is charged to
// RLIMIT_AS), replace every mapping of the old memfd in this process (the direct map and
// every pmap mapping, found in /proc/self/maps) by the same range of the new one with the
// same protection, and close the memfd.  False (with a message) when any step failed:
// the child must not run (runtime_fork_child exits it).  No malloc.
bool physmem_fork_child() VMRT_REQUIRES(g_vm_lock);

// Lazy fork: a process that has handed out no frame (vm_phys_bump() == 0) forks without
// any of the above: the child maps a PROT_NONE reservation over the direct map (unless it
// still is one: physmem_fork_child_unused) and makes its own memfd when it hands out its first frame
// (physmem_first_use, vm_phys's first-use hook).  Most forking programs (shells, git, make)
// never use a frame: the heap is host memory unless VMRT_HEAP says otherwise.
//  => no lock needed: a hint (vm_phys_bump_unlocked); exact with the VM lock held or in the
//     fork child's only thread.
bool physmem_in_use();
void physmem_fork_child_unused();
// vm_phys's first-use hook: a process with no memfd of its own behind the direct map (at
// boot, or a lazy fork's child) makes one and maps it over the reservation, then checks
// that direct-map pages can be duplicated (mremap with old size 0, how pmap maps frames).
// True when the pool is usable; false (with a message, the frame allocation fails) when
// the host refused any of it.  VM lock held; no malloc.
bool physmem_first_use();

// Run make(arg) (an fd, or -1 with errno).  When it fails with EMFILE/ENFILE because the
// program's descriptor table is full up to its soft RLIMIT_NOFILE, and the hard limit is
// higher, the soft limit is raised by a few descriptors for that one call and then put
// back: vmrt's short-lived descriptors (fork's memfd and pipe) do not fail where the
// program's own fork would not.  Returns the fd or -1 (errno from make).  No malloc.
int fd_with_room(int (*make)(void*), void* arg);

// Undo physmem_init after a later boot step failed (the VM is abandoned for stage 0).
void physmem_abandon();

extern char* g_direct_map;
inline char* physmem_frame(frame_t f) { return g_direct_map + (static_cast<std::size_t>(f) << PAGE_SHIFT); }

}  // namespace vmrt::rt
