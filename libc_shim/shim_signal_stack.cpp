// shim_signal_stack.cpp — sigaltstack(2), interposed: a program's alternate signal stack in
// vmrt memory is held while it is installed (runtime/rt_vslock_keep.h).
//
// Under the sigsegv trap backend every fault on vmrt memory is a signal, and a handler
// installed with SA_ONSTACK — vmrt's own included — runs on the thread's alternate stack.
// The kernel writes the signal frame there itself: a page of it that is paged out, or
// unmapped for a moment by the reference scan, makes the frame unwritable and the kernel
// kills the process with SIGSEGV, si_code SI_KERNEL.  gdb allocates a 13.5 KB alternate
// stack with malloc and died so under `--physmem 64M --trap sigsegv` as soon as paging
// began.  So a stack given to sigaltstack that lies in a vmspace is faulted in and wired
// before it is installed and released when it is replaced or disabled (SS_DISABLE, or a
// stack of host memory).  Nothing else changes: the kernel holds the program's stack, and
// queries report what the kernel reports.  A stack that stays installed when its thread
// exits stays held until the program frees it.  Under userfaultfd this is a pass-through.
#include <csignal>
#include <cstdint>
#include <pthread.h>

#include "libc_shim/shim_next.h"
#include "runtime/rt_vslock.h"
#include "runtime/rt_vslock_keep.h"

#define VMRT_EXPORT extern "C" __attribute__((visibility("default")))

namespace {

using altstack_fn = int (*)(const stack_t*, stack_t*);
altstack_fn g_sigaltstack;

__attribute__((constructor)) void resolve_sigaltstack() { (void)vmrt::shim::next_symbol(g_sigaltstack, "sigaltstack"); }

// Does the stack described by ss need a hold to be installed?
bool held_stack(const stack_t& ss) {
  return (ss.ss_flags & SS_DISABLE) == 0 && vmrt::rt::vslock_needed() && vmrt::rt::vslock_in_region(ss.ss_sp, ss.ss_size);
}

}  // namespace

// The kernel's sigaltstack, with the new stack held first and the old one released after;
// a refused change (EPERM while running on the stack, EINVAL, ENOMEM) keeps the old hold.
VMRT_EXPORT int sigaltstack(const stack_t* ss, stack_t* old) noexcept {
  altstack_fn real = vmrt::shim::next_symbol(g_sigaltstack, "sigaltstack");
  if (ss == nullptr || !vmrt::rt::vslock_needed()) return real(ss, old);
  using vmrt::rt::keep_kind;
  auto self = reinterpret_cast<std::uintptr_t>(pthread_self());
  stack_t cur{};
  if (real(nullptr, &cur) != 0) cur.ss_flags = SS_DISABLE;
  const stack_t want = *ss;  // ss may be the old stack's own description
  if (held_stack(want)) (void)vmrt::rt::vslock_keep(keep_kind::altstack, self, want.ss_sp, want.ss_size);
  int r = real(&want, old);
  if (r == 0) {
    if (!held_stack(want)) vmrt::rt::vslock_keep_release(keep_kind::altstack, self);
  } else if (held_stack(want)) {
    // Refused: the installed stack is still the old one, which the new hold replaced.
    if (held_stack(cur)) (void)vmrt::rt::vslock_keep(keep_kind::altstack, self, cur.ss_sp, cur.ss_size);
    else vmrt::rt::vslock_keep_release(keep_kind::altstack, self);
  }
  return r;
}
