// region.h — the reserved guest region and its window table.
//
// One mmap(PROT_NONE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_NORESERVE) of VMRT_REGION_SIZE
// bytes holds every guest address of the process.  It is carved into windows,
// one per vmspace (the kernel vmspace holding kmem_map, and one per API vmspace),
// aligned to a 16 MiB granule.  The window table maps each granule to its window,
// so the trap handlers find the vmspace of a faulting address in O(1) with two
// relaxed loads and no lock (safe in a signal handler and the userfaultfd thread).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "vm/pmap.h"
#include "vm/vm_types.h"

namespace vmrt {
struct vmspace;
}

namespace vmrt::rt {

inline constexpr unsigned kGranuleShift = 24;  // 16 MiB windows granule
inline constexpr std::size_t kGranule = std::size_t{1} << kGranuleShift;
inline constexpr std::size_t kMaxWindows = 4096;
inline constexpr std::size_t kMinRegion = std::size_t{64} << 20;  // 4 granules: small RLIMIT_AS
inline constexpr std::size_t kMaxRegion = std::size_t{1} << 44;  // 16 TiB (47-bit user space)
static_assert(kGranule % PAGE_SIZE == 0 && kMinRegion % kGranule == 0 && kMaxRegion % kGranule == 0);

enum window_kind : std::uint8_t { WK_FREE = 0, WK_KERNEL = 1, WK_API = 2, WK_PROCESS = 3 };

// One window of the region.  base/size/kind/pm are set before the window is
// published in the table and never change while it is published.
struct window {
  vaddr_t base;
  vsize_t size;
  vsize_t vm_size;           // the vmspace's size ([base, base + vm_size) is its map)
  std::atomic<vmspace*> vs;  // the vmspace over this window; null while built/torn down
  pmap pm;                   // the window's pmap (pm.md points back here)
  std::uint32_t index;       // position in the descriptor array
  std::uint8_t kind;         // window_kind [region lock]
};

// Reserve the region (once).  False with a message when the host refuses.
bool region_reserve(std::size_t size);
// Give the reservation back (boot failed: the VM is abandoned for stage 0, which needs
// the address space).  No window may be in use.
void region_release();
vaddr_t region_base();
std::size_t region_size();
inline bool region_contains(vaddr_t a);

// Carve a window of at least `size` bytes (rounded up to the granule).
//  => takes the region lock (never from a signal handler); null when no room.
window* window_alloc(std::size_t size, window_kind kind);
// Unpublish and free a window (its vmspace already destroyed, its pmap empty).
void window_free(window* w);
// The window holding address a, or null.  Lock-free; async-signal-safe.
window* window_lookup(vaddr_t a);

// ---- inline -----------------------------------------------------------------
extern vaddr_t g_region_base;
extern std::size_t g_region_size;
// One per granule: 1 + the index (window_at) of the window holding it, 0 when none.  Two
// bytes, not a pointer: a process window spans half the region, and every page of this
// table that boot writes is a page fault in every process (8 KiB for the default 64 GiB).
using window_slot = std::uint16_t;
static_assert(kMaxWindows < (std::size_t{1} << (8 * sizeof(window_slot))));
extern std::atomic<window_slot>* g_window_slots;
// The window table in two parts: the windows every process has (the kernel's and the
// process window, made at boot) in .bss, which the load-time populate makes the process's
// own, and the rest (the C API's vmspaces, guests) in .lbss, touched only when used: as one
// array of 288 KiB its first page was a page fault in every process.
inline constexpr std::size_t kBootWindows = 2;
extern window g_boot_windows[kBootWindows];
extern window g_more_windows[kMaxWindows - kBootWindows];
inline window* window_at(std::size_t i) {
  return i < kBootWindows ? &g_boot_windows[i] : &g_more_windows[i - kBootWindows];
}

inline bool region_contains(vaddr_t a) { return a - g_region_base < g_region_size; }

inline window* window_lookup(vaddr_t a) {
  vaddr_t off = a - g_region_base;
  if (off >= g_region_size) return nullptr;
  window_slot s = g_window_slots[off >> kGranuleShift].load(std::memory_order_acquire);
  return s == 0 ? nullptr : window_at(s - 1);
}

}  // namespace vmrt::rt
