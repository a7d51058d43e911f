// rt_lock_stack.cpp — the VM lock holder's own stack (see rt_lock_stack.h).
#include "runtime/rt_lock_stack.h"

#include "runtime/pmap_linux.h"
#include "vm/vm_lock.h"
#include "vm/vm_types.h"

namespace vmrt::rt {

namespace {

struct stack_bounds {
  std::uintptr_t lo, hi;
};

// The thread's program-supplied stack and alternate stack ([0, 0): none), and the range
// the last prepare wrote.  Initial-exec TLS: in the static TLS, which sits at the top of a
// program-supplied stack and is held there for the thread's life (libc_shim/shim_thread.cpp).
thread_local __attribute__((tls_model("initial-exec"))) stack_bounds t_stacks[2];
thread_local __attribute__((tls_model("initial-exec"))) std::uintptr_t t_probe_lo, t_probe_hi;

// Room left below the bytes written for touch_below's own frame and what it calls.
constexpr std::size_t kSlack = 512;

// Write every page of n bytes below this frame, top down as a stack grows, and return the
// lowest byte written.  => no lock held; may fault (served as any first touch).
__attribute__((noinline)) std::uintptr_t touch_below(std::size_t n) {
  auto* p = static_cast<volatile char*>(__builtin_alloca(n));
  // Writes a page apart from the top down to the first page's worth, then the bottom byte:
  // no page is passed over.
  for (std::size_t off = n; off > 0; off = off > PAGE_SIZE ? off - PAGE_SIZE : 0) p[off - 1] = 0;
  p[0] = 0;
  return reinterpret_cast<std::uintptr_t>(p);
}

// vm_lock_stack_hooks::prepare: the caller runs on a stack it was given in vmrt memory;
// make kLockStackBytes below it resident.
bool prepare() {
  const auto sp = reinterpret_cast<std::uintptr_t>(__builtin_frame_address(0));
  for (const stack_bounds& b : t_stacks) {
    if (sp <= b.lo || sp > b.hi) continue;
    const std::size_t room = sp - b.lo;
    if (room <= 2 * kSlack) return false;
    const std::size_t n = room - 2 * kSlack < kLockStackBytes ? room - 2 * kSlack : kLockStackBytes;
    t_probe_lo = trunc_page(touch_below(n));
    t_probe_hi = sp;
    return true;
  }
  return false;
}

// vm_lock_stack_hooks::ready: with the VM lock held (pageout is then stopped), is every
// page prepare wrote still mapped for writing?  Reads only vmrt's tables and this thread's
// TLS (held).
bool ready() {
  for (vaddr_t va = t_probe_lo; va <= t_probe_hi; va += PAGE_SIZE)
    if (!pmap_linux_ready(va, VM_PROT_WRITE)) return false;
  return true;
}

constexpr vm_lock_stack_hooks kHooks{prepare, ready};

}  // namespace

void lock_stack_set(lock_stack_kind kind, std::uintptr_t lo, std::uintptr_t hi) {
  if (lo != hi) vm_lock_set_stack_hooks(&kHooks);
  t_stacks[static_cast<unsigned>(kind)] = stack_bounds{lo, hi};
}

}  // namespace vmrt::rt
