// vm_heap_test.cpp — the process heap on the real machine: ranges read as zeros, cost host
// memory only when touched, give it back when freed, keep host mappings bounded by the
// windows in use whatever the pattern, grow in place or move without touching untouched
// pages, and trim empty windows.
#include <doctest/doctest.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <random>
#include <csignal>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>
#include <fcntl.h>
#include <vector>

#include "runtime/boot.h"
#include "runtime/rt_stats.h"
#include "runtime/vmrt.h"
#include "vm/pmap.h"
#include "vm/vm_heap.h"
#include "vm/vm_lock.h"
#include "vm/vm_object.h"
#include "vm/vm_page.h"
#include "vm/vm_stats.h"
#include "vm/vmspace.h"

using namespace vmrt;

namespace {

void boot() { REQUIRE(runtime_boot()); }

// Host pages backing [p, p + n pages) (mincore on the guest addresses).
std::size_t host_resident(const void* p, std::size_t npages) {
  std::vector<unsigned char> v(npages);
  REQUIRE(mincore(const_cast<void*>(p), npages * PAGE_SIZE, v.data()) == 0);
  std::size_t n = 0;
  for (unsigned char c : v) n += c & 1;
  return n;
}

// Does the host have swap?  Then mincore cannot see swapped-out host pages and the heap
// copies a moved range whole (pmap_linux_host.cpp, g_host_swap): residency is not exact.
bool host_has_swap() {
  FILE* f = std::fopen("/proc/swaps", "r");
  if (f == nullptr) return true;
  int lines = 0;
  for (int c; (c = std::fgetc(f)) != EOF;) lines += c == '\n';
  std::fclose(f);
  return lines > 1;
}

// Boots; true when the heap has backing b, else prints SKIP with the reason.
bool boot_with(vm_heap_backing b, const char* skip) {
  boot();
  if (vm_heap_get_backing() == b) return true;
  MESSAGE("SKIP: " << skip);
  return false;
}

// Ranges resize moved: by copy, or (host memory) by moving the host's page tables.
std::int64_t moves() { return vm_stat_get(V_HEAP_COPIED) + vm_stat_get(V_HEAP_MOVED); }

char* alloc(std::size_t npages) {
  vaddr_t va = 0;
  REQUIRE(vm_heap_alloc(npages * PAGE_SIZE, PAGE_SIZE, &va) == KERN_SUCCESS);
  return reinterpret_cast<char*>(va);
}

std::size_t region_vmas() {
  std::size_t in = 0, total = 0;
  vmrt_host_vmas(&in, &total);
  return in;
}

}  // namespace

TEST_CASE("heap ranges read as zeros and cost host memory only where touched") {
  boot();
  char* p = alloc(4096);  // 16 MiB
  CHECK(host_resident(p, 4096) == 0);
  for (std::size_t i = 0; i < 4096 * PAGE_SIZE; i += 1024 * PAGE_SIZE) CHECK(p[i] == 0);
  p[0] = 1;
  p[4095 * PAGE_SIZE] = 2;
  std::size_t r = host_resident(p, 4096);
  // Reads of untouched shmem pages allocate them on this host: four reads + two writes.
  CHECK(r >= 2);
  CHECK(r <= 6);
  // Freed: the range reads as zeros when handed out again (a large one is discarded when
  // it is handed out again; a small one is zeroed in place, below).
  vm_heap_free(reinterpret_cast<vaddr_t>(p), 4096 * PAGE_SIZE);
  char* q = alloc(4096);
  CHECK(q == p);  // first fit
  CHECK(q[0] == 0);
  CHECK(q[4095 * PAGE_SIZE] == 0);
  CHECK(host_resident(q, 4096) <= r);
  // A small freed range keeps its host pages for a while: handed out again, it is zeroed
  // in place (cheaper than releasing the pages and faulting fresh ones).
  char* s = alloc(48);
  std::memset(s, 0x5A, 48 * PAGE_SIZE);
  vm_heap_free(reinterpret_cast<vaddr_t>(s), 48 * PAGE_SIZE);
  char* s2 = alloc(48);
  CHECK(s2 == s);
  if (host_has_swap())
    MESSAGE("SKIP: the host has swap (/proc/swaps): zeroing in place is not checked by residency");
  else
    CHECK(host_resident(s2, 48) == 48);
  for (std::size_t i = 0; i < 48 * PAGE_SIZE; i += 1000) CHECK(s2[i] == 0);
  vm_heap_free(reinterpret_cast<vaddr_t>(s2), 48 * PAGE_SIZE);
  // Past 16 MiB of freed ranges, or at trim, freed memory goes back to the host.
  std::memset(q, 0xAB, 4096 * PAGE_SIZE);
  vm_heap_free(reinterpret_cast<vaddr_t>(q), 4096 * PAGE_SIZE);
  char* big = alloc(8192);  // 32 MiB elsewhere, then freed: past the deferred limit
  big[0] = 1;
  vm_heap_free(reinterpret_cast<vaddr_t>(big), 8192 * PAGE_SIZE);
  CHECK(host_resident(q, 4096) == 0);
  CHECK(host_resident(big, 8192) == 0);
  char* z = alloc(4096);
  CHECK(z == q);
  for (std::size_t i = 0; i < 4096 * PAGE_SIZE; i += 4096 * 7) CHECK(z[i] == 0);
  vm_heap_free(reinterpret_cast<vaddr_t>(z), 4096 * PAGE_SIZE);
}

TEST_CASE("a range for a caller that needs no zeros comes as it was freed, with no host call") {
  boot();
  vm_heap_trim();  // nothing waits to be discarded
  // A freed range waiting to be discarded, handed out again by vm_heap_alloc_any: its bytes
  // and host pages are kept (kmem's large blocks for malloc: no madvise, no fault on reuse).
  char* p = alloc(128);  // 512 KiB: under the deferred-discard limit (1 MiB at least) once freed
  std::memset(p, 0x5A, 128 * PAGE_SIZE);
  const std::size_t touched = host_resident(p, 128);
  vm_heap_free(reinterpret_cast<vaddr_t>(p), 128 * PAGE_SIZE);
  const std::int64_t reused0 = vm_stat_get(V_HEAP_DIRTY_REUSED), discarded0 = vm_stat_get(V_HEAP_DISCARDED);
  vaddr_t va = 0;
  bool zeroed = true;
  REQUIRE(vm_heap_alloc_any(128 * PAGE_SIZE, PAGE_SIZE, &va, &zeroed) == KERN_SUCCESS);
  CHECK(reinterpret_cast<char*>(va) == p);  // first fit
  CHECK_FALSE(zeroed);
  CHECK(vm_stat_get(V_HEAP_DIRTY_REUSED) - reused0 == 128);
  CHECK(vm_stat_get(V_HEAP_DISCARDED) == discarded0);
  CHECK(p[0] == 0x5A);
  CHECK(p[128 * PAGE_SIZE - 1] == 0x5A);
  if (host_has_swap())
    MESSAGE("SKIP: the host has swap (/proc/swaps): kept pages are not checked by residency");
  else
    CHECK(host_resident(p, 128) == touched);
  // Freed again, the same range from vm_heap_alloc reads as zeros (discarded or zeroed).
  vm_heap_free(va, 128 * PAGE_SIZE);
  char* q = alloc(128);
  CHECK(q == p);
  for (std::size_t i = 0; i < 128 * PAGE_SIZE; i += 4093) CHECK(q[i] == 0);
  vm_heap_free(reinterpret_cast<vaddr_t>(q), 128 * PAGE_SIZE);
  // Nothing freed inside: zeros, and *zeroed says so.
  vm_heap_trim();
  REQUIRE(vm_heap_alloc_any(256 * PAGE_SIZE, PAGE_SIZE, &va, &zeroed) == KERN_SUCCESS);
  CHECK(zeroed);
  CHECK(reinterpret_cast<char*>(va)[0] == 0);
  vm_heap_free(va, 256 * PAGE_SIZE);
  // Bad arguments as vm_heap_alloc.
  CHECK(vm_heap_alloc_any(0, PAGE_SIZE, &va, &zeroed) == KERN_INVALID_ARGUMENT);
  CHECK(vm_heap_alloc_any(PAGE_SIZE, 3 * PAGE_SIZE, &va, &zeroed) == KERN_INVALID_ARGUMENT);
}

TEST_CASE("host mappings stay bounded by the windows in use, whatever the pattern") {
  boot();
  std::mt19937_64 rng(42);
  std::vector<std::pair<char*, std::size_t>> live;
  std::size_t v0 = region_vmas();
  for (int i = 0; i < 20000; ++i) {
    std::size_t n = 17 + rng() % 25;  // 68 - 164 KiB
    char* p = alloc(n);
    p[0] = 1;
    p[n * PAGE_SIZE - 1] = 1;
    live.push_back({p, n});
    if (rng() % 2 == 0) {
      std::size_t k = rng() % live.size();
      vm_heap_free(reinterpret_cast<vaddr_t>(live[k].first), live[k].second * PAGE_SIZE);
      live[k] = live.back();
      live.pop_back();
    }
  }
  vm_heap_info hi{};
  REQUIRE(vm_heap_get_info(&hi));
  std::size_t v1 = region_vmas();
  MESSAGE("blocks live " << live.size() << ", windows " << hi.windows << ", region VMAs " << v0 << " -> " << v1);
  // One host mapping per window, plus one per gap between windows: at most two per 2 MiB.
  CHECK(v1 <= v0 + 2 * hi.windows + 2);
  CHECK(v1 < live.size() / 10);  // before the heap: one or two per block
  CHECK(vmrt_check(nullptr, 2) == 0);
  for (auto& b : live) vm_heap_free(reinterpret_cast<vaddr_t>(b.first), b.second * PAGE_SIZE);
}

TEST_CASE("resize grows in place, or moves copying only what was touched") {
  boot();
  vm_heap_trim();  // no freed range waiting to be discarded: residency below is exact
  char* a = alloc(64);
  a[0] = 'a';
  a[63 * PAGE_SIZE] = 'z';
  vaddr_t out = 0;
  // In place: nothing after it yet.
  REQUIRE(vm_heap_resize(reinterpret_cast<vaddr_t>(a), 64 * PAGE_SIZE, 128 * PAGE_SIZE, &out) == KERN_SUCCESS);
  CHECK(reinterpret_cast<char*>(out) == a);
  CHECK(a[127 * PAGE_SIZE] == 0);
  // Block the space after it: the next resize must move.
  char* blocker = alloc(1);
  REQUIRE(blocker == a + 128 * PAGE_SIZE);
  auto moved0 = moves();
  auto mremapped0 = vm_stat_get(V_HEAP_MOVED);
  REQUIRE(vm_heap_resize(reinterpret_cast<vaddr_t>(a), 128 * PAGE_SIZE, 4096 * PAGE_SIZE, &out) == KERN_SUCCESS);
  char* b = reinterpret_cast<char*>(out);
  CHECK(b != a);
  CHECK(moves() == moved0 + 1);
  CHECK(vm_stat_get(V_HEAP_MOVED) == mremapped0);  // under a window: copied, whatever the backing
  // The three pages touched (two written, page 127 read above: a read of an untouched
  // shmem page allocates it on this host), nothing else.
  if (host_has_swap())
    MESSAGE("SKIP: the host has swap (/proc/swaps): a moved range is copied whole, residency not checked");
  else
    CHECK(host_resident(b, 4096) == 3);
  CHECK(b[0] == 'a');
  CHECK(b[63 * PAGE_SIZE] == 'z');
  vm_heap_trim();
  CHECK(host_resident(a, 128) == 0);  // the old range was given back
  vm_heap_free(reinterpret_cast<vaddr_t>(b), 4096 * PAGE_SIZE);
  vm_heap_free(reinterpret_cast<vaddr_t>(blocker), PAGE_SIZE);
}

TEST_CASE("a range that moved to grow has room to keep growing in place") {
  boot();
  char* a = alloc(64);
  char* blocker = alloc(1);
  REQUIRE(blocker == a + 64 * PAGE_SIZE);
  std::memset(a, 'g', 64 * PAGE_SIZE);
  vaddr_t out = 0;
  auto moved0 = moves();
  REQUIRE(vm_heap_resize(reinterpret_cast<vaddr_t>(a), 64 * PAGE_SIZE, 128 * PAGE_SIZE, &out) == KERN_SUCCESS);
  CHECK(moves() == moved0 + 1);
  char* b = reinterpret_cast<char*>(out);
  // Another allocation meanwhile (first fit) does not land right after the moved range...
  char* c = alloc(256);
  CHECK((c < b || c >= b + 1024 * PAGE_SIZE));
  // ...so the next growths (a vector doubling) happen in place, without copying.
  vsize_t size = 128;
  for (int i = 0; i < 3; ++i) {
    REQUIRE(vm_heap_resize(reinterpret_cast<vaddr_t>(b), size * PAGE_SIZE, 2 * size * PAGE_SIZE, &out) == KERN_SUCCESS);
    CHECK(reinterpret_cast<char*>(out) == b);
    b = reinterpret_cast<char*>(out);
    size *= 2;
  }
  CHECK(moves() == moved0 + 1);
  CHECK(b[0] == 'g');
  CHECK(b[64 * PAGE_SIZE - 1] == 'g');
  CHECK(b[64 * PAGE_SIZE] == 0);
  vm_heap_free(reinterpret_cast<vaddr_t>(b), size * PAGE_SIZE);
  vm_heap_free(reinterpret_cast<vaddr_t>(c), 256 * PAGE_SIZE);
  vm_heap_free(reinterpret_cast<vaddr_t>(blocker), PAGE_SIZE);
}

namespace {
// VmRSS in kB: counts a page once per mapping of it in this process.
long vm_rss_kb() {
  FILE* f = std::fopen("/proc/self/status", "r");
  REQUIRE(f != nullptr);
  char line[256];
  long kb = -1;
  while (std::fgets(line, sizeof line, f) != nullptr)
    if (std::sscanf(line, "VmRSS: %ld kB", &kb) == 1) break;
  std::fclose(f);
  return kb;
}
}  // namespace

TEST_CASE("bad ranges are refused; trim drops empty windows") {
  boot();
  vaddr_t out = 0;
  CHECK(vm_heap_alloc(0, PAGE_SIZE, &out) == KERN_INVALID_ARGUMENT);
  CHECK(vm_heap_alloc(PAGE_SIZE + 1, PAGE_SIZE, &out) == KERN_INVALID_ARGUMENT);
  CHECK(vm_heap_alloc(PAGE_SIZE, 3 * PAGE_SIZE, &out) == KERN_INVALID_ARGUMENT);
  vm_heap_info hi{};
  REQUIRE(vm_heap_get_info(&hi));
  CHECK(vm_heap_alloc(hi.size + PAGE_SIZE, PAGE_SIZE, &out) == KERN_NO_SPACE);
  CHECK(vm_heap_resize(hi.base + 1, PAGE_SIZE, 2 * PAGE_SIZE, &out) == KERN_INVALID_ARGUMENT);
  char* p = alloc(2048);  // 8 MiB: four windows or more
  p[0] = 1;
  vm_heap_free(reinterpret_cast<vaddr_t>(p), 2048 * PAGE_SIZE);
  REQUIRE(vm_heap_get_info(&hi));
  std::uint64_t w0 = hi.windows;
  CHECK(vm_heap_trim() > 0);
  REQUIRE(vm_heap_get_info(&hi));
  CHECK(hi.windows < w0);
  CHECK(vmrt_check(nullptr, 2) == 0);
  // A new range over trimmed windows is populated again and reads as zeros.
  char* q = alloc(2048);
  CHECK(q[0] == 0);
  q[0] = 3;
  CHECK(q[0] == 3);
  vm_heap_free(reinterpret_cast<vaddr_t>(q), 2048 * PAGE_SIZE);
}

TEST_CASE("a freed range waiting to be discarded needs no copy in a fork child") {
  if (!boot_with(VM_HEAP_FRAMES, "frames backing only (unit.vm_heap_test.frames runs it with VMRT_HEAP=frames)")) return;
  vm_heap_trim();
  char* p = alloc(8);
  p[0] = 1;
  vm_heap_info hi{};
  REQUIRE(vm_heap_get_info(&hi));
  frame_t f = 0;
  {
    vm_lock_guard g;
    vm_page* m = vm_page_lookup(vm_heap_object(), atop(reinterpret_cast<vaddr_t>(p) - hi.base));
    REQUIRE(m != nullptr);
    f = vm_page_frame(m);
  }
  CHECK_FALSE(vm_heap_frame_unused(f));  // live data
  vm_heap_free(reinterpret_cast<vaddr_t>(p), 8 * PAGE_SIZE);
  CHECK(vm_heap_frame_unused(f));  // freed, not yet discarded: nobody needs its bytes
  char* q = alloc(8);
  REQUIRE(q == p);
  CHECK_FALSE(vm_heap_frame_unused(f));
  vm_heap_free(reinterpret_cast<vaddr_t>(q), 8 * PAGE_SIZE);
}

TEST_CASE("host backing: a trimmed window is nothing (SIGSEGV), a populated one is host memory") {
  if (!boot_with(VM_HEAP_HOST, "host backing only (unit.vm_heap_test runs it with the default VMRT_HEAP)")) return;
  vm_heap_trim();
  char* p = alloc(1024);  // 4 MiB: two windows or more, host anonymous memory
  std::memset(p, 7, 1024 * PAGE_SIZE);
  CHECK(host_resident(p, 1024) == 1024);
  CHECK(vm_heap_object() == nullptr);  // no vm_page stands behind host memory
  vm_heap_free(reinterpret_cast<vaddr_t>(p), 1024 * PAGE_SIZE);
  vm_heap_trim();
  // The windows went back: an access is an access to nothing, as after munmap.
  pid_t pid = fork();
  if (pid == 0) {
    std::signal(SIGSEGV, SIG_DFL);  // (a sanitizer's handler would exit instead)
    volatile char c = p[PAGE_SIZE];
    (void)c;
    _exit(0);
  }
  int st = 0;
  REQUIRE(waitpid(pid, &st, 0) == pid);
  CHECK(WIFSIGNALED(st));
  CHECK(WTERMSIG(st) == SIGSEGV);
  // Handed out again: zeros.
  char* q = alloc(1024);
  CHECK(q[0] == 0);
  CHECK(q[1024 * PAGE_SIZE - 1] == 0);
  vm_heap_free(reinterpret_cast<vaddr_t>(q), 1024 * PAGE_SIZE);
}

// The heap of host memory begins 1 MiB into a 2 MiB block (runtime/boot.cpp, the program's
// first mappings below it in the same block); its windows are still the address space's
// 2 MiB blocks, the first one partial, so every later window is a whole pmap chunk (marked
// in the chunk's record, no table page).  As windows 2 MiB apart from the heap's start, the
// first two straddled three chunks (failed before: the first window ended 1 MiB into a block).
TEST_CASE("host backing: windows are the address space's 2 MiB blocks, the first partial") {
  if (!boot_with(VM_HEAP_HOST, "host backing only (unit.vm_heap_test runs it with the default VMRT_HEAP)")) return;
  constexpr vaddr_t kBlock = vaddr_t{2} << 20;
  vaddr_t lo = 0, hi = 0;
  vm_heap_range(&lo, &hi);
  REQUIRE(lo < hi);
  if ((lo & (kBlock - 1)) == 0) MESSAGE("the heap begins on a 2 MiB boundary here: its first window is whole");
  char* p = alloc(1024);  // 4 MiB: three windows or more populated
  p[0] = 1;
  vaddr_t from = lo, w = 0, we = 0;
  int seen = 0;
  while (vm_heap_next_host_window(from, &w, &we)) {
    CHECK((w == lo || (w & (kBlock - 1)) == 0));
    CHECK((we == hi || (we & (kBlock - 1)) == 0));
    CHECK(we - w <= kBlock);
    if (w == lo) CHECK(we == ((lo + kBlock) & ~(kBlock - 1)));
    from = we;
    ++seen;
  }
  CHECK(seen >= 2);
  vm_heap_free(reinterpret_cast<vaddr_t>(p), 1024 * PAGE_SIZE);
  CHECK(vmrt_check(nullptr, 2) == 0);
}

TEST_CASE("host backing: a range over many unpopulated windows is one host mapping") {
  if (!boot_with(VM_HEAP_HOST, "host backing only (unit.vm_heap_test runs it with the default VMRT_HEAP)")) return;
  vm_heap_trim();
  // 64 MiB past everything populated: 32 windows or 33, none populated yet.  One mmap for
  // the run (it was one per window: 32 calls for a malloc(64 MiB)).
  long long mmaps0 = rt::rt_get(rt::RC_HOST_MMAP);
  char* p = alloc(16384);
  long long made = rt::rt_get(rt::RC_HOST_MMAP) - mmaps0;
  MESSAGE("host mmap calls for a 64 MiB range: " << made);
  CHECK(made >= 1);
  CHECK(made <= 2);  // the run, and at most one window before it populated separately
  CHECK(host_resident(p, 16384) == 0);
  p[0] = 1;
  p[16384 * PAGE_SIZE - 1] = 2;
  CHECK(host_resident(p, 16384) == 2);
  vm_heap_free(reinterpret_cast<vaddr_t>(p), 16384 * PAGE_SIZE);
  vm_heap_trim();
  // Trimmed window by window out of the one mapping: handed out again, zeros.
  char* q = alloc(16384);
  CHECK(q[0] == 0);
  CHECK(q[16384 * PAGE_SIZE - 1] == 0);
  vm_heap_free(reinterpret_cast<vaddr_t>(q), 16384 * PAGE_SIZE);
  CHECK(vmrt_check(nullptr, 2) == 0);
}

TEST_CASE("host backing: a range of a window or more moves without copying") {
  if (!boot_with(VM_HEAP_HOST, "host backing only (unit.vm_heap_test runs it with the default VMRT_HEAP)")) return;
  vm_heap_trim();
  char* a = alloc(1024);  // 4 MiB
  a[0] = 'a';
  a[700 * PAGE_SIZE + 5] = 'm';
  a[1024 * PAGE_SIZE - 1] = 'z';
  char* blocker = alloc(1);
  REQUIRE(blocker == a + 1024 * PAGE_SIZE);
  auto mremapped0 = vm_stat_get(V_HEAP_MOVED);
  auto copied0 = vm_stat_get(V_HEAP_COPIED);
  vaddr_t out = 0;
  REQUIRE(vm_heap_resize(reinterpret_cast<vaddr_t>(a), 1024 * PAGE_SIZE, 4096 * PAGE_SIZE, &out) == KERN_SUCCESS);
  char* b = reinterpret_cast<char*>(out);
  CHECK(b != a);
  CHECK(vm_stat_get(V_HEAP_MOVED) == mremapped0 + 1);  // the pmap's host_move: one mremap
  CHECK(vm_stat_get(V_HEAP_COPIED) == copied0);
  CHECK(b[0] == 'a');
  CHECK(b[700 * PAGE_SIZE + 5] == 'm');
  CHECK(b[1024 * PAGE_SIZE - 1] == 'z');
  CHECK(b[2048 * PAGE_SIZE] == 0);
  if (host_has_swap())
    MESSAGE("SKIP: the host has swap (/proc/swaps): residency not checked");
  else
    CHECK(host_resident(b, 1024) == 3);  // the pages moved, nothing else
  // The old range reads as zeros and is free: handed out again, it is a fresh range.
  vm_heap_trim();
  CHECK(host_resident(a, 1024) == 0);
  char* c = alloc(1024);
  CHECK(c == a);
  CHECK(c[0] == 0);
  CHECK(c[700 * PAGE_SIZE + 5] == 0);
  c[1] = 1;
  CHECK(b[1] == 0);  // not shared with the moved range
  vm_heap_free(reinterpret_cast<vaddr_t>(c), 1024 * PAGE_SIZE);
  vm_heap_free(reinterpret_cast<vaddr_t>(b), 4096 * PAGE_SIZE);
  vm_heap_free(reinterpret_cast<vaddr_t>(blocker), PAGE_SIZE);
  CHECK(vmrt_check(nullptr, 2) == 0);
}

// kmem's large cache asks the heap to give back the pages of a cached run only when few of
// them hold memory (vm_heap_discard_sparse): the count is exact, a sparse range loses just
// those pages (one batched host call) and stays allocated, a dense one keeps them all.
TEST_CASE("a range touched sparsely gives its pages back in place; a dense one keeps them") {
  boot();
  if (host_has_swap() && vm_heap_get_backing() == VM_HEAP_HOST) {
    MESSAGE("SKIP: the host has swap (/proc/swaps): mincore cannot count the host's pages");
    return;
  }
  constexpr std::size_t kPages = 8192;  // 32 MiB
  char* p = alloc(kPages);
  if (vm_heap_get_backing() == VM_HEAP_FRAMES) {  // every page of a window has a frame
    CHECK(vm_heap_discard_sparse(reinterpret_cast<vaddr_t>(p), kPages * PAGE_SIZE, kPages / 8) == ~vsize_t{0});
    MESSAGE("SKIP: VMRT_HEAP=frames cannot tell touched pages (answers ~0, as checked)");
    vm_heap_free(reinterpret_cast<vaddr_t>(p), kPages * PAGE_SIZE);
    return;
  }
  if (vm_heap_get_backing() != VM_HEAP_HOST) {  // PAGED: fault-around zero-fills neighbours
    MESSAGE("SKIP: counts are of host pages (default VMRT_HEAP) only");
    vm_heap_free(reinterpret_cast<vaddr_t>(p), kPages * PAGE_SIZE);
    return;
  }
  for (std::size_t i = 0; i < kPages; i += 1000) p[i * PAGE_SIZE] = 7;  // 9 pages, 9 runs
  const std::int64_t discarded = vm_stat_get(V_HEAP_DISCARDED);
  // Over the bound: counted (or "more"), nothing given back.
  CHECK(vm_heap_discard_sparse(reinterpret_cast<vaddr_t>(p), kPages * PAGE_SIZE, 4) > 4);
  CHECK(p[1000 * PAGE_SIZE] == 7);
  CHECK(vm_stat_get(V_HEAP_DISCARDED) == discarded);
  // Under it: the nine pages go, the range stays allocated and reads as zeros.
  CHECK(vm_heap_discard_sparse(reinterpret_cast<vaddr_t>(p), kPages * PAGE_SIZE, kPages / 8) == 9);
  CHECK(vm_stat_get(V_HEAP_DISCARDED) == discarded + 9);
  CHECK(host_resident(p, kPages) == 0);
  p[5 * PAGE_SIZE] = 1;  // still the caller's: writable
  CHECK(vm_heap_discard_sparse(reinterpret_cast<vaddr_t>(p), kPages * PAGE_SIZE, kPages / 8) == 1);
  // Nothing resident: nothing to do.
  CHECK(vm_heap_discard_sparse(reinterpret_cast<vaddr_t>(p), kPages * PAGE_SIZE, kPages / 8) == 0);
  bool zero = true;
  for (std::size_t i = 0; i < kPages; i += 1000) zero = zero && p[i * PAGE_SIZE] == 0 && p[5 * PAGE_SIZE] == 0;
  CHECK(zero);
  vm_heap_free(reinterpret_cast<vaddr_t>(p), kPages * PAGE_SIZE);
  CHECK(vmrt_check(nullptr, 2) == 0);
}
