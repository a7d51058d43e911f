// vm_loan.h — page loanout between address spaces (Cranor's UVM dissertation, uvm_loan).
//
// A loan lends the pages of a lender's range to a borrower, read-only, without copying:
//  - the borrower gets new entries over the lender's objects (vm_map_extract, COW mode),
//    protection read-only (max protection kept: a borrower that makes its view writable
//    and writes gets its own copy of that page);
//  - the lender's entries need a copy from then on: its pages are copy-on-write for it;
//  - a write on either side copies the page for the writer (the ordinary copy-on-write
//    fault) and breaks the loan of that page for that side (vm_loan_break);
//  - every lent page carries PG_LOANED and a count (one per loan holding it): the pageout
//    daemon does not take it and a copy-on-write fault never moves it up into one side's
//    object, so the frame the borrower maps stays where it is while the loan lasts;
//  - a loan ends page by page: when either side unmaps the page's address (munmap, the
//    vmspace's exit, a transfer of the range), writes it, or the page dies with its last
//    mapping; vm_unloan unmaps the borrower's view at once.
// Where UVM lends pages to anons and to the kernel one by one, vmrt's Mach-style objects
// let both sides share the lender's object copy-on-write (a page is in exactly one
// object); the loan proper is the bookkeeping that pins the pages in the meantime.
// Shared (MAP_SHARED) or wired lender memory cannot be shared copy-on-write: the borrower
// gets a copy of it made at once (as vmspace_fork does), with no pages on loan.
//
// Locking: the VM lock guards every loan record and the per-page counts.
#pragma once

#include <cstdint>

#include "vm/vm_map.h"
#include "vm/vm_types.h"

namespace vmrt {

struct vmspace;
struct vm_page;

// Lend [laddr, laddr + len) of lender to borrower at baddr (0: the first free range of
// borrower; else exactly there).  *out: where the borrower sees it.  The lender's range is
// made resident first (read faults: may sleep for page-ins).
//  => takes the VM lock.  KERN_INVALID_ARGUMENT: unaligned addresses, len 0;
//     KERN_INVALID_ADDRESS: lender range outside its map, not fully mapped, a submap or
//     host memory, or baddr's range outside the borrower; KERN_PROTECTION_FAILURE: some
//     lender entry is not readable; KERN_ALREADY_EXISTS: baddr's range not free;
//     KERN_NO_SPACE: no free range in the borrower; KERN_RESOURCE_SHORTAGE.
kern_return_t vm_loan(vmspace* lender, vaddr_t laddr, vsize_t len, vmspace* borrower, vaddr_t baddr, vaddr_t* out);
// End the loans of the borrower's view [baddr, baddr + len) and unmap it.
//  => takes the VM lock.  KERN_INVALID_ARGUMENT: unaligned, len 0; KERN_INVALID_ADDRESS:
//     some page of the range is not a borrowed view.
kern_return_t vm_unloan(vmspace* borrower, vaddr_t baddr, vsize_t len);

// Pages a map has lent and borrowed (loan records' live pages).  => VM lock held.
void vm_loan_counts(const vm_map* map, std::uint64_t* loaned, std::uint64_t* borrowed);
// How many loans hold m (0 when not PG_LOANED).  => VM lock held.
unsigned vm_loan_count(const vm_page* m);
// Live loan records.  => VM lock held.
unsigned vm_loan_records();
// Consistency: every recorded page is PG_LOANED, allocated, and its count equals the
// records that hold it; the records' total is the "pages on loan" gauge.  Writes the first
// violation to fd; false on violation.  => VM lock held.
bool vm_loan_check(int fd);

// Hooks (=> VM lock held):
// e (of map, a lender or borrower entry) is being deleted: the pages visible through it
// leave the loans naming its range.  vm_map_delete calls it before the entry goes.
void vm_loan_unmapped(vm_map* map, const vm_map_entry* e);
// A copy-on-write fault at va of map copied the loaned page m for its writer: m leaves the
// loans naming va on map's side.  vm_fault calls it.
void vm_loan_break(vm_map* map, vaddr_t va, vm_page* m);
// m (PG_LOANED) is being freed: it leaves every loan.  vm_page_free calls it.
void vm_loan_page_freed(vm_page* m);

}  // namespace vmrt
