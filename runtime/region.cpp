// region.cpp — the reserved region and the window table.
#include "runtime/region.h"
#include "vm/vm_host_layout.h"
#include "vm/vm_sys.h"
#include "vm/vm_tables.h"

#include <sys/mman.h>

#include "runtime/rt_base.h"
#include "runtime/spinlock.h"

namespace vmrt::rt {

// On the fork data page (vm/vm_types.h): region_contains() is asked in every fork (the
// populated TLS, the forking stack) and by a shell child's wrapped calls.
VMRT_FORK_DATA vaddr_t g_region_base;
VMRT_FORK_DATA std::size_t g_region_size;
std::atomic<window_slot>* g_window_slots;
// constinit: the first malloc may boot the machine before any constructor runs; a dynamic
// initializer would then reset the kernel window.
constinit window g_boot_windows[kBootWindows]{};
VMRT_LARGE_BSS constinit window g_more_windows[kMaxWindows - kBootWindows]{};

namespace {
spinlock g_region_lock;  // guards window kinds and slot assignment (not lookups)
// Windows [0, g_windows_used) have been handed out at least once; the rest are free and
// never read before their first use: a read of a never-written page of g_more_windows maps
// the host's zero page and the write that follows faults a second time (boot's first window
// took two faults on one page while the table was one array in .lbss) [region lock].
std::size_t g_windows_used;
// The host reservation the region was cut from: the alignment slop at its ends stays
// reserved (PROT_NONE, never touched) rather than unmapped, two system calls fewer in
// every process; region_release gives back the whole of it.
vaddr_t g_raw;
std::size_t g_raw_size;
}  // namespace

bool region_reserve(std::size_t size) {
  RT_ASSERT(g_region_base == 0, "region reserved twice");
  if (size < kMinRegion) size = kMinRegion;
  if (size > kMaxRegion) size = kMaxRegion;
  size = (size + kGranule - 1) & ~(kGranule - 1);
  // Over-reserve by one granule so the region can be granule aligned (THP-friendly, and
  // window bases are then 16 MiB aligned).
  void* p = vmrt::sys::host_reserve(size + kGranule);
  if (p == MAP_FAILED) {
    say("vmrt: cannot reserve the guest region (mmap PROT_NONE failed)\n");
    return false;
  }
  vaddr_t raw = reinterpret_cast<vaddr_t>(p);
  vaddr_t base = (raw + kGranule - 1) & ~static_cast<vaddr_t>(kGranule - 1);
  // The window table, populated: boot writes the slots of the kernel window and of the
  // process window (half the region and more), so at least half the table, at once; its
  // pages were each a page fault in every process (two for the default region), where
  // MAP_POPULATE fills them in the mmap call itself.  In the table arena's hot block, with
  // the other tables every process writes (vm/vm_tables.h).
  std::size_t nslots = size >> kGranuleShift;
  void* s = vmrt::sys::table_map(nslots * sizeof(std::atomic<window_slot>), vmrt::sys::TABLE_POPULATE | vmrt::sys::TABLE_HOT);
  if (s == nullptr) {
    vmrt::sys::munmap(p, size + kGranule);
    say("vmrt: cannot map the window table\n");
    return false;
  }
  g_window_slots = static_cast<std::atomic<window_slot>*>(s);
  g_raw = raw;
  g_raw_size = size + kGranule;
  g_region_size = size;
  g_region_base = base;
  return true;
}

void region_release() {
  if (g_region_base == 0) return;
  vmrt::sys::munmap(reinterpret_cast<void*>(g_raw), g_raw_size);
  if (g_window_slots != nullptr) vmrt::sys::table_unmap(g_window_slots, (g_region_size >> kGranuleShift) * sizeof(std::atomic<window_slot>));
  g_window_slots = nullptr;
  g_region_base = 0;
  g_region_size = 0;
}

vaddr_t region_base() { return g_region_base; }
std::size_t region_size() { return g_region_size; }

window* window_alloc(std::size_t size, window_kind kind) {
  RT_ASSERT(kind != WK_FREE, "window kind");
  if (size == 0 || size > g_region_size) return nullptr;
  std::size_t need = (size + kGranule - 1) >> kGranuleShift;
  std::size_t nslots = g_region_size >> kGranuleShift;
  spin_guard g(g_region_lock);
  std::size_t wi = 0;
  while (wi < g_windows_used && window_at(wi)->kind != WK_FREE) ++wi;
  if (wi == kMaxWindows) return nullptr;
  // First fit over the granule slots.
  std::size_t run = 0;
  for (std::size_t i = 0; i < nslots; ++i) {
    if (g_window_slots[i].load(std::memory_order_relaxed) != 0) {
      run = 0;
      continue;
    }
    if (++run == need) {
      std::size_t first = i + 1 - need;
      window* w = window_at(wi);
      if (wi == g_windows_used) ++g_windows_used;
      w->index = static_cast<std::uint32_t>(wi);
      w->base = g_region_base + (first << kGranuleShift);
      w->size = need << kGranuleShift;
      w->vm_size = w->size;
      w->vs.store(nullptr, std::memory_order_relaxed);
      w->pm = pmap{nullptr, w->base, w->base + w->size, w};
      w->kind = kind;
      window_slot slot = static_cast<window_slot>(w->index + 1);
      for (std::size_t j = first; j <= i; ++j) g_window_slots[j].store(slot, std::memory_order_release);
      return w;
    }
  }
  return nullptr;
}

void window_free(window* w) {
  spin_guard g(g_region_lock);
  RT_ASSERT(w->kind != WK_FREE, "freeing a free window");
  std::size_t first = (w->base - g_region_base) >> kGranuleShift;
  std::size_t n = w->size >> kGranuleShift;
  for (std::size_t j = first; j < first + n; ++j) g_window_slots[j].store(0, std::memory_order_release);
  w->vs.store(nullptr, std::memory_order_release);
  w->kind = WK_FREE;
}

}  // namespace vmrt::rt
