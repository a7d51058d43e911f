// bench_common.h — what the benchmark drivers share: the clock, medians, finding
// their own executable, re-executing themselves as a worker with a deadline, and
// the machine-readable result lines.  Header-only; driver side uses std:: freely
// (the worker side of a benchmark uses only now_ns).
#pragma once

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

namespace bench {

inline std::uint64_t now_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return std::uint64_t(ts.tv_sec) * 1000000000ull + std::uint64_t(ts.tv_nsec);
}

// Median of v; NaN when v is empty.
inline double median(std::vector<double> v) {
  if (v.empty()) return NAN;
  std::sort(v.begin(), v.end());
  size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// Path of the running executable (/proc/self/exe); empty on failure (perror'd).
inline std::string self_exe() {
  char buf[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) {
    std::perror("readlink /proc/self/exe");
    return std::string();
  }
  buf[n] = 0;
  return buf;
}

// The directory part of path ("." when it has none).
inline std::string dir_of(const std::string& path) {
  auto k = path.rfind('/');
  return k == std::string::npos ? std::string(".") : path.substr(0, k);
}

// Is name one of the comma-separated list's items?  An empty list holds every name.
inline bool in_list(const std::string& list, const std::string& name) {
  if (list.empty()) return true;
  size_t i = 0;
  while (i <= list.size()) {
    size_t j = list.find(',', i);
    if (j == std::string::npos) j = list.size();
    if (list.compare(i, j - i, name) == 0) return true;
    i = j + 1;
  }
  return false;
}

// The items of a comma-separated list, empty items dropped.
inline std::vector<std::string> split_list(const std::string& list) {
  std::vector<std::string> v;
  size_t i = 0;
  while (i <= list.size()) {
    size_t j = list.find(',', i);
    if (j == std::string::npos) j = list.size();
    if (j > i) v.push_back(list.substr(i, j - i));
    i = j + 1;
  }
  return v;
}

// The path execv needs for a command name: name itself when it holds a '/', else the first
// executable PATH entry/name (as a shell finds it); "" when there is none.
inline std::string find_in_path(const std::string& name) {
  if (name.find('/') != std::string::npos) return access(name.c_str(), X_OK) == 0 ? name : std::string();
  const char* env = std::getenv("PATH");
  const std::string path = env != nullptr ? env : "/usr/bin:/bin";
  for (size_t i = 0; i <= path.size();) {
    size_t j = path.find(':', i);
    if (j == std::string::npos) j = path.size();
    std::string p = (j > i ? path.substr(i, j - i) : std::string(".")) + "/" + name;
    if (access(p.c_str(), X_OK) == 0) return p;
    i = j + 1;
  }
  return std::string();
}

// The whole content of a file ("" when it cannot be read).
inline std::string read_file(const std::string& path) {
  std::string s;
  FILE* f = std::fopen(path.c_str(), "r");
  if (f == nullptr) return s;
  char buf[8192];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) s.append(buf, n);
  std::fclose(f);
  return s;
}

// What a worker process left behind.
struct child_run {
  std::string out;          // everything it wrote to stdout
  int status = 0;           // wait4 status
  bool timed_out = false;   // killed at the deadline
  long maxrss_kb = 0;       // ru_maxrss
  double process_ms = 0;    // fork to reaped
  std::string error;        // set when it could not be started
};

// Fork, call prepare() in the child (set its environment), exec argv with stdout on
// a pipe; collect stdout until EOF or until timeout_s (then SIGKILL); reap it.
template <class Prepare>
child_run run_child(const std::vector<std::string>& argv, Prepare prepare, int timeout_s) {
  child_run r;
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  int pfd[2];
  if (pipe2(pfd, O_CLOEXEC) != 0) {
    r.error = "pipe failed";
    return r;
  }
  std::uint64_t t_fork = now_ns();
  pid_t pid = fork();
  if (pid < 0) {
    close(pfd[0]);
    close(pfd[1]);
    r.error = "fork failed";
    return r;
  }
  if (pid == 0) {
    dup2(pfd[1], 1);
    prepare();
    execv(args[0], args.data());
    _exit(127);
  }
  close(pfd[1]);
  std::uint64_t deadline = now_ns() + std::uint64_t(timeout_s) * 1000000000ull;
  for (;;) {
    std::uint64_t t = now_ns();
    if (t >= deadline) {
      r.timed_out = true;
      break;
    }
    pollfd pf{pfd[0], POLLIN, 0};
    int rc = poll(&pf, 1, int((deadline - t) / 1000000) + 1);
    if (rc <= 0) continue;
    char buf[4096];
    ssize_t n = read(pfd[0], buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    r.out.append(buf, size_t(n));
  }
  close(pfd[0]);
  if (r.timed_out) kill(pid, SIGKILL);
  rusage ru{};
  while (wait4(pid, &r.status, 0, &ru) < 0 && errno == EINTR) {
  }
  r.maxrss_kb = ru.ru_maxrss;
  r.process_ms = double(now_ns() - t_fork) / 1e6;
  return r;
}

// Why a worker failed: "timeout after N s", "killed by signal S", "exit status N";
// empty when it exited 0.
inline std::string exit_error(const child_run& r, int timeout_s) {
  if (!r.error.empty()) return r.error;
  if (r.timed_out) return "timeout after " + std::to_string(timeout_s) + " s";
  if (WIFSIGNALED(r.status)) return std::string("killed by signal ") + strsignal(WTERMSIG(r.status));
  if (WEXITSTATUS(r.status) != 0) return "exit status " + std::to_string(WEXITSTATUS(r.status));
  return std::string();
}

// argv[i] is an option that takes a value: returns argv[++i], or exits 2 with
// "<prog>: <option> needs a value".
inline const char* option_value(int argc, char** argv, int& i, const char* prog) {
  if (i + 1 >= argc) {
    std::fprintf(stderr, "%s: %s needs a value\n", prog, argv[i]);
    std::exit(2);
  }
  return argv[++i];
}

// base * scale rounded down, at least lo: a workload's count at a size multiplier.
inline std::uint64_t cnt_at_least(std::uint64_t base, double scale, std::uint64_t lo) {
  double v = double(base) * scale;
  return v < double(lo) ? lo : std::uint64_t(v);
}

// Write `script` to gpath and run gnuplot on it (no LD_PRELOAD or vmrt statistics in its
// environment).  False, with a note printed, when gnuplot is missing or fails.
inline bool run_gnuplot(const std::string& gpath, const std::string& script) {
  if (access("/usr/bin/gnuplot", X_OK) != 0) {
    std::printf("note: no chart: gnuplot not installed (Debian package gnuplot-nox)\n");
    return false;
  }
  FILE* f = std::fopen(gpath.c_str(), "w");
  if (f == nullptr || std::fwrite(script.data(), 1, script.size(), f) != script.size() || std::fclose(f) != 0) {
    std::printf("note: no chart: cannot write %s\n", gpath.c_str());
    return false;
  }
  auto plain = [] {
    unsetenv("LD_PRELOAD");
    unsetenv("VMRT_STATS");
    unsetenv("VMRT_STATS_FD");
  };
  child_run c = run_child({"/usr/bin/gnuplot", gpath}, plain, 60);
  std::string err = exit_error(c, 60);
  if (!err.empty()) {
    std::printf("note: gnuplot failed (%s); script in %s\n", err.c_str(), gpath.c_str());
    return false;
  }
  return true;
}

// A result line for scripts: "<name> <v with 3 decimals>", or "<name> n/a" for NaN; callers
// name it "metric NAME" (one word after "metric").
inline void print_metric(const std::string& name, double v) {
  if (std::isnan(v)) std::printf("%s n/a\n", name.c_str());
  else std::printf("%s %.3f\n", name.c_str(), v);
}

}  // namespace bench
