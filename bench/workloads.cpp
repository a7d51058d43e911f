// workloads.cpp — the worker side of alloc_bench and allocsuite: the allocator
// workloads and the worker's result line (see workloads.h).  Plain C style inside the
// workloads: malloc/free/realloc, static arrays, pthreads.

#include "bench/workloads.h"

#include <algorithm>
#include <atomic>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include <dlfcn.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <unistd.h>

#include "bench/bench_common.h"

namespace bench {
namespace {

// ---------------------------------------------------------------------------------
// Worker-side helpers (no allocation)
// ---------------------------------------------------------------------------------

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

// base * scale as a count, at least 1.
inline std::uint64_t cnt(std::uint64_t base, double scale) {
  double v = double(base) * scale;
  return v < 1.0 ? 1 : std::uint64_t(v);
}
// Sizes scale up with the counts but never below their base.
inline double size_scale(double scale) { return scale < 1.0 ? 1.0 : scale; }

// Bytes asked for and not yet freed, per thread, and its peak.  Each thread adds its
// own peak to g_req_peak when it ends: the sum of per-thread peaks (the true peak of
// the sum when the threads peak together, as the phased workloads do; an upper bound
// otherwise).
std::atomic<std::uint64_t> g_req_peak{0};
struct req_track {
  std::uint64_t live = 0, peak = 0;
  void add(std::uint64_t n) {
    live += n;
    if (live > peak) peak = live;
  }
  void sub(std::uint64_t n) { live -= n; }
  void publish() { g_req_peak.fetch_add(peak, std::memory_order_relaxed); }
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

// A "Key:  N kB" line of /proc/self/status, in kB; -1 when it cannot be read.
long status_kb(const char* key) {
  char buf[8192];
  int fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0) return -1;
  buf[n] = 0;
  return parse_kb(buf, key);
}

long vm_hwm_kb() { return status_kb("VmHWM:"); }

const char* g_prog = "bench";

void die(const char* what) {
  std::fprintf(stderr, "%s worker: %s\n", g_prog, what);
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
  req_track req;
  for (std::uint64_t i = 0; i < a->ops; ++i) {
    std::uint32_t s = r.below(a->slots);
    if (obj[s]) {
      unsigned char t = tag_of(s, gen[s]);
      if (obj[s][0] != t || obj[s][sz[s] - 1] != (unsigned char)(t ^ 0x5a)) die("small_churn: corrupted object");
      h = mix(h, std::uint64_t(obj[s][0]) + sz[s]);
      req.sub(sz[s]);
      free(obj[s]);
    }
    std::uint32_t n = small_size(r);
    req.add(n);
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
  req.publish();
  a->checksum = h;
  return nullptr;
}

std::uint64_t run_small_churn(const worker_params& p) {
  churn_args a{1, cnt(5000000, p.scale), 1u << 15, 0};
  churn_thread(&a);
  return a.checksum;
}

// Two independent churn threads.
std::uint64_t run_churn_2t(const worker_params& p) {
  churn_args a[2] = {{11, cnt(4000000, p.scale), 1u << 15, 0}, {12, cnt(4000000, p.scale), 1u << 15, 0}};
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
  r.total = cnt(2000000, p.scale);
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
  const std::uint32_t max_len = std::uint32_t(16384 * size_scale(p.scale));
  const std::uint64_t appends = cnt(1500000, p.scale);
  req_track req;
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
    req.sub(len[i]);
    free(buf[i]);
    buf[i] = nullptr;
  };
  for (std::uint64_t k = 0; k < appends; ++k) {
    std::uint32_t i = r.below(nbuf);
    std::uint32_t add = r.range(1, 96);
    std::uint32_t nl = len[i] + add;
    unsigned char* q = static_cast<unsigned char*>(realloc(buf[i], nl));
    if (!q) die("realloc failed");
    req.add(add);
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
  req.publish();
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
  std::uint32_t size;  // bytes asked for this header
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
  double scale;
  std::uint64_t checksum;
};

void* server_thread(void* vp) {
  server_args* a = static_cast<server_args*>(vp);
  rng r(41 + a->thread);
  const std::uint32_t max_inflight = std::uint32_t(cnt(4096, a->scale));
  const std::uint32_t cache_cap = std::uint32_t(cnt(4096, a->scale));
  const std::uint64_t requests = cnt(200000, a->scale);
  const std::uint32_t phase_len = std::uint32_t(cnt(20000, a->scale));  // requests per phase
  req_track req;
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
      req.sub(q->len[b]);
      free(q->buf[b]);
    }
    h = mix(h, q->id);
    req.sub(q->size);
    free(q);
    inflight[k] = inflight[--n_inflight];
  };
  auto evict = [&](std::uint32_t k) {
    h = mix(h, check(cache[k], cache_len[k], (unsigned char)cache_len[k]));
    req.sub(cache_len[k]);
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
    std::uint32_t qsize = r.range(128, 512);
    request* q = static_cast<request*>(malloc(qsize));
    if (!q) die("malloc failed");
    req.add(qsize);
    q->size = qsize;
    q->id = std::uint32_t(i);
    q->nbuf = r.range(1, 8);
    for (std::uint32_t b = 0; b < q->nbuf; ++b) {
      std::uint32_t n = mixed_size(r);
      q->buf[b] = static_cast<unsigned char*>(malloc(n));
      if (!q->buf[b]) die("malloc failed");
      q->len[b] = n;
      req.add(n);
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
      req.add(n);
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
  req.publish();
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
// The suite's own workloads, written from the published descriptions
// ---------------------------------------------------------------------------------

void start_thread(pthread_t* t, void* (*fn)(void*), void* arg) {
  if (pthread_create(t, nullptr, fn, arg) != 0) die("pthread_create failed");
}

// Run fn on a[0..threads): a[0] on this thread, the others on threads of their own, and
// return once all have finished.
template <class A> void run_on_threads(A* a, int threads, void* (*fn)(void*)) {
  pthread_t t[16];
  if (threads > 16) die("too many threads");
  for (int i = 1; i < threads; ++i) start_thread(&t[i], fn, &a[i]);
  fn(&a[0]);
  for (int i = 1; i < threads; ++i) pthread_join(t[i], nullptr);
}

// Larson-style server simulation (Larson and Krishnan, "Memory Allocation for
// Long-Running Server Applications", ISMM 1998): each simulated server thread owns an
// array of blocks of random size; it repeatedly frees a random block and allocates a
// new one in its place; after a number of rounds the thread hands its array to a
// freshly created thread and exits, so blocks are freed by threads other than the one
// that allocated them and thread-exit handling matters.  The main thread allocates the
// initial blocks (more cross-thread frees).  Two lineages run at once.
struct larson_lineage {
  unsigned char** blk;
  std::uint32_t* len;
  std::uint32_t nslots;
  std::uint64_t ops_per_gen;
  std::uint32_t gens_left;
  rng r;
  std::uint64_t checksum;
  req_track req;
};
pthread_mutex_t g_larson_mu = PTHREAD_MUTEX_INITIALIZER;
pthread_cond_t g_larson_cv = PTHREAD_COND_INITIALIZER;
int g_larson_done = 0;

inline unsigned char larson_tag(std::uint32_t slot, std::uint32_t n) { return (unsigned char)(slot * 31 + n); }

void* larson_thread(void* vp) {
  larson_lineage* L = static_cast<larson_lineage*>(vp);
  for (std::uint64_t k = 0; k < L->ops_per_gen; ++k) {
    std::uint32_t s = L->r.below(L->nslots);
    unsigned char* p = L->blk[s];
    std::uint32_t n = L->len[s];
    if (p[0] != larson_tag(s, n) || p[n - 1] != (unsigned char)~larson_tag(s, n)) die("larson: corrupted block");
    L->checksum = mix(L->checksum, n);
    L->req.sub(n);
    free(p);
    n = L->r.range(8, 1000);
    p = static_cast<unsigned char*>(malloc(n));
    if (!p) die("malloc failed");
    L->req.add(n);
    p[0] = larson_tag(s, n);
    p[n - 1] = (unsigned char)~larson_tag(s, n);
    L->blk[s] = p;
    L->len[s] = n;
  }
  if (--L->gens_left > 0) {
    pthread_t t;
    pthread_attr_t at;
    pthread_attr_init(&at);
    pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
    if (pthread_create(&t, &at, larson_thread, L) != 0) die("pthread_create failed");
    pthread_attr_destroy(&at);
  } else {
    pthread_mutex_lock(&g_larson_mu);
    ++g_larson_done;
    pthread_cond_signal(&g_larson_cv);
    pthread_mutex_unlock(&g_larson_mu);
  }
  return nullptr;
}

std::uint64_t run_larson(const worker_params& p) {
  constexpr int lineages = 2;
  static larson_lineage L[lineages] = {{nullptr, nullptr, 0, 0, 0, rng(51), 0, {}}, {nullptr, nullptr, 0, 0, 0, rng(52), 0, {}}};
  std::uint64_t h = 0;
  for (int l = 0; l < lineages; ++l) {
    L[l].nslots = 1000;
    L[l].ops_per_gen = 10000;
    L[l].gens_left = std::uint32_t(cnt(200, p.scale));
    L[l].blk = static_cast<unsigned char**>(calloc(L[l].nslots, sizeof(void*)));
    L[l].len = static_cast<std::uint32_t*>(calloc(L[l].nslots, sizeof(std::uint32_t)));
    if (!L[l].blk || !L[l].len) die("calloc failed");
    for (std::uint32_t s = 0; s < L[l].nslots; ++s) {
      std::uint32_t n = L[l].r.range(8, 1000);
      unsigned char* q = static_cast<unsigned char*>(malloc(n));
      if (!q) die("malloc failed");
      L[l].req.add(n);
      q[0] = larson_tag(s, n);
      q[n - 1] = (unsigned char)~larson_tag(s, n);
      L[l].blk[s] = q;
      L[l].len[s] = n;
    }
  }
  for (int l = 0; l < lineages; ++l) {
    pthread_t t;
    pthread_attr_t at;
    pthread_attr_init(&at);
    pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
    if (pthread_create(&t, &at, larson_thread, &L[l]) != 0) die("pthread_create failed");
    pthread_attr_destroy(&at);
  }
  pthread_mutex_lock(&g_larson_mu);
  while (g_larson_done < lineages) pthread_cond_wait(&g_larson_cv, &g_larson_mu);
  pthread_mutex_unlock(&g_larson_mu);
  for (int l = 0; l < lineages; ++l) {
    for (std::uint32_t s = 0; s < L[l].nslots; ++s) free(L[l].blk[s]);
    free(L[l].blk);
    free(L[l].len);
    L[l].req.publish();
    h = mix(h, L[l].checksum);
  }
  return h;
}

// cache-scratch and cache-thrash (Berger, McKinley, Blumofe and Wilson, "Hoard: A
// Scalable Memory Allocator for Multithreaded Applications", ASPLOS 2000).
// cache-scratch, passive false sharing: the main thread allocates one small object per
// thread, all at once (neighbours in memory), and hands object t to thread t, which
// frees it and then repeatedly allocates an object of the same size, writes it many
// times and frees it.  An allocator that gives the freed neighbour's memory back to a
// thread sharing its cache line with another thread's object makes the writes bounce
// the line between cores.  cache-thrash, active false sharing: the same loop with no
// hand-over; threads that allocate small objects at the same time get them from one
// cache line when the allocator does not separate threads.
constexpr std::uint32_t k_cache_obj = 8;
struct cache_args {
  unsigned char* first;  // cache-scratch: the object handed over (freed first)
  std::uint32_t thread;
  std::uint64_t iterations, repetitions;
  std::uint64_t checksum;
};

void* cache_thread(void* vp) {
  cache_args* a = static_cast<cache_args*>(vp);
  if (a->first) {
    if (a->first[0] != (unsigned char)a->thread) die("cache: corrupted handed-over object");
    free(a->first);
  }
  std::uint64_t h = 0;
  for (std::uint64_t it = 0; it < a->iterations; ++it) {
    volatile unsigned char* q = static_cast<unsigned char*>(malloc(k_cache_obj));
    if (!q) die("malloc failed");
    for (std::uint32_t j = 0; j < k_cache_obj; ++j) q[j] = 0;
    for (std::uint64_t rep = 0; rep < a->repetitions; ++rep)
      for (std::uint32_t j = 0; j < k_cache_obj; ++j) q[j] = (unsigned char)(q[j] + 1 + j);
    h += q[0] + q[k_cache_obj - 1];
    free(const_cast<unsigned char*>(q));
  }
  a->checksum = h;
  return nullptr;
}

std::uint64_t run_cache(const worker_params& p, int threads, bool scratch) {
  cache_args a[4];
  for (int i = 0; i < threads; ++i) {
    a[i] = cache_args{nullptr, std::uint32_t(i), cnt(2000, p.scale), 20000, 0};
    if (scratch) {
      a[i].first = static_cast<unsigned char*>(malloc(k_cache_obj));
      if (!a[i].first) die("malloc failed");
      memset(a[i].first, i, k_cache_obj);
    }
  }
  run_on_threads(a, threads, cache_thread);
  std::uint64_t h = a[0].checksum;
  for (int i = 1; i < threads; ++i) h = mix(h, a[i].checksum);
  return h;
}
std::uint64_t run_cache_scratch1(const worker_params& p) { return run_cache(p, 1, true); }
std::uint64_t run_cache_scratch(const worker_params& p) { return run_cache(p, 2, true); }
std::uint64_t run_cache_thrash(const worker_params& p) { return run_cache(p, 2, false); }

// xmalloc-style cross-thread frees (after Lever and Boreham, "malloc() Performance in a
// Multithreaded Linux Environment", USENIX 2000): every thread allocates batches of
// objects of random size and publishes each full batch on a shared list; every thread
// also takes batches off that list and frees them, preferring batches other threads
// made.  Most frees are remote, in both directions at once.  The checksum adds up each
// object's contents (addition: independent of which thread freed what).
constexpr std::uint32_t k_xbatch = 128;
struct xbatch {
  xbatch* next;
  std::uint32_t owner;
  unsigned char* obj[k_xbatch];
  std::uint32_t len[k_xbatch];
};
struct xmalloc_shared {
  pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
  xbatch* head = nullptr;
  std::uint32_t depth = 0;
};
xmalloc_shared g_x;
struct xmalloc_args {
  std::uint32_t thread;
  std::uint64_t batches;
  std::uint64_t sum;
};

std::uint64_t xfree_batch(xbatch* b) {
  std::uint64_t s = 0;
  for (std::uint32_t i = 0; i < k_xbatch; ++i) {
    unsigned char* o = b->obj[i];
    if (o[0] != (unsigned char)b->len[i] || o[b->len[i] - 1] != (unsigned char)(b->len[i] >> 3)) die("xmalloc: corrupted object");
    s += std::uint64_t(o[0]) + b->len[i];
    free(o);
  }
  free(b);
  return s;
}

// Take a batch off the shared list, preferring one that `self` did not make; nullptr
// when the list is empty.
xbatch* xtake(std::uint32_t self) {
  pthread_mutex_lock(&g_x.mu);
  xbatch** pp = &g_x.head;
  while (*pp && (*pp)->owner == self) pp = &(*pp)->next;
  if (!*pp && g_x.depth > 64) pp = &g_x.head;  // only our own: take one anyway, bounded memory
  xbatch* b = *pp;
  if (b) {
    *pp = b->next;
    --g_x.depth;
  }
  pthread_mutex_unlock(&g_x.mu);
  return b;
}

void* xmalloc_thread(void* vp) {
  xmalloc_args* a = static_cast<xmalloc_args*>(vp);
  rng r(61 + a->thread);
  std::uint64_t s = 0;
  for (std::uint64_t k = 0; k < a->batches; ++k) {
    xbatch* b = static_cast<xbatch*>(malloc(sizeof(xbatch)));
    if (!b) die("malloc failed");
    b->owner = a->thread;
    for (std::uint32_t i = 0; i < k_xbatch; ++i) {
      std::uint32_t n = r.below(4) == 0 ? r.range(129, 1024) : r.range(8, 128);
      unsigned char* o = static_cast<unsigned char*>(malloc(n));
      if (!o) die("malloc failed");
      o[0] = (unsigned char)n;
      o[n - 1] = (unsigned char)(n >> 3);
      b->obj[i] = o;
      b->len[i] = n;
    }
    pthread_mutex_lock(&g_x.mu);
    b->next = g_x.head;
    g_x.head = b;
    ++g_x.depth;
    pthread_mutex_unlock(&g_x.mu);
    if (xbatch* f = xtake(a->thread)) s += xfree_batch(f);
  }
  a->sum = s;
  return nullptr;
}

std::uint64_t run_xmalloc(const worker_params& p) {
  constexpr int threads = 4;
  xmalloc_args a[threads];
  for (int i = 0; i < threads; ++i) a[i] = xmalloc_args{std::uint32_t(i), cnt(10000, p.scale), 0};
  run_on_threads(a, threads, xmalloc_thread);
  std::uint64_t s = 0;
  for (int i = 0; i < threads; ++i) s += a[i].sum;
  while (g_x.head) {
    xbatch* b = g_x.head;
    g_x.head = b->next;
    s += xfree_batch(b);
  }
  return s;
}

// Symbolic algebra with many small short-lived objects (the allocation pattern of
// cfrac-like programs: every operation builds a new value and drops its inputs).
// Random expression trees over x (constants, x, +, -, *) are differentiated three
// times, each derivative simplified into a fresh tree (constant folding, x*0, x*1,
// x+0) and the previous tree freed; every tree is evaluated modulo a prime.  Nodes are
// 32 bytes; constants carry a heap digit string of 1..40 bytes (a bignum's limbs).
enum node_op : std::uint8_t { op_const, op_var, op_add, op_sub, op_mul };
struct expr {
  node_op op;
  std::uint32_t ndig;      // op_const: digits
  char* dig;               // op_const: decimal digits, most significant first
  expr* a;
  expr* b;
};
constexpr std::uint64_t k_prime = 1000000007ull;
thread_local req_track t_sym_req;

expr* node(node_op op, expr* a, expr* b) {
  expr* e = static_cast<expr*>(malloc(sizeof(expr)));
  if (!e) die("malloc failed");
  t_sym_req.add(sizeof(expr));
  e->op = op;
  e->ndig = 0;
  e->dig = nullptr;
  e->a = a;
  e->b = b;
  return e;
}

// A constant from its value modulo k_prime written as `ndig` digits (value padded by
// a deterministic digit pattern, so numbers really are up to 40 digits long).
expr* cnode_digits(const char* d, std::uint32_t n) {
  expr* e = node(op_const, nullptr, nullptr);
  e->dig = static_cast<char*>(malloc(n));
  if (!e->dig) die("malloc failed");
  t_sym_req.add(n);
  memcpy(e->dig, d, n);
  e->ndig = n;
  return e;
}
expr* cnode(std::uint64_t v) {
  char d[24];
  std::uint32_t n = 0;
  char tmp[24];
  do {
    tmp[n++] = char('0' + v % 10);
    v /= 10;
  } while (v);
  for (std::uint32_t i = 0; i < n; ++i) d[i] = tmp[n - 1 - i];
  return cnode_digits(d, n);
}
std::uint64_t cval(const expr* e) {
  std::uint64_t v = 0;
  for (std::uint32_t i = 0; i < e->ndig; ++i) v = (v * 10 + std::uint64_t(e->dig[i] - '0')) % k_prime;
  return v;
}
void free_expr(expr* e) {
  if (!e) return;
  free_expr(e->a);
  free_expr(e->b);
  if (e->dig) {
    t_sym_req.sub(e->ndig);
    free(e->dig);
  }
  t_sym_req.sub(sizeof(expr));
  free(e);
}
expr* copy_expr(const expr* e) {
  if (e->op == op_const) return cnode_digits(e->dig, e->ndig);
  return node(e->op, e->a ? copy_expr(e->a) : nullptr, e->b ? copy_expr(e->b) : nullptr);
}
expr* random_expr(rng& r, int depth) {
  if (depth == 0 || r.below(4) == 0) {
    if (r.below(2)) return node(op_var, nullptr, nullptr);
    char d[40];
    std::uint32_t n = r.range(1, 40);
    d[0] = char('1' + r.below(9));
    for (std::uint32_t i = 1; i < n; ++i) d[i] = char('0' + r.below(10));
    return cnode_digits(d, n);
  }
  static const node_op ops[3] = {op_add, op_sub, op_mul};
  return node(ops[r.below(3)], random_expr(r, depth - 1), random_expr(r, depth - 1));
}
// d/dx of e, a new tree (e untouched).
expr* diff(const expr* e) {
  switch (e->op) {
    case op_const: return cnode(0);
    case op_var: return cnode(1);
    case op_add:
    case op_sub: return node(e->op, diff(e->a), diff(e->b));
    case op_mul:
      return node(op_add, node(op_mul, diff(e->a), copy_expr(e->b)), node(op_mul, copy_expr(e->a), diff(e->b)));
  }
  return nullptr;
}
inline bool is_const(const expr* e, std::uint64_t v) { return e->op == op_const && cval(e) == v; }
// A simplified copy of e (e untouched).
expr* simplify(const expr* e) {
  if (e->op == op_const || e->op == op_var) return copy_expr(e);
  expr* a = simplify(e->a);
  expr* b = simplify(e->b);
  if (a->op == op_const && b->op == op_const) {
    std::uint64_t x = cval(a), y = cval(b), v;
    if (e->op == op_add) v = (x + y) % k_prime;
    else if (e->op == op_sub) v = (x + k_prime - y) % k_prime;
    else v = (x * y) % k_prime;
    free_expr(a);
    free_expr(b);
    return cnode(v);
  }
  if (e->op == op_mul && (is_const(a, 0) || is_const(b, 0))) {
    free_expr(a);
    free_expr(b);
    return cnode(0);
  }
  if (e->op == op_mul && is_const(a, 1)) {
    free_expr(a);
    return b;
  }
  if ((e->op == op_mul && is_const(b, 1)) || ((e->op == op_add || e->op == op_sub) && is_const(b, 0))) {
    free_expr(b);
    return a;
  }
  if (e->op == op_add && is_const(a, 0)) {
    free_expr(a);
    return b;
  }
  return node(e->op, a, b);
}
std::uint64_t eval(const expr* e, std::uint64_t x) {
  switch (e->op) {
    case op_const: return cval(e);
    case op_var: return x;
    case op_add: return (eval(e->a, x) + eval(e->b, x)) % k_prime;
    case op_sub: return (eval(e->a, x) + k_prime - eval(e->b, x)) % k_prime;
    case op_mul: return (eval(e->a, x) * eval(e->b, x)) % k_prime;
  }
  return 0;
}

std::uint64_t run_symbolic(const worker_params& p) {
  rng r(71);
  std::uint64_t h = 0;
  const std::uint64_t n = cnt(6000, p.scale);
  for (std::uint64_t k = 0; k < n; ++k) {
    expr* e = random_expr(r, 6);
    std::uint64_t x = r.below(1000) + 2;
    h = mix(h, eval(e, x));
    for (int d = 0; d < 3; ++d) {
      expr* de = diff(e);
      expr* s = simplify(de);
      free_expr(de);
      free_expr(e);
      e = s;
      h = mix(h, eval(e, x));
    }
    free_expr(e);
  }
  t_sym_req.publish();
  return h;
}

// Random sizes under several threads: four threads (on however many cores) each keep
// 4K slots and replace a random one per step with a block of log-uniform size,
// 8 B .. 32 KiB, writing its first and last byte.
struct rand_args {
  std::uint32_t thread;
  std::uint64_t ops;
  std::uint64_t checksum;
};
void* rand_thread(void* vp) {
  rand_args* a = static_cast<rand_args*>(vp);
  constexpr std::uint32_t slots = 4096;
  rng r(81 + a->thread);
  unsigned char** obj = static_cast<unsigned char**>(calloc(slots, sizeof(void*)));
  std::uint32_t* len = static_cast<std::uint32_t*>(calloc(slots, sizeof(std::uint32_t)));
  if (!obj || !len) die("calloc failed");
  req_track req;
  std::uint64_t h = 0;
  for (std::uint64_t i = 0; i < a->ops; ++i) {
    std::uint32_t s = r.below(slots);
    if (obj[s]) {
      std::uint32_t n = len[s];
      if (obj[s][0] != (unsigned char)(s + n) || obj[s][n - 1] != (unsigned char)(n >> 2)) die("rand_mt: corrupted block");
      h = mix(h, n);
      req.sub(n);
      free(obj[s]);
    }
    std::uint32_t lg = r.range(3, 14);
    std::uint32_t n = (1u << lg) + r.below(1u << lg);
    unsigned char* q = static_cast<unsigned char*>(malloc(n));
    if (!q) die("malloc failed");
    req.add(n);
    q[0] = (unsigned char)(s + n);
    q[n - 1] = (unsigned char)(n >> 2);
    obj[s] = q;
    len[s] = n;
  }
  for (std::uint32_t s = 0; s < slots; ++s) free(obj[s]);
  free(obj);
  free(len);
  req.publish();
  a->checksum = h;
  return nullptr;
}
std::uint64_t run_rand_mt(const worker_params& p) {
  constexpr int threads = 4;
  rand_args a[threads];
  for (int i = 0; i < threads; ++i) a[i] = rand_args{std::uint32_t(i), cnt(500000, p.scale), 0};
  run_on_threads(a, threads, rand_thread);
  std::uint64_t h = a[0].checksum;
  for (int i = 1; i < threads; ++i) h = mix(h, a[i].checksum);
  return h;
}

// Large blocks: malloc a 5..25 MB block, write a few pages of it (first, last and two
// in between), keep the last four blocks alive, free the oldest.  Most of every block
// is never touched.
std::uint64_t run_large_blocks(const worker_params& p) {
  constexpr std::uint32_t live = 4;
  unsigned char* blk[live] = {};
  std::uint32_t len[live] = {};
  rng r(91);
  std::uint64_t h = 0;
  auto pages = [](std::uint32_t n, std::uint32_t k) -> std::uint32_t { return std::uint32_t((std::uint64_t(n - 1) * k) / 3); };
  const std::uint64_t iters = cnt(100, p.scale);
  for (std::uint64_t i = 0; i < iters + live; ++i) {
    std::uint32_t s = std::uint32_t(i % live);
    if (blk[s]) {
      for (std::uint32_t k = 0; k < 4; ++k) {
        std::uint32_t off = pages(len[s], k);
        if (blk[s][off] != (unsigned char)(len[s] + k)) die("large_blocks: corrupted block");
      }
      h = mix(h, len[s]);
      free(blk[s]);
      blk[s] = nullptr;
    }
    if (i >= iters) continue;
    std::uint32_t n = r.range(5u << 20, 25u << 20);
    unsigned char* q = static_cast<unsigned char*>(malloc(n));
    if (!q) die("malloc failed");
    for (std::uint32_t k = 0; k < 4; ++k) q[pages(n, k)] = (unsigned char)(n + k);
    blk[s] = q;
    len[s] = n;
  }
  return h;
}

// Realloc growth to megabytes: eight buffers grow by appends of 1..64 KiB, each a
// realloc to the exact new length with the appended bytes written (a vector or string
// builder without its own slack), to targets of 1..16 MB; a buffer that reaches its
// target is verified and freed and starts again.
std::uint64_t run_realloc_big(const worker_params& p) {
  constexpr std::uint32_t nbuf = 8;
  unsigned char* buf[nbuf] = {};
  std::uint32_t len[nbuf] = {}, target[nbuf] = {}, gen[nbuf] = {};
  rng r(101);
  std::uint64_t h = 0;
  std::uint32_t next_gen = 0;
  req_track req;
  for (std::uint32_t i = 0; i < nbuf; ++i) {
    gen[i] = next_gen++;
    target[i] = r.range(1u << 20, 16u << 20);
  }
  auto verify_and_free = [&](std::uint32_t i) {
    for (std::uint32_t j = 0; j < len[i]; j += 4093)
      if (buf[i][j] != (unsigned char)((j >> 12) + gen[i])) die("realloc_big: content lost");
    h = mix(h, len[i]);
    req.sub(len[i]);
    free(buf[i]);
    buf[i] = nullptr;
    len[i] = 0;
  };
  const std::uint64_t appends = cnt(6000, p.scale);
  for (std::uint64_t k = 0; k < appends; ++k) {
    std::uint32_t i = r.below(nbuf);
    std::uint32_t add = r.range(1, 65536);
    std::uint32_t nl = len[i] + add;
    unsigned char* q = static_cast<unsigned char*>(realloc(buf[i], nl));
    if (!q) die("realloc failed");
    req.add(add);
    for (std::uint32_t j = len[i]; j < nl; ++j) q[j] = (unsigned char)((j >> 12) + gen[i]);
    buf[i] = q;
    len[i] = nl;
    if (nl >= target[i]) {
      verify_and_free(i);
      gen[i] = next_gen++;
      target[i] = r.range(1u << 20, 16u << 20);
    }
  }
  for (std::uint32_t i = 0; i < nbuf; ++i)
    if (buf[i]) verify_and_free(i);
  req.publish();
  return h;
}

// RSS probe: what an untouched malloc(64 MiB) adds to the resident set (VmRSS before
// and after, in kB, reported as the result's `extra`).  The block is freed untouched.
std::int64_t g_extra = -1;
long vm_rss_kb() { return status_kb("VmRSS:"); }
std::uint64_t run_malloc64_probe(const worker_params&) {
  void* warm = malloc(64);  // the allocator is initialised before the first reading
  long before = vm_rss_kb();
  void* q = malloc(64u << 20);
  long after = vm_rss_kb();
  if (!q || !warm) die("malloc failed");
  g_extra = after - before;
  free(q);
  free(warm);
  return 0;
}

std::uint64_t run_noop(const worker_params&) { return 0; }

}  // namespace

const workload k_alloc_bench_workloads[] = {
    {"small_churn", 1, run_small_churn, "1 thread, 5M x (free random slot, malloc 8..512 B), 32K slots"},
    {"churn_2t", 2, run_churn_2t, "2 independent small_churn threads, 4M ops and 32K slots each"},
    {"prodcons", 2, run_prodcons, "2M 16..256 B messages malloc'd by one thread, freed by the other"},
    {"realloc_growth", 1, run_realloc_growth, "1.5M appends of 1..96 B, realloc to exact length, 512 buffers to 1..16 KiB"},
    {"mixed_server", 2, run_mixed_server,
     "2 threads, 200K requests each, 16 B..64 KiB buffers, up to 4K in flight per thread, working set grows/shrinks"},
};
const int k_alloc_bench_nworkloads = int(sizeof k_alloc_bench_workloads / sizeof k_alloc_bench_workloads[0]);

const workload k_suite_workloads[] = {
    {"larson", 2, run_larson, "Larson server: 2 lineages x 200 thread generations x 10K replace-a-random-block (8..1000 B)"},
    {"cache_scratch1", 1, run_cache_scratch1, "Hoard cache-scratch, 1 thread: free a handed-over 8 B object, 2K x (malloc 8 B, 20K writes of it, free)"},
    {"cache_scratch", 2, run_cache_scratch, "Hoard cache-scratch (passive false sharing), 2 threads"},
    {"cache_thrash", 2, run_cache_thrash, "Hoard cache-thrash (active false sharing), 2 threads, 2K x (malloc 8 B, 20K writes of it, free)"},
    {"xmalloc", 4, run_xmalloc, "4 threads x 10K batches of 128 objects (8..1024 B) freed by other threads"},
    {"symbolic", 1, run_symbolic, "6K random expression trees differentiated 3x with simplification (32 B nodes, 1..40 B digit strings)"},
    {"rand_mt", 4, run_rand_mt, "4 threads x 500K replace-a-random-slot, log-uniform 8 B..32 KiB, 4K slots each"},
    {"large_blocks", 1, run_large_blocks, "100 x malloc 5..25 MB, write 4 pages, free (4 live)"},
    {"realloc_big", 1, run_realloc_big, "6K appends of 1..64 KiB to 8 buffers, exact-length realloc, targets 1..16 MB"},
    {"malloc64_probe", 1, run_malloc64_probe, "RSS added by an untouched malloc(64 MiB)"},
};
const int k_suite_nworkloads = int(sizeof k_suite_workloads / sizeof k_suite_workloads[0]);

const workload k_noop = {"noop", 1, run_noop, "empty worker"};

const workload* find_workload(const char* name) {
  for (int i = 0; i < k_alloc_bench_nworkloads; ++i)
    if (std::strcmp(k_alloc_bench_workloads[i].name, name) == 0) return &k_alloc_bench_workloads[i];
  for (int i = 0; i < k_suite_nworkloads; ++i)
    if (std::strcmp(k_suite_workloads[i].name, name) == 0) return &k_suite_workloads[i];
  if (std::strcmp(name, k_noop.name) == 0) return &k_noop;
  return nullptr;
}

int worker_main(const char* prog, const char* name, double scale) {
  g_prog = prog;
  const workload* w = find_workload(name);
  if (!w) {
    std::fprintf(stderr, "%s worker: unknown workload %s\n", prog, name);
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
  std::uint64_t req = g_req_peak.load();
  // One line on stdout for the driver.
  std::printf("RESULT %" PRIu64 " %016" PRIx64 " %ld %ld %ld %s req=%lld extra=%lld\n", ns, sum, vm_hwm_kb(), g_peak_rss_kb,
              g_peak_pss_kb, provider, req ? (long long)req : -1LL, (long long)g_extra);
  std::fflush(stdout);
  return 0;
}

}  // namespace bench
