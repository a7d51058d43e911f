// vm_pager.h — pagers: where an object's non-resident pages live (McKusick et al., The
// Design and Implementation of the 4.4BSD Operating System, "Object-Oriented Virtual Memory"
// and "Paging"; FreeBSD vm_pager.h).
//
// Every object has a type, and the type names a pager: default (anonymous zero-fill: holds
// nothing), swap (anonymous pages written to the swap device), vnode (file pages:
// vnode_pager.h) and device (a stub).
// An anonymous default object becomes a swap object the first time one of its pages is
// written out (FreeBSD does the same conversion).
//
// The interface works on runs, not single pages: has_page says how many neighbours the
// store holds on each side of an index, so the fault can read a cluster in one I/O;
// put_pages writes a run and reports a result per page.
//
// Locking: every operation => the VM lock is held on entry and on return.  get_pages and
// put_pages may drop it for the I/O when the caller says so (may_unlock): the pages are
// busy (PG_BUSY) throughout and the caller holds a reference on the object, so neither the
// pages nor the object go away; everything else may change and the caller re-validates.
// With may_unlock false the I/O happens with the lock held (a caller deep in a locked
// operation that cannot restart).
#pragma once

#include <cstdint>

#include "vm/vm_thread_safety.h"
#include "vm/vm_types.h"

namespace vmrt {

struct vm_object;
struct vm_page;

enum vm_pager_result : std::uint8_t {
  VM_PAGER_OK = 0,
  VM_PAGER_ABSENT,    // the store does not hold the page
  VM_PAGER_ERROR,     // the I/O failed (the host said no, or a fail point)
  VM_PAGER_BAD,       // the data read back does not match its checksum
  VM_PAGER_FULL,      // no room in the store
  VM_PAGER_RESULT_COUNT
};
inline constexpr const char* kPagerResultNames[] = {"ok", "absent", "I/O error", "checksum mismatch", "store full"};
static_assert(sizeof kPagerResultNames / sizeof kPagerResultNames[0] == VM_PAGER_RESULT_COUNT);

enum vm_pager_put_flags : unsigned {
  VM_PAGER_PUT_NONE = 0,
  VM_PAGER_PUT_SYNC = 0x1,  // the data must be on the store when put_pages returns (the swap
                            // pager always writes synchronously into the host page cache;
                            // SYNC adds fdatasync)
};

// Largest run one get_pages / put_pages moves (read clustering, laundering clusters).
inline constexpr unsigned kPagerMaxRun = 32;

struct vm_pager_ops {
  const char* name;   // "default", "swap", "vnode", "device", "dead"
  const char* tag;    // procstat TP column: "df", "sw", "vn", "dv", "--"
  // Does the store hold page pindex?  When it does and before/after are given, they get
  // how many pages right below / right above it the store holds too (at most the value
  // they hold on entry).
  bool (*has_page)(vm_object* obj, vm_pindex_t pindex, unsigned* before, unsigned* after);
  // Fill pages[0..n) (busy, resident in obj at consecutive pindexes, the store holds each)
  // from the store.  rtvals[i] gets each page's result; the return value is the first
  // failure (VM_PAGER_OK when all succeeded).  The store keeps its copies (clean pages can
  // later be dropped without a write).  May drop the VM lock (may_unlock).
  vm_pager_result (*get_pages)(vm_object* obj, vm_page* const* pages, unsigned n, bool may_unlock,
                               vm_pager_result* rtvals);
  // Write pages[0..n) (busy, resident in obj at consecutive pindexes, unmapped) to the
  // store, replacing older copies; a page identical to the copy the store holds already (a
  // clean page whose copy was kept while it was mapped writable: vm_page.h, PG_SWAPKEPT)
  // keeps that copy without a write.  rtvals[i] gets each page's result.  May drop the VM
  // lock (may_unlock).  flags: vm_pager_put_flags.
  void (*put_pages)(vm_object* obj, vm_page* const* pages, unsigned n, unsigned flags, bool may_unlock,
                    vm_pager_result* rtvals);
  // The copies of pages [start, end) are dead (unmap, MADV_DONTNEED, a write to the page).
  void (*free_range)(vm_object* obj, vm_pindex_t start, vm_pindex_t end);
  // Collapse: every copy `from` holds at pindex p in [offset, offset + to->size) moves to
  // `to` at p - offset unless `to` holds that index already (resident or stored); the
  // rest of from's copies are freed.  `to` becomes a swap object when it gains a copy.
  void (*collapse)(vm_object* to, vm_object* from, vm_pindex_t offset);
  // Move the copies of [from, from + n) to [to, to + n) within obj (which holds none there):
  // pages renamed inside their object (vm_heap's move of a growing range).
  void (*move)(vm_object* obj, vm_pindex_t from, vm_pindex_t to, vm_pindex_t n);
  // Does the store hold any page of obj in [start, end)?  (bypass checks, zero-fill runs)
  bool (*has_any)(vm_object* obj, vm_pindex_t start, vm_pindex_t end);
  // The object is terminating: release its store.
  void (*dealloc)(vm_object* obj);
  // Read-around (optional, null when the store has no notion of it): like has_page, but
  // counts only the neighbours stored with pindex in one contiguous piece of the store (so
  // one read takes them all: for the swap pager, the pages a laundering cluster wrote
  // together, which are usually reused together).
  bool (*cluster)(vm_object* obj, vm_pindex_t pindex, unsigned* before, unsigned* after);
};

// The pager of each object type (vm_object_type order).
const vm_pager_ops* vm_pager_of(const vm_object* obj) VMRT_REQUIRES(g_vm_lock);
extern const vm_pager_ops* const kPagerOps[];

// The pager that takes obj's pages out: its own, or for an anonymous object that has never
// been paged out (still OBJT_DEFAULT) the swap pager, which makes it a swap object.
const vm_pager_ops* vm_pager_for_put(const vm_object* obj) VMRT_REQUIRES(g_vm_lock);

// Convenience wrappers (FreeBSD names).
bool vm_pager_has_page(vm_object* obj, vm_pindex_t pindex, unsigned* before = nullptr, unsigned* after = nullptr)
    VMRT_REQUIRES(g_vm_lock);
void vm_pager_free_range(vm_object* obj, vm_pindex_t start, vm_pindex_t end) VMRT_REQUIRES(g_vm_lock);
bool vm_pager_has_any(vm_object* obj, vm_pindex_t start, vm_pindex_t end) VMRT_REQUIRES(g_vm_lock);
void vm_pager_move(vm_object* obj, vm_pindex_t from, vm_pindex_t to, vm_pindex_t n) VMRT_REQUIRES(g_vm_lock);

// The swap pager's operations (swap_pager.cpp); the table in vm_pager.cpp points at them.
extern const vm_pager_ops kSwapPagerOps;

}  // namespace vmrt
