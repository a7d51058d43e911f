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

#include <dlfcn.h>
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

#include "bench/bench_common.h"

namespace {

// ---------------------------------------------------------------------------------
// Worker-side helpers (no allocation)
// ---------------------------------------------------------------------------------

using bench::median;
using bench::now_ns;

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

std::uint64_t run_small_churn(const worker_params& p) {
  churn_args a{1, 5000000ull * p.scale, 1u << 15, 0};
  churn_thread(&a);
  return a.checksum;
}

// Two independent churn threads.
std::uint64_t run_churn_2t(const worker_params& p) {
  churn_args a[2] = {{11, 4000000ull * p.scale, 1u << 15, 0}, {12, 4000000ull * p.scale, 1u << 15, 0}};
  pthread_t t;
  if (pthread_create(&t, nullptr, churn_thread, &a[1]) != 0) die("pthread_create failed");
  churn_thread(&a[0]);
  pthread_join(t, nullptr);
  return mix(a[0].checksum, a[1].checksum);
}

// Producer/consumer: one thread allocates 16..256-byte messages, the other checks and
// frees them (every free is a cross-thread free).  A single-producer single-consumer
// ring of (pointer, size) entries in static memory.
constexpr std::uint32_t ring_size = 1u << 14;
struct ring_entry {
  unsigned char* p;
  std::uint32_t n;
  std::uint32_t seq;
};
struct alignas(64) ring_state {
  ring_entry e[ring_size];
  alignas(64) std::atomic<std::uint64_t> head{0};  // next slot to write (producer)
  alignas(64) std::atomic<std::uint64_t> tail{0};  // next slot to read (consumer)
  std::uint64_t total;
  std::uint64_t checksum;
};
ring_state g_ring;

inline void backoff(unsigned& spins) {
  if (++spins < 64) {
    __builtin_ia32_pause();
  } else {
    spins = 0;
    sched_yield();
  }
}

void* consumer_thread(void*) {
  ring_state& r = g_ring;
  std::uint64_t h = 0, tail = 0;
  unsigned spins = 0;
  while (tail < r.total) {
    std::uint64_t head = r.head.load(std::memory_order_acquire);
    if (head == tail) {
      backoff(spins);
      continue;
    }
    for (; tail < head; ++tail) {
      ring_entry& e = r.e[tail & (ring_size - 1)];
      unsigned char t = tag_of(e.seq, e.n);
      if (e.p[0] != t || e.p[e.n - 1] != (unsigned char)(t ^ 0xa5)) die("prodcons: corrupted message");
      h = mix(h, std::uint64_t(e.p[e.n / 2]) + e.n);
      free(e.p);
    }
    r.tail.store(tail, std::memory_order_release);
  }
  r.checksum = h;
  return nullptr;
}

std::uint64_t run_prodcons(const worker_params& p) {
  ring_state& r = g_ring;
  r.total = 2000000ull * p.scale;
  pthread_t t;
  if (pthread_create(&t, nullptr, consumer_thread, nullptr) != 0) die("pthread_create failed");
  rng g(21);
  std::uint64_t head = 0;
  unsigned spins = 0;
  while (head < r.total) {
    std::uint64_t tail = r.tail.load(std::memory_order_acquire);
    if (head - tail == ring_size) {
      backoff(spins);
      continue;
    }
    std::uint64_t room = ring_size - (head - tail);
    std::uint64_t batch = std::min<std::uint64_t>(room, std::min<std::uint64_t>(256, r.total - head));
    for (std::uint64_t k = 0; k < batch; ++k, ++head) {
      std::uint32_t n = g.range(16, 256);
      unsigned char* q = static_cast<unsigned char*>(malloc(n));
      if (!q) die("malloc failed");
      std::uint32_t seq = std::uint32_t(head);
      q[0] = tag_of(seq, n);
      q[n / 2] = (unsigned char)(seq * 13);
      q[n - 1] = (unsigned char)(q[0] ^ 0xa5);
      r.e[head & (ring_size - 1)] = ring_entry{q, n, seq};
    }
    r.head.store(head, std::memory_order_release);
  }
  pthread_join(t, nullptr);
  return r.checksum;
}

// Realloc growth: 512 string-builder buffers grow by appends of 1..96 bytes, each
// append a realloc to the exact new length (naive code does this); a buffer that
// reaches its target length (1 KiB .. max) is verified and freed, and a new one starts.
std::uint64_t run_realloc_growth(const worker_params& p) {
  constexpr std::uint32_t nbuf = 512;
  const std::uint32_t max_len = 16384u * std::uint32_t(p.scale);
  const std::uint64_t appends = 1500000ull * p.scale;
  static unsigned char* buf[nbuf];
  static std::uint32_t len[nbuf], target[nbuf], gen[nbuf];
  rng r(31);
  std::uint64_t h = 0;
  std::uint32_t next_gen = 0;
  for (std::uint32_t i = 0; i < nbuf; ++i) {
    buf[i] = nullptr;
    len[i] = 0;
    gen[i] = next_gen++;
    target[i] = r.range(1024, max_len);
  }
  // Content: byte j of generation g is (j * 7 + g) & 0xff; verified every 61 bytes.
  auto verify_and_free = [&](std::uint32_t i) {
    for (std::uint32_t j = 0; j < len[i]; j += 61) {
      if (buf[i][j] != (unsigned char)((j * 7 + gen[i]) & 0xff)) die("realloc_growth: content lost");
    }
    h = mix(h, std::uint64_t(len[i]) * 257 + buf[i][len[i] - 1]);
    free(buf[i]);
    buf[i] = nullptr;
  };
  for (std::uint64_t k = 0; k < appends; ++k) {
    std::uint32_t i = r.below(nbuf);
    std::uint32_t add = r.range(1, 96);
    std::uint32_t nl = len[i] + add;
    unsigned char* q = static_cast<unsigned char*>(realloc(buf[i], nl));
    if (!q) die("realloc failed");
    for (std::uint32_t j = len[i]; j < nl; ++j) q[j] = (unsigned char)((j * 7 + gen[i]) & 0xff);
    buf[i] = q;
    len[i] = nl;
    if (nl >= target[i]) {
      verify_and_free(i);
      len[i] = 0;
      gen[i] = next_gen++;
      target[i] = r.range(1024, max_len);
    }
  }
  for (std::uint32_t i = 0; i < nbuf; ++i)
    if (buf[i]) verify_and_free(i);
  return h;
}

// Mixed-size server: two threads each serve requests.  A request allocates a header
// (128..512 B) and 1..8 buffers of 16 B..64 KiB (60% <= 256 B, 25% <= 2 KiB, 10% <=
// 16 KiB, 5% <= 64 KiB), touching every page it gets.  Requests stay in flight for
// varied times (a random in-flight request completes), and the number in flight
// follows phases low -> high -> low, so the working set grows and shrinks.  5% of
// requests also leave a long-lived cache entry (64 B..8 KiB) in a cache whose capacity
// follows the same phases.  Thread 0 samples memory at the top of every phase.
struct request {
  std::uint32_t id;
  std::uint32_t nbuf;
  unsigned char* buf[8];
  std::uint32_t len[8];
};

inline std::uint32_t mixed_size(rng& r) {
  std::uint32_t c = r.below(100);
  if (c < 60) return r.range(16, 256);
  if (c < 85) return r.range(257, 2048);
  if (c < 95) return r.range(2049, 16384);
  return r.range(16385, 65536);
}

inline void touch(unsigned char* p, std::uint32_t n, unsigned char v) {
  for (std::uint32_t j = 0; j + 1 < n; j += 4096) p[j] = (unsigned char)(v + j / 4096);
  p[n - 1] = v;
}

inline std::uint64_t check(const unsigned char* p, std::uint32_t n, unsigned char v) {
  std::uint64_t s = 0;
  for (std::uint32_t j = 0; j + 1 < n; j += 4096) {
    if (p[j] != (unsigned char)(v + j / 4096)) die("mixed_server: corrupted buffer");
    s += p[j];
  }
  if (p[n - 1] != v) die("mixed_server: corrupted buffer end");
  return s + n;
}

struct server_args {
  int thread;
  int scale;
  std::uint64_t checksum;
};

void* server_thread(void* vp) {
  server_args* a = static_cast<server_args*>(vp);
  rng r(41 + a->thread);
  const std::uint32_t max_inflight = 4096u * std::uint32_t(a->scale);
  const std::uint32_t cache_cap = 4096u * std::uint32_t(a->scale);
  const std::uint64_t requests = 200000ull * std::uint64_t(a->scale);
  const std::uint32_t phase_len = 20000u * std::uint32_t(a->scale);  // requests per phase
  request** inflight = static_cast<request**>(calloc(max_inflight, sizeof(request*)));
  unsigned char** cache = static_cast<unsigned char**>(calloc(cache_cap, sizeof(void*)));
  std::uint32_t* cache_len = static_cast<std::uint32_t*>(calloc(cache_cap, sizeof(std::uint32_t)));
  if (!inflight || !cache || !cache_len) die("calloc failed");
  std::uint32_t n_inflight = 0, n_cache = 0;
  std::uint64_t h = 0;
  auto complete = [&](std::uint32_t k) {
    request* q = inflight[k];
    for (std::uint32_t b = 0; b < q->nbuf; ++b) {
      h = mix(h, check(q->buf[b], q->len[b], (unsigned char)(q->id + b)));
      free(q->buf[b]);
    }
    h = mix(h, q->id);
    free(q);
    inflight[k] = inflight[--n_inflight];
  };
  auto evict = [&](std::uint32_t k) {
    h = mix(h, check(cache[k], cache_len[k], (unsigned char)cache_len[k]));
    free(cache[k]);
    --n_cache;
    cache[k] = cache[n_cache];
    cache_len[k] = cache_len[n_cache];
  };
  for (std::uint64_t i = 0; i < requests; ++i) {
    // Phase shape: 4 phases per cycle at 1/8, 1/2, 1, 1/4 of the maximum.
    std::uint32_t phase = std::uint32_t(i / phase_len);
    static const std::uint32_t shape8[4] = {1, 4, 8, 2};
    std::uint32_t want = max_inflight * shape8[phase % 4] / 8;
    std::uint32_t want_cache = cache_cap * shape8[phase % 4] / 8;
    while (n_inflight >= want && n_inflight > 0) complete(r.below(n_inflight));
    while (n_cache > want_cache) evict(r.below(n_cache));
    request* q = static_cast<request*>(malloc(r.range(128, 512)));
    if (!q) die("malloc failed");
    q->id = std::uint32_t(i);
    q->nbuf = r.range(1, 8);
    for (std::uint32_t b = 0; b < q->nbuf; ++b) {
      std::uint32_t n = mixed_size(r);
      q->buf[b] = static_cast<unsigned char*>(malloc(n));
      if (!q->buf[b]) die("malloc failed");
      q->len[b] = n;
      touch(q->buf[b], n, (unsigned char)(q->id + b));
    }
    inflight[n_inflight++] = q;
    // A few requests complete almost at once (short lifetimes), the rest wait.
    if (r.below(4) == 0) complete(r.below(n_inflight));
    if (r.below(20) == 0) {
      if (n_cache == cache_cap) evict(r.below(n_cache));
      std::uint32_t n = r.range(64, 8192);
      unsigned char* c = static_cast<unsigned char*>(malloc(n));
      if (!c) die("malloc failed");
      touch(c, n, (unsigned char)n);
      cache[n_cache] = c;
      cache_len[n_cache++] = n;
    }
    if (a->thread == 0 && (i % phase_len) == phase_len - 1 && shape8[phase % 4] == 8) sample_memory();
  }
  while (n_inflight > 0) complete(n_inflight - 1);
  while (n_cache > 0) evict(n_cache - 1);
  free(inflight);
  free(cache);
  free(cache_len);
  a->checksum = h;
  return nullptr;
}

std::uint64_t run_mixed_server(const worker_params& p) {
  server_args a[2] = {{0, p.scale, 0}, {1, p.scale, 0}};
  pthread_t t;
  if (pthread_create(&t, nullptr, server_thread, &a[1]) != 0) die("pthread_create failed");
  server_thread(&a[0]);
  pthread_join(t, nullptr);
  return mix(a[0].checksum, a[1].checksum);
}

// ---------------------------------------------------------------------------------
// Workload table and targets
// ---------------------------------------------------------------------------------

enum class target_kind { none, speed_ge_1, speed_ge_08 };

struct workload {
  const char* name;
  int threads;
  std::uint64_t (*run)(const worker_params&);
  target_kind target;
  bool rss_target;  // peak RSS <= 1.5x jemalloc
  const char* what;
};

const workload k_workloads[] = {
    {"small_churn", 1, run_small_churn, target_kind::speed_ge_1, false,
     "1 thread, 5M x (free random slot, malloc 8..512 B), 32K slots"},
    {"churn_2t", 2, run_churn_2t, target_kind::speed_ge_08, false, "2 independent small_churn threads, 4M ops and 32K slots each"},
    {"prodcons", 2, run_prodcons, target_kind::speed_ge_08, false,
     "2M 16..256 B messages malloc'd by one thread, freed by the other"},
    {"realloc_growth", 1, run_realloc_growth, target_kind::none, false,
     "1.5M appends of 1..96 B, realloc to exact length, 512 buffers to 1..16 KiB"},
    {"mixed_server", 2, run_mixed_server, target_kind::speed_ge_08, true,
     "2 threads, 200K requests each, 16 B..64 KiB buffers, up to 4K in flight per thread, working set grows/shrinks"},
};
constexpr int k_nworkloads = int(sizeof k_workloads / sizeof k_workloads[0]);

std::uint64_t run_noop(const worker_params&) { return 0; }
// Not a workload: an empty worker, to measure each allocator's process start/exit
// cost and baseline RSS.
const workload k_noop = {"noop", 1, run_noop, target_kind::none, false, "empty worker"};

int worker_main(const char* name, int scale) {
  const workload* w = nullptr;
  for (const workload& x : k_workloads)
    if (std::strcmp(x.name, name) == 0) w = &x;
  if (std::strcmp(name, k_noop.name) == 0) w = &k_noop;
  if (!w) {
    std::fprintf(stderr, "alloc_bench worker: unknown workload %s\n", name);
    return 2;
  }
  worker_params p;
  p.scale = scale;
  std::uint64_t t0 = now_ns();
  std::uint64_t sum = w->run(p);
  std::uint64_t t1 = now_ns();
  std::uint64_t ns = t1 - t0 - g_sample_ns.load();
  // Which object really provides malloc: a preload that failed to load only warns.
  const char* provider = "?";
  Dl_info info;
  void* m = dlsym(RTLD_DEFAULT, "malloc");
  if (m && dladdr(m, &info) && info.dli_fname) provider = info.dli_fname;
  // One line on stdout for the driver.
  std::printf("RESULT %" PRIu64 " %016" PRIx64 " %ld %ld %ld %s\n", ns, sum, vm_hwm_kb(), g_peak_rss_kb, g_peak_pss_kb,
              provider);
  std::fflush(stdout);
  return 0;
}

// ---------------------------------------------------------------------------------
// Driver
// ---------------------------------------------------------------------------------

struct allocator {
  std::string name;
  std::string path;  // empty: glibc (no LD_PRELOAD)
  bool available = true;
  std::string note;
};

struct run_result {
  bool ok = false;
  std::string error;
  double ms = 0;
  std::uint64_t checksum = 0;
  long maxrss_kb = 0;   // wait4 ru_maxrss
  long hwm_kb = 0;      // VmHWM read by the worker
  long pss_peak_kb = 0;  // sampled Pss (mixed_server only)
  double process_ms = 0;  // fork to reaped, as seen by the driver
};

std::string g_self;

std::string self_dir() {
  std::string s = g_self;
  auto k = s.rfind('/');
  return k == std::string::npos ? std::string(".") : s.substr(0, k);
}

std::string mimalloc_path() {
  const char* cands[] = {"/usr/lib/x86_64-linux-gnu/libmimalloc.so.2", "/usr/lib/x86_64-linux-gnu/libmimalloc.so.2.0",
                         "/usr/lib/x86_64-linux-gnu/libmimalloc.so"};
  for (const char* c : cands)
    if (access(c, R_OK) == 0) return c;
  // Ask dpkg as a fallback.
  FILE* f = popen("dpkg -L libmimalloc2.0 2>/dev/null | grep 'libmimalloc\\.so' | head -1", "r");
  if (f) {
    char line[512] = {0};
    if (std::fgets(line, sizeof line, f)) {
      std::string s(line);
      while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
      pclose(f);
      return s;
    }
    pclose(f);
  }
  return "";
}

std::vector<allocator> find_allocators() {
  std::vector<allocator> v;
  v.push_back({"glibc", "", true, ""});
  auto add = [&](const char* name, std::string path, const char* missing_note) {
    allocator a{name, path, !path.empty() && access(path.c_str(), R_OK) == 0, ""};
    if (!a.available) a.note = std::string(missing_note) + (path.empty() ? "" : " (" + path + ")");
    v.push_back(a);
  };
  add("jemalloc", "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2", "libjemalloc2 not installed");
  add("mimalloc", mimalloc_path(), "libmimalloc2.0 not installed");
  add("tcmalloc", "/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4", "libtcmalloc_minimal.so.4 not installed");
  std::string shim;
  if (const char* e = getenv("VMRT_MALLOC_SO")) shim = e;
  else shim = self_dir() + "/../lib/libvmrt_malloc.so";
  char real[PATH_MAX];
  if (realpath(shim.c_str(), real)) shim = real;
  add("vmrt", shim, "vmrt shim missing: build target vmrt_malloc");
  return v;
}

run_result run_worker(const allocator& a, const char* wname, int scale, int timeout_s) {
  run_result res;
  bench::child_run c = bench::run_child(
      {g_self, "--worker", wname, "--scale", std::to_string(scale)},
      [&] {
        if (a.path.empty()) unsetenv("LD_PRELOAD");
        else setenv("LD_PRELOAD", a.path.c_str(), 1);
      },
      timeout_s);
  res.maxrss_kb = c.maxrss_kb;
  res.process_ms = c.process_ms;
  res.error = bench::exit_error(c, timeout_s);
  if (!res.error.empty()) return res;
  const std::string& out = c.out;
  auto k = out.find("RESULT ");
  if (k == std::string::npos) {
    res.error = "no result line";
    return res;
  }
  unsigned long long ns = 0, sum = 0;
  long hwm = 0, rss = 0, pss = 0;
  char provider[PATH_MAX] = "";
  if (std::sscanf(out.c_str() + k, "RESULT %llu %llx %ld %ld %ld %4095s", &ns, &sum, &hwm, &rss, &pss, provider) != 6) {
    res.error = "bad result line";
    return res;
  }
  // The preload must have taken effect: malloc comes from the allocator's library.
  std::string want = a.path.empty() ? std::string("libc.so") : a.path.substr(a.path.rfind('/') + 1);
  std::string got = provider;
  std::string got_base = got.substr(got.rfind('/') + 1);
  if (got_base.find(want) != 0 && got.find(want) == std::string::npos) {
    char real[PATH_MAX];
    if (!(realpath(got.c_str(), real) && a.path == real)) {
      res.error = "malloc came from " + got + ", not " + want + " (LD_PRELOAD did not take effect)";
      return res;
    }
  }
  res.ok = true;
  res.ms = double(ns) / 1e6;
  res.checksum = sum;
  res.hwm_kb = hwm;
  res.pss_peak_kb = pss;
  return res;
}

void usage(FILE* f) {
  std::fprintf(f,
               "usage: alloc_bench [--quick] [--reps N] [--scale N] [--only WORKLOAD[,..]]\n"
               "                   [--allocators NAME[,..]] [--timeout SEC] [--verbose]\n"
               "\n"
               "Runs each workload under glibc, jemalloc, mimalloc, tcmalloc and vmrt's malloc shim\n"
               "(LD_PRELOAD, one re-executed worker process per run, repetitions interleaved) and\n"
               "prints medians of wall time (workload only) and peak RSS (wait4 ru_maxrss), with\n"
               "ratios against jemalloc and glibc and the vmrt targets, PASS/MISS.\n"
               "\n"
               "  --quick        5 repetitions at base sizes (stops early to stay under 60 s); default: 7 reps at 4x sizes\n"
               "  --reps N       repetitions per (allocator, workload)\n"
               "  --scale N      workload size multiplier (quick: 1, full: 4)\n"
               "  --only LIST    run only these workloads\n"
               "  --allocators L run only these allocators (glibc,jemalloc,mimalloc,tcmalloc,vmrt)\n"
               "  --timeout SEC  kill a worker after SEC seconds (quick: 15, full: 120)\n"
               "  --verbose      print every run\n"
               "\n"
               "The vmrt shim is <dir of this binary>/../lib/libvmrt_malloc.so (or $VMRT_MALLOC_SO).\n"
               "Workloads:\n");
  for (const workload& w : k_workloads) std::fprintf(f, "  %-15s %s\n", w.name, w.what);
  std::fprintf(f,
               "\nLast lines: `speedup WORKLOAD X` (X = jemalloc time / vmrt time) and\n"
               "`rss_ratio WORKLOAD Y` (Y = vmrt peak RSS / jemalloc peak RSS), one per workload.\n");
}

bool in_list(const std::string& list, const std::string& name) {
  if (list.empty()) return true;
  size_t i = 0;
  while (i <= list.size()) {
    size_t j = list.find(',', i);
    if (j == std::string::npos) j = list.size();
    if (list.compare(i, j - i, name) == 0) return true;
    i = j + 1;
  }
  return false;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc >= 3 && std::strcmp(argv[1], "--worker") == 0) {
    int scale = 1;
    if (argc >= 5 && std::strcmp(argv[3], "--scale") == 0) scale = std::atoi(argv[4]);
    return worker_main(argv[2], scale < 1 ? 1 : scale);
  }
  bool quick = false, verbose = false;
  int reps = -1, scale = -1, timeout_s = -1;
  std::string only, allocs;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto need = [&] { return bench::option_value(argc, argv, i, "alloc_bench"); };
    if (a == "--help" || a == "-h") {
      usage(stdout);
      return 0;
    } else if (a == "--quick") quick = true;
    else if (a == "--verbose" || a == "-v") verbose = true;
    else if (a == "--reps") reps = std::atoi(need());
    else if (a == "--scale") scale = std::atoi(need());
    else if (a == "--timeout") timeout_s = std::atoi(need());
    else if (a == "--only") only = need();
    else if (a == "--allocators") allocs = need();
    else {
      std::fprintf(stderr, "alloc_bench: unknown option %s\n", a.c_str());
      usage(stderr);
      return 2;
    }
  }
  if (reps < 1) reps = quick ? 5 : 7;
  if (scale < 1) scale = quick ? 1 : 4;
  if (timeout_s < 1) timeout_s = quick ? 15 : 120;

  g_self = bench::self_exe();
  if (g_self.empty()) return 1;

  std::vector<allocator> all = find_allocators();
  std::vector<allocator> als;
  for (auto& a : all) {
    if (!in_list(allocs, a.name)) continue;
    if (!a.available) {
      std::printf("note: skipping %s: %s\n", a.name.c_str(), a.note.c_str());
      continue;
    }
    als.push_back(a);
  }
  std::vector<const workload*> wls;
  for (const workload& w : k_workloads)
    if (in_list(only, w.name)) wls.push_back(&w);
  if (als.empty() || wls.empty()) {
    std::fprintf(stderr, "alloc_bench: nothing to run\n");
    return 2;
  }
  std::printf("alloc_bench: %s mode, %d reps interleaved, scale %d, %ld CPUs\n", quick ? "quick" : "full", reps, scale,
              sysconf(_SC_NPROCESSORS_ONLN));
  for (auto& a : als) std::printf("  %-9s %s\n", a.name.c_str(), a.path.empty() ? "(no LD_PRELOAD)" : a.path.c_str());
  std::fflush(stdout);

  const size_t NA = als.size(), NW = wls.size();
  // results[w][a] = list of successful runs; failed[w][a] = first error.
  std::vector<std::vector<std::vector<run_result>>> results(NW, std::vector<std::vector<run_result>>(NA));
  std::vector<std::vector<std::string>> failed(NW, std::vector<std::string>(NA));
  std::uint64_t t_start = now_ns();
  int reps_done = 0;
  for (int r = 0; r < reps; ++r) {
    // Quick mode keeps to its time budget: no repetition that would end past ~50 s.
    double el = double(now_ns() - t_start) / 1e9;
    if (quick && r >= 2 && el + el / r > 50.0) {
      std::printf("  (quick: stopping after %d reps, %.1f s, to stay under the 60 s budget)\n", r, el);
      break;
    }
    reps_done = r + 1;
    for (size_t w = 0; w < NW; ++w) {
      for (size_t k = 0; k < NA; ++k) {
        size_t ai = (k + size_t(r)) % NA;  // rotate the order per repetition
        if (!failed[w][ai].empty()) continue;
        run_result res = run_worker(als[ai], wls[w]->name, scale, timeout_s);
        if (!res.ok) {
          failed[w][ai] = res.error;
          std::printf("  ! %s under %s: %s (dropped from this workload)\n", wls[w]->name, als[ai].name.c_str(),
                      res.error.c_str());
          std::fflush(stdout);
          continue;
        }
        if (verbose)
          std::printf("  rep %d %-15s %-9s %9.2f ms  maxrss %7.1f MiB  hwm %7.1f MiB  sum %016" PRIx64 "\n", r,
                      wls[w]->name, als[ai].name.c_str(), res.ms, res.maxrss_kb / 1024.0, res.hwm_kb / 1024.0,
                      res.checksum);
        results[w][ai].push_back(res);
      }
    }
  }
  // Process overhead: an empty worker per allocator, interleaved like the rest.
  std::vector<std::vector<run_result>> noop(NA);
  for (int r = 0; r < std::max(reps_done, 1); ++r)
    for (size_t k = 0; k < NA; ++k) {
      size_t ai = (k + size_t(r)) % NA;
      run_result res = run_worker(als[ai], k_noop.name, 1, timeout_s);
      if (res.ok) noop[ai].push_back(res);
    }
  double total_s = double(now_ns() - t_start) / 1e9;

  auto idx = [&](const char* name) -> int {
    for (size_t k = 0; k < NA; ++k)
      if (als[k].name == name) return int(k);
    return -1;
  };
  int ije = idx("jemalloc"), igl = idx("glibc"), ivm = idx("vmrt");

  // Checksums: every run of a workload must agree, whatever the allocator.
  std::vector<bool> sum_ok(NW, true);
  for (size_t w = 0; w < NW; ++w) {
    bool have = false;
    std::uint64_t ref = 0;
    for (size_t k = 0; k < NA; ++k)
      for (auto& x : results[w][k]) {
        if (!have) {
          ref = x.checksum;
          have = true;
        } else if (x.checksum != ref) {
          sum_ok[w] = false;
        }
      }
  }

  std::vector<double> med_ms(NW * NA, NAN), med_rss(NW * NA, NAN), med_pss(NW * NA, NAN);
  for (size_t w = 0; w < NW; ++w)
    for (size_t k = 0; k < NA; ++k) {
      std::vector<double> t, rs, ps;
      for (auto& x : results[w][k]) {
        t.push_back(x.ms);
        rs.push_back(double(x.maxrss_kb) / 1024.0);
        if (x.pss_peak_kb > 0) ps.push_back(double(x.pss_peak_kb) / 1024.0);
      }
      med_ms[w * NA + k] = median(t);
      med_rss[w * NA + k] = median(rs);
      med_pss[w * NA + k] = median(ps);
    }

  std::printf("\nMedians of %d interleaved runs (time: workload only; RSS: ru_maxrss of the worker process).\n", reps_done);
  std::printf("speed vs X = X's time / this time (>1: faster than X); RSS vs X = this RSS / X's RSS (<1: smaller).\n");
  for (size_t w = 0; w < NW; ++w) {
    std::printf("\n%s (%d thread%s): %s%s   checksum %s\n", wls[w]->name, wls[w]->threads,
                wls[w]->threads > 1 ? "s" : "", wls[w]->what,
                scale == 1 ? "" : (" [counts and sizes x" + std::to_string(scale) + "]").c_str(),
                sum_ok[w] ? "identical" : "MISMATCH");
    bool has_pss = false;
    for (size_t k = 0; k < NA; ++k)
      if (!std::isnan(med_pss[w * NA + k])) has_pss = true;
    std::printf("  %-9s %10s %9s %9s %11s %9s %9s%s\n", "allocator", "time ms", "vs jemal", "vs glibc", "peakRSS MiB",
                "vs jemal", "vs glibc", has_pss ? "  sampled peak Pss MiB" : "");
    for (size_t k = 0; k < NA; ++k) {
      double t = med_ms[w * NA + k], rs = med_rss[w * NA + k];
      if (!failed[w][k].empty() && results[w][k].empty()) {
        std::printf("  %-9s  FAILED: %s\n", als[k].name.c_str(), failed[w][k].c_str());
        continue;
      }
      double tj = ije >= 0 ? med_ms[w * NA + size_t(ije)] : NAN, tg = igl >= 0 ? med_ms[w * NA + size_t(igl)] : NAN;
      double rj = ije >= 0 ? med_rss[w * NA + size_t(ije)] : NAN, rg = igl >= 0 ? med_rss[w * NA + size_t(igl)] : NAN;
      std::printf("  %-9s %10.2f %9.2f %9.2f %11.1f %9.2f %9.2f", als[k].name.c_str(), t, tj / t, tg / t, rs, rs / rj,
                  rs / rg);
      if (has_pss) std::printf("  %10.1f", med_pss[w * NA + k]);
      if (!failed[w][k].empty()) std::printf("  (later run failed: %s)", failed[w][k].c_str());
      std::printf("\n");
    }
  }

  std::printf("\nProcess overhead (empty worker; not part of the timed workloads): exec to exit, and its RSS.\n");
  std::printf("  %-9s %12s %14s\n", "allocator", "process ms", "baseline RSS MiB");
  for (size_t k = 0; k < NA; ++k) {
    std::vector<double> pm, rs;
    for (auto& x : noop[k]) {
      pm.push_back(x.process_ms);
      rs.push_back(double(x.maxrss_kb) / 1024.0);
    }
    if (pm.empty()) std::printf("  %-9s  FAILED\n", als[k].name.c_str());
    else std::printf("  %-9s %12.2f %14.1f\n", als[k].name.c_str(), median(pm), median(rs));
  }

  std::printf("\nvmrt targets:\n");
  if (ivm < 0) {
    std::printf("  vmrt shim not run (%s): no targets evaluated\n",
                all.back().available ? "excluded by --allocators" : all.back().note.c_str());
  } else if (ije < 0) {
    std::printf("  jemalloc not run: no targets evaluated\n");
  }
  std::vector<double> sp(NW, NAN), rr(NW, NAN);
  for (size_t w = 0; w < NW; ++w) {
    if (ivm < 0 || ije < 0) continue;
    sp[w] = med_ms[w * NA + size_t(ije)] / med_ms[w * NA + size_t(ivm)];
    rr[w] = med_rss[w * NA + size_t(ivm)] / med_rss[w * NA + size_t(ije)];
    auto line = [&](const char* what, double v, bool pass) {
      if (std::isnan(v)) std::printf("  %-15s %-31s:   n/a  (vmrt run failed)\n", wls[w]->name, what);
      else std::printf("  %-15s %-31s: %5.2fx  %s\n", wls[w]->name, what, v, pass ? "PASS" : "MISS");
    };
    if (wls[w]->target == target_kind::speed_ge_1) line("throughput >= jemalloc", sp[w], sp[w] >= 1.0);
    else if (wls[w]->target == target_kind::speed_ge_08) line("throughput >= 0.8x jemalloc", sp[w], sp[w] >= 0.8);
    if (wls[w]->rss_target) {
      line("peak RSS <= 1.5x jemalloc", rr[w], rr[w] <= 1.5);
      // RSS counts a page once per mapping: a frame mapped both in a direct map and in
      // the heap counts twice.  Pss divides it between its mappings; shown beside.
      double pv = med_pss[w * NA + size_t(ivm)], pj = med_pss[w * NA + size_t(ije)];
      if (!std::isnan(pv) && !std::isnan(pj))
        std::printf("  %-15s %-31s: %5.2fx  (informational: Pss counts each page once)\n", wls[w]->name,
                    "sampled peak Pss vs jemalloc", pv / pj);
    }
    if (!sum_ok[w]) std::printf("  %-15s CHECKSUM MISMATCH across allocators\n", wls[w]->name);
  }
  std::printf("\ntotal %.1f s\n", total_s);
  for (size_t w = 0; w < NW; ++w) bench::print_metric(std::string("speedup ") + wls[w]->name, sp[w]);
  for (size_t w = 0; w < NW; ++w) bench::print_metric(std::string("rss_ratio ") + wls[w]->name, rr[w]);
  bool all_sums = std::all_of(sum_ok.begin(), sum_ok.end(), [](bool b) { return b; });
  return all_sums ? 0 : 1;
}
