// pmap_linux_impl.h — the Linux pmap's insides, shared by its files (not for other users:
// runtime/pmap_linux.h is the interface).
//
//   pmap_linux.cpp       the software page tables, reservations, entering and removing frame
//                        runs, the pmap_ops table, reference tracking, the userfaultfd
//                        handler's first step
//   pmap_linux_wp.cpp    write protection through the userfaultfd (copy-on-write pages of the
//                        API's vmspaces; a host fork's shared frames)
//   pmap_linux_host.cpp  host memory in the region (the heap's windows, the program's own
//                        mappings): mapping, discarding, moving, protecting it
//   pmap_linux_fork.cpp  a host fork: frames shared copy-on-write with the child, the child's
//                        registrations and its first faults
//
// Locking: the pmap lock (g_lock) guards every table here; "=> pmap lock held" below means
// the caller holds it, and the declaration says VMRT_REQUIRES(g_lock) for the analysis
// (vm/vm_thread_safety.h).  The userfaultfd thread reads g_bits without it, as a hint
// (pmap_linux_allows and its kin, marked as such).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "runtime/physmem.h"
#include "runtime/pmap_linux.h"
#include "runtime/region.h"
#include "runtime/rt_base.h"
#include "runtime/rt_stats.h"
#include "runtime/spinlock.h"
#include "vm/vm_page.h"
#include "vm/vm_sys.h"

#ifndef UFFDIO_CONTINUE_MODE_WP
#define UFFDIO_CONTINUE_MODE_WP ((__u64)1 << 1)
#endif

namespace vmrt::rt::pml {

// The pmap lock, a capability for the analysis (runtime/spinlock.h): the tables' accessors
// below say VMRT_REQUIRES(g_lock), as do the functions that use them.
extern spinlock g_lock;
// Tells the analysis that the pmap lock is held where it cannot see it taken: the fork's
// prepare handler took it in another function (pmap_linux_fork_prepare, until the parent or
// child handler).  Checks nothing at run time.
inline void pmap_lock_held_by_fork() VMRT_ASSERT_CAPABILITY(g_lock) {}

// Software PTE, one per region page [pmap lock].
struct pte {
  std::uint32_t frame1;  // mapped frame + 1; 0 when not resident
  std::uint32_t next1;   // next region page (+1) mapping the same frame (pv chain)
};
static_assert(sizeof(pte) == 8);

// Per-page bits [pmap lock]
constexpr std::uint8_t B_RESV = 0x07;      // reservation: accesses the map entry allows
constexpr unsigned B_MPROT_SHIFT = 3;
constexpr std::uint8_t B_MPROT = 0x38;     // protection of the resident mapping
constexpr std::uint8_t B_MAPPED = 0x40;    // resident: a physmem frame is mapped here
constexpr std::uint8_t B_REFUSED = 0x80;   // made PROT_NONE by the userfaultfd thread

// vm_page::md: first pv (region page + 1) in the low bits, REF/MOD flags on top [pmap lock]
constexpr std::uintptr_t MD_IDX = (std::uintptr_t{1} << 40) - 1;
constexpr std::uintptr_t MD_REF = std::uintptr_t{1} << 62;
constexpr std::uintptr_t MD_MOD = std::uintptr_t{1} << 63;

constexpr unsigned kChunkShift = 9;  // resident counts per 2 MiB chunk
constexpr std::size_t kChunkPages = std::size_t{1} << kChunkShift;
constexpr std::size_t kChunkMask = kChunkPages - 1;
static_assert((kGranule >> PAGE_SHIFT) % kChunkPages == 0);

// The per-page tables (g_bits, g_hostmem, g_zap, g_pte), blocked by chunk: a chunk's bytes
// of all four lie together in one 8 KiB block, so the pages a process works on (the kernel
// window, the heap's start, its first mappings) have their table entries in a few pages of
// one place.  As four arrays over the whole region (176 MB for 64 GiB) every such spot cost
// a page in each, in six 2 MiB blocks of host page tables, and each host page-table page a
// process uses costs ~15 us to fill and ~6 us to tear down on these guests (a measured
// 12-touch loop: 139 us in one 2 MiB block, 317 us in twelve).  The per-chunk arrays
// g_chunk, g_dirty and g_dirty_group stay dense (scans over a window read them), just
// before the blocks.
struct chunk_tables {
  std::uint8_t bits[kChunkPages];
  std::uint8_t hostmem[kChunkPages];
  std::uint8_t zap[kChunkPages];
  std::uint8_t unused[kChunkPages];
  pte ptes[kChunkPages];
  std::uint8_t pad[2048];  // to a power of two (never touched: address space only)
};
static_assert(sizeof(chunk_tables) == 2 * 4096, "a chunk's tables are two pages");
static_assert(sizeof(chunk_tables) / kChunkPages == kPmapBytesPer4k, "pmap_linux.h: the footprint boot reports");
extern chunk_tables* g_tables;
// The blocks of the kHotSlots chunks nearest the centre (the heap's first chunks and the
// mmap area's top ones: every process writes a few of them) lie in the table arena's hot
// block (vm/vm_tables.h, TABLE_HOT), with the per-chunk records and kmem's fronts: one host
// 2 MiB block for all the tables a short process writes, where they took two.  g_tables
// leaves those slots unused.  [set at init]
constexpr std::size_t kHotSlots = 8;
extern chunk_tables* g_hot_tables;
// The blocks' order.  With g_fold 1 they are laid out by distance from the chunk where the
// heap begins (g_center), alternating sides: the heap's first chunk, the chunk below it
// (the top of the mmap area, which grows down from there), the heap's second chunk, the
// area's second, ...  A process's tables then lie at the front of the array, next to the
// dense arrays, in one 2 MiB block of host page table, where in chunk order the heap's
// block lay 96 MiB past the front (the kernel window's chunks come first): a host
// page-table page more in every process, copied by every fork (vm/vm_tables.h).  With
// g_fold 0 and g_center 0 the order is the chunks' own (boot under resource limits, whose
// sizing counts kPmapBytesPer4k a region page: folding around a centre needs up to twice
// the blocks).  [set at init]
extern std::size_t g_center;
extern unsigned g_fold;

// => any thread.  Chunk c's slot: its distance from the centre folded, 2d or -2d - 1 (c
// itself when not folded).  Its block and its per-chunk record are at this slot.
inline std::size_t slot_of(std::size_t c) {
  const std::int64_t d = static_cast<std::int64_t>(c) - static_cast<std::int64_t>(g_center);
  return static_cast<std::size_t>((d << g_fold) ^ (d >> 63));
}
inline chunk_tables* block_of(std::size_t c) {
  const std::size_t slot = slot_of(c);
  return slot < kHotSlots ? &g_hot_tables[slot] : &g_tables[slot];
}

// Page p's entry of one table, as the arrays they were: g_bits[p], g_pte[p].frame1.
template <class T, std::size_t Off>
struct page_table {
  T& operator[](std::size_t p) const VMRT_REQUIRES(g_lock) {
    return reinterpret_cast<T*>(reinterpret_cast<char*>(block_of(p >> kChunkShift)) + Off)[p & kChunkMask];
  }
};
constexpr page_table<std::uint8_t, offsetof(chunk_tables, bits)> g_bits{};
constexpr page_table<pte, offsetof(chunk_tables, ptes)> g_pte{};

// Per chunk, dense (scans over a window read them), a chunk's count and mark in one record
// so that they share a page (as two arrays, a program's first file mapping read one page of
// each: a fault more).  Ordered by slot, as the blocks: the records of the chunks around the
// centre, which every process writes, share the page of g_dirty_group before them (in chunk
// order they lay 56 KiB further on, a page fault more).
struct chunk_counts {
  std::uint16_t resident;  // resident pages [pmap lock]
  // 0 means every g_bits byte of the chunk is zero (never reserved, mapped or refused since
  // boot or the last window reset), so scans may skip it whole [pmap lock].
  std::uint8_t dirty;
  // Nonzero: every page of the chunk is host memory of this code (H_*), whatever the
  // chunk's g_hostmem bytes say; they are not read or written meanwhile.  A heap window or
  // a program mapping of whole chunks is marked here, in the dense records, and its table
  // page is never touched: it was a host page fault for every 2 MiB of heap a process used
  // (an untouched malloc(64 MiB): 32 pages, 128 KiB of RSS).  Written with the chunk's
  // group marked, so group skips never pass it [pmap lock; read lock-free as a hint].
  std::uint8_t uniform;
};
static_assert(sizeof(chunk_counts) == 4);
extern chunk_counts* g_counts;
// Chunk c's field of g_counts, as the arrays they were: g_chunk[c], g_dirty[c].
template <class T, std::size_t Off>
struct chunk_field {
  T& operator[](std::size_t c) const VMRT_REQUIRES(g_lock) {
    return *reinterpret_cast<T*>(reinterpret_cast<char*>(&g_counts[slot_of(c)]) + Off);
  }
};
constexpr chunk_field<std::uint16_t, offsetof(chunk_counts, resident)> g_chunk{};
constexpr chunk_field<std::uint8_t, offsetof(chunk_counts, dirty)> g_dirty{};
constexpr chunk_field<std::uint8_t, offsetof(chunk_counts, uniform)> g_uniform{};
// Per group of kGroupShift consecutive chunks (8 GiB of region): 0 means no
// chunk of the group was ever marked in g_dirty (never cleared: a reset group stays "maybe").
// Scans over a fresh window (vmspace_create reserving a window of tens of GiB as
// VM_PROT_NONE at every boot) then read neither g_dirty nor the per-page tables: each
// first read of a page of these never-written tables is a host page fault (6 per boot
// from g_dirty alone, perf record -e page-faults) [pmap lock].
constexpr unsigned kGroupShift = 12;
extern std::uint8_t* g_dirty_group;
// Per page: host memory (host_map), whose pages the host provides, as H_* | protection;
// 0 when not.  Its g_bits stay zero; its chunk is marked in g_dirty [pmap lock].
constexpr page_table<std::uint8_t, offsetof(chunk_tables, hostmem)> g_hostmem{};
constexpr std::uint8_t H_HOST = 0x80;
constexpr std::uint8_t H_SHARED = 0x40;
constexpr std::uint8_t H_PROT = 0x07;
// The host has swap: mincore does not see swapped-out anonymous pages, so host_zero_resident
// and host_copy_resident cannot skip the pages mincore calls absent [set at init].
extern bool g_host_swap;
extern std::size_t g_npages;
extern vaddr_t g_base;
extern std::atomic<int> g_uffd;  // the userfaultfd's vm_fds handle (vm/vm_fds.h): its number may move

// Reference tracking without a window (userfaultfd with minor faults on shmem, paging on).
// Frame mappings are registered with the userfaultfd for missing and minor faults, so a
// page can be taken from the program without replacing its VMA:
//   Z_ZAPPED: still mapped (B_MAPPED, pv linked), host PTE dropped (MADV_DONTNEED): the
//             next access, user or kernel, is a minor fault; the handler marks the page
//             referenced and maps the PTE again from the page cache (UFFDIO_CONTINUE).
//             This is ts_referenced's unmap.
//   Z_STALE:  not resident (B_MAPPED clear, no pv entry), but its host VMA still maps the
//             frame it had (frame1 kept, B_MPROT kept) with the PTE dropped: every access
//             waits in the handler, which runs vm_fault.  This is page_protect(NONE)'s unmap.
// Replacing the VMA instead (a PROT_NONE anonymous mapping, registered, then opened) leaves
// an instant in which a kernel access gets EFAULT: read(2) returned short counts while the
// pageout daemon ran.  Anything that replaces the VMA (enter, reserve) clears the state.
enum : std::uint8_t { Z_NONE = 0, Z_ZAPPED = 1, Z_STALE = 2 };
constexpr page_table<std::uint8_t, offsetof(chunk_tables, zap)> g_zap{};  // per page [pmap lock]
extern bool g_uffd_minor VMRT_GUARDED_BY(g_lock);  // the userfaultfd reports minor faults on shmem
extern bool g_paging;        // the pageout daemon exists: pages are taken behind the program's back
inline bool tracking() VMRT_REQUIRES(g_lock) {
  return g_uffd_minor && g_paging && g_uffd.load(std::memory_order_relaxed) >= 0;
}

// Every store of a non-zero value into g_bits goes through here (clearing stores may not).
// The userfaultfd thread reads g_bits without the lock (pmap_linux_allows/reservation: a
// hint), so every store is atomic (relaxed); writers hold the pmap lock.
inline void store_bits(std::size_t p, std::uint8_t v) VMRT_REQUIRES(g_lock) {
  __atomic_store_n(&g_bits[p], v, __ATOMIC_RELAXED);
}
inline void mark_dirty(std::size_t chunk) VMRT_REQUIRES(g_lock) {
  g_dirty[chunk] = 1;
  g_dirty_group[chunk >> kGroupShift] = 1;
}
inline bool chunk_dirty(std::size_t chunk) VMRT_REQUIRES(g_lock) {
  return g_dirty_group[chunk >> kGroupShift] != 0 && g_dirty[chunk] != 0;
}
inline std::uint8_t chunk_uniform(std::size_t chunk) VMRT_REQUIRES(g_lock) {
  return g_dirty_group[chunk >> kGroupShift] != 0 ? __atomic_load_n(&g_uniform[chunk], __ATOMIC_ACQUIRE) : 0;
}
// Nothing in the chunk: every table byte zero and no uniform host memory.
inline bool chunk_clean(std::size_t chunk) VMRT_REQUIRES(g_lock) {
  return !chunk_dirty(chunk) && chunk_uniform(chunk) == 0;
}
// Page p's bits and host-memory code, without reading a clean chunk's table (its bytes are
// zero): a read of a never-written table page maps the host's zero page, and the write that
// follows then faults a second time (a program's first mapping took two faults on one table
// page).  => pmap lock held (or the userfaultfd thread's racy hint, as g_bits itself).
inline std::uint8_t bits_of(std::size_t p) VMRT_REQUIRES(g_lock) {
  return chunk_dirty(p >> kChunkShift) ? g_bits[p] : 0;
}
inline std::uint8_t hostmem_of(std::size_t p) VMRT_REQUIRES(g_lock) {
  if (const std::uint8_t u = chunk_uniform(p >> kChunkShift); u != 0) return u;
  return chunk_dirty(p >> kChunkShift) ? g_hostmem[p] : 0;
}
inline void set_bits(std::size_t p, std::uint8_t v) VMRT_REQUIRES(g_lock) {
  store_bits(p, v);
  if (v != 0) mark_dirty(p >> kChunkShift);
}

inline std::size_t idx_of(vaddr_t va) { return (va - g_base) >> PAGE_SHIFT; }
inline vaddr_t va_of(std::size_t i) { return g_base + (i << PAGE_SHIFT); }
inline vm_prot_t mprot(std::uint8_t b) { return static_cast<vm_prot_t>((b & B_MPROT) >> B_MPROT_SHIFT); }
inline std::uintptr_t md(const vm_page* m) VMRT_REQUIRES(g_lock) { return reinterpret_cast<std::uintptr_t>(m->md); }
inline void set_md(vm_page* m, std::uintptr_t v) VMRT_REQUIRES(g_lock) { m->md = reinterpret_cast<void*>(v); }

// The host protection a non-resident page has (for the VMA estimate).
inline int host_resv(std::uint8_t b) {
  if ((b & B_REFUSED) != 0 || g_uffd.load(std::memory_order_relaxed) < 0) return 0;
  return b & B_RESV;
}

// Call f(i, j) for each maximal run of resident pages inside [i, e).  => pmap lock held.
template <class F> void for_each_resident_run(std::size_t i, std::size_t e, F&& f) VMRT_REQUIRES(g_lock) {
  constexpr std::size_t kGroupPages = kChunkPages << kGroupShift;
  while (i < e) {
    // A group never marked holds no resident page: 8 GiB in one step, where the walk over
    // the whole region (a fork child's track_existing) read 4096 chunk records each, 32
    // pages of g_counts in all, ~0.2 ms of every paged fork child.
    if (g_dirty_group[i >> (kChunkShift + kGroupShift)] == 0) {
      i = ((i / kGroupPages) + 1) * kGroupPages;
      continue;
    }
    if (g_chunk[i >> kChunkShift] == 0) {
      i = ((i >> kChunkShift) + 1) << kChunkShift;
      continue;
    }
    if ((g_bits[i] & B_MAPPED) == 0) {
      ++i;
      continue;
    }
    std::size_t j = i;
    while (j < e && (g_bits[j] & B_MAPPED) != 0) ++j;
    f(i, j);
    i = j;
  }
}

// Call f(offset, bytes) for each run of [sva, sva + len) the host holds pages for (mincore);
// the whole range when it cannot tell (host swap, or mincore failing).
template <class F> void for_each_host_page_run(vaddr_t sva, vsize_t len, F&& f) {
  constexpr vsize_t kBatch = 512;
  unsigned char vec[kBatch];
  vsize_t npages = len >> PAGE_SHIFT;
  for (vsize_t k = 0; k < npages; k += kBatch) {
    vsize_t c = npages - k < kBatch ? npages - k : kBatch;
    if (g_host_swap || vmrt::sys::mincore(reinterpret_cast<void*>(sva + (k << PAGE_SHIFT)), c << PAGE_SHIFT, vec) != 0) {
      f(k << PAGE_SHIFT, c << PAGE_SHIFT);
      continue;
    }
    for (vsize_t j = 0; j < c;) {
      if ((vec[j] & 1) == 0) {
        ++j;
        continue;
      }
      vsize_t r = j + 1;
      while (r < c && (vec[r] & 1) != 0) ++r;
      f((k + j) << PAGE_SHIFT, (r - j) << PAGE_SHIFT);
      j = r;
    }
  }
}

// The same for the n frames at f0 (mincore on the direct map): f(byte offset, pages).
template <class F> void for_each_host_resident(frame_t f0, vsize_t n, F&& f) {
  for_each_host_page_run(reinterpret_cast<vaddr_t>(physmem_frame(f0)), n << PAGE_SHIFT,
                         [&f](vsize_t off, vsize_t bytes) { f(off, bytes >> PAGE_SHIFT); });
}

// ---- the tables (pmap_linux.cpp) ---------------------------------------------------------
// The end of the run of whole clean chunks that starts at page p, at most `end`: p itself
// when p does not start a whole clean chunk.  A clean group is crossed in one step.
std::size_t clean_run_end(std::size_t p, std::size_t end) VMRT_REQUIRES(g_lock);
// VMA boundaries among the page boundaries lo..hi (boundary p lies between p-1 and p): the
// region's estimate of its host VMAs moves by the difference before and after a change.
std::int64_t breaks(std::size_t lo, std::size_t hi) VMRT_REQUIRES(g_lock);
void check_range(const pmap* pm, vaddr_t sva, vaddr_t eva);

// Link region page i into frame f's pv list / take it out of its frame's list (frame1 is
// not changed).  => pmap lock held.
void pv_link(std::size_t i, frame_t f) VMRT_REQUIRES(g_lock);
void pv_unlink(std::size_t i) VMRT_REQUIRES(g_lock);

// ---- reservations and frame runs (pmap_linux.cpp) ----------------------------------------
// Host: make pages [i, i+n) reserved with reservation `resv` (no PTE changes); a refusal of
// the host stops the process (host_reserve) or is returned (host_reserve_try: false).
void host_reserve(std::size_t i, std::size_t n, vm_prot_t resv) VMRT_REQUIRES(g_lock);
bool host_reserve_try(std::size_t i, std::size_t n, vm_prot_t resv) VMRT_REQUIRES(g_lock);
// Host: restore reservations over [i, j), grouped by reservation (sigsegv: one call).
// False (may_fail only) when the host refused one.
bool host_reserve_grouped(std::size_t i, std::size_t j, bool may_fail = false) VMRT_REQUIRES(g_lock);
// The groups host_reserve_grouped restores [i, j) in: runs of one reservation (sigsegv: all
// of [i, j), whose host state is PROT_NONE whatever the reservation).  Calls f(p, q, resv)
// for each group [p, q) in order; stops at the first f that returns false, and returns false
// then.  => pmap lock held.
template <class F> bool for_each_resv_group(std::size_t i, std::size_t j, F&& f) VMRT_REQUIRES(g_lock) {
  const bool uffd = g_uffd.load(std::memory_order_relaxed) >= 0;
  while (i < j) {
    const vm_prot_t r = g_bits[i] & B_RESV;
    std::size_t k = i + 1;
    while (k < j && (!uffd || (g_bits[k] & B_RESV) == r)) ++k;
    if (!f(i, k, r)) return false;
    i = k;
  }
  return true;
}
// Register frame mappings [i, i+n) for missing and minor faults (tracking()).  A refusal
// (never expected: the range is shmem) ends tracking: pages are then unmapped the old way.
void register_frames(std::size_t i, std::size_t n) VMRT_REQUIRES(g_lock);
// Drop the PTEs of the pending Z_ZAPPED pages.  => VM lock held.
void op_update() VMRT_REQUIRES(g_vm_lock);

// ---- the host's mapping limit (pmap_linux_vmas.cpp) --------------------------------------
// Before frames are mapped at pages [i, i + n) with a new host mapping: when the process is
// past the pmap's share of vm.max_map_count (rt_vma_budget.h), give host VMAs back from
// other chunks.  `force` (the host has just refused a mapping): sweep even after a fruitless
// sweep, and give back down to the same target.  True when the share has room now.
//  => pmap lock and VM lock held.  Never sleeps; unmaps pages of other chunks.
bool vma_make_room(std::size_t i, std::size_t n, bool force) VMRT_REQUIRES(g_vm_lock, g_lock);

// ---- userfaultfd write protection (pmap_linux_wp.cpp) ------------------------------------
extern std::uint8_t* g_wp VMRT_GUARDED_BY(g_lock);    // per page, mapped when write protection is first used
extern bool g_uffd_wp VMRT_GUARDED_BY(g_lock);        // the userfaultfd has write protection on shmem
extern std::size_t g_wp_marks VMRT_GUARDED_BY(g_lock);  // pages with g_wp set, ever (0: nothing to look at)
// Pages [g_wp_lo, g_wp_hi) hold every g_wp mark ever set: scans look there only (the array
// covers the whole region; reading all of it is a page fault per 4096 region pages).
extern std::size_t g_wp_lo VMRT_GUARDED_BY(g_lock), g_wp_hi VMRT_GUARDED_BY(g_lock);
// Page p is write-protected for a fork's copy-on-write (a continue maps it back so).
inline bool wp_marked(std::size_t p) VMRT_REQUIRES(g_lock) { return g_wp_marks != 0 && g_wp[p] != 0; }
// Should resident pages [i, i + n), about to be mapped with `prot`, be write-protected through
// the userfaultfd rather than mprotect'ed?  => pmap lock held.
bool wp_wanted(std::size_t i, std::size_t n, vm_prot_t prot) VMRT_REQUIRES(g_lock);
// Set (protect) or clear the uffd-wp bit of pages [i, i + n)'s PTEs: 0, or -1 with errno.
int wp_ioctl(std::size_t i, std::size_t n, bool protect);
// Register resident pages [i, i + n) for write protection (keeping missing and minor faults
// under tracking), write-protect their PTEs and mark them.  False, nothing marked, when the
// host refused.  => pmap lock held.
bool wp_register_protect(std::size_t i, std::size_t n) VMRT_REQUIRES(g_lock);
// Map resident pages [i, i + n) as `prot` (read-only) with writes caught by the userfaultfd.
// False, nothing marked, when the host refused: the caller mprotects.  => pmap lock held.
bool wp_apply(std::size_t i, std::size_t n, vm_prot_t prot) VMRT_REQUIRES(g_lock);
// Pages [i, i + n) got a new VMA: nothing of the old registration remains.  => pmap lock held.
void wp_forget(std::size_t i, std::size_t n) VMRT_REQUIRES(g_lock);
// Give resident pages [i, i + n) the host protection `prot`: write-protected through the
// userfaultfd where wanted, else mprotect.  0, or mprotect's errno.  => pmap lock held.
int protect_resident(std::size_t i, std::size_t n, vm_prot_t prot) VMRT_REQUIRES(g_lock);

// ---- host memory (pmap_linux_host.cpp) ---------------------------------------------------
// Mark pages [i, e) with host-memory code h (0: not host memory).  => pmap lock held.
void set_hostmem(std::size_t i, std::size_t e, std::uint8_t h) VMRT_REQUIRES(g_lock);
// Discard the spans' pages (MADV_DONTNEED, batched), the host calls counted in `calls`.
void discard_spans(const vm_span* spans, std::size_t n, rt_counter calls);
// The pmap_ops entries of host memory.
kern_return_t op_host_map(pmap* pm, vaddr_t sva, vaddr_t eva, vm_prot_t prot, unsigned flags);
void op_host_unmap(pmap* pm, vaddr_t sva, vaddr_t eva);
void op_host_discard(const vm_span* spans, std::size_t n);
vsize_t op_host_discard_sparse(vaddr_t sva, vaddr_t eva, vsize_t max_pages);
void op_host_zero_resident(vaddr_t sva, vaddr_t eva);
void op_host_copy_resident(vaddr_t dst, vaddr_t src, vsize_t len);
bool op_host_move(vaddr_t dst, vaddr_t src, vsize_t len);
vsize_t op_host_resident(vaddr_t sva, vaddr_t eva);

// ---- a host fork (pmap_linux_fork.cpp) ---------------------------------------------------
// A fork child whose frame mappings were replaced (pmap_linux_fork_child) [set in the fork
// child before any thread runs].
extern bool g_replaced;
// Fork child, a fault at page p whose frame is pending: pull it and the pages after it in
// its frame run.  => pmap lock held.
void cow_pull_around(std::size_t p) VMRT_REQUIRES(g_lock);
// After a minor fault at p in a fork child: map p's neighbours whose frames the child has.
//  => pmap lock held.
void continue_around(std::size_t p) VMRT_REQUIRES(g_lock);

}  // namespace vmrt::rt::pml
