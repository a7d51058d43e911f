// spinlock.h — a test-and-test-and-set lock for short critical sections in the
// machine-dependent layer (no futex, no allocation, usable after fork: reset by
// assigning a fresh value).
#pragma once

#include <atomic>
#include <pthread.h>
#include <sched.h>
#include <signal.h>

#include "vm/vm_critical.h"
#include "vm/vm_fork_store.h"

namespace vmrt::rt {

struct spinlock {
  std::atomic<int> v{0};
  // A critical section (vm/vm_critical.h): no program signal handler runs while it is held.
  void lock() {
    critical_enter();
    for (unsigned spins = 0;; ++spins) {
      if (v.load(std::memory_order_relaxed) == 0 && v.exchange(1, std::memory_order_acquire) == 0) return;
      if (spins > 64) sched_yield();
      else __builtin_ia32_pause();
    }
  }
  void unlock() {
    v.store(0, std::memory_order_release);
    critical_exit();
  }
  // After fork, in the child: a lock nobody held is not written (every page a fork child
  // writes is a copy-on-write fault).
  void reset() { fork_store(v, 0); }
};

struct spin_guard {
  spinlock& l;
  explicit spin_guard(spinlock& s) : l(s) { l.lock(); }
  ~spin_guard() { l.unlock(); }
  spin_guard(const spin_guard&) = delete;
  spin_guard& operator=(const spin_guard&) = delete;
};

// A spinlock taken with every signal blocked, for data vmrt's own fault handler (not owed:
// SIGSEGV/SIGBUS) may also lock (trap.cpp's chained handlers): it never finds it held.
struct spin_guard_nosig {
  sigset_t old;
  spinlock& l;
  explicit spin_guard_nosig(spinlock& s) : l(s) {
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    l.lock();
  }
  ~spin_guard_nosig() {
    l.unlock();
    pthread_sigmask(SIG_SETMASK, &old, nullptr);
  }
  spin_guard_nosig(const spin_guard_nosig&) = delete;
  spin_guard_nosig& operator=(const spin_guard_nosig&) = delete;
};

}  // namespace vmrt::rt
