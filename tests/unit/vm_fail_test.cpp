// vm_fail_test — the fault-injection spec parser and trigger engine (vm/vm_fail).
#include <doctest/doctest.h>

#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <string>
#include <atomic>
#include <thread>
#include <unistd.h>
#include <vector>

#include <sys/mman.h>

#include "runtime_test_support.h"
#include "vm/vm_fail.h"

// The last tests fault through the trap backend: run under both.
RUNTIME_TESTS_UNDER_BOTH_BACKENDS()

using namespace vmrt;

namespace {

vm_fail_spec parse_ok(const char* text) {
  vm_fail_spec s;
  vm_fail_error e;
  bool ok = vm_fail_parse(text, &s, &e);
  INFO("spec: " << text << " error: " << e.message);
  REQUIRE(ok);
  return s;
}

// Returns the message; *offset/*length the token.
std::string parse_err(const char* text, std::size_t* offset = nullptr, std::size_t* length = nullptr) {
  vm_fail_spec s;
  vm_fail_error e;
  bool ok = vm_fail_parse(text, &s, &e);
  INFO("spec: " << text);
  REQUIRE_FALSE(ok);
  if (offset != nullptr) *offset = e.offset;
  if (length != nullptr) *length = e.length;
  return e.message;
}

// Arm `text` with logging to /dev/null; run `calls` evaluations of fp with `size`;
// return the 1-based numbers of the failed calls.
std::vector<int> run(const char* text, vm_fail_point fp, int calls, std::size_t size = 16, unsigned sub = 0) {
  vm_fail_spec s = parse_ok(text);
  static FILE* devnull = std::fopen("/dev/null", "w");
  vm_fail_set_log_fd(fileno(devnull));
  vm_fail_arm(s);
  std::vector<int> failed;
  for (int k = 1; k <= calls; ++k)
    if (vm_fail_armed() && vm_fail_eval(fp, size, sub)) failed.push_back(k);
  vm_fail_disarm();
  return failed;
}

}  // namespace

TEST_CASE("point names and the alloc group") {
  vm_fail_spec s = parse_ok("malloc");
  CHECK(s.nclauses == 1);
  CHECK(s.clauses[0].points == (1u << FP_MALLOC));
  s = parse_ok("alloc");
  CHECK(s.clauses[0].points == kVmFailAllocGroup);
  s = parse_ok("malloc+calloc+frame:nth=2");
  CHECK(s.clauses[0].points == ((1u << FP_MALLOC) | (1u << FP_CALLOC) | (1u << FP_FRAME)));
  for (unsigned p = 0; p < FP_COUNT; ++p) {
    s = parse_ok(kVmFailPointNames[p]);
    CHECK(s.clauses[0].points == (1u << p));
  }
  s = parse_ok("kmem[M_LIBC|cxx]:after=3");
  CHECK(s.clauses[0].kmem_types == ((1u << 5) | (1u << 6)));
  s = parse_ok("malloc:prob=0.01,seed=7;frame:nth=100;kmem[M_LIBC]:after=1000,times=5;malloc:size=1M-,every=3");
  CHECK(s.nclauses == 4);
  CHECK(s.clauses[1].nth == 100);
  CHECK(s.clauses[2].after == 1000);
  CHECK(s.clauses[2].times == 5);
  CHECK(s.clauses[3].size_lo == 1u << 20);
  CHECK(s.clauses[3].size_hi == UINT64_MAX);
  CHECK(s.clauses[3].every == 3);
  // Spaces around separators and a trailing ';' are accepted.
  s = parse_ok(" malloc : nth=1 , times=1 ;\n frame ; ");
  CHECK(s.nclauses == 2);
}

TEST_CASE("every term parses") {
  vm_fail_spec s = parse_ok("malloc:prob=25%,seed=9,every=2,after=4,bytes=64K,times=3,size=16-1K,thread=main,print");
  const vm_fail_clause& c = s.clauses[0];
  CHECK(c.has_prob);
  CHECK(c.prob_threshold == (1ull << 62));
  CHECK(c.seed == 9);
  CHECK(c.every == 2);
  CHECK(c.after == 4);
  CHECK(c.has_bytes);
  CHECK(c.bytes == 65536);
  CHECK(c.times == 3);
  CHECK(c.size_lo == 16);
  CHECK(c.size_hi == 1024);
  CHECK(c.main_thread);
  CHECK(c.print_only);
  s = parse_ok("malloc:prob=0.5");
  CHECK(s.clauses[0].prob_threshold == (1ull << 63));
  s = parse_ok("malloc:prob=1");
  CHECK(s.clauses[0].prob_threshold == UINT64_MAX);
  s = parse_ok("malloc:prob=0.99999999999999999999999999999999");  // digits past 10^-18 dropped
  CHECK(s.clauses[0].prob_threshold > UINT64_MAX - (UINT64_MAX >> 58));
  CHECK(s.clauses[0].prob_threshold < UINT64_MAX);
  s = parse_ok("malloc:prob=0.000000000000000001");
  CHECK(s.clauses[0].prob_threshold == 18);  // 2^64 / 10^18, rounded down
  s = parse_ok("malloc:prob=0.1%");
  CHECK(s.clauses[0].prob_threshold == 18446744073709551ull);  // 2^64 / 1000
  s = parse_ok("malloc:thread=12+34");
  CHECK(s.clauses[0].ntids == 2);
  CHECK(s.clauses[0].tids[1] == 34);
  s = parse_ok("malloc:size=-100");
  CHECK(s.clauses[0].size_lo == 0);
  CHECK(s.clauses[0].size_hi == 100);
  s = parse_ok("malloc:size=4K");
  CHECK(s.clauses[0].size_lo == 4096);
  CHECK(s.clauses[0].size_hi == 4096);
  s = parse_ok("malloc:caller=sqlite3Malloc,object=libsqlite3");
  CHECK(std::strcmp(s.clauses[0].caller, "sqlite3Malloc") == 0);
  CHECK(std::strcmp(s.clauses[0].object, "libsqlite3") == 0);
}

TEST_CASE("rejected specs point at the bad token") {
  std::size_t off = 0, len = 0;
  CHECK(parse_err("", &off) .find("empty spec") != std::string::npos);
  CHECK(parse_err("mallok:nth=1", &off, &len).find("unknown fail point") != std::string::npos);
  CHECK(off == 0);
  CHECK(len == 6);
  CHECK(parse_err("malloc:nht=1", &off, &len).find("unknown trigger term") != std::string::npos);
  CHECK(off == 7);
  CHECK(len == 3);
  CHECK(parse_err("malloc:nth=0", &off).find("nth: not a count >= 1") != std::string::npos);
  CHECK(off == 11);
  CHECK(parse_err("malloc:nth=x").find("nth: not a count") != std::string::npos);
  CHECK(parse_err("malloc:every=99999999999999999999").find("every: not a count") != std::string::npos);
  CHECK(parse_err("malloc:prob=0").find("prob: not a probability") != std::string::npos);
  CHECK(parse_err("malloc:prob=1.5").find("prob: not a probability") != std::string::npos);
  CHECK(parse_err("malloc:prob=abc").find("prob: not a probability") != std::string::npos);
  CHECK(parse_err("malloc:prob=101%").find("prob: not a probability") != std::string::npos);
  CHECK(parse_err("malloc:prob=123456789012345678901234567890").find("prob: not a probability") != std::string::npos);
  CHECK(parse_err("malloc:prob=0.0000000000000000000001").find("prob: not a probability") != std::string::npos);
  CHECK(parse_err("malloc:seed=3").find("seed= without prob=") != std::string::npos);
  CHECK(parse_err("malloc:bytes=10Q").find("bytes: not a size") != std::string::npos);
  CHECK(parse_err("malloc:size=9-3").find("empty range") != std::string::npos);
  CHECK(parse_err("malloc:size=-").find("size: not a size or range") != std::string::npos);
  CHECK(parse_err("malloc:thread=bob").find("thread: not 'main'") != std::string::npos);
  CHECK(parse_err("malloc:thread=1+").find("trailing '+'") != std::string::npos);
  CHECK(parse_err("malloc:nth=1,nth=2", &off).find("term given twice") != std::string::npos);
  CHECK(off == 13);
  CHECK(parse_err("malloc:print=1").find("print takes no value") != std::string::npos);
  CHECK(parse_err("malloc:times").find("times needs a value") != std::string::npos);
  CHECK(parse_err("malloc[libc]").find("only kmem takes a [type]") != std::string::npos);
  CHECK(parse_err("kmem[bogus]", &off, &len).find("unknown kmem malloc type") != std::string::npos);
  CHECK(off == 5);
  CHECK(len == 5);
  CHECK(parse_err("kmem[libc").find("expected '|' or ']'") != std::string::npos);
  CHECK(parse_err("malloc;;frame", &off).find("empty clause") != std::string::npos);
  CHECK(off == 7);
  CHECK(parse_err("malloc nth=1").find("expected ',' between terms") != std::string::npos);
  CHECK(parse_err("malloc+malloc").find("named twice") != std::string::npos);
  CHECK(parse_err("malloc:after=5,nth=3").find("can never fire") != std::string::npos);
  CHECK(parse_err("malloc:caller=").find("caller: needs a name") != std::string::npos);
  std::string many;
  for (int k = 0; k < 17; ++k) many += "malloc;";
  CHECK(parse_err(many.c_str()).find("too many clauses") != std::string::npos);
}

TEST_CASE("format_error draws a caret under the token") {
  const char* text = "malloc:nth=1;frame:evry=2";
  vm_fail_spec s;
  vm_fail_error e;
  REQUIRE_FALSE(vm_fail_parse(text, &s, &e));
  char buf[512];
  vm_fail_format_error(text, e, buf, sizeof buf);
  CHECK(std::string(buf) == std::string(e.message) + "\n  " + text + "\n  " + std::string(19, ' ') + "^^^^");
}

TEST_CASE("count triggers give exact sequences") {
  CHECK(run("malloc", FP_MALLOC, 3) == std::vector<int>{1, 2, 3});
  CHECK(run("malloc:nth=4", FP_MALLOC, 10) == std::vector<int>{4});
  CHECK(run("malloc:every=3", FP_MALLOC, 10) == std::vector<int>{3, 6, 9});
  CHECK(run("malloc:after=7", FP_MALLOC, 10) == std::vector<int>{8, 9, 10});
  CHECK(run("malloc:times=2", FP_MALLOC, 10) == std::vector<int>{1, 2});
  CHECK(run("malloc:after=2,every=2,times=2", FP_MALLOC, 20) == std::vector<int>{4, 6});
  CHECK(run("malloc:print", FP_MALLOC, 5).empty());
  // Other points are untouched; the group covers every shim function.
  CHECK(run("malloc", FP_CALLOC, 5).empty());
  CHECK(run("alloc:nth=2", FP_NEW, 5) == std::vector<int>{2});
}

TEST_CASE("size ranges filter, and unmatched calls are not counted") {
  CHECK(run("malloc:size=1K-", FP_MALLOC, 5, 100).empty());
  CHECK(run("malloc:size=1K-", FP_MALLOC, 2, 4096) == std::vector<int>{1, 2});
  CHECK(run("malloc:size=-64,nth=2", FP_MALLOC, 5, 64) == std::vector<int>{2});
  // Interleaved sizes: nth counts only matching calls.
  vm_fail_spec s = parse_ok("malloc:size=1000-,nth=2");
  vm_fail_set_log_fd(open("/dev/null", O_WRONLY));
  vm_fail_arm(s);
  CHECK_FALSE(vm_fail_eval(FP_MALLOC, 2000));
  CHECK_FALSE(vm_fail_eval(FP_MALLOC, 10));
  CHECK_FALSE(vm_fail_eval(FP_MALLOC, 10));
  CHECK(vm_fail_eval(FP_MALLOC, 1000));
  CHECK(vm_fail_get_counts(FP_MALLOC).calls == 4);
  CHECK(vm_fail_get_counts(FP_MALLOC).failures == 1);
  vm_fail_disarm();
}

TEST_CASE("byte budget") {
  // 100-byte calls under a 250-byte budget: two pass, then every call fails.
  CHECK(run("malloc:bytes=250", FP_MALLOC, 5, 100) == std::vector<int>{3, 4, 5});
  CHECK(run("malloc:bytes=250,times=1", FP_MALLOC, 5, 100) == std::vector<int>{3});
  CHECK(run("malloc:bytes=0", FP_MALLOC, 2, 1) == std::vector<int>{1, 2});
}

TEST_CASE("kmem type filter") {
  CHECK(run("kmem[libc]", FP_KMEM, 3, 16, 5) == std::vector<int>{1, 2, 3});
  CHECK(run("kmem[libc]", FP_KMEM, 3, 16, 6).empty());
  CHECK(run("kmem", FP_KMEM, 2, 16, 6) == std::vector<int>{1, 2});
}

TEST_CASE("probability is seeded and deterministic") {
  std::vector<int> a = run("malloc:prob=0.1,seed=7", FP_MALLOC, 10000);
  std::vector<int> b = run("malloc:prob=0.1,seed=7", FP_MALLOC, 10000);
  std::vector<int> c = run("malloc:prob=0.1,seed=8", FP_MALLOC, 10000);
  CHECK(a == b);
  CHECK(a != c);
  CHECK(a.size() > 900);
  CHECK(a.size() < 1100);
  CHECK(run("malloc:prob=100%", FP_MALLOC, 50).size() == 50);
  std::vector<int> d = run("malloc:prob=0.5,times=3", FP_MALLOC, 1000);
  CHECK(d.size() == 3);
  // Combined with after: the draws for calls 1..100 are not consumed differently.
  std::vector<int> e = run("malloc:prob=0.1,seed=7,after=100", FP_MALLOC, 10000);
  std::vector<int> tail;
  for (int x : a)
    if (x > 100) tail.push_back(x);
  CHECK(e == tail);
}

TEST_CASE("thread filter") {
  char spec[64];
  std::snprintf(spec, sizeof spec, "malloc:thread=%d", static_cast<int>(gettid()));
  CHECK(run(spec, FP_MALLOC, 2) == std::vector<int>{1, 2});
  CHECK(run("malloc:thread=main", FP_MALLOC, 2) == std::vector<int>{1, 2});
  CHECK(run("malloc:thread=2147483647", FP_MALLOC, 2).empty());
  std::vector<int> other;
  std::thread t([&] { other = run("malloc:thread=main", FP_MALLOC, 3); });
  t.join();
  CHECK(other.empty());
}

TEST_CASE("counts stay exact across threads") {
  for (const char* spec : {"malloc:prob=0.5,seed=3,times=100", "malloc:every=7", "malloc:bytes=40000"}) {
    vm_fail_set_log_fd(open("/dev/null", O_WRONLY));
    vm_fail_set_backtrace(false);
    vm_fail_arm(parse_ok(spec));
    std::atomic<int> failed{0};
    std::vector<std::thread> ts;
    for (int t = 0; t < 4; ++t)
      ts.emplace_back([&] {
        for (int k = 0; k < 10000; ++k)
          if (vm_fail_eval(FP_MALLOC, 10)) failed.fetch_add(1);
      });
    for (auto& t : ts) t.join();
    vm_fail_disarm();
    vm_fail_set_backtrace(true);
    INFO(spec);
    CHECK(vm_fail_get_counts(FP_MALLOC).calls == 40000);
    CHECK(vm_fail_get_counts(FP_MALLOC).failures == static_cast<std::uint64_t>(failed.load()));
    int expect = spec[7] == 'p' ? 100 : spec[7] == 'e' ? 40000 / 7 : 40000 - 4000;
    CHECK(failed.load() == expect);
  }
}

TEST_CASE("call-site filter by shared object") {
  // The test's stack runs through libc's __libc_start_main.
  CHECK(run("malloc:object=libc.so", FP_MALLOC, 2) == std::vector<int>{1, 2});
  CHECK(run("malloc:object=libnothing", FP_MALLOC, 2).empty());
  CHECK(run("malloc:caller=__libc_start_main", FP_MALLOC, 1) == std::vector<int>{1});
  CHECK(run("malloc:caller=no_such_function", FP_MALLOC, 1).empty());
}

TEST_CASE("several clauses: each counts every call for itself") {
  vm_fail_spec s = parse_ok("malloc:nth=2;malloc:nth=3;frame:every=2");
  vm_fail_set_log_fd(open("/dev/null", O_WRONLY));
  vm_fail_arm(s);
  CHECK_FALSE(vm_fail_eval(FP_MALLOC, 1));
  CHECK(vm_fail_eval(FP_MALLOC, 1));
  CHECK(vm_fail_eval(FP_MALLOC, 1));
  CHECK_FALSE(vm_fail_eval(FP_MALLOC, 1));
  CHECK_FALSE(vm_fail_eval(FP_FRAME, 4096));
  CHECK(vm_fail_eval(FP_FRAME, 4096));
  CHECK(vm_fail_get_counts(FP_MALLOC).failures == 2);
  vm_fail_disarm();
  CHECK_FALSE(vm_fail_armed());
  CHECK_FALSE(vm_fail_eval(FP_MALLOC, 1));
}

TEST_CASE("log records and the summary") {
  char path[] = "/tmp/vm_fail_test_XXXXXX";
  int fd = mkstemp(path);
  REQUIRE(fd >= 0);
  vm_fail_set_log_fd(fd);
  vm_fail_arm(parse_ok("calloc:nth=2;malloc:every=2,print"));
  CHECK_FALSE(vm_fail_eval(FP_CALLOC, 7));
  CHECK(vm_fail_eval(FP_CALLOC, 8));
  CHECK_FALSE(vm_fail_eval(FP_MALLOC, 1));
  CHECK_FALSE(vm_fail_eval(FP_MALLOC, 1));
  vm_fail_summary();
  vm_fail_disarm();
  std::string text;
  char buf[4096];
  ssize_t n;
  lseek(fd, 0, SEEK_SET);
  while ((n = read(fd, buf, sizeof buf)) > 0) text.append(buf, static_cast<std::size_t>(n));
  close(fd);
  unlink(path);
  INFO(text);
  CHECK(text.find("vmrt-fail: inject calloc #2 size=8 clause=1 tid=") != std::string::npos);
  CHECK(text.find("vmrt-fail: print malloc #2 size=1 clause=2 tid=") != std::string::npos);
  CHECK(text.find("vmrt-fail:   at ") != std::string::npos);  // a backtrace
  CHECK(text.find("vmrt-fail: end") != std::string::npos);
  CHECK(text.find("vmrt-fail:   malloc                   2         0") != std::string::npos);
  CHECK(text.find("vmrt-fail:   calloc                   2         1") != std::string::npos);
}

// ---- the fail points wired into the VM, through the public API ----


TEST_CASE("mmap family fail points: ENOMEM from the API, nothing changed") {
  REQUIRE(vmrt_init() == 0);
  vmrt_vmspace* vs = vmrt_vmspace_create(16u << 20);
  REQUIRE(vs != nullptr);
  vm_fail_set_log_fd(open("/dev/null", O_WRONLY));
  vm_fail_arm(parse_ok("mmap:nth=2;mprotect;munmap;mlock"));
  void* a = vmrt_mmap(vs, nullptr, 1 << 16, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  CHECK(a != VMRT_MAP_FAILED);
  errno = 0;
  void* b = vmrt_mmap(vs, nullptr, 1 << 16, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  CHECK(b == VMRT_MAP_FAILED);
  CHECK(errno == ENOMEM);
  errno = 0;
  CHECK(vmrt_mprotect(vs, a, 4096, PROT_READ) == -1);
  CHECK(errno == ENOMEM);
  errno = 0;
  CHECK(vmrt_mlock(vs, a, 4096) == -1);
  CHECK(errno == EAGAIN);  // mlock(2)'s "could not be locked"
  errno = 0;
  CHECK(vmrt_munmap(vs, a, 4096) == -1);
  CHECK(errno == ENOMEM);
  vm_fail_disarm();
  static_cast<char*>(a)[0] = 1;  // still mapped and writable
  CHECK(vmrt_munmap(vs, a, 1 << 16) == 0);
  CHECK(vm_fail_get_counts(FP_MMAP).calls == 2);
  CHECK(vm_fail_get_counts(FP_MMAP).failures == 1);
  vmrt_vmspace_destroy(vs);
}

// The trap backend delivers a refused fault as a RESOURCE trap (runtime/trap.cpp:
// the hook, else the faulting signal to the program's handler, else death).
TEST_CASE("a failed frame allocation during a fault is a RESOURCE trap, under either backend") {
  REQUIRE(vmrt_init() == 0);
  vmrt_vmspace* vs = vmrt_vmspace_create(16u << 20);
  REQUIRE(vs != nullptr);
  char* p = static_cast<char*>(vmrt_mmap(vs, nullptr, 8 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  REQUIRE(p != VMRT_MAP_FAILED);
  REQUIRE(vmrt_madvise(vs, p, 8 << 20, MADV_RANDOM) == 0);  // no fault-around
  p[0] = 1;  // the trap backend is up
  vm_fail_set_log_fd(open("/dev/null", O_WRONLY));
  vm_fail_arm(parse_ok("frame"));
  bool trapped = rtt::traps([&] { p[6 << 20] = 1; });  // never touched: needs a frame
  vm_fail_disarm();
  CHECK(trapped);
  CHECK(rtt::trap_catcher::last.reason == VMRT_TRAP_RESOURCE);
  CHECK(vm_fail_get_counts(FP_FRAME).failures >= 2);  // the fault's run, then its single-page retry
  p[6 << 20] = 2;  // the same fault succeeds once frames come back
  CHECK(p[6 << 20] == 2);
  vmrt_vmspace_destroy(vs);
}

// ---- sleep= and the pageout point ----

TEST_CASE("sleep= delays instead of failing; the delay goes to the caller when asked") {
  vm_fail_spec s = parse_ok("pageout:sleep=20ms,every=2;pager_write:sleep=500us;malloc:sleep=3");
  CHECK(s.clauses[0].points == (1u << FP_PAGEOUT));
  CHECK(s.clauses[0].sleep_ns == 20000000u);
  CHECK(s.clauses[1].sleep_ns == 500000u);
  CHECK(s.clauses[2].sleep_ns == 3000000u);  // bare digits: milliseconds (fail(9)'s sleep)
  CHECK(parse_ok("malloc:sleep=1s").clauses[0].sleep_ns == 1000000000u);
  CHECK(parse_ok("malloc:sleep=7ns").clauses[0].sleep_ns == 7u);
  CHECK(parse_err("malloc:sleep=0").find("sleep: not a duration") != std::string::npos);
  CHECK(parse_err("malloc:sleep=61s").find("sleep: not a duration") != std::string::npos);
  CHECK(parse_err("malloc:sleep=5min").find("sleep: not a duration") != std::string::npos);
  CHECK(parse_err("malloc:sleep=").find("sleep: not a duration") != std::string::npos);
  CHECK(parse_err("malloc:sleep=1ms,print").find("both actions") != std::string::npos);
  CHECK(parse_err("malloc:sleep").find("sleep needs a value") != std::string::npos);

  vm_fail_set_log_fd(open("/dev/null", O_WRONLY));
  vm_fail_arm(s);
  std::uint64_t d = 0;
  CHECK_FALSE(vm_fail_eval(FP_PAGEOUT, 0, 0, &d));
  CHECK(d == 0);  // call 1: every=2 lets it through
  CHECK_FALSE(vm_fail_eval(FP_PAGEOUT, 0, 0, &d));
  CHECK(d == 20000000u);
  CHECK_FALSE(vm_fail_eval(FP_PAGER_WRITE, 4096, 0, &d));
  CHECK(d == 20500000u);  // added up
  vm_fail_arm(parse_ok("malloc:nth=2;malloc:sleep=1ms"));
  d = 0;
  CHECK_FALSE(vm_fail_eval(FP_MALLOC, 1, 0, &d));
  CHECK(d == 1000000u);
  d = 0;
  CHECK(vm_fail_eval(FP_MALLOC, 1, 0, &d));  // failed: the failure is the answer, no delay
  CHECK(d == 0);
  CHECK(vm_fail_get_counts(FP_MALLOC).delays == 1);
  CHECK(vm_fail_get_counts(FP_MALLOC).failures == 1);
  vm_fail_disarm();
}

// ---- model-based: 128 generated specs against a reference model ----
//
// The reference model is the README's description ("Grammar"): filters (points, kmem type,
// size, thread) decide which calls a clause sees and number them 1, 2, 3 ...; times= stops
// the clause after K firings, after= skips the first N, nth= only N, every= the multiples,
// bytes= passes calls while the bytes passed fit, prob= draws; a clause with print or
// sleep= never fails a call (sleep= delays it, unless another clause fails it); a call
// fails when any clause fires, and every clause counts every call.  The PRNG's draw for
// clause c's call n is taken from the engine through an oracle spec that holds the same
// clause with only its filters and prob=/seed= (same clause index, so the same draws).

namespace {

struct model_clause {
  std::uint32_t points = 0;
  int kmem_sub = -1;  // -1: any kmem type
  std::uint64_t size_lo = 0, size_hi = UINT64_MAX;
  int thread = 0;     // 0 none, 1 main, 2 a thread id that is not ours
  std::uint64_t every = 0, nth = 0, after = 0, times = 0, bytes = 0;
  bool has_bytes = false;
  std::string prob;  // "" none
  std::uint64_t seed = 0;
  bool print = false;
  std::uint64_t sleep_us = 0;
  // text pieces
  std::string points_text, filters_text, triggers_text;
  std::vector<bool> draws;  // draws[n]: prob fires on call n (from the oracle)
};

struct model_call {
  vm_fail_point fp;
  std::size_t size;
  unsigned sub;
};

struct lcg {
  std::uint64_t s;
  unsigned next(unsigned bound) {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    return static_cast<unsigned>((s >> 33) % bound);
  }
};

bool sees(const model_clause& c, const model_call& k) {
  if ((c.points & (1u << k.fp)) == 0) return false;
  if (k.fp == FP_KMEM && c.kmem_sub >= 0 && static_cast<unsigned>(c.kmem_sub) != k.sub) return false;
  if (k.size < c.size_lo || k.size > c.size_hi) return false;
  if (c.thread == 2) return false;
  return true;
}

std::string clause_text(const model_clause& c, bool oracle) {
  std::string terms = c.filters_text;
  auto add = [&](const std::string& t) {
    if (t.empty()) return;
    if (!terms.empty()) terms += ",";
    terms += t;
  };
  if (oracle) {
    add("prob=" + c.prob + ",seed=" + std::to_string(c.seed));
  } else {
    add(c.triggers_text);
  }
  return terms.empty() ? c.points_text : c.points_text + ":" + terms;
}

}  // namespace

TEST_CASE("model: 128 generated specs fail exactly the calls the reference model says") {
  vm_fail_set_log_fd(open("/dev/null", O_WRONLY));
  vm_fail_set_backtrace(false);
  struct point_choice {
    const char* text;
    std::uint32_t bits;
    int sub;
  };
  const point_choice kPoints[] = {
      {"malloc", 1u << FP_MALLOC, -1},
      {"calloc", 1u << FP_CALLOC, -1},
      {"alloc", kVmFailAllocGroup, -1},
      {"malloc+new", (1u << FP_MALLOC) | (1u << FP_NEW), -1},
      {"kmem[libc]", 1u << FP_KMEM, 5},
      {"kmem", 1u << FP_KMEM, -1},
      {"pageout", 1u << FP_PAGEOUT, -1},
      {"munmap+mprotect+mlock", (1u << FP_MUNMAP) | (1u << FP_MPROTECT) | (1u << FP_MLOCK), -1},
  };
  const vm_fail_point kCallPoints[] = {FP_MALLOC, FP_CALLOC, FP_NEW, FP_KMEM, FP_PAGEOUT, FP_MPROTECT, FP_MLOCK};
  const std::size_t kSizes[] = {8, 16, 32, 48, 64, 100, 200, 1000, 4096};
  unsigned term_uses[16] = {};  // coverage: how many specs used each term
  enum { U_PROB, U_EVERY, U_NTH, U_AFTER, U_TIMES, U_BYTES, U_SIZE, U_THREAD, U_PRINT, U_SLEEP, U_TWO, U_THREE };
  lcg r{12345};
  constexpr int kCalls = 400;
  std::size_t total_fail = 0, total_delay = 0, specs_failing = 0;  // the model is not trivially "nothing"
  for (int spec_no = 0; spec_no < 128; ++spec_no) {
    unsigned nclauses = 1 + r.next(3);
    if (nclauses == 2) ++term_uses[U_TWO];
    if (nclauses == 3) ++term_uses[U_THREE];
    std::vector<model_clause> cls(nclauses);
    for (model_clause& c : cls) {
      const point_choice& pc = kPoints[r.next(8)];
      c.points = pc.bits;
      c.kmem_sub = pc.sub;
      c.points_text = pc.text;
      auto filt = [&](const std::string& t) { c.filters_text += (c.filters_text.empty() ? "" : ",") + t; };
      auto trig = [&](const std::string& t) { c.triggers_text += (c.triggers_text.empty() ? "" : ",") + t; };
      if (r.next(3) == 0) {
        ++term_uses[U_SIZE];
        switch (r.next(4)) {
          case 0: c.size_lo = 16; c.size_hi = 64; filt("size=16-64"); break;
          case 1: c.size_lo = 100; filt("size=100-"); break;
          case 2: c.size_hi = 32; filt("size=-32"); break;
          default: c.size_lo = c.size_hi = 1000; filt("size=1000"); break;
        }
      }
      if (r.next(6) == 0) {
        ++term_uses[U_THREAD];
        c.thread = 1 + r.next(2);
        filt(c.thread == 1 ? "thread=main" : "thread=2147483646");
      }
      // A count term, one spec in `one_in`: field = base + a draw below `span`.
      auto count_term = [&](unsigned one_in, unsigned use, std::uint64_t* field, std::uint64_t base, unsigned span,
                            const char* key) {
        if (r.next(one_in) != 0) return;
        ++term_uses[use];
        *field = base + r.next(span);
        trig(std::string(key) + "=" + std::to_string(*field));
      };
      count_term(3, U_AFTER, &c.after, 1, 20, "after");
      count_term(4, U_NTH, &c.nth, c.after + 1, 30, "nth");  // nth <= after is refused
      count_term(3, U_EVERY, &c.every, 2, 4, "every");
      count_term(3, U_TIMES, &c.times, 1, 6, "times");
      if (r.next(4) == 0) {
        ++term_uses[U_BYTES];
        c.has_bytes = true;
        c.bytes = 100 + r.next(3000);
        trig("bytes=" + std::to_string(c.bytes));
      }
      if (r.next(3) == 0) {
        ++term_uses[U_PROB];
        const char* probs[] = {"0.3", "50%", "1", ".05"};
        c.prob = probs[r.next(4)];
        c.seed = r.next(1000);
        trig("prob=" + c.prob + ",seed=" + std::to_string(c.seed));
      }
      unsigned action = r.next(8);
      if (action == 0) {
        ++term_uses[U_PRINT];
        c.print = true;
        trig("print");
      } else if (action == 1) {
        ++term_uses[U_SLEEP];
        c.sleep_us = 1 + r.next(900);
        trig("sleep=" + std::to_string(c.sleep_us) + "us");
      }
    }
    std::string text;
    for (const model_clause& c : cls) text += (text.empty() ? "" : ";") + clause_text(c, false);
    std::vector<model_call> calls(kCalls);
    for (model_call& k : calls) {
      k.fp = kCallPoints[r.next(7)];
      k.size = kSizes[r.next(9)];
      k.sub = k.fp == FP_KMEM ? 5 + r.next(2) : 0;
    }
    // Oracle runs for the clauses with prob=.
    for (unsigned ci = 0; ci < nclauses; ++ci) {
      model_clause& c = cls[ci];
      if (c.prob.empty()) continue;
      std::string otext;
      for (unsigned cj = 0; cj < nclauses; ++cj)
        otext += (otext.empty() ? "" : ";") + (cj == ci ? clause_text(c, true) : std::string("madvise_never:nth=1"));
      // The other clauses: a point no call uses, so they never fire (kept for the index).
      for (std::size_t pos; (pos = otext.find("madvise_never")) != std::string::npos;) otext.replace(pos, 13, "swap_corrupt");
      vm_fail_arm(parse_ok(otext.c_str()));
      c.draws.assign(kCalls + 2, false);
      std::uint64_t n = 0;
      for (const model_call& k : calls) {
        bool f = vm_fail_eval(k.fp, k.size, k.sub);
        if (sees(c, k)) c.draws[++n] = f;
        else REQUIRE_FALSE(f);
      }
      vm_fail_disarm();
    }
    // The model.
    std::vector<std::uint64_t> n(nclauses, 0), used(nclauses, 0), fired(nclauses, 0);
    std::vector<int> want_fail, want_delay_us;
    for (const model_call& k : calls) {
      bool fail = false;
      std::uint64_t delay = 0;
      for (unsigned ci = 0; ci < nclauses; ++ci) {
        const model_clause& c = cls[ci];
        if (!sees(c, k)) continue;
        std::uint64_t m = ++n[ci];
        if (c.times != 0 && fired[ci] >= c.times) continue;
        if (c.after != 0 && m <= c.after) continue;
        if (c.nth != 0 && m != c.nth) continue;
        if (c.every != 0 && m % c.every != 0) continue;
        if (c.has_bytes && used[ci] + k.size <= c.bytes) {
          used[ci] += k.size;
          continue;
        }
        if (!c.prob.empty() && !c.draws[m]) continue;
        ++fired[ci];
        if (c.sleep_us != 0) delay += c.sleep_us;
        else if (!c.print) fail = true;
      }
      want_fail.push_back(fail);
      want_delay_us.push_back(fail ? 0 : static_cast<int>(delay));
    }
    // The engine.
    vm_fail_arm(parse_ok(text.c_str()));
    std::vector<int> got_fail, got_delay_us;
    for (const model_call& k : calls) {
      std::uint64_t d = 0;
      got_fail.push_back(vm_fail_eval(k.fp, k.size, k.sub, &d));
      got_delay_us.push_back(static_cast<int>(d / 1000));
    }
    vm_fail_disarm();
    INFO("spec #" << spec_no << ": " << text);
    CHECK(got_fail == want_fail);
    CHECK(got_delay_us == want_delay_us);
    std::size_t f = 0;
    for (int k = 0; k < kCalls; ++k) {
      f += want_fail[k] != 0;
      total_delay += want_delay_us[k] != 0;
    }
    total_fail += f;
    specs_failing += f != 0 && f != static_cast<std::size_t>(kCalls);
  }
  INFO("failed calls " << total_fail << ", delayed " << total_delay << ", specs failing some calls " << specs_failing);
  CHECK(specs_failing >= 64);
  CHECK(total_delay >= 50);
  vm_fail_set_backtrace(true);
  // Every term was combined with others many times.
  for (unsigned u = U_PROB; u <= U_THREE; ++u) {
    INFO("term " << u);
    CHECK(term_uses[u] >= 8);
  }
}
