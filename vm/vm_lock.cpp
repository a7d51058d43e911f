// vm_lock.cpp — spin-then-futex mutex for the VM (see vm_lock.h).
#include "vm/vm_lock.h"

#include <atomic>
#include <cstdint>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "vm/vm_stats.h"

namespace vmrt {
namespace {

// 0 = unlocked, 1 = locked, 2 = locked and someone may sleep on it.
constinit std::atomic<std::uint32_t> g_state{0};
// The holder's thread pointer (unique per live thread), 0 when free.
constinit std::atomic<std::uintptr_t> g_owner{0};

inline std::uintptr_t self() { return reinterpret_cast<std::uintptr_t>(__builtin_thread_pointer()); }

inline void cpu_relax() { __builtin_ia32_pause(); }

void futex_wait(std::atomic<std::uint32_t>* a, std::uint32_t val) {
  syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(a), FUTEX_WAIT_PRIVATE, val, nullptr, nullptr, 0);
}
void futex_wake(std::atomic<std::uint32_t>* a) {
  syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(a), FUTEX_WAKE_PRIVATE, 1, nullptr, nullptr, 0);
}

constexpr int kSpins = 200;

}  // namespace

void vm_lock_acquire() {
  std::uintptr_t me = self();
  if (g_owner.load(std::memory_order_relaxed) == me) VMRT_PANIC("VM lock taken recursively (fault while holding it?)");
  std::uint32_t c = 0;
  if (g_state.compare_exchange_strong(c, 1, std::memory_order_acquire)) {
    g_owner.store(me, std::memory_order_relaxed);
    return;
  }
  vm_stat_inc(V_VM_LOCK_CONTENDED);
  for (int i = 0; i < kSpins; ++i) {
    cpu_relax();
    c = 0;
    if (g_state.load(std::memory_order_relaxed) == 0 &&
        g_state.compare_exchange_strong(c, 1, std::memory_order_acquire)) {
      g_owner.store(me, std::memory_order_relaxed);
      return;
    }
  }
  c = g_state.exchange(2, std::memory_order_acquire);
  while (c != 0) {
    vm_stat_inc(V_VM_LOCK_SLEEPS);
    futex_wait(&g_state, 2);
    c = g_state.exchange(2, std::memory_order_acquire);
  }
  g_owner.store(me, std::memory_order_relaxed);
}

bool vm_lock_try() {
  std::uint32_t c = 0;
  if (!g_state.compare_exchange_strong(c, 1, std::memory_order_acquire)) return false;
  g_owner.store(self(), std::memory_order_relaxed);
  return true;
}

void vm_lock_release() {
  VMRT_ASSERT(g_owner.load(std::memory_order_relaxed) == self());
  g_owner.store(0, std::memory_order_relaxed);
  if (g_state.exchange(0, std::memory_order_release) == 2) futex_wake(&g_state);
}

bool vm_lock_owned() { return g_owner.load(std::memory_order_relaxed) == self(); }

void vm_lock_fork_child_reset() {
  // Only the forking thread survives in the child, and it held the lock only to keep the
  // VM quiescent across fork (runtime_fork_prepare): nothing is mid-operation.
  g_owner.store(0, std::memory_order_relaxed);
  g_state.store(0, std::memory_order_release);
}

}  // namespace vmrt
