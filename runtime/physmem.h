// physmem.h — the frame pool: one memfd ("vmrt-physmem"), one vm_page per 4 KiB
// frame, and the direct map (one MAP_SHARED mapping of the whole memfd) through
// which the VM fills, copies and zeroes frames.  Guest addresses map frames with
// MAP_SHARED|MAP_FIXED mmaps of the same memfd (runtime/pmap_linux).
#pragma once

#include <cstddef>

#include "vm/vm_types.h"

namespace vmrt::rt {

// Create the memfd of `bytes` (rounded down to pages), the direct map, and the page
// array (vm_page_startup).  Once, at boot.  False with a message on failure.
// Sets the free-frame cache limit (vm_page_cache_set_limit): VMRT_FRAME_CACHE=<size>
// (suffixes K/M/G; 0 = release every freed frame at once), default min(physmem / 4, 1 GiB).
bool physmem_init(std::size_t bytes, std::size_t frame_cache);
int physmem_fd();
frame_t physmem_nframes();
// The frame's bytes in the direct map.
inline char* physmem_frame(frame_t f);

// Zero n frames: memset through the direct map (frames that need zeroing are cached frames,
// host-resident: cheaper than punching and re-faulting fresh host pages).
void physmem_zero(frame_t f, std::size_t n);
// Give the host memory of n frames back (punch a hole); they read as zeros afterwards.
void physmem_release(frame_t f, std::size_t n);
// Host bytes currently allocated to physmem (st_blocks), for reports.
std::size_t physmem_host_bytes();

// Host fork, in the child, single-threaded: create a new memfd, copy every allocated
// extent of the old one (SEEK_DATA/SEEK_HOLE) except free frames (vm_page_frame_free: the
// free-frame cache is not copied), and replace every mapping of the old
// memfd in this process (the direct map and every pmap mapping, found in
// /proc/self/maps) by the same range of the new one, with the same protection.
//  => no malloc; returns false (with a message) if the host refuses.
bool physmem_fork_child();

extern char* g_direct_map;
inline char* physmem_frame(frame_t f) { return g_direct_map + (static_cast<std::size_t>(f) << PAGE_SHIFT); }

}  // namespace vmrt::rt
