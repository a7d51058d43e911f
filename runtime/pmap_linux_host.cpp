// pmap_linux_host.cpp — host memory in the region: anonymous memory the host fills at first
// touch (kernel-mode touches too) and its fork shares copy-on-write (or shared,
// PMAP_HOST_SHARED): the heap's windows and the program's own mappings.  The pages are
// marked in g_hostmem; no software PTE, no pv entry, no userfaultfd registration
// (pmap_linux_impl.h lists the pmap's other files).
#include "runtime/pmap_linux_impl.h"

#include <cerrno>
#include <cstring>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include "runtime/rt_vma_budget.h"

namespace vmrt::rt::pml {

namespace {

void check_pages(vaddr_t sva, vaddr_t eva) {
  RT_ASSERT(page_aligned(sva) && page_aligned(eva) && sva <= eva, "host memory range not page aligned");
  RT_ASSERT(region_contains(sva) && (sva == eva || region_contains(eva - 1)), "host memory range outside the region");
}

}  // namespace

// Mark pages [i, e) with code h (0: not host memory).  A whole chunk is marked in its
// dense record (g_uniform) without its table; a part of a uniform chunk first writes the
// chunk's code into its table.  => pmap lock held.
void set_hostmem(std::size_t i, std::size_t e, std::uint8_t h) VMRT_REQUIRES(g_lock) {
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

namespace {

kern_return_t host_map_locked(vaddr_t sva, vaddr_t eva, vm_prot_t prot, unsigned flags) VMRT_REQUIRES(g_lock) {
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

}  // namespace

kern_return_t op_host_map(pmap* pm, vaddr_t sva, vaddr_t eva, vm_prot_t prot, unsigned flags) {
  check_range(pm, sva, eva);
  spin_guard g(g_lock);
  return host_map_locked(sva, eva, prot, flags);
}

namespace {

// Host memory [i, e) back to an empty reservation.  => pmap lock held.
void host_unmap_locked(std::size_t i, std::size_t e) VMRT_REQUIRES(g_lock) {
  std::int64_t before = breaks(i, e);
  std::int64_t bytes = 0;
  for (std::size_t p = i; p < e; ++p) bytes += hostmem_of(p) != 0 ? static_cast<std::int64_t>(PAGE_SIZE) : 0;
  set_hostmem(i, e, 0);
  host_reserve_grouped(i, e);  // the bits are zero: an empty reservation
  rt_host_vmas_add(breaks(i, e) - before);
  rt_count(RC_HOST_MEM_MAPPED, -bytes);
}

}  // namespace

void op_host_unmap(pmap* pm, vaddr_t sva, vaddr_t eva) {
  check_range(pm, sva, eva);
  spin_guard g(g_lock);
  host_unmap_locked(idx_of(sva), idx_of(eva));
}

namespace {

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

}  // namespace

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

namespace {

// Is every page of [i, e) private host memory of protection prot?  => pmap lock held.
bool private_host(std::size_t i, std::size_t e, std::uint8_t* prot) VMRT_REQUIRES(g_lock) {
  const std::uint8_t h = hostmem_of(i);
  if ((h & (H_HOST | H_SHARED)) != H_HOST) return false;
  for (std::size_t p = i + 1; p < e; ++p)
    if (hostmem_of(p) != h) return false;
  *prot = h & H_PROT;
  return true;
}

}  // namespace

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
  spin_guard g(g_lock);  // (it read the tables without it: procstat and the vmstat report)
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

}  // namespace vmrt::rt::pml

namespace vmrt::rt {

using namespace pml;

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
  spin_guard g(g_lock);
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

}  // namespace vmrt::rt
