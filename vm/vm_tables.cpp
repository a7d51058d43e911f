// vm_tables.cpp — the table arena (vm_tables.h).
#include "vm/vm_tables.h"

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "vm/vm_host_layout.h"
#include "vm/vm_sys.h"

namespace vmrt::sys {

namespace {

// One GiB: the span of one host page-middle-directory page.  Reserved twice over so an
// aligned GiB lies inside; the rest stays reserved and untouched (address space only).
constexpr std::size_t kArenaSpan = std::size_t{1} << 30;
constexpr std::size_t kArenaReserve = 2 * kArenaSpan;
constexpr std::size_t kPage = 4096;

enum arena_state : int { A_UNKNOWN = 0, A_OPENING = 1, A_OPEN = 2, A_NONE = 3 };

std::atomic<int> g_state{A_UNKNOWN};
std::uintptr_t g_base;                   // the aligned GiB [set once, before A_OPEN]
std::atomic<std::size_t> g_next{0};      // bytes of the arena handed out
std::atomic<std::size_t> g_outside{0};   // bytes of tables mapped outside it

bool as_unlimited() {
  rlimit r{};
  if (::syscall(SYS_prlimit64, 0, RLIMIT_AS, nullptr, &r) != 0) return false;
  return r.rlim_cur == RLIM_INFINITY;
}

// => any thread.  True when the arena is open (reserving it at the first call).
bool arena_open() {
  for (;;) {
    int s = g_state.load(std::memory_order_acquire);
    if (s == A_OPEN) return true;
    if (s == A_NONE) return false;
    if (s == A_OPENING) continue;  // another thread is in its one mmap call
    if (!g_state.compare_exchange_weak(s, A_OPENING, std::memory_order_acq_rel)) continue;
    void* p = as_unlimited() ? host_reserve(kArenaReserve) : MAP_FAILED;
    if (p == MAP_FAILED) {
      g_state.store(A_NONE, std::memory_order_release);
      return false;
    }
    g_base = (reinterpret_cast<std::uintptr_t>(p) + kArenaSpan - 1) & ~(kArenaSpan - 1);
    g_state.store(A_OPEN, std::memory_order_release);
    return true;
  }
}

void* map_alone(std::size_t bytes, unsigned flags) {
  const int pop = (flags & TABLE_POPULATE) != 0 ? MAP_POPULATE : 0;
  void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | pop, -1, 0);
  if (p == MAP_FAILED) return nullptr;
  g_outside.fetch_add(bytes, std::memory_order_relaxed);
  return p;
}

}  // namespace

void* table_map(std::size_t bytes, unsigned flags) {
  bytes = (bytes + kPage - 1) & ~(kPage - 1);
  if (bytes == 0) bytes = kPage;
  if (!arena_open()) return map_alone(bytes, flags);
  std::size_t off = g_next.load(std::memory_order_relaxed);
  do {
    if (bytes > kArenaSpan - off) return map_alone(bytes, flags);
  } while (!g_next.compare_exchange_weak(off, off + bytes, std::memory_order_relaxed));
  const int pop = (flags & TABLE_POPULATE) != 0 ? MAP_POPULATE : 0;
  void* want = reinterpret_cast<void*>(g_base + off);
  // Over the arena's own reservation: nothing else can be there.
  void* p = mmap(want, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED | pop, -1, 0);
  return p == MAP_FAILED ? nullptr : p;
}

int table_unmap(void* p, std::size_t bytes) {
  bytes = (bytes + kPage - 1) & ~(kPage - 1);
  if (bytes == 0) bytes = kPage;
  if (!table_in_arena(p, bytes)) {
    if (munmap(p, bytes) != 0) return -1;
    g_outside.fetch_sub(bytes, std::memory_order_relaxed);
    return 0;
  }
  void* r = mmap(p, bytes, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED, -1, 0);
  return r == MAP_FAILED ? -1 : 0;
}

std::size_t table_arena_reserved() { return g_state.load(std::memory_order_acquire) == A_OPEN ? kArenaReserve : 0; }

std::size_t table_bytes_inside() {
  return g_state.load(std::memory_order_acquire) == A_OPEN ? g_next.load(std::memory_order_relaxed) : 0;
}

std::size_t table_bytes_outside() { return g_outside.load(std::memory_order_relaxed); }

bool table_in_arena(const void* p, std::size_t bytes) {
  if (g_state.load(std::memory_order_acquire) != A_OPEN) return false;
  const std::uintptr_t a = reinterpret_cast<std::uintptr_t>(p);
  return a >= g_base && bytes <= kArenaSpan && a - g_base <= kArenaSpan - bytes;
}

std::size_t table_arena_blocks_resident() {
  if (g_state.load(std::memory_order_acquire) != A_OPEN) return 0;
  constexpr std::size_t kBlock = std::size_t{2} << 20;
  const std::size_t used = g_next.load(std::memory_order_relaxed);
  unsigned char vec[kBlock / kPage];
  std::size_t n = 0;
  for (std::size_t off = 0; off < used; off += kBlock) {
    const std::size_t len = used - off < kBlock ? used - off : kBlock;
    if (mincore(reinterpret_cast<void*>(g_base + off), len, vec) != 0) continue;
    for (std::size_t i = 0; i < len / kPage; ++i) {
      if (vec[i] & 1) {
        ++n;
        break;
      }
    }
  }
  return n;
}

}  // namespace vmrt::sys
