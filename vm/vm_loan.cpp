// vm_loan.cpp — page loanout: loan records, per-page loan counts, the hooks that end loans.
#include "vm/vm_loan.h"

#include "vm/vm_assert.h"
#include "vm/vm_fault.h"
#include "vm/vm_lock.h"
#include "vm/vm_map_extract.h"
#include "vm/vm_object.h"
#include "vm/vm_out.h"
#include "vm/vm_page.h"
#include "vm/vm_radix.h"
#include "vm/vm_stats.h"
#include "vm/vm_zone.h"
#include "vm/vmspace_impl.h"

namespace vmrt {

namespace {

// One loan: the lender's range, the borrower's view of it, and the pages still on loan
// (keyed by frame: a page keeps its frame when a collapse renames it into another object).
struct loan_rec {
  loan_rec* next VMRT_GUARDED_BY(g_vm_lock);
  loan_rec* prev VMRT_GUARDED_BY(g_vm_lock);
  vm_map* lender VMRT_GUARDED_BY(g_vm_lock);
  vaddr_t lstart VMRT_GUARDED_BY(g_vm_lock);
  vm_map* borrower VMRT_GUARDED_BY(g_vm_lock);
  vaddr_t bstart VMRT_GUARDED_BY(g_vm_lock);
  vsize_t len VMRT_GUARDED_BY(g_vm_lock);
  vm_radix pages VMRT_GUARDED_BY(g_vm_lock);        // frame -> vm_page* on loan
  std::uint64_t npages VMRT_GUARDED_BY(g_vm_lock);  // pages in `pages`
};

vm_zone g_loan_zone = VM_ZONE_INIT("VM LOAN", sizeof(loan_rec), 0);
loan_rec* g_loans VMRT_GUARDED_BY(g_vm_lock);       // every live loan
unsigned g_nloans VMRT_GUARDED_BY(g_vm_lock);
vm_radix g_loan_counts VMRT_GUARDED_BY(g_vm_lock);  // frame -> tagged count (count << 1 | 1) for PG_LOANED pages

constexpr vm_page* count_word(std::uint64_t n) { return reinterpret_cast<vm_page*>((n << 1) | 1); }
inline std::uint64_t count_of(const vm_page* w) { return reinterpret_cast<std::uintptr_t>(w) >> 1; }

// One more loan holds m.  False when out of radix nodes (m not loaned).
bool page_lend(loan_rec* r, vm_page* m) VMRT_REQUIRES(g_vm_lock) {
  frame_t f = vm_page_frame(m);
  if (vm_radix_lookup(&r->pages, f) != nullptr) return true;
  vm_page* w = vm_radix_lookup(&g_loan_counts, f);
  if (w == nullptr) {
    if (vm_radix_insert(&g_loan_counts, f, count_word(1)) != KERN_SUCCESS) return false;
  } else {
    vm_radix_replace(&g_loan_counts, f, count_word(count_of(w) + 1));
  }
  if (vm_radix_insert(&r->pages, f, m) != KERN_SUCCESS) {
    // Undo the count taken above.
    if (w == nullptr) vm_radix_remove(&g_loan_counts, f);
    else vm_radix_replace(&g_loan_counts, f, w);
    return false;
  }
  m->flags |= PG_LOANED;
  r->npages++;
  vm_stat_inc(V_LOANED_NOW);
  return true;
}

void rec_free(loan_rec* r) VMRT_REQUIRES(g_vm_lock) {
  VMRT_ASSERT(r->npages == 0 && vm_radix_is_empty(&r->pages));
  if (r->prev != nullptr) r->prev->next = r->next;
  else g_loans = r->next;
  if (r->next != nullptr) r->next->prev = r->prev;
  --g_nloans;
  vm_stat_inc(V_LOANS_ENDED);
  vm_zone_free(&g_loan_zone, r);
}

// r gives m back.  The record goes with its last page; returns true then.
bool page_return(loan_rec* r, vm_page* m) VMRT_REQUIRES(g_vm_lock) {
  frame_t f = vm_page_frame(m);
  if (vm_radix_remove(&r->pages, f) == nullptr) return false;
  vm_page* w = vm_radix_lookup(&g_loan_counts, f);
  VMRT_ASSERT(w != nullptr && count_of(w) >= 1);
  if (count_of(w) == 1) {
    vm_radix_remove(&g_loan_counts, f);
    m->flags &= static_cast<std::uint16_t>(~PG_LOANED);
  } else {
    vm_radix_replace(&g_loan_counts, f, count_word(count_of(w) - 1));
  }
  vm_stat_add(V_LOANED_NOW, -1);
  if (--r->npages == 0) {
    rec_free(r);
    return true;
  }
  return false;
}

// Does r name [s, t) of map on either side?  *base: that side's start.
bool names(const loan_rec* r, const vm_map* map, vaddr_t s, vaddr_t t, vaddr_t* base) VMRT_REQUIRES(g_vm_lock) {
  if (r->lender == map && s < r->lstart + r->len && t > r->lstart) {
    *base = r->lstart;
    return true;
  }
  if (r->borrower == map && s < r->bstart + r->len && t > r->bstart) {
    *base = r->bstart;
    return true;
  }
  return false;
}

// The resident page e shows at va (null when none).
vm_page* visible(const vm_map_entry* e, vaddr_t va) VMRT_REQUIRES(g_vm_lock) {
  if (e->object == nullptr) return nullptr;
  return vm_object_chain_lookup(e->object, atop(va - e->start + e->offset), nullptr);
}

// Entries of [s, t) of map: every one flagged with `flag`?  => [s, t) covered.
bool all_flagged(vm_map* map, vaddr_t s, vaddr_t t, std::uint16_t flag) VMRT_REQUIRES(g_vm_lock) {
  vm_map_entry* e;
  if (!vm_map_lookup_entry(map, s, &e)) return false;
  for (; !vm_map_is_end(map, e) && e->start < t; e = e->next)
    if ((e->eflags & flag) == 0) return false;
  return true;
}

// Flag the entries of [s, t) of map (clipped there by the extract).
void flag_range(vm_map* map, vaddr_t s, vaddr_t t, std::uint16_t flag, bool read_only) VMRT_REQUIRES(g_vm_lock) {
  vm_map_entry* e;
  VMRT_ASSERT(vm_map_lookup_entry(map, s, &e));
  for (; !vm_map_is_end(map, e) && e->start < t; e = e->next) {
    e->eflags |= flag;
    if (read_only && (e->protection & VM_PROT_WRITE)) {
      e->protection = static_cast<vm_prot_t>(e->protection & ~VM_PROT_WRITE);
      if (map->pm != nullptr) pmap_reserve(map->pm, e->start, e->end, e->protection);
    }
  }
}

}  // namespace

kern_return_t vm_loan(vmspace* lender, vaddr_t laddr, vsize_t len, vmspace* borrower, vaddr_t baddr, vaddr_t* out) {
  if (!page_aligned(laddr) || !page_aligned(baddr) || !page_aligned(len) || len == 0) return KERN_INVALID_ARGUMENT;
  vm_lock_guard g;
  vm_map* lm = &lender->map;
  vm_map* bm = &borrower->map;
  if (laddr < lm->min || laddr > lm->max || len > lm->max - laddr || !vm_map_range_covered(lm, laddr, laddr + len))
    return KERN_INVALID_ADDRESS;
  {
    vm_map_entry* e;
    vm_map_lookup_entry(lm, laddr, &e);
    for (; !vm_map_is_end(lm, e) && e->start < laddr + len; e = e->next)
      if ((e->protection & VM_PROT_READ) == 0) return KERN_PROTECTION_FAILURE;
  }
  // UVM's loan faults the pages in first.  Read faults: the lender's pages, not copies.
  for (vaddr_t va = laddr; va < laddr + len; va += PAGE_SIZE) {
    vm_fault_result r{};
    if (vm_fault_locked(lm, va, VM_FAULT_READ, VM_FAULT_POPULATE, laddr + len, &r) != KERN_SUCCESS) break;
    if (r.first + ptoa(r.npages) > va + PAGE_SIZE) va = r.first + ptoa(r.npages) - PAGE_SIZE;
  }
  // The faults may have slept: everything is checked again.
  vaddr_t d = baddr;
  if (d == 0) {
    kern_return_t kr = vm_map_findspace(bm, bm->min, len, PAGE_SIZE, &d);
    if (kr != KERN_SUCCESS) return kr;
  }
  kern_return_t kr = vm_map_share_check(lm, laddr, len, bm, d);
  if (kr == KERN_NO_SPACE && baddr != 0) return KERN_ALREADY_EXISTS;
  if (kr != KERN_SUCCESS) return kr;
  auto* r = vm_zone_new<loan_rec>(&g_loan_zone);
  if (r == nullptr) return KERN_RESOURCE_SHORTAGE;
  kr = vm_map_extract(lm, laddr, len, bm, d, VM_EXTRACT_COW);
  if (kr != KERN_SUCCESS) {
    vm_zone_free(&g_loan_zone, r);
    return kr;
  }
  flag_range(lm, laddr, laddr + len, MAP_ENTRY_LENDER, false);
  flag_range(bm, d, d + len, MAP_ENTRY_BORROWER, true);
  *r = loan_rec{nullptr, g_loans, lm, laddr, bm, d, len, vm_radix{}, 0};
  r->next = g_loans;
  r->prev = nullptr;
  if (g_loans != nullptr) g_loans->prev = r;
  g_loans = r;
  ++g_nloans;
  vm_stat_inc(V_LOANS);
  // The pages the borrower now shares copy-on-write with the lender go on loan; the
  // eagerly copied ones (shared or wired lender memory) are the borrower's own.
  vm_map_entry* e;
  VMRT_ASSERT(vm_map_lookup_entry(bm, d, &e));
  for (; !vm_map_is_end(bm, e) && e->start < d + len; e = e->next) {
    if ((e->eflags & MAP_ENTRY_NEEDS_COPY) == 0 || e->object == nullptr) continue;
    for (vaddr_t va = e->start; va < e->end; va += PAGE_SIZE) {
      vm_page* m = visible(e, va);
      if (m != nullptr && page_lend(r, m)) vm_stat_inc(V_LOAN_PAGES);
    }
  }
  if (r->npages == 0) rec_free(r);  // nothing to pin: the loan is over already
  *out = d;
  return KERN_SUCCESS;
}

kern_return_t vm_unloan(vmspace* borrower, vaddr_t baddr, vsize_t len) {
  if (!page_aligned(baddr) || !page_aligned(len) || len == 0) return KERN_INVALID_ARGUMENT;
  vm_lock_guard g;
  vm_map* bm = &borrower->map;
  if (baddr < bm->min || baddr > bm->max || len > bm->max - baddr || !vm_map_range_covered(bm, baddr, baddr + len) ||
      !all_flagged(bm, baddr, baddr + len, MAP_ENTRY_BORROWER))
    return KERN_INVALID_ADDRESS;
  vm_map_delete(bm, baddr, baddr + len);
  return KERN_SUCCESS;
}

void vm_loan_unmapped(vm_map* map, const vm_map_entry* e) {
  VM_LOCK_ASSERT();
  for (loan_rec* r = g_loans; r != nullptr;) {
    loan_rec* next = r->next;
    vaddr_t base;
    if (names(r, map, e->start, e->end, &base)) {
      vaddr_t s = e->start > base ? e->start : base;
      vaddr_t t = e->end < base + r->len ? e->end : base + r->len;
      for (vaddr_t va = s; va < t; va += PAGE_SIZE) {
        vm_page* m = visible(e, va);
        if (m != nullptr && (m->flags & PG_LOANED) && page_return(r, m)) break;  // r is gone
      }
    }
    r = next;
  }
}

void vm_loan_break(vm_map* map, vaddr_t va, vm_page* m) {
  VM_LOCK_ASSERT();
  if ((m->flags & PG_LOANED) == 0) return;
  for (loan_rec* r = g_loans; r != nullptr;) {
    loan_rec* next = r->next;
    vaddr_t base;
    if (names(r, map, va, va + PAGE_SIZE, &base) && vm_radix_lookup(&r->pages, vm_page_frame(m)) == m) {
      vm_stat_inc(V_LOAN_BREAKS);
      page_return(r, m);
    }
    r = next;
  }
}

void vm_loan_page_freed(vm_page* m) {
  VM_LOCK_ASSERT();
  for (loan_rec* r = g_loans; r != nullptr && (m->flags & PG_LOANED);) {
    loan_rec* next = r->next;
    page_return(r, m);
    r = next;
  }
}

void vm_loan_counts(const vm_map* map, std::uint64_t* loaned, std::uint64_t* borrowed) {
  VM_LOCK_ASSERT();
  *loaned = *borrowed = 0;
  for (const loan_rec* r = g_loans; r != nullptr; r = r->next) {
    if (r->lender == map) *loaned += r->npages;
    if (r->borrower == map) *borrowed += r->npages;
  }
}

unsigned vm_loan_count(const vm_page* m) {
  VM_LOCK_ASSERT();
  if ((m->flags & PG_LOANED) == 0) return 0;
  vm_page* w = vm_radix_lookup(&g_loan_counts, vm_page_frame(m));
  return w != nullptr ? static_cast<unsigned>(count_of(w)) : 0;
}

unsigned vm_loan_records() {
  VM_LOCK_ASSERT();
  return g_nloans;
}

bool vm_loan_check(int fd) {
  VM_LOCK_ASSERT();
  char buf[256];
  vm_out o(fd, buf, sizeof buf);
  std::uint64_t total = 0;
  unsigned n = 0;
  for (const loan_rec* r = g_loans; r != nullptr; r = r->next, ++n) {
    if (vm_radix_count(&r->pages) != r->npages || r->npages == 0) {
      o.str("loan check: a record's page count is wrong (").u(r->npages).str(")\n");
      return false;
    }
    total += r->npages;
  }
  if (n != g_nloans) {
    o.str("loan check: record count is wrong\n");
    return false;
  }
  // Every page on loan: allocated, PG_LOANED, and its count = the records holding it.
  std::uint64_t counted = 0;
  for (vm_pindex_t f = 0;;) {
    vm_pindex_t key;
    if (!vm_radix_next_key(&g_loan_counts, f, &key)) break;
    std::uint64_t c = count_of(vm_radix_lookup(&g_loan_counts, key));
    const vm_page* m = vm_page_from_frame(static_cast<frame_t>(key));
    std::uint64_t held = 0;
    for (const loan_rec* r = g_loans; r != nullptr; r = r->next)
      held += vm_radix_lookup(&r->pages, key) == m ? 1 : 0;
    if ((m->flags & PG_LOANED) == 0 || m->object == nullptr || m->queue == PQ_FREE || held != c) {
      o.str("loan check: frame ").u(key).str(" count ").u(c).str(" held by ").u(held).str(" records\n");
      return false;
    }
    counted += c;
    f = key + 1;
  }
  if (counted != total) {
    o.str("loan check: records hold ").u(total).str(" pages, counts say ").u(counted).str("\n");
    return false;
  }
  if (vm_stat_get(V_LOANED_NOW) != static_cast<std::int64_t>(total)) {
    o.str("loan check: 'pages on loan' is ").i(vm_stat_get(V_LOANED_NOW)).str(", records hold ").u(total).str("\n");
    return false;
  }
  return true;
}

}  // namespace vmrt
