// fork_bench — host fork() of a process under vmrt against the same process natively.
//
// A worker mallocs a heap of H MB (1 MiB blocks, at least 2), writes every page, then forks K children
// that exit at once (fork + exit + wait, the shape of a shell's command substitutions and of
// a server forking workers), and one child that reports what it holds privately before and
// after writing (smaps_rollup Private_Dirty: a page copied at the fork is private to the
// child; a page shared copy-on-write is not; a copy of vmrt frames lands in the host's shared
// memory) and checks that parent and child memory are
// independent both ways.  Run natively (glibc), under the shim with the heap in host memory
// (VMRT_HEAP=host, the default) and in vmrt frames (VMRT_HEAP=frames), interleaved.
//
//   fork_bench [--quick] [--reps N] [--worker MB FORKS]
// Prints a table, then `metric NAME VALUE` lines: fork_<H>m_time_vs_native_<mode> and
// fork_<H>m_copied_at_fork_kb_<mode>.  (Host shared memory is machine-wide: another
// process's shmem changing during the run shows in "copied at fork".)
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include <sys/wait.h>
#include <unistd.h>

#include "bench/bench_common.h"

namespace {

constexpr std::size_t kBlock = std::size_t{1} << 20;

// "<key>: N kB" from a /proc file; -1 when absent.
long proc_kb(const char* path, const char* fmt) {
  FILE* f = std::fopen(path, "r");
  if (f == nullptr) return -1;
  char line[256];
  long kb = -1;
  while (std::fgets(line, sizeof line, f) != nullptr)
    if (std::sscanf(line, fmt, &kb) == 1) break;
  std::fclose(f);
  return kb;
}
long private_dirty_kb() { return proc_kb("/proc/self/smaps_rollup", "Private_Dirty: %ld kB"); }
// Shared memory on the host (a fork child's copy of vmrt frames lands in a memfd).
long host_shmem_kb() { return proc_kb("/proc/meminfo", "Shmem: %ld kB"); }

// RESULT <ns per fork+exit+wait> <KB the child got copied at the fork: its private dirty
// memory plus the host's shared memory it added> <KB copied by writing 1 MiB in the child>
// <1 if memory was independent both ways>
int worker(long mb, int forks) {
  std::vector<unsigned char*> blocks;
  if (mb < 2) mb = 2;  // the independence check writes two blocks
  for (long i = 0; i < mb; ++i) {
    auto* p = static_cast<unsigned char*>(std::malloc(kBlock));
    if (p == nullptr) {
      std::puts("malloc failed");
      return 1;
    }
    for (std::size_t k = 0; k < kBlock; k += 4096) p[k] = static_cast<unsigned char>(i + k / 4096);
    blocks.push_back(p);
  }
  // Warm-up fork (first-fork set-up costs are the runtime's, not per fork).
  pid_t w = fork();
  if (w == 0) _exit(0);
  waitpid(w, nullptr, 0);
  std::uint64_t t0 = bench::now_ns();
  for (int i = 0; i < forks; ++i) {
    pid_t pid = fork();
    if (pid < 0) {
      std::puts("fork failed");
      return 1;
    }
    if (pid == 0) _exit(0);
    int st = 0;
    waitpid(pid, &st, 0);
  }
  std::uint64_t per = (bench::now_ns() - t0) / static_cast<std::uint64_t>(forks);

  // The reporting child: private memory at the fork and after writing 1 MiB; independence.
  int to_parent[2], to_child[2];
  if (pipe(to_parent) != 0 || pipe(to_child) != 0) return 1;
  long shmem0 = host_shmem_kb();
  pid_t pid = fork();
  if (pid == 0) {
    close(to_parent[0]);
    close(to_child[1]);
    long priv0 = private_dirty_kb();
    long at_fork = priv0 + (host_shmem_kb() - shmem0);
    std::memset(blocks[0], 0xAB, kBlock);  // 1 MiB written: copied now
    long after = private_dirty_kb() - priv0;
    char go;
    if (write(to_parent[1], "x", 1) != 1 || read(to_child[0], &go, 1) != 1) _exit(3);
    // The parent wrote blocks[1] after the fork: the child still sees the old bytes.
    bool ok = blocks[1][0] == static_cast<unsigned char>(1);
    char msg[128];
    int n = std::snprintf(msg, sizeof msg, "%ld %ld %d\n", at_fork, after, ok ? 1 : 0);
    if (write(to_parent[1], msg, static_cast<std::size_t>(n)) != n) _exit(3);
    _exit(0);
  }
  close(to_parent[1]);
  close(to_child[0]);
  char c;
  if (read(to_parent[0], &c, 1) != 1) return 1;
  std::memset(blocks[1], 0xCD, kBlock);
  if (write(to_child[1], "y", 1) != 1) return 1;
  char msg[128] = {0};
  ssize_t n = read(to_parent[0], msg, sizeof msg - 1);
  int st = 0;
  waitpid(pid, &st, 0);
  long at_fork = -1, after = -1;
  int ok = 0;
  if (n <= 0 || std::sscanf(msg, "%ld %ld %d", &at_fork, &after, &ok) != 3) return 1;
  // The child wrote blocks[0]: the parent's bytes are untouched.
  if (blocks[0][0] != 0 || blocks[0][4096] != 1) ok = 0;
  std::printf("RESULT %llu %ld %ld %d\n", static_cast<unsigned long long>(per), at_fork, after, ok);
  return 0;
}

struct mode {
  const char* name;
  bool shim;
  const char* heap;  // VMRT_HEAP, or null
};
constexpr mode kModes[] = {{"native", false, nullptr}, {"vmrt-host", true, "host"}, {"vmrt-frames", true, "frames"}};
static_assert(sizeof(kModes) / sizeof(kModes[0]) == 3);

}  // namespace

int main(int argc, char** argv) {
  int reps = 5;
  std::vector<long> sizes{2, 16, 256};
  int forks = 20;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--worker") == 0 && i + 2 < argc) return worker(std::atol(argv[i + 1]), std::atoi(argv[i + 2]));
    if (std::strcmp(argv[i], "--quick") == 0) {
      reps = 3;
      forks = 10;
    } else if (std::strcmp(argv[i], "--reps") == 0) {
      reps = std::atoi(bench::option_value(argc, argv, i, "fork_bench"));
    } else {
      std::fprintf(stderr, "usage: fork_bench [--quick] [--reps N]\n");
      return 2;
    }
  }
  std::string self = bench::self_exe();
  std::string shim = bench::dir_of(self) + "/../lib/libvmrt_malloc.so";
  if (access(shim.c_str(), R_OK) != 0) {
    std::fprintf(stderr, "fork_bench: %s missing (build target vmrt_malloc)\n", shim.c_str());
    return 1;
  }
  std::printf("fork_bench: %d forks per run, %d interleaved repetitions, medians\n", forks, reps);
  std::printf("%8s %-12s %14s %10s %17s %15s %5s\n", "heap MB", "mode", "fork+exit us", "vs native", "copied at fork KB",
              "1 MiB write KB", "indep");
  int failures = 0;
  for (long mb : sizes) {
    std::map<std::string, std::vector<double>> us, priv, after;
    std::map<std::string, bool> indep;
    for (int r = 0; r < reps; ++r) {
      for (const mode& m : kModes) {
        bench::child_run c = bench::run_child(
            {self, "--worker", std::to_string(mb), std::to_string(forks)},
            [&] {
              if (m.shim) setenv("LD_PRELOAD", shim.c_str(), 1);
              else unsetenv("LD_PRELOAD");
              if (m.heap != nullptr) setenv("VMRT_HEAP", m.heap, 1);
              else unsetenv("VMRT_HEAP");
            },
            300);
        std::string err = bench::exit_error(c, 300);
        unsigned long long ns = 0;
        long a = 0, b = 0;
        int ok = 0;
        auto k = c.out.find("RESULT ");
        if (err.empty() && (k == std::string::npos || std::sscanf(c.out.c_str() + k, "RESULT %llu %ld %ld %d", &ns, &a, &b, &ok) != 4))
          err = "no result line: " + c.out;
        if (!err.empty()) {
          std::printf("  %ld MB/%s: FAILED (%s)\n", mb, m.name, err.c_str());
          ++failures;
          continue;
        }
        us[m.name].push_back(double(ns) / 1e3);
        priv[m.name].push_back(double(a));
        after[m.name].push_back(double(b));
        indep[m.name] = (r == 0 || indep[m.name]) && ok == 1;
      }
    }
    double native = bench::median(us["native"]);
    for (const mode& m : kModes) {
      if (us[m.name].empty()) continue;
      double t = bench::median(us[m.name]);
      std::printf("%8ld %-12s %14.1f %10.2f %17.0f %15.0f %5s\n", mb, m.name, t, t / native, bench::median(priv[m.name]),
                  bench::median(after[m.name]), indep[m.name] ? "yes" : "NO");
      if (!indep[m.name]) ++failures;
      std::string tag = std::string("metric fork_") + std::to_string(mb) + "m_";
      std::string mn = m.name;
      for (char& ch : mn)
        if (ch == '-') ch = '_';
      if (m.shim) bench::print_metric(tag + "time_vs_native_" + mn, t / native);
      bench::print_metric(tag + "copied_at_fork_kb_" + mn, bench::median(priv[m.name]));
    }
  }
  return failures == 0 ? 0 : 1;
}
