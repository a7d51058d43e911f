// rt_vma_budget.h — the host's mapping limit (vm.max_map_count) shared between the program
// and vmrt.
//
// vmrt needs host VMAs of its own at any moment: unmapping or paging out a page in the
// middle of a frame mapping, or putting a reservation back after the program's munmap,
// splits a host mapping, and the host refuses a split at its limit.  Natively a program that
// fills the limit gets ENOMEM from its next mmap (or mprotect that would split) and goes on;
// under vmrt the same program would leave vmrt unable to unmap.  So vmrt keeps a headroom:
// the program's mappings are refused with ENOMEM once the process's VMAs come within
// kHeadroom of the limit — the program meets the kernel's answer a few thousand mappings
// early, and vmrt's own splits always fit.
//
// Cost: none far from the limit (an estimate from the region's incrementally kept VMA
// count).  Near it /proc/self/maps is counted again — the estimate misses the host mappings
// glibc makes itself (thread stacks, dlopen) and over-counts runs of adjacent mappings —
// each time the estimate has used up half the room the last count left, and past the limit
// every kRecountEvery refusals (12 counts for a program filling 65,530 mappings).
#pragma once

#include <cstddef>
#include <cstdint>

namespace vmrt::rt {

// The process's VMAs just before boot, estimated from the loaded objects' program headers
// (the shim's, libc_shim/shim_rtld.h), for vma_budget_init to start from instead of reading
// /proc/self/maps: opening it first instantiates the process's /proc entries, ~60-120 us
// in every exec'd process on these guests.  An estimate a few off costs nothing: near the
// limit the budget counts again.  0: none (vma_budget_init counts).  Before vma_budget_init.
void vma_budget_seed(std::size_t vmas);

// Count the VMAs now (or start from the seed).  Once, at boot.  vm.max_map_count is read
// later, when the estimate first passes 128 VMAs or the report asks for it.
void vma_budget_init();

// May the program's call add up to `n` host VMAs?  False: refuse it with ENOMEM (counted).
// Callable with or without the VM lock; never maps or mallocs.
bool vma_budget_allows(unsigned n);

// How far the process is past the pmap's share of the limit with `n` more VMAs: the estimate
// less (limit - 2 x headroom), so that the program's refusals (one headroom below the limit)
// and vmrt's own splits (the last headroom) keep their room while frame mappings give VMAs
// back (runtime/pmap_linux_vmas.cpp).  <= 0 when within it.  Lock-free; no system call
// (far from the limit not even the first read of the limit).
std::int64_t vma_budget_pmap_excess(unsigned n);

// A program mapping the host makes outside the region (not in the region's count).
void vma_budget_note_outside();

// What was chosen, for vmstat -s: the host's limit and the headroom kept for vmrt, and the
// VMAs the process was estimated to have at boot (the seed; 0: counted instead).
std::size_t vma_budget_limit();
std::size_t vma_budget_headroom();
std::size_t vma_budget_boot_estimate();

}  // namespace vmrt::rt
