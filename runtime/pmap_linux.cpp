// pmap_linux.cpp — the Linux pmap: software PTEs over host mappings of physmem.
#include "runtime/pmap_linux.h"

#include "vm/vm_sys.h"
#include "vm/vm_tables.h"

#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstring>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/sysinfo.h>
#include <sys/uio.h>
#include <unistd.h>

#include "runtime/physmem.h"
#include "runtime/physmem_cow.h"
#include "runtime/region.h"
#include "runtime/rt_base.h"
#include "runtime/rt_maps.h"
#include "runtime/rt_stats.h"
#include "runtime/rt_vma_budget.h"
#include "runtime/spinlock.h"
#include "vm/vm_fds.h"
#include "vm/vm_fork_store.h"
#include "vm/vm_page.h"
#include "vm/vm_stats.h"

#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22
#endif

namespace vmrt::rt {

namespace {

// Populate at enter: after mmap(MAP_FIXED|MAP_SHARED) of a frame run, madvise(
// MADV_POPULATE_READ) fills the host page tables in one call.  physmem is shmem, which
// has no write-notify, so a writable mapping gets writable PTEs: the guest's first touch
// of an entered page takes no host fault (bench/frame_probe: ~0.5 us/page for recycled
// frames zeroed through the direct map, against ~0.9 us for a host fault per page).
// Cleared if the host does not know the advice (Linux < 5.14).
std::atomic<bool> g_populate{true};

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
chunk_tables* g_tables;
// The blocks of the kHotSlots chunks nearest the centre (the heap's first chunks and the
// mmap area's top ones: every process writes a few of them) lie in the table arena's hot
// block (vm/vm_tables.h, TABLE_HOT), with the per-chunk records and kmem's fronts: one host
// 2 MiB block for all the tables a short process writes, where they took two.  g_tables
// leaves those slots unused.  [set at init]
constexpr std::size_t kHotSlots = 8;
chunk_tables* g_hot_tables;
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
std::size_t g_center;
unsigned g_fold;

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
  T& operator[](std::size_t p) const {
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
chunk_counts* g_counts;
// Chunk c's field of g_counts, as the arrays they were: g_chunk[c], g_dirty[c].
template <class T, std::size_t Off>
struct chunk_field {
  T& operator[](std::size_t c) const { return *reinterpret_cast<T*>(reinterpret_cast<char*>(&g_counts[slot_of(c)]) + Off); }
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
std::uint8_t* g_dirty_group;
// Per page: host memory (host_map), whose pages the host provides, as H_* | protection;
// 0 when not.  Its g_bits stay zero; its chunk is marked in g_dirty [pmap lock].
constexpr page_table<std::uint8_t, offsetof(chunk_tables, hostmem)> g_hostmem{};
constexpr std::uint8_t H_HOST = 0x80;
constexpr std::uint8_t H_SHARED = 0x40;
constexpr std::uint8_t H_PROT = 0x07;
// The host has swap: mincore does not see swapped-out anonymous pages, so host_zero_resident
// and host_copy_resident cannot skip the pages mincore calls absent [set at init].
bool g_host_swap;
std::size_t g_npages;
vaddr_t g_base;
std::atomic<int> g_uffd{-1};  // the userfaultfd's vm_fds handle (vm/vm_fds.h): its number may move
VMRT_FORK_DATA spinlock g_lock;

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
// Z_ZAPPED pages whose PTE drop op_ts_referenced deferred, in the order cleared; op_update
// drops them (a page no longer Z_ZAPPED by then is skipped: its VMA was replaced, or
// stale_run dropped it) [pmap lock].
constexpr std::size_t kZapPending = 512;
VMRT_LARGE_BSS std::uint32_t g_zap_pending[kZapPending];
std::size_t g_zap_npending;
void op_update();
bool g_uffd_minor;    // the userfaultfd reports minor faults on shmem [pmap lock]
bool g_paging;        // the pageout daemon exists: pages are taken behind the program's back
inline bool tracking() { return g_uffd_minor && g_paging && g_uffd.load(std::memory_order_relaxed) >= 0; }

// Every store of a non-zero value into g_bits goes through here (clearing stores may not).
// The userfaultfd thread reads g_bits without the lock (pmap_linux_allows/reservation: a
// hint), so every store is atomic (relaxed); writers hold the pmap lock.
inline void store_bits(std::size_t p, std::uint8_t v) { __atomic_store_n(&g_bits[p], v, __ATOMIC_RELAXED); }
inline void mark_dirty(std::size_t chunk) {
  g_dirty[chunk] = 1;
  g_dirty_group[chunk >> kGroupShift] = 1;
}
inline bool chunk_dirty(std::size_t chunk) { return g_dirty_group[chunk >> kGroupShift] != 0 && g_dirty[chunk] != 0; }
inline std::uint8_t chunk_uniform(std::size_t chunk) {
  return g_dirty_group[chunk >> kGroupShift] != 0 ? __atomic_load_n(&g_uniform[chunk], __ATOMIC_ACQUIRE) : 0;
}
// Nothing in the chunk: every table byte zero and no uniform host memory.
inline bool chunk_clean(std::size_t chunk) { return !chunk_dirty(chunk) && chunk_uniform(chunk) == 0; }
// Page p's bits and host-memory code, without reading a clean chunk's table (its bytes are
// zero): a read of a never-written table page maps the host's zero page, and the write that
// follows then faults a second time (a program's first mapping took two faults on one table
// page).  => pmap lock held (or the userfaultfd thread's racy hint, as g_bits itself).
inline std::uint8_t bits_of(std::size_t p) { return chunk_dirty(p >> kChunkShift) ? g_bits[p] : 0; }
inline std::uint8_t hostmem_of(std::size_t p) {
  if (const std::uint8_t u = chunk_uniform(p >> kChunkShift); u != 0) return u;
  return chunk_dirty(p >> kChunkShift) ? g_hostmem[p] : 0;
}
inline void set_bits(std::size_t p, std::uint8_t v) {
  store_bits(p, v);
  if (v != 0) mark_dirty(p >> kChunkShift);
}
// The end of the run of whole clean chunks that starts at page p, at most `end`: p itself
// when p does not start a whole clean chunk.  A clean group is crossed in one step.
std::size_t clean_run_end(std::size_t p, std::size_t end) {
  constexpr std::size_t kGroup = kChunkPages << kGroupShift;
  while ((p & kChunkMask) == 0 && p + kChunkPages <= end) {
    if ((p & (kGroup - 1)) == 0 && p + kGroup <= end && g_dirty_group[p >> (kChunkShift + kGroupShift)] == 0) {
      p += kGroup;
      continue;
    }
    if (!chunk_clean(p >> kChunkShift)) break;
    p += kChunkPages;
  }
  return p;
}

// Set entries [i, e) of one per-page table to v.  Zeros are not written into a clean
// chunk (they are there already, perhaps in pages never touched).
void fill_table(std::uint8_t (chunk_tables::*t)[kChunkPages], std::size_t i, std::size_t e, std::uint8_t v) {
  while (i < e) {
    const std::size_t c = i >> kChunkShift, o = i & kChunkMask, n = e - i < kChunkPages - o ? e - i : kChunkPages - o;
    if (v != 0 || chunk_dirty(c)) std::memset(&(block_of(c)->*t)[o], v, n);
    i += n;
  }
}

inline std::size_t idx_of(vaddr_t va) { return (va - g_base) >> PAGE_SHIFT; }
inline vaddr_t va_of(std::size_t i) { return g_base + (i << PAGE_SHIFT); }
inline vm_prot_t mprot(std::uint8_t b) { return static_cast<vm_prot_t>((b & B_MPROT) >> B_MPROT_SHIFT); }
inline std::uintptr_t md(const vm_page* m) { return reinterpret_cast<std::uintptr_t>(m->md); }
inline void set_md(vm_page* m, std::uintptr_t v) { m->md = reinterpret_cast<void*>(v); }

// The host protection a non-resident page has (for the VMA estimate).
inline int host_resv(std::uint8_t b) {
  if ((b & B_REFUSED) != 0 || g_uffd.load(std::memory_order_relaxed) < 0) return 0;
  return b & B_RESV;
}

// Would the host merge pages p-1 and p into one VMA?  (p >= 1)
// A page of a clean chunk has every table byte zero and is taken as such without reading
// the tables: a boundary at the start of the mmap area or of a window read the last byte of
// a never-touched page of g_hostmem, g_bits and g_zap — three host page faults for one
// mapping in every process whose first mmap lands there (perf record -e page-faults -d,
// git add: 4 of the 10 faults its index mapping cost).
bool joined(std::size_t p) {
  const bool da = chunk_dirty((p - 1) >> kChunkShift), db = chunk_dirty(p >> kChunkShift);
  const std::uint8_t ha = hostmem_of(p - 1), hb = hostmem_of(p);
  if (!da && !db && ha == 0 && hb == 0) return true;
  if (ha != hb) return false;
  if (ha != 0) return true;  // neighbouring host memory of one kind: one VMA (an estimate:
                             // the host merges private anonymous neighbours, not shared ones)
  std::uint8_t a = da ? g_bits[p - 1] : 0, b = db ? g_bits[p] : 0;
  // A stale page's host VMA still maps its old frame, like a resident page's.
  bool fa = (a & B_MAPPED) != 0 || (da && g_zap[p - 1] == Z_STALE);
  bool fb = (b & B_MAPPED) != 0 || (db && g_zap[p] == Z_STALE);
  if (fa != fb) return false;
  if (fa) return mprot(a) == mprot(b) && g_pte[p].frame1 == g_pte[p - 1].frame1 + 1;
  return host_resv(a) == host_resv(b);
}

// VMA boundaries among the page boundaries lo..hi (boundary p lies between p-1 and p).
std::int64_t breaks(std::size_t lo, std::size_t hi) {
  if (lo < 1) lo = 1;
  if (hi > g_npages - 1) hi = g_npages - 1;
  std::int64_t n = 0;
  for (std::size_t p = lo; p <= hi; ++p) {
    // Inside a clean chunk every page boundary joins, and so does the boundary between
    // two clean chunks (every table byte is zero on both sides): on to the next chunk.
    std::size_t c = p >> kChunkShift;
    if (!chunk_dirty(c) && ((p & kChunkMask) != 0 || !chunk_dirty(c - 1))) {  // p >= 1: c - 1 exists when p starts a chunk
      // Inside a chunk of uniform host memory too (one code on both sides of every
      // boundary); between chunks the codes decide.
      if ((p & kChunkMask) != 0 || chunk_uniform(c) == chunk_uniform(c - 1)) {
        p |= kChunkMask;
        continue;
      }
    }
    n += joined(p) ? 0 : 1;
  }
  return n;
}

void pv_link(std::size_t i, frame_t f) {
  vm_page* m = vm_page_from_frame(f);
  std::uintptr_t v = md(m);
  g_pte[i].next1 = static_cast<std::uint32_t>(v & MD_IDX);
  set_md(m, (v & ~MD_IDX) | (i + 1));
}

void pv_unlink(std::size_t i) {
  vm_page* m = vm_page_from_frame(g_pte[i].frame1 - 1);
  std::uintptr_t v = md(m);
  std::uint32_t head = static_cast<std::uint32_t>(v & MD_IDX);
  if (head == i + 1) {
    set_md(m, (v & ~MD_IDX) | g_pte[i].next1);
  } else {
    std::uint32_t cur = head;
    while (cur != 0 && g_pte[cur - 1].next1 != i + 1) cur = g_pte[cur - 1].next1;
    RT_ASSERT(cur != 0, "pv entry missing from its page's list");
    g_pte[cur - 1].next1 = g_pte[i].next1;
  }
  g_pte[i].next1 = 0;
}

// Host: make pages [i, i+n) reserved with reservation `resv` (no PTE changes).  With
// `may_fail`, a host refusal is returned (false) instead of stopping the process: after a
// failed MAP_FIXED over host memory that the host left as it was (the mapping limit is
// checked before anything is unmapped).
bool host_reserve_try(std::size_t i, std::size_t n, vm_prot_t resv);

// The host refused a new mapping over pages [i, i+n) (its mapping limit: replacing part of
// a VMA splits it).  Make them a reservation without a new VMA: inaccessible (PROT_NONE)
// and emptied (frames' PTEs dropped, host memory freed).  The VMA keeps its kind (a frame
// mapping, host memory) until the next mapping there replaces it; a touch traps through
// SIGSEGV, which vm_fault serves or refuses as for any reservation (under userfaultfd too:
// the range is not registered, so a kernel-mode access gets EFAULT until then).  False
// when the host refuses that as well (the range is part of a VMA and even mprotect would
// split it: vmrt's headroom below the limit, rt_vma_budget.h, is there so it never does).
bool reserve_in_place(std::size_t i, std::size_t n) {
  void* a = reinterpret_cast<void*>(va_of(i));
  if (vmrt::sys::mprotect(a, n << PAGE_SHIFT, PROT_NONE) != 0) return false;
  rt_count(RC_HOST_MPROTECT);
  int rc = vmrt::sys::madvise(a, n << PAGE_SHIFT, MADV_DONTNEED);
  RT_ASSERT(rc == 0, "madvise(MADV_DONTNEED) of a reservation failed");
  rt_count(RC_RESERVE_IN_PLACE);
  return true;
}

void wp_forget(std::size_t i, std::size_t n);  // userfaultfd write protection, below

void host_reserve(std::size_t i, std::size_t n, vm_prot_t resv) {
  RT_ASSERT(host_reserve_try(i, n, resv), "cannot restore a reservation in the region (the host's mapping limit, vm.max_map_count)");
}
bool host_reserve_try(std::size_t i, std::size_t n, vm_prot_t resv) {
  int uffd = g_uffd.load(std::memory_order_relaxed);
  // Under userfaultfd the reservation is accessible anonymous memory registered for missing
  // faults.  It is made PROT_NONE first and opened only once registered: between the mmap
  // and the registration a touch by another thread (the program runs while the pageout
  // daemon unmaps its pages) would be served by the host with a fresh anonymous page that
  // vmrt never sees, and the program's data would go there.  While PROT_NONE a touch is a
  // SIGSEGV vm_fault resolves (it waits for the VM lock the caller holds).
  void* r = vmrt::sys::mmap(reinterpret_cast<void*>(va_of(i)), n << PAGE_SHIFT, PROT_NONE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED, -1, 0);
  rt_count(RC_HOST_MMAP);
  if (r == MAP_FAILED) {
    if (errno != ENOMEM || !reserve_in_place(i, n)) return false;
  } else if (uffd >= 0 && resv != VM_PROT_NONE) {
    uffdio_register reg{};
    reg.range.start = va_of(i);
    reg.range.len = n << PAGE_SHIFT;
    reg.mode = UFFDIO_REGISTER_MODE_MISSING;
    int rc = vm_fd_ioctl(uffd, UFFDIO_REGISTER, &reg);
    RT_ASSERT(rc == 0, "UFFDIO_REGISTER failed on a reservation");
    rc = vmrt::sys::mprotect(reinterpret_cast<void*>(va_of(i)), n << PAGE_SHIFT, resv);
    rt_count(RC_HOST_MPROTECT);
    if (rc != 0) return false;
  }
  wp_forget(i, n);
  // Only what changes is written, and a clean chunk's bytes are all zero already: a new
  // mapping's reservation wrote zeros into never-touched pages of g_bits and g_zap, a host
  // page fault each (perf record -e page-faults -d, git add).
  for (std::size_t p = i; p < i + n; ++p) {
    if (!chunk_dirty(p >> kChunkShift)) {
      p |= kChunkMask;
      continue;
    }
    if ((g_bits[p] & B_REFUSED) != 0) store_bits(p, static_cast<std::uint8_t>(g_bits[p] & static_cast<std::uint8_t>(~B_REFUSED)));
    if (g_zap[p] != Z_NONE) g_zap[p] = Z_NONE;
  }
  return true;
}

// Register frame mappings [i, i+n) for missing and minor faults (tracking()).  A refusal
// (never expected: the range is shmem) ends tracking: pages are then unmapped the old way.
void register_frames(std::size_t i, std::size_t n) {
  uffdio_register reg{};
  reg.range.start = va_of(i);
  reg.range.len = n << PAGE_SHIFT;
  reg.mode = UFFDIO_REGISTER_MODE_MISSING | UFFDIO_REGISTER_MODE_MINOR;
  if (vm_fd_ioctl(g_uffd.load(std::memory_order_relaxed), UFFDIO_REGISTER, &reg) != 0) {
    say("vmrt: userfaultfd refused to register frame mappings: pages are unmapped by replacement (", errno == EBUSY ? "EBUSY" : errno == EINVAL ? "EINVAL" : "other", ")\n");
    g_uffd_minor = false;
  }
}

// Drop the host PTEs of pages [i, j), which keep their VMA (tracking()).
void zap_run(std::size_t i, std::size_t j) {
  vmrt::sys::madvise(reinterpret_cast<void*>(va_of(i)), (j - i) << PAGE_SHIFT, MADV_DONTNEED);
  rt_count(RC_PMAP_ZAPS);
  rt_count(RC_PMAP_ZAP_CALLS);
}

// ---- userfaultfd write protection -------------------------------------------------------
// A resident page of the API's vmspaces (WK_API windows) that its entry lets be written but
// the VM maps read-only (copy-on-write after vmrt_vmspace_fork, a clean page whose writes are
// tracked) is, under userfaultfd with write protection on shmem, mapped writable on the host
// with its PTE write-protected through the userfaultfd instead of mprotect'ed read-only: a
// write then waits in the handler thread, which runs vm_fault (the copy) and maps the result,
// so a kernel-mode write (read(2) into the page) completes where mprotect gave EFAULT.  The
// cost is on user-mode writes to such pages: a handler round trip (~50 us here, DESIGN.md)
// instead of an in-thread SIGSEGV (~3 us).  The process's own vmspace keeps mprotect: its
// libc calls are not where vmspace_fork's copy-on-write happens.
//   g_wp[p] = 1: the page's VMA is registered for write protection and its PTE may carry the
//   uffd-wp bit.  Cleared when the VMA is replaced (enter of other frames, a reservation,
//   a window reset) or the protection is removed (wp_clear).
std::uint8_t* g_wp;      // per page, mapped when write protection is first used [pmap lock]
bool g_uffd_wp;          // the userfaultfd has write protection on shmem [pmap lock]
std::size_t g_wp_marks;  // pages with g_wp set, ever (0: nothing to look at) [pmap lock]
// Pages [g_wp_lo, g_wp_hi) hold every g_wp mark ever set: scans look there only (the array
// covers the whole region; reading all of it is a page fault per 4096 region pages).
std::size_t g_wp_lo = SIZE_MAX, g_wp_hi;
inline void wp_mark(std::size_t p) {
  g_wp_marks += g_wp[p] == 0;
  g_wp[p] = 1;
  if (p < g_wp_lo) g_wp_lo = p;
  if (p + 1 > g_wp_hi) g_wp_hi = p + 1;
}
// Page p is write-protected for a fork's copy-on-write (a continue maps it back so).
inline bool wp_marked(std::size_t p) { return g_wp_marks != 0 && g_wp[p] != 0; }

#ifndef UFFDIO_CONTINUE_MODE_WP
#define UFFDIO_CONTINUE_MODE_WP ((__u64)1 << 1)
#endif

// Should resident pages [i, i + n), about to be mapped with `prot`, be write-protected through
// the userfaultfd rather than mprotect'ed?  => pmap lock held.
bool wp_wanted(std::size_t i, std::size_t n, vm_prot_t prot) {
  if (!g_uffd_wp || g_wp == nullptr || prot == VM_PROT_NONE || (prot & VM_PROT_WRITE) != 0) return false;
  window* w = window_lookup(va_of(i));
  if (w == nullptr || w->kind != WK_API) return false;
  for (std::size_t p = i; p < i + n; ++p)
    if ((g_bits[p] & B_RESV & VM_PROT_WRITE) == 0) return false;
  return true;
}

int wp_ioctl(std::size_t i, std::size_t n, bool protect) {
  uffdio_writeprotect wp{};
  wp.range.start = va_of(i);
  wp.range.len = n << PAGE_SHIFT;
  // Clearing never wakes a writer waiting on the range: the handler wakes it once the page
  // has its new host protection (a wake here let a write refused by the VM through before
  // pmap_linux_wp_refuse's mprotect: cow_demo's write to a read-only page succeeded in 8
  // runs of 20).
  wp.mode = protect ? UFFDIO_WRITEPROTECT_MODE_WP : UFFDIO_WRITEPROTECT_MODE_DONTWAKE;
  return vm_fd_ioctl(g_uffd.load(std::memory_order_relaxed), UFFDIO_WRITEPROTECT, &wp);
}

// Register resident pages [i, i + n) for write protection (keeping missing and minor faults
// under tracking), write-protect their PTEs and mark them.  False, nothing marked, when the
// host refused.  => pmap lock held.
bool wp_register_protect(std::size_t i, std::size_t n) {
  uffdio_register reg{};
  reg.range.start = va_of(i);
  reg.range.len = n << PAGE_SHIFT;
  reg.mode = UFFDIO_REGISTER_MODE_WP | (tracking() ? UFFDIO_REGISTER_MODE_MISSING | UFFDIO_REGISTER_MODE_MINOR : 0);
  if (vm_fd_ioctl(g_uffd.load(std::memory_order_relaxed), UFFDIO_REGISTER, &reg) != 0) return false;
  if (wp_ioctl(i, n, true) != 0) return false;
  for (std::size_t p = i; p < i + n; ++p) wp_mark(p);
  rt_count(RC_UFFD_WP_PAGES, static_cast<std::int64_t>(n));
  return true;
}

// Map resident pages [i, i + n) as `prot` (read-only) with writes caught by the userfaultfd:
// registered for write protection (keeping missing and minor faults under tracking), PTEs
// write-protected, then the VMA opened for writing (the host keeps a write-protected PTE
// read-only through mprotect).  False, nothing marked, when the host refused: the caller
// mprotects as before.  => pmap lock held.
bool wp_apply(std::size_t i, std::size_t n, vm_prot_t prot) {
  if (!wp_register_protect(i, n)) return false;
  int rc = vmrt::sys::mprotect(reinterpret_cast<void*>(va_of(i)), n << PAGE_SHIFT, prot | VM_PROT_WRITE);
  rt_count(RC_HOST_MPROTECT);
  return rc == 0;
}

// Pages [i, i + n) keep their VMA and lose any write protection through the userfaultfd.
//  => pmap lock held.
void wp_clear(std::size_t i, std::size_t n) {
  if (g_wp_marks == 0) return;
  for (std::size_t p = i; p < i + n;) {
    if (g_wp[p] == 0) {
      ++p;
      continue;
    }
    std::size_t q = p;
    while (q < i + n && g_wp[q] != 0) g_wp[q++] = 0;
    (void)wp_ioctl(p, q - p, false);
    p = q;
  }
}

// Pages [i, i + n) got a new VMA: nothing of the old registration remains.  => pmap lock held.
void wp_forget(std::size_t i, std::size_t n) {
  if (g_wp_marks != 0) std::memset(g_wp + i, 0, n);
}

// Give resident pages [i, i + n) the host protection `prot`: write-protected through the
// userfaultfd where wanted, else mprotect (a write-protected PTE stays so through mprotect:
// raising to writable clears the write protection first).  0, or mprotect's errno.
//  => pmap lock held.
int protect_resident(std::size_t i, std::size_t n, vm_prot_t prot) {
  if (wp_wanted(i, n, prot) && wp_apply(i, n, prot)) return 0;
  if ((prot & VM_PROT_WRITE) != 0) wp_clear(i, n);
  int rc = vmrt::sys::mprotect(reinterpret_cast<void*>(va_of(i)), n << PAGE_SHIFT, prot);
  rt_count(RC_HOST_MPROTECT);
  return rc == 0 ? 0 : errno;
}

// Map the zapped page p again from the page cache (its frame holds the page).  A frame with
// no page in the cache (never written since it was released) gets one through the direct
// map first.  EEXIST: another thread's fault mapped it meanwhile.
//  => pmap lock held; page p is mapped.
void continue_page(std::size_t p) {
  physmem_cow_touch(g_pte[p].frame1 - 1, 1, false);  // a fork child's pending frame: its bytes first
  uffdio_continue c{};
  for (int attempt = 0; attempt < 2; ++attempt) {
    c.range.start = va_of(p);
    c.range.len = PAGE_SIZE;
    // A write-protected page comes back write-protected.
    c.mode = wp_marked(p) ? UFFDIO_CONTINUE_MODE_WP : 0;
    c.mapped = 0;
    if (vm_fd_ioctl(g_uffd.load(std::memory_order_relaxed), UFFDIO_CONTINUE, &c) == 0 || errno == EEXIST) return;
    if (errno != EFAULT && errno != ENOENT) break;
    volatile char* f = physmem_frame(g_pte[p].frame1 - 1);
    __atomic_fetch_or(f, 0, __ATOMIC_RELAXED);
  }
  RT_ASSERT(false, "UFFDIO_CONTINUE failed on a mapped frame");
}

// Host: restore reservations over [i, j), grouped by reservation (sigsegv: one call).
// False (may_fail only) when the host refused one.
bool host_reserve_grouped(std::size_t i, std::size_t j, bool may_fail = false) {
  bool uffd = g_uffd.load(std::memory_order_relaxed) >= 0;
  while (i < j) {
    std::size_t k = i + 1;
    vm_prot_t r = g_bits[i] & B_RESV;
    if (uffd)
      while (k < j && (g_bits[k] & B_RESV) == r) ++k;
    else
      k = j;
    if (may_fail) {
      if (!host_reserve_try(i, k - i, r)) return false;
    } else {
      host_reserve(i, k - i, r);
    }
    i = k;
  }
  return true;
}

// Drop the resident pages [i, j) (all mapped) and restore their reservations.
void remove_run(std::size_t i, std::size_t j) {
  std::int64_t before = breaks(i, j);
  for (std::size_t p = i; p < j; ++p) {
    RT_ASSERT((g_bits[p] & B_MAPPED) != 0, "remove_run over a non-resident page");
    pv_unlink(p);
    g_pte[p].frame1 = 0;
    store_bits(p, static_cast<std::uint8_t>(g_bits[p] & B_RESV));
    --g_chunk[p >> kChunkShift];
  }
  host_reserve_grouped(i, j);
  rt_host_vmas_add(breaks(i, j) - before);
  rt_count(RC_PMAP_REMOVE_PAGES, static_cast<std::int64_t>(j - i));
}

// Take resident pages [i, j) from the program without replacing their VMA (tracking()):
// they become Z_STALE.  No VMA changes, so no instant without a mapping.
void stale_run(std::size_t i, std::size_t j) {
  zap_run(i, j);  // zapped pages too: one call, and no trust in the flag for what follows
  for (std::size_t p = i; p < j; ++p) {
    RT_ASSERT((g_bits[p] & B_MAPPED) != 0, "stale_run over a non-resident page");
    pv_unlink(p);
    store_bits(p, static_cast<std::uint8_t>(g_bits[p] & (B_RESV | B_MPROT)));
    g_zap[p] = Z_STALE;
    --g_chunk[p >> kChunkShift];
  }
  rt_count(RC_PMAP_REMOVE_PAGES, static_cast<std::int64_t>(j - i));
}

// Change the protection of resident pages [i, j) to `prot` on the host and in the bits.
void protect_run(std::size_t i, std::size_t j, vm_prot_t prot) {
  std::int64_t before = breaks(i, j);
  int err = protect_resident(i, j - i, prot);
  RT_ASSERT(err == 0, "mprotect of resident pages failed (host VMA limit?)");
  for (std::size_t p = i; p < j; ++p)
    set_bits(p, static_cast<std::uint8_t>((g_bits[p] & ~B_MPROT) | (prot << B_MPROT_SHIFT)));
  rt_host_vmas_add(breaks(i, j) - before);
}

// Call f(i, j) for each maximal run of resident pages inside [i, e).
template <class F> void for_each_resident_run(std::size_t i, std::size_t e, F&& f) {
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

kern_return_t enter_run(std::size_t i, std::size_t n, frame_t f0, vm_prot_t prot, bool populate) {
  // Copy-on-write host fork: a child has the frames' bytes before it maps (and populates)
  // them; a parent gives its children theirs before it maps them writable.
  physmem_cow_touch(f0, n, (prot & VM_PROT_WRITE) != 0);
  std::int64_t before = breaks(i, i + n);
  bool same = true;
  bool same_prot = true;
  for (std::size_t k = 0; k < n; ++k) {
    if ((g_bits[i + k] & B_MAPPED) == 0 || g_pte[i + k].frame1 != f0 + k + 1) {
      same = false;
      break;
    }
    if (mprot(g_bits[i + k]) != prot) same_prot = false;
  }
  if (same) {
    // Re-entering the frames already there: only the protection may change.
    if (!same_prot) {
      if (protect_resident(i, n, prot) != 0) return KERN_RESOURCE_SHORTAGE;
    }
  } else {
    // A second mapping of the frames' pages, made from the direct map (mremap with old size 0
    // duplicates a shared mapping): no file descriptor involved, so nothing the program does
    // with its descriptors can redirect it.  It comes read/write; lower it when needed.
    void* r = vmrt::sys::mremap(physmem_frame(f0), 0, n << PAGE_SHIFT, MREMAP_MAYMOVE | MREMAP_FIXED,
                       reinterpret_cast<void*>(va_of(i)));
    rt_count(RC_HOST_MMAP);
    if (r != MAP_FAILED) wp_forget(i, n);
    if (r != MAP_FAILED && prot != (PROT_READ | PROT_WRITE)) {
      if (vmrt::sys::mprotect(r, n << PAGE_SHIFT, prot) != 0) {
        vmrt::sys::mmap(r, n << PAGE_SHIFT, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED, -1, 0);
        r = MAP_FAILED;
      }
      rt_count(RC_HOST_MPROTECT);
    }
    if (r != MAP_FAILED && populate && g_populate.load(std::memory_order_relaxed)) {
      // A failure (host out of memory) is not an error here: the touch faults as before.
      int saved = errno;
      if (vmrt::sys::madvise(r, n << PAGE_SHIFT, MADV_POPULATE_READ) == 0) vm_stat_add(V_PMAP_POPULATE_PAGES, static_cast<std::int64_t>(n));
      else if (errno == EINVAL) g_populate.store(false, std::memory_order_relaxed);
      errno = saved;
    }
    if (r == MAP_FAILED) {
      // The host may have dropped what was there: forget it and restore the reservation.
      for (std::size_t k = 0; k < n; ++k) {
        if ((g_bits[i + k] & B_MAPPED) == 0) continue;
        pv_unlink(i + k);
        g_pte[i + k].frame1 = 0;
        store_bits(i + k, static_cast<std::uint8_t>(g_bits[i + k] & B_RESV));
        --g_chunk[(i + k) >> kChunkShift];
      }
      host_reserve_grouped(i, i + n);
      rt_host_vmas_add(breaks(i, i + n) - before);
      return KERN_RESOURCE_SHORTAGE;
    }
    for (std::size_t k = 0; k < n; ++k) {
      std::size_t p = i + k;
      g_zap[p] = Z_NONE;  // a new VMA, populated: a zapped page's PTE may be back
      if ((g_bits[p] & B_MAPPED) != 0) {
        if (g_pte[p].frame1 == f0 + k + 1) continue;  // same frame: keep its pv entry
        pv_unlink(p);
        store_bits(p, static_cast<std::uint8_t>(g_bits[p] & static_cast<std::uint8_t>(~B_MAPPED)));
        --g_chunk[p >> kChunkShift];
      }
      g_pte[p].frame1 = f0 + static_cast<std::uint32_t>(k) + 1;
      pv_link(p, f0 + static_cast<frame_t>(k));
    }
    // Registered after the populate (a populate of a registered range would wait for the
    // handler, which may be this thread).  Until then the VMA maps the right frames.
    if (tracking()) register_frames(i, n);
    // Write protection last, as registration (the populate above reads; and the VMA stays
    // read-only until the PTEs are write-protected).
    if (wp_wanted(i, n, prot)) (void)wp_apply(i, n, prot);
  }
  std::uintptr_t flags = MD_REF | ((prot & VM_PROT_WRITE) != 0 ? MD_MOD : 0);
  for (std::size_t k = 0; k < n; ++k) {
    std::size_t p = i + k;
    if ((g_bits[p] & B_MAPPED) == 0) ++g_chunk[p >> kChunkShift];
    set_bits(p, static_cast<std::uint8_t>((g_bits[p] & B_RESV) | B_MAPPED | (prot << B_MPROT_SHIFT)));
    vm_page* m = vm_page_from_frame(f0 + static_cast<frame_t>(k));
    set_md(m, md(m) | flags);
  }
  rt_host_vmas_add(breaks(i, i + n) - before);
  rt_count(RC_PMAP_ENTER_RUNS);
  rt_count(RC_PMAP_ENTER_PAGES, static_cast<std::int64_t>(n));
  return KERN_SUCCESS;
}

void check_range(const pmap* pm, vaddr_t sva, vaddr_t eva) {
  RT_ASSERT(page_aligned(sva) && page_aligned(eva) && sva <= eva, "pmap range not page aligned");
  RT_ASSERT(sva >= pm->min && eva <= pm->max, "pmap range outside its window");
}

// ---- pmap_ops ----------------------------------------------------------------------

kern_return_t enter_pages(pmap* pm, vaddr_t va, vm_page* const* pages, vsize_t n, vm_prot_t prot, bool populate) {
  check_range(pm, va, va + n * PAGE_SIZE);
  RT_ASSERT(prot != VM_PROT_NONE, "pmap_enter with VM_PROT_NONE");
  spin_guard g(g_lock);
  std::size_t i0 = idx_of(va);
  vsize_t k = 0;
  while (k < n) {
    frame_t f0 = vm_page_frame(pages[k]);
    RT_ASSERT(f0 < physmem_nframes(), "pmap_enter of a page outside physmem");
    vsize_t r = 1;
    while (k + r < n && vm_page_frame(pages[k + r]) == f0 + r) ++r;
    kern_return_t kr = enter_run(i0 + k, r, f0, prot, populate);
    if (kr != KERN_SUCCESS) return kr;
    k += r;
  }
  return KERN_SUCCESS;
}

kern_return_t op_enter(pmap* pm, vaddr_t va, vm_page* const* pages, vsize_t n, vm_prot_t prot) {
  return enter_pages(pm, va, pages, n, prot, true);
}

// Lazy: mapped, host page tables left empty.  A first access is a host minor fault on the
// shmem mapping, resolved by the host (a write to a read-only entry is a protection fault:
// SIGSEGV into vm_fault, never a userfaultfd event: the range is no longer registered).
kern_return_t op_enter_lazy(pmap* pm, vaddr_t va, vm_page* const* pages, vsize_t n, vm_prot_t prot) {
  return enter_pages(pm, va, pages, n, prot, false);
}

void op_remove(pmap* pm, vaddr_t sva, vaddr_t eva) {
  check_range(pm, sva, eva);
  spin_guard g(g_lock);
  for_each_resident_run(idx_of(sva), idx_of(eva), [](std::size_t i, std::size_t j) { remove_run(i, j); });
}

void op_protect(pmap* pm, vaddr_t sva, vaddr_t eva, vm_prot_t prot) {
  if (prot == VM_PROT_NONE) {
    op_remove(pm, sva, eva);
    return;
  }
  check_range(pm, sva, eva);
  spin_guard g(g_lock);
  for_each_resident_run(idx_of(sva), idx_of(eva), [prot](std::size_t i, std::size_t j) {
    // Sub-runs whose new protection (old & prot) differs from the old, grouped by new.
    std::size_t p = i;
    while (p < j) {
      vm_prot_t old = mprot(g_bits[p]);
      vm_prot_t nw = old & prot;
      if (nw == old) {
        ++p;
        continue;
      }
      std::size_t q = p + 1;
      while (q < j && mprot(g_bits[q]) != (mprot(g_bits[q]) & prot) && (mprot(g_bits[q]) & prot) == nw) ++q;
      if (nw == VM_PROT_NONE) remove_run(p, q);
      else protect_run(p, q, nw);
      p = q;
    }
  });
}

void op_reserve(pmap* pm, vaddr_t sva, vaddr_t eva, vm_prot_t prot) {
  check_range(pm, sva, eva);
  spin_guard g(g_lock);
  std::size_t i = idx_of(sva), e = idx_of(eva);
  if (i == e) return;
  bool uffd = g_uffd.load(std::memory_order_relaxed) >= 0;
  if (!uffd) {
    // The host state of non-resident pages is PROT_NONE whatever the reservation: record only.
    for (std::size_t p = i; p < e; ++p) {
      if (std::size_t q = prot == VM_PROT_NONE ? clean_run_end(p, e) : p; q != p) {
        p = q - 1;
        continue;
      }
      const std::uint8_t b = bits_of(p);
      if ((b & B_RESV) != prot) set_bits(p, static_cast<std::uint8_t>((b & ~B_RESV) | prot));
    }
    return;
  }
  // Record, and restore the host state of every non-resident run whose reservation
  // changed (the VMA estimate changes only around those runs).
  std::size_t p = i;
  while (p < e) {
    if ((bits_of(p) & B_MAPPED) != 0) {
      set_bits(p, static_cast<std::uint8_t>((g_bits[p] & ~B_RESV) | prot));
      ++p;
      continue;
    }
    std::size_t q = p;
    bool changed = false;
    while (q < e && (bits_of(q) & B_MAPPED) == 0) {
      if (std::size_t r = prot == VM_PROT_NONE ? clean_run_end(q, e) : q; r != q) {  // all zero: nothing to change
        q = r;
        continue;
      }
      if ((bits_of(q) & (B_RESV | B_REFUSED)) != prot) changed = true;
      ++q;
    }
    if (changed) {
      std::int64_t before = breaks(p, q);
      for (std::size_t k = p; k < q; ++k) set_bits(k, static_cast<std::uint8_t>((bits_of(k) & ~B_RESV) | prot));
      host_reserve(p, q - p, prot);
      rt_host_vmas_add(breaks(p, q) - before);
    }
    p = q;
  }
}

// page_protect with the pmap lock held.
void page_protect_locked(vm_page* m, vm_prot_t prot) {
  std::uint32_t cur = static_cast<std::uint32_t>(md(m) & MD_IDX);
  while (cur != 0) {
    std::size_t p = cur - 1;
    cur = g_pte[p].next1;
    vm_prot_t old = mprot(g_bits[p]);
    vm_prot_t nw = old & prot;
    if (nw == old) continue;
    if (nw == VM_PROT_NONE) {
      if (tracking()) stale_run(p, p + 1);
      else remove_run(p, p + 1);
    } else {
      protect_run(p, p + 1, nw);
    }
  }
}

void op_page_protect(vm_page* m, vm_prot_t prot) {
  spin_guard g(g_lock);
  page_protect_locked(m, prot);
}

bool op_is_modified(vm_page* m) {
  spin_guard g(g_lock);
  return (md(m) & MD_MOD) != 0;
}

void op_clear_modify(vm_page* m) {
  spin_guard g(g_lock);
  set_md(m, md(m) & ~MD_MOD);
  page_protect_locked(m, VM_PROT_READ | VM_PROT_EXECUTE);
}

// Under tracking the PTE drop is deferred: the page is marked Z_ZAPPED and queued, and
// op_update drops a batch with one host call (a madvise each paid a TLB shootdown apiece,
// 45-350 us on these guests, with the pmap lock held).  Until then an access is missed (no
// fault): the reference clear counts from the drop, at the end of the daemon's pass (or of
// a drop-behind run) at the latest.
bool op_ts_referenced(vm_page* m) {
  bool full = false;
  {
    spin_guard g(g_lock);
    bool ref = (md(m) & MD_REF) != 0;
    set_md(m, md(m) & ~MD_REF);
    if (!ref) return false;
    // The next access faults and sets it again.
    if (!tracking()) {
      page_protect_locked(m, VM_PROT_NONE);
      return true;
    }
    for (std::uint32_t cur = static_cast<std::uint32_t>(md(m) & MD_IDX); cur != 0; cur = g_pte[cur - 1].next1) {
      std::size_t p = cur - 1;
      if (g_zap[p] == Z_ZAPPED) continue;
      g_zap[p] = Z_ZAPPED;
      if (g_zap_npending < kZapPending) g_zap_pending[g_zap_npending++] = static_cast<std::uint32_t>(p);
      else zap_run(p, p + 1);  // a page mapped many times over a full batch: at once
    }
    full = g_zap_npending >= kZapPending;
  }
  if (full) op_update();
  return true;
}

// The caller may read or write the bytes (pagers read into it): a fork's pending frame is
// pushed or pulled first.
void* op_page_address(const vm_page* m) {
  physmem_cow_touch(vm_page_frame(m), 1, true);
  return physmem_frame(vm_page_frame(m));
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

// Zero the pages of m..m+n the host holds memory for (mincore on the direct map): pages
// never touched stay holes.  (physmem keeps no descriptor the program could see, so the
// writes go through the direct map.)
void op_zero_resident(vm_page* m, vsize_t n) {
  physmem_cow_overwrite(vm_page_frame(m), n);
  char* base = physmem_frame(vm_page_frame(m));
  for_each_host_resident(vm_page_frame(m), n, [base](std::size_t off, vsize_t c) {
    std::memset(base + off, 0, c << PAGE_SHIFT);
  });
}

// Copy the frames of src the host holds memory for: a page never touched is a hole in the
// memfd, reads as zeros, and would cost a host page to read.
void op_copy_resident(vm_page* dst, vm_page* src, vsize_t n) {
  physmem_cow_touch(vm_page_frame(src), n, false);  // a child's pending source is a hole until pulled
  physmem_cow_overwrite(vm_page_frame(dst), n);
  char* s = physmem_frame(vm_page_frame(src));
  char* d = physmem_frame(vm_page_frame(dst));
  for_each_host_resident(vm_page_frame(src), n, [s, d](std::size_t off, vsize_t c) {
    std::memcpy(d + off, s + off, c << PAGE_SHIFT);
  });
}
void op_zero_pages(vm_page* m, vsize_t n) { physmem_zero(vm_page_frame(m), n); }
void op_release_pages(vm_page* m, vsize_t n) { physmem_release(vm_page_frame(m), n); }

// ---- host memory -------------------------------------------------------------------------
// Anonymous host memory in the region: the host fills it at first touch (kernel-mode
// touches too), and the host's fork shares it copy-on-write (or shared, PMAP_HOST_SHARED).
// The pages are marked in g_hostmem; no software PTE, no pv entry, no userfaultfd
// registration.

void check_pages(vaddr_t sva, vaddr_t eva) {
  RT_ASSERT(page_aligned(sva) && page_aligned(eva) && sva <= eva, "host memory range not page aligned");
  RT_ASSERT(region_contains(sva) && (sva == eva || region_contains(eva - 1)), "host memory range outside the region");
}

// Mark pages [i, e) with code h (0: not host memory).  A whole chunk is marked in its
// dense record (g_uniform) without its table; a part of a uniform chunk first writes the
// chunk's code into its table.  => pmap lock held.
void set_hostmem(std::size_t i, std::size_t e, std::uint8_t h) {
  while (i < e) {
    const std::size_t c = i >> kChunkShift, o = i & kChunkMask, n = e - i < kChunkPages - o ? e - i : kChunkPages - o;
    const std::uint8_t u = chunk_uniform(c);
    if (n == kChunkPages && h != 0) {
      g_dirty_group[c >> kGroupShift] = 1;
      __atomic_store_n(&g_uniform[c], h, __ATOMIC_RELEASE);
    } else if (n == kChunkPages) {  // cleared: a clean chunk's records are not touched (fill_table's rule)
      if (u != 0) __atomic_store_n(&g_uniform[c], std::uint8_t{0}, __ATOMIC_RELEASE);
      if (chunk_dirty(c)) std::memset(block_of(c)->hostmem, 0, kChunkPages);  // no stale code under a later part
    } else {
      if (u != 0) {  // the chunk's pages in its table from now on
        std::memset(block_of(c)->hostmem, u, kChunkPages);
        mark_dirty(c);
        __atomic_store_n(&g_uniform[c], std::uint8_t{0}, __ATOMIC_RELEASE);
      }
      if (h != 0 || chunk_dirty(c)) std::memset(&block_of(c)->hostmem[o], h, n);
      if (h != 0) mark_dirty(c);
    }
    i += n;
  }
}

kern_return_t host_map_locked(vaddr_t sva, vaddr_t eva, vm_prot_t prot, unsigned flags) {
  std::size_t i = idx_of(sva), e = idx_of(eva);
  for (std::size_t p = i; p < e; ++p) {
    if (std::size_t q = clean_run_end(p, e); q != p) {
      p = q - 1;
      continue;
    }
    RT_ASSERT((bits_of(p) & B_MAPPED) == 0, "host_map over resident pages");
  }
  std::int64_t before = breaks(i, e);
  std::int64_t replaced = 0;  // host memory there already (MAP_FIXED over a mapping)
  for (std::size_t p = i; p < e; ++p) replaced += hostmem_of(p) != 0 ? static_cast<std::int64_t>(PAGE_SIZE) : 0;
  // Accounted like the program's own memory (no MAP_NORESERVE unless asked): under strict
  // overcommit the mapping fails here, where malloc or mmap can report it, not at a touch.
  int hf = MAP_FIXED | MAP_ANONYMOUS | ((flags & PMAP_HOST_SHARED) != 0 ? MAP_SHARED : MAP_PRIVATE) |
           ((flags & PMAP_HOST_NORESERVE) != 0 ? MAP_NORESERVE : 0) | ((flags & PMAP_HOST_POPULATE) != 0 ? MAP_POPULATE : 0);
  void* r = vmrt::sys::mmap(reinterpret_cast<void*>(sva), eva - sva, prot, hf, -1, 0);
  rt_count(RC_HOST_MMAP);
  if (r == MAP_FAILED) {
    // A failed MAP_FIXED may have dropped what was there: restore the reservation.
    // (When the host refused at its mapping limit it changed nothing, and restoring is
    // refused too: what was there stays, host memory included.)
    int saved = errno;
    if (host_reserve_grouped(i, e, true)) {
      set_hostmem(i, e, 0);
      rt_count(RC_HOST_MEM_MAPPED, -replaced);
    }
    rt_host_vmas_add(breaks(i, e) - before);
    errno = saved;
    return KERN_RESOURCE_SHORTAGE;
  }
  set_hostmem(i, e, static_cast<std::uint8_t>(H_HOST | ((flags & PMAP_HOST_SHARED) != 0 ? H_SHARED : 0) | (prot & H_PROT)));
  rt_host_vmas_add(breaks(i, e) - before);
  rt_count(RC_HOST_MEM_MAPPED, static_cast<std::int64_t>(eva - sva) - replaced);
  // mlockall(MCL_FUTURE) of the program: locked as the host would lock a new mapping (a
  // refusal, e.g. RLIMIT_MEMLOCK, leaves it unlocked, as mlockall's own populate would).
  if ((flags & PMAP_HOST_LOCKED) != 0)
    (void)::syscall(SYS_mlock2, sva, eva - sva, (flags & PMAP_HOST_LOCK_ONFAULT) != 0 ? MLOCK_ONFAULT : 0U);
  return KERN_SUCCESS;
}

kern_return_t op_host_map(pmap* pm, vaddr_t sva, vaddr_t eva, vm_prot_t prot, unsigned flags) {
  check_range(pm, sva, eva);
  spin_guard g(g_lock);
  return host_map_locked(sva, eva, prot, flags);
}

// Host memory [i, e) back to an empty reservation.  => pmap lock held.
void host_unmap_locked(std::size_t i, std::size_t e) {
  std::int64_t before = breaks(i, e);
  std::int64_t bytes = 0;
  for (std::size_t p = i; p < e; ++p) bytes += hostmem_of(p) != 0 ? static_cast<std::int64_t>(PAGE_SIZE) : 0;
  set_hostmem(i, e, 0);
  host_reserve_grouped(i, e);  // the bits are zero: an empty reservation
  rt_host_vmas_add(breaks(i, e) - before);
  rt_count(RC_HOST_MEM_MAPPED, -bytes);
}

void op_host_unmap(pmap* pm, vaddr_t sva, vaddr_t eva) {
  check_range(pm, sva, eva);
  spin_guard g(g_lock);
  host_unmap_locked(idx_of(sva), idx_of(eva));
}

// The advice that discards host memory: MADV_DONTNEED_LOCKED (Linux 5.18) also discards
// pages the program mlocked (mlock of a malloc'd buffer, mlockall), where MADV_DONTNEED
// fails with EINVAL and the range would keep its old bytes; an older kernel refuses the
// advice itself with EINVAL once, and MADV_DONTNEED serves from then on.
constexpr int kMadvDontneedLocked = 24;
std::atomic<int> g_discard_advice{kMadvDontneedLocked};

// One madvise of [sva, eva) with that advice, counted in `calls`.
void discard_one(vaddr_t sva, vaddr_t eva, rt_counter calls = RC_HOST_DISCARD_CALLS) {
  if (sva == eva) return;
  int adv = g_discard_advice.load(std::memory_order_relaxed);
  int rc = vmrt::sys::madvise(reinterpret_cast<void*>(sva), eva - sva, adv);
  if (rc != 0 && errno == EINVAL && adv == kMadvDontneedLocked) {
    g_discard_advice.store(MADV_DONTNEED, std::memory_order_relaxed);
    rc = vmrt::sys::madvise(reinterpret_cast<void*>(sva), eva - sva, MADV_DONTNEED);
  }
  RT_ASSERT(rc == 0, "vmrt::sys::madvise(MADV_DONTNEED) failed");
  rt_count(calls);
}

// Linux's pidfd for the calling process (PIDFD_SELF_THREAD_GROUP, Linux 6.15): no
// descriptor to open, none for the program to see.
constexpr int kPidfdSelf = -10001;
// Spans per process_madvise (under IOV_MAX, 1024).
constexpr std::size_t kDiscardIov = 128;
// process_madvise(MADV_DONTNEED) of this process works (cleared at its first refusal:
// an older kernel, a seccomp filter).
std::atomic<bool> g_batch_discard{true};

// Discard the spans with batched process_madvise calls: one TLB shootdown per call where a
// madvise each pays one apiece.  A refusal (or a partial batch) falls back to madvise for
// the rest.
// The host calls are counted in `calls`.
void discard_spans(const vm_span* spans, std::size_t n, rt_counter calls) {
  int saved = errno;
  std::size_t i = 0;
  while (i < n && n - i > 1 && g_batch_discard.load(std::memory_order_relaxed)) {
    iovec iov[kDiscardIov];
    std::size_t k = 0;
    std::size_t bytes = 0;
    for (; k < kDiscardIov && i + k < n; ++k) {
      iov[k].iov_base = reinterpret_cast<void*>(spans[i + k].start);
      iov[k].iov_len = spans[i + k].end - spans[i + k].start;
      bytes += iov[k].iov_len;
    }
    long r = ::syscall(SYS_process_madvise, kPidfdSelf, iov, k, g_discard_advice.load(std::memory_order_relaxed), 0U);
    rt_count(calls);
    if (r < 0) {
      g_batch_discard.store(false, std::memory_order_relaxed);
      break;
    }
    if (static_cast<std::size_t>(r) == bytes) {
      i += k;
      continue;
    }
    // Partial: the spans it covered whole are done; the rest go one by one (the one it
    // stopped in from its start again: discarding twice is harmless).
    std::size_t done = static_cast<std::size_t>(r), j = 0;
    for (; j < k && done >= iov[j].iov_len; ++j) done -= iov[j].iov_len;
    i += j;
    break;
  }
  for (; i < n; ++i) discard_one(spans[i].start, spans[i].end, calls);
  errno = saved;
}

void op_host_discard(const vm_span* spans, std::size_t n) {
  rt_count(RC_HOST_MEM_DISCARDS, static_cast<std::int64_t>(n));
  discard_spans(spans, n, RC_HOST_DISCARD_CALLS);
}

// The spans op_update hands to the host [VM lock].
VMRT_LARGE_BSS vm_span g_zap_spans[kZapPending];

// Drop the PTEs of the pending Z_ZAPPED pages: runs of neighbours as one span, the batch
// outside the pmap lock (the VM lock the caller holds keeps every mapping in place; a
// userfaultfd handler meanwhile takes the pmap lock only to continue a page already
// dropped).  => VM lock held.
void op_update() {
  std::size_t n = 0;
  {
    spin_guard g(g_lock);
    for (std::size_t k = 0; k < g_zap_npending; ++k) {
      std::size_t p = g_zap_pending[k];
      if (g_zap[p] != Z_ZAPPED || (g_bits[p] & B_MAPPED) == 0) continue;
      vaddr_t va = va_of(p);
      if (n > 0 && g_zap_spans[n - 1].end == va) g_zap_spans[n - 1].end = va + PAGE_SIZE;
      else g_zap_spans[n++] = vm_span{va, va + PAGE_SIZE};
    }
    g_zap_npending = 0;
  }
  if (n == 0) return;
  rt_count(RC_PMAP_ZAPS, static_cast<std::int64_t>(n));
  discard_spans(g_zap_spans, n, RC_PMAP_ZAP_CALLS);
}

// page_protect(m, VM_PROT_NONE) of pages[0..n) with one batch of PTE drops (pmap_ops::
// page_unmap_run): under tracking each mapping becomes Z_STALE as stale_run makes it, and
// the drops go to the host together, runs of neighbours as one span (the laundry's cluster
// of 32 pages took 32 madvise calls and TLB shootdowns: 172 k for the 40 MB bash string of
// scenario paging at 16M).  The drops are made before the pmap lock is let go: an access
// meanwhile lands in the frame as before the call, and none after it returns.
//  => VM lock held.
void op_page_unmap_run(vm_page* const* pages, vsize_t n) {
  spin_guard g(g_lock);
  if (!tracking()) {
    for (vsize_t k = 0; k < n; ++k) page_protect_locked(pages[k], VM_PROT_NONE);
    return;
  }
  constexpr std::size_t kSpans = 64;
  vm_span spans[kSpans];
  std::size_t ns = 0;
  auto flush = [&] {
    if (ns == 0) return;
    rt_count(RC_PMAP_ZAPS, static_cast<std::int64_t>(ns));
    discard_spans(spans, ns, RC_PMAP_ZAP_CALLS);
    ns = 0;
  };
  for (vsize_t k = 0; k < n; ++k) {
    std::uint32_t cur = static_cast<std::uint32_t>(md(pages[k]) & MD_IDX);
    while (cur != 0) {
      std::size_t p = cur - 1;
      cur = g_pte[p].next1;
      if (mprot(g_bits[p]) == VM_PROT_NONE) continue;
      pv_unlink(p);
      store_bits(p, static_cast<std::uint8_t>(g_bits[p] & (B_RESV | B_MPROT)));
      g_zap[p] = Z_STALE;
      --g_chunk[p >> kChunkShift];
      rt_count(RC_PMAP_REMOVE_PAGES);
      vaddr_t va = va_of(p);
      if (ns > 0 && spans[ns - 1].end == va) {
        spans[ns - 1].end = va + PAGE_SIZE;
        continue;
      }
      if (ns == kSpans) flush();
      spans[ns++] = vm_span{va, va + PAGE_SIZE};
    }
  }
  flush();
}

// pmap_ops::host_discard_sparse: mincore a batch at a time, the resident runs kept as spans
// and discarded in one batch (discard_spans); past kSpans runs the whole range goes in one
// madvise instead.  The walk stops as soon as the count passes max_pages (the answer is
// then just "more").  With host swap mincore misses swapped-out pages: it cannot tell.
vsize_t op_host_discard_sparse(vaddr_t sva, vaddr_t eva, vsize_t max_pages) {
  if (g_host_swap) return ~vsize_t{0};
  constexpr vsize_t kBatch = 1024;
  constexpr std::size_t kSpans = 64;
  unsigned char vec[kBatch];
  vm_span spans[kSpans];
  std::size_t ns = 0;
  bool whole = false;
  vsize_t n = 0;
  const int saved = errno;
  const vsize_t npages = (eva - sva) >> PAGE_SHIFT;
  for (vsize_t k = 0; k < npages; k += kBatch) {
    const vsize_t c = npages - k < kBatch ? npages - k : kBatch;
    if (vmrt::sys::mincore(reinterpret_cast<void*>(sva + (k << PAGE_SHIFT)), c << PAGE_SHIFT, vec) != 0) {
      errno = saved;
      return ~vsize_t{0};
    }
    for (vsize_t j = 0; j < c; ++j) {
      if ((vec[j] & 1) == 0) continue;
      if (++n > max_pages) return n;
      const vaddr_t va = sva + ((k + j) << PAGE_SHIFT);
      if (ns > 0 && spans[ns - 1].end == va) spans[ns - 1].end = va + PAGE_SIZE;
      else if (ns < kSpans) spans[ns++] = vm_span{va, va + PAGE_SIZE};
      else whole = true;
    }
  }
  if (n == 0) return 0;
  rt_count(RC_HOST_MEM_DISCARDS, static_cast<std::int64_t>(ns));
  if (whole) discard_one(sva, eva);
  else discard_spans(spans, ns, RC_HOST_DISCARD_CALLS);
  errno = saved;
  return n;
}

void op_host_zero_resident(vaddr_t sva, vaddr_t eva) {
  if (g_host_swap) {
    int saved = errno;
    discard_one(sva, eva);  // pages swapped out would be missed by mincore
    errno = saved;
    return;
  }
  for_each_host_page_run(sva, eva - sva, [sva](vsize_t off, vsize_t n) {
    std::memset(reinterpret_cast<void*>(sva + off), 0, n);
  });
}

void op_host_copy_resident(vaddr_t dst, vaddr_t src, vsize_t len) {
  for_each_host_page_run(src, len, [dst, src](vsize_t off, vsize_t n) {
    std::memcpy(reinterpret_cast<void*>(dst + off), reinterpret_cast<const void*>(src + off), n);
  });
}

// Is every page of [i, e) private host memory of protection prot?  => pmap lock held.
bool private_host(std::size_t i, std::size_t e, std::uint8_t* prot) {
  const std::uint8_t h = hostmem_of(i);
  if ((h & (H_HOST | H_SHARED)) != H_HOST) return false;
  for (std::size_t p = i + 1; p < e; ++p)
    if (hostmem_of(p) != h) return false;
  *prot = h & H_PROT;
  return true;
}

// One mremap (MREMAP_FIXED | MREMAP_DONTUNMAP, Linux 5.7): the page tables move, src stays
// mapped and reads as zeros.  The host takes a range within one of its mappings only (the
// windows of src may be separate ones when something split them: refused, the caller
// copies).  A refused MREMAP_FIXED may have unmapped dst first: it is mapped again as
// it was (zeros).  A move splits the host's mappings at the range ends (up to two more
// each side; later window maps and unmaps join them again): refused near
// vm.max_map_count (rt_vma_budget, which counts the real mappings there), where a copy
// splits nothing.  The region's VMA estimate is left as it is.
bool op_host_move(vaddr_t dst, vaddr_t src, vsize_t len) {
  check_pages(src, src + len);
  check_pages(dst, dst + len);
  if (len == 0) return true;
  if (!vma_budget_allows(4)) return false;
  spin_guard g(g_lock);
  std::uint8_t sp = 0, dp = 0;
  if (!private_host(idx_of(src), idx_of(src + len), &sp) || !private_host(idx_of(dst), idx_of(dst + len), &dp) ||
      sp != dp)
    return false;
  int saved = errno;
  void* r = vmrt::sys::mremap(reinterpret_cast<void*>(src), len, len, MREMAP_MAYMOVE | MREMAP_FIXED | MREMAP_DONTUNMAP,
                              reinterpret_cast<void*>(dst));
  if (r == MAP_FAILED) {
    void* m = vmrt::sys::mmap(reinterpret_cast<void*>(dst), len, sp, MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    RT_ASSERT(m != MAP_FAILED, "host_move: cannot map the destination again after a refused mremap");
    rt_count(RC_HOST_MMAP);
    errno = saved;
    return false;
  }
  RT_ASSERT(r == reinterpret_cast<void*>(dst), "host_move: mremap moved elsewhere");
  return true;
}

// Only chunks of host memory are asked about (mincore per chunk): a large heap whose
// windows are mostly unpopulated costs a scan of g_hostmem.
vsize_t op_host_resident(vaddr_t sva, vaddr_t eva) {
  vsize_t n = 0;
  constexpr vsize_t kBatch = std::size_t{1} << kChunkShift;
  unsigned char vec[kBatch];
  for (vaddr_t a = sva; a < eva; a = va_of(((idx_of(a) >> kChunkShift) + 1) << kChunkShift)) {
    if (!region_contains(a) || chunk_clean(idx_of(a) >> kChunkShift)) continue;
    vaddr_t ce = va_of(((idx_of(a) >> kChunkShift) + 1) << kChunkShift);
    vsize_t c = ((ce < eva ? ce : eva) - a) >> PAGE_SHIFT;
    if (vmrt::sys::mincore(reinterpret_cast<void*>(a), c << PAGE_SHIFT, vec) != 0) continue;  // not mapped: nothing held
    for (vsize_t j = 0; j < c; ++j) n += (vec[j] & 1) != 0 && hostmem_of(idx_of(a) + j) != 0;
  }
  return n << PAGE_SHIFT;
}

void uffd_register(int uffd, vaddr_t lo, vaddr_t hi) {
  uffdio_register reg{};
  reg.range.start = lo;
  reg.range.len = hi - lo;
  reg.mode = UFFDIO_REGISTER_MODE_MISSING;
  if (vm_fd_ioctl(uffd, UFFDIO_REGISTER, &reg) != 0) say("vmrt: fork child: UFFDIO_REGISTER failed\n");
}

// A fork child's private anonymous region mapping: registered again, except host memory.
// Under tracking, frame mappings too (the parent's physmem mappings were replaced by the
// child's, unregistered): they may be zapped or stale.
void rereg_line(const maps_line& l, void* arg) {
  int uffd = *static_cast<int*>(arg);
  if (!region_contains(l.lo)) return;
  if (l.shared && l.inode != 0 && (tracking() || g_cow_live.load(std::memory_order_acquire))) {
    std::size_t p = idx_of(l.lo), e = idx_of(l.hi);
    bool frames = true;
    for (std::size_t q = p; q < e && frames; ++q) frames = hostmem_of(q) == 0;
    if (!frames) return;
    if (tracking()) {
      register_frames(p, e - p);
    } else {
      // Frames a copy-on-write fork left in the parent's memfd are holes here: a first touch
      // is a missing page the handler pulls (pmap_linux_uffd_resolve).
      uffd_register(uffd, l.lo, l.hi);
    }
    return;
  }
  if (l.inode != 0 || l.shared || l.prot == PROT_NONE) return;
  // One registration per run of pages that are not host memory.
  std::size_t p = idx_of(l.lo), e = idx_of(l.hi);
  while (p < e) {
    std::size_t q = p + 1;
    bool host = hostmem_of(p) != 0;
    while (q < e && (hostmem_of(q) != 0) == host) ++q;
    if (!host) uffd_register(uffd, va_of(p), va_of(q));
    p = q;
  }
}

}  // namespace

const pmap_ops g_pmap_linux_ops = {
    op_enter,       op_remove,      op_protect,        op_reserve,     op_page_protect, op_is_modified,
    op_clear_modify, op_ts_referenced, op_page_address, op_zero_pages, op_release_pages, op_enter_lazy,
    op_copy_resident, op_zero_resident,
    op_host_map, op_host_unmap, op_host_discard, op_host_zero_resident, op_host_copy_resident, op_host_resident,
    op_update,      op_host_move,   op_page_unmap_run, op_host_discard_sparse,
};

// Does the host have swap?  sysinfo(2)'s totalswap: the sum of what /proc/swaps lists, for
// one system call instead of an open, a read and a close of a proc file in every process.
static bool host_has_swap() {
  struct sysinfo si {};
  if (sys::inline_syscall(SYS_sysinfo, reinterpret_cast<long>(&si)) != 0) return true;  // cannot tell: assume it has
  return si.totalswap != 0;
}

bool pmap_linux_init(vaddr_t center) {
  g_base = region_base();
  g_npages = region_size() >> PAGE_SHIFT;
  std::size_t nchunks = (g_npages + kChunkMask) >> kChunkShift;
  std::size_t ngroups = (nchunks >> kGroupShift) + 1;
  std::size_t nblocks = nchunks;
  g_center = 0;
  g_fold = 0;
  if (center > g_base && center < g_base + region_size()) {
    g_center = (center - g_base) >> (PAGE_SHIFT + kChunkShift);
    g_fold = 1;
    const std::size_t below = g_center, above = nchunks - 1 - g_center;
    nblocks = below > above ? 2 * below : 2 * above + 1;  // the largest slot, plus one
  }
  // [g_dirty_group][g_counts] and the blocks of the chunks around the centre from the table
  // arena's hot block (vm/vm_tables.h): the pages of them a process writes share a host
  // 2 MiB block with the window table and kmem's fronts.  The other blocks after the other
  // tables, in the GiB below.
  const std::size_t groups = (ngroups + 63) & ~std::size_t{63};
  const std::size_t dense = groups + nblocks * sizeof(chunk_counts);  // records by slot, as the blocks
  const std::size_t hot = nblocks < kHotSlots ? nblocks : kHotSlots;
  void* d = vmrt::sys::table_map(dense, vmrt::sys::TABLE_HOT);
  void* h = d != nullptr ? vmrt::sys::table_map(hot * sizeof(chunk_tables), vmrt::sys::TABLE_HOT) : nullptr;
  void* t = h != nullptr && nblocks > hot ? vmrt::sys::table_map(nblocks * sizeof(chunk_tables)) : h;
  if (t == nullptr) {
    say("vmrt: cannot map the software page tables\n");
    return false;
  }
  g_dirty_group = static_cast<std::uint8_t*>(d);  // ngroups bytes
  g_counts = reinterpret_cast<chunk_counts*>(static_cast<char*>(d) + groups);
  g_hot_tables = static_cast<chunk_tables*>(h);
  g_tables = static_cast<chunk_tables*>(t);
  // The groups' page is read by the first reservation and written by the first mapping of
  // every process: written now (a zero), one fault, where a read mapped the host's zero
  // page and the write then faulted again.
  __atomic_store_n(&g_dirty_group[0], std::uint8_t{0}, __ATOMIC_RELAXED);
  g_host_swap = host_has_swap();
  rt_host_vmas_add(1);  // the region reservation itself
  return true;
}

namespace {
// Tracking just began: frames mapped before it were never registered.
//  => pmap lock held.
void track_existing() {
  if (!tracking()) return;
  for_each_resident_run(0, g_npages, [](std::size_t i, std::size_t j) { register_frames(i, j - i); });
}
}  // namespace

void pmap_linux_set_uffd(int fd, bool minor) {
  // A copy-on-write fork child: the SIGBUS-mode userfaultfd of its set-up lets go of the
  // frame mappings the new one registers (track_existing, pmap_linux_reregister).
  if (fd >= 0) physmem_cow_child_handover();
  spin_guard g(g_lock);
  g_uffd.store(fd, std::memory_order_release);
  g_uffd_minor = fd >= 0 && minor;
  track_existing();
}

void pmap_linux_set_paging() {
  spin_guard g(g_lock);
  g_paging = true;
  track_existing();
}

namespace {

// Pages a fault in a copy-on-write fork child pulls at once.
constexpr std::size_t kCowPullAround = 16;

// Fork child, a fault at page p whose frame is pending: pull it and the pages after it in its
// frame run (resident, not zapped), and map those neighbours' PTEs at once under tracking
// (their first access would otherwise be a minor fault each).  => pmap lock held.
void cow_pull_around(std::size_t p) {
  std::size_t q = p + 1;
  while (q < g_npages && q - p < kCowPullAround && (g_bits[q] & B_MAPPED) != 0 && g_zap[q] == Z_NONE &&
         g_pte[q].frame1 == g_pte[q - 1].frame1 + 1 && physmem_cow_pending(g_pte[q].frame1 - 1))
    ++q;
  physmem_cow_touch(g_pte[p].frame1 - 1, q - p, false);
  if (q > p + 1 && tracking()) {
    uffdio_continue c{};
    c.range.start = va_of(p + 1);
    c.range.len = (q - p - 1) << PAGE_SHIFT;
    c.mode = 0;
    (void)vm_fd_ioctl(g_uffd.load(std::memory_order_relaxed), UFFDIO_CONTINUE, &c);  // EEXIST: mapped already
  }
}

// A fork child whose frame mappings were replaced (pmap_linux_fork_child): every mapped page
// starts without a host PTE, and a first touch of one whose frame is already in the child's
// memfd (copied at the fork, or pulled) is a minor fault served by the handler thread, a
// wake-up of another thread for every page (bash's `$(echo)` child took ~30, for pages of
// the heap's first megabyte, and each cost more than the rest of its work).
bool g_replaced;  // [set in the fork child before any thread runs]

// Pages on each side of a fork child's minor fault mapped with it.
constexpr std::size_t kContinueAround = 32;

// May page q, mapped in the fork child, get its host PTE now?  Its frame is in the child's
// memfd (not pending), ts_referenced has not taken it (Z_NONE), and it is mapped.
bool continue_ok(std::size_t q) {
  return (g_bits[q] & B_MAPPED) != 0 && g_zap[q] == Z_NONE && !physmem_cow_pending(g_pte[q].frame1 - 1);
}

// Map [i, j) from the page cache in one call, all with write-protection mode `wp`; a page
// already mapped (EEXIST) is stepped over.  Best effort: a refusal leaves the rest to faults.
void continue_run(std::size_t i, std::size_t j, bool wp) {
  while (i < j) {
    uffdio_continue c{};
    c.range.start = va_of(i);
    c.range.len = (j - i) << PAGE_SHIFT;
    c.mode = wp ? UFFDIO_CONTINUE_MODE_WP : 0;
    if (vm_fd_ioctl(g_uffd.load(std::memory_order_relaxed), UFFDIO_CONTINUE, &c) == 0) return;
    if (errno != EEXIST || c.mapped < 0) return;
    i += (static_cast<std::size_t>(c.mapped) >> PAGE_SHIFT) + 1;
  }
}

// After the fault at p: the fork child's neighbours of p that continue_ok allows, mapped in
// runs (the program touches its heap's first pages together).  => pmap lock held.
void continue_around(std::size_t p) {
  const std::size_t lo = p > kContinueAround ? p - kContinueAround : 0;
  const std::size_t hi = p + kContinueAround + 1 < g_npages ? p + kContinueAround + 1 : g_npages;
  std::size_t i = lo;
  while (i < hi) {
    if (i == p || !continue_ok(i)) {
      ++i;
      continue;
    }
    const bool wp = wp_marked(i);
    std::size_t j = i + 1;
    while (j < hi && j != p && continue_ok(j) && wp_marked(j) == wp) ++j;
    continue_run(i, j, wp);
    rt_count(RC_UFFD_CONTINUED_AROUND, j - i);
    i = j;
  }
}

}  // namespace

bool pmap_linux_uffd_resolve(vaddr_t va, vm_prot_t access) {
  if (!region_contains(va)) return false;
  spin_guard g(g_lock);
  std::size_t p = idx_of(va);
  std::uint8_t b = g_bits[p];
  if ((b & B_MAPPED) == 0 || (mprot(b) & access) != access) return false;
  // A fork child's frame still in its parent's memfd only: a missing page until pulled, with
  // the pages after it in its frame run (a program reads its memory in order).
  if (physmem_cow_pending(g_pte[p].frame1 - 1)) cow_pull_around(p);
  if (g_zap[p] == Z_ZAPPED) {
    // The access ts_referenced waits for.
    vm_page* m = vm_page_from_frame(g_pte[p].frame1 - 1);
    set_md(m, md(m) | MD_REF);
    g_zap[p] = Z_NONE;
    continue_page(p);
    rt_count(RC_UFFD_CONTINUES);
  } else if (tracking()) {
    // A minor fault on a mapped page whose PTE the host does not have (a fork child's
    // replaced mappings, a lazy enter): map it.
    continue_page(p);
    rt_count(RC_UFFD_CONTINUES);
    if (g_replaced) continue_around(p);
  }
  return true;
}
int pmap_linux_uffd() { return g_uffd.load(std::memory_order_acquire); }

bool pmap_linux_allows(vaddr_t va, vm_prot_t access) {
  if (!region_contains(va)) return false;
  std::uint8_t b = __atomic_load_n(&g_bits[idx_of(va)], __ATOMIC_RELAXED);
  return (b & B_MAPPED) != 0 && (mprot(b) & access) == access;
}

bool pmap_linux_ready(vaddr_t va, vm_prot_t access) {
  if (!pmap_linux_allows(va, access)) return false;
  std::size_t p = idx_of(va);
  if (g_tables != nullptr && __atomic_load_n(&g_zap[p], __ATOMIC_RELAXED) == Z_ZAPPED) return false;
  return (access & VM_PROT_WRITE) == 0 || g_wp == nullptr || __atomic_load_n(&g_wp[p], __ATOMIC_RELAXED) == 0;
}

bool pmap_linux_serves_write(vaddr_t va) {
  if (!region_contains(va)) return false;
  const std::size_t p = idx_of(va);
  return (bits_of(p) & B_RESV & VM_PROT_WRITE) != 0 && hostmem_of(p) == 0;
}

vm_prot_t pmap_linux_reservation(vaddr_t va) {
  if (!region_contains(va)) return VM_PROT_NONE;
  return __atomic_load_n(&g_bits[idx_of(va)], __ATOMIC_RELAXED) & B_RESV;
}

void pmap_linux_refuse(vaddr_t va) {
  spin_guard g(g_lock);
  std::size_t i = idx_of(trunc_page(va));
  if ((g_bits[i] & (B_MAPPED | B_REFUSED)) != 0) return;
  std::int64_t before = breaks(i, i + 1);
  vmrt::sys::mprotect(reinterpret_cast<void*>(va_of(i)), PAGE_SIZE, PROT_NONE);
  rt_count(RC_HOST_MPROTECT);
  set_bits(i, static_cast<std::uint8_t>(g_bits[i] | B_REFUSED));
  rt_host_vmas_add(breaks(i, i + 1) - before);
}

void pmap_linux_reset(vaddr_t sva, vaddr_t eva) {
  spin_guard g(g_lock);
  std::size_t i = idx_of(sva), e = idx_of(eva);
  for (std::size_t c = i >> kChunkShift; c < (e >> kChunkShift); ++c)
    RT_ASSERT(g_chunk[c] == 0, "window torn down with resident pages");
  std::int64_t before = breaks(i, e);
  fill_table(&chunk_tables::bits, i, e, 0);
  set_hostmem(i, e, 0);
  fill_table(&chunk_tables::zap, i, e, 0);
  wp_forget(i, e - i);
  for (std::size_t c = (i + kChunkMask) >> kChunkShift; (c + 1) * kChunkPages <= e; ++c) g_dirty[c] = 0;
  void* r = vmrt::sys::mmap(reinterpret_cast<void*>(sva), eva - sva, PROT_NONE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED, -1, 0);
  rt_count(RC_HOST_MMAP);
  RT_ASSERT(r != MAP_FAILED, "cannot reset a window");
  rt_host_vmas_add(breaks(i, e) - before);
}

void pmap_linux_reregister() {
  physmem_cow_child_handover();  // its registrations go with it; the new userfaultfd's follow
  int uffd = g_uffd.load(std::memory_order_acquire);
  if (uffd < 0) return;
  maps_scan(rereg_line, &uffd);
  // The child's mappings came back writable (physmem_fork_child maps the new memfd with the
  // host's protection) and without the parent's write protection: protect again.
  spin_guard g(g_lock);
  if (g_wp_marks == 0) return;
  for (std::size_t p = g_wp_lo; p < g_wp_hi;) {
    if (g_wp[p] == 0) {
      ++p;
      continue;
    }
    std::size_t q = p;
    while (q < g_wp_hi && g_wp[q] != 0 && (g_bits[q] & B_MAPPED) != 0) g_wp[q++] = 0;
    if (q == p) {  // stale or zapped: its next enter maps it again
      g_wp[p++] = 0;
      continue;
    }
    (void)protect_resident(p, q - p, mprot(g_bits[p]));
    p = q;
  }
}

void pmap_linux_set_uffd_wp(bool wp) {
  spin_guard g(g_lock);
  if (wp && g_wp == nullptr) {
    void* m = vmrt::sys::table_map(g_npages);
    if (m == nullptr) return;  // no write protection: mprotect as before
    g_wp = static_cast<std::uint8_t*>(m);
  }
  g_uffd_wp = wp && g_wp != nullptr;
}

void pmap_linux_wp_refuse(vaddr_t va) {
  if (!region_contains(va)) return;
  spin_guard g(g_lock);
  std::size_t p = idx_of(va);
  if (g_wp == nullptr || g_wp[p] == 0) return;
  wp_clear(p, 1);
  (void)vmrt::sys::mprotect(reinterpret_cast<void*>(va_of(p)), PAGE_SIZE, mprot(g_bits[p]));
  rt_count(RC_HOST_MPROTECT);
}

int pmap_linux_host_protect(vaddr_t sva, vaddr_t eva, vm_prot_t prot) {
  check_pages(sva, eva);
  spin_guard g(g_lock);
  std::size_t i = idx_of(sva), e = idx_of(eva);
  for (std::size_t p = i; p < e; ++p) RT_ASSERT(hostmem_of(p) != 0, "host_protect of pages that are not host memory");
  std::int64_t before = breaks(i, e);
  if (vmrt::sys::mprotect(reinterpret_cast<void*>(sva), eva - sva, prot) != 0) return errno;
  rt_count(RC_HOST_MPROTECT);
  // Per run of one code (a uniform chunk stays one while the run covers it).
  for (std::size_t p = i; p < e;) {
    const std::uint8_t h = hostmem_of(p);
    std::size_t q = p + 1;
    while (q < e && hostmem_of(q) == h) ++q;
    set_hostmem(p, q, static_cast<std::uint8_t>((h & ~H_PROT) | (prot & H_PROT)));
    p = q;
  }
  rt_host_vmas_add(breaks(i, e) - before);
  return 0;
}

void pmap_linux_host_adopt(vaddr_t sva, vaddr_t eva, vm_prot_t prot, bool shared) {
  check_pages(sva, eva);
  spin_guard g(g_lock);
  std::size_t i = idx_of(sva), e = idx_of(eva);
  for (std::size_t p = i; p < e; ++p) RT_ASSERT((bits_of(p) & B_MAPPED) == 0, "host_adopt over resident pages");
  std::int64_t before = breaks(i, e);
  std::int64_t added = 0;
  for (std::size_t p = i; p < e; ++p) added += hostmem_of(p) == 0 ? static_cast<std::int64_t>(PAGE_SIZE) : 0;
  set_hostmem(i, e, static_cast<std::uint8_t>(H_HOST | (shared ? H_SHARED : 0) | (prot & H_PROT)));
  rt_host_vmas_add(breaks(i, e) - before);
  rt_count(RC_HOST_MEM_MAPPED, added);
}

bool pmap_linux_host_shared(vaddr_t va) {
  check_pages(va, va + PAGE_SIZE);
  return (hostmem_of(idx_of(va)) & H_SHARED) != 0;
}

int pmap_linux_host_punch(vaddr_t sva, vaddr_t eva) {
  check_pages(sva, eva);
  spin_guard g(g_lock);
  std::size_t i = idx_of(sva), e = idx_of(eva);
  // Only an empty reservation is taken off (host memory the map lost track of after a host
  // refusal at its mapping limit stays: the caller's call then sees it, not a hole).
  for (std::size_t p = i; p < e; ++p)
    if ((bits_of(p) & B_MAPPED) != 0 || hostmem_of(p) != 0) return EBUSY;
  if (vmrt::sys::munmap(reinterpret_cast<void*>(sva), eva - sva) != 0) return errno;
  rt_count(RC_HOST_MMAP);
  return 0;
}

void pmap_linux_host_unpunch(vaddr_t sva, vaddr_t eva) {
  check_pages(sva, eva);
  spin_guard g(g_lock);
  // Still a hole?  (mincore answers ENOMEM for unmapped pages.)  Something the host placed
  // there meanwhile (another thread's raw mmap) stays.  Each page of a short hole is asked;
  // of a long one, its ends and every 64th page (the host places a mapping at a gap's top
  // or bottom).
  constexpr vsize_t kEveryPage = 64;
  unsigned char v;
  vsize_t n = (eva - sva) >> PAGE_SHIFT;
  for (vsize_t k = 0; k < n; k = (n <= kEveryPage || k + 1 == n) ? k + 1 : (k + kEveryPage < n ? k + kEveryPage : n - 1))
    if (vmrt::sys::mincore(reinterpret_cast<void*>(sva + (k << PAGE_SHIFT)), PAGE_SIZE, &v) == 0) return;
  host_reserve_grouped(idx_of(sva), idx_of(eva));
}

int pmap_linux_host_grow(vaddr_t addr, vsize_t oldsize, vsize_t newsize) {
  check_pages(addr, addr + newsize);
  spin_guard g(g_lock);
  std::size_t i = idx_of(addr), m = idx_of(addr + oldsize), e = idx_of(addr + newsize);
  for (std::size_t p = m; p < e; ++p)
    RT_ASSERT((bits_of(p) & B_MAPPED) == 0 && hostmem_of(p) == 0, "host_grow onto resident pages or host memory");
  std::uint8_t code = hostmem_of(i);
  std::int64_t before = breaks(i, e);
  // The host grows a mapping in place only into free address space: the reservation after
  // it goes for the call (a hole for that long; the host places its own mappings far away).
  vmrt::sys::munmap(reinterpret_cast<void*>(addr + oldsize), newsize - oldsize);
  void* r = vmrt::sys::mremap(reinterpret_cast<void*>(addr), oldsize, newsize, 0);
  rt_count(RC_HOST_MMAP);
  if (r == MAP_FAILED) {
    int err = errno;
    host_reserve_grouped(m, e);
    return err;
  }
  set_hostmem(m, e, code);
  rt_host_vmas_add(breaks(i, e) - before);
  rt_count(RC_HOST_MEM_MAPPED, static_cast<std::int64_t>(newsize - oldsize));
  return 0;
}

std::size_t pmap_linux_resident(vaddr_t sva, vaddr_t eva) {
  spin_guard g(g_lock);
  std::size_t n = 0;
  for_each_resident_run(idx_of(sva), idx_of(eva), [&n](std::size_t i, std::size_t j) { n += j - i; });
  return n;
}


// ---- copy-on-write host fork of frames ---------------------------------------------------

namespace {

// Around the forking thread's pointer: its static TLS below (glibc's and every module's
// initial-exec blocks), its descriptor above.
constexpr vaddr_t kCowTlsBelow = vaddr_t{256} << 10;
constexpr vaddr_t kCowTlsAbove = vaddr_t{16} << 10;

// Pages a write-protect fault pushes at once: the faulting page and those after it in its
// frame run (a program writing a buffer after a fork meets its pages in order).
constexpr std::size_t kCowBatch = 16;

struct boot_arg {
  int fd;
  bool ok;
};
void boot_line(const maps_line& l, void* arg) {
  boot_arg* a = static_cast<boot_arg*>(arg);
  if (!l.shared || l.inode == 0 || !region_contains(l.lo)) return;
  std::size_t p = idx_of(l.lo), e = idx_of(l.hi);
  for (std::size_t q = p; q < e; ++q)
    if (hostmem_of(q) != 0) return;
  uffdio_register reg{};
  reg.range.start = l.lo;
  reg.range.len = l.hi - l.lo;
  reg.mode = UFFDIO_REGISTER_MODE_MISSING;
  if (vm_fd_ioctl(a->fd, UFFDIO_REGISTER, &reg) != 0) a->ok = false;
}

}  // namespace

bool pmap_linux_cow_capable() {  // set once at trap start: no lock (fork set-up holds it)
  return g_uffd_wp && g_wp != nullptr && g_uffd.load(std::memory_order_relaxed) >= 0;
}

bool pmap_linux_cow_protect(vaddr_t heap_lo, vaddr_t heap_hi) {
  bool ok = true;
  // The forking thread's static TLS and descriptor, when the program placed its stack in
  // vmrt's memory: written by this very code (errno) and by the kernel (rseq) until the fork
  // is done, so given to the child now and never write-protected.
  const vaddr_t tp = trunc_page(reinterpret_cast<vaddr_t>(__builtin_thread_pointer()));
  const vaddr_t tls_lo = tp > kCowTlsBelow ? tp - kCowTlsBelow : 0, tls_hi = tp + kCowTlsAbove;
  // Shared copy-on-write: writable heap pages that are not wired.  Everything else resident
  // goes to the child now (pushed): the VM's own memory; wired pages (the kernel may write
  // them with no fault to wait in: an alternate stack or thread descriptor kept held,
  // rt_vslock_keep.h); and the program's own mappings, among them glibc's thread stacks, whose
  // descriptor the kernel clears at the thread's exit, when no userfaultfd handler is waited
  // for (a write-protected one would leave pthread_join asleep).
  auto shared = [heap_lo, heap_hi, tls_lo, tls_hi](std::size_t q) {
    vaddr_t va = va_of(q);
    return va >= heap_lo && va < heap_hi && (va < tls_lo || va >= tls_hi) &&
           (mprot(g_bits[q]) & VM_PROT_WRITE) != 0 && vm_page_from_frame(g_pte[q].frame1 - 1)->wire_count == 0;
  };
  for_each_resident_run(0, g_npages, [&ok, &shared](std::size_t i, std::size_t j) {
    std::size_t p = i;
    while (p < j && ok) {
      if (!shared(p)) {
        physmem_cow_touch(g_pte[p].frame1 - 1, 1, true);
        ++p;
        continue;
      }
      std::size_t q = p + 1;
      while (q < j && shared(q)) ++q;
      ok = wp_register_protect(p, q - p);  // the child pulls, the parent pushes on a write
      p = q;
    }
  });
  return ok;
}

void pmap_linux_cow_release(const vaddr_t* pages, std::size_t n) {
  for (std::size_t k = 0; k < n; ++k) {
    if (!region_contains(pages[k])) continue;
    std::size_t p = idx_of(pages[k]);
    if ((g_bits[p] & B_MAPPED) == 0) continue;
    physmem_cow_touch(g_pte[p].frame1 - 1, 1, true);
    if (g_wp != nullptr && g_wp[p] != 0 && (mprot(g_bits[p]) & VM_PROT_WRITE) != 0) {
      g_wp[p] = 0;
      (void)wp_ioctl(p, 1, false);
    }
  }
}

bool pmap_linux_cow_write(vaddr_t va) {
  if (!region_contains(va)) return false;
  spin_guard g(g_lock);
  std::size_t p = idx_of(va);
  std::uint8_t b = g_bits[p];
  if ((b & B_MAPPED) == 0) return false;
  vm_prot_t prot = mprot(b);
  bool vm_allows = (prot & VM_PROT_WRITE) != 0;
  if (!vm_allows) {
    // The VM's own copy-on-write (a read-only entry of a writable map entry): vm_fault
    // decides; a pending frame is pushed before the VM copies or reuses it.
    if (physmem_cow_pending(g_pte[p].frame1 - 1)) physmem_cow_touch(g_pte[p].frame1 - 1, 1, true);
    return false;
  }
  if (g_wp == nullptr || g_wp[p] == 0) return false;
  // The faulting page and the following pages of its frame run that are write-protected
  // for the fork alone: pushed and opened together.
  std::size_t q = p + 1;
  while (q < g_npages && q - p < kCowBatch && (g_bits[q] & B_MAPPED) != 0 && mprot(g_bits[q]) == prot &&
         g_pte[q].frame1 == g_pte[q - 1].frame1 + 1 && g_wp[q] != 0)
    ++q;
  physmem_cow_touch(g_pte[p].frame1 - 1, q - p, true);
  for (std::size_t k = p; k < q; ++k) g_wp[k] = 0;
  (void)wp_ioctl(p, q - p, false);
  rt_count(RC_COW_WP_FAULTS);
  return true;
}

bool pmap_linux_cow_fault(vaddr_t va) {
  if (!region_contains(va)) return false;
  std::size_t p = idx_of(va);
  std::uint32_t f1 = g_pte[p].frame1;  // resident or stale: the frame its VMA maps
  if (f1 == 0) return false;
  physmem_cow_touch(f1 - 1, 1, false);
  // A frame the child already owned (claimed, or released) may be a hole: give it a page.
  __atomic_fetch_or(reinterpret_cast<volatile char*>(physmem_frame(f1 - 1)), 0, __ATOMIC_RELAXED);
  return true;
}

bool pmap_linux_cow_register_boot(int fd) {
  boot_arg a{fd, true};
  return maps_scan(boot_line, &a) && a.ok;
}
}  // namespace vmrt::rt

namespace vmrt::rt {
VMRT_FORK_PARENT_TEXT void pmap_linux_fork_prepare() { g_lock.lock(); }
VMRT_FORK_PARENT_TEXT void pmap_linux_fork_parent() { g_lock.unlock(); }
VMRT_FORK_CHILD_TEXT void pmap_linux_fork_child(bool replaced) {
  g_lock.reset();
  fork_store(g_replaced, replaced);
}
}  // namespace vmrt::rt
