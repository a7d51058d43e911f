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
