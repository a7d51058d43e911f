// vm_reserv.h — superpage reservations (FreeBSD vm_reserv.c).
//
// When an anonymous object first needs a page inside an aligned 2 MiB window
// (VM_RESERV_NPAGES pages) that the object covers completely, a naturally aligned run
// of 512 free frames is reserved for that (object, window): page i of the window will
// get frame first + i.  Pages faulted at nearby indexes therefore get neighbouring
// frames and the host mappings of the window merge into one VMA (DESIGN.md:
// vm.max_map_count).  Frames of a reservation not yet populated still count as free;
// when memory is short, partially populated reservations are broken (least recently
// used first) and their unpopulated frames return to the buddy allocator.
//
// Locking: VM lock.  One vm_reserv record per 512-frame block of physmem (mapped
// lazily like the page array).
#pragma once

#include <cstdint>

#include "vm/vm_thread_safety.h"
#include "vm/vm_types.h"

namespace vmrt {

struct vm_page;
struct vm_object;

inline constexpr unsigned VM_RESERV_ORDER = 9;
inline constexpr vm_pindex_t VM_RESERV_NPAGES = vm_pindex_t{1} << VM_RESERV_ORDER;
static_assert(VM_RESERV_NPAGES * 4096 == 2u << 20, "a reservation is one 2 MiB superpage");

struct vm_reserv {
  vm_object* object VMRT_GUARDED_BY(g_vm_lock);     // owner window's object; null when not in use
  vm_pindex_t pindex VMRT_GUARDED_BY(g_vm_lock);    // first pindex of the window
  frame_t first;                                    // first frame [constant]
  std::uint16_t popcnt VMRT_GUARDED_BY(g_vm_lock);  // populated frames
  bool inuse VMRT_GUARDED_BY(g_vm_lock);            // reservation active
  bool on_lru VMRT_GUARDED_BY(g_vm_lock);           // on the partially-populated LRU
  std::uint64_t popmap[VM_RESERV_NPAGES / 64] VMRT_GUARDED_BY(g_vm_lock);  // populated frames
  vm_reserv* lru_next VMRT_GUARDED_BY(g_vm_lock);   // partially populated, most recent first
  vm_reserv* lru_prev VMRT_GUARDED_BY(g_vm_lock);
};

// Map the reservation array for nframes frames.  False when the host refuses.
bool vm_reserv_init(frame_t nframes) VMRT_REQUIRES(g_vm_lock);
// Should obj's pages at pindex come from a reservation?  (anonymous, window fully inside obj)
bool vm_reserv_eligible(const vm_object* obj, vm_pindex_t pindex) VMRT_REQUIRES(g_vm_lock);
// Take up to n frames for obj at pindex.. (stopping at the window end or at a populated
// frame) from the window's reservation, creating it when needed.  Returns how many
// frames, written as page records to out (not yet inserted into obj).  0 when there is
// no reservation and no order-9 block to make one.
vsize_t vm_reserv_alloc_run(vm_object* obj, vm_pindex_t pindex, vsize_t n, vm_page** out);
// Page m (m->reserv != 0) is being freed: give its frame back to the reservation (the
// whole block goes to the buddy allocator when the last page leaves).
void vm_reserv_free_page(vm_page* m);
// Page m changes identity (collapse / move-up): keep the reservation with the window
// when the shift is a multiple of the window, else detach it from the old window.
void vm_reserv_rename(vm_page* m, const vm_object* old_obj, vm_pindex_t old_pindex) VMRT_REQUIRES(g_vm_lock);
// Break the least recently used partially populated reservation.  False if none.
bool vm_reserv_reclaim_one();
// Is frame f (m->reserv != 0) an unpopulated frame of an active reservation?
bool vm_reserv_frame_free(frame_t f) VMRT_REQUIRES(g_vm_lock);
// Call fn(first, n, arg) for every run of unpopulated frames of active reservations.
void vm_reserv_foreach_free_run(void (*fn)(frame_t first, frame_t n, void* arg), void* arg) VMRT_REQUIRES(g_vm_lock);
// Counts: active reservations, frames reserved but unpopulated.
std::uint64_t vm_reserv_active();
std::uint64_t vm_reserv_free_frames() VMRT_REQUIRES(g_vm_lock);
vm_reserv* vm_reserv_of(const vm_page* m);

}  // namespace vmrt
