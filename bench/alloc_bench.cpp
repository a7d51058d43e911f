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
#include "bench/workloads.h"

namespace {

using bench::median;
using bench::now_ns;

// ---------------------------------------------------------------------------------
// Workloads (bench/workloads.cpp, shared with allocsuite) and their targets
// ---------------------------------------------------------------------------------

enum class target_kind { none, speed_ge_1, speed_ge_08 };

struct workload {
  const char* name;
  int threads;
  target_kind target;
  bool rss_target;  // peak RSS <= 1.5x jemalloc
  const char* what;
};

struct workload_target {
  const char* name;
  target_kind target;
  bool rss_target;
};
constexpr workload_target k_targets[] = {
    {"small_churn", target_kind::speed_ge_1, false},    {"churn_2t", target_kind::speed_ge_08, false},
    {"prodcons", target_kind::speed_ge_08, false},      {"realloc_growth", target_kind::none, false},
    {"mixed_server", target_kind::speed_ge_08, true},
};

// alloc_bench's five workloads with their targets, in bench/workloads.cpp's order.
std::vector<workload> make_workloads() {
  std::vector<workload> v;
  for (int i = 0; i < bench::k_alloc_bench_nworkloads; ++i) {
    const bench::workload& w = bench::k_alloc_bench_workloads[i];
    workload x{w.name, w.threads, target_kind::none, false, w.what};
    for (const workload_target& t : k_targets)
      if (std::strcmp(t.name, w.name) == 0) {
        x.target = t.target;
        x.rss_target = t.rss_target;
      }
    v.push_back(x);
  }
  return v;
}
const std::vector<workload> k_workloads = make_workloads();
const workload k_noop = {"noop", 1, target_kind::none, false, "empty worker"};

// ---------------------------------------------------------------------------------
// Driver
// ---------------------------------------------------------------------------------

struct allocator {
  std::string name;
  std::string path;  // empty: glibc (no LD_PRELOAD)
  bool available = true;
  std::string note;
  std::string fail_spec;  // VMRT_FAIL for the worker ("": unset)
};

// vmrt-arm: the shim with fault injection armed by a clause on every malloc-family call
// that never fires (call number 2^64-1): each call pays the armed path (the out-of-line
// check, the clause's counters).  Beside "vmrt" (fail points compiled in, no spec), it
// measures what an armed-but-idle spec costs.
constexpr const char* kNeverFires = "alloc:nth=18446744073709551615";

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

std::string self_dir() { return bench::dir_of(g_self); }

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
  v.push_back({"glibc", "", true, "", ""});
  auto add = [&](const char* name, std::string path, const char* missing_note) {
    allocator a{name, path, !path.empty() && access(path.c_str(), R_OK) == 0, "", ""};
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
  add("vmrt-arm", shim, "vmrt shim missing: build target vmrt_malloc");
  v.back().fail_spec = kNeverFires;
  // The shim of a build with the fail points compiled out (cmake -DVMRT_FAILPOINTS=OFF),
  // when VMRT_NOFP_MALLOC_SO names it: what "vmrt" pays for its points with no spec.
  if (const char* e = getenv("VMRT_NOFP_MALLOC_SO")) add("vmrt-nofp", e, "VMRT_NOFP_MALLOC_SO: no such file");
  return v;
}

run_result run_worker(const allocator& a, const char* wname, int scale, int timeout_s) {
  run_result res;
  bench::child_run c = bench::run_child(
      {g_self, "--worker", wname, "--scale", std::to_string(scale)},
      [&] {
        if (a.path.empty()) unsetenv("LD_PRELOAD");
        else setenv("LD_PRELOAD", a.path.c_str(), 1);
        unsetenv("VMRT_FAIL_LOG");
        if (a.fail_spec.empty()) {
          unsetenv("VMRT_FAIL");
        } else {
          setenv("VMRT_FAIL", a.fail_spec.c_str(), 1);
          setenv("VMRT_FAIL_LOG", "/dev/null", 1);  // the exit summary
        }
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
               "Runs each workload under glibc, jemalloc, mimalloc, tcmalloc and vmrt's malloc shim (also\n"
               "armed with a fault-injection spec that never fires: vmrt-arm)\n"
               "(LD_PRELOAD, one re-executed worker process per run, repetitions interleaved) and\n"
               "prints medians of wall time (workload only) and peak RSS (wait4 ru_maxrss), with\n"
               "ratios against jemalloc and glibc and the vmrt targets, PASS/MISS.\n"
               "\n"
               "  --quick        5 repetitions at base sizes (stops early to stay under 60 s); default: 7 reps at 4x sizes\n"
               "  --reps N       repetitions per (allocator, workload)\n"
               "  --scale N      workload size multiplier (quick: 1, full: 4)\n"
               "  --only LIST    run only these workloads\n"
               "  --allocators L run only these allocators (glibc,jemalloc,mimalloc,tcmalloc,vmrt,vmrt-arm,\n"
               "                 vmrt-nofp: the shim named by VMRT_NOFP_MALLOC_SO, built with -DVMRT_FAILPOINTS=OFF)\n"
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

}  // namespace

int main(int argc, char** argv) {
  if (argc >= 3 && std::strcmp(argv[1], "--worker") == 0) {
    double scale = 1;
    if (argc >= 5 && std::strcmp(argv[3], "--scale") == 0) scale = std::atof(argv[4]);
    return bench::worker_main("alloc_bench", argv[2], scale > 0 ? scale : 1);
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
    if (!bench::in_list(allocs, a.name)) continue;
    if (!a.available) {
      std::printf("note: skipping %s: %s\n", a.name.c_str(), a.note.c_str());
      continue;
    }
    als.push_back(a);
  }
  std::vector<const workload*> wls;
  for (const workload& w : k_workloads)
    if (bench::in_list(only, w.name)) wls.push_back(&w);
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
  int ije = idx("jemalloc"), igl = idx("glibc"), ivm = idx("vmrt"), iarm = idx("vmrt-arm");

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

  // Fault injection's cost: the shim with no spec (fail points compiled in, unarmed: one
  // load and branch per hook) against the same shim armed with a clause that never fires.
  std::vector<double> arm(NW, NAN);
  if (ivm >= 0 && iarm >= 0) {
    std::printf("\nFail-point overhead: vmrt-arm (VMRT_FAIL='%s', armed, never fires) time / vmrt (no spec) time\n",
                kNeverFires);
    for (size_t w = 0; w < NW; ++w) {
      arm[w] = med_ms[w * NA + size_t(iarm)] / med_ms[w * NA + size_t(ivm)];
      std::printf("  %-15s %5.3fx\n", wls[w]->name, arm[w]);
    }
  }

  // With no spec, against the points compiled out: the cost issue 8 says must not be measurable.
  int inofp = idx("vmrt-nofp");
  if (ivm >= 0 && inofp >= 0) {
    std::printf("\nFail points with no spec: vmrt (points compiled in, no spec) time / vmrt-nofp (compiled out) time\n");
    for (size_t w = 0; w < NW; ++w) {
      double r = med_ms[w * NA + size_t(ivm)] / med_ms[w * NA + size_t(inofp)];
      std::printf("  %-15s %5.3fx\n", wls[w]->name, r);
      std::printf("metric failpoint_nospec_ratio_%s %.4f\n", wls[w]->name, r);
    }
  }

  std::printf("\nvmrt targets:\n");
  if (ivm < 0) {
    const allocator& v = *std::find_if(all.begin(), all.end(), [](const allocator& a) { return a.name == "vmrt"; });
    std::printf("  vmrt shim not run (%s): no targets evaluated\n",
                v.available ? "excluded by --allocators" : v.note.c_str());
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
  for (size_t w = 0; w < NW; ++w) bench::print_metric(std::string("metric speedup_") + wls[w]->name, sp[w]);
  for (size_t w = 0; w < NW; ++w) bench::print_metric(std::string("metric rss_ratio_") + wls[w]->name, rr[w]);
  if (ivm >= 0 && iarm >= 0)
    for (size_t w = 0; w < NW; ++w) bench::print_metric(std::string("metric failpoint_armed_ratio_") + wls[w]->name, arm[w]);
  bool all_sums = std::all_of(sum_ok.begin(), sum_ok.end(), [](bool b) { return b; });
  return all_sums ? 0 : 1;
}
