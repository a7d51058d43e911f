// shim_rtld.h — recognising blocks from ld.so's minimal malloc.
//
// Before the dynamic loader switches to the real malloc (ours, once relocation
// is done) it allocates link maps, search paths, the main thread's static TLS
// and DTV from its own minimal bump allocator (glibc elf/dl-minimal-malloc.c):
// first the tail of ld.so's last writable page, then anonymous mmaps.  Such a
// block may later reach free() or realloc().  The shim must neither abort nor
// pass it to kmem, and must still abort for every other foreign pointer.
//
// The ranges minimal malloc can have used:
//   - ld.so's own writable segment (minimal malloc starts at ld.so's _end), noted at
//     boot from dl_iterate_phdr;
//   - every anonymous private read/write mapping of /proc/self/maps, minus the page
//     spans of all loaded objects' PT_LOAD segments (from dl_iterate_phdr: a library's
//     bss is anonymous too, and the kernel may merge it with an adjacent loader mmap, so
//     spans are subtracted, not whole mappings), minus vmrt's own memory (its region and
//     table arena) and minus thread stacks (a mapping right above a small anonymous
//     PROT_NONE guard, unless it holds the booting thread's TLS or DTV).
// The second set is read from /proc/self/maps only when a foreign pointer outside the
// first first needs it: real programs never give ld.so's blocks back (no program
// measured did), and the read cost every process ~60-120 us at boot on these guests
// (opening /proc/self/maps first instantiates the process's /proc entries).  Read late,
// the set also holds anonymous host mappings made after boot by system calls of the
// program's own or glibc's (not through the shim's mmap, which maps in vmrt's region):
// a free() into one of those is taken for the loader's and ignored, where a snapshot at
// boot aborted it.  Everything else foreign (stack, a program's static data or bss,
// memory from the shim's mmap, a thread's stack) still aborts.
// A foreign pointer inside one of these ranges is an ld.so block: free ignores it
// (minimal malloc never reuses memory either) and realloc copies it out.
#pragma once

#include <cstddef>

namespace vmrt::shim {

inline constexpr std::size_t kMaxRtldRanges = 64;   // recorded loader ranges
inline constexpr std::size_t kMaxObjectSpans = 64;  // object spans overlapping one mapping

// At boot: note ld.so's writable segment and the booting thread's TLS anchors, and
// estimate the process's host mappings.  => called once by the booting thread, before the
// runtime maps its region; no malloc and no /proc read (dl_iterate_phdr only).
void rtld_boot();

// True when p lies in a loader range; *bytes_to_end gets the number of readable bytes
// from p to the end of that range.  The first call that finds p outside ld.so's writable
// segment reads /proc/self/maps once (any thread; others wait for it; no malloc: a stack
// buffer).
bool rtld_owns(const void* p, std::size_t* bytes_to_end);

// Number of ranges recorded so far (tests, report).
std::size_t rtld_range_count();

// The host mappings (VMAs) the process had at boot, estimated from the loaded objects'
// program headers (each object's segments, its RELRO split and bss, the stack, vDSO and
// the loader's own mappings), for the mapping budget's start (runtime/rt_vma_budget.h):
// an estimate a few off is corrected by the budget's recount near the limit.
std::size_t rtld_mapping_estimate();

}  // namespace vmrt::shim
