// vm_zone.h — fixed-size item zones carved from raw mmap (FreeBSD UMA, 4.4BSD zalloc).
//
// The VM's own records (map entries, objects, radix nodes, maps, vmspaces) come
// from zones: never from malloc.  A zone grows by a run of items and carves items from it
// as they are asked for (UMA's keg fills a slab's free list up front, which writes every
// page of it: five zones touched at boot cost a process 256 KB of RSS it never used, and a
// host fork copied those pages).  A zone's first run holds kZoneFirstItems items and each
// next one twice the last, up to a slab of kZoneSlabBytes mapped for it alone; the runs
// smaller than a slab are carved one after another from a chunk that every zone shares.
// So the zones every process uses at boot (two vmspaces, three maps, an object, a few map
// entries) share one page, where each used to write the first page of a 64 KB slab of its
// own: a page fault and an mmap each in every exec'd process.  Freed items go back on the
// zone's free list (runs are never returned to the host).  Every zone is counted
// (`vmstat -z`).
//
// Locking: a zone is used with the VM lock held (every caller is VM code).
#pragma once

#include <cstddef>
#include <cstdint>

#include "vm/vm_thread_safety.h"
#include "vm/vm_types.h"

namespace vmrt {

inline constexpr std::size_t kZoneSlabBytes = std::size_t{64} << 10;
inline constexpr std::size_t kZoneAlign = 16;
inline constexpr std::size_t kZoneFirstItems = 4;  // items in a zone's first run
static_assert((kZoneSlabBytes & (kZoneSlabBytes - 1)) == 0, "slabs are a power of two");
static_assert(kZoneFirstItems >= 1 && kZoneSlabBytes % kZoneAlign == 0);

struct vm_zone_item {
  vm_zone_item* next;
};

struct vm_zone {
  vm_name<16> name;                                    // constant (in place: a pointer was a relocation the loader
                                                       // wrote into a page of .data in every process, vm/vm_types.h)
  std::size_t size;                                    // item size, rounded to kZoneAlign [constant]
  std::size_t limit;                                   // max items (0 = none) [constant]
  vm_zone_item* free_list VMRT_GUARDED_BY(g_vm_lock);  // items given back
  char* carve VMRT_GUARDED_BY(g_vm_lock);              // the newest run's part never handed out: [carve, carve_end)
  char* carve_end;
  std::uint64_t used VMRT_GUARDED_BY(g_vm_lock);       // items allocated now
  std::uint64_t nfree VMRT_GUARDED_BY(g_vm_lock);      // items free: on free_list or still to carve
  std::uint64_t requests VMRT_GUARDED_BY(g_vm_lock);   // allocations ever
  std::uint64_t fails VMRT_GUARDED_BY(g_vm_lock);      // failed allocations
  std::uint64_t runs VMRT_GUARDED_BY(g_vm_lock);       // runs taken (the first ones from the shared chunk)
  vm_zone* next_zone VMRT_GUARDED_BY(g_vm_lock);       // registry
  bool registered VMRT_GUARDED_BY(g_vm_lock);
};

// A statically defined zone: `vm_zone z = VM_ZONE_INIT("name", sizeof(T), limit);`
#define VM_ZONE_INIT(nm, sz, lim) \
  ::vmrt::vm_zone { nm, ((sz) + ::vmrt::kZoneAlign - 1) & ~(::vmrt::kZoneAlign - 1), lim, nullptr, nullptr, nullptr, 0, 0, 0, 0, 0, nullptr, false }

// Allocate one zeroed item.  => VM lock held.  Returns null when the limit is hit or the
// host refuses a run's memory (counted in fails).  Async-signal-safe (mmap only).
void* vm_zone_alloc(vm_zone* z);
// Return an item.  => VM lock held; p came from vm_zone_alloc(z).
void vm_zone_free(vm_zone* z, void* p);
// `vmstat -z`: ITEM SIZE LIMIT USED FREE REQ FAIL for every zone used so far.
//  => takes the VM lock.
void vm_zone_report(int fd);

// Typed helpers.
template <class T>
T* vm_zone_new(vm_zone* z) {
  return static_cast<T*>(vm_zone_alloc(z));
}

}  // namespace vmrt
