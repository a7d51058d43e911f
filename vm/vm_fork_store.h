// vm_fork_store.h — a store that writes only a changed value, for the state a host fork
// resets.
//
// After a host fork every page either process writes is a copy-on-write fault: a copy
// while the other side lives, a fault at the next write after it exits (the fork left the
// page write-protected), and on these guests tens of microseconds either way (vm_types.h,
// VMRT_FORK_DATA).  The fork handlers reset locks, counters and per-process state that
// usually already hold the value they would store (no lock was held, no thread was
// started): storing through fork_store reads the value and writes its page only when it
// differs.
#pragma once

#include <atomic>

namespace vmrt {

template <class T, class V>
[[gnu::always_inline]] inline void fork_store(T& var, V value) {
  if (var != static_cast<T>(value)) var = static_cast<T>(value);
}

// An atomic: read relaxed, stored with `order` when it differs.
template <class T, class V>
[[gnu::always_inline]] inline void fork_store(std::atomic<T>& var, V value,
                                               std::memory_order order = std::memory_order_relaxed) {
  if (var.load(std::memory_order_relaxed) != static_cast<T>(value)) var.store(static_cast<T>(value), order);
}

}  // namespace vmrt
