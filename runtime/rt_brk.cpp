// rt_brk.cpp — the program's data segment (see rt_brk.h).
#include "runtime/rt_brk.h"
#include "vm/vm_types.h"

#include <atomic>
#include <sys/mman.h>

#include "runtime/rt_mlockall.h"
#include "runtime/rt_mmap.h"
#include "runtime/rt_stats.h"
#include "runtime/spinlock.h"

#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif

namespace vmrt::rt {
namespace {

std::atomic<brk_owner> g_owner{brk_owner::undecided};
VMRT_FORK_DATA spinlock g_lock;
vaddr_t g_start;  // the segment's start [constant once decided]
vaddr_t g_brk;    // the break (any byte address >= g_start) [g_lock]

inline vaddr_t page_up(vaddr_t a) { return (a + PAGE_MASK) & ~static_cast<vaddr_t>(PAGE_MASK); }

// Map [from, to) as the segment's new pages: private anonymous read/write memory, nothing
// replaced.  => g_lock held; the range is free.
bool grow(vaddr_t from, vaddr_t to) {
  mm_answer a{};
  return mm_mmap(reinterpret_cast<void*>(from), to - from, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0, &a) == mm_route::handled &&
         a.value == static_cast<long>(from);
}

bool shrink(vaddr_t from, vaddr_t to) {
  mm_answer a{};
  return mm_munmap(reinterpret_cast<void*>(from), to - from, &a) == mm_route::handled && a.value == 0;
}

}  // namespace

brk_owner brk_decide() {
  brk_owner o = g_owner.load(std::memory_order_acquire);
  if (o != brk_owner::undecided) return o;
  spin_guard g(g_lock);
  o = g_owner.load(std::memory_order_relaxed);
  if (o != brk_owner::undecided) return o;
  vaddr_t lo = 0, hi = 0;
  if (mm_area_ready()) mm_area_bounds(&lo, &hi);
  if (lo != 0 && lo < hi) {
    g_start = g_brk = lo;
    o = brk_owner::vmrt;
  } else {
    o = brk_owner::host;
  }
  g_owner.store(o, std::memory_order_release);
  return o;
}

vaddr_t brk_start() { return g_owner.load(std::memory_order_acquire) == brk_owner::vmrt ? g_start : 0; }

VMRT_FORK_CHILD_TEXT void brk_fork_child() { g_lock.reset(); }

vaddr_t brk_move(vaddr_t want) {
  spin_guard g(g_lock);
  vaddr_t cur = g_brk;
  if (want < g_start) return cur;  // includes brk(0), the query
  vaddr_t newpg = page_up(want), oldpg = page_up(cur);
  if (newpg < want) return cur;  // rounding wrapped
  if (newpg == oldpg) {
    g_brk = want;
    return want;
  }
  if (want < cur) {
    // Shrink: the whole pages above the new break go (Linux keeps the break unchanged when
    // the unmap fails).
    if (!shrink(newpg, oldpg)) {
      rt_count(RC_BRK_REFUSED);
      return cur;
    }
    rt_count(RC_BRK_SHRINKS);
    g_brk = want;
    return want;
  }
  // Grow: Linux refuses when a mapping starts within a page above the new end.
  if (newpg + PAGE_SIZE < newpg || !mm_area_range_free(oldpg, newpg + PAGE_SIZE - oldpg) || !grow(oldpg, newpg)) {
    rt_count(RC_BRK_REFUSED);
    return cur;
  }
  rt_count(RC_BRK_GROWS);
  mlockall_note_mapping(oldpg, newpg - oldpg);  // MCL_FUTURE
  g_brk = want;
  return want;
}

}  // namespace vmrt::rt
