// vm_page.h — one record per physical frame of physmem (FreeBSD vm_page).
//
// The page array is indexed by frame number: vm_page_array[f] describes frame f of
// the physmem memfd.  runtime/physmem creates the frames and calls
// vm_page_startup(); from then on frames are allocated and freed only through
// vm_page_alloc*/vm_page_free* (vm_phys buddy queues + vm_reserv reservations),
// so that contiguous object ranges get contiguous frames and host mappings stay
// few (DESIGN.md: vm.max_map_count).
#pragma once

#include "vm/vm_thread_safety.h"
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
  PG_SWAPCOPY = 0x0040,    // clean: the object's pager holds a copy identical to the page.  Such a
                           // page is never mapped writable (a fault that maps it writable, read
                           // or write, drops the copy and the flag first), so the pageout daemon
                           // may free it without a write.  Pages of read-only mappings keep it
  PG_PAGEIN = 0x0100,      // with PG_BUSY: being read in (contents not valid yet)
  PG_RELEASED = 0x0080,    // the page died while busy (unmap, DONTNEED): whoever holds it busy
                           // frees it, and its pager copy, when the I/O ends
  PG_LOANED = 0x0200,      // lent to another vmspace (vm_loan.h; count there): never paged out
                           // nor moved up by a copy-on-write fault while set
  PG_SWAPKEPT = 0x0400,    // dirty as far as the VM knows, but the copy it was paged in from was
                           // kept when a read fault mapped it writable: the pager compares the
                           // page with that copy at pageout and, unchanged, frees it without a
                           // write (vm_pager.h put_pages).  A hint: the comparison decides.
  PG_READAROUND = 0x0800,  // paged in by a random fault's read-around and not used since
                           // (vm_fault.cpp): a fault on it is a read-around hit, a pageout a miss
  PG_FREEABLE = 0x1000,    // MADV_FREE'd and not mapped writable since (vm_object_madvise_free):
                           // its contents may be dropped, so the pageout daemon frees it
                           // without a write; the next writable mapping (every fault on
                           // private anonymous memory) clears it and the data stays
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
  // Queue linkage (free buddy queue, or active/inactive/laundry)
  vm_page* q_next VMRT_GUARDED_BY(g_vm_lock);
  vm_page* q_prev VMRT_GUARDED_BY(g_vm_lock);
  vm_object* object VMRT_GUARDED_BY(g_vm_lock);         // owning object, null when free
  vm_pindex_t pindex VMRT_GUARDED_BY(g_vm_lock);        // index in the owning object
  void* md;                                             // machine-dependent data: the pmap's pv list [pmap lock]
  std::uint16_t flags VMRT_GUARDED_BY(g_vm_lock);       // vm_page_flags
  std::uint16_t wire_count VMRT_GUARDED_BY(g_vm_lock);  // wirings (mlock, kmem)
  std::uint8_t queue VMRT_GUARDED_BY(g_vm_lock);        // vm_page_queue
  std::uint8_t order VMRT_GUARDED_BY(g_vm_lock);        // buddy order while PQ_FREE
  std::uint8_t act_count VMRT_GUARDED_BY(g_vm_lock);    // the replacement policy's activity count
                                                        // (vm_pdpolicy_clock.cpp)
  std::uint8_t reserv VMRT_GUARDED_BY(g_vm_lock);       // nonzero while part of a vm_reserv reservation
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

// ---- page allocation and object membership (vm_page.cpp) ---------------------------
// Everything below => the VM lock is held.

namespace vmrt {

struct vm_object;

enum vm_alloc_flags : unsigned {
  VM_ALLOC_NORMAL = 0,
  VM_ALLOC_ZERO = 0x1,      // contents must read as zeros (zeroed unless PG_ZERO); PG_ZERO cleared
  VM_ALLOC_WIRED = 0x2,     // wire_count = 1, on no queue
  VM_ALLOC_NORESERV = 0x4,  // do not use or create a reservation
  VM_ALLOC_ZERO_RELEASE = 0x8,  // with VM_ALLOC_ZERO: frames not known zero are released to the
                                // host (they read as zeros) instead of zeroed through the direct
                                // map, so pages the program never touches cost no host memory
};

// Allocate pages for obj at pindex .. pindex+n-1 (none of them resident in obj), inserted
// into obj and put on the active queue (or wired).  Frames come from obj's reservation
// (anonymous objects covering aligned 2 MiB windows) or from contiguous buddy blocks, so
// they are contiguous whenever memory allows.  Breaks reservations when memory is short.
//  => returns how many pages were allocated, in order from pindex (n, or fewer when out of
//     frames / radix nodes); out[0..ret) get the pages.
vsize_t vm_page_alloc_run(vm_object* obj, vm_pindex_t pindex, vsize_t n, unsigned flags, vm_page** out);
// One page; null when out of memory.
vm_page* vm_page_alloc(vm_object* obj, vm_pindex_t pindex, unsigned flags);
// n physically contiguous frames owned by no object (kmem); null when no contiguous run.
// Pages are marked allocated (queue PQ_NONE); flags as above (ZERO, WIRED).
vm_page* vm_page_alloc_contig(vsize_t n, unsigned flags);

// Free a page: removed from its object and queue, its frame given back in batches of
// contiguous runs: into the free-frame cache while it has room (zeroed on reuse), else
// released to the host (reads as zeros again); VM_FREE_RELEASE always releases.
//  => not mapped anywhere (the caller removed its mappings); wire_count is reset.
// How a freed frame goes back: into the free-frame cache (host-resident, zeroed on reuse) or
// straight to the host.  Owners that cache memory themselves (kmem) release to the host, so
// the host never holds two caches of the same memory and the process's RSS tells the truth.
enum vm_free_mode : std::uint8_t { VM_FREE_CACHE = 0, VM_FREE_RELEASE = 1 };
void vm_page_free(vm_page* m, vm_free_mode mode = VM_FREE_CACHE);
// Give back frames whose release was batched (vm_page_free defers).  Called at the start
// of every allocation and after bulk frees.
void vm_page_free_flush();

// Object membership.
kern_return_t vm_page_insert(vm_page* m, vm_object* obj, vm_pindex_t pindex);
void vm_page_remove(vm_page* m);
// Move m to (obj, pindex) (collapse / COW move-up).  => nothing resident there.
kern_return_t vm_page_rename(vm_page* m, vm_object* obj, vm_pindex_t pindex);
// Look up the page at pindex in obj.
vm_page* vm_page_lookup(const vm_object* obj, vm_pindex_t pindex);

// Remove every mapping of m in every pmap (pmap page_protect NONE).
void vm_page_unmap_all(vm_page* m);

// Does m's frame read as zeros?  (Reads it through the direct map.)
bool vm_page_reads_zero(const vm_page* m);

// Wiring: wired pages leave the paging queues.
void vm_page_wire(vm_page* m);
void vm_page_unwire(vm_page* m);

// Busy pages (PG_BUSY: being read or written by a pager, the VM lock dropped).  A thread that
// finds a page busy sleeps until some busy page is released, then looks again (FreeBSD's
// vm_page_sleep; one wait channel for all pages: busy pages are few and short-lived).
// vm_page_busy_sleep: => VM lock held; drops it, sleeps, retakes it.  The caller restarts
// whatever it was doing (everything may have changed).
void vm_page_busy_sleep() VMRT_REQUIRES(g_vm_lock);
// Clear PG_BUSY on m (=> VM lock held) and wake every sleeper (after the last one of a run).
void vm_page_unbusy(vm_page* m);
void vm_page_busy_wakeup();

// Paging queues: thin wrappers over the replacement policy (vm_pdpolicy.h; the CLOCK family in
// vm_pdpolicy_clock.cpp owns the active and inactive queues, their order and act_count).
// vm_page_queue_count gives the policy's active / inactive lengths, 0 for the other queues.
inline constexpr std::uint8_t ACT_INIT = 5;
inline constexpr std::uint8_t ACT_MAX = 64;
void vm_page_activate(vm_page* m);
void vm_page_deactivate(vm_page* m);
void vm_page_dequeue(vm_page* m);
std::uint64_t vm_page_queue_count(vm_page_queue q) VMRT_REQUIRES(g_vm_lock);

// Frames: total and free (buddy + never used + reserved-but-unpopulated).
frame_t vm_page_free_count() VMRT_REQUIRES(g_vm_lock);

// ---- the free-frame cache (like a kernel's free list of real RAM, jemalloc's dirty pages) --
// A freed frame normally stays host-resident: its host memory is not given back, so reusing
// it costs a memset through the direct map (VM_ALLOC_ZERO) instead of a fresh host page
// (~1.3-1.8 us on first host mapping).  Such frames are free and not PG_ZERO; they are
// counted here ("free frames cached").  Frames freed while the cache holds `limit` frames
// are released to the host (hole punched, PG_ZERO), as are cached frames on trim.
// Invariant: a free frame without PG_ZERO <=> counted in the cache.  The limit is 0 until
// the machine sets it (runtime/physmem: VMRT_FRAME_CACHE), so with no limit set every
// freed frame is released at once.
// Set the limit (frames); trims when the cache is above it.
void vm_page_cache_set_limit(frame_t frames);
frame_t vm_page_cache_limit();
frame_t vm_page_cache_count() VMRT_REQUIRES(g_vm_lock);
// Release cached frames to the host until at most `target` remain.  Returns how many were
// released.  => VM lock held (O(free blocks)).
frame_t vm_page_cache_trim(frame_t target);
// Is frame f free (buddy, never used, unpopulated in a reservation, or pending release)?
// => VM lock held, or the process single-threaded (host fork child).
bool vm_page_frame_free(frame_t f) VMRT_REQUIRES(g_vm_lock);

}  // namespace vmrt
