// kmem_magazine.cpp — per-thread magazines and the depot (Bonwick & Adams 2001).
//
// Each thread has, per bucket, a loaded and a previous magazine.  malloc pops
// from loaded, free pushes onto it (kmem_malloc.cpp inlines both).  When loaded
// runs dry / fills up, the slow paths here swap it with previous, or exchange a
// magazine with the bucket's depot under the depot lock, or fill/empty it
// from/to the bucket layer.  The depot keeps at most depot_max_full full
// magazines per bucket; beyond that, rounds go back to their clusters, where the
// bucket's high-water mark decides whether pages go back to the page source.
//
// A thread's cache is drained on thread exit (pthread key destructor), by
// thread_cache_drain().  In a forked
// child, the caches of threads that did not survive the fork are abandoned (see
// magazines_fork_child).
#include <cstring>
#include "vm/vm_sys.h"
#include <new>
#include <pthread.h>
#include <sys/mman.h>

#include "kmem/kmem_assert.h"
#include "kmem/kmem_internal.h"

namespace vmrt::kmem::detail {

__thread tcache* t_tc __attribute__((tls_model("initial-exec"))) = nullptr;
__thread tcache t_cache __attribute__((tls_model("initial-exec")));

namespace {
__thread bool t_dead __attribute__((tls_model("initial-exec"))) = false;
pthread_key_t g_key;
bool g_key_ok = false;

inline constexpr std::size_t kMetaChunk = std::size_t{256} << 10;

bool is_real(const magazine* m) { return m->cap != 0; }

// => takes the meta lock.  An empty magazine for bucket indx (depots[indx].cap
// rounds: only that many are allocated, so small-round magazines of the large
// buckets stay small); null when mmap fails.  Recycled magazines are kept per
// bucket, so a recycled one always has this bucket's capacity.
magazine* magazine_new(unsigned indx) {
  const std::uint32_t cap = g.depots[indx].cap;
  magazine* m;
  {
    kmem_guard guard(g.meta_lock);
    m = g.free_magazines[indx];
    if (m != nullptr) g.free_magazines[indx] = m->next;
  }
  if (m == nullptr) {
    void* mem = meta_alloc(offsetof(magazine, rounds) + std::size_t{cap} * sizeof(void*));
    if (mem == nullptr) return nullptr;
    m = static_cast<magazine*>(mem);
    kmem_guard guard(g.meta_lock);
    ++g.magazines_made;
  }
  m->next = nullptr;
  m->count = 0;
  m->cap = cap;
  return m;
}

// => depot lock not held.  Takes an empty magazine from the depot, else makes one.
magazine* magazine_get_empty(unsigned indx) {
  depot& d = g.depots[indx];
  {
    kmem_guard guard(d.lock);
    if (d.empty != nullptr) {
      magazine* m = d.empty;
      d.empty = m->next;
      --d.nempty;
      return m;
    }
  }
  return magazine_new(indx);
}

// => depot lock not held.  Keeps an empty magazine in the depot (bounded), else
// recycles it.
void magazine_put_empty(unsigned indx, magazine* m) {
  depot& d = g.depots[indx];
  m->count = 0;
  {
    kmem_guard guard(d.lock);
    if (d.nempty < d.max_full) {
      m->next = d.empty;
      d.empty = m;
      ++d.nempty;
      return;
    }
  }
  kmem_guard guard(g.meta_lock);
  m->next = g.free_magazines[indx];
  g.free_magazines[indx] = m;
}

// Returns every round of m to the bucket layer; m becomes empty.
void magazine_empty_to_bucket(unsigned indx, magazine* m) {
  std::uint32_t n = m->count;
  if (n != 0) bucket_free(indx, m->rounds, n);
  m->count = 0;
}

// Loads m into the bucket record (its count moves into the record).
void load(tc_bucket& b, magazine* m) {
  b.base = m->rounds;
  b.top = m->rounds + m->count;
  b.limit = m->rounds + m->cap;
}

// Takes the loaded magazine out of the record (its count moves back into it).
magazine* unload(tc_bucket& b) {
  magazine* m = mag_of(b.base);
  if (is_real(m)) m->count = tc_count(b);
  return m;
}

// Drains tc's magazines into the bucket layer.  => owner thread (or the only
// thread, after fork); takes depot and bucket locks.
void tcache_drain(tcache* tc) {
  for (unsigned i = kMinBucket; i <= kMaxBucket; ++i) {
    magazine* ms[2] = {unload(tc->b[i]), tc->previous[i]};
    load(tc->b[i], &g_empty_magazine);
    tc->previous[i] = &g_empty_magazine;
    for (magazine* m : ms) {
      if (!is_real(m)) continue;
      magazine_empty_to_bucket(i, m);
      magazine_put_empty(i, m);
    }
  }
}

void tcache_init(tcache* tc) {
  std::memset(static_cast<void*>(tc), 0, sizeof(tcache));
  for (unsigned i = 0; i < kNumIndx; ++i) {
    load(tc->b[i], &g_empty_magazine);
    tc->b[i].size = static_cast<std::int64_t>(bucket_size(i));
    tc->previous[i] = &g_empty_magazine;
  }
}

// => threads lock held.
void tcache_unlink_locked(tcache* tc) {
  if (tc->prev != nullptr) tc->prev->next = tc->next;
  else g.threads = tc->next;
  if (tc->next != nullptr) tc->next->prev = tc->prev;
  tc->next = nullptr;
  tc->prev = nullptr;
  ++g.threads_exited;
}

// Thread exit: drain, flush, retire the cache.  Later frees in this thread (other
// key destructors) go to the buckets directly.
void tcache_destructor(void* arg) {
  tcache* tc = static_cast<tcache*>(arg);
  t_tc = nullptr;
  t_dead = true;
  if (tc == nullptr) return;
  tcache_drain(tc);
  tcache_flush_stats(tc);
  kmem_guard guard(g.threads_lock);
  tcache_unlink_locked(tc);
}

}  // namespace

magazine g_empty_magazine{};

void* meta_alloc(std::size_t bytes) {
  bytes = (bytes + 63) & ~std::size_t{63};
  KMEM_ASSERT(bytes <= kMetaChunk, "metadata object too large");
  kmem_guard guard(g.meta_lock);
  if (g.meta_left < bytes) {
    void* p = vmrt::sys::mmap(nullptr, kMetaChunk, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return nullptr;
    g.meta_cur = static_cast<char*>(p);
    g.meta_left = kMetaChunk;
  }
  void* r = g.meta_cur;
  g.meta_cur += bytes;
  g.meta_left -= bytes;
  return r;
}

void magazines_init() {
  for (unsigned i = kMinBucket; i <= kMaxBucket; ++i) {
    depot& d = g.depots[i];
    d.max_full = depot_max_full(i);
  }
  g_key_ok = pthread_key_create(&g_key, tcache_destructor) == 0;
}

tcache* tcache_get() {
  tcache* tc = t_tc;
  if (tc != nullptr) return tc;
  if (t_dead || !g.caches || !g_key_ok) return nullptr;
  tc = &t_cache;
  tcache_init(tc);
  {
    kmem_guard guard(g.threads_lock);
    tc->next = g.threads;
    tc->prev = nullptr;
    if (g.threads != nullptr) g.threads->prev = tc;
    g.threads = tc;
  }
  pthread_setspecific(g_key, tc);
  t_tc = tc;
  return tc;
}

namespace {
// Slow start (as tcmalloc's per-thread lists grow): a thread's first refill of a class from
// the bucket takes about a page of rounds, each later one twice as many, up to the
// magazine's cap.  A full 256-round magazine of a 256-byte class is 16 pages: a program
// that mallocs one such block touched them all, and 200-odd pages over its classes.
std::uint32_t refill_rounds(tcache* tc, unsigned indx, std::uint32_t cap) {
  std::uint32_t want = tc->fill[indx];
  if (want == 0) {
    want = static_cast<std::uint32_t>(kPageSize / bucket_size(indx));
    if (want == 0) want = 1;
  }
  if (want > cap) want = cap;
  tc->fill[indx] = static_cast<std::uint16_t>(want * 2 > cap ? cap : want * 2);
  return want;
}
}  // namespace

void* magazine_alloc_slow(tcache* tc, unsigned indx) {
  tc_bucket& B = tc->b[indx];
  magazine*& P = tc->previous[indx];
  depot& d = g.depots[indx];
  if (P->count != 0) {
    magazine* L = unload(B);
    load(B, P);
    P = L;
  } else {
    // Both empty: exchange previous for a full magazine from the depot.
    magazine* full = nullptr;
    {
      kmem_guard guard(d.lock);
      if (d.full != nullptr) {
        full = d.full;
        d.full = full->next;
        --d.nfull;
        if (is_real(P)) {
          P->next = d.empty;
          d.empty = P;
          ++d.nempty;
          P = &g_empty_magazine;
        }
      }
    }
    if (full != nullptr) {
      d.exchanges.fetch_add(1, std::memory_order_relaxed);
      P = unload(B);
      load(B, full);
    } else {
      // Depot has nothing: fill the loaded magazine from the bucket.
      if (!is_real(mag_of(B.base))) {
        magazine* m = magazine_get_empty(indx);
        if (m == nullptr) {
          void* p = nullptr;
          return bucket_alloc(indx, &p, 1) == 1 ? p : nullptr;
        }
        load(B, m);
      }
      std::uint32_t n = bucket_alloc(indx, B.base, refill_rounds(tc, indx, static_cast<std::uint32_t>(B.limit - B.base)));
      B.top = B.base + n;
      if (n == 0) return nullptr;
    }
  }
  KMEM_ASSERT(B.top > B.base, "loaded magazine empty after refill");
  return *--B.top;
}

void magazine_free_slow(tcache* tc, unsigned indx, void* p) {
  tc_bucket& B = tc->b[indx];
  magazine*& P = tc->previous[indx];
  depot& d = g.depots[indx];
  if (is_real(P) && P->count < P->cap) {
    magazine* L = unload(B);
    load(B, P);
    P = L;
  } else if (!is_real(mag_of(B.base))) {
    magazine* m = magazine_get_empty(indx);
    if (m == nullptr) {
      bucket_free(indx, &p, 1);
      return;
    }
    load(B, m);
  } else {
    // Loaded full, previous full (or absent): previous goes to the depot.
    magazine* give = is_real(P) ? P : nullptr;
    magazine* empty = nullptr;
    {
      kmem_guard guard(d.lock);
      if (give != nullptr && d.nfull < d.max_full) {
        give->next = d.full;
        d.full = give;
        ++d.nfull;
        give = nullptr;
      }
      if (d.empty != nullptr) {
        empty = d.empty;
        d.empty = empty->next;
        --d.nempty;
      }
    }
    d.exchanges.fetch_add(1, std::memory_order_relaxed);
    if (give != nullptr) {
      // Depot full: the rounds go back to their clusters.
      magazine_empty_to_bucket(indx, give);
      if (empty == nullptr) empty = give;
      else magazine_put_empty(indx, give);
    }
    if (empty == nullptr) empty = magazine_new(indx);
    if (empty == nullptr) {
      bucket_free(indx, &p, 1);
      return;
    }
    P = unload(B);
    load(B, empty);
  }
  KMEM_ASSERT(B.top < B.limit, "loaded magazine full after exchange");
  *B.top++ = p;
}

void tcache_flush_stats(tcache* tc) {
  for (unsigned t = 0; t < M_LAST; ++t) {
    type_delta& d = tc->td[t];
    kmemstats& ks = g.types[t];
    std::uint64_t calls = tc_type_calls(tc, t);
    std::uint32_t mask = tc_type_mask(tc, t);
    std::int64_t inuse = static_cast<std::int64_t>(calls - d.frees);
    std::int64_t memuse = d.memuse;
    std::int64_t peak = d.peak;
    if (calls == 0 && d.frees == 0 && memuse == 0) continue;
    for (unsigned i = kMinBucket; i <= kMaxBucket; ++i) {
      std::uint64_t c = tc->acnt[t][i];
      if (c == 0) continue;
      g.buckets[i].kb_calls.fetch_add(c, std::memory_order_relaxed);
      __atomic_store_n(&tc->acnt[t][i], 0, __ATOMIC_RELAXED);
    }
    ks.calls.fetch_add(calls, std::memory_order_relaxed);
    ks.inuse.fetch_add(inuse, std::memory_order_relaxed);
    std::int64_t before = ks.memuse.fetch_add(memuse, std::memory_order_relaxed);
    ks.mask.fetch_or(mask, std::memory_order_relaxed);
    std::int64_t cand = before + peak + ks.exact_memuse.load(std::memory_order_relaxed);
    std::int64_t cur = ks.maxused.load(std::memory_order_relaxed);
    while (cand > cur && !ks.maxused.compare_exchange_weak(cur, cand, std::memory_order_relaxed)) {
    }
    __atomic_store_n(&d.calls, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&d.frees, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&d.memuse, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&d.peak, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&d.mask, 0, __ATOMIC_RELAXED);
  }
}

void depot_drain_all() {
  for (unsigned i = kMinBucket; i <= kMaxBucket; ++i) {
    depot& d = g.depots[i];
    magazine* list;
    {
      kmem_guard guard(d.lock);
      list = d.full;
      d.full = nullptr;
      d.nfull = 0;
    }
    while (list != nullptr) {
      magazine* m = list;
      list = m->next;
      magazine_empty_to_bucket(i, m);
      magazine_put_empty(i, m);
    }
  }
}

std::uint64_t depot_rounds(unsigned indx) {
  depot& d = g.depots[indx];
  kmem_guard guard(d.lock);
  std::uint64_t n = 0;
  for (magazine* m = d.full; m != nullptr; m = m->next) n += m->count;
  return n;
}

void magazines_fork_prepare() {
  g.threads_lock.lock();
  g.meta_lock.lock();
  for (unsigned i = kMinBucket; i <= kMaxBucket; ++i) g.depots[i].lock.lock();
}

void magazines_fork_parent() {
  for (unsigned i = kMaxBucket + 1; i-- > kMinBucket;) g.depots[i].lock.unlock();
  g.meta_lock.unlock();
  g.threads_lock.unlock();
}

void magazines_fork_child() {
  for (unsigned i = kMinBucket; i <= kMaxBucket; ++i) g.depots[i].lock.reinit();
  g.meta_lock.reinit();
  g.threads_lock.reinit();
  // Threads other than this one did not survive.  Their caches may have been
  // caught in the middle of a lock-free magazine push/pop (plain stores in any
  // order), so their rounds cannot be trusted: abandon them (a bounded leak of
  // at most two magazines per bucket per thread) and keep only their statistics.
  tcache* tc = g.threads;
  while (tc != nullptr) {
    tcache* next = tc->next;
    if (tc != t_tc) {
      for (unsigned i = 0; i < kNumIndx; ++i) {
        load(tc->b[i], &g_empty_magazine);
        tc->previous[i] = &g_empty_magazine;
      }
      tcache_flush_stats(tc);
      kmem_guard guard(g.threads_lock);
      tcache_unlink_locked(tc);
    }
    tc = next;
  }
}

}  // namespace vmrt::kmem::detail

namespace vmrt::kmem {
void thread_cache_drain() {
  detail::tcache* tc = detail::t_tc;
  if (tc == nullptr) return;
  detail::tcache_drain(tc);
  detail::tcache_flush_stats(tc);
}
}  // namespace vmrt::kmem
