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
#include "vm/vm_thread_safety.h"

namespace vmrt::rt {

struct VMRT_CAPABILITY("mutex") spinlock {
  std::atomic<int> v{0};
  // A critical section (vm/vm_critical.h): no program signal handler runs while it is held.
  void lock() VMRT_ACQUIRE() {
    critical_enter();
    for (unsigned spins = 0;; ++spins) {
      if (v.load(std::memory_order_relaxed) == 0 && v.exchange(1, std::memory_order_acquire) == 0) return;
      if (spins > 64) sched_yield();
      else __builtin_ia32_pause();
    }
  }
  void unlock() VMRT_RELEASE() {
    v.store(0, std::memory_order_release);
    critical_exit();
  }
  // After fork, in the child: a lock nobody held is not written (every page a fork child
  // writes is a copy-on-write fault).
  void reset() { fork_store(v, 0); }
};

struct VMRT_SCOPED_CAPABILITY spin_guard {
  spinlock& l;
  explicit spin_guard(spinlock& s) VMRT_ACQUIRE(s) : l(s) { l.lock(); }
  ~spin_guard() VMRT_RELEASE() { l.unlock(); }
  spin_guard(const spin_guard&) = delete;
  spin_guard& operator=(const spin_guard&) = delete;
};

// A spinlock taken with every signal blocked, for data vmrt's own fault handler (not owed:
// SIGSEGV/SIGBUS) may also lock (trap.cpp's chained handlers): it never finds it held.
struct VMRT_SCOPED_CAPABILITY spin_guard_nosig {
  sigset_t old;
  spinlock& l;
  explicit spin_guard_nosig(spinlock& s) VMRT_ACQUIRE(s) : l(s) {
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    l.lock();
  }
  ~spin_guard_nosig() VMRT_RELEASE() {
    l.unlock();
    pthread_sigmask(SIG_SETMASK, &old, nullptr);
  }
  spin_guard_nosig(const spin_guard_nosig&) = delete;
  spin_guard_nosig& operator=(const spin_guard_nosig&) = delete;
};

}  // namespace vmrt::rt
