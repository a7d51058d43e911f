// rt_lock_stack.cpp — the VM lock holder's own stack (see rt_lock_stack.h).
#include "runtime/rt_lock_stack.h"

#include "runtime/pmap_linux.h"
#include "vm/vm_lock.h"
#include "vm/vm_types.h"

namespace vmrt::rt {

namespace {

// The pages the last prepare touched, [lo, hi].  Initial-exec TLS, in the thread's static
// TLS block: host memory, or the top of a stack the program gave pthread_create, held there
// for the thread's life (libc_shim/shim_thread.cpp).
thread_local __attribute__((tls_model("initial-exec"))) vaddr_t t_probe_lo, t_probe_hi;

// Faults this thread is serving in its signal handler (lock_stack_fault_scope).
thread_local __attribute__((tls_model("initial-exec"))) unsigned t_serving_faults;

// Fault the page at va in for writing without changing a byte of it.  Not instrumented:
// the byte may belong to anyone (other live memory below a small stack), which a
// sanitizer would report as an overflow or a race though nothing is read or changed.
__attribute__((no_sanitize("address", "thread"))) inline void touch_for_write(vaddr_t va) {
  (void)__atomic_fetch_or(reinterpret_cast<unsigned char*>(va), 0, __ATOMIC_RELAXED);
}

// vm_lock_stack_hooks::prepare: is the caller's stack in memory vmrt serves?  Then fault
// in the page above its frame (its callers' locals, which the holder may write) and
// kLockStackPages below, top down, stopping at a page vmrt does not serve writable.
//  => no lock held; may fault (served as any other).
__attribute__((no_sanitize("address", "thread"))) bool prepare() {
  if (t_serving_faults != 0) return false;
  const vaddr_t sp = trunc_page(reinterpret_cast<vaddr_t>(__builtin_frame_address(0)));
  if (!pmap_linux_serves_write(sp)) return false;
  const vaddr_t hi = pmap_linux_serves_write(sp + PAGE_SIZE) ? sp + PAGE_SIZE : sp;
  const vaddr_t floor = sp - kLockStackPages * PAGE_SIZE;
  vaddr_t lo = hi;
  for (vaddr_t va = hi; va >= floor && pmap_linux_serves_write(va); va -= PAGE_SIZE) {
    touch_for_write(va);
    lo = va;
  }
  t_probe_lo = lo;
  t_probe_hi = hi;
  return true;
}

// vm_lock_stack_hooks::ready: with the VM lock held (pageout is then stopped), is every
// page prepare touched still mapped for writing?  Reads only vmrt's tables and this
// thread's TLS.
bool ready() {
  for (vaddr_t va = t_probe_lo; va <= t_probe_hi; va += PAGE_SIZE)
    if (!pmap_linux_ready(va, VM_PROT_WRITE)) return false;
  return true;
}

constexpr vm_lock_stack_hooks kHooks{prepare, ready};

}  // namespace

void lock_stack_install() { vm_lock_set_stack_hooks(&kHooks); }

lock_stack_fault_scope::lock_stack_fault_scope() { ++t_serving_faults; }
lock_stack_fault_scope::~lock_stack_fault_scope() { --t_serving_faults; }

}  // namespace vmrt::rt
