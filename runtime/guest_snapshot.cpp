// guest_snapshot.cpp — warm images of a guest: snapshot and restore (issue 10's "snapshots
// and fork", the part an in-process native guest allows).
//
// snapshot: vmspace_fork of the guest's vmspace into a new window (copy-on-write, as
// 4.4BSD's fork shares private memory: McKusick et al., "Process Creation").  The copy is
// never run; it holds the bytes, which name the guest's own addresses.
// restore: the guest's vmspace is destroyed and its window, kept, gets a new vmspace forked
// from the snapshot: vmspace_fork places the child at the window's base, so every byte is
// back at the address it had at the snapshot and the pointers in it are right again.
// Pages are shared copy-on-write with the snapshot until the guest writes them.
#include "runtime/guest.h"

#include <cerrno>
#include <cstring>

#include "runtime/pmap_linux.h"
#include "runtime/region.h"
#include "vm/vm_types.h"
#include "vm/vmspace.h"

namespace {

vmrt::rt::window* W(vmrt_vmspace* v) { return reinterpret_cast<vmrt::rt::window*>(v); }

}  // namespace

extern "C" {

int vmrt_guest_snapshot(vmrt_guest* g) {
  if (g == nullptr || g->vs == nullptr || g->owner.load() != 0) {
    errno = EINVAL;
    return -1;
  }
  vmrt_vmspace* s = vmrt_vmspace_fork(g->vs);
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
  vmrt::rt::window* w = W(g->vs);
  vmrt::vmspace* snap = W(g->snap)->vs.load(std::memory_order_acquire);
  // The same steps as vmrt_vmspace_destroy + vmrt_vmspace_fork, keeping the window.
  vmrt::vmspace* old = w->vs.exchange(nullptr, std::memory_order_acq_rel);
  if (old != nullptr) vmrt::vmspace_destroy(old);
  vmrt::rt::pmap_linux_reset(w->base, w->base + w->size);
  w->pm.ops = &vmrt::rt::g_pmap_linux_ops;
  w->pm.min = w->base;
  w->pm.max = w->base + w->size;
  vmrt::vmspace* vs = nullptr;
  if (vmrt::vmspace_fork(snap, &w->pm, &vs) != vmrt::KERN_SUCCESS) {
    // The guest is left without memory: calls fail with BAD_ARGUMENT until reset.
    vmrt_vmspace_destroy(g->vs);
    g->vs = nullptr;
    errno = ENOMEM;
    return -1;
  }
  w->vs.store(vs, std::memory_order_release);
  g->hp = g->snap_hp;
  return 0;
}

}  // extern "C"
