// medium_bench — medium and large blocks: time, peak RSS and host mappings of glibc,
// jemalloc and vmrt side by side (one re-executed worker per allocator and repetition,
// LD_PRELOAD naming the allocator, repetitions interleaved).
//
// Workloads (the shapes of a cache, a document store, an interpreter's large objects):
//   live      30,000 blocks of 68-164 KB, first and last byte touched, every other one
//             freed as it goes; then 30,000 more: 45,000 live at the peak.
//   frag      60,000 blocks of 4-160 KB, 64 bytes of each touched, all freed; four rounds.
//   many      200,000 blocks of 68-164 KB with random frees (~100,000 live at the end).
//   untouched malloc(64 MiB) never touched: the RSS it adds.
//   bigloop   malloc 5-25 MB, touch 4 pages, free; 2,000 times.
// Each worker reports its time, how many malloc calls returned NULL (or lost data), the peak number of
// lines in /proc/self/maps (sampled at the workload's peak) and its VmHWM.
//
//   medium_bench [--quick] [--reps N] [--worker NAME --scale S]
// Prints a table per workload, then `metric NAME VALUE` lines (vmrt / glibc ratios).
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "bench/bench_common.h"

namespace {

// ---- worker ---------------------------------------------------------------------------

std::uint64_t g_rng = 0x9e3779b97f4a7c15ull;
std::uint64_t rnd() {
  g_rng ^= g_rng << 13;
  g_rng ^= g_rng >> 7;
  g_rng ^= g_rng << 17;
  return g_rng;
}

long maps_lines() {
  FILE* f = std::fopen("/proc/self/maps", "r");
  if (f == nullptr) return -1;
  long n = 0;
  int c;
  while ((c = std::fgetc(f)) != EOF)
    if (c == '\n') ++n;
  std::fclose(f);
  return n;
}

long status_kb(const char* key) {
  FILE* f = std::fopen("/proc/self/status", "r");
  if (f == nullptr) return -1;
  char line[256];
  long v = -1;
  std::size_t kl = std::strlen(key);
  while (std::fgets(line, sizeof line, f))
    if (std::strncmp(line, key, kl) == 0) v = std::atol(line + kl);
  std::fclose(f);
  return v;
}

struct wresult {
  long nulls = 0;
  long peak_maps = 0;
  long extra_kb = 0;  // untouched: RSS added
};

// 30,000 + 30,000 blocks of 68-164 KB, every other freed in the first round.
wresult w_live(int scale) {
  wresult r;
  const long n1 = 30000L * scale / 10, n2 = 30000L * scale / 10;
  std::vector<char*> keep;
  keep.reserve(static_cast<std::size_t>(n1 + n2));
  auto one = [&](long i) {
    std::size_t sz = (68 + rnd() % 97) * 1024;
    char* p = static_cast<char*>(std::malloc(sz));
    if (p == nullptr) {
      ++r.nulls;
      return;
    }
    p[0] = static_cast<char>(i);
    p[sz - 1] = static_cast<char>(i);
    keep.push_back(p);
  };
  for (long i = 0; i < n1; ++i) {
    one(i);
    if ((i & 1) == 1 && keep.size() >= 2) {  // free every other block as it goes
      std::free(keep[keep.size() - 2]);
      keep[keep.size() - 2] = keep.back();
      keep.pop_back();
    }
  }
  for (long i = 0; i < n2; ++i) one(i);
  r.peak_maps = maps_lines();
  for (char* p : keep) std::free(p);
  return r;
}

// Four rounds: 60,000 blocks of 4-160 KB, 64 bytes of each touched, all freed.
wresult w_frag(int scale) {
  wresult r;
  const long n = 60000L * scale / 10;
  std::vector<char*> v(static_cast<std::size_t>(n));
  for (int round = 0; round < 4; ++round) {
    for (long i = 0; i < n; ++i) {
      std::size_t sz = (4 + rnd() % 157) * 1024;
      char* p = static_cast<char*>(std::malloc(sz));
      if (p == nullptr) ++r.nulls;
      else std::memset(p, round, 64);
      v[static_cast<std::size_t>(i)] = p;
    }
    long m = maps_lines();
    if (m > r.peak_maps) r.peak_maps = m;
    for (long i = 0; i < n; ++i) std::free(v[static_cast<std::size_t>(i)]);
  }
  return r;
}

// 200,000 blocks of 68-164 KB, first and last byte touched, each step freeing a random
// live block with probability 1/2 (about 100,000 live at the end).
wresult w_many(int scale) {
  wresult r;
  const long n = 200000L * scale / 10;
  std::vector<std::pair<char*, std::size_t>> live;
  live.reserve(static_cast<std::size_t>(n));
  for (long i = 0; i < n; ++i) {
    std::size_t sz = (68 + rnd() % 97) * 1024;
    char* p = static_cast<char*>(std::malloc(sz));
    if (p == nullptr) {
      ++r.nulls;
      continue;
    }
    p[0] = 1;
    p[sz - 1] = 1;
    live.push_back({p, sz});
    if (rnd() % 2 == 0) {
      std::size_t k = rnd() % live.size();
      if (live[k].first[0] != 1 || live[k].first[live[k].second - 1] != 1) ++r.nulls;  // lost data
      std::free(live[k].first);
      live[k] = live.back();
      live.pop_back();
    }
    if ((i & 4095) == 0) {
      long m = maps_lines();
      if (m > r.peak_maps) r.peak_maps = m;
    }
  }
  long m = maps_lines();
  if (m > r.peak_maps) r.peak_maps = m;
  for (auto& b : live) std::free(b.first);
  return r;
}

wresult w_untouched(int) {
  wresult r;
  long before = status_kb("VmRSS:");
  char* volatile p = static_cast<char*>(std::malloc(64u << 20));
  if (p == nullptr) ++r.nulls;
  r.extra_kb = status_kb("VmRSS:") - before;
  r.peak_maps = maps_lines();
  std::free(p);
  return r;
}

wresult w_bigloop(int scale) {
  wresult r;
  const long n = 2000L * scale / 10;
  for (long i = 0; i < n; ++i) {
    std::size_t sz = (5 + rnd() % 21) << 20;
    char* p = static_cast<char*>(std::malloc(sz));
    if (p == nullptr) {
      ++r.nulls;
      continue;
    }
    for (int k = 0; k < 4; ++k) p[(sz / 4) * static_cast<std::size_t>(k)] = 1;
    std::free(p);
  }
  r.peak_maps = maps_lines();
  return r;
}

struct workload {
  const char* name;
  wresult (*fn)(int);
};
constexpr workload kWorkloads[] = {
    {"live", w_live}, {"frag", w_frag}, {"many", w_many}, {"untouched", w_untouched}, {"bigloop", w_bigloop}};

int worker(const char* name, int scale) {
  for (const workload& w : kWorkloads) {
    if (std::strcmp(w.name, name) != 0) continue;
    std::uint64_t t0 = bench::now_ns();
    wresult r = w.fn(scale);
    std::uint64_t ns = bench::now_ns() - t0;
    std::printf("RESULT %" PRIu64 " %ld %ld %ld %ld\n", ns, r.nulls, r.peak_maps, status_kb("VmHWM:"), r.extra_kb);
    return 0;
  }
  std::fprintf(stderr, "medium_bench: unknown workload %s\n", name);
  return 2;
}

// ---- driver ---------------------------------------------------------------------------

struct allocator {
  std::string name, path;  // path empty: glibc
};

struct sample {
  double ms;
  long nulls, maps, hwm_kb, extra_kb;
};

std::string lib_path(const std::string& self, const char* rel) {
  char real[PATH_MAX];
  std::string p = bench::dir_of(self) + rel;
  return realpath(p.c_str(), real) ? std::string(real) : std::string();
}

}  // namespace

int main(int argc, char** argv) {
  int reps = 3, scale = 10;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--worker") == 0 && i + 2 < argc && std::strcmp(argv[i + 2], "--scale") == 0 &&
        i + 3 < argc)
      return worker(argv[i + 1], std::atoi(argv[i + 3]));
    if (std::strcmp(argv[i], "--quick") == 0) {
      reps = 3;
      scale = 5;
    } else if (std::strcmp(argv[i], "--reps") == 0) {
      reps = std::atoi(bench::option_value(argc, argv, i, "medium_bench"));
    } else {
      std::fprintf(stderr, "usage: medium_bench [--quick] [--reps N]\n");
      return 2;
    }
  }
  std::string self = bench::self_exe();
  std::vector<allocator> als{{"glibc", ""}};
  if (access("/usr/lib/x86_64-linux-gnu/libjemalloc.so.2", R_OK) == 0)
    als.push_back({"jemalloc", "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2"});
  else
    std::printf("note: jemalloc skipped (libjemalloc2 not installed)\n");
  std::string shim = lib_path(self, "/../lib/libvmrt_malloc.so");
  if (shim.empty()) {
    std::fprintf(stderr, "medium_bench: build/lib/libvmrt_malloc.so missing (build target vmrt_malloc)\n");
    return 1;
  }
  als.push_back({"vmrt", shim});
  std::printf("medium_bench: scale %d/10, %d interleaved repetitions, medians\n", scale, reps);
  int failures = 0;
  for (const workload& w : kWorkloads) {
    std::map<std::string, std::vector<sample>> got;
    for (int r = 0; r < reps; ++r) {
      for (const allocator& a : als) {
        bench::child_run c = bench::run_child(
            {self, "--worker", w.name, "--scale", std::to_string(scale)},
            [&] {
              if (a.path.empty()) unsetenv("LD_PRELOAD");
              else setenv("LD_PRELOAD", a.path.c_str(), 1);
            },
            300);
        std::string err = bench::exit_error(c, 300);
        unsigned long long ns = 0;
        sample s{};
        auto k = c.out.find("RESULT ");
        if (err.empty() && (k == std::string::npos ||
                            std::sscanf(c.out.c_str() + k, "RESULT %llu %ld %ld %ld %ld", &ns, &s.nulls, &s.maps,
                                        &s.hwm_kb, &s.extra_kb) != 5))
          err = "no result line";
        if (!err.empty()) {
          std::printf("  %s/%s: FAILED (%s)\n", w.name, a.name.c_str(), err.c_str());
          ++failures;
          continue;
        }
        s.ms = double(ns) / 1e6;
        got[a.name].push_back(s);
      }
    }
    std::printf("\n%-10s %-9s %10s %11s %10s %8s %12s\n", w.name, "allocator", "time ms", "peak RSS MB", "maps peak",
                "NULLs", "RSS added KB");
    std::map<std::string, double> ms, rss;
    for (const allocator& a : als) {
      auto& v = got[a.name];
      if (v.empty()) continue;
      std::vector<double> t, h, m, z, x;
      for (const sample& s : v) {
        t.push_back(s.ms);
        h.push_back(double(s.hwm_kb) / 1024.0);
        m.push_back(double(s.maps));
        z.push_back(double(s.nulls));
        x.push_back(double(s.extra_kb));
      }
      ms[a.name] = bench::median(t);
      rss[a.name] = bench::median(h);
      std::printf("%-10s %-9s %10.1f %11.1f %10.0f %8.0f %12.0f\n", "", a.name.c_str(), ms[a.name], rss[a.name],
                  bench::median(m), bench::median(z), bench::median(x));
      if (a.name == "vmrt") {
        bench::print_metric(std::string("metric ") + w.name + "_vmrt_maps_peak", bench::median(m));
        bench::print_metric(std::string("metric ") + w.name + "_vmrt_nulls", bench::median(z));
        if (std::strcmp(w.name, "untouched") == 0)
          bench::print_metric("metric untouched_64m_vmrt_rss_added_kb", bench::median(x));
      }
    }
    for (const char* base : {"glibc", "jemalloc"}) {
      if (!ms.count(base) || !ms.count("vmrt")) continue;
      bench::print_metric(std::string("metric ") + w.name + "_time_vs_" + base, ms["vmrt"] / ms[base]);
      bench::print_metric(std::string("metric ") + w.name + "_rss_vs_" + base, rss["vmrt"] / rss[base]);
    }
  }
  return failures == 0 ? 0 : 1;
}
