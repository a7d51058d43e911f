// shim_rtld.h — recognising blocks from ld.so's minimal malloc.
//
// Before the dynamic loader switches to the real malloc (ours, once relocation
// is done) it allocates link maps, search paths, the main thread's static TLS
// and DTV from its own minimal bump allocator (glibc elf/dl-minimal-malloc.c):
// first the tail of ld.so's last writable page, then anonymous mmaps.  Such a
// block may later reach free() or realloc().  The shim must neither abort nor
// pass it to kmem, and must still abort for every other foreign pointer.
//
// At boot (our first malloc call, which the loader makes only after its switch,
// so every minimal-malloc block already exists) the shim records the ranges
// minimal malloc can have used:
//   - ld.so's own writable segment (minimal malloc starts at ld.so's _end);
//   - every anonymous private read/write mapping of /proc/self/maps, minus the
//     page spans of all loaded objects' PT_LOAD segments (from dl_iterate_phdr:
//     a library's bss is anonymous too, and the kernel may merge it with an
//     adjacent loader mmap, so spans are subtracted, not whole mappings).
// A foreign pointer inside one of these ranges is an ld.so block: free ignores
// it (minimal malloc never reuses memory either) and realloc copies it out.
// Anything else foreign (stack, a program's static data or bss, memory from
// mmap after boot) still aborts.
#pragma once

#include <cstddef>

namespace vmrt::shim {

inline constexpr std::size_t kMaxRtldRanges = 64;   // recorded loader ranges
inline constexpr std::size_t kMaxObjectSpans = 64;  // object spans overlapping one mapping

// Take the snapshot.  => called once by the booting thread, before the runtime
// maps its region; no malloc (dl_iterate_phdr, and /proc/self/maps read with
// open/read into a stack buffer).
void rtld_snapshot();

// True when p lies in a snapshot range; *bytes_to_end gets the number of
// readable bytes from p to the end of that range.
bool rtld_owns(const void* p, std::size_t* bytes_to_end);

// Number of ranges recorded (tests, report).
std::size_t rtld_range_count();

// Number of mappings the snapshot's walk of /proc/self/maps saw (0: unreadable).
std::size_t rtld_mapping_count();

}  // namespace vmrt::shim
