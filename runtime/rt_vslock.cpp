// rt_vslock.cpp — hold a program's buffer for the length of a system call (see rt_vslock.h).
#include "runtime/rt_vslock.h"

#include <cerrno>
#include <cstring>

#include "runtime/physmem.h"
#include "runtime/pmap_linux.h"
#include "runtime/region.h"
#include "runtime/rt_stats.h"
#include "runtime/trap.h"
#include "vm/vm_fault_hold.h"
#include "vm/vm_lock.h"
#include "vm/vm_pageout.h"

namespace vmrt::rt {

namespace {
// Pages held per VM lock hold (the gathering array's size on the caller's stack).
constexpr unsigned kVslockBatch = 32;
static_assert(kVslockMaxPages % kVslockBatch == 0);

// Is every page of [va, end) in the region mapped for `access`, or not a vmspace's?  (Lock-free.)
bool mapped_for(vaddr_t va, vaddr_t end, vm_prot_t access) {
  for (; va < end && va != 0; va += PAGE_SIZE)
    if (region_contains(va) && !pmap_linux_allows(va, access)) {
      window* w = window_lookup(va);
      if (w != nullptr && w->vs.load(std::memory_order_acquire) != nullptr) return false;
    }
  return true;
}
}  // namespace

VMRT_FORK_TEXT bool vslock_needed() { return trap_started() && trap_active_backend() == trap_backend::sigsegv; }

bool vslock_in_region(const void* a, std::size_t len) {
  auto lo = reinterpret_cast<vaddr_t>(a);
  if (len == 0) return false;
  vaddr_t hi = lo + len - 1;
  if (hi < lo) hi = ~vaddr_t{0};
  // The region is one range: [lo, hi] meets it when an end is in it or it is inside.
  return region_contains(lo) || region_contains(hi) || (lo < g_region_base && hi >= g_region_base + g_region_size);
}

void vslock_begin(vslock_hold* h) {
  h->n = 0;
  h->stopped = false;
  // A quarter of physical memory at most, so a few threads' holds cannot pin it all.
  frame_t quarter = physmem_nframes() / 4;
  h->budget = quarter != 0 && quarter < kVslockMaxPages ? static_cast<unsigned>(quarter) : kVslockMaxPages;
}

std::size_t vslock(vslock_hold* h, const void* a, std::size_t len, vm_prot_t access) {
  if (len == 0 || !vslock_in_region(a, len)) return len;
  // vmrt's own calls (the swap pager's I/O goes through the direct map, outside the region;
  // a signal handler interrupting this thread inside vmrt): no hold, no lock.
  if (h->stopped || vm_lock_owned()) return h->stopped ? 0 : len;
  auto lo = reinterpret_cast<vaddr_t>(a);
  vaddr_t end = lo + len < lo ? ~vaddr_t{0} : lo + len;
  vaddr_t va = trunc_page(lo);
  if (!vm_pageout_enabled() && mapped_for(va, end, access)) return len;  // nothing takes pages away
  // h may be program memory (the shim's malloc'd thread start context), and a fault under
  // the VM lock waits for a handler that needs the lock: h is read here, before the lock,
  // and written after it; the held pages are gathered on this stack meanwhile.
  const unsigned before = h->n, budget = h->budget;
  unsigned n = before;
  bool stop = false, full = false;  // a stopped hold returned above
  while (va < end && va >= trunc_page(lo) && !stop && !full) {
    vm_page* got[kVslockBatch] = {};
    unsigned k = 0;
    {
      vm_lock_guard g;
      for (; k < kVslockBatch && va < end && va >= trunc_page(lo); va += PAGE_SIZE) {
        window* w = region_contains(va) ? window_lookup(va) : nullptr;
        vmspace* vs = w != nullptr ? w->vs.load(std::memory_order_acquire) : nullptr;
        if (vs == nullptr) continue;  // not a vmspace's memory: the host answers as natively
        if (n + k == budget) {
          full = true;
          break;
        }
        vm_page* m = nullptr;
        if (vm_fault_hold(vs, va, access, pmap_linux_allows, &m) != KERN_SUCCESS) {
          stop = true;
          break;
        }
        if (m != nullptr) got[k++] = m;
      }
    }
    std::memcpy(&h->pages[n], got, k * sizeof got[0]);
    n += k;
    h->n = n;
    h->stopped = stop;
  }
  if (n > before && before == 0) rt_count(RC_VSLOCK_CALLS);
  if (va >= end || va < trunc_page(lo)) return len;
  rt_count(RC_VSLOCK_PARTIAL);
  return va > lo ? va - lo : 0;
}

void vsunlock(vslock_hold* h) {
  if (h->n == 0) return;
  int saved = errno;
  // In batches copied to this stack first: h may be program memory (see vslock).
  for (unsigned i = 0; i < h->n; i += kVslockBatch) {
    vm_page* batch[kVslockBatch];
    unsigned k = h->n - i < kVslockBatch ? h->n - i : kVslockBatch;
    std::memcpy(batch, &h->pages[i], k * sizeof batch[0]);
    vm_lock_guard g;
    vm_fault_unhold(batch, k);
  }
  h->n = 0;
  errno = saved;
}

}  // namespace vmrt::rt
