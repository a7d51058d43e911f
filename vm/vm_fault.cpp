// vm_fault.cpp — page fault resolution (FreeBSD vm_fault.c).
//
// Read faults on private anonymous memory that is not copy-on-write shared map the
// zero-filled pages writable right away: vmrt has no shared zero page (a frame mapped
// at many addresses would cost one host VMA each), so the first read already pays for
// the page and a later write costs nothing.
#include "vm/vm_fault.h"

#include <cstring>

#include "vm/pmap.h"
#include "vm/vm_loan.h"
#include "vm/vm_lock.h"
#include "vm/vm_map.h"
#include "vm/vm_object.h"
#include "vm/vm_page.h"
#include "vm/vm_pageout.h"
#include "vm/vm_pager.h"
#include "vm/vm_reserv.h"
#include "vm/vm_stats.h"
#include "vm/vm_swapout.h"
#include "vmspace_impl.h"

namespace vmrt {
namespace {

VMRT_LARGE_BSS vm_page* g_run[kFaultMaxRun] VMRT_GUARDED_BY(g_vm_lock);  // fault-around page buffer

static_assert(kFaultWindow[VM_ADVICE_NORMAL].behind + kFaultWindow[VM_ADVICE_NORMAL].ahead + 1 <= kFaultMaxRun);
static_assert(kFaultWindow[VM_ADVICE_SEQUENTIAL].behind + kFaultWindow[VM_ADVICE_SEQUENTIAL].ahead + 1 <= kFaultMaxRun);

inline vaddr_t entry_va(const vm_map_entry* e, vm_pindex_t pindex) VMRT_REQUIRES(g_vm_lock) {
  return e->start + ptoa(pindex) - e->offset;
}

// Is pindex (of the first object) visible nowhere in the chain (neither resident nor stored)?
inline bool chain_absent(vm_object* first, vm_pindex_t p) VMRT_REQUIRES(g_vm_lock) {
  vm_chain_hit hit;
  return vm_object_chain_find(first, p, &hit) == CHAIN_ABSENT;
}

vm_object* chain_bottom(vm_object* o) VMRT_REQUIRES(g_vm_lock) {
  while (o->backing_object != nullptr) o = o->backing_object;
  return o;
}

// Grow a GROWS_DOWN entry down to va if va is within reach.  True when grown.
bool grow_stack(vm_map* map, vm_map_entry* below, vaddr_t va) VMRT_REQUIRES(g_vm_lock) {
  vm_map_entry* st = below->next;
  if (vm_map_is_end(map, st) || (st->eflags & MAP_ENTRY_GROWS_DOWN) == 0) return false;
  if (va + kStackGrowMax < st->start) return false;
  vaddr_t floor = vm_map_is_end(map, below) ? map->min : below->end + ptoa(kStackGuardPages);
  if (va < floor) return false;
  vaddr_t st_start = st->start;
  vm_prot_t prot = st->protection;
  // The new piece may merge with the stack entry (st is invalid afterwards).
  if (vm_map_insert(map, nullptr, 0, va, st_start, prot, st->max_protection, st->eflags, st->inheritance) !=
      KERN_SUCCESS)
    return false;
  if (map->pm != nullptr) pmap_reserve(map->pm, va, st_start, prot);
  vm_stat_inc(V_FAULT_STACK_GROW);
  return true;
}

// Pages mapped writable are in use again: an MADV_FREE'd page among them keeps its data
// from now on (the host has no dirty bit to tell a later write; vm_page.h, PG_FREEABLE).
//  => VM lock held.
void reuse_freeable(vm_page* const* pages, vsize_t n, vm_prot_t prot) VMRT_REQUIRES(g_vm_lock) {
  if ((prot & VM_PROT_WRITE) == 0) return;
  for (vsize_t k = 0; k < n; ++k) {
    if ((pages[k]->flags & PG_FREEABLE) == 0) continue;
    pages[k]->flags &= static_cast<std::uint16_t>(~PG_FREEABLE);
    vm_stat_inc(V_FREEABLE_REUSED);
  }
}

kern_return_t enter(vm_map* map, vaddr_t va, vm_page* const* pages, vsize_t n, vm_prot_t prot)
    VMRT_REQUIRES(g_vm_lock) {
  if (map->pm == nullptr) return KERN_SUCCESS;
  reuse_freeable(pages, n, prot);
  return pmap_enter(map->pm, va, pages, n, prot);
}

inline const fault_window& window_of(const vm_map_entry* e) VMRT_REQUIRES(g_vm_lock) {
  return kFaultWindow[e->advice < VM_ADVICE_COUNT ? e->advice : VM_ADVICE_NORMAL];
}

// The fault window [*lo, *hi) around pindex for entry e (advice), clamped to the entry;
// `ahead` overrides the advice's ahead pages when nonzero.
void fault_window_of(const vm_map_entry* e, vm_pindex_t pindex, vm_pindex_t* lo, vm_pindex_t* hi,
                     unsigned ahead = 0) VMRT_REQUIRES(g_vm_lock) {
  vm_pindex_t e_first = atop(e->offset);
  vm_pindex_t e_end = e_first + atop(e->end - e->start);
  const fault_window& w = window_of(e);
  vm_pindex_t a = ahead != 0 ? ahead : w.ahead;
  *lo = pindex - e_first >= w.behind ? pindex - w.behind : e_first;
  *hi = e_end - pindex > a ? pindex + a + 1 : e_end;
}

// Ahead window of a fault at pindex: the stream's doubled window when the fault continues
// the entry's sequential stream, else `base`; recorded in e->ra_pages.  base == 0 (random
// advice) never grows.
unsigned stream_ahead(vm_map_entry* e, vm_pindex_t pindex, unsigned base, unsigned max) VMRT_REQUIRES(g_vm_lock) {
  unsigned ra = base;
  if (base != 0 && pindex == e->next_pindex && e->ra_pages != 0) {
    ra = 2u * e->ra_pages;
    if (ra < base) ra = base;
    if (ra > max) ra = max;
  }
  e->ra_pages = static_cast<std::uint16_t>(ra);
  return ra;
}

// Drop the pages behind a stream (FreeBSD vm_fault_dontneed): the resident pages of the
// entry's object one cluster behind the one before the fault lose their reference and go to
// the head of the inactive queue, so the pageout daemon takes them before anything the
// program may still use (a scan larger than memory does not push out the rest of the
// program; a scan repeated over a working set larger than memory keeps the part of it that
// fits, instead of losing every page just before it is needed again, as LRU order does).
// Only pages still active: each is dropped once.  Two callers: every fault of an entry with
// MADV_SEQUENTIAL (drop_behind), and a page-in that continues a stream (page_in: FreeBSD
// drops behind once its read-ahead window is at its largest).
//  => VM lock held; paging on.
void drop_behind_run(const vm_map_entry* e, vm_pindex_t pindex) VMRT_REQUIRES(g_vm_lock) {
  vm_object* obj = e->object;
  const vm_pindex_t first = atop(e->offset);
  if (pindex < first + 2 * kPagerMaxRun) return;
  const vm_pindex_t hi = pindex - kPagerMaxRun, lo = hi - kPagerMaxRun;
  const pmap_ops* ops = pmap_machine_ops();
  for (vm_page* m = vm_radix_lookup_ge(&obj->rtree, lo); m != nullptr && m->pindex < hi;
       m = vm_radix_lookup_ge(&obj->rtree, m->pindex + 1)) {
    if (m->wire_count != 0 || (m->flags & PG_BUSY) || m->queue != PQ_ACTIVE) continue;
    if (ops != nullptr && ops->ts_referenced != nullptr) ops->ts_referenced(m);
    vm_page_deactivate(m);
    vm_stat_inc(V_FAULT_DROP_BEHIND);
  }
  pmap_update();
}

void drop_behind(vm_map_entry* e, vm_pindex_t pindex) VMRT_REQUIRES(g_vm_lock) {
  if (e->advice != VM_ADVICE_SEQUENTIAL || !vm_pageout_enabled() || e->object == nullptr) return;
  drop_behind_run(e, pindex);
}

// A clean paged-in page of `obj` is about to be mapped writable (vm_page.h, PG_SWAPCOPY):
// it can no longer be freed on trust, since the host has no dirty bit, and mapping it
// read-only to catch the first write would make the kernel's writes into it fail (read(2)
// into a buffer the program had only read: EFAULT).  A write fault's page changes: its copy
// goes.  A read fault's page of a swap object keeps its copy (PG_SWAPKEPT), as Linux keeps
// the swap copy of a page a read fault brought in: at pageout the swap pager compares the
// page with the copy and frees it without a write when nothing changed (a program that
// reads its data more often than it writes it: bash's ${#a} over a 40 MB string under
// 16M paged every page it read out again, 159 k pages re-laundered).
//  => VM lock held; the page is resident in obj and not busy.
void drop_swap_copy(vm_object* obj, vm_page* m, bool write) VMRT_REQUIRES(g_vm_lock) {
  if (write && (m->flags & PG_SWAPKEPT)) {  // the kept copy goes stale now
    vm_pager_free_range(obj, m->pindex, m->pindex + 1);
    m->flags &= static_cast<std::uint16_t>(~PG_SWAPKEPT);
    return;
  }
  if ((m->flags & PG_SWAPCOPY) == 0) return;
  if (!write && obj->type == OBJT_SWAP) {
    m->flags = static_cast<std::uint16_t>((m->flags & ~PG_SWAPCOPY) | PG_DIRTY | PG_SWAPKEPT);
    vm_stat_inc(V_SWAP_COPIES_KEPT);
    return;
  }
  vm_pager_free_range(obj, m->pindex, m->pindex + 1);
  m->flags = static_cast<std::uint16_t>((m->flags & ~PG_SWAPCOPY) | PG_DIRTY);
  vm_stat_inc(V_SWAP_COPIES_DROPPED);
}

// ---- swap read-around --------------------------------------------------------------------
// A page-in off a stream reads with the faulting page the neighbours its swap cluster holds
// (the pages one laundering write put in adjacent slots: written together because they
// went cold together, they are usually used together again; Linux's swap read-around of a
// page cluster does the same), within an aligned block of g_ra_window pages.  The window
// adapts to what the pages read around are worth: a fault on one soon after its read (within
// kRaTimely page-ins) is a hit (it saved a page-in the program was about to take:
// +kRaHitCredit), a fault on one later a late hit and a pageout of one never used a miss
// (-1 each: a late page held a frame the whole time, and under a full memory that frame was
// taken from a page in use, written out and read back later: a random walk over a working
// set about the size of memory touches every page read around eventually, so counting those
// as hits kept the window at 8-16 and wrote 6x as many pages out); the window doubles when
// the credit reaches twice the window and halves when it falls as far below.  So a copy
// between two buffers, a backward walk and the interleaved streams of one map entry (which
// the stream test cannot see) read whole clusters, and a random walk reads its page alone.
// At a window of one page nothing is read around, so nothing could widen it again: there a
// page-in next to the one before it (same object, the page before or after) counts as the
// hit read-around would have made (Linux's swapin_nr_pages probes adjacent offsets the same
// way).  A floor of two pages instead read one page for nothing at every random page-in:
// half of what it read, each displacing a page in use (a random walk over 200 MB through
// 128M: 2.0 pages read per page-in, 1 by 1 now).
constexpr unsigned kRaMin = 1, kRaMax = kPagerMaxRun, kRaStart = 8;
constexpr int kRaHitCredit = 2;
constexpr std::uint32_t kRaTimely = 8;                    // page-ins within which a use is a hit
constexpr unsigned kRaRecent = kRaTimely * kPagerMaxRun;  // pages read around in that time, at most
static_assert((kRaMin & (kRaMin - 1)) == 0 && (kRaMax & (kRaMax - 1)) == 0 && (kRaStart & (kRaStart - 1)) == 0);
static_assert(kRaMin <= kRaStart && kRaStart <= kRaMax && kRaMax <= kPagerMaxRun);
static_assert((kRaRecent & (kRaRecent - 1)) == 0, "the ring index wraps by mask");
unsigned g_ra_window VMRT_GUARDED_BY(g_vm_lock) = kRaStart;
int g_ra_credit VMRT_GUARDED_BY(g_vm_lock) = 0;
std::uint32_t g_pagein_seq VMRT_GUARDED_BY(g_vm_lock) = 0;  // page-ins so far
// The faulting page of the last page-in read around (compared, never dereferenced).
const vm_object* g_ra_last_obj VMRT_GUARDED_BY(g_vm_lock) = nullptr;
vm_pindex_t g_ra_last_pindex VMRT_GUARDED_BY(g_vm_lock) = 0;

// The pages read around lately, with the page-in that read each (a ring, newest at
// g_ra_next - 1): vm_page has no room for a stamp.
struct ra_recent {
  const vm_page* m;
  std::uint32_t seq;
};
VMRT_LARGE_BSS ra_recent g_ra_ring[kRaRecent] VMRT_GUARDED_BY(g_vm_lock);
unsigned g_ra_next VMRT_GUARDED_BY(g_vm_lock) = 0;

void ra_note(const vm_page* m) VMRT_REQUIRES(g_vm_lock) {
  g_ra_ring[g_ra_next++ & (kRaRecent - 1)] = ra_recent{m, g_pagein_seq};
}

// True when m was read around within the last kRaTimely page-ins.  Scans newest first and
// stops at the first entry too old (an entry left by an earlier read of the same frame is
// older than the one of its current read, so never the one found).  => VM lock held.
bool ra_timely(const vm_page* m) VMRT_REQUIRES(g_vm_lock) {
  for (unsigned k = 1; k <= kRaRecent; ++k) {
    const ra_recent& r = g_ra_ring[(g_ra_next - k) & (kRaRecent - 1)];
    if (r.m == nullptr || g_pagein_seq - r.seq > kRaTimely) return false;
    if (r.m == m) return true;
  }
  return false;
}

void ra_adjust(int delta) VMRT_REQUIRES(g_vm_lock) {
  g_ra_credit += delta;
  const int w = static_cast<int>(g_ra_window);
  if (g_ra_credit >= 2 * w) {
    if (g_ra_window < kRaMax) g_ra_window *= 2;
    g_ra_credit = 0;
  } else if (g_ra_credit <= -2 * w) {
    if (g_ra_window > kRaMin) g_ra_window /= 2;
    g_ra_credit = 0;
  }
}

// A page-in of page p of obj off a stream: at a window of one page, a page-in next to the
// last one is a hit read-around would have made (above).  => VM lock held.
void ra_probe(const vm_object* obj, vm_pindex_t p) VMRT_REQUIRES(g_vm_lock) {
  if (g_ra_window == 1 && obj == g_ra_last_obj && (p + 1 == g_ra_last_pindex || p == g_ra_last_pindex + 1)) {
    vm_stat_inc(V_FAULT_READAROUND_PROBES);
    ra_adjust(kRaHitCredit);
  }
  g_ra_last_obj = obj;
  g_ra_last_pindex = p;
}

// m was read around and is now used (hit, or late hit when not within kRaTimely page-ins
// of its read) or taken (miss): counted once, the window adjusted.  => VM lock held.
void ra_settle(vm_page* m, bool used) VMRT_REQUIRES(g_vm_lock) {
  if ((m->flags & PG_READAROUND) == 0) return;
  m->flags &= static_cast<std::uint16_t>(~PG_READAROUND);
  if (used && ra_timely(m)) {
    vm_stat_inc(V_FAULT_READAROUND_HITS);
    ra_adjust(kRaHitCredit);
    return;
  }
  vm_stat_inc(used ? V_FAULT_READAROUND_LATE : V_FAULT_READAROUND_MISSES);
  ra_adjust(-1);
}

// ---- dense blocks (vm_fault.h, kZeroBlock) ------------------------------------------------
vm_zero_dense_probe g_zero_dense_probe = nullptr;

// Widen a single-page zero fill at pindex of `first` (no backing object) to its aligned
// block of kZeroBlock pages (clamped to the entry) when `first` holds (resident or stored)
// at least kZeroDenseMin of the block's pages; the caller's run then fills the gap around
// pindex between the nearest held pages, and fill_gaps the block's other gaps.  True when
// widened.
//  => VM lock held.
bool dense_block(const vm_map_entry* e, vm_object* first, vm_pindex_t pindex, vm_pindex_t* lo, vm_pindex_t* hi)
    VMRT_REQUIRES(g_vm_lock) {
  const vm_pindex_t e_first = atop(e->offset), e_end = e_first + atop(e->end - e->start);
  vm_pindex_t b = pindex & ~vm_pindex_t{kZeroBlock - 1}, be = b + kZeroBlock;
  if (b < e_first) b = e_first;
  if (be > e_end) be = e_end;
  if (be - b < 2 * kZeroDenseMin) return false;
  unsigned held = 0;
  for (vm_page* m = vm_radix_lookup_ge(&first->rtree, b); m != nullptr && m->pindex < be && held < kZeroDenseMin;
       m = vm_radix_lookup_ge(&first->rtree, m->pindex + 1))
    ++held;
  if (held < kZeroDenseMin && first->type != OBJT_DEFAULT) {
    vm_pindex_t k = b;
    while (held < kZeroDenseMin && vm_radix_next_key(&first->pager_meta, k, &k) && k < be) {
      if (vm_page_lookup(first, k) == nullptr) ++held;
      ++k;
    }
  }
  if (held < kZeroDenseMin) return false;
  // Short of memory the gap's pages would displace pages in use (and be freed unused).
  if (vm_pageout_enabled() && vm_page_free_count() < 2 * vm_pageout_free_target() + kZeroBlock) return false;
  if (g_zero_dense_probe != nullptr && !g_zero_dense_probe()) return false;
  *lo = b;
  *hi = be;
  vm_stat_inc(V_FAULT_ZERO_DENSE);
  return true;
}

// Fill every gap of [lo, hi) of `first` (no backing object) that holds no page, resident or
// stored, with zero pages, one enter a gap: the rest of a dense block whose gap around the
// fault was just filled.  Stops at the first shortage (nothing is owed: they are extra).
//  => VM lock held; g_run is reused.
void fill_gaps(vm_map* map, const vm_map_entry* e, vm_object* first, vm_pindex_t lo, vm_pindex_t hi, vm_prot_t prot)
    VMRT_REQUIRES(g_vm_lock) {
  vm_pindex_t q = lo;
  while (q < hi) {
    while (q < hi && vm_page_lookup(first, q) != nullptr) ++q;
    vm_pindex_t gs = q;
    vm_page* above = q < hi ? vm_radix_lookup_ge(&first->rtree, q) : nullptr;
    vm_pindex_t ge = above != nullptr && above->pindex < hi ? above->pindex : hi;
    if (first->type != OBJT_DEFAULT) {  // stored pages end a gap too (and one may start it)
      vm_pindex_t k;
      if (vm_radix_next_key(&first->pager_meta, gs, &k) && k < ge) {
        if (k == gs) {
          q = gs + 1;
          continue;
        }
        ge = k;
      }
    }
    if (ge <= gs) break;
    vsize_t got = vm_page_alloc_run(first, gs, ge - gs, VM_ALLOC_ZERO, g_run);
    if (got == 0) return;
    if (enter(map, entry_va(e, gs), g_run, got, prot) != KERN_SUCCESS) return;
    vm_stat_add(V_FAULT_ZERO_PAGES, static_cast<std::int64_t>(got));
    vm_stat_add(V_FAULT_AROUND_PAGES, static_cast<std::int64_t>(got));
    if (got < ge - gs) return;
    q = ge;
  }
}

// Page at q when it is resident in the chain and held by first (in_first) or by a backing
// object (!in_first); null otherwise.
vm_page* resident_of_class(vm_object* first, vm_pindex_t q, bool in_first) VMRT_REQUIRES(g_vm_lock) {
  vm_object* owner = nullptr;
  vm_page* m = vm_object_chain_lookup(first, q, &owner);
  if (m == nullptr || (owner == first) != in_first || (m->flags & PG_BUSY)) return nullptr;
  return m;
}

// The block a fault on an MADV_FREE'd page maps with it (map_resident_run): 2 MiB.
inline constexpr vm_pindex_t kFreeableBlockPages = 512;
static_assert(kFreeableBlockPages <= kFaultMaxRun, "the block fits in g_run");

// Read fault on a resident page: map it and the contiguous run of neighbours (within the
// advice window) that are resident in the same kind of object, with one enter.
kern_return_t map_resident_run(vm_map* map, vm_map_entry* e, vm_object* first, vm_pindex_t pindex, bool in_first,
                               vm_prot_t prot, vm_fault_result* r) VMRT_REQUIRES(g_vm_lock) {
  vm_pindex_t lo, hi;
  fault_window_of(e, pindex, &lo, &hi);
  // Memory given back with MADV_FREE is taken back a range at a time (an allocator reusing
  // a run): a fault on such a page takes its MADV_FREE'd neighbours in the aligned 2 MiB
  // block with it, all in use again.  Page by page, a round of reuse of 64 MiB took 45x the
  // time of MADV_DONTNEED's dense zero-fill; with the advice's window, 1.34x.
  // The window is then the block (within the entry), never more: g_run holds kFaultMaxRun.
  if (in_first) {
    vm_page* here = vm_page_lookup(first, pindex);
    if (here != nullptr && (here->flags & PG_FREEABLE) != 0) {
      const vm_pindex_t e_first = atop(e->offset), e_end = e_first + atop(e->end - e->start);
      const vm_pindex_t b = pindex & ~static_cast<vm_pindex_t>(kFreeableBlockPages - 1);
      lo = b > e_first ? b : e_first;
      hi = b + kFreeableBlockPages < e_end ? b + kFreeableBlockPages : e_end;
    }
  }
  VMRT_ASSERT(hi - lo <= kFaultMaxRun);
  vm_pindex_t rs = pindex, re = pindex + 1;
  // (Pages read around a random fault are left for their own faults: a hit or a miss each.)
  auto joins = [&](vm_pindex_t q) VMRT_REQUIRES(g_vm_lock) {
    vm_page* m = resident_of_class(first, q, in_first);
    return m != nullptr && (m->flags & PG_READAROUND) == 0;
  };
  while (rs > lo && joins(rs - 1)) --rs;
  while (re < hi && joins(re)) ++re;
  for (vm_pindex_t q = rs; q < re; ++q) {
    g_run[q - rs] = resident_of_class(first, q, in_first);
    // A clean page whose swap copy is current is never mapped writable (vm_page.h).
    if ((prot & VM_PROT_WRITE) && in_first) drop_swap_copy(first, g_run[q - rs], false);
  }
  vsize_t n = re - rs;
  vm_stat_add(V_FAULT_AROUND_PAGES, static_cast<std::int64_t>(n - 1));
  r->first = entry_va(e, rs);
  r->npages = n;
  return enter(map, r->first, g_run, n, prot);
}

}  // namespace

namespace {

// Page in the page the chain shows stored at `hit` (and, as the entry's advice allows, the
// stored neighbours around it that are not resident) from the owning object's pager, in one
// read.  Ends in KERN_RESTART: the fault looks again and finds the page resident.
//  => VM lock held; dropped during the read (the pages are busy, the object referenced).
//     KERN_RESOURCE_SHORTAGE when no frame; KERN_MEMORY_ERROR when the faulting page could not
//     be read back intact (I/O error, checksum mismatch).
kern_return_t page_in(const vm_map_entry* e, vm_pindex_t pindex, const vm_chain_hit& hit) VMRT_REQUIRES(g_vm_lock) {
  vm_object* obj = hit.owner;
  const vm_pindex_t p = hit.pindex;
  // Read-ahead only pays along a stream: a fault that continues where the entry's last
  // fault ended, or SEQUENTIAL advice, reads a whole cluster ahead; any other fault reads
  // the page alone (speculative pages would push out pages a random walk still needs).
  vm_pindex_t e_first = atop(e->offset), e_end = e_first + atop(e->end - e->start);
  bool stream = e->advice == VM_ADVICE_SEQUENTIAL || (e->advice != VM_ADVICE_RANDOM && pindex == e->next_pindex);
  // Off a stream, read around: the aligned block of the read-around window that holds the
  // page, as far as the page's swap cluster reaches (swap read-around, above).
  const vm_pager_ops* pgr = vm_pager_of(obj);
  bool around = !stream && e->advice != VM_ADVICE_RANDOM && pgr->cluster != nullptr;
  if (around) ra_probe(obj, p);
  unsigned before = around ? static_cast<unsigned>(p & (g_ra_window - 1)) : 0;
  unsigned after = stream ? kPagerMaxRun - 1 : around ? g_ra_window - 1 - before : 0;
  if (pindex - e_first < before) before = static_cast<unsigned>(pindex - e_first);
  if (e_end - pindex - 1 < after) after = static_cast<unsigned>(e_end - pindex - 1);
  if (around ? !pgr->cluster(obj, p, &before, &after) : !vm_pager_has_page(obj, p, &before, &after))
    return KERN_RESTART;  // changed under us
  // Before the read: e is not ours once the lock drops.
  if (stream && e->advice != VM_ADVICE_SEQUENTIAL && e->object != nullptr) drop_behind_run(e, pindex);
  vm_pindex_t rs = p, re = p + 1;
  while (rs > p - before && vm_page_lookup(obj, rs - 1) == nullptr) --rs;
  while (re < p + 1 + after && vm_page_lookup(obj, re) == nullptr) ++re;
  vsize_t got = vm_page_alloc_run(obj, rs, re - rs, VM_ALLOC_NORMAL, g_run);
  if (got < p - rs + 1) {  // the faulting page itself did not fit in the run: alone
    for (vsize_t k = 0; k < got; ++k) vm_page_free(g_run[k]);
    vm_page_free_flush();
    rs = p;
    got = vm_page_alloc_run(obj, p, 1, VM_ALLOC_NORMAL, g_run);
    if (got == 0) return KERN_RESOURCE_SHORTAGE;
  }
  unsigned n = static_cast<unsigned>(got);
  vm_page* pages[kPagerMaxRun];
  for (unsigned k = 0; k < n; ++k) {
    pages[k] = g_run[k];  // g_run is shared: another fault may use it while we sleep
    pages[k]->flags = static_cast<std::uint16_t>((pages[k]->flags & ~(PG_ZERO | PG_DIRTY)) | PG_BUSY | PG_PAGEIN);
  }
  vm_object_reference(obj);
  ++g_pagein_seq;
  vm_pager_result rt[kPagerMaxRun];
  vm_pager_io_enter();
  vm_pager_of(obj)->get_pages(obj, pages, n, true, rt);
  vm_pager_io_exit();
  kern_return_t kr = KERN_RESTART;
  for (unsigned k = 0; k < n; ++k) {
    vm_page* m = pages[k];
    vm_page_unbusy(m);
    m->flags &= static_cast<std::uint16_t>(~PG_PAGEIN);
    bool mine = rs + k == p;
    if ((m->flags & PG_RELEASED) || rt[k] != VM_PAGER_OK) {
      // Died while read, or read back wrong: the page goes; a bad copy stays recorded, so
      // every later touch fails the same way until the range is unmapped.
      // (A vnode pager's ABSENT: the file ended before the page, cut since it was mapped.)
      if (mine && rt[k] != VM_PAGER_OK && (m->flags & PG_RELEASED) == 0)
        kr = rt[k] == VM_PAGER_ABSENT ? KERN_PAGER_ABSENT : KERN_MEMORY_ERROR;
      vm_page_free(m);
      continue;
    }
    m->flags |= PG_SWAPCOPY;
    if (around && !mine) {
      m->flags |= PG_READAROUND;
      ra_note(m);
      vm_stat_inc(V_FAULT_READAROUND);
    }
    // Pages read ahead stay on the active queue where the allocation put them.  (On the
    // inactive queue's head the scan met them first, found them referenced as soon as the
    // stream's fault mapped them, and took their PTEs: a minor fault per page read ahead.)
  }
  vm_page_free_flush();
  vm_page_busy_wakeup();
  vm_object_deallocate(obj);
  vm_stat_inc(V_FAULT_PAGEIN);
  vm_stat_add(V_FAULT_READAHEAD, static_cast<std::int64_t>(n - 1));
  if (kr == KERN_PAGER_ABSENT) vm_stat_inc(V_FILE_SIGBUS);
  return kr;
}

// One attempt at the fault (the stages of vm_fault_locked): look up the entry, walk the
// shadow chain, read from a pager or wait for a busy page (both end in KERN_RESTART),
// copy-on-write, zero fill, enter.
kern_return_t fault_once(vm_map* map, vaddr_t va, vm_fault_type type, unsigned flags, vaddr_t populate_end,
                         vm_fault_result* res) VMRT_REQUIRES(g_vm_lock) {
  va = trunc_page(va);
  vm_map_entry* e;
  if (!vm_map_lookup_entry(map, va, &e)) {
    if (!grow_stack(map, e, va) || !vm_map_lookup_entry(map, va, &e)) {
      vm_stat_inc(V_FAULT_NOENTRY_TRAPS);
      return KERN_INVALID_ADDRESS;
    }
  }
  if (e->eflags & MAP_ENTRY_IS_SUBMAP) {
    map = e->submap;
    if (!vm_map_lookup_entry(map, va, &e) || (e->eflags & MAP_ENTRY_IS_SUBMAP)) {
      vm_stat_inc(V_FAULT_NOENTRY_TRAPS);
      return KERN_INVALID_ADDRESS;
    }
  }
  if ((type & e->protection) != type) {  // (host memory too: a write to a read-only file mapping)
    vm_stat_inc(V_FAULT_PROT_TRAPS);
    return KERN_PROTECTION_FAILURE;
  }
  if (e->eflags & MAP_ENTRY_HOSTMEM) {
    // The machine provides this entry's pages where they exist: a fault means the range
    // is not host memory now (a trimmed heap window), an access to nothing.
    vm_stat_inc(V_FAULT_HOSTMEM_TRAPS);
    return KERN_INVALID_ADDRESS;
  }
  bool wire = (flags & VM_FAULT_WIRE) != 0;
  bool write = (type & VM_FAULT_WRITE) != 0;

  if (e->object == nullptr) {
    e->object = vm_object_allocate(OBJT_DEFAULT, atop(e->end - e->start));
    if (e->object == nullptr) {
      vm_stat_inc(V_FAULT_SHORTAGE);
      return KERN_RESOURCE_SHORTAGE;
    }
    e->object->flags |= OBJ_ONEMAPPING;
    e->offset = 0;
  }
  if (e->eflags & MAP_ENTRY_NEEDS_COPY) {
    vm_object* obj = e->object;
    if (obj->ref_count == 1 && (obj->flags & OBJ_ANON)) {
      // Nobody else shares the object any more: no copy needed.
      e->eflags &= static_cast<std::uint16_t>(~MAP_ENTRY_NEEDS_COPY);
      vm_stat_inc(V_FAULT_NEEDS_COPY_CLR);
    } else if (write) {
      if (vm_object_shadow(&e->object, &e->offset, e->end - e->start) != KERN_SUCCESS) {
        vm_stat_inc(V_FAULT_SHORTAGE);
        return KERN_RESOURCE_SHORTAGE;
      }
      e->object->flags |= OBJ_ONEMAPPING;
      e->eflags &= static_cast<std::uint16_t>(~MAP_ENTRY_NEEDS_COPY);
      vm_stat_inc(V_FAULT_NEEDS_COPY);
    }
  }
  vm_object* first = e->object;
  vm_pindex_t pindex = atop(va - e->start + e->offset);
  vm_prot_t prot = e->protection;
  if (e->eflags & MAP_ENTRY_NEEDS_COPY) prot &= static_cast<vm_prot_t>(~VM_PROT_WRITE);

  vm_chain_hit hit{nullptr, 0, nullptr};
  vm_chain_state st = vm_object_chain_find(first, pindex, &hit);
  if (st == CHAIN_STORED) return page_in(e, pindex, hit);
  vm_object* owner = hit.owner;
  vm_page* m = hit.m;
  if (m != nullptr && (m->flags & PG_BUSY)) {  // a pager is reading or writing it
    vm_stat_inc(V_FAULT_BUSY_WAITS);
    vm_page_busy_sleep();
    return KERN_RESTART;
  }
  vm_fault_result r{va, 1};
  kern_return_t kr = KERN_SUCCESS;
  if (m != nullptr) ra_settle(m, true);  // a fault found it resident

  if (m != nullptr && owner == first) {
    vm_stat_inc(V_FAULT_RESIDENT);
    if (prot & VM_PROT_WRITE) drop_swap_copy(first, m, write);
    vm_prot_t mprot = (m->flags & PG_SWAPCOPY) ? static_cast<vm_prot_t>(prot & ~VM_PROT_WRITE) : prot;
    if (write || (flags & VM_FAULT_WIRE)) kr = enter(map, va, &m, 1, mprot);
    else kr = map_resident_run(map, e, first, pindex, true, prot, &r);
  } else if (m != nullptr) {
    if (write) {
      bool moved = false;
      if (owner == first->backing_object && owner->ref_count == 1 && owner->shadow_count == 1 &&
          (owner->flags & OBJ_ANON) && m->wire_count == 0 && (m->flags & PG_LOANED) == 0) {
        // Only our object sees the backing page: take it instead of copying.
        if (vm_page_rename(m, first, pindex) == KERN_SUCCESS) {
          moved = true;
          vm_stat_inc(V_COW_OPTIM);
        }
      }
      if (!moved) {
        // Copy up.  On sequential write faults (this one starts where the last fault of
        // the entry ended) copy a run of the following backing pages too, one enter.
        vsize_t n = 1;
        if (pindex == e->next_pindex && !(flags & VM_FAULT_WIRE) && window_of(e).ahead != 0) {
          vm_pindex_t lo, hi;
          unsigned ahead = stream_ahead(e, pindex, kCowAheadMin, kCowAheadMax);
          fault_window_of(e, pindex, &lo, &hi, ahead);
          if (hi > pindex + ahead) hi = pindex + ahead;
          while (pindex + n < hi) {
            vm_object* o2 = nullptr;
            vm_page* s2 = vm_object_chain_lookup(first, pindex + n, &o2);
            if (s2 == nullptr || o2 == first || (s2->flags & PG_BUSY)) break;
            ++n;
          }
        }
        vsize_t got = vm_page_alloc_run(first, pindex, n, VM_ALLOC_NORMAL, g_run);
        if (got == 0) {
          vm_stat_inc(V_FAULT_SHORTAGE);
          return KERN_RESOURCE_SHORTAGE;
        }
        const pmap_ops* ops = pmap_machine_ops();
        for (vsize_t k = 0; k < got; ++k) {
          vm_page* src = vm_object_chain_lookup(first->backing_object, pindex + k + first->backing_offset, nullptr);
          VMRT_ASSERT(src != nullptr);
          std::memcpy(ops->page_address(g_run[k]), ops->page_address(src), PAGE_SIZE);
          g_run[k]->flags |= PG_DIRTY;
          if (src->flags & PG_LOANED) vm_loan_break(map, va + ptoa(k), src);  // the writer's loan of src ends
          // Others sharing `first` may map the backing page: make them look again.
          if (first->ref_count > 1 && ops->page_protect != nullptr) ops->page_protect(src, VM_PROT_NONE);
        }
        vm_stat_add(V_COW_FAULTS, static_cast<std::int64_t>(got));
        vm_stat_add(V_FAULT_AROUND_PAGES, static_cast<std::int64_t>(got - 1));
        m = g_run[0];
        r.npages = got;
        kr = enter(map, va, g_run, got, prot);
        e->next_pindex = pindex + got;
        if (kr != KERN_SUCCESS) {
          vm_stat_inc(V_FAULT_SHORTAGE);
          return kr;
        }
        if (wire) vm_page_wire(m);
        if (res != nullptr) *res = r;
        return KERN_SUCCESS;
      }
      m->flags |= PG_DIRTY;
      kr = enter(map, va, &m, 1, prot);
    } else {
      vm_stat_inc(V_FAULT_BACKING_READ);
      if (flags & VM_FAULT_WIRE) kr = enter(map, va, &m, 1, static_cast<vm_prot_t>(prot & ~VM_PROT_WRITE));
      else kr = map_resident_run(map, e, first, pindex, false, static_cast<vm_prot_t>(prot & ~VM_PROT_WRITE), &r);
    }
  } else if (vm_object* bottom = chain_bottom(first); (bottom->flags & OBJ_ANON) == 0) {
    // Pages that must come from a pager and that it does not have: a vnode object's page
    // past the end of its file (SIGBUS BUS_ADRERR, as Linux); the device pager is a stub.
    if (bottom->type == OBJT_VNODE) {
      vm_stat_inc(V_FILE_SIGBUS);
      return KERN_PAGER_ABSENT;
    }
    vm_stat_inc(V_FAULT_SHORTAGE);
    return KERN_MEMORY_ERROR;
  } else {
    // Zero fill, with fault-around: a run of non-resident neighbours in one enter.
    vm_pindex_t e_first = atop(e->offset);
    vm_pindex_t e_end = e_first + atop(e->end - e->start);
    vm_pindex_t lo, hi;  // window [lo, hi)
    bool superpage = (e->eflags & MAP_ENTRY_SUPERPAGE) != 0;
    bool dense = false;  // a dense block: its other gaps are filled too (fill_gaps)
    const bool on_stream = pindex == e->next_pindex;
    if (!on_stream) e->zero_stream = 0;
    if (superpage) {
      // The whole reservation window (clamped to the entry): one frame-contiguous run, one
      // host mapping, entered lazily so that pages never touched cost no host memory.
      vm_pindex_t wb = pindex & ~(VM_RESERV_NPAGES - 1);
      lo = wb > e_first ? wb : e_first;
      hi = wb + VM_RESERV_NPAGES < e_end ? wb + VM_RESERV_NPAGES : e_end;
    } else if (flags & VM_FAULT_POPULATE) {
      vm_pindex_t pend = atop(round_page(populate_end) - e->start + e->offset);
      lo = pindex;
      hi = pend < e_end ? pend : e_end;
      if (hi - lo > kFaultMaxRun) hi = lo + kFaultMaxRun;
      if (hi <= lo) hi = lo + 1;
    } else if (e->advice != VM_ADVICE_SEQUENTIAL &&
               (on_stream ? (e->eflags & MAP_ENTRY_ZERO_SINGLE) && e->zero_stream < kZeroStreamMin
                          : (e->eflags & MAP_ENTRY_ZERO_SINGLE) || vm_pageout_enabled())) {
      // Only its page: Linux's anonymous faults (ZERO_SINGLE entries, until a sequential
      // run has proven itself over kZeroStreamMin pages: from there on, fault-around fills
      // ahead as for any stream, one host mapping per run — a program's pageable mmap
      // written front to back took a userfaultfd round trip and a host mmap per page, 2.5x
      // the host's first-touch time); and, with paging on, any fault off a stream (the
      // entry's last fault did not end here).  Fault-around there fills a window of 128
      // zero pages around each touch of a large sparse table (xz's match finder hash: 44 k
      // of 52 k zero-filled pages were freed unwritten by the pageout daemon), each one
      // zeroed, mapped, scanned, unmapped and checked for zeros.
      lo = pindex;
      hi = pindex + 1;
      if (first->backing_object == nullptr && dense_block(e, first, pindex, &lo, &hi)) dense = true;
    } else {
      fault_window_of(e, pindex, &lo, &hi, stream_ahead(e, pindex, window_of(e).ahead, kSeqAheadMax));
    }
    vm_pindex_t rs = pindex, re = pindex + 1;
    if (first->backing_object == nullptr) {
      // One object: the nearest resident pages bound the run.
      vm_page* below = pindex > 0 ? vm_radix_lookup_le(&first->rtree, pindex - 1) : nullptr;
      vm_page* above = vm_radix_lookup_ge(&first->rtree, pindex + 1);
      rs = below != nullptr && below->pindex + 1 > lo ? below->pindex + 1 : lo;
      re = above != nullptr && above->pindex < hi ? above->pindex : hi;
      if (first->type != OBJT_DEFAULT) {  // and so do the pages its pager holds
        vm_pindex_t k;
        while (vm_radix_next_key(&first->pager_meta, rs, &k) && k < pindex) rs = k + 1;
        if (vm_radix_next_key(&first->pager_meta, pindex + 1, &k) && k < re) re = k;
      }
    } else {
      while (rs > lo && chain_absent(first, rs - 1)) --rs;
      while (re < hi && chain_absent(first, re)) ++re;
    }
    vsize_t n = re - rs;
    const unsigned aflags = superpage ? VM_ALLOC_ZERO | VM_ALLOC_ZERO_RELEASE : VM_ALLOC_ZERO;
    vsize_t got = vm_page_alloc_run(first, rs, n, aflags, g_run);
    if (got < n && got < pindex - rs + 1) {
      // The faulting page itself could not be allocated in the run: retry alone.
      for (vsize_t k = 0; k < got; ++k) vm_page_free(g_run[k]);
      vm_page_free_flush();
      rs = pindex;
      got = vm_page_alloc_run(first, pindex, 1, aflags, g_run);
      if (got == 0) {
        vm_stat_inc(V_FAULT_SHORTAGE);
        return KERN_RESOURCE_SHORTAGE;
      }
    }
    if (write && !superpage)
      for (vsize_t k = 0; k < got; ++k) g_run[k]->flags |= PG_DIRTY;
    e->zero_stream = static_cast<std::uint16_t>(e->zero_stream + got < 0xffffu ? e->zero_stream + got : 0xffffu);
    vm_stat_inc(V_FAULT_ZERO_FILL);
    vm_stat_add(V_FAULT_ZERO_PAGES, static_cast<std::int64_t>(got));
    vm_stat_add(V_FAULT_AROUND_PAGES, static_cast<std::int64_t>(got - 1));
    m = g_run[pindex - rs];
    r.first = entry_va(e, rs);
    r.npages = got;
    kr = superpage && map->pm != nullptr ? pmap_enter_lazy(map->pm, r.first, g_run, got, prot)
                                         : enter(map, r.first, g_run, got, prot);
    if (kr == KERN_SUCCESS && dense) fill_gaps(map, e, first, lo, hi, prot);
  }
  if (kr != KERN_SUCCESS) {
    vm_stat_inc(V_FAULT_SHORTAGE);
    return kr;
  }
  if (write) m->flags |= PG_DIRTY;
  if (wire) vm_page_wire(m);
  drop_behind(e, pindex);
  e->next_pindex = atop(r.first - e->start + e->offset) + r.npages;
  if (res != nullptr) *res = r;
  return KERN_SUCCESS;
}

}  // namespace

void vm_fault_set_zero_dense_probe(vm_zero_dense_probe probe) { g_zero_dense_probe = probe; }

void vm_fault_readaround_miss(vm_page* m) {
  VM_LOCK_ASSERT();
  ra_settle(m, false);
}

// How many frames a fault that found none asks the pageout code to free, and how often.
constexpr frame_t kFaultReclaim = 64;
constexpr unsigned kFaultReclaimTries = 8;

kern_return_t vm_fault_locked(vm_map* map, vaddr_t va, vm_fault_type type, unsigned flags, vaddr_t populate_end,
                              vm_fault_result* res) {
  VM_LOCK_ASSERT();
  vm_stat_inc(V_FAULTS);
  unsigned tries = 0;
  for (;;) {
    kern_return_t kr = fault_once(map, va, type, flags, populate_end, res);
    if (kr == KERN_RESTART) {
      vm_stat_inc(V_FAULT_RESTARTS);
      continue;
    }
    if (kr == KERN_RESOURCE_SHORTAGE && vm_pageout_enabled() && tries++ < kFaultReclaimTries) {
      vm_stat_inc(V_PD_DIRECT);
      if (vm_swapout_direct() > 0) continue;  // the second level first: an idle vmspace goes
      if (vm_pageout_reclaim(kFaultReclaim, true) > 0 || vm_page_free_count() > 0) continue;
      // Nothing to take now, but a laundering write (the daemon's, or another fault's) will
      // free its frames when it ends: wait for it rather than fail.
      if (vm_pageout_in_flight()) {
        --tries;
        vm_page_busy_sleep();
        continue;
      }
    }
    return kr;
  }
}

kern_return_t vm_fault(vmspace* vs, vaddr_t va, vm_fault_type type, vm_fault_result* res) {
  if (vm_lock_owned()) return KERN_FAILURE;  // a fault while this thread holds the VM lock
  vm_lock_guard g;
  if (va < vs->map.min || va >= vs->map.max) {
    vm_stat_inc(V_FAULTS);
    vm_stat_inc(V_FAULT_NOENTRY_TRAPS);
    return KERN_INVALID_ADDRESS;
  }
  vm_swapout_faulted(vs);
  return vm_fault_locked(&vs->map, va, type, VM_FAULT_NORMAL, 0, res);
}

}  // namespace vmrt
