// kmem_lock.cpp — futex-based mutex (Drepper's three-state mutex).
#include "kmem/kmem_lock.h"

#include <climits>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace vmrt::kmem::detail {
namespace {
long sys_futex(std::atomic<std::uint32_t>* w, int op, std::uint32_t val) {
  return syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(w), op, val, nullptr, nullptr, 0);
}
}  // namespace

void kmem_lock::lock_slow() {
  for (int spin = 0; spin < 100; ++spin) {
    std::uint32_t c = 0;
    if (state_.load(std::memory_order_relaxed) == 0 &&
        state_.compare_exchange_weak(c, 1, std::memory_order_acquire))
      return;
    __builtin_ia32_pause();
  }
  while (state_.exchange(2, std::memory_order_acquire) != 0) sys_futex(&state_, FUTEX_WAIT_PRIVATE, 2);
}

void kmem_lock::wake_one() { sys_futex(&state_, FUTEX_WAKE_PRIVATE, 1); }

void futex_wait(std::atomic<std::uint32_t>* word, std::uint32_t expected) {
  sys_futex(word, FUTEX_WAIT_PRIVATE, expected);
}

void futex_wake_all(std::atomic<std::uint32_t>* word) { sys_futex(word, FUTEX_WAKE_PRIVATE, INT_MAX); }

}  // namespace vmrt::kmem::detail
