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

// One GiB: the span of one host page-middle-directory page.  Two aligned GiB are used (the
// layout in vm_tables.h); the reservation is three, so that two aligned ones lie inside it
// wherever the host puts it.  The rest stays reserved and untouched (address space only).
constexpr std::size_t kArenaSpan = std::size_t{1} << 30;
constexpr std::size_t kArenaUsed = 2 * kArenaSpan;
constexpr std::size_t kArenaReserve = 3 * kArenaSpan;
constexpr std::size_t kPage = 4096;
constexpr std::size_t kBlock = std::size_t{2} << 20;  // a host page-table page's span
// The hot block: kHotBytes for TABLE_HOT, kHotOffset into GiB 1, so that the split table's
// lower half has its last kHotOffset bytes (kmem: the codes of a heap's first 64 Ki pages)
// in the same 2 MiB, and its upper half the rest of the 2 MiB after the hot bytes (kmem:
// the records of its first ~90 Ki pages).
constexpr std::size_t kHotOffset = std::size_t{64} << 10;
constexpr std::size_t kHotBytes = std::size_t{512} << 10;
static_assert(kHotOffset % kPage == 0 && kHotBytes % kPage == 0 && kHotOffset + kHotBytes < kBlock);

enum arena_state : int { A_UNKNOWN = 0, A_OPENING = 1, A_OPEN = 2, A_NONE = 3 };

std::atomic<int> g_state{A_UNKNOWN};
std::uintptr_t g_base;                   // the first aligned GiB [set once, before A_OPEN]
bool g_writable;                         // the two GiB are mapped read-write [set once, before A_OPEN]
std::atomic<std::size_t> g_inside{0};    // bytes of tables carved from the arena
std::atomic<std::size_t> g_writable_bytes{0};  // bytes of the arena mapped read-write (the host's VmData)
std::atomic<std::size_t> g_outside{0};   // bytes of tables mapped outside it
std::atomic<std::size_t> g_host_calls{0};  // mmap calls made (reservation, mappings)
// Carving (a handful of calls, at boot): [g_carve]
std::atomic_flag g_carve = ATOMIC_FLAG_INIT;
std::size_t g_next;                  // GiB 0: bytes handed out from its base
std::size_t g_floor = kArenaSpan;    // GiB 0's tables end here (where the split's lower half begins)
std::size_t g_hot_next;              // the hot block: bytes handed out
std::uintptr_t g_split_lo, g_split_hi;  // the split table's extent, hot block included (0: none yet)

struct carve_guard {
  carve_guard() {
    while (g_carve.test_and_set(std::memory_order_acquire)) {
    }
  }
  ~carve_guard() { g_carve.clear(std::memory_order_release); }
  carve_guard(const carve_guard&) = delete;
  carve_guard& operator=(const carve_guard&) = delete;
};

inline std::uintptr_t hot_at() { return g_base + kArenaSpan + kHotOffset; }
inline std::size_t page_round(std::size_t bytes) { return bytes == 0 ? kPage : (bytes + kPage - 1) & ~(kPage - 1); }

// Set by table_arena_limits_known: 0 unknown (ask the host), else 1 + unlimited.
std::atomic<int> g_as_known{0}, g_data_known{0};

bool unlimited(int resource) {
  const int known = (resource == RLIMIT_AS ? g_as_known : g_data_known).load(std::memory_order_acquire);
  if (known != 0) return known == 2;
  rlimit r{};
  if (::syscall(SYS_prlimit64, 0, resource, nullptr, &r) != 0) return false;
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
    void* p = unlimited(RLIMIT_AS) ? host_reserve(kArenaReserve) : MAP_FAILED;
    g_host_calls.fetch_add(p != MAP_FAILED ? 1 : 0, std::memory_order_relaxed);
    if (p == MAP_FAILED) {
      g_state.store(A_NONE, std::memory_order_release);
      return false;
    }
    g_base = (reinterpret_cast<std::uintptr_t>(p) + kArenaSpan - 1) & ~(kArenaSpan - 1);
    // The two GiB the tables are carved from, readable and writable in one call: carving a
    // table is then no system call (boot carves eight, ~5-10 us each on these guests).  Not
    // under a RLIMIT_DATA, which the two GiB would count against whole (a MAP_FIXED over
    // the reservation is not checked against it, but every later mapping is: an exec under
    // `ulimit -d 500000` could map nothing more); and a host that charges even
    // MAP_NORESERVE memory (overcommit_memory=2) may refuse it.  The tables are then mapped
    // one by one as they are carved.
    if (unlimited(RLIMIT_DATA)) {
      g_host_calls.fetch_add(1, std::memory_order_relaxed);
      g_writable = mmap(reinterpret_cast<void*>(g_base), kArenaUsed, PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED, -1, 0) != MAP_FAILED;
      if (g_writable)
        g_writable_bytes.store(kArenaUsed, std::memory_order_relaxed);
      else  // a failed MAP_FIXED may have dropped the reservation under it: again
        (void)mmap(reinterpret_cast<void*>(g_base), kArenaUsed, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED, -1, 0);
    }
    g_state.store(A_OPEN, std::memory_order_release);
    return true;
  }
}

void* map_alone(std::size_t bytes, unsigned flags) {
  g_host_calls.fetch_add(1, std::memory_order_relaxed);
  const int pop = (flags & TABLE_POPULATE) != 0 ? MAP_POPULATE : 0;
  void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | pop, -1, 0);
  if (p == MAP_FAILED) return nullptr;
  g_outside.fetch_add(bytes, std::memory_order_relaxed);
  return p;
}

// [a, a + bytes) of the arena, carved for one table, made memory.
void* map_at(std::uintptr_t a, std::size_t bytes, unsigned flags) {
  if (g_writable) {
    if ((flags & TABLE_POPULATE) != 0) (void)madvise(reinterpret_cast<void*>(a), bytes, MADV_POPULATE_WRITE);
    g_inside.fetch_add(bytes, std::memory_order_relaxed);
    return reinterpret_cast<void*>(a);
  }
  g_host_calls.fetch_add(1, std::memory_order_relaxed);
  const int pop = (flags & TABLE_POPULATE) != 0 ? MAP_POPULATE : 0;
  // Over the arena's own reservation: nothing else can be there.
  void* p = mmap(reinterpret_cast<void*>(a), bytes, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED | pop, -1, 0);
  if (p == MAP_FAILED) return nullptr;
  g_inside.fetch_add(bytes, std::memory_order_relaxed);
  g_writable_bytes.fetch_add(bytes, std::memory_order_relaxed);
  return p;
}

// The 2 MiB blocks of [lo, hi) that hold a resident page.
std::size_t blocks_resident(std::uintptr_t lo, std::uintptr_t hi) {
  unsigned char vec[kBlock / kPage];
  std::size_t n = 0;
  for (std::uintptr_t b = lo & ~(kBlock - 1); b < hi; b += kBlock) {
    const std::uintptr_t from = b < lo ? lo : b, to = b + kBlock < hi ? b + kBlock : hi;
    if (mincore(reinterpret_cast<void*>(from), to - from, vec) != 0) continue;
    for (std::size_t i = 0; i < (to - from) / kPage; ++i) {
      if (vec[i] & 1) {
        ++n;
        break;
      }
    }
  }
  return n;
}

}  // namespace

void table_arena_limits_known(bool as_unlimited, bool data_unlimited) {
  g_as_known.store(as_unlimited ? 2 : 1, std::memory_order_release);
  g_data_known.store(data_unlimited ? 2 : 1, std::memory_order_release);
}

void* table_map(std::size_t bytes, unsigned flags) {
  bytes = page_round(bytes);
  if (!arena_open()) return map_alone(bytes, flags);
  std::uintptr_t a = 0;
  bool hot_front = false;
  {
    carve_guard g;
    if ((flags & TABLE_HOT) != 0 && bytes <= kHotBytes - g_hot_next) {
      a = hot_at() + g_hot_next;
      hot_front = g_hot_next == 0;
      g_hot_next += bytes;
    } else if (bytes <= g_floor - g_next) {
      a = g_base + g_next;
      g_next += bytes;
    }
  }
  if (a == 0) return map_alone(bytes, flags);
  // The hot block's first table, populated (the window table): its call also makes the
  // page on either side of it writable, which boot writes next in every process: below, the
  // last page of the split table's lower half (kmem's codes of the heap's first pages),
  // above, the front of the next hot table (the pmap's per-chunk records).  Each was a page
  // fault of its own (perf record -e page-faults -d of a one-malloc program).
  if (hot_front && g_writable && (flags & TABLE_POPULATE) != 0) {
    (void)madvise(reinterpret_cast<void*>(a - kPage), bytes + 2 * kPage, MADV_POPULATE_WRITE);
    flags &= ~unsigned{TABLE_POPULATE};  // done, with its neighbours
  }
  return map_at(a, bytes, flags);
}

void table_populate(const void* p, std::size_t bytes) {
  const auto a = reinterpret_cast<std::uintptr_t>(p) & ~(kPage - 1);
  const std::size_t n = page_round(reinterpret_cast<std::uintptr_t>(p) + bytes - a);
  if (g_writable && table_in_arena(reinterpret_cast<const void*>(a), n))
    (void)madvise(reinterpret_cast<void*>(a), n, MADV_POPULATE_WRITE);
}

bool table_map_split(std::size_t below, std::size_t above, void** below_end, void** above_start) {
  below = page_round(below);
  above = page_round(above);
  std::uintptr_t x = 0;
  if (arena_open()) {
    carve_guard g;
    const std::uintptr_t h = hot_at();
    if (g_split_lo == 0 && below <= h - (g_base + g_next) && above <= g_base + kArenaUsed - (h + kHotBytes)) {
      x = h;
      g_split_lo = h - below;
      g_split_hi = h + kHotBytes + above;
      g_floor = g_split_lo - g_base;
    }
  }
  if (x != 0) {
    if (map_at(x - below, below, TABLE_LAZY) == nullptr) return false;
    if (map_at(x + kHotBytes, above, TABLE_LAZY) == nullptr) {
      const int saved = errno;
      (void)table_unmap(reinterpret_cast<void*>(x - below), below);
      errno = saved;
      return false;
    }
    *below_end = reinterpret_cast<void*>(x);
    *above_start = reinterpret_cast<void*>(x + kHotBytes);
    return true;
  }
  void* p = table_map(below + above);
  if (p == nullptr) return false;
  *below_end = *above_start = static_cast<char*>(p) + below;
  return true;
}

int table_unmap(void* p, std::size_t bytes) {
  bytes = page_round(bytes);
  if (!table_in_arena(p, bytes)) {
    if (munmap(p, bytes) != 0) return -1;
    g_outside.fetch_sub(bytes, std::memory_order_relaxed);
    return 0;
  }
  void* r = mmap(p, bytes, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED, -1, 0);
  if (r == MAP_FAILED) return -1;
  g_inside.fetch_sub(bytes, std::memory_order_relaxed);
  g_writable_bytes.fetch_sub(bytes, std::memory_order_relaxed);
  return 0;
}

std::size_t table_arena_reserved() { return g_state.load(std::memory_order_acquire) == A_OPEN ? kArenaReserve : 0; }

std::size_t table_bytes_inside() { return g_inside.load(std::memory_order_relaxed); }

std::size_t table_bytes_outside() { return g_outside.load(std::memory_order_relaxed); }

std::size_t table_host_calls() { return g_host_calls.load(std::memory_order_relaxed); }

std::size_t table_bytes_writable() {
  return g_writable_bytes.load(std::memory_order_relaxed) + g_outside.load(std::memory_order_relaxed);
}

bool table_in_arena(const void* p, std::size_t bytes) {
  if (g_state.load(std::memory_order_acquire) != A_OPEN) return false;
  const std::uintptr_t a = reinterpret_cast<std::uintptr_t>(p);
  return a >= g_base && bytes <= kArenaUsed && a - g_base <= kArenaUsed - bytes;
}

std::size_t table_arena_blocks_resident() {
  if (g_state.load(std::memory_order_acquire) != A_OPEN) return 0;
  std::uintptr_t gib0_hi, hot_lo, hot_hi;
  {
    carve_guard g;
    gib0_hi = g_base + g_next;
    hot_lo = g_split_lo != 0 ? g_split_lo : hot_at();
    hot_hi = g_split_lo != 0 ? g_split_hi : hot_at() + g_hot_next;
  }
  // The split's lower half may reach down into GiB 0's last blocks: count each block once.
  const std::uintptr_t lo1 = hot_lo & ~(kBlock - 1);
  const std::uintptr_t hi0 = gib0_hi < lo1 ? gib0_hi : lo1;
  return blocks_resident(g_base, hi0) + blocks_resident(hot_lo, hot_hi);
}

}  // namespace vmrt::sys
