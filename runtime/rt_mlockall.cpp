// rt_mlockall.cpp — mlockall/munlockall for a program under the shim (see rt_mlockall.h).
#include "runtime/rt_mlockall.h"

#include <atomic>
#include <cerrno>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "runtime/physmem.h"
#include "runtime/region.h"
#include "runtime/rt_maps.h"
#include "runtime/rt_mmap.h"
#include "vm/pmap.h"
#include "vm/vm_heap.h"
#include "vm/vm_sys.h"

#ifndef MCL_ONFAULT
#define MCL_ONFAULT 4
#endif

namespace vmrt::rt {
namespace {

// The program's MCL_FUTURE | MCL_ONFAULT bits while MCL_FUTURE is in force, else 0.
VMRT_FORK_DATA std::atomic<int> g_future{0};  // read by every fork child

// Lock (as touched, with onfault) or unlock [a, a + n) of host memory.  Refusals are
// ignored, as mlockall's own populate ignores them.
void host_lock(vaddr_t a, vsize_t n, bool lock, bool onfault) {
  if (lock) (void)::syscall(SYS_mlock2, a, n, onfault ? MLOCK_ONFAULT : 0U);
  else (void)vmrt::sys::munlock(reinterpret_cast<void*>(a), n);
}

// MCL_FUTURE in force (bits: MCL_FUTURE | MCL_ONFAULT), or not (0): for the program's new
// mappings and for the heap's new windows.
void set_future(int bits) {
  g_future.store(bits, std::memory_order_relaxed);
  vm_heap_set_future_lock(bits == 0 ? 0u : PMAP_HOST_LOCKED | ((bits & MCL_ONFAULT) != 0 ? PMAP_HOST_LOCK_ONFAULT : 0u));
}

// Is [lo, hi) one of vmrt's own mappings outside the region: the direct map of physmem?
bool vmrt_own(std::uintptr_t lo, std::uintptr_t hi) {
  auto dm = reinterpret_cast<std::uintptr_t>(physmem_frame(0));
  return physmem_bytes() != 0 && lo < dm + physmem_bytes() && hi > dm;
}

struct walk_args {
  bool lock;
  bool onfault;
  std::uintptr_t sp;  // an address in this thread's stack: the main stack is populated
};

// One line of /proc/self/maps outside the region.
void outside_line(const maps_line& l, void* arg) {
  auto* w = static_cast<walk_args*>(arg);
  if (region_contains(l.lo) || vmrt_own(l.lo, l.hi)) return;
  bool populate = !w->onfault && l.prot != PROT_NONE && (l.inode != 0 || (w->sp >= l.lo && w->sp < l.hi));
  host_lock(l.lo, l.hi - l.lo, w->lock, !populate);
}

// The area, entry by entry: host memory locked by the host, pageable memory wired.
void area_entries(bool lock, bool onfault) {
  mm_entry_view v{};
  for (vaddr_t from = 0; mm_next_entry(from, &v); from = v.end) {
    if (!v.pageable) {
      if (!v.prot_none) host_lock(v.start, v.end - v.start, lock, onfault);
      continue;
    }
    mm_answer a{};
    (void)mm_mlock(reinterpret_cast<void*>(v.start), v.end - v.start, lock, &a);
  }
}

void heap_windows(bool lock, bool onfault) {
  vaddr_t w = 0, we = 0;
  for (vaddr_t from = 0; vm_heap_next_host_window(from, &w, &we); from = we) host_lock(w, we - w, lock, onfault);
}

void lock_everything(bool lock, bool onfault) {
  walk_args w{lock, onfault, reinterpret_cast<std::uintptr_t>(&w)};
  (void)maps_scan(outside_line, &w);
  area_entries(lock, onfault);
  heap_windows(lock, onfault);
}

}  // namespace

int mlockall_emulated(int flags, int* err) {
  // Linux (mm/mlock.c): the flags, then the right to lock.
  if (flags == 0 || (flags & ~(MCL_CURRENT | MCL_FUTURE | MCL_ONFAULT)) != 0 || flags == MCL_ONFAULT) {
    *err = EINVAL;
    return -1;
  }
  // The host answers the right to lock (can_do_mlock: CAP_IPC_LOCK or RLIMIT_MEMLOCK > 0)
  // for an empty mlock exactly as for mlockall.
  if (vmrt::sys::mlock(nullptr, 0) != 0) {
    *err = errno;
    return -1;
  }
  set_future((flags & MCL_FUTURE) != 0 ? flags & (MCL_FUTURE | MCL_ONFAULT) : 0);
  if ((flags & MCL_CURRENT) != 0) lock_everything(true, (flags & MCL_ONFAULT) != 0);
  return 0;
}

int munlockall_emulated(int*) {
  set_future(0);
  lock_everything(false, false);
  return 0;
}

void mlockall_note_mapping(vaddr_t a, std::size_t n) {
  int f = g_future.load(std::memory_order_relaxed);
  if (f == 0 || n == 0) return;
  bool onfault = (f & MCL_ONFAULT) != 0;
  mm_entry_view v{};
  if (mm_next_entry(a, &v) && v.start <= a && v.pageable) {
    mm_answer r{};
    (void)mm_mlock(reinterpret_cast<void*>(a), n, true, &r);
    return;
  }
  host_lock(a, n, true, onfault);
}

VMRT_FORK_CHILD_TEXT void mlockall_fork_child() {
  // Looked at before it is cleared: an exchange writes the page even when it holds 0, and
  // every page a fork child writes is a copy-on-write fault.
  if (g_future.load(std::memory_order_relaxed) != 0 && g_future.exchange(0, std::memory_order_relaxed) != 0)
    vm_heap_set_future_lock(0);
}

}  // namespace vmrt::rt
