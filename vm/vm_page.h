// vm_page.h — one record per physical frame of physmem (FreeBSD vm_page).
//
// The page array is indexed by frame number: vm_page_array[f] describes frame f of
// the physmem memfd.  runtime/physmem creates the frames and calls
// vm_page_startup(); from then on frames are allocated and freed only through
// vm_page_alloc*/vm_page_free* (vm_phys buddy queues + vm_reserv reservations),
// so that contiguous object ranges get contiguous frames and host mappings stay
// few (DESIGN.md: vm.max_map_count).
#pragma once

#include "vm/vm_types.h"

namespace vmrt {

struct vm_object;

// vm_page flags [VM lock]
enum vm_page_flags : std::uint16_t {
  PG_BUSY = 0x0001,        // being filled/paged: not to be mapped or freed by others
  PG_DIRTY = 0x0002,       // contents differ from backing store (MI knowledge)
  PG_REFERENCED = 0x0004,  // referenced since last scan (emulated by the pmap)
  PG_ZERO = 0x0008,        // known to read as zeros (fresh or released frame)
  PG_FICTITIOUS = 0x0010,  // not a physmem frame (device pager)
  PG_NOSWAP = 0x0020,      // has no swap copy (cannot be dropped clean)
};

// Page queues a page can be on [VM lock]
enum vm_page_queue : std::uint8_t {
  PQ_NONE = 0,     // allocated, on no queue (wired, or in transit)
  PQ_FREE = 1,     // free, in the buddy allocator
  PQ_ACTIVE = 2,
  PQ_INACTIVE = 3,
  PQ_LAUNDRY = 4,
  PQ_COUNT
};

struct vm_page {
  // Queue linkage (free buddy queue, or active/inactive/laundry) [VM lock]
  vm_page* q_next;
  vm_page* q_prev;
  vm_object* object;    // owning object, null when free [VM lock]
  vm_pindex_t pindex;   // index in the owning object [VM lock]
  void* md;             // machine-dependent data: the pmap's pv list [pmap lock]
  std::uint16_t flags;  // vm_page_flags [VM lock]
  std::uint16_t wire_count;  // wirings (mlock, kmem) [VM lock]
  std::uint8_t queue;   // vm_page_queue [VM lock]
  std::uint8_t order;   // buddy order while PQ_FREE [VM lock]
  std::uint8_t act_count;  // CLOCK activity count [VM lock]
  std::uint8_t reserv;  // nonzero while part of a vm_reserv reservation [VM lock]
};

// The page array and its size, set by vm_page_startup.
extern vm_page* vm_page_array;
extern frame_t vm_page_array_size;

inline frame_t vm_page_frame(const vm_page* m) { return static_cast<frame_t>(m - vm_page_array); }
inline vm_page* vm_page_from_frame(frame_t f) { return &vm_page_array[f]; }

// Describe nframes frames, all free and PG_ZERO.  Called once by runtime/physmem
// before any other VM call; the array is mapped lazily (untouched records cost
// nothing).  Returns KERN_RESOURCE_SHORTAGE when the array cannot be mapped.
kern_return_t vm_page_startup(frame_t nframes);

}  // namespace vmrt
