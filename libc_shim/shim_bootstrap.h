// shim_bootstrap.h — the bootstrap arena: memory for malloc calls made while the
// runtime is booting (from inside runtime_boot() itself, e.g. when boot starts a
// thread and pthread_create callocs its DTV), or while a fork child sets itself up.
//
// A bump allocator over two pieces: a small static array in the shim's bss (untouched
// pages cost nothing) and, when that is used up, an extension mapped at that moment.  The
// shim's image stays under 2 MiB so: the host places a mapping of 2 MiB or more at a 2 MiB
// boundary, and every 2 MiB block of address space a process touches costs it a host
// page-table page (tens of microseconds to fill, copy at fork and tear down at exit on these
// guests; bench/exec_cost's pte column).  Blocks are zero-filled (fresh memory, never
// reused) and carry a 16-byte header with their size so realloc can copy them out.  Frees
// of bootstrap blocks are ignored (counted).
#pragma once

#include <cstddef>

namespace vmrt::shim {

inline constexpr std::size_t kBootstrapStaticSize = std::size_t{64} << 10;  // in the bss
inline constexpr std::size_t kBootstrapExtraSize = std::size_t{1} << 20;    // mapped when needed
inline constexpr std::size_t kBootstrapArenaSize = kBootstrapStaticSize + kBootstrapExtraSize;
inline constexpr std::size_t kBootstrapHeader = 16;
static_assert(kBootstrapStaticSize % 4096 == 0 && kBootstrapExtraSize % 4096 == 0, "pieces are whole pages");

// A zeroed block of `size` bytes aligned to `align` (power of two, <= 4096).
//  => lock-free, async-signal-safe (the extension is one mmap system call); returns null
//     when the arena is exhausted or the host refuses the extension.
void* bootstrap_alloc(std::size_t size, std::size_t align);
// True when p points into the bootstrap arena.
bool bootstrap_owns(const void* p);
// The requested size of the bootstrap block starting at p (p must be owned).
std::size_t bootstrap_size(const void* p);

}  // namespace vmrt::shim
