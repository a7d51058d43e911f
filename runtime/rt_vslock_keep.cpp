// rt_vslock_keep.cpp — holds that outlive a call (see rt_vslock_keep.h).
#include "runtime/rt_vslock_keep.h"

#include <cstring>

#include "runtime/rt_vslock.h"
#include "runtime/spinlock.h"
#include "runtime/trap.h"
#include "vm/vm_types.h"

namespace vmrt::rt {

namespace {

// Alternate stacks and the descriptors of threads on program-supplied stacks, at once.
constexpr unsigned kKeepSlots = 32;

struct keep_slot {
  keep_kind kind;  // 0: free [g_keep_lock]
  std::uintptr_t owner;
  unsigned n;
  vm_page* pages[kVslockMaxPages];
};

VMRT_LARGE_BSS keep_slot g_keep[kKeepSlots];
spinlock g_keep_lock;  // a critical section: no program handler of this thread runs in it

// Take the key's pages out of the table into h (empty when it had none).
//  => g_keep_lock held.
void take_locked(keep_kind kind, std::uintptr_t owner, vslock_hold* h) {
  h->n = 0;
  for (keep_slot& s : g_keep) {
    if (s.kind != kind || s.owner != owner) continue;
    std::memcpy(h->pages, s.pages, s.n * sizeof s.pages[0]);
    h->n = s.n;
    s.kind = keep_kind{};
    return;
  }
}

}  // namespace

bool vslock_keep(keep_kind kind, std::uintptr_t owner, const void* a, std::size_t len) {
  vslock_hold h;
  vslock_begin(&h);
  bool held = true;
  if (len != 0 && trap_started()) {
    auto lo = reinterpret_cast<std::uintptr_t>(a);
    std::uintptr_t hi = lo + len;
    std::uintptr_t max = static_cast<std::uintptr_t>(h.budget) * PAGE_SIZE;
    // From the top down: a stack is written from its top.  One page less than the budget,
    // for a start that is not page aligned.
    if (hi - lo > max - PAGE_SIZE) lo = hi - (max - PAGE_SIZE);
    held = vslock(&h, reinterpret_cast<const void*>(lo), hi - lo, VM_PROT_WRITE) == hi - lo;
  }
  vslock_hold old;
  {
    spin_guard g(g_keep_lock);
    take_locked(kind, owner, &old);
    if (h.n != 0) {
      keep_slot* s = nullptr;
      for (keep_slot& x : g_keep)
        if (x.kind == keep_kind{}) {
          s = &x;
          break;
        }
      if (s != nullptr) {  // full: h's pages stay wired until the memory is freed
        s->kind = kind;
        s->owner = owner;
        s->n = h.n;
        std::memcpy(s->pages, h.pages, h.n * sizeof h.pages[0]);
      }
    }
  }
  vsunlock(&old);
  return held;
}

void vslock_keep_release(keep_kind kind, std::uintptr_t owner) {
  vslock_hold old;
  {
    spin_guard g(g_keep_lock);
    take_locked(kind, owner, &old);
  }
  vsunlock(&old);
}

bool vslock_keep_has(keep_kind kind, std::uintptr_t owner) {
  spin_guard g(g_keep_lock);
  for (const keep_slot& s : g_keep)
    if (s.kind == kind && s.owner == owner) return true;
  return false;
}

void vslock_keep_forget(keep_kind kind, std::uintptr_t owner) {
  vslock_hold old;
  spin_guard g(g_keep_lock);
  take_locked(kind, owner, &old);
}

}  // namespace vmrt::rt
