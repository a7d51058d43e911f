// pmap_linux.cpp — the Linux pmap: software PTEs over host mappings of physmem (the tables,
// reservations, frame runs entered and removed, reference tracking, the pmap_ops table;
// pmap_linux_impl.h lists the other files).
#include "runtime/pmap_linux_impl.h"

#include <cerrno>
#include <cstring>
#include <linux/userfaultfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "runtime/physmem_cow.h"
#include "runtime/rt_vma_budget.h"
#include "vm/vm_fds.h"
#include "vm/vm_stats.h"
#include "vm/vm_tables.h"

#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22
#endif

namespace vmrt::rt::pml {

// The tables' state (pmap_linux_impl.h says what each is).
chunk_tables* g_tables;
chunk_tables* g_hot_tables;
std::size_t g_center;
unsigned g_fold;
chunk_counts* g_counts;
std::uint8_t* g_dirty_group;
bool g_host_swap;
std::size_t g_npages;
vaddr_t g_base;
std::atomic<int> g_uffd{-1};
VMRT_FORK_DATA spinlock g_lock;
bool g_uffd_minor VMRT_GUARDED_BY(g_lock);
bool g_paging;

namespace {

// Populate at enter: after mmap(MAP_FIXED|MAP_SHARED) of a frame run, madvise(
// MADV_POPULATE_READ) fills the host page tables in one call.  physmem is shmem, which
// has no write-notify, so a writable mapping gets writable PTEs: the guest's first touch
// of an entered page takes no host fault (bench/frame_probe: ~0.5 us/page for recycled
// frames zeroed through the direct map, against ~0.9 us for a host fault per page).
// Cleared if the host does not know the advice (Linux < 5.14).
std::atomic<bool> g_populate{true};

// Z_ZAPPED pages whose PTE drop op_ts_referenced deferred, in the order cleared; op_update
// drops them (a page no longer Z_ZAPPED by then is skipped: its VMA was replaced, or
// stale_run dropped it).
constexpr std::size_t kZapPending = 512;
VMRT_LARGE_BSS std::uint32_t g_zap_pending[kZapPending] VMRT_GUARDED_BY(g_lock);
std::size_t g_zap_npending VMRT_GUARDED_BY(g_lock);

}  // namespace

std::size_t clean_run_end(std::size_t p, std::size_t end) VMRT_REQUIRES(g_lock) {
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

namespace {

// Set entries [i, e) of one per-page table to v.  Zeros are not written into a clean
// chunk (they are there already, perhaps in pages never touched).
void fill_table(std::uint8_t (chunk_tables::*t)[kChunkPages], std::size_t i, std::size_t e, std::uint8_t v)
    VMRT_REQUIRES(g_lock) {
  while (i < e) {
    const std::size_t c = i >> kChunkShift, o = i & kChunkMask, n = e - i < kChunkPages - o ? e - i : kChunkPages - o;
    if (v != 0 || chunk_dirty(c)) std::memset(&(block_of(c)->*t)[o], v, n);
    i += n;
  }
}

// Would the host merge pages p-1 and p into one VMA?  (p >= 1)
// A page of a clean chunk has every table byte zero and is taken as such without reading
// the tables: a boundary at the start of the mmap area or of a window read the last byte of
// a never-touched page of g_hostmem, g_bits and g_zap — three host page faults for one
// mapping in every process whose first mmap lands there (perf record -e page-faults -d,
// git add: 4 of the 10 faults its index mapping cost).
bool joined(std::size_t p) VMRT_REQUIRES(g_lock) {
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

}  // namespace

// VMA boundaries among the page boundaries lo..hi (boundary p lies between p-1 and p).
std::int64_t breaks(std::size_t lo, std::size_t hi) VMRT_REQUIRES(g_lock) {
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

void pv_link(std::size_t i, frame_t f) VMRT_REQUIRES(g_lock) {
  vm_page* m = vm_page_from_frame(f);
  std::uintptr_t v = md(m);
  g_pte[i].next1 = static_cast<std::uint32_t>(v & MD_IDX);
  set_md(m, (v & ~MD_IDX) | (i + 1));
}

void pv_unlink(std::size_t i) VMRT_REQUIRES(g_lock) {
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

namespace {

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

}  // namespace

void host_reserve(std::size_t i, std::size_t n, vm_prot_t resv) VMRT_REQUIRES(g_lock) {
  RT_ASSERT(host_reserve_try(i, n, resv), "cannot restore a reservation in the region (the host's mapping limit, vm.max_map_count)");
}
bool host_reserve_try(std::size_t i, std::size_t n, vm_prot_t resv) VMRT_REQUIRES(g_lock) {
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

void register_frames(std::size_t i, std::size_t n) VMRT_REQUIRES(g_lock) {
  uffdio_register reg{};
  reg.range.start = va_of(i);
  reg.range.len = n << PAGE_SHIFT;
  reg.mode = UFFDIO_REGISTER_MODE_MISSING | UFFDIO_REGISTER_MODE_MINOR;
  if (vm_fd_ioctl(g_uffd.load(std::memory_order_relaxed), UFFDIO_REGISTER, &reg) != 0) {
    say("vmrt: userfaultfd refused to register frame mappings: pages are unmapped by replacement (", errno == EBUSY ? "EBUSY" : errno == EINVAL ? "EINVAL" : "other", ")\n");
    g_uffd_minor = false;
  }
}

namespace {

// Drop the host PTEs of pages [i, j), which keep their VMA (tracking()).
void zap_run(std::size_t i, std::size_t j) {
  vmrt::sys::madvise(reinterpret_cast<void*>(va_of(i)), (j - i) << PAGE_SHIFT, MADV_DONTNEED);
  rt_count(RC_PMAP_ZAPS);
  rt_count(RC_PMAP_ZAP_CALLS);
}

// Map the zapped page p again from the page cache (its frame holds the page).  A frame with
// no page in the cache (never written since it was released) gets one through the direct
// map first.  EEXIST: another thread's fault mapped it meanwhile.
//  => pmap lock held; page p is mapped.
void continue_page(std::size_t p) VMRT_REQUIRES(g_lock) {
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

}  // namespace

bool host_reserve_grouped(std::size_t i, std::size_t j, bool may_fail) VMRT_REQUIRES(g_lock) {
  return for_each_resv_group(i, j, [may_fail](std::size_t p, std::size_t q, vm_prot_t r) VMRT_REQUIRES(g_lock) {
    if (may_fail) return host_reserve_try(p, q - p, r);
    host_reserve(p, q - p, r);
    return true;
  });
}

namespace {

// Drop the resident pages [i, j) (all mapped) and restore their reservations.
void remove_run(std::size_t i, std::size_t j) VMRT_REQUIRES(g_lock) {
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
void stale_run(std::size_t i, std::size_t j) VMRT_REQUIRES(g_lock) {
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
void protect_run(std::size_t i, std::size_t j, vm_prot_t prot) VMRT_REQUIRES(g_lock) {
  std::int64_t before = breaks(i, j);
  int err = protect_resident(i, j - i, prot);
  RT_ASSERT(err == 0, "mprotect of resident pages failed (host VMA limit?)");
  for (std::size_t p = i; p < j; ++p)
    set_bits(p, static_cast<std::uint8_t>((g_bits[p] & ~B_MPROT) | (prot << B_MPROT_SHIFT)));
  rt_host_vmas_add(breaks(i, j) - before);
}

// A second mapping of frames [f0, f0 + n)'s pages at pages [i, i + n), made from the direct
// map (mremap with old size 0 duplicates a shared mapping): no file descriptor involved, so
// nothing the program does with its descriptors can redirect it.  It comes read/write.
void* map_frames(std::size_t i, std::size_t n, frame_t f0) {
  void* r = vmrt::sys::mremap(physmem_frame(f0), 0, n << PAGE_SHIFT, MREMAP_MAYMOVE | MREMAP_FIXED,
                              reinterpret_cast<void*>(va_of(i)));
  rt_count(RC_HOST_MMAP);
  return r;
}

kern_return_t enter_run(std::size_t i, std::size_t n, frame_t f0, vm_prot_t prot, bool populate)
    VMRT_REQUIRES(g_vm_lock, g_lock) {
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
    // A second mapping of the frames' pages (map_frames); lower its protection when needed.
    // Near the host's mapping limit, other chunks give VMAs back first; a refusal all the
    // same (mappings vmrt does not count) gets one forced sweep and a second try.
    (void)vma_make_room(i, n, false);
    void* r = map_frames(i, n, f0);
    if (r == MAP_FAILED && errno == ENOMEM) {
      (void)vma_make_room(i, n, true);
      r = map_frames(i, n, f0);
    }
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
      if (!host_reserve_grouped(i, i + n, true)) {
        (void)vma_make_room(i, n, true);
        host_reserve_grouped(i, i + n);
      }
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

}  // namespace

void check_range(const pmap* pm, vaddr_t sva, vaddr_t eva) {
  RT_ASSERT(page_aligned(sva) && page_aligned(eva) && sva <= eva, "pmap range not page aligned");
  RT_ASSERT(sva >= pm->min && eva <= pm->max, "pmap range outside its window");
}

namespace {

// ---- pmap_ops ----------------------------------------------------------------------

kern_return_t enter_pages(pmap* pm, vaddr_t va, vm_page* const* pages, vsize_t n, vm_prot_t prot, bool populate)
    VMRT_REQUIRES(g_vm_lock) {
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

kern_return_t op_enter(pmap* pm, vaddr_t va, vm_page* const* pages, vsize_t n, vm_prot_t prot)
    VMRT_REQUIRES(g_vm_lock) {
  return enter_pages(pm, va, pages, n, prot, true);
}

// Lazy: mapped, host page tables left empty.  A first access is a host minor fault on the
// shmem mapping, resolved by the host (a write to a read-only entry is a protection fault:
// SIGSEGV into vm_fault, never a userfaultfd event: the range is no longer registered).
kern_return_t op_enter_lazy(pmap* pm, vaddr_t va, vm_page* const* pages, vsize_t n, vm_prot_t prot)
    VMRT_REQUIRES(g_vm_lock) {
  return enter_pages(pm, va, pages, n, prot, false);
}

void op_remove(pmap* pm, vaddr_t sva, vaddr_t eva) {
  check_range(pm, sva, eva);
  spin_guard g(g_lock);
  for_each_resident_run(idx_of(sva), idx_of(eva), [](std::size_t i, std::size_t j) VMRT_REQUIRES(g_lock) {
    remove_run(i, j);
  });
}

void op_protect(pmap* pm, vaddr_t sva, vaddr_t eva, vm_prot_t prot) {
  if (prot == VM_PROT_NONE) {
    op_remove(pm, sva, eva);
    return;
  }
  check_range(pm, sva, eva);
  spin_guard g(g_lock);
  for_each_resident_run(idx_of(sva), idx_of(eva), [prot](std::size_t i, std::size_t j) VMRT_REQUIRES(g_lock) {
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
void page_protect_locked(vm_page* m, vm_prot_t prot) VMRT_REQUIRES(g_lock) {
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
bool op_ts_referenced(vm_page* m) VMRT_REQUIRES(g_vm_lock) {
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

// The spans op_update hands to the host.
VMRT_LARGE_BSS vm_span g_zap_spans[kZapPending] VMRT_GUARDED_BY(g_vm_lock);

}  // namespace

// Drop the PTEs of the pending Z_ZAPPED pages: runs of neighbours as one span, the batch
// outside the pmap lock (the VM lock the caller holds keeps every mapping in place; a
// userfaultfd handler meanwhile takes the pmap lock only to continue a page already
// dropped).  => VM lock held.
void op_update() VMRT_REQUIRES(g_vm_lock) {
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

namespace {

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

}  // namespace

}  // namespace vmrt::rt::pml

namespace vmrt::rt {

using namespace pml;

const pmap_ops g_pmap_linux_ops = {
    op_enter,       op_remove,      op_protect,        op_reserve,     op_page_protect, op_is_modified,
    op_clear_modify, op_ts_referenced, op_page_address, op_zero_pages, op_release_pages, op_enter_lazy,
    op_copy_resident, op_zero_resident,
    op_host_map, op_host_unmap, op_host_discard, op_host_zero_resident, op_host_copy_resident, op_host_resident,
    op_update,      op_host_move,   op_page_unmap_run, op_host_discard_sparse,
};

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
  // every process: written now (a zero), where a read mapped the host's zero page and the
  // write then faulted again (it is populated with the window table, vm_tables.cpp, when
  // the host allows: then no fault at all).  The heap's first chunk's tables, which the
  // heap's first mapping writes in every process, populated in one call too.
  __atomic_store_n(&g_dirty_group[0], std::uint8_t{0}, __ATOMIC_RELAXED);
  if (g_fold != 0) vmrt::sys::table_populate(&g_hot_tables[0], 1);
  g_host_swap = host_memory_info().swap;
  rt_host_vmas_add(1);  // the region reservation itself
  return true;
}

namespace {
// Tracking just began: frames mapped before it were never registered.
//  => pmap lock held.
void track_existing() VMRT_REQUIRES(g_lock) {
  if (!tracking()) return;
  for_each_resident_run(0, g_npages, [](std::size_t i, std::size_t j) VMRT_REQUIRES(g_lock) {
    register_frames(i, j - i);
  });
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

// The four lock-free hints (pmap_linux.h) read the tables without the pmap lock, by relaxed
// atomic loads of bytes every writer stores atomically (store_bits): not for the analysis.
bool pmap_linux_allows(vaddr_t va, vm_prot_t access) VMRT_NO_THREAD_SAFETY_ANALYSIS {
  if (!region_contains(va)) return false;
  std::uint8_t b = __atomic_load_n(&g_bits[idx_of(va)], __ATOMIC_RELAXED);
  return (b & B_MAPPED) != 0 && (mprot(b) & access) == access;
}

bool pmap_linux_ready(vaddr_t va, vm_prot_t access) VMRT_NO_THREAD_SAFETY_ANALYSIS {
  if (!pmap_linux_allows(va, access)) return false;
  std::size_t p = idx_of(va);
  if (g_tables != nullptr && __atomic_load_n(&g_zap[p], __ATOMIC_RELAXED) == Z_ZAPPED) return false;
  return (access & VM_PROT_WRITE) == 0 || g_wp == nullptr || __atomic_load_n(&g_wp[p], __ATOMIC_RELAXED) == 0;
}

bool pmap_linux_serves_write(vaddr_t va) VMRT_NO_THREAD_SAFETY_ANALYSIS {
  if (!region_contains(va)) return false;
  const std::size_t p = idx_of(va);
  return (bits_of(p) & B_RESV & VM_PROT_WRITE) != 0 && hostmem_of(p) == 0;
}

vm_prot_t pmap_linux_reservation(vaddr_t va) VMRT_NO_THREAD_SAFETY_ANALYSIS {
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

std::size_t pmap_linux_resident(vaddr_t sva, vaddr_t eva) {
  spin_guard g(g_lock);
  std::size_t n = 0;
  for_each_resident_run(idx_of(sva), idx_of(eva), [&n](std::size_t i, std::size_t j) { n += j - i; });
  return n;
}

}  // namespace vmrt::rt
