// alloc_bench — vmrt's malloc shim side by side with glibc, jemalloc, mimalloc and
// tcmalloc, in one run.
//
// The driver re-executes itself (/proc/self/exe --worker WORKLOAD) once per
// (allocator, workload, repetition) with LD_PRELOAD naming the allocator, so every
// allocator runs the same binary, the same workload code and the same inputs.
// Repetitions are interleaved (rep 1 of every allocator, then rep 2 ...) so drift on
// this shared machine hits every allocator alike, and the allocator order rotates
// per repetition.  The worker times the workload alone (CLOCK_MONOTONIC around it,
// not process start); the driver takes peak RSS from wait4's ru_maxrss.  Every
// workload reads back what it wrote and folds it into a checksum that must be
// identical across allocators (no pointer values enter it).
//
// The workload code (section "workloads") is plain C: malloc/free/realloc, static
// arrays, pthreads, so the allocator is what is measured, not std:: containers.
// The driver side uses the C++ standard library freely.

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cinttypes>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

namespace {

// ---------------------------------------------------------------------------------
// Worker-side helpers (no allocation)
// ---------------------------------------------------------------------------------

inline std::uint64_t now_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return std::uint64_t(ts.tv_sec) * 1000000000ull + std::uint64_t(ts.tv_nsec);
}

// xorshift64*: deterministic per seed, identical under every allocator.
struct rng {
  std::uint64_t s;
  explicit rng(std::uint64_t seed) : s(seed * 0x9E3779B97F4A7C15ull + 0x1234567ull) {
    if (s == 0) s = 1;
  }
  std::uint64_t next() {
    s ^= s >> 12;
    s ^= s << 25;
    s ^= s >> 27;
    return s * 0x2545F4914F6CDD1Dull;
  }
  std::uint32_t below(std::uint32_t n) { return std::uint32_t((next() >> 32) % n); }
  std::uint32_t range(std::uint32_t lo, std::uint32_t hi) { return lo + below(hi - lo + 1); }
};

inline std::uint64_t mix(std::uint64_t h, std::uint64_t v) {
  h ^= v + 0x9E3779B97F4A7C15ull + (h << 6) + (h >> 2);
  return h;
}

// Scalars describing one worker run.
struct worker_params {
  int scale = 1;  // 1 = quick sizes; full mode uses 4
};

// Memory sampled at working-set peaks (mixed workload): the largest Rss and Pss seen
// in /proc/self/smaps_rollup.  Pss divides a page mapped twice in this process (e.g.
// a memfd frame in a direct map and in the heap) between its mappings, so it counts
// each physical page once.  Time spent sampling is excluded from the workload time.
std::atomic<std::uint64_t> g_sample_ns{0};
long g_peak_rss_kb = 0;
long g_peak_pss_kb = 0;

long parse_kb(const char* buf, const char* key) {
  const char* p = std::strstr(buf, key);
  if (!p) return -1;
  p += std::strlen(key);
  while (*p == ' ' || *p == '\t') ++p;
  return std::strtol(p, nullptr, 10);
}

void sample_memory() {
  std::uint64_t t0 = now_ns();
  char buf[4096];
  int fd = open("/proc/self/smaps_rollup", O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n > 0) {
      buf[n] = 0;
      long rss = parse_kb(buf, "\nRss:");
      long pss = parse_kb(buf, "\nPss:");
      if (rss > g_peak_rss_kb) g_peak_rss_kb = rss;
      if (pss > g_peak_pss_kb) g_peak_pss_kb = pss;
    }
  }
  g_sample_ns.fetch_add(now_ns() - t0, std::memory_order_relaxed);
}

long vm_hwm_kb() {
  char buf[8192];
  int fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0) return -1;
  buf[n] = 0;
  return parse_kb(buf, "VmHWM:");
}

void die(const char* what) {
  std::fprintf(stderr, "alloc_bench worker: %s\n", what);
  std::_Exit(3);
}

// ---------------------------------------------------------------------------------
// Workloads (plain C style)
// ---------------------------------------------------------------------------------

// Small-object size mix, 8..512 bytes, skewed small like real programs.
inline std::uint32_t small_size(rng& r) {
  std::uint32_t c = r.below(100);
  if (c < 50) return r.range(8, 64);
  if (c < 80) return r.range(65, 128);
  if (c < 95) return r.range(129, 256);
  return r.range(257, 512);
}

inline unsigned char tag_of(std::uint64_t a, std::uint64_t b) {
  return (unsigned char)((a * 131 + b * 7 + 1) & 0xff);
}

// One thread of small-object churn: `slots` slots, `ops` operations; each op frees
// the object in a random slot (after checking its two tag bytes) and allocates a new
// one there.
struct churn_args {
  std::uint64_t seed, ops;
  std::uint32_t slots;
  std::uint64_t checksum;
};

void* churn_thread(void* p) {
  churn_args* a = static_cast<churn_args*>(p);
  rng r(a->seed);
  unsigned char** obj = static_cast<unsigned char**>(calloc(a->slots, sizeof(void*)));
  std::uint32_t* sz = static_cast<std::uint32_t*>(calloc(a->slots, sizeof(std::uint32_t)));
  std::uint64_t* gen = static_cast<std::uint64_t*>(calloc(a->slots, sizeof(std::uint64_t)));
  if (!obj || !sz || !gen) die("calloc failed");
  std::uint64_t h = 0;
  for (std::uint64_t i = 0; i < a->ops; ++i) {
    std::uint32_t s = r.below(a->slots);
    if (obj[s]) {
      unsigned char t = tag_of(s, gen[s]);
      if (obj[s][0] != t || obj[s][sz[s] - 1] != (unsigned char)(t ^ 0x5a)) die("small_churn: corrupted object");
      h = mix(h, std::uint64_t(obj[s][0]) + sz[s]);
      free(obj[s]);
    }
    std::uint32_t n = small_size(r);
    unsigned char* q = static_cast<unsigned char*>(malloc(n));
    if (!q) die("malloc failed");
    gen[s] = i;
    q[0] = tag_of(s, i);
    q[n - 1] = (unsigned char)(q[0] ^ 0x5a);
    obj[s] = q;
    sz[s] = n;
  }
  for (std::uint32_t s = 0; s < a->slots; ++s) {
    if (obj[s]) {
      h = mix(h, std::uint64_t(obj[s][0]) + sz[s]);
      free(obj[s]);
    }
  }
  free(obj);
  free(sz);
  free(gen);
  a->checksum = h;
  return nullptr;
}

