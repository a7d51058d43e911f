// kmem_lock.h — the one lock kmem uses: a futex mutex (spin briefly, then sleep).
//
// Plain data (a 32-bit word), so a forked child can reinitialise it and it can
// live in mmap'd memory.  Never allocates.  Also the futex wait/wake helpers the
// per-type limit sleep uses (4.4BSD's tsleep/wakeup on &ksp).
#pragma once

#include <atomic>
#include <cstdint>

#include "vm/vm_critical.h"

namespace vmrt::kmem::detail {

class kmem_lock {
 public:
  // => may sleep (futex) when contended.
  // A critical section (vm/vm_critical.h): no program signal handler runs on a thread
  // holding a kmem lock, since a fault in it could need this lock.
  void lock() {
    critical_enter();
    std::uint32_t c = 0;
    if (__builtin_expect(state_.compare_exchange_strong(c, 1, std::memory_order_acquire), 1)) return;
    lock_slow();
  }
  void unlock() {
    if (__builtin_expect(state_.exchange(0, std::memory_order_release) == 2, 0)) wake_one();
    critical_exit();
  }
  bool held() const { return state_.load(std::memory_order_relaxed) != 0; }
  // After fork in the child: the lock is free again (the forking thread held it).
  void reinit() { state_.store(0, std::memory_order_relaxed); }

 private:
  void lock_slow();
  void wake_one();
  std::atomic<std::uint32_t> state_{0};  // 0 free, 1 held, 2 held with sleepers
};

class kmem_guard {
 public:
  explicit kmem_guard(kmem_lock& l) : l_(l) { l_.lock(); }
  ~kmem_guard() { l_.unlock(); }
  kmem_guard(const kmem_guard&) = delete;
  kmem_guard& operator=(const kmem_guard&) = delete;

 private:
  kmem_lock& l_;
};

// Sleep while *word == expected (spurious wake-ups possible).
void futex_wait(std::atomic<std::uint32_t>* word, std::uint32_t expected);
// Wake every sleeper on word.
void futex_wake_all(std::atomic<std::uint32_t>* word);

}  // namespace vmrt::kmem::detail
