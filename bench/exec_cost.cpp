// exec_cost — what a process pays for starting and ending under each allocator: a short
// program (exec_worker, plain C) spawned again and again natively, with vmrt's
// shim preloaded and with jemalloc and mimalloc preloaded, interleaved, each run split into
// the phases the parent and the worker can time with one clock:
//   start  posix_spawn to the worker's main (exec, the loader, the preloaded library's
//          relocations and constructors);
//   first  the first malloc (vmrt boots its VM machine there);
//   work   a one-page file mmap and munmap and 50 mallocs of growing sizes;
//   exit   the worker's exit to its reaping (the kernel tears the address space down).
// pte is the worker's host page-table memory at the end of its work (VmPTE, kB): on these
// guests each page-table page costs tens of microseconds to fill, copy and tear down.
// A fork- and exec-heavy program (git, make, a shell running commands) pays the sum once
// per process.  Page faults are the worker's (wait4's ru_minflt).
//
//   exec_cost [--reps N] [--quick] [--allocators glibc,vmrt,jemalloc,mimalloc]
// Last lines: `metric exec_cost_total_us.<alloc> X` (median spawn-to-reaped),
// `metric exec_cost_extra_us.<alloc> X` (that, less glibc's), `metric exec_cost_faults.<alloc> X`,
// `metric exec_cost_pte_kb.<alloc> X`.
#include "bench/bench_common.h"

#include <spawn.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

extern char** environ;

namespace {

constexpr int kResultFd = 3;  // the worker writes its timestamps here

struct config {
  std::string name, preload;
  std::vector<char*> env;
  std::vector<double> start, first, work, exit, total, faults, pte;
};

std::string first_readable(std::initializer_list<const char*> paths) {
  for (const char* p : paths)
    if (access(p, R_OK) == 0) return p;
  return std::string();
}

// One run of the worker under c; false (with a message) when it failed.
bool run_once(config& c, const std::string& exe) {
  int pp[2];
  if (pipe(pp) != 0) return false;
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addclose(&fa, pp[0]);  // first: it may be kResultFd itself
  posix_spawn_file_actions_adddup2(&fa, pp[1], kResultFd);
  char* argv[] = {const_cast<char*>(exe.c_str()), const_cast<char*>(exe.c_str()), nullptr};
  const std::uint64_t t0 = bench::now_ns();
  pid_t pid;
  int rc = posix_spawn(&pid, exe.c_str(), &fa, nullptr, argv, c.env.data());
  posix_spawn_file_actions_destroy(&fa);
  close(pp[1]);
  if (rc != 0) {
    close(pp[0]);
    std::fprintf(stderr, "exec_cost: posix_spawn: %s\n", std::strerror(rc));
    return false;
  }
  char buf[128] = {};
  std::size_t got = 0;
  for (ssize_t r; got < sizeof buf - 1 && (r = read(pp[0], buf + got, sizeof buf - 1 - got)) > 0;) got += static_cast<std::size_t>(r);
  close(pp[0]);
  int st = 0;
  rusage ru{};
  while (wait4(pid, &st, 0, &ru) < 0 && errno == EINTR) {
  }
  const std::uint64_t t1 = bench::now_ns();
  unsigned long long m = 0, f = 0, w = 0;
  long pte = -1;
  if (!WIFEXITED(st) || WEXITSTATUS(st) != 0 || std::sscanf(buf, "%llu %llu %llu %ld", &m, &f, &w, &pte) != 4) {
    std::fprintf(stderr, "exec_cost: the worker under %s failed (status %#x)\n", c.name.c_str(), st);
    return false;
  }
  c.start.push_back((static_cast<double>(m) - static_cast<double>(t0)) / 1e3);
  c.first.push_back(static_cast<double>(f - m) / 1e3);
  c.work.push_back(static_cast<double>(w - f) / 1e3);
  c.exit.push_back((static_cast<double>(t1) - static_cast<double>(w)) / 1e3);
  c.total.push_back(static_cast<double>(t1 - t0) / 1e3);
  c.faults.push_back(static_cast<double>(ru.ru_minflt));
  c.pte.push_back(static_cast<double>(pte));
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  int reps = 300;
  std::string only;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--reps") == 0) reps = std::atoi(bench::option_value(argc, argv, i, "exec_cost"));
    else if (std::strcmp(argv[i], "--quick") == 0) reps = 100;
    else if (std::strcmp(argv[i], "--allocators") == 0) only = bench::option_value(argc, argv, i, "exec_cost");
    else {
      std::fprintf(stderr, "usage: exec_cost [--reps N] [--quick] [--allocators glibc,vmrt,jemalloc,mimalloc]\n");
      return 2;
    }
  }
  if (reps < 5) reps = 5;
  const std::string self = bench::self_exe();
  if (self.empty()) return 1;
  const std::string exe = bench::dir_of(self) + "/exec_worker";
  if (access(exe.c_str(), X_OK) != 0) {
    std::fprintf(stderr, "exec_cost: %s not built (target exec_worker)\n", exe.c_str());
    return 1;
  }
  std::string shim;
  if (const char* e = std::getenv("VMRT_MALLOC_SO")) shim = e;
  else shim = bench::dir_of(self) + "/../lib/libvmrt_malloc.so";
  std::vector<config> cfgs;
  auto add = [&](const char* name, const std::string& so) {
    if (!bench::in_list(only, name)) return;
    if (!so.empty() && access(so.c_str(), R_OK) != 0) {
      std::printf("%-9s skipped: %s not found\n", name, so.c_str());
      return;
    }
    config c;
    c.name = name;
    c.preload = so;
    cfgs.push_back(c);
  };
  add("glibc", "");
  add("vmrt", shim);
  add("jemalloc", first_readable({"/usr/lib/x86_64-linux-gnu/libjemalloc.so.2"}));
  add("mimalloc", first_readable({"/usr/lib/x86_64-linux-gnu/libmimalloc.so.2", "/usr/lib/x86_64-linux-gnu/libmimalloc.so"}));
  // Each configuration's environment: ours without LD_PRELOAD and VMRT_*, plus its preload.
  std::vector<std::string> keep;
  for (char** e = environ; *e != nullptr; ++e)
    if (std::strncmp(*e, "LD_PRELOAD=", 11) != 0 && std::strncmp(*e, "VMRT_", 5) != 0) keep.push_back(*e);
  std::vector<std::string> preload_vars(cfgs.size());
  for (std::size_t k = 0; k < cfgs.size(); ++k) {
    for (std::string& s : keep) cfgs[k].env.push_back(s.data());
    if (!cfgs[k].preload.empty()) {
      preload_vars[k] = "LD_PRELOAD=" + cfgs[k].preload;
      cfgs[k].env.push_back(preload_vars[k].data());
    }
    cfgs[k].env.push_back(nullptr);
  }
  for (int r = 0; r < reps; ++r)
    for (config& c : cfgs)
      if (!run_once(c, exe)) return 1;

  const config* base = nullptr;
  for (const config& c : cfgs)
    if (c.name == "glibc") base = &c;
  std::printf("exec_cost: %d runs each, interleaved; medians in us (start: spawn to main; first: the first malloc;\n"
              "work: a file mmap + 50 mallocs; exit: exit to reaped); faults: the worker's minor faults;\n"
              "pte: its page-table memory (VmPTE, kB)\n\n",
              reps);
  std::printf("%-9s %8s %8s %8s %8s %9s %9s %7s %5s\n", "allocator", "start", "first", "work", "exit", "total", "extra", "faults",
              "pte");
  std::string metrics;
  for (const config& c : cfgs) {
    const double total = bench::median(c.total);
    const double extra = base != nullptr ? total - bench::median(base->total) : NAN;
    std::printf("%-9s %8.0f %8.0f %8.0f %8.0f %9.0f %+9.0f %7.0f %5.0f\n", c.name.c_str(), bench::median(c.start),
                bench::median(c.first), bench::median(c.work), bench::median(c.exit), total, extra, bench::median(c.faults),
                bench::median(c.pte));
    char line[320];
    std::snprintf(line, sizeof line,
                  "metric exec_cost_total_us.%s %.0f\nmetric exec_cost_extra_us.%s %.0f\nmetric exec_cost_faults.%s %.0f\n"
                  "metric exec_cost_pte_kb.%s %.0f\n",
                  c.name.c_str(), total, c.name.c_str(), extra, c.name.c_str(), bench::median(c.faults), c.name.c_str(),
                  bench::median(c.pte));
    metrics += line;
  }
  std::printf("\n%s", metrics.c_str());
  return 0;
}
