// rt_vma_budget.cpp — see rt_vma_budget.h.
#include "runtime/rt_vma_budget.h"

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <fcntl.h>
#include <unistd.h>

#include "runtime/rt_maps.h"
#include "runtime/rt_stats.h"

namespace vmrt::rt {

namespace {

// Linux's default vm.max_map_count (DEFAULT_MAX_MAP_COUNT), when /proc/sys is unreadable.
constexpr std::size_t kDefaultLimit = 65530;
// A thirty-second of the limit (2047 of the default), at least 256: room for vmrt's own
// splits between two refusals (each page run paged out of a frame mapping costs two).
constexpr std::size_t kHeadroomDivisor = 32;
constexpr std::size_t kHeadroomMin = 256;
// The estimate may miss this many host mappings glibc made itself since the last count:
// within it of the headroom, the count is refreshed.
constexpr std::size_t kDrift = 256;
constexpr unsigned kRecountEvery = 64;
static_assert(kDefaultLimit / kHeadroomDivisor > kHeadroomMin, "the default limit keeps the proportional headroom");

// The host's limit, read at the first question that needs it (vma_budget_allows past
// kReadLimitAt VMAs, the report): a process that never comes near it (most do not) reads no
// /proc/sys file.  Any thread may read it; two readers store the same values.
std::atomic<std::size_t> g_limit{kDefaultLimit};
std::atomic<std::size_t> g_headroom{kDefaultLimit / kHeadroomDivisor};
std::atomic<bool> g_limit_known{false};
// Below this many VMAs (estimated) no limit is asked about: every limit a process under vmrt
// can boot with lies well above it (the headroom alone is at least 256).
constexpr std::int64_t kReadLimitAt = 128;
// The last exact count, the region's estimate then, and mappings made outside the region
// since (the estimate is exact + region delta + outside).
std::atomic<std::int64_t> g_exact{0};
std::atomic<std::int64_t> g_region_then{0};
std::atomic<std::int64_t> g_outside{0};
std::atomic<unsigned> g_since_count{0};
// Up to this estimate the last count said there is room (0: none known).
std::atomic<std::int64_t> g_ceiling{0};
// VMAs estimated before boot (vma_budget_seed; 0: none), and at most how many mappings boot
// makes outside the region before vma_budget_init (the window table, the pmap's tables,
// physmem's, the first zone chunk: 6 today), added to the seed: an estimate over by a few
// refuses the program's mappings a few earlier, never later.
std::size_t g_seed;
constexpr std::size_t kBootMappings = 16;

std::size_t read_limit() {
  int fd = ::open("/proc/sys/vm/max_map_count", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return kDefaultLimit;
  char buf[32];
  ssize_t r = ::read(fd, buf, sizeof buf - 1);
  ::close(fd);
  std::size_t v = 0;
  for (ssize_t i = 0; i < r && buf[i] >= '0' && buf[i] <= '9'; ++i) v = v * 10 + static_cast<std::size_t>(buf[i] - '0');
  return v != 0 ? v : kDefaultLimit;
}

// Count the host's VMAs again.  False when /proc/self/maps cannot be read.
bool recount() {
  std::size_t n = 0;
  if (!maps_total(&n)) return false;
  g_region_then.store(rt_get(RC_HOST_VMAS), std::memory_order_relaxed);
  g_outside.store(0, std::memory_order_relaxed);
  g_exact.store(static_cast<std::int64_t>(n), std::memory_order_relaxed);
  g_since_count.store(0, std::memory_order_relaxed);
  rt_count(RC_VMA_RECOUNTS);
  return true;
}

std::int64_t estimate() {
  return g_exact.load(std::memory_order_relaxed) + rt_get(RC_HOST_VMAS) - g_region_then.load(std::memory_order_relaxed) +
         g_outside.load(std::memory_order_relaxed);
}

}  // namespace

void vma_budget_seed(std::size_t vmas) { g_seed = vmas; }

// The limit and headroom, read now if not yet.
static void know_limit() {
  if (g_limit_known.load(std::memory_order_acquire)) return;
  const std::size_t limit = read_limit();
  std::size_t headroom = limit / kHeadroomDivisor > kHeadroomMin ? limit / kHeadroomDivisor : kHeadroomMin;
  if (headroom > limit / 2) headroom = limit / 2;  // a tiny limit: half each
  g_limit.store(limit, std::memory_order_relaxed);
  g_headroom.store(headroom, std::memory_order_relaxed);
  g_limit_known.store(true, std::memory_order_release);
}

void vma_budget_init() {
  if (g_seed == 0) {
    recount();
    return;
  }
  // The seed saw no region: what the region holds now is counted, as in recount.
  const std::int64_t region = rt_get(RC_HOST_VMAS);
  g_region_then.store(region, std::memory_order_relaxed);
  g_outside.store(0, std::memory_order_relaxed);
  g_exact.store(static_cast<std::int64_t>(g_seed + kBootMappings) + region, std::memory_order_relaxed);
}

bool vma_budget_allows(unsigned n) {
  std::int64_t est = estimate() + n;
  if (!g_limit_known.load(std::memory_order_acquire)) {
    if (est <= kReadLimitAt) return true;
    know_limit();
  }
  auto room = static_cast<std::int64_t>(g_limit.load(std::memory_order_relaxed) - g_headroom.load(std::memory_order_relaxed));
  if (est + static_cast<std::int64_t>(kDrift) <= room || est <= g_ceiling.load(std::memory_order_relaxed)) return true;
  // Near the limit.  Below it by the estimate: count again (the estimate may miss glibc's own
  // mappings, and it over-counts runs of the program's adjacent mappings), then trust the
  // estimate up to half the room left.  Past it: count again every kRecountEvery refusals
  // (the program may have unmapped meanwhile).
  if (est <= room || g_since_count.fetch_add(1, std::memory_order_relaxed) % kRecountEvery == 0) {
    if (recount()) {
      std::int64_t exact = g_exact.load(std::memory_order_relaxed);
      g_ceiling.store(exact < room ? exact + (room - exact) / 2 : 0, std::memory_order_relaxed);
    }
    est = estimate() + n;
  }
  if (est <= room) return true;
  rt_count(RC_VMA_REFUSED);
  return false;
}

std::int64_t vma_budget_pmap_excess(unsigned n) {
  const std::int64_t est = estimate() + n;
  if (!g_limit_known.load(std::memory_order_acquire)) {
    if (est <= kReadLimitAt) return est - kReadLimitAt - 1;
    know_limit();
  }
  const auto limit = static_cast<std::int64_t>(g_limit.load(std::memory_order_relaxed));
  std::int64_t share = limit - 2 * static_cast<std::int64_t>(g_headroom.load(std::memory_order_relaxed));
  if (share < limit / 4) share = limit / 4;  // a tiny limit (the headroom is half of it)
  return est - share;
}

void vma_budget_note_outside() { g_outside.fetch_add(1, std::memory_order_relaxed); }

std::size_t vma_budget_limit() {
  know_limit();
  return g_limit.load(std::memory_order_relaxed);
}
std::size_t vma_budget_headroom() {
  know_limit();
  return g_headroom.load(std::memory_order_relaxed);
}

std::size_t vma_budget_boot_estimate() { return g_seed; }

}  // namespace vmrt::rt
