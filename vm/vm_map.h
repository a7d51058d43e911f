// vm_map.h — address maps: sorted entries over [min, max) (FreeBSD vm_map.c).
//
// Entries live in a sorted doubly linked list (a sentinel header closes the ring)
// and in an AVL tree keyed by start and augmented with the largest free gap in each
// subtree (every entry owns the gap before it; the header owns the gap after the last
// entry), so lookup and free-space search are O(log n).  A one-entry hint
// short-circuits repeated lookups.
//
// Free-space search is first fit at or above a hint (FreeBSD style, bottom-up), not
// top-down like Linux: within a vmspace window the direction is invisible to programs
// and bottom-up keeps reuse close to the window start.
//
// Locking: every field is guarded by the VM lock.
#pragma once

#include <cstdint>

#include "vm/pmap.h"
#include "vm/vm_thread_safety.h"
#include "vm/vm_types.h"

namespace vmrt {

struct vm_object;
struct vm_map;

enum vm_map_entry_flags : std::uint16_t {
  MAP_ENTRY_COW = 0x0001,         // private: writes go to a copy
  MAP_ENTRY_NEEDS_COPY = 0x0002,  // object shared copy-on-write; shadow before writing
  MAP_ENTRY_IS_SUBMAP = 0x0004,   // maps another vm_map (submap)
  MAP_ENTRY_GROWS_DOWN = 0x0008,  // stack: extended downwards by faults just below it
  MAP_ENTRY_NOCOALESCE = 0x0010,  // never merged with neighbours
  MAP_ENTRY_SUPERPAGE = 0x0020,   // zero-fill faults populate the whole 2 MiB reservation
                                  // window, entered lazily (vm_heap: the host fills its page
                                  // tables page by page as the program touches them)
  MAP_ENTRY_HOSTMEM = 0x0040,     // the machine provides the pages (pmap host_map: vm_heap
                                  // over host anonymous memory); no object, and vm_fault
                                  // refuses every fault (nothing of it is mapped there)
  MAP_ENTRY_ZERO_SINGLE = 0x0080, // a zero-fill fault takes only its page, as Linux's
                                  // anonymous faults do (the program's own mmaps: what is
                                  // resident is what was touched, mincore says the same)
  MAP_ENTRY_CHARGED = 0x0100,     // its size is charged to the commit (vm_commit_charge):
                                  // a writable private mapping of the program's
  MAP_ENTRY_LENDER = 0x0200,      // part of a range lent by vm_loan (this map lends its pages)
  MAP_ENTRY_BORROWER = 0x0400,    // part of a range borrowed by vm_loan (read-only view)
  MAP_ENTRY_LOCKED_LAZY = 0x0800, // mlocked (wired_count 1) with no page wired: what Linux
                                  // flags VM_LOCKED without populating (an mlock that stopped
                                  // at a hole, a PROT_NONE mapping or a page past a file's end).
                                  // Refused advice sees it locked; a later mlock populates it
};
// Flags that describe one map's role, never carried to another map (fork, extract, transfer).
inline constexpr std::uint16_t kMapEntryLoanFlags = MAP_ENTRY_LENDER | MAP_ENTRY_BORROWER;

struct vm_map_entry {
  vm_map_entry* prev VMRT_GUARDED_BY(g_vm_lock);         // list order
  vm_map_entry* next VMRT_GUARDED_BY(g_vm_lock);
  vm_map_entry* left VMRT_GUARDED_BY(g_vm_lock);         // AVL tree
  vm_map_entry* right VMRT_GUARDED_BY(g_vm_lock);
  vm_map_entry* parent VMRT_GUARDED_BY(g_vm_lock);
  vsize_t max_free VMRT_GUARDED_BY(g_vm_lock);           // largest gap_before() in this subtree
  int height VMRT_GUARDED_BY(g_vm_lock);                 // AVL height (leaf 1)
  vaddr_t start VMRT_GUARDED_BY(g_vm_lock);
  vaddr_t end VMRT_GUARDED_BY(g_vm_lock);
  vm_object* object VMRT_GUARDED_BY(g_vm_lock);          // null until first fault for anonymous memory
  vm_map* submap VMRT_GUARDED_BY(g_vm_lock);             // with MAP_ENTRY_IS_SUBMAP
  vm_ooffset_t offset VMRT_GUARDED_BY(g_vm_lock);        // byte offset of start in object; MAP_ENTRY_HOSTMEM:
                                                         // the mapping's identity (entries merge only when
                                                         // contiguous)
  vm_prot_t protection VMRT_GUARDED_BY(g_vm_lock);
  vm_prot_t max_protection VMRT_GUARDED_BY(g_vm_lock);
  vm_inherit_t inheritance VMRT_GUARDED_BY(g_vm_lock);
  vm_advice_t advice VMRT_GUARDED_BY(g_vm_lock);         // NORMAL / RANDOM / SEQUENTIAL
  std::uint16_t eflags VMRT_GUARDED_BY(g_vm_lock);       // vm_map_entry_flags
  std::uint16_t wired_count VMRT_GUARDED_BY(g_vm_lock);  // mlock / kmem wiring
  vm_pindex_t next_pindex VMRT_GUARDED_BY(g_vm_lock);    // where the last fault's run ended: sequential
                                                         // detection (FreeBSD next_read)
  std::uint16_t ra_pages VMRT_GUARDED_BY(g_vm_lock);     // ahead window of the current sequential stream:
                                                         // doubles on each fault at next_pindex, reset by
                                                         // any other (FreeBSD nera)
  std::uint16_t zero_stream VMRT_GUARDED_BY(g_vm_lock);  // pages the current sequential run of zero-fill
                                                         // faults has filled (saturating; reset off the
                                                         // stream)
};

struct vm_map {
  vm_map_entry header;                                 // sentinel: header.end == min, header.start == max
                                                       // (its fields are the VM lock's)
  vm_map_entry* root VMRT_GUARDED_BY(g_vm_lock);
  vaddr_t min;                                         // [constant]
  vaddr_t max;                                         // [constant]
  std::uint32_t nentries VMRT_GUARDED_BY(g_vm_lock);
  vsize_t size VMRT_GUARDED_BY(g_vm_lock);             // bytes mapped
  vm_map_entry* hint VMRT_GUARDED_BY(g_vm_lock);       // last looked-up entry
  pmap* pm;                                            // translations of this map [constant]
  vm_map* all_next VMRT_GUARDED_BY(g_vm_lock);         // every map
  vm_map* all_prev VMRT_GUARDED_BY(g_vm_lock);
  std::uint64_t timestamp VMRT_GUARDED_BY(g_vm_lock);  // bumped on every change
};

// Everything below => VM lock held.

void vm_map_init(vm_map* map, vaddr_t min, vaddr_t max, pmap* pm) VMRT_REQUIRES(g_vm_lock);
// Allocate and initialise a map from the map zone (submaps).  Null when out of items.
vm_map* vm_map_create(pmap* pm, vaddr_t min, vaddr_t max) VMRT_REQUIRES(g_vm_lock);
// Remove every entry, unregister.  Frees the map only if it came from vm_map_create.
void vm_map_deinit(vm_map* map) VMRT_REQUIRES(g_vm_lock);
void vm_map_free(vm_map* map) VMRT_REQUIRES(g_vm_lock);

inline vm_map_entry* vm_map_first(vm_map* m) VMRT_REQUIRES(g_vm_lock) { return m->header.next; }
inline bool vm_map_is_end(const vm_map* m, const vm_map_entry* e) { return e == &m->header; }

// Find the entry containing addr: true and *out = it; false and *out = the entry before
// addr (the header when none).
bool vm_map_lookup_entry(vm_map* map, vaddr_t addr, vm_map_entry** out) VMRT_REQUIRES(g_vm_lock);
// Is [start, end) free of entries?
bool vm_map_range_free(vm_map* map, vaddr_t start, vaddr_t end) VMRT_REQUIRES(g_vm_lock);
// Are all of [start, end) covered by entries (no holes)?
bool vm_map_range_covered(vm_map* map, vaddr_t start, vaddr_t end) VMRT_REQUIRES(g_vm_lock);

// Insert a new entry for [start, end) mapping object at offset.  The caller's reference
// on object is consumed.  Coalesces with the previous entry when possible (same
// attributes; null objects; or an anonymous object that can grow).
//  => range inside the map and free; KERN_NO_SPACE otherwise; KERN_RESOURCE_SHORTAGE.
kern_return_t vm_map_insert(vm_map* map, vm_object* object, vm_ooffset_t offset, vaddr_t start, vaddr_t end,
                            vm_prot_t prot, vm_prot_t maxprot, std::uint16_t eflags, vm_inherit_t inherit,
                            vm_map_entry** out = nullptr) VMRT_REQUIRES(g_vm_lock);
// Insert a submap entry [start, end) -> submap.
kern_return_t vm_map_submap(vm_map* map, vaddr_t start, vaddr_t end, vm_map* submap) VMRT_REQUIRES(g_vm_lock);

// First fit: the lowest address >= hint (and >= min) with [addr, addr+len) free and
// addr aligned to `align` (power of two >= PAGE_SIZE).  KERN_NO_SPACE when none.
kern_return_t vm_map_findspace(vm_map* map, vaddr_t hint, vsize_t len, vsize_t align, vaddr_t* out)
    VMRT_REQUIRES(g_vm_lock);

// Split e so that it starts (clip_start) / ends (clip_end) at addr.
void vm_map_clip_start(vm_map* map, vm_map_entry* e, vaddr_t addr) VMRT_REQUIRES(g_vm_lock);
void vm_map_clip_end(vm_map* map, vm_map_entry* e, vaddr_t addr) VMRT_REQUIRES(g_vm_lock);
// Merge e with its neighbours when they are compatible; returns the surviving entry.
vm_map_entry* vm_map_simplify_entry(vm_map* map, vm_map_entry* e) VMRT_REQUIRES(g_vm_lock);
// Remove [start, end): mappings removed from the pmap, wiring undone, object references
// dropped (pages of private objects nobody else sees are freed), reservation set to NONE.
void vm_map_delete(vm_map* map, vaddr_t start, vaddr_t end) VMRT_REQUIRES(g_vm_lock);

// Consistency checker: sorted, non-overlapping, inside bounds, list == tree, AVL
// balance, gap augmentation, counts, object ranges, object invariants (resident
// counts, shadow chains).  Writes the first violation to fd; false on violation.
bool vm_map_check(vm_map* map, int fd) VMRT_REQUIRES(g_vm_lock);
// Registry of every map (for whole-system checks).
vm_map* vm_map_first_map() VMRT_REQUIRES(g_vm_lock);

// Unwire the pages an entry wired (mlock) — the entry's wired_count is left to the caller.
void vm_map_entry_unwire(vm_map_entry* e) VMRT_REQUIRES(g_vm_lock);

// Move the entries of [src, src + len) to [dst, dst + len), which must be free: the
// objects go along with their pages, resident or paged out, and nothing is copied (UVM's
// uvm_map_extract with UVM_EXTRACT_REMOVE; Mach objects do not know where they are mapped).
// The old range is left empty.  Wiring is not carried (the caller wires again).
//  => VM lock held; [src, src + len) covered, no submaps.  KERN_SUCCESS, or the insert's
//     status with nothing moved.
kern_return_t vm_map_move(vm_map* map, vaddr_t src, vaddr_t dst, vsize_t len) VMRT_REQUIRES(g_vm_lock);
// The general form (page transfer between address spaces, Cranor's UVM dissertation): the
// entries of [src, src + len) of `from` move to [dst, dst + len) of `to` (from == to is
// vm_map_move) with their objects; not a byte is copied, not a page is looked at.  Loans
// of the old range end (vm_loan.h); the moved entries belong to no loan.
//  => as vm_map_move.
kern_return_t vm_map_transfer(vm_map* from, vaddr_t src, vm_map* to, vaddr_t dst, vsize_t len) VMRT_REQUIRES(g_vm_lock);

// Report helpers.
unsigned vm_map_entry_resident(vm_map_entry* e, unsigned* private_resident) VMRT_REQUIRES(g_vm_lock);

// The map-level bodies of vm_mprotect (one entry, already clipped: its protection, its
// resident mappings lowered, the reservation), vm_madvise, vm_mincore, vm_mlock and
// vm_munlock (vmspace.h; defined in vm_mmap.cpp), for a caller that holds the VM lock and
// checked the range itself (the runtime serves the program's own mmap family walking its
// map piece by piece, as Linux walks its VMAs).
//  => VM lock held; [s, t) page aligned and inside the map; covered by entries except for
//     vm_map_advise_locked (holes skipped).  Statuses as the vm_* calls'.  Wiring and
//     populating fault pages in and may sleep for page-ins; COLD and PAGEOUT may drop the
//     lock for pager I/O (vm_pageout_range): a caller walking the map looks entries up again.
void vm_map_entry_protect(vm_map* map, vm_map_entry* x, vm_prot_t prot) VMRT_REQUIRES(g_vm_lock);
kern_return_t vm_map_advise_locked(vm_map* map, vaddr_t s, vaddr_t t, vm_advice_t advice) VMRT_REQUIRES(g_vm_lock);
void vm_map_incore_locked(vm_map* map, vaddr_t s, vaddr_t t, std::uint8_t* vec) VMRT_REQUIRES(g_vm_lock);
// MADV_WILLNEED on a program's pageable memory, as Linux serves it on anonymous memory:
// the pages of [s, t) that are paged out (held by a pager, not resident) are read back now,
// a cluster per read (each page-in continues the last one's stream, so it reads ahead);
// pages never touched stay untouched (vm_map_advise_locked's VM_ADVICE_WILLNEED populates
// them too).  Submap entries are walked into.  Best effort: a page that cannot be read or
// has no frame stops the walk quietly (the touch will fault as it would have).
//  => VM lock held, dropped during each read; holes skipped.  Returns page-ins started.
std::uint64_t vm_map_willneed_locked(vm_map* map, vaddr_t s, vaddr_t t) VMRT_REQUIRES(g_vm_lock);
// mlock/munlock of [s, t).  Wiring populates and wires entry by entry; one that cannot be
// populated (KERN_PAGER_ABSENT: a file page past the end; KERN_MEMORY_ERROR; a shortage) is
// left locked lazily with every entry after it, as Linux leaves VM_LOCKED on a range whose
// populating failed.  => VM lock held; [s, t) mapped.
kern_return_t vm_map_wire_locked(vm_map* map, vaddr_t s, vaddr_t t) VMRT_REQUIRES(g_vm_lock);
void vm_map_unwire_locked(vm_map* map, vaddr_t s, vaddr_t t) VMRT_REQUIRES(g_vm_lock);
// Lock the entries of [s, t) that are not locked, without populating them
// (MAP_ENTRY_LOCKED_LAZY).  => VM lock held; holes skipped.
void vm_map_lock_lazy_locked(vm_map* map, vaddr_t s, vaddr_t t) VMRT_REQUIRES(g_vm_lock);
kern_return_t vm_map_populate_locked(vm_map* map, vaddr_t s, vaddr_t t) VMRT_REQUIRES(g_vm_lock);

}  // namespace vmrt
