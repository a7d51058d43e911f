// guest_fork.cpp — vmrt_guest_fork: copy-on-write children of a guest, each callable on its
// own (issue 10's "snapshots and fork").
//
// Guest code holds absolute addresses, so every copy of a guest must run at the addresses
// it was loaded at, and two copies cannot be mapped there at once in one process.  The
// members of a family (a guest and its forks) therefore take turns in one window: each
// member has its own vmspace over the same addresses (vmspace_fork with a pmap of the same
// bounds), and the member being called is the one installed in the window, its pmap live;
// the others' pmaps are inert (they enter and remove nothing: nothing runs in them).
// Calling another member switches: vmspace_switch removes from the window only the
// translations that are not right for the incoming member (the pages either side wrote
// since they parted, and the ranges whose mappings differ), then the pmaps trade places.
// The pages both still share stay mapped read-only across the switch, as the pages a
// 4.4BSD parent and child share after fork stay in both (McKusick et al., "Process
// Creation"): a switch costs what the two members wrote since the fork, not their size.
//
// One thread at a time in a family: a member's call takes the family for its thread.
#include <cerrno>
#include <cstring>
#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "runtime/guest.h"
#include "runtime/pmap_linux.h"
#include "runtime/region.h"
#include "vm/vm_sys.h"
#include "vm/vmspace.h"
#include "vm/vmspace_revert.h"

namespace vmrt::guest {

struct family {
  std::atomic<long> owner;  // tid of the thread inside a member, 0: none
  int depth;                // its nesting
  vmrt_guest* active;       // the member installed in the window (null: none, after it went)
  int members;
  rt::window* w;            // the window they share
  const unsigned char* file;  // the ELF file mapping every member's symbols point into
  std::size_t file_len;
};

namespace {

long my_tid() { return ::syscall(SYS_gettid); }

// A parked member's pmap: translations are never made for it (nothing runs in it), so
// every operation tied to a pmap does nothing; page-level operations are the machine's.
kern_return_t inert_enter(pmap*, vaddr_t, vm_page* const*, vsize_t, vm_prot_t) { return KERN_SUCCESS; }
void inert_range(pmap*, vaddr_t, vaddr_t) {}
void inert_protect(pmap*, vaddr_t, vaddr_t, vm_prot_t) {}

const pmap_ops* inert_ops() {
  static const pmap_ops ops = [] {
    pmap_ops o = rt::g_pmap_linux_ops;
    o.enter = inert_enter;
    o.enter_lazy = inert_enter;
    o.remove = inert_range;
    o.protect = inert_protect;
    o.reserve = inert_protect;
    o.host_map = nullptr;
    o.host_unmap = nullptr;
    return o;
  }();
  return &ops;
}

rt::window* W(vmrt_vmspace* v) { return reinterpret_cast<rt::window*>(v); }

// Make g the member installed in its family's window.
//  => the family is held by this thread with no member mid-call.  False when the switch
//     cannot be made (nothing changed then).
bool activate(vmrt_guest* g) {
  family* f = g->fam;
  if (f->active == g) return true;
  vmrt_guest* out = f->active;
  vmspace_revert_stats st{};
  if (out == nullptr) g->pm->ops = &rt::g_pmap_linux_ops;  // its reservations go in through it
  if (vmspace_switch(out != nullptr ? out->own : nullptr, g->own, &st) != KERN_SUCCESS) {
    if (out == nullptr) g->pm->ops = inert_ops();
    return false;
  }
  if (out != nullptr) out->pm->ops = inert_ops();
  g->pm->ops = &rt::g_pmap_linux_ops;
  f->w->vs.store(g->own, std::memory_order_release);
  f->active = g;
  return true;
}

// Make g the first member of a new family (its vmspace and the file become the family's).
bool found_family(vmrt_guest* g) {
  auto* f = static_cast<family*>(host_alloc(sizeof(family)));
  if (f == nullptr) return false;
  f->w = W(g->vs);
  f->active = g;
  f->members = 1;
  f->file = g->file;
  f->file_len = g->file_len;
  g->fam = f;
  g->own = f->w->vs.load(std::memory_order_acquire);
  g->pm = &f->w->pm;
  return true;
}

}  // namespace

vmrt::pmap* guest_pmap(vmrt_guest* g) { return g->fam != nullptr ? g->pm : &W(g->vs)->pm; }

bool family_enter(vmrt_guest* g) {
  family* f = g->fam;
  if (f == nullptr) return true;
  long tid = my_tid(), expect = 0;
  if (!f->owner.compare_exchange_strong(expect, tid, std::memory_order_acquire) && expect != tid) return false;
  if (f->active != g && (f->depth != 0 || !activate(g))) {
    if (f->depth == 0) f->owner.store(0, std::memory_order_release);
    return false;
  }
  ++f->depth;
  return true;
}

void family_leave(vmrt_guest* g) {
  family* f = g->fam;
  if (f != nullptr && --f->depth == 0) f->owner.store(0, std::memory_order_release);
}

bool family_unload(vmrt_guest* g) {
  family* f = g->fam;
  if (f == nullptr) return false;
  // Wait out another thread's call into a member (this one's own calls are over).
  for (long tid = my_tid(), expect = 0; !f->owner.compare_exchange_weak(expect, tid, std::memory_order_acquire) &&
                                          expect != tid;
       expect = 0)
    sched_yield();
  ++f->depth;
  if (f->members == 1) {
    // The last member: the window goes with its vmspace (installed first, so that the
    // window's teardown destroys it).
    g->pm->ops = &rt::g_pmap_linux_ops;
    f->w->vs.store(g->own, std::memory_order_release);
    vmrt_vmspace_destroy(g->vs);
    if (f->file != nullptr) sys::munmap(const_cast<unsigned char*>(f->file), f->file_len);
    host_free(f, sizeof *f);
  } else {
    if (f->active == g) {  // its translations go with it; the next member called installs itself
      f->w->vs.store(nullptr, std::memory_order_release);
      f->active = nullptr;
    }
    vmspace_destroy(g->own);
    --f->members;
    if (--f->depth == 0) f->owner.store(0, std::memory_order_release);
  }
  g->fam = nullptr;
  g->own = nullptr;
  g->pm = nullptr;
  g->vs = nullptr;
  g->file = nullptr;  // the family's
  return true;
}

}  // namespace vmrt::guest

using namespace vmrt::guest;

extern "C" {

vmrt_guest* vmrt_guest_fork(vmrt_guest* g) {
  if (g == nullptr || g->vs == nullptr || g->owner.load() != 0) {
    errno = EINVAL;
    return nullptr;
  }
  auto* c = static_cast<vmrt_guest*>(host_alloc(sizeof(vmrt_guest)));
  void* imports = g->imports_mem_len != 0 ? host_alloc(g->imports_mem_len) : nullptr;
  if (c == nullptr || (g->imports_mem_len != 0 && imports == nullptr) || !signals_acquire()) {
    host_free(c, sizeof *c);
    host_free(imports, g->imports_mem_len);
    errno = ENOMEM;
    return nullptr;
  }
  if (g->fam == nullptr && !found_family(g)) {
    signals_release();
    host_free(c, sizeof *c);
    host_free(imports, g->imports_mem_len);
    errno = ENOMEM;
    return nullptr;
  }
  family* f = g->fam;
  // The record: the parent's (window, layout, symbols, options, heap state), minus what is
  // per member.
  std::memcpy(static_cast<void*>(c), static_cast<const void*>(g), sizeof *c);
  c->owner.store(0);
  c->depth = 0;
  c->funcs = nullptr;
  c->snap = nullptr;
  std::memset(&c->snap_hp, 0, sizeof c->snap_hp);
  c->last_restore = {};
  if (imports != nullptr) {  // the import table, its names moved along
    std::memcpy(imports, g->imports_mem, g->imports_mem_len);
    auto* tab = static_cast<vmrt_guest_import*>(imports);
    for (std::size_t i = 0; i < c->opt.nimports; ++i)
      tab[i].name = static_cast<const char*>(imports) + (g->opt.imports[i].name - static_cast<const char*>(g->imports_mem));
    c->opt.imports = tab;
  }
  c->imports_mem = imports;
  c->pm_store = vmrt::pmap{inert_ops(), f->w->base, f->w->base + f->w->size, f->w};
  c->pm = &c->pm_store;
  if (vmrt::vmspace_fork(g->own, c->pm, &c->own) != vmrt::KERN_SUCCESS) {
    signals_release();
    host_free(c, sizeof *c);
    host_free(imports, g->imports_mem_len);
    errno = ENOMEM;
    return nullptr;
  }
  c->fam = f;
  ++f->members;
  return c;
}

}  // extern "C"
