// guest_snapshot.cpp — warm images of a guest: snapshot and restore (issue 10's "snapshots
// and fork").
//
// snapshot: vmspace_fork of the guest's vmspace into a new window (copy-on-write, as
// 4.4BSD's fork shares private memory: McKusick et al., "Process Creation").  The copy is
// never run; it holds the bytes, which name the guest's own addresses.
// restore: the guest's vmspace is reverted in place to the snapshot (vmspace_revert: the
// pages of the shadow objects the guest's writes made since get the snapshot's bytes back,
// or are dropped with their translations; entries added or reshaped since are copied
// again), so every byte is back at the address it had at the snapshot and the pointers in
// it are right again, at a cost proportional to what the guest changed, not to its size.
// Pages are shared copy-on-write with the snapshot until the guest writes them.  When the
// revert cannot finish (out of map entries), a lone guest's vmspace is replaced by a fresh
// fork of the snapshot in the same window.
#include "runtime/guest.h"

#include <cerrno>
#include <cstring>

#include "runtime/pmap_linux.h"
#include "runtime/region.h"
#include "vm/vm_types.h"
#include "vm/vmspace.h"
#include "vm/vmspace_revert.h"

namespace {

vmrt::rt::window* W(vmrt_vmspace* v) { return reinterpret_cast<vmrt::rt::window*>(v); }

// vmrt_guest_restore with g installed in its window (its family held, when it has one).
int restore(vmrt_guest* g) {
  vmrt::rt::window* w = W(g->vs);
  vmrt::vmspace* snap = W(g->snap)->vs.load(std::memory_order_acquire);
  vmrt::vmspace* vs = w->vs.load(std::memory_order_acquire);
  // In place: only what the guest changed since the snapshot is reverted.
  if (vs != nullptr && vmrt::vmspace_revert(vs, snap, &g->last_restore) == vmrt::KERN_SUCCESS) {
    g->hp = g->snap_hp;
    return 0;
  }
  if (g->fam != nullptr) {  // a fork keeps its vmspace: what could not be copied traps until a restore succeeds
    errno = ENOMEM;
    return -1;
  }
  // The whole vmspace is replaced by a fresh fork of the snapshot, keeping the window.
  vmrt::vmspace* old = w->vs.exchange(nullptr, std::memory_order_acq_rel);
  if (old != nullptr) vmrt::vmspace_destroy(old);
  vmrt::rt::pmap_linux_reset(w->base, w->base + w->size);
  w->pm.ops = &vmrt::rt::g_pmap_linux_ops;
  w->pm.min = w->base;
  w->pm.max = w->base + w->size;
  vs = nullptr;
  if (vmrt::vmspace_fork(snap, &w->pm, &vs) != vmrt::KERN_SUCCESS) {
    // The guest is left without memory: calls fail with BAD_ARGUMENT until reset.
    vmrt_vmspace_destroy(g->vs);
    g->vs = nullptr;
    errno = ENOMEM;
    return -1;
  }
  w->vs.store(vs, std::memory_order_release);
  g->hp = g->snap_hp;
  g->last_restore = {};
  g->last_restore.entries_rebuilt = ~std::uint64_t{0};  // the whole vmspace
  return 0;
}

}  // namespace

extern "C" {

int vmrt_guest_snapshot(vmrt_guest* g) {
  if (g == nullptr || g->vs == nullptr || g->owner.load() != 0) {
    errno = EINVAL;
    return -1;
  }
  if (!vmrt::guest::family_enter(g)) {  // a forked guest: its window is another thread's
    errno = EBUSY;
    return -1;
  }
  vmrt_vmspace* s = vmrt_vmspace_fork(g->vs);  // the window's vmspace: g's
  vmrt::guest::family_leave(g);
  if (s == nullptr) return -1;  // errno from vmrt_vmspace_fork
  if (g->snap != nullptr) vmrt_vmspace_destroy(g->snap);
  g->snap = s;
  g->snap_hp = g->hp;
  return 0;
}

int vmrt_guest_restore(vmrt_guest* g) {
  if (g == nullptr || g->vs == nullptr || g->snap == nullptr || g->owner.load() != 0) {
    errno = EINVAL;
    return -1;
  }
  if (!vmrt::guest::family_enter(g)) {  // a forked guest: its window is another thread's
    errno = EBUSY;
    return -1;
  }
  int rc = restore(g);
  vmrt::guest::family_leave(g);
  return rc;
}

int vmrt_guest_restore_info_get(const vmrt_guest* g, vmrt_guest_restore_info* out) {
  if (g == nullptr || out == nullptr) {
    errno = EINVAL;
    return -1;
  }
  out->entries_kept = g->last_restore.entries_kept;
  out->entries_rebuilt = g->last_restore.entries_rebuilt;
  out->pages_dropped = g->last_restore.pages_unmapped;
  out->pages_copied = g->last_restore.pages_copied;
  return 0;
}

}  // extern "C"
