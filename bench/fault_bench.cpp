// fault_bench — vmrt's fault resolution side by side with the host kernel's, in one run.
//
// Three measurements, each taken on plain anonymous host memory and on a vmrt
// vmspace in the same worker process, interleaved rep by rep:
//   seq_touch   first touch of 256 MiB, one write per 4 KiB page, in address order;
//   rand_touch  the same pages in a random permutation (identical for host and vmrt);
//   cow         copy-on-write faults after a fork: host = fork() a child after touching
//               N pages and time the child's write to each page (and, separately, the
//               parent's write to its now-shared pages while the child lives);
//               vmrt = vmrt_vmspace_fork, then write each page in the child vmspace
//               (through vmrt_translate) and then each page in the parent.
// The runtime boots once per process with one trap backend (VMRT_TRAP), so the driver
// re-executes itself (/proc/self/exe --worker) once per backend.  Only the public C
// API of runtime/vmrt.h is used.  Timed regions cover the page writes only (not mmap,
// munmap, vmspace creation or destruction); fork times are reported apart.
//
// Build with -DFAULT_BENCH_HOST_ONLY to run the host half without the runtime.

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench/bench_common.h"
#ifndef FAULT_BENCH_HOST_ONLY
#include "runtime/vmrt.h"
#endif

namespace {

constexpr std::size_t kPage = 4096;

using bench::median;
using bench::now_ns;

struct rng {
  std::uint64_t s;
  explicit rng(std::uint64_t seed) : s(seed * 0x9E3779B97F4A7C15ull + 1) {}
  std::uint64_t next() {
    s ^= s >> 12;
    s ^= s << 25;
    s ^= s >> 27;
    return s * 0x2545F4914F6CDD1Dull;
  }
};

[[noreturn]] void fail(const char* what) {
  std::fprintf(stdout, "ERROR %s (errno %d: %s)\n", what, errno, std::strerror(errno));
  std::fflush(stdout);
  std::_Exit(3);
}

// ---------------------------------------------------------------------------------
// The touch loops: identical code for host and vmrt memory.
// ---------------------------------------------------------------------------------

__attribute__((noinline)) void touch_seq(volatile char* base, std::size_t pages) {
  for (std::size_t i = 0; i < pages; ++i) base[i * kPage] = char(i | 1);
}

__attribute__((noinline)) void touch_perm(volatile char* base, const std::uint32_t* perm, std::size_t pages) {
  for (std::size_t i = 0; i < pages; ++i) base[std::size_t(perm[i]) * kPage] = char(perm[i] | 1);
}

// Every page must hold what touch_seq / touch_perm wrote (char(i | 1)) and zeros
// elsewhere in its first bytes; returns false on the first wrong byte.
bool verify_touched(const volatile char* base, std::size_t pages) {
  for (std::size_t i = 0; i < pages; ++i) {
    if (base[i * kPage] != char(i | 1)) return false;
    if (base[i * kPage + 1] != 0 || base[i * kPage + kPage - 1] != 0) return false;
  }
  return true;
}

// COW pattern: fill_pages gives every page value(i, 0) at offsets 8 and 100; a writer
// `who` then stores value(i, who) at offset 8 only.  check_pages(who) also checks
// offset 100, so a copy that lost the page's old contents is caught.
inline char cow_val(std::size_t i, int who) { return char((i * 3 + 1 + std::size_t(who) * 101) | 1); }

void fill_pages(volatile char* base, std::size_t pages) {
  for (std::size_t i = 0; i < pages; ++i) {
    base[i * kPage + 8] = cow_val(i, 0);
    base[i * kPage + 100] = cow_val(i, 0);
  }
}

__attribute__((noinline)) void write_pages(volatile char* base, std::size_t pages, int who) {
  for (std::size_t i = 0; i < pages; ++i) base[i * kPage + 8] = cow_val(i, who);
}

bool check_pages(const volatile char* base, std::size_t pages, int who) {
  for (std::size_t i = 0; i < pages; ++i)
    if (base[i * kPage + 8] != cow_val(i, who) || base[i * kPage + 100] != cow_val(i, 0)) return false;
  return true;
}

// ---------------------------------------------------------------------------------
// Host side
// ---------------------------------------------------------------------------------

char* host_map(std::size_t bytes) {
  void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) fail("host mmap");
  return static_cast<char*>(p);
}

// Memory a cold pass keeps until every cold test ran (so each cold test gets memory never
// used before in the process, on both sides); freed at the end of the pass.
struct keep_list {
  std::vector<std::pair<char*, std::size_t>> host;
  std::vector<void*> vmrt;  // vmrt_vmspace*
};

// First touch on fresh anonymous memory; perm == nullptr: sequential.  keep: leave the
// mapping to the caller (cold pass) instead of unmapping it.
std::uint64_t host_touch(std::size_t pages, const std::uint32_t* perm, bool* ok, keep_list* keep) {
  char* p = host_map(pages * kPage);
  std::uint64_t t0 = now_ns();
  if (perm) touch_perm(p, perm, pages);
  else touch_seq(p, pages);
  std::uint64_t t = now_ns() - t0;
  *ok = verify_touched(p, pages);
  if (keep) keep->host.push_back({p, pages * kPage});
  else munmap(p, pages * kPage);
  return t;
}

// Raw fork: the process may hold vmrt state with fork handlers (the runtime may copy
// its physmem at fork); the host reference must measure the host's own fork and COW,
// so the children made here only write host memory, report through a pipe and _exit.
pid_t raw_fork() { return pid_t(syscall(SYS_fork)); }

struct cow_times {
  std::uint64_t fork_ns = 0;    // the fork call itself
  std::uint64_t child_ns = 0;   // child writes every page once
  std::uint64_t parent_ns = 0;  // parent writes every page once while the child lives
  bool ok = true;
};

cow_times host_cow(std::size_t pages) {
  cow_times r;
  char* p = host_map(pages * kPage);
  fill_pages(p, pages);
  // 1. The child writes; it sends back its time and whether it saw the parent's data.
  {
    int pfd[2];
    if (pipe(pfd) != 0) fail("pipe");
    std::uint64_t t0 = now_ns();
    pid_t pid = raw_fork();
    if (pid < 0) fail("fork");
    if (pid == 0) {
      std::uint64_t t1 = now_ns();
      write_pages(p, pages, 1);
      std::uint64_t s1 = now_ns();
      std::uint64_t msg[3] = {s1 - t1, t1 - t0, std::uint64_t(check_pages(p, pages, 1))};
      ssize_t w = write(pfd[1], msg, sizeof msg);
      (void)w;
      syscall(SYS_exit_group, 0);
    }
    close(pfd[1]);
    std::uint64_t msg[3] = {0, 0, 0};
    ssize_t n = read(pfd[0], msg, sizeof msg);
    close(pfd[0]);
    int st = 0;
    waitpid(pid, &st, 0);
    if (n != ssize_t(sizeof msg)) fail("host cow child");
    r.child_ns = msg[0];
    r.fork_ns = msg[1];
    r.ok = msg[2] != 0 && check_pages(p, pages, 0);
  }
  // 2. The parent writes while a child holds the pages shared.
  {
    int go[2];
    if (pipe(go) != 0) fail("pipe");
    pid_t pid = raw_fork();
    if (pid < 0) fail("fork");
    if (pid == 0) {
      // Its own write end closed: a parent killed by the bench's timeout ends the read
      // (before, the child was left behind reading forever, holding the bench's output pipe).
      close(go[1]);
      char c;
      ssize_t n = read(go[0], &c, 1);
      (void)n;
      syscall(SYS_exit_group, 0);
    }
    std::uint64_t s0 = now_ns();
    write_pages(p, pages, 2);
    r.parent_ns = now_ns() - s0;
    r.ok = r.ok && check_pages(p, pages, 2);
    ssize_t w = write(go[1], "x", 1);
    (void)w;
    close(go[0]);
    close(go[1]);
    int st = 0;
    waitpid(pid, &st, 0);
  }
  munmap(p, pages * kPage);
  return r;
}

// ---------------------------------------------------------------------------------
// vmrt side
// ---------------------------------------------------------------------------------

#ifndef FAULT_BENCH_HOST_ONLY
// vmrt counters (vmstat -s names) whose change over each timed vmrt phase is reported,
// per page, to explain the times: traps taken, fault-around width, host calls.
const char* const k_counter_names[] = {
    "page faults",          "zero-fill faults",      "copy-on-write faults", "copy-on-write optimized faults",
    "fault-around pages",   "sigsegv faults",        "userfaultfd faults",   "pmap enters",
    "pmap entered pages",   "host mmap calls",       "host mprotect calls",  "frames zeroed",
    "zero fill pages zeroed", "needs-copy shadows created",
};
constexpr int k_ncounters = int(sizeof k_counter_names / sizeof k_counter_names[0]);
long long g_snap[k_ncounters];

void snap_begin() {
  for (int i = 0; i < k_ncounters; ++i) g_snap[i] = vmrt_counter(k_counter_names[i]);
}

// Print the change of every known counter since snap_begin (outside timed regions).
void snap_end(const char* test, std::size_t pages) {
  for (int i = 0; i < k_ncounters; ++i) {
    long long v = vmrt_counter(k_counter_names[i]);
    if (v < 0 || g_snap[i] < 0) continue;
    std::printf("DELTA %s %zu %lld %s\n", test, pages, v - g_snap[i], k_counter_names[i]);
  }
}
#endif

#ifndef FAULT_BENCH_HOST_ONLY
// A fresh vmspace (*vs) with `pages` private anonymous read/write pages mapped; their address.
char* vmrt_map_pages(std::size_t pages, vmrt_vmspace** vs) {
  *vs = vmrt_vmspace_create((pages + 16) * kPage);
  if (!*vs) fail("vmrt_vmspace_create");
  void* m = vmrt_mmap(*vs, nullptr, pages * kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (m == VMRT_MAP_FAILED) fail("vmrt_mmap");
  return static_cast<char*>(m);
}

std::uint64_t vmrt_touch(std::size_t pages, const std::uint32_t* perm, bool* ok, keep_list* keep) {
  vmrt_vmspace* vs = nullptr;
  char* p = vmrt_map_pages(pages, &vs);
  snap_begin();
  std::uint64_t t0 = now_ns();
  if (perm) touch_perm(p, perm, pages);
  else touch_seq(p, pages);
  std::uint64_t t = now_ns() - t0;
  if (!keep) snap_end(perm ? "rand_touch" : "seq_touch", pages);  // counters: steady state only
  *ok = verify_touched(p, pages);
  if (keep) keep->vmrt.push_back(vs);
  else vmrt_vmspace_destroy(vs);
  return t;
}

cow_times vmrt_cow(std::size_t pages, bool cold) {
  cow_times r;
  std::size_t bytes = pages * kPage;
  vmrt_vmspace* vs = nullptr;
  char* p = vmrt_map_pages(pages, &vs);
  fill_pages(p, pages);
  // 1. Fork; the child writes each page (first access in the child is the write).
  std::uint64_t t0 = now_ns();
  vmrt_vmspace* child = vmrt_vmspace_fork(vs);
  r.fork_ns = now_ns() - t0;
  if (!child) fail("vmrt_vmspace_fork");
  char* c = static_cast<char*>(vmrt_translate(vs, child, p));
  char* c_last = static_cast<char*>(vmrt_translate(vs, child, p + bytes - 1));
  if (!c || c_last != c + bytes - 1) fail("vmrt_translate: child window not linear");
  snap_begin();
  std::uint64_t s0 = now_ns();
  write_pages(c, pages, 1);
  r.child_ns = now_ns() - s0;
  if (!cold) snap_end("cow_child", pages);
  r.ok = check_pages(c, pages, 1) && check_pages(p, pages, 0);
  vmrt_vmspace_destroy(child);
  // 2. Fork again; the parent writes each page while the child shares them untouched.
  child = vmrt_vmspace_fork(vs);
  if (!child) fail("vmrt_vmspace_fork");
  c = static_cast<char*>(vmrt_translate(vs, child, p));
  snap_begin();
  s0 = now_ns();
  write_pages(p, pages, 2);
  r.parent_ns = now_ns() - s0;
  if (!cold) snap_end("cow_parent", pages);
  r.ok = r.ok && check_pages(p, pages, 2) && check_pages(c, pages, 0);
  vmrt_vmspace_destroy(child);
  vmrt_vmspace_destroy(vs);
  return r;
}
#endif

// ---------------------------------------------------------------------------------
// Worker
// ---------------------------------------------------------------------------------

int worker_main(const char* backend, bool quick, std::size_t touch_mib, std::size_t cow_pages, int reps,
                double budget_s) {
  const std::size_t pages = touch_mib * 1024 * 1024 / kPage;
  bool use_vmrt = std::strcmp(backend, "host") != 0;
  const char* be = "host";
#ifdef FAULT_BENCH_HOST_ONLY
  if (use_vmrt) {
    std::printf("ERROR built with FAULT_BENCH_HOST_ONLY: no vmrt\n");
    return 3;
  }
#else
  if (use_vmrt) {
    if (vmrt_init() != 0) fail("vmrt_init");
    be = vmrt_trap_backend();
  }
#endif
  std::printf("BACKEND %s\n", be);
  std::fflush(stdout);

  std::vector<std::uint32_t> perm(pages);
  for (std::size_t i = 0; i < pages; ++i) perm[i] = std::uint32_t(i);
  rng g(7);
  for (std::size_t i = pages - 1; i > 0; --i) std::swap(perm[i], perm[g.next() % (i + 1)]);

  // Rep -1 is the cold pass: every test on memory never used before in this process (the
  // touch tests keep their memory until the pass ends, on both sides), so vmrt takes fresh
  // physmem frames (host shmem allocation) as at startup.  Reps 0.. are the steady state:
  // freed memory is recycled (vmrt's free-frame cache; the host's free lists), as on a
  // running system.  Both sides do the same mmap/touch/munmap sequence every rep.
  std::uint64_t t_start = now_ns();
  for (int r = -1; r < reps; ++r) {
    double el = double(now_ns() - t_start) / 1e9;
    if (r >= 1 && el + el / (r + 1) > budget_s) {
      std::printf("NOTE stopped after %d steady reps (%.1f s, budget %.0f s)\n", r, el, budget_s);
      break;
    }
    keep_list keep;
    keep_list* kp = r < 0 ? &keep : nullptr;
    // Alternate which side goes first, so neither always runs on a warmer machine.
    for (int test = 0; test < 3; ++test) {
      bool host_first = ((r + 1 + test) % 2) == 0;
      for (int side = 0; side < 2; ++side) {
        bool host = (side == 0) == host_first;
        if (!host && !use_vmrt) continue;
        const char* who = host ? "host" : "vmrt";
        if (test < 2) {
          bool ok = false;
          std::uint64_t t = 0;
          const std::uint32_t* pp = test == 1 ? perm.data() : nullptr;
          if (host) t = host_touch(pages, pp, &ok, kp);
#ifndef FAULT_BENCH_HOST_ONLY
          else t = vmrt_touch(pages, pp, &ok, kp);
#endif
          std::printf("RESULT %s %s %d %zu %" PRIu64 " %d\n", test == 0 ? "seq_touch" : "rand_touch", who, r, pages, t,
                      int(ok));
        } else {
          cow_times c;
          if (host) c = host_cow(cow_pages);
#ifndef FAULT_BENCH_HOST_ONLY
          else c = vmrt_cow(cow_pages, r < 0);
#endif
          std::printf("RESULT cow_child %s %d %zu %" PRIu64 " %d\n", who, r, cow_pages, c.child_ns, int(c.ok));
          std::printf("RESULT cow_parent %s %d %zu %" PRIu64 " %d\n", who, r, cow_pages, c.parent_ns, int(c.ok));
          std::printf("RESULT fork %s %d %zu %" PRIu64 " %d\n", who, r, cow_pages, c.fork_ns, int(c.ok));
        }
        std::fflush(stdout);
      }
    }
    for (auto& h : keep.host) munmap(h.first, h.second);
#ifndef FAULT_BENCH_HOST_ONLY
    for (void* v : keep.vmrt) vmrt_vmspace_destroy(static_cast<vmrt_vmspace*>(v));
#endif
  }
#ifndef FAULT_BENCH_HOST_ONLY
  if (use_vmrt) {
    std::printf("VMSTAT-BEGIN\n");
    std::fflush(stdout);
    vmrt_report_vmstat(1);
    std::printf("VMSTAT-END\n");
    std::fflush(stdout);
  }
#endif
  (void)quick;
  return 0;
}

// ---------------------------------------------------------------------------------
// Driver
// ---------------------------------------------------------------------------------

struct sample {
  std::string test, who;
  int rep;  // -1: cold pass
  std::size_t pages;
  double ns;
  bool ok;
};

struct worker_out {
  bool ok = false;
  std::string error;
  std::string backend;
  std::vector<sample> samples;
  std::vector<std::string> vmstat, notes;
  // Counter changes over the timed vmrt phases: (test, counter) -> sum, test -> pages.
  std::map<std::pair<std::string, std::string>, double> delta;
  std::map<std::string, double> delta_pages;
  std::vector<std::string> delta_names;  // first-seen order
};

std::string g_self;

worker_out run_worker(const char* trap, bool quick, std::size_t mib, std::size_t cow_pages, int reps, double budget,
                      int timeout_s) {
  worker_out w;
  bench::child_run c = bench::run_child(
      {g_self, "--worker", trap, quick ? "quick" : "full", std::to_string(mib), std::to_string(cow_pages),
       std::to_string(reps), std::to_string(int(budget))},
      [&] {
        if (std::strcmp(trap, "host") != 0) setenv("VMRT_TRAP", trap, 1);
        unsetenv("LD_PRELOAD");
      },
      timeout_s);
  if (!c.error.empty()) {
    w.error = c.error;
    return w;
  }
  const std::string& out = c.out;
  // Parse what arrived, even from a worker that failed part-way.
  bool in_vmstat = false;
  size_t i = 0;
  while (i < out.size()) {
    size_t j = out.find('\n', i);
    if (j == std::string::npos) j = out.size();
    std::string line = out.substr(i, j - i);
    i = j + 1;
    if (line == "VMSTAT-BEGIN") {
      in_vmstat = true;
      continue;
    }
    if (line == "VMSTAT-END") {
      in_vmstat = false;
      continue;
    }
    if (in_vmstat) {
      w.vmstat.push_back(line);
      continue;
    }
    char test[64], who[16];
    int rep, ok;
    std::size_t pages;
    unsigned long long ns;
    if (line.rfind("RESULT ", 0) == 0 &&
        std::sscanf(line.c_str(), "RESULT %63s %15s %d %zu %llu %d", test, who, &rep, &pages, &ns, &ok) == 6) {
      w.samples.push_back({test, who, rep, pages, double(ns), ok != 0});
    } else if (line.rfind("BACKEND ", 0) == 0) {
      w.backend = line.substr(8);
    } else if (line.rfind("DELTA ", 0) == 0) {
      char dtest[64];
      std::size_t dpages = 0;
      long long v = 0;
      int off = 0;
      if (std::sscanf(line.c_str(), "DELTA %63s %zu %lld %n", dtest, &dpages, &v, &off) >= 3 && off > 0) {
        std::string name = line.substr(size_t(off));
        auto key = std::make_pair(std::string(dtest), name);
        if (!w.delta.count(key) && std::find(w.delta_names.begin(), w.delta_names.end(), name) == w.delta_names.end())
          w.delta_names.push_back(name);
        w.delta[key] += double(v);
        // Pages are counted once per phase: on the first counter of each DELTA group.
        if (name == w.delta_names.front()) w.delta_pages[dtest] += double(dpages);
      }
    } else if (line.rfind("ERROR ", 0) == 0) {
      w.error = line.substr(6);
    } else if (!line.empty()) {
      w.notes.push_back(line);
    }
  }
  // A timeout or a signal comes first, with the worker's own ERROR line after it.
  std::string exit_err = bench::exit_error(c, timeout_s);
  if (c.timed_out || WIFSIGNALED(c.status)) w.error = exit_err + (w.error.empty() ? "" : "; " + w.error);
  else if (!exit_err.empty() && w.error.empty()) w.error = exit_err;
  w.ok = w.error.empty();
  return w;
}

// Median µs per page of one (test, who) over the steady reps (rep >= 0), and the cold pass
// (rep -1); ok = every sample verified.
struct side_stat {
  double us_per_page = NAN;        // steady state: median over reps >= 0
  double cold_us_per_page = NAN;   // cold pass
  int n = 0;
  bool ok = true;
};

side_stat summarize(const std::vector<sample>& s, const char* test, const char* who) {
  side_stat r;
  std::vector<double> v;
  for (const sample& x : s) {
    if (x.test != test || x.who != who) continue;
    double us = x.ns / 1000.0 / double(x.pages);
    r.ok = r.ok && x.ok;
    if (x.rep < 0) {
      r.cold_us_per_page = us;
      continue;
    }
    v.push_back(us);
  }
  r.n = int(v.size());
  r.us_per_page = median(v);
  return r;
}

side_stat summarize_total(const std::vector<sample>& s, const char* test, const char* who) {
  // For "fork": µs per call, not per page.
  side_stat r;
  std::vector<double> v;
  for (const sample& x : s)
    if (x.test == test && x.who == who && x.rep >= 0) v.push_back(x.ns / 1000.0);
  r.n = int(v.size());
  r.us_per_page = median(v);
  return r;
}


// The "first touch of memory the program mmapped itself": mmap_touch (next to this
// program) natively and under the shim (../lib/libvmrt_malloc.so), with host memory in the
// mmap area (the default) and as pageable memory (VMRT_PHYSMEM above the size: no paging,
// only the zero-fill path), reps interleaved.  Returns native/shim ratios of the medians by
// "test[variant]"; prints a table.
std::map<std::string, double> program_mmap_rows(std::size_t mib, int reps, int timeout_s) {
  std::map<std::string, double> out;
  std::string dir = bench::dir_of(g_self);
  std::string prog = dir + "/mmap_touch", shim = dir + "/../lib/libvmrt_malloc.so";
  if (access(prog.c_str(), X_OK) != 0 || access(shim.c_str(), R_OK) != 0) {
    std::printf("\n[program mmap] SKIP: %s or %s not built\n", prog.c_str(), shim.c_str());
    return out;
  }
  struct variant {
    const char* name;
    bool preload;
    bool paged;
  };
  const variant vs[] = {{"native", false, false}, {"shim", true, false}, {"shim-paged", true, true}};
  std::map<std::string, std::vector<double>> us;  // "test variant" -> us per page
  std::map<std::string, bool> ok;
  std::string physmem = std::to_string(mib * 2 + 64) + "M";
  for (int r = 0; r < reps; ++r)
    for (const variant& v : vs) {
      bench::child_run c = bench::run_child(
          {prog, std::to_string(mib)},
          [&] {
            unsetenv("LD_PRELOAD");
            unsetenv("VMRT_PHYSMEM");
            if (v.preload) setenv("LD_PRELOAD", shim.c_str(), 1);
            if (v.paged) setenv("VMRT_PHYSMEM", physmem.c_str(), 1);
          },
          timeout_s);
      std::string err = bench::exit_error(c, timeout_s);
      if (!err.empty()) {
        std::printf("[program mmap] %s: %s\n", v.name, err.c_str());
        continue;
      }
      std::size_t i = 0;
      while (i < c.out.size()) {
        std::size_t j = c.out.find('\n', i);
        if (j == std::string::npos) j = c.out.size();
        char test[32];
        unsigned long long ns;
        std::size_t pages;
        int good;
        if (std::sscanf(c.out.substr(i, j - i).c_str(), "RESULT %31s %llu %zu %d", test, &ns, &pages, &good) == 4 &&
            pages > 0) {
          std::string key = std::string(test) + " " + v.name;
          us[key].push_back(double(ns) / 1000.0 / double(pages));
          ok.emplace(key, true);
          ok[key] = ok[key] && good != 0;
        }
        i = j + 1;
      }
    }
  std::printf("\n[program mmap] first touch of the program's own mmap of %zu MiB, through the shim (mmap_touch;\n"
              "  shim-paged: VMRT_PHYSMEM=%s, pageable memory, no paging); median us per page of %d reps\n",
              mib, physmem.c_str(), reps);
  std::printf("  %-11s %12s %12s %12s %12s %14s  %s\n", "test", "native", "shim", "shim-paged", "native/shim",
              "native/paged", "verified");
  for (const char* t : {"seq_touch", "rand_touch"}) {
    double n = median(us[std::string(t) + " native"]), h = median(us[std::string(t) + " shim"]),
           p = median(us[std::string(t) + " shim-paged"]);
    bool good = true;
    for (const variant& v : vs) good = good && ok[std::string(t) + " " + v.name];
    std::printf("  %-11s %12.3f %12.3f %12.3f %12.2f %14.2f  %s\n", t, n, h, p, n / h, n / p, good ? "ok" : "WRONG DATA");
    out[std::string(t) + "[shim]"] = n / h;
    out[std::string(t) + "[shim-paged]"] = n / p;
  }
  return out;
}

void usage(FILE* f) {
  std::fprintf(f,
               "usage: fault_bench [--quick] [--mib N] [--cow-pages N] [--reps N] [--backends LIST] [--host-only]\n"
               "                   [--vmstat] [--timeout SEC]\n"
               "\n"
               "First-touch and copy-on-write fault cost of vmrt against the host kernel's plain anonymous\n"
               "mmap, in the same worker process, interleaved; one worker per vmrt trap backend\n"
               "(VMRT_TRAP=auto first, then the backend auto did not pick).\n"
               "\n"
               "  --quick           cold pass + 3 steady reps, COW on 16384 pages, under 30 s\n"
               "                    (default: cold pass + 7 reps, 65536 pages)\n"
               "  --mib N           first-touch size (default 256 MiB)\n"
               "  --cow-pages N     pages written after fork\n"
               "  --reps N          repetitions inside each worker\n"
               "  --backends LIST   e.g. sigsegv,userfaultfd (default: auto and the other one)\n"
               "  --host-only       measure the host kernel only (no vmrt)\n"
               "  --vmstat          print each worker's full vmrt_report_vmstat\n"
               "  --timeout SEC     kill a worker after SEC seconds\n"
               "\n"
               "Each worker runs a cold pass (memory never used before in the process) and then steady reps\n"
               "(memory recycled); both are printed, labelled.  Last lines: `speedup seq_touch X` and\n"
               "`speedup rand_touch X` (X = host time / vmrt time, steady state, default backend), after\n"
               "per-backend lines `cold speedup seq_touch[BACKEND] X` and `speedup seq_touch[BACKEND] X`.\n");
}

}  // namespace

int main(int argc, char** argv) {
  if (argc >= 8 && std::strcmp(argv[1], "--worker") == 0) {
    return worker_main(argv[2], std::strcmp(argv[3], "quick") == 0, std::strtoull(argv[4], nullptr, 10),
                       std::strtoull(argv[5], nullptr, 10), std::atoi(argv[6]), std::atof(argv[7]));
  }
  bool quick = false, host_only = false, show_vmstat = false;
  long mib = 256, cow_pages = -1, reps = -1, timeout_s = -1;
  std::string backends;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto need = [&] { return bench::option_value(argc, argv, i, "fault_bench"); };
    if (a == "--help" || a == "-h") {
      usage(stdout);
      return 0;
    } else if (a == "--quick") quick = true;
    else if (a == "--host-only") host_only = true;
    else if (a == "--vmstat") show_vmstat = true;
    else if (a == "--mib") mib = std::atol(need());
    else if (a == "--cow-pages") cow_pages = std::atol(need());
    else if (a == "--reps") reps = std::atol(need());
    else if (a == "--timeout") timeout_s = std::atol(need());
    else if (a == "--backends") backends = need();
    else {
      std::fprintf(stderr, "fault_bench: unknown option %s\n", a.c_str());
      usage(stderr);
      return 2;
    }
  }
  if (mib < 1) mib = 256;
  if (cow_pages < 1) cow_pages = quick ? 16384 : 65536;
  if (reps < 1) reps = quick ? 3 : 7;
  if (timeout_s < 1) timeout_s = quick ? 12 : 300;
  // Per-worker time budget: a worker stops adding reps past it (at least one rep).
  double budget = quick ? 9.0 : 120.0;

  g_self = bench::self_exe();
  if (g_self.empty()) return 1;
#ifdef FAULT_BENCH_HOST_ONLY
  host_only = true;
#endif

  std::printf("fault_bench: %s mode, first touch %ld MiB (%ld pages), COW %ld pages, %ld reps per worker\n",
              quick ? "quick" : "full", mib, mib * 256, cow_pages, reps);
  std::fflush(stdout);
  std::uint64_t t_start = now_ns();

  // Workers: auto first (tells us the default backend), then the other backend.
  std::vector<std::string> plan;
  if (host_only) plan.push_back("host");
  else if (!backends.empty()) plan = bench::split_list(backends);
  else plan.push_back("auto");

  std::string default_backend;
  std::map<std::string, worker_out> by_backend;  // by actual backend name
  std::vector<std::string> order;
  for (size_t k = 0; k < plan.size(); ++k) {
    worker_out w = run_worker(plan[k].c_str(), quick, size_t(mib), size_t(cow_pages), int(reps), budget, int(timeout_s));
    std::string name = w.backend.empty() ? plan[k] : w.backend;
    if (plan[k] == "auto") {
      default_backend = name;
      std::printf("VMRT_TRAP=auto chose: %s\n", w.backend.empty() ? "(worker failed before reporting)" : name.c_str());
      if (backends.empty() && !w.backend.empty()) {
        if (name == "sigsegv") plan.push_back("userfaultfd");
        else if (name == "userfaultfd") plan.push_back("sigsegv");
      } else if (backends.empty()) {
        plan.push_back("sigsegv");
        plan.push_back("userfaultfd");
      }
    }
    for (auto& note : w.notes) std::printf("  [%s] %s\n", name.c_str(), note.c_str());
    if (!w.ok) std::printf("  [%s] worker FAILED: %s\n", name.c_str(), w.error.c_str());
    std::fflush(stdout);
    if (!by_backend.count(name)) order.push_back(name);
    auto& slot = by_backend[name];
    slot.samples.insert(slot.samples.end(), w.samples.begin(), w.samples.end());
    slot.backend = name;
    if (!w.ok) slot.error = w.error;
    for (auto& kv : w.delta) slot.delta[kv.first] += kv.second;
    for (auto& kv : w.delta_pages) slot.delta_pages[kv.first] += kv.second;
    for (auto& nm : w.delta_names)
      if (std::find(slot.delta_names.begin(), slot.delta_names.end(), nm) == slot.delta_names.end())
        slot.delta_names.push_back(nm);
    slot.vmstat = w.vmstat;
  }
  if (default_backend.empty() && !order.empty()) default_backend = order.front();

  std::printf("\nµs per page; host/vmrt > 1: vmrt faster.\n"
              "  steady = median over the steady reps (memory recycled: vmrt's free-frame cache, the host's free\n"
              "           lists; as on a running system) -- the final `speedup` lines are these;\n"
              "  cold   = the cold pass (memory never used before in the process: vmrt maps fresh physmem frames).\n");
  std::map<std::string, double> seq_speed, rand_speed, seq_cold, rand_cold;
  bool all_ok = true;
  for (const std::string& be : order) {
    const worker_out& w = by_backend[be];
    std::printf("\n[%s]%s%s\n", be.c_str(),
                be != default_backend || host_only ? ""
                : backends.empty()                 ? " (default backend: VMRT_TRAP=auto)"
                                                   : " (first listed: in the final lines)",
                w.error.empty() ? "" : ("  worker error: " + w.error).c_str());
    struct row {
      const char* test;
      double target;  // <0: none
    };
    const row rows[] = {{"seq_touch", 1.0}, {"rand_touch", 0.4}, {"cow_child", -1}, {"cow_parent", -1}};
    auto f = [](double x, int width, int prec) {
      static char b[4][32];
      static int k = 0;
      char* o = b[k++ & 3];
      if (std::isnan(x)) std::snprintf(o, 32, "%*s", width, "-");
      else std::snprintf(o, 32, "%*.*f", width, prec, x);
      return o;
    };
    for (int phase = 0; phase < 2; ++phase) {
      bool steady = phase == 0;
      std::printf("  %-6s %-11s %5s %10s %10s %9s  %-22s %s\n", steady ? "STEADY" : "COLD", "test",
                  steady ? "reps" : "", "host us/pg", "vmrt us/pg", "host/vmrt", steady ? "target" : "", "verified");
      for (const row& r : rows) {
        side_stat h = summarize(w.samples, r.test, "host");
        side_stat v = summarize(w.samples, r.test, "vmrt");
        double hu = steady ? h.us_per_page : h.cold_us_per_page;
        double vu = steady ? v.us_per_page : v.cold_us_per_page;
        double ratio = hu / vu;
        char target[64] = "";
        bool have_v = !std::isnan(vu);
        if (steady && r.target > 0 && have_v)
          std::snprintf(target, sizeof target, ">= %.1f  %s", r.target, ratio >= r.target ? "PASS" : "MISS");
        else if (steady && r.target > 0)
          std::snprintf(target, sizeof target, ">= %.1f  n/a", r.target);
        bool ok = h.ok && v.ok;
        all_ok = all_ok && ok;
        char reps_col[16] = "";
        if (steady) std::snprintf(reps_col, sizeof reps_col, "%d", std::max(h.n, v.n));
        std::printf("  %-6s %-11s %5s %s %s %s  %-22s %s\n", steady ? "steady" : "cold", r.test, reps_col,
                    f(hu, 10, 3), f(vu, 10, 3), f(ratio, 9, 2), target, ok ? "ok" : "WRONG DATA");
        if (!have_v) continue;
        std::string t = r.test;
        if (t == "seq_touch") (steady ? seq_speed : seq_cold)[be] = ratio;
        if (t == "rand_touch") (steady ? rand_speed : rand_cold)[be] = ratio;
      }
    }
    side_stat hf = summarize_total(w.samples, "fork", "host");
    side_stat vf = summarize_total(w.samples, "fork", "vmrt");
    long cp = 0;
    for (auto& s : w.samples)
      if (s.test == "fork") cp = long(s.pages);
    if (hf.n > 0)
      std::printf("  fork of %ld touched pages: host fork() %.1f us (until the child runs)", cp, hf.us_per_page);
    if (vf.n > 0) std::printf(", vmrt_vmspace_fork %.1f us", vf.us_per_page);
    if (hf.n > 0 || vf.n > 0) std::printf("\n");
    if (!w.delta_pages.empty()) {
      std::printf("  vmrt counters per page touched, over the timed phases (sum over reps / pages):\n");
      std::printf("    %-30s", "counter");
      const char* tests[] = {"seq_touch", "rand_touch", "cow_child", "cow_parent"};
      for (const char* t : tests) std::printf(" %11s", t);
      std::printf("\n");
      for (auto& nm : w.delta_names) {
        std::printf("    %-30s", nm.c_str());
        for (const char* t : tests) {
          auto it = w.delta.find(std::make_pair(std::string(t), nm));
          auto pg = w.delta_pages.find(t);
          if (it == w.delta.end() || pg == w.delta_pages.end() || pg->second <= 0) std::printf(" %11s", "-");
          else std::printf(" %11.4f", it->second / pg->second);
        }
        std::printf("\n");
      }
    }
    if (!w.vmstat.empty()) {
      if (show_vmstat) {
        std::printf("  vmrt_report_vmstat:\n");
        for (auto& l : w.vmstat) std::printf("    %s\n", l.c_str());
      } else {
        // The non-zero lines only, to keep the output short.
        std::printf("  vmrt_report_vmstat (non-zero lines; --vmstat for all):\n");
        for (auto& l : w.vmstat) {
          size_t k = l.find_first_not_of(" \t");
          if (k == std::string::npos) continue;
          if (l.compare(k, 2, "0 ") == 0) continue;
          std::printf("    %s\n", l.c_str());
        }
      }
    }
  }
  std::map<std::string, double> prog_mmap;
  if (!host_only) prog_mmap = program_mmap_rows(quick ? 64 : std::size_t(mib), quick ? 3 : 5, int(timeout_s));
  std::printf("\ntotal %.1f s\n", double(now_ns() - t_start) / 1e9);
  for (const std::string& be : order) {
    if (be == "host") continue;
    if (seq_cold.count(be)) std::printf("cold speedup seq_touch[%s] %.3f\n", be.c_str(), seq_cold[be]);
    if (rand_cold.count(be)) std::printf("cold speedup rand_touch[%s] %.3f\n", be.c_str(), rand_cold[be]);
  }
  for (const std::string& be : order) {
    if (be == "host") continue;
    bench::print_metric("speedup seq_touch[" + be + "]", seq_speed.count(be) ? seq_speed[be] : NAN);
    bench::print_metric("speedup rand_touch[" + be + "]", rand_speed.count(be) ? rand_speed[be] : NAN);
  }
  for (auto& kv : prog_mmap) bench::print_metric("speedup program_mmap_" + kv.first, kv.second);
  bench::print_metric("speedup seq_touch", seq_speed.count(default_backend) ? seq_speed[default_backend] : NAN);
  bench::print_metric("speedup rand_touch", rand_speed.count(default_backend) ? rand_speed[default_backend] : NAN);
  return all_ok ? 0 : 1;
}
