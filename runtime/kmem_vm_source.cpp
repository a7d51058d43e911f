// kmem_vm_source.cpp — kmem pages from the kmem submap.
#include "runtime/kmem_vm_source.h"

#include <atomic>
#include <cstring>

#include "runtime/rt_populate.h"
#include "vm/pmap.h"
#include "vm/vm_heap.h"
#include "vm/vm_kern.h"
#include "vm/vm_stats.h"

namespace vmrt::rt {

namespace {

constinit kmem::kmem_page_source g_src{};  // filled by the first malloc, before constructors

void* alloc_pages(void*, std::size_t npages, std::size_t align_pages, bool) {
  // kmem_alloc_wired does not sleep: with no frames it fails, and kmem reports NOMEM.
  if (align_pages == 0) align_pages = 1;
  vaddr_t va = 0;
  if (kmem_alloc_wired(npages * PAGE_SIZE, align_pages * PAGE_SIZE, &va) != KERN_SUCCESS) return nullptr;
  return reinterpret_cast<void*>(va);
}

void free_pages(void*, void* addr, std::size_t npages) {
  kmem_free_wired(reinterpret_cast<vaddr_t>(addr), npages * PAGE_SIZE);
}

void* resize_pages(void*, void* addr, std::size_t old_npages, std::size_t new_npages) {
  vaddr_t va = 0;
  if (kmem_resize_wired(reinterpret_cast<vaddr_t>(addr), old_npages * PAGE_SIZE, new_npages * PAGE_SIZE, &va) !=
      KERN_SUCCESS)
    return nullptr;
  return reinterpret_cast<void*>(va);
}

constinit kmem::kmem_page_source g_heap_src{};
// Heap pages kmem holds, and the budget (kmem_heap_set_budget; 0 = none) checked only when
// kmem takes pages, as the kernel checks RLIMIT_AS only when an allocator maps memory.
std::atomic<std::size_t> g_heap_held{0};
std::atomic<std::size_t> g_heap_budget{0};

bool over_budget(std::size_t more) {
  std::size_t b = g_heap_budget.load(std::memory_order_relaxed);
  return b != 0 && g_heap_held.load(std::memory_order_relaxed) + more > b;
}

// A heap range for kmem: zeroed (vm_heap_alloc), or with `zeroed` given, as it comes
// (vm_heap_alloc_any).
void* heap_take(std::size_t npages, std::size_t align_pages, bool* zeroed) {
  if (align_pages == 0) align_pages = 1;
  if (over_budget(npages)) return nullptr;
  vaddr_t va = 0;
  const vsize_t size = npages * PAGE_SIZE, align = align_pages * PAGE_SIZE;
  if ((zeroed == nullptr ? vm_heap_alloc(size, align, &va) : vm_heap_alloc_any(size, align, &va, zeroed)) != KERN_SUCCESS)
    return nullptr;
  g_heap_held.fetch_add(npages, std::memory_order_relaxed);
  return reinterpret_cast<void*>(va);
}

void* heap_alloc_pages(void*, std::size_t npages, std::size_t align_pages, bool) {
  return heap_take(npages, align_pages, nullptr);
}

void* heap_alloc_pages_any(void*, std::size_t npages, std::size_t align_pages, bool* zeroed) {
  return heap_take(npages, align_pages, zeroed);
}

void heap_free_pages(void*, void* addr, std::size_t npages) {
  vm_heap_free(reinterpret_cast<vaddr_t>(addr), npages * PAGE_SIZE);
  g_heap_held.fetch_sub(npages, std::memory_order_relaxed);
}

void* heap_resize_pages(void*, void* addr, std::size_t old_npages, std::size_t new_npages) {
  if (new_npages > old_npages && over_budget(new_npages - old_npages)) return nullptr;
  vaddr_t va = 0;
  if (vm_heap_resize(reinterpret_cast<vaddr_t>(addr), old_npages * PAGE_SIZE, new_npages * PAGE_SIZE, &va) !=
      KERN_SUCCESS)
    return nullptr;
  g_heap_held.fetch_add(new_npages - old_npages, std::memory_order_relaxed);
  return reinterpret_cast<void*>(va);
}

// Host-backed heap pages: the pmap's host_zero_resident writes only those the host holds
// (vm_heap's reuse of dirty ranges does the same).  vmrt frames (VMRT_HEAP=frames, paged)
// are written.
void heap_zero_pages(void*, void* addr, std::size_t npages) {
  const vaddr_t va = reinterpret_cast<vaddr_t>(addr);
  const pmap_ops* ops = pmap_machine_ops();
  if (vm_heap_get_backing() == VM_HEAP_HOST && ops != nullptr && ops->host_zero_resident != nullptr)
    ops->host_zero_resident(va, va + npages * PAGE_SIZE);
  else
    std::memset(addr, 0, npages * PAGE_SIZE);
}

// Host-memory heap pages kmem is about to write (rt_populate); frames and the paged heap
// are vmrt's to fault in (a populate would be a trap per page).
void heap_populate_pages(void*, void* addr, std::size_t npages) {
  if (vm_heap_get_backing() == VM_HEAP_HOST) (void)populate_heap(addr, npages * PAGE_SIZE);
}

std::size_t heap_discard_sparse(void*, void* addr, std::size_t npages, std::size_t max_resident) {
  return vm_heap_discard_sparse(reinterpret_cast<vaddr_t>(addr), npages * PAGE_SIZE, max_resident);
}

// The heap's shortage count (kmem_page_source::shortages): the pageout daemon's wakeups and
// the faults that reclaimed for themselves.  It moves only under paging, where kmem then
// gives back the freed memory it keeps for reuse (python building a 400 K-entry dict under
// --physmem 64M: the large cache kept the dict's old tables, 15 MB, which the pageout
// daemon wrote to swap — 1.4-1.6 K pages in, 2.6 K out, 1.3-2.3 s; now 360 in, 405 out,
// 1.0-1.2 s, 0.9 s natively without a limit).
std::uint32_t heap_shortages(void*) {
  return static_cast<std::uint32_t>(vm_stat_get(V_PD_WAKEUPS) + vm_stat_get(V_PD_DIRECT));
}

}  // namespace

const kmem::kmem_page_source* kmem_heap_source(vaddr_t base, vsize_t size) {
  g_heap_src.base = base;
  g_heap_src.size = size;
  g_heap_src.alloc_pages = heap_alloc_pages;
  g_heap_src.free_pages = heap_free_pages;
  g_heap_src.resize_pages = heap_resize_pages;
  g_heap_src.zero_pages = heap_zero_pages;
  g_heap_src.alloc_pages_any = heap_alloc_pages_any;
  g_heap_src.discard_sparse = heap_discard_sparse;
  g_heap_src.populate_pages = heap_populate_pages;
  g_heap_src.shortages = heap_shortages;
  g_heap_src.ctx = nullptr;
  return &g_heap_src;
}

void kmem_heap_set_budget(std::size_t bytes) {
  std::size_t pages = bytes >> PAGE_SHIFT;
  g_heap_budget.store(bytes == 0 ? 0 : pages == 0 ? 1 : pages, std::memory_order_relaxed);
}

const kmem::kmem_page_source* kmem_vm_source(vaddr_t base, vsize_t size) {
  g_src.base = base;
  g_src.size = size;
  g_src.alloc_pages = alloc_pages;
  g_src.free_pages = free_pages;
  g_src.resize_pages = resize_pages;
  g_src.ctx = nullptr;
  return &g_src;
}

}  // namespace vmrt::rt
