// shim_stress_test — many threads allocate, hand blocks to other threads, which
// verify the contents and free them; with the shim as the real malloc (in a
// child process, see shim_child.h).  Also realloc chains that migrate between
// threads, and operator new/delete across threads.
#include "tests/unit/shim_child.h"

#include <atomic>
#include <cstdint>
#include <malloc.h>
#include <mutex>
#include <thread>
#include <vector>

namespace {

using shim_child::g_failures;

constexpr int kThreads = 4;
constexpr int kPerThread = 60000;

struct block {
  unsigned char* p;
  std::size_t n;
  std::uint32_t seed;
};

unsigned char byte_at(std::uint32_t seed, std::size_t i) {
  return static_cast<unsigned char>((seed * 2654435761u + i * 40503u) >> 13);
}

void fill(const block& b) {
  for (std::size_t i = 0; i < b.n; ++i) b.p[i] = byte_at(b.seed, i);
}

bool verify(const block& b) {
  for (std::size_t i = 0; i < b.n; ++i)
    if (b.p[i] != byte_at(b.seed, i)) return false;
  return true;
}

// One mailbox per thread: producers push to the next thread's box.
struct mailbox {
  std::mutex m;
  std::vector<block> items;
};

std::size_t pick_size(std::uint32_t x) {
  std::uint32_t r = x % 1000;
  if (r < 700) return x % 128;             // small
  if (r < 950) return 128 + x % 4000;      // medium
  if (r < 995) return 4096 + x % 60000;    // page-sized and larger
  return 65536 + x % (1 << 20);            // large
}

int c_cross_thread() {
  std::vector<mailbox> boxes(kThreads);
  std::atomic<long> bad{0}, freed{0}, made{0};
  std::atomic<int> producing{kThreads};
  std::vector<std::thread> ts;
  for (int t = 0; t < kThreads; ++t) {
    ts.emplace_back([&, t] {
      std::uint32_t x = 0x9e3779b9u * static_cast<std::uint32_t>(t + 1);
      std::vector<block> mine;
      auto drain = [&](bool all) {
        std::vector<block> got;
        {
          std::lock_guard<std::mutex> g(boxes[t].m);
          got.swap(boxes[t].items);
        }
        for (block& b : got) {
          if (!verify(b)) ++bad;
          if (b.seed % 3 == 0) {  // grow it here, verify again, then free
            std::size_t n2 = b.n * 2 + 17;
            auto* q = static_cast<unsigned char*>(realloc(b.p, n2));
            block nb{q, b.n, b.seed};
            if (q == nullptr || !verify(nb)) ++bad;
            free(q);
          } else if (b.seed % 3 == 1) {
            ::operator delete(b.p);
          } else {
            free(b.p);
          }
          ++freed;
        }
        (void)all;
      };
      for (int i = 0; i < kPerThread; ++i) {
        x = x * 1664525u + 1013904223u;
        block b{nullptr, pick_size(x >> 4), x};
        b.p = static_cast<unsigned char*>(b.seed % 3 == 1 ? ::operator new(b.n) : malloc(b.n));
        if (b.p == nullptr) {
          ++bad;
          continue;
        }
        ++made;
        fill(b);
        {
          std::lock_guard<std::mutex> g(boxes[(t + 1 + i % (kThreads - 1)) % kThreads].m);
          boxes[(t + 1 + i % (kThreads - 1)) % kThreads].items.push_back(b);
        }
        if (i % 64 == 0) drain(false);
      }
      --producing;
      while (producing.load() > 0) drain(false);
      drain(true);
    });
  }
  for (auto& th : ts) th.join();
  for (auto& b : boxes) {  // leftovers pushed after their owner's final drain
    for (block& blk : b.items) {
      if (!verify(blk)) ++bad;
      if (blk.seed % 3 == 1) ::operator delete(blk.p);
      else free(blk.p);
      ++freed;
    }
  }
  CHILD_CHECK(bad.load() == 0);
  CHILD_CHECK(freed.load() == made.load());
  CHILD_CHECK(made.load() == long{kThreads} * kPerThread);
  std::fprintf(stderr, "blocks passed between threads: %ld\n", made.load());
  return g_failures;
}

// Thread churn: short-lived threads allocate and free, leaving blocks for the
// main thread (their thread caches must drain on exit without losing blocks).
int c_thread_churn() {
  std::vector<block> left;
  std::mutex m;
  for (int round = 0; round < 50; ++round) {
    std::vector<std::thread> ts;
    for (int t = 0; t < 4; ++t) {
      ts.emplace_back([&, round, t] {
        std::uint32_t x = static_cast<std::uint32_t>(round * 16 + t + 1);
        std::vector<void*> tmp;
        for (int i = 0; i < 500; ++i) {
          x = x * 1664525u + 1013904223u;
          tmp.push_back(malloc(x % 512));
        }
        for (void* p : tmp) free(p);
        block b{nullptr, 100 + x % 3000, x};
        b.p = static_cast<unsigned char*>(malloc(b.n));
        fill(b);
        std::lock_guard<std::mutex> g(m);
        left.push_back(b);
      });
    }
    for (auto& th : ts) th.join();
  }
  bool ok = true;
  for (block& b : left) {
    ok = ok && verify(b);
    free(b.p);
  }
  CHILD_CHECK(ok);
  CHILD_CHECK(left.size() == 200);
  return g_failures;
}

}  // namespace

const shim_child::entry shim_child::g_cases[] = {
    {"cross_thread", c_cross_thread},
    {"thread_churn", c_thread_churn},
    {nullptr, nullptr},
};

SHIM_TEST_CASE("shim stress: threads free blocks other threads allocated, contents verified") {
  shim_child::expect_pass("cross_thread");
}
SHIM_TEST_CASE("shim stress: short-lived threads (thread-cache drain at exit)") { shim_child::expect_pass("thread_churn"); }
SHIM_TEST_CASE("shim stress: cross-thread frees with the sigsegv trap backend") {
  shim_child::expect_pass("cross_thread", "VMRT_TRAP=sigsegv");
}
