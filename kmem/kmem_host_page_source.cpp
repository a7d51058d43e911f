// kmem_host_page_source.cpp — a kmem_page_source over a private host reservation.
//
// The arena is reserved once with mmap(PROT_NONE, MAP_NORESERVE).  Free page runs
// are kept in an array sorted by address (mmap'd, sized for the worst case of
// every other page free), searched first-fit with the alignment honoured and
// coalesced with both neighbours on free.  Allocated runs are made read/write
// with mprotect; freed runs get MADV_DONTNEED (their frames go back to the host
// and read back as zeros) and PROT_NONE, so stray accesses fault.
//
// Thread-safe: one lock around the run array; the mprotect/madvise calls are
// made outside it, on pages the caller exclusively owns.
#include <cerrno>
#include <cstring>
#include <new>
#include <sys/mman.h>

#include "vm/vm_sys.h"

#include "kmem/kmem.h"
#include "kmem/kmem_assert.h"
#include "kmem/kmem_bucket_index.h"
#include "kmem/kmem_lock.h"

namespace vmrt::kmem {
namespace {
using detail::kmem_guard;
using detail::kmem_lock;
using detail::kPageShift;
using detail::kPageSize;

struct page_run {
  std::size_t start;  // first page index
  std::size_t len;    // pages
};

struct host_source {
  kmem_page_source pub;
  kmem_lock lock;
  std::uintptr_t base;
  std::size_t base_pg;   // base >> kPageShift
  std::size_t npages;
  page_run* runs;        // sorted by start, disjoint, never adjacent (lock)
  std::size_t nruns;     // lock
  std::size_t cap;
  std::size_t pages_out; // lock
  std::uint64_t allocs;  // lock
  std::uint64_t frees;   // lock
};

// => lock held.  Index of the first run starting after page p.
std::size_t upper_bound(const host_source* hs, std::size_t p) {
  std::size_t lo = 0, hi = hs->nruns;
  while (lo < hi) {
    std::size_t mid = (lo + hi) / 2;
    if (hs->runs[mid].start <= p) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

// => lock held.  Inserts a run at index i (shifting the tail).
void insert_run(host_source* hs, std::size_t i, page_run r) {
  KMEM_ASSERT(hs->nruns < hs->cap, "host page source: run table full");
  std::memmove(&hs->runs[i + 1], &hs->runs[i], (hs->nruns - i) * sizeof(page_run));
  hs->runs[i] = r;
  ++hs->nruns;
}

void remove_run(host_source* hs, std::size_t i) {
  std::memmove(&hs->runs[i], &hs->runs[i + 1], (hs->nruns - i - 1) * sizeof(page_run));
  --hs->nruns;
}

// => takes the lock.  Returns the first page of a run of n pages aligned to
// align pages, or SIZE_MAX.
std::size_t take_pages(host_source* hs, std::size_t n, std::size_t align) {
  kmem_guard guard(hs->lock);
  for (std::size_t i = 0; i < hs->nruns; ++i) {
    page_run r = hs->runs[i];
    if (r.len < n) continue;
    // Align the address, not the index: the reservation itself may be less aligned.
    std::size_t s = ((hs->base_pg + r.start + align - 1) & ~(align - 1)) - hs->base_pg;
    if (s + n > r.start + r.len) continue;
    std::size_t before = s - r.start;
    std::size_t after = r.start + r.len - (s + n);
    if (before == 0 && after == 0) {
      remove_run(hs, i);
    } else if (before == 0) {
      hs->runs[i] = {s + n, after};
    } else {
      hs->runs[i].len = before;
      if (after != 0) insert_run(hs, i + 1, {s + n, after});
    }
    hs->pages_out += n;
    ++hs->allocs;
    return s;
  }
  return SIZE_MAX;
}

// => takes the lock.  Returns [p, p+n) to the free runs, coalescing.
void give_pages(host_source* hs, std::size_t p, std::size_t n) {
  kmem_guard guard(hs->lock);
  std::size_t i = upper_bound(hs, p);
  bool merge_prev = i > 0 && hs->runs[i - 1].start + hs->runs[i - 1].len == p;
  bool merge_next = i < hs->nruns && p + n == hs->runs[i].start;
  KMEM_ASSERT(i == 0 || hs->runs[i - 1].start + hs->runs[i - 1].len <= p, "host page source: pages freed twice");
  KMEM_ASSERT(i == hs->nruns || p + n <= hs->runs[i].start, "host page source: pages freed twice");
  if (merge_prev && merge_next) {
    hs->runs[i - 1].len += n + hs->runs[i].len;
    remove_run(hs, i);
  } else if (merge_prev) {
    hs->runs[i - 1].len += n;
  } else if (merge_next) {
    hs->runs[i].start = p;
    hs->runs[i].len += n;
  } else {
    insert_run(hs, i, {p, n});
  }
  hs->pages_out -= n;
  ++hs->frees;
}

void* host_alloc_pages(void* ctx, std::size_t npages, std::size_t align_pages, bool /*wait*/) {
  host_source* hs = static_cast<host_source*>(ctx);
  if (npages == 0 || npages > hs->npages) return nullptr;
  if (align_pages == 0) align_pages = 1;
  KMEM_ASSERT((align_pages & (align_pages - 1)) == 0, "alignment must be a power of two");
  std::size_t p = take_pages(hs, npages, align_pages);
  if (p == SIZE_MAX) return nullptr;
  void* a = reinterpret_cast<void*>(hs->base + (p << kPageShift));
  if (vmrt::sys::mprotect(a, npages << kPageShift, PROT_READ | PROT_WRITE) != 0) {
    // The host refused (e.g. vm.max_map_count reached): the pages stay free.
    give_pages(hs, p, npages);
    return nullptr;
  }
  return a;
}

void host_free_pages(void* ctx, void* addr, std::size_t npages) {
  host_source* hs = static_cast<host_source*>(ctx);
  std::uintptr_t a = reinterpret_cast<std::uintptr_t>(addr);
  KMEM_ASSERT(a >= hs->base && (a & (kPageSize - 1)) == 0 && npages > 0 &&
                  ((a - hs->base) >> kPageShift) + npages <= hs->npages,
              "host page source: freeing pages it does not own");
  vmrt::sys::madvise(addr, npages << kPageShift, MADV_DONTNEED);
  vmrt::sys::mprotect(addr, npages << kPageShift, PROT_NONE);
  give_pages(hs, (a - hs->base) >> kPageShift, npages);
}

// kmem_page_source::discard_sparse: mincore a batch at a time, then one MADV_DONTNEED
// (private anonymous memory: the frames go back, the pages read as zeros).
std::size_t host_discard_sparse(void*, void* addr, std::size_t npages, std::size_t max_resident) {
  constexpr std::size_t kBatch = 512;
  unsigned char vec[kBatch];
  std::size_t n = 0;
  for (std::size_t k = 0; k < npages; k += kBatch) {
    const std::size_t c = npages - k < kBatch ? npages - k : kBatch;
    if (vmrt::sys::mincore(static_cast<char*>(addr) + (k << kPageShift), c << kPageShift, vec) != 0) return SIZE_MAX;
    for (std::size_t j = 0; j < c; ++j) n += vec[j] & 1;
  }
  if (n != 0 && n <= max_resident) vmrt::sys::madvise(addr, npages << kPageShift, MADV_DONTNEED);
  return n;
}

// kmem_page_source::populate_pages: one MADV_POPULATE_WRITE (Linux 5.14; an older host
// refuses it and the pages fault in as written).  errno is left as it was.
void host_populate_pages(void*, void* addr, std::size_t npages) {
  const int saved = errno;
  (void)vmrt::sys::madvise(addr, npages << kPageShift, MADV_POPULATE_WRITE);
  errno = saved;
}

}  // namespace

const kmem_page_source* kmem_host_page_source(std::size_t size) {
  size = (size + kPageSize - 1) & ~(kPageSize - 1);
  if (size == 0) return nullptr;
  std::size_t npages = size >> kPageShift;
  std::size_t cap = npages / 2 + 2;
  std::size_t meta = (sizeof(host_source) + sizeof(page_run) * cap + kPageSize - 1) & ~(kPageSize - 1);
  void* m = vmrt::sys::mmap(nullptr, meta, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (m == MAP_FAILED) return nullptr;
  void* r = vmrt::sys::mmap(nullptr, size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (r == MAP_FAILED) {
    vmrt::sys::munmap(m, meta);
    return nullptr;
  }
  host_source* hs = new (m) host_source;
  hs->base = reinterpret_cast<std::uintptr_t>(r);
  hs->base_pg = hs->base >> kPageShift;
  hs->npages = npages;
  hs->runs = reinterpret_cast<page_run*>(static_cast<char*>(m) + sizeof(host_source));
  hs->cap = cap;
  hs->runs[0] = {0, npages};
  hs->nruns = 1;
  hs->pages_out = 0;
  hs->allocs = hs->frees = 0;
  hs->pub.base = hs->base;
  hs->pub.size = size;
  hs->pub.alloc_pages = host_alloc_pages;
  hs->pub.free_pages = host_free_pages;
  hs->pub.discard_sparse = host_discard_sparse;
  hs->pub.populate_pages = host_populate_pages;
  hs->pub.ctx = hs;
  return &hs->pub;
}

}  // namespace vmrt::kmem
