// pmap.h — the machine-dependent interface the machine-independent VM needs.
//
// As in 4.4BSD/FreeBSD, vm/ never touches hardware state itself: it asks the
// pmap to enter, remove and protect translations.  In vmrt "hardware" is the
// host: a translation is a host mapping of a physmem frame into the guest region
// (runtime/pmap_linux.cpp).  The operations are a table so unit tests can run the
// VM over a recording pmap and so a second machine-dependent layer can be added.
//
// Locking: the VM calls every operation with the VM lock held (vm/vm_lock.h);
// the pmap serialises its own metadata (pv lists, range records) internally.
// No operation allocates with malloc or may be interrupted by a fault on the
// guest region: they run inside fault handlers.
#pragma once

#include "vm/vm_types.h"

namespace vmrt {

struct vm_page;
struct pmap;

// How host memory is made (host_map).
enum pmap_host_flags : unsigned {
  PMAP_HOST_SHARED = 0x1,     // shared with host fork children (MAP_SHARED|MAP_ANONYMOUS)
  PMAP_HOST_NORESERVE = 0x2,  // not charged to the host's commit limit (MAP_NORESERVE)
  PMAP_HOST_POPULATE = 0x4,   // host pages now (MAP_POPULATE)
  PMAP_HOST_LOCKED = 0x8,     // locked once made (the program's mlockall(MCL_FUTURE))
  PMAP_HOST_LOCK_ONFAULT = 0x10,  // ... as its pages are touched (MCL_ONFAULT)
};

// A range [start, end) of addresses (batched pmap calls).
struct vm_span {
  vaddr_t start;
  vaddr_t end;
};

struct pmap_ops {
  // enter: map `npages` pages at va .. va + npages*PAGE_SIZE (pages[i] at va + i*PAGE_SIZE)
  // with `prot`, replacing whatever was mapped there.
  //  => pages are owned by objects, filled, and not busy; the caller has made them visible
  //     only after filling them (a frame is never visible before it is filled).
  //  => returns KERN_RESOURCE_SHORTAGE when the host refuses (e.g. out of host VMAs).
  kern_return_t (*enter)(pmap* pm, vaddr_t va, vm_page* const* pages, vsize_t npages, vm_prot_t prot);
  // remove: drop every resident mapping in [sva, eva).  Afterwards an access there traps
  // into vmrt according to the range's reservation (see reserve).
  void (*remove)(pmap* pm, vaddr_t sva, vaddr_t eva);
  // protect: lower the protection of resident mappings in [sva, eva) to `prot` (never raises;
  // VM_PROT_NONE is remove).
  void (*protect)(pmap* pm, vaddr_t sva, vaddr_t eva, vm_prot_t prot);
  // reserve: the accesses that map entries allow in [sva, eva) (VM_PROT_NONE for holes).
  // The trap backend uses it to make non-resident pages reachable by the accesses the entry
  // allows (userfaultfd: kernel-mode accesses too) and to refuse the others.
  void (*reserve)(pmap* pm, vaddr_t sva, vaddr_t eva, vm_prot_t prot);
  // page_protect: every mapping of page m in every pmap: VM_PROT_NONE removes them,
  // VM_PROT_READ makes them read-only (copy-on-write, pageout).
  void (*page_protect)(vm_page* m, vm_prot_t prot);
  // Reference / modify emulation (pageout): modified since last clear? referenced since
  // last call (clears the reference)?
  bool (*is_modified)(vm_page* m);
  void (*clear_modify)(vm_page* m);
  bool (*ts_referenced)(vm_page* m);
  // The direct map: where the VM reads and writes a frame's contents (never through
  // guest addresses).
  void* (*page_address)(const vm_page* m);
  // Zero `n` physically contiguous frames starting at m (memset through the direct map,
  // or give the host pages back; either way they read as zeros afterwards).
  void (*zero_pages)(vm_page* m, vsize_t n);
  // Give the host memory behind n contiguous free frames back (they will read as zeros).
  void (*release_pages)(vm_page* m, vsize_t n);
  // enter_lazy (optional; null: enter): as enter, but the machine need not fill its page
  // tables now: the first access of each page may take a machine fault that the machine
  // resolves by itself, without vm_fault (fork prefault: cheap to set up, pages the child
  // never touches cost nothing).
  kern_return_t (*enter_lazy)(pmap* pm, vaddr_t va, vm_page* const* pages, vsize_t npages, vm_prot_t prot);
  // copy_resident (optional; null: copy through page_address): copy n contiguous frames
  // from src to dst, skipping source pages the machine holds no memory for (never touched
  // since they were last zeroed or released: they read as zeros, and so does dst, which
  // must read as zeros beforehand).  Touches no memory the copy does not need.
  void (*copy_resident)(vm_page* dst, vm_page* src, vsize_t n);
  // zero_resident (optional; null: zero_pages): make n contiguous frames read as zeros,
  // writing zeros only into pages the machine holds memory for (cheaper than releasing
  // pages that are about to be used again; untouched pages stay untouched).
  void (*zero_resident)(vm_page* m, vsize_t n);

  // ---- Host memory (optional: null when the machine has none) ------------------------
  // Ranges whose pages the machine itself provides (Linux: private anonymous memory):
  // no vm_page stands behind a page, vm_fault never fills one (the map entry says
  // MAP_ENTRY_HOSTMEM), the host fills its page tables at first touch — kernel-mode
  // touches included — and the host's own fork shares the pages copy-on-write.  vm_heap
  // keeps the program's heap there (see vm_heap.h for why).
  // host_map: make [sva, eva) zero-fill memory with `prot` (flags: pmap_host_flags).
  // Nothing may be resident there.
  //  => KERN_RESOURCE_SHORTAGE when the host refuses (out of host mappings or memory).
  kern_return_t (*host_map)(pmap* pm, vaddr_t sva, vaddr_t eva, vm_prot_t prot, unsigned flags);
  // host_unmap: the host memory of [sva, eva) goes back; the range is an empty
  // reservation again (VM_PROT_NONE: an access is a fault vm_fault refuses).
  void (*host_unmap)(pmap* pm, vaddr_t sva, vaddr_t eva);
  // host_discard: the contents of each span go back to the host; the spans stay mapped
  // and read as zeros.  Many spans in one call cost the machine one batch (Linux: one
  // process_madvise and one TLB shootdown where a madvise each would pay one apiece).
  void (*host_discard)(const vm_span* spans, std::size_t n);
  // host_zero_resident: make [sva, eva) read as zeros, writing only into pages the host
  // holds (untouched pages stay untouched).
  void (*host_zero_resident)(vaddr_t sva, vaddr_t eva);
  // host_copy_resident: copy len bytes from src to dst (which reads as zeros), skipping
  // the pages of src the host holds no memory for (they read as zeros).
  void (*host_copy_resident)(vaddr_t dst, vaddr_t src, vsize_t len);
  // host_resident: bytes of [sva, eva) the host holds memory for.
  vsize_t (*host_resident)(vaddr_t sva, vaddr_t eva);

  // update (optional; null: nothing is deferred): finish the invalidations ts_referenced
  // deferred (NetBSD's pmap_update, Cranor's UVM dissertation: a batch of TLB flushes done
  // at once).  Until it is called a page whose reference was cleared may be touched without
  // the machine noticing (a missed reference, never wrong data).  The pageout daemon calls
  // it after each scan chunk, drop-behind after each run.
  //  => VM lock held (no mapping changes while the batch is in flight).
  void (*update)();

  // host_move (optional; null: the caller copies with host_copy_resident): move the host
  // memory of [src, src + len) to dst, both private host memory of one protection, dst
  // reading as zeros; afterwards src reads as zeros (still host memory) and dst holds what
  // src held, no byte copied (Linux: page tables moved by mremap, as glibc's realloc of an
  // mmapped chunk).  False when the host refused: then nothing moved and dst still reads
  // as zeros, and the caller copies.
  bool (*host_move)(vaddr_t dst, vaddr_t src, vsize_t len);

  // page_unmap_run (optional; null: page_protect(m, VM_PROT_NONE) page by page): remove
  // every mapping of each of pages[0..n) at once, the machine's invalidations made as one
  // batch before it returns (the pageout code's laundering cluster: Linux took a madvise
  // and a TLB shootdown per page, 45-350 us each on these guests).
  //  => VM lock held.
  void (*page_unmap_run)(vm_page* const* pages, vsize_t n);

  // host_discard_sparse (optional; null: the caller cannot tell which pages the host holds):
  // count the pages of [sva, eva) (private host memory) the host holds memory for and, when
  // 1 to max_pages of them do, give just those back as host_discard would.  Returns the
  // count, or once it passes max_pages any larger value (the walk stops there).
  vsize_t (*host_discard_sparse)(vaddr_t sva, vaddr_t eva, vsize_t max_pages);
};

// One physical map: the translations of one vmspace, covering [min, max).
// md is the machine-dependent layer's private state.
struct pmap {
  const pmap_ops* ops;
  vaddr_t min;
  vaddr_t max;
  void* md;
};

// Convenience wrappers (FreeBSD names).
inline kern_return_t pmap_enter(pmap* pm, vaddr_t va, vm_page* const* pages, vsize_t n, vm_prot_t prot) {
  return pm->ops->enter(pm, va, pages, n, prot);
}
inline kern_return_t pmap_enter_lazy(pmap* pm, vaddr_t va, vm_page* const* pages, vsize_t n, vm_prot_t prot) {
  return pm->ops->enter_lazy != nullptr ? pm->ops->enter_lazy(pm, va, pages, n, prot) : pm->ops->enter(pm, va, pages, n, prot);
}
inline void pmap_remove(pmap* pm, vaddr_t sva, vaddr_t eva) { pm->ops->remove(pm, sva, eva); }
inline void pmap_protect(pmap* pm, vaddr_t sva, vaddr_t eva, vm_prot_t prot) { pm->ops->protect(pm, sva, eva, prot); }
inline void pmap_reserve(pmap* pm, vaddr_t sva, vaddr_t eva, vm_prot_t prot) { pm->ops->reserve(pm, sva, eva, prot); }

// The pmap operations for pages not tied to a given pmap (page_protect, page_address,
// zero_pages, ...) go through the machine's default ops, set once at boot.
void pmap_set_machine_ops(const pmap_ops* ops);
const pmap_ops* pmap_machine_ops();
// Every mapping of pages[0..n) removed, in one batch where the machine can (see
// pmap_ops::page_unmap_run).  => VM lock held.
inline void pmap_page_unmap_run(vm_page* const* pages, vsize_t n) {
  const pmap_ops* ops = pmap_machine_ops();
  if (ops == nullptr) return;
  if (ops->page_unmap_run != nullptr) {
    ops->page_unmap_run(pages, n);
    return;
  }
  if (ops->page_protect != nullptr)
    for (vsize_t k = 0; k < n; ++k) ops->page_protect(pages[k], VM_PROT_NONE);
}
// The machine's update (see pmap_ops::update), when it has one.  => VM lock held.
inline void pmap_update() {
  const pmap_ops* ops = pmap_machine_ops();
  if (ops != nullptr && ops->update != nullptr) ops->update();
}

}  // namespace vmrt
