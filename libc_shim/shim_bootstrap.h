// shim_bootstrap.h — the bootstrap arena: memory for malloc calls made while the
// runtime is booting (from inside runtime_boot() itself, e.g. when boot starts a
// thread and pthread_create callocs its DTV).
//
// A bump allocator over a static array in the shim's bss (untouched pages cost
// nothing).  Blocks are zero-filled (fresh bss, never reused) and carry a
// 16-byte header with their size so realloc can copy them out.  Frees of
// bootstrap blocks are ignored (counted).
#pragma once

#include <cstddef>

namespace vmrt::shim {

inline constexpr std::size_t kBootstrapArenaSize = std::size_t{1} << 20;  // 1 MiB
inline constexpr std::size_t kBootstrapHeader = 16;
static_assert((kBootstrapArenaSize & (kBootstrapArenaSize - 1)) == 0, "arena size is a power of two");

// A zeroed block of `size` bytes aligned to `align` (power of two, <= 4096).
//  => lock-free, async-signal-safe; returns null when the arena is exhausted.
void* bootstrap_alloc(std::size_t size, std::size_t align);
// True when p points into the bootstrap arena.
bool bootstrap_owns(const void* p);
// The requested size of the bootstrap block starting at p (p must be owned).
std::size_t bootstrap_size(const void* p);

}  // namespace vmrt::shim
