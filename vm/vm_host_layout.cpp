// vm_host_layout.cpp — where vmrt's big host reservations go (vm_host_layout.h).
#include "vm/vm_host_layout.h"

#include <atomic>
#include <cstdint>
#include <sys/mman.h>
#include <unistd.h>

#include "vm/vm_sys.h"

namespace vmrt::sys {

namespace {

constexpr std::uintptr_t kGiB = std::uintptr_t{1} << 30;
// Left to the host between the libraries and vmrt's first reservation: its own later
// mappings (locale files, thread stacks, what code bypassing the shim maps) go there; past
// it they go below vmrt's reservations, as they all did before.  Small, so that vmrt's
// reservations stay in the libraries' 512 GiB (one host page-upper-directory page) as often
// as they can: 256 GiB put them in the next one, a page-table page more in every process.
constexpr std::uintptr_t kHostRoom = std::uintptr_t{16} * kGiB;
// Below this a library address means the legacy bottom-up layout: no hint.
constexpr std::uintptr_t kMinLibraries = std::uintptr_t{1} << 40;

// The next reservation ends at or below this (0: not yet known; 1: no hints).
std::atomic<std::uintptr_t> g_floor{0};

std::uintptr_t first_floor() {
  // libc's text: a shared library wherever vmrt is linked (the shim, libvmrt, a static test
  // binary, whose own text lies far below the libraries).
  const auto lib = reinterpret_cast<std::uintptr_t>(&::getpid);
  if (lib < kMinLibraries + kHostRoom) return 1;
  return (lib - kHostRoom) & ~(kGiB - 1);
}

}  // namespace

void* host_reserve(std::size_t bytes) {
  constexpr int kFlags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE;
  std::uintptr_t floor = g_floor.load(std::memory_order_acquire);
  if (floor == 0) {
    std::uintptr_t f = first_floor();
    floor = g_floor.compare_exchange_strong(floor, f, std::memory_order_acq_rel) ? f : floor;
  }
  if (floor == 1 || bytes > floor - kMinLibraries) return mmap(nullptr, bytes, PROT_NONE, kFlags, -1, 0);
  const std::uintptr_t hint = (floor - bytes) & ~(kGiB - 1);
  void* p = mmap(reinterpret_cast<void*>(hint), bytes, PROT_NONE, kFlags, -1, 0);
  if (p == MAP_FAILED) return p;
  // The next one goes below this one, wherever the host put it.
  const auto got = reinterpret_cast<std::uintptr_t>(p);
  while (got < floor && !g_floor.compare_exchange_weak(floor, got, std::memory_order_acq_rel)) {
  }
  return p;
}

}  // namespace vmrt::sys
