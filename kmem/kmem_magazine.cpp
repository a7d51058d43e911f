// kmem_magazine.cpp — per-thread magazines and the depot (Bonwick & Adams 2001), the
// magazines kept as intrusive chains of free elements.
//
// Each thread has, per bucket, a loaded and a previous magazine (tc_bucket): two LIFO
// chains linked through the free elements' first words, as glibc's tcache and
// mimalloc's free lists link theirs, so a free writes only the element (which it writes
// anyway: the free marker) and the thread's 32-byte record for the class.  malloc pops
// from loaded, free pushes onto it (kmem_fast.h inlines both).  When loaded runs dry /
// fills up, the slow paths here swap it with previous, or exchange a whole chain with the
// bucket's depot under the depot lock (a `magazine` descriptor carries it there), or
// have the bucket layer fill it or take it back whole (bucket_alloc / bucket_free, straight
// between the chain and the clusters).  The depot keeps at most
// depot_max_full full chains per bucket; beyond that, elements go back to their clusters,
// where the bucket's high-water mark decides whether pages go back to the page source.
//
// A chain's links live in free memory, so a write after free can break one: every
// element is checked (chain_elem_ok: in the arena, an element of the class, free marker
// intact) before its link is followed or it is handed out; a broken chain is counted
// (corrupt_detected), reported (KMEM_CORRUPT) and the rest of it dropped — leaked, never
// handed out.
//
// A thread's cache is drained on thread exit (pthread key destructor), by
// thread_cache_drain().  In a forked child, the caches of threads that did not survive the
// fork are abandoned (see magazines_fork_child).
#include <cstring>
#include "vm/vm_sys.h"
#include "vm/vm_types.h"
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

// => depot lock not held; takes it, else the meta lock.  A descriptor for a full chain:
// a spare one of the depot, a recycled one, or a new one; null when mmap fails.
magazine* desc_get(unsigned indx) {
  depot& d = g.classes[indx].dp;
  {
    kmem_guard guard(d.lock);
    if (magazine* m = d.empty; m != nullptr) {
      d.empty = m->next;
      --d.nempty;
      return m;
    }
  }
  {
    kmem_guard guard(g.meta_lock);
    if (magazine* m = g.free_magazines; m != nullptr) {
      g.free_magazines = m->next;
      return m;
    }
  }
  magazine* m = static_cast<magazine*>(meta_alloc(sizeof(magazine)));
  if (m == nullptr) return nullptr;
  kmem_guard guard(g.meta_lock);
  ++g.magazines_made;
  return m;
}

// => depot lock held.  Keeps a spare descriptor in the depot (bounded), else returns it
// for the caller to recycle (desc_recycle, outside the depot lock).
magazine* desc_put_locked(depot& d, magazine* m) {
  if (d.nempty >= d.max_full) return m;
  m->next = d.empty;
  d.empty = m;
  ++d.nempty;
  return nullptr;
}

void desc_recycle(magazine* m) {
  if (m == nullptr) return;
  kmem_guard guard(g.meta_lock);
  m->next = g.free_magazines;
  g.free_magazines = m;
}

// Drains tc's chains into the bucket layer; retire (thread exit) also turns its fast
// paths off (cap 0: frees from later key destructors go to the buckets).  => owner thread
// (or the only thread, after fork); takes bucket locks.
void tcache_drain(tcache* tc, bool retire) {
  for (unsigned i = kMinBucket; i <= kMaxBucket; ++i) {
    tc_bucket& B = tc->b[i];
    const std::uint32_t n = B.loaded(), pn = B.prev_count;
    void* h = B.head;
    void* ph = B.prev_head;
    if (retire) B.cap = 0;
    B.room = B.cap;
    B.prev_count = 0;
    B.head = nullptr;
    B.prev_head = nullptr;
    if (n != 0) bucket_free(i, h, n);
    if (pn != 0) bucket_free(i, ph, pn);
  }
}

void tcache_init(tcache* tc) {
  std::memset(static_cast<void*>(tc), 0, sizeof(tcache));
  for (unsigned i = kMinBucket; i <= kMaxBucket; ++i) {
    tc->b[i].size = static_cast<std::int64_t>(bucket_size(i));
    tc->b[i].cap = static_cast<std::uint16_t>(g.classes[i].dp.cap);
    tc->b[i].room = tc->b[i].cap;  // both chains empty
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
  tcache_drain(tc, true);
  tcache_flush_stats(tc);
  kmem_guard guard(g.threads_lock);
  tcache_unlink_locked(tc);
}

}  // namespace

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
  // Each depot's max_full is in g's static image (kmem_globals' constructor).
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
// the bucket takes about a page of elements, each later one twice as many, up to the
// magazine's cap.  A full 256-element chain of a 256-byte class is 16 pages: a program
// that mallocs one such block touched them all, and 200-odd pages over its classes.
// Rounded up to whole cache-line runs (line_run): two threads refilling from one cluster
// get runs that share no line.
std::uint32_t refill_rounds(tc_bucket& B, unsigned indx) {
  const std::uint32_t cap = B.cap;
  std::uint32_t want = B.fill;
  if (want == 0) {
    want = static_cast<std::uint32_t>(kPageSize / bucket_size(indx));
    if (want == 0) want = 1;
  }
  const std::uint32_t run = line_run(indx);
  want = (want + run - 1) / run * run;
  if (want > cap) want = cap;
  B.fill = static_cast<std::uint16_t>(want * 2 > cap ? cap : want * 2);
  return want;
}

void swap_chains(tc_bucket& B) {
  void* h = B.head;
  const std::uint32_t n = B.loaded();
  B.head = B.prev_head;
  B.set_loaded(B.prev_count);
  B.prev_head = h;
  B.prev_count = static_cast<std::uint16_t>(n);
}
}  // namespace

void chain_broken(const void* a) {
  g.corrupt_detected.fetch_add(1, std::memory_order_relaxed);
  report(KMEM_CORRUPT, a, M_FREE);
}

void* chain_pop(tc_bucket& B, unsigned indx) {
  if (B.loaded() == 0) return nullptr;
  const std::uintptr_t a = reinterpret_cast<std::uintptr_t>(B.head);
  if (!chain_elem_ok(a, indx)) {
    chain_broken(B.head);
    B.head = nullptr;
    B.set_loaded(0);
    return nullptr;
  }
  B.head = reinterpret_cast<void*>(reinterpret_cast<const std::uintptr_t*>(a)[0]);
  ++B.room;
  return reinterpret_cast<void*>(a);
}

void* magazine_alloc_slow(tcache* tc, unsigned indx) {
  tc_bucket& B = tc->b[indx];
  depot& d = g.classes[indx].dp;
  for (;;) {
    if (B.loaded() != 0) {
      if (void* p = chain_pop(B, indx)) return p;
      continue;  // broken and dropped: loaded is empty now
    }
    if (B.prev_count != 0) {
      swap_chains(B);
      continue;
    }
    // Both empty: take a full chain from the depot.
    magazine* full = nullptr;
    magazine* spare = nullptr;
    {
      kmem_guard guard(d.lock);
      if (d.full != nullptr) {
        full = d.full;
        d.full = full->next;
        --d.nfull;
        B.head = full->head;
        B.set_loaded(full->count);
        spare = desc_put_locked(d, full);
      }
    }
    if (full != nullptr) {
      desc_recycle(spare);
      d.exchanges.fetch_add(1, std::memory_order_relaxed);
      continue;
    }
    // The depot has nothing: a young process's small class takes a run of the first
    // chunk (kmem_first_chunk.h: packed with the other classes' runs, not a page of its own).
    void* head = nullptr;
    if (B.cap != 0) {
      if (const std::uint32_t got = first_refill(indx, B.cap, &head); got != 0) {
        B.head = head;
        B.set_loaded(got);
        continue;
      }
    }
    // Then the bucket fills the loaded chain (its first element ends deepest, as at the
    // bottom of a magazine's rounds: a block another thread freed to its cluster just now
    // is not handed straight back, kmem_free's first-call rule).
    if (B.cap == 0) return bucket_alloc(indx, &head, 1) == 1 ? head : nullptr;
    const std::uint32_t got = bucket_alloc(indx, &head, refill_rounds(B, indx));
    if (got == 0) return nullptr;
    B.head = head;
    B.set_loaded(got);
  }
}

void magazine_free_slow(tcache* tc, unsigned indx, void* p) {
  tc_bucket& B = tc->b[indx];
  depot& d = g.classes[indx].dp;
  if (B.cap == 0) {
    bucket_free(indx, p, 1);
    return;
  }
  if (B.room == 0) {
    if (B.prev_count != 0) {
      // Loaded full, previous full: previous goes to the depot, or back to its clusters
      // when the depot holds its bound.
      magazine* m = desc_get(indx);
      bool given = false;
      magazine* spare = nullptr;
      if (m != nullptr) {
        kmem_guard guard(d.lock);
        if (d.nfull < d.max_full) {
          m->head = B.prev_head;
          m->count = B.prev_count;
          m->next = d.full;
          d.full = m;
          ++d.nfull;
          given = true;
        } else {
          spare = desc_put_locked(d, m);
        }
      }
      desc_recycle(spare);
      d.exchanges.fetch_add(1, std::memory_order_relaxed);
      if (!given) bucket_free(indx, B.prev_head, B.prev_count);
      B.prev_head = nullptr;
      B.prev_count = 0;
    }
    swap_chains(B);  // previous (full) <- loaded, loaded <- the empty one
  }
  mark_free(reinterpret_cast<std::uintptr_t>(p), reinterpret_cast<std::uintptr_t>(B.head));
  B.head = p;
  --B.room;
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
  // The bucket counts, after the types' (whose calls and masks the shim's rows gave).
  for (unsigned r = 0; r < tcache::kCallRows; ++r)
    for (unsigned i = kMinBucket; i <= kMaxBucket; ++i) {
      const std::uint64_t c = tc->acnt[r][i];
      if (c == 0) continue;
      g.classes[i].kb.kb_calls.fetch_add(c, std::memory_order_relaxed);
      __atomic_store_n(&tc->acnt[r][i], 0, __ATOMIC_RELAXED);
    }
}

void depot_drain_all() {
  for (unsigned i = kMinBucket; i <= kMaxBucket; ++i) {
    depot& d = g.classes[i].dp;
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
      bucket_free(i, m->head, m->count);
      magazine* spare;
      {
        kmem_guard guard(d.lock);
        spare = desc_put_locked(d, m);
      }
      desc_recycle(spare);
    }
  }
}

std::uint64_t depot_rounds(unsigned indx) {
  depot& d = g.classes[indx].dp;
  kmem_guard guard(d.lock);
  std::uint64_t n = 0;
  for (magazine* m = d.full; m != nullptr; m = m->next) n += m->count;
  return n;
}

VMRT_FORK_PARENT_TEXT void magazines_fork_prepare() {
  g.threads_lock.lock();
  g.meta_lock.lock();
  for (unsigned i = kMinBucket; i <= kMaxBucket; ++i) g.classes[i].dp.lock.lock();
}

VMRT_FORK_PARENT_TEXT void magazines_fork_parent() {
  for (unsigned i = kMaxBucket + 1; i-- > kMinBucket;) g.classes[i].dp.lock.unlock();
  g.meta_lock.unlock();
  g.threads_lock.unlock();
}

VMRT_FORK_CHILD_TEXT void magazines_fork_child() {
  for (unsigned i = kMinBucket; i <= kMaxBucket; ++i) g.classes[i].dp.lock.reinit();
  g.meta_lock.reinit();
  g.threads_lock.reinit();
  // Threads other than this one did not survive.  Their caches may have been
  // caught in the middle of a lock-free chain push/pop (plain stores in any
  // order), so their chains cannot be trusted: abandon them (a bounded leak of
  // at most two chains per bucket per thread) and keep only their statistics.
  tcache* tc = g.threads;
  while (tc != nullptr) {
    tcache* next = tc->next;
    if (tc != t_tc) {
      for (unsigned i = 0; i < kNumIndx; ++i) {
        tc_bucket& B = tc->b[i];
        B.cap = 0;
        B.room = 0;
        B.prev_count = 0;
        B.head = nullptr;
        B.prev_head = nullptr;
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
  detail::tcache_drain(tc, false);
  detail::tcache_flush_stats(tc);
}
}  // namespace vmrt::kmem
