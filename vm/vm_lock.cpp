// vm_lock.cpp — spin-then-futex mutex for the VM (see vm_lock.h).
#include "vm/vm_lock.h"

#include <atomic>
#include <cerrno>
#include <ctime>
#include <cstdint>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "vm/vm_critical.h"
#include "vm/vm_fork_store.h"
#include "vm/vm_stats.h"
#include "vm/vm_sys.h"
#include "vm/vm_types.h"

namespace vmrt {
namespace {

// 0 = unlocked, 1 = locked, 2 = locked and someone may sleep on it.
VMRT_FORK_DATA constinit std::atomic<std::uint32_t> g_state{0};
// The holder's thread pointer (unique per live thread), 0 when free.
VMRT_FORK_DATA constinit std::atomic<std::uintptr_t> g_owner{0};

inline std::uintptr_t self() { return reinterpret_cast<std::uintptr_t>(__builtin_thread_pointer()); }

// The holder's kernel thread id, for the userfaultfd handler (vm_lock_owner_tid); each
// thread's own id is cached on its first acquisition (a fork child's thread re-reads it).
VMRT_FORK_DATA constinit std::atomic<pid_t> g_owner_tid{0};
// Acquisitions so far (written by the holder only): tells a holder that kept the lock
// from one that took it again.
VMRT_FORK_DATA constinit std::atomic<std::uint64_t> g_acquisitions{0};
thread_local __attribute__((tls_model("initial-exec"))) pid_t t_tid;
inline pid_t self_tid() {
  if (t_tid == 0) t_tid = static_cast<pid_t>(sys::inline_syscall(SYS_gettid));
  return t_tid;
}
inline void set_owner(std::uintptr_t me, pid_t tid) {
  g_owner.store(me, std::memory_order_relaxed);
  g_owner_tid.store(tid, std::memory_order_relaxed);
  g_acquisitions.store(g_acquisitions.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
}

inline void cpu_relax() { __builtin_ia32_pause(); }

// Sleep while *a == val, for a second at most; false when the second ran out.
bool futex_wait_1s(std::atomic<std::uint32_t>* a, std::uint32_t val) {
  struct timespec second{1, 0};
  return sys::inline_syscall(SYS_futex, reinterpret_cast<long>(a), FUTEX_WAIT_PRIVATE, val,
                             reinterpret_cast<long>(&second)) == 0 ||
         errno != ETIMEDOUT;
}
void futex_wake(std::atomic<std::uint32_t>* a) {
  sys::inline_syscall(SYS_futex, reinterpret_cast<long>(a), FUTEX_WAKE_PRIVATE, 1);
}

constexpr int kSpins = 200;

VMRT_FORK_DATA constinit std::atomic<vm_lock_stall_fn> g_stall_hook{nullptr};
VMRT_FORK_DATA constinit std::atomic<const vm_lock_stack_hooks*> g_stack_hooks{nullptr};
// Attempts at a lock with the holder's stack in place before taking it as it is (pageout
// racing each attempt for the same page that long is not expected).
constexpr int kStackTries = 8;

// Take the lock.  Every access to the thread's own memory (its TLS: the cached thread id,
// the critical section count) comes before the lock is taken.  A thread's TLS may be paged
// out (a program's own thread stacks are pageable memory), and a fault taken after the
// compare-and-swap but before the owner is recorded waited forever on the lock its own
// thread held (under the sigsegv backend: scenario program_stacks hung in a loaded run).
// Always inlined: vm_lock_acquire is one function in the hot text's order
// (libc_shim/hot_text.ld).
__attribute__((always_inline)) inline void acquire(std::uintptr_t me, pid_t tid) {
  critical_enter();  // no program signal handler runs while it is held (vm_critical.h)
  std::uint32_t c = 0;
  if (g_state.compare_exchange_strong(c, 1, std::memory_order_acquire)) {
    set_owner(me, tid);
    return;
  }
  vm_stat_inc(V_VM_LOCK_CONTENDED);
  for (int i = 0; i < kSpins; ++i) {
    cpu_relax();
    c = 0;
    if (g_state.load(std::memory_order_relaxed) == 0 &&
        g_state.compare_exchange_strong(c, 1, std::memory_order_acquire)) {
      set_owner(me, tid);
      return;
    }
  }
  c = g_state.exchange(2, std::memory_order_acquire);
  // Seconds this thread has slept while one holder kept the lock (the same acquisition).
  unsigned stalled = 0;
  std::uint64_t seq = g_acquisitions.load(std::memory_order_relaxed);
  bool woken = true;
  while (c != 0) {
    if (woken) vm_stat_inc(V_VM_LOCK_SLEEPS);
    woken = futex_wait_1s(&g_state, 2);
    if (!woken) {
      std::uint64_t now = g_acquisitions.load(std::memory_order_relaxed);
      stalled = now == seq ? stalled + 1 : 0;
      seq = now;
      vm_lock_stall_fn hook = g_stall_hook.load(std::memory_order_acquire);
      if (stalled != 0 && hook != nullptr) hook(g_owner_tid.load(std::memory_order_relaxed), stalled);
    }
    c = g_state.exchange(2, std::memory_order_acquire);
  }
  set_owner(me, tid);
}
}  // namespace

// The lock itself: the analysis takes these on their declarations (vm_lock.h).
VMRT_FORK_TEXT void vm_lock_acquire() VMRT_NO_THREAD_SAFETY_ANALYSIS {
  std::uintptr_t me = self();
  if (g_owner.load(std::memory_order_relaxed) == me) VMRT_PANIC("VM lock taken recursively (fault while holding it?)");
  const pid_t tid = self_tid();
  const vm_lock_stack_hooks* h = g_stack_hooks.load(std::memory_order_acquire);
  if (h == nullptr || !h->prepare()) {
    acquire(me, tid);
    return;
  }
  vm_stat_inc(V_VM_LOCK_STACK_PROBES);
  for (int k = 1;; ++k) {
    acquire(me, tid);
    if (k == kStackTries || h->ready()) return;
    vm_stat_inc(V_VM_LOCK_STACK_RETRIES);
    vm_lock_release();
    (void)h->prepare();
  }
}

bool vm_lock_try() VMRT_NO_THREAD_SAFETY_ANALYSIS {
  std::uint32_t c = 0;
  const pid_t tid = self_tid();  // before the lock (vm_lock_acquire)
  critical_enter();
  if (!g_state.compare_exchange_strong(c, 1, std::memory_order_acquire)) {
    critical_exit();
    return false;
  }
  set_owner(self(), tid);
  return true;
}

VMRT_FORK_TEXT void vm_lock_release() VMRT_NO_THREAD_SAFETY_ANALYSIS {
  VMRT_ASSERT(g_owner.load(std::memory_order_relaxed) == self());
  g_owner.store(0, std::memory_order_relaxed);
  g_owner_tid.store(0, std::memory_order_relaxed);
  if (g_state.exchange(0, std::memory_order_release) == 2) futex_wake(&g_state);
  critical_exit();
}

void vm_lock_set_stall_hook(vm_lock_stall_fn fn) { g_stall_hook.store(fn, std::memory_order_release); }
void vm_lock_set_stack_hooks(const vm_lock_stack_hooks* hooks) { g_stack_hooks.store(hooks, std::memory_order_release); }

bool vm_lock_owned() { return g_owner.load(std::memory_order_relaxed) == self(); }

pid_t vm_lock_owner_tid() { return g_owner_tid.load(std::memory_order_relaxed); }
std::uint64_t vm_lock_acquisitions() { return g_acquisitions.load(std::memory_order_relaxed); }

VMRT_FORK_CHILD_TEXT void vm_lock_fork_child_reset() {
  // Only the forking thread survives in the child, and it held the lock only to keep the
  // VM quiescent across fork (runtime_fork_prepare): nothing is mid-operation.  A quiet
  // fork took no lock (runtime_fork_prepare): nothing is written then (vm_fork_store.h).
  fork_store(g_owner, 0);
  fork_store(g_owner_tid, 0);
  fork_store(t_tid, 0);  // the forking thread has a new id in the child
  fork_store(g_state, 0, std::memory_order_release);
}

}  // namespace vmrt
