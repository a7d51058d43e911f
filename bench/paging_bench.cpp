// paging_bench — a working set larger than memory, paged by vmrt and by the host kernel
// under the same limit.
//
// For a memory limit LIMIT (--limit, default 64M) and working sets W = r x LIMIT
// (--ratios, default 0.5,1,2,4: the sweep: half, equal, twice, four times), each access mode
// (--modes seq,random) runs bench/paging_workload (one malloc'd working set; seq: scans in
// address order, every page checked and rewritten; random: a fill, then 4 x pages touches
// from a fixed seed, half of them writes; both print a checksum of everything read back):
//   host   natively, in a fresh memory cgroup limited to LIMIT (cgroup v1
//          memory.limit_in_bytes with memory.memsw unlimited, or v2 memory.max), the host's
//          swap on: the swap already configured, or a swap file made for the run (a
//          4 x LIMIT + 64M file in --swap-dir, default /var/tmp, swapon'd only around each
//          host run and removed at the end, also on SIGINT/TERM/HUP/QUIT/PIPE; one that a
//          SIGKILLed run left behind is removed by the next run); pages in/out are
//          /proc/vmstat pswpin/pswpout deltas;
//   vmrt   build/bin/vmrun --physmem LIMIT (vmrt's own swap device, its default); pages
//          in/out are its "swap pager pages paged in/out" (VMRT_STATS);
//   vmrt-cg (--vmrt-cgroup) vmrun as above inside the same kind of cgroup: the host then
//          charges vmrt for its frames, its metadata and its swap file's page cache; the
//          host's pswpin/pswpout show whether vmrt's memory fit.  --physmem is the frame
//          pool alone, so a pool as large as the cgroup does not fit in it (the host must
//          swap vmrt's frames); --vmrt-cg-physmem SIZE gives these runs a smaller pool.
// Reps are interleaved (every point of rep 1, then rep 2, ...; host and vmrt alternate who
// goes first).  The table shows medians of the workload's own time (malloc to last check,
// not the program's start-up); host/vmrt > 1 means vmrt was faster.  Every run of a point,
// host or vmrt, must print the same checksum with no bad page, or the exit status is 1.
//
//   paging_bench [--quick] [--limit SIZE] [--reps N] [--ratios LIST] [--modes LIST]
//                [--vmrt-cgroup] [--vmrt-cg-physmem SIZE] [--no-host] [--swap-dir DIR]
//                [--timeout SEC] [--trap MODE]
//   paging_bench [--limit SIZE] [--reps N] [...] -- PROGRAM [ARGS...]
// With a program after `--`, the sweep is replaced by that one program, run on both sides
// as it is (so any program can be compared under the same limit): time = the process's
// wall time (fork to reaped), pages in/out as above (vmrt's summed over every process of
// the run, its reports going to a file of their own), and every run must exit 0 and print
// the same bytes on stdout (their XXH64 is the checksum).  The host's swap file is then
// 8 x LIMIT, at least 1 GiB (vmrun's own default).
// --quick: 1 rep, LIMIT 16M unless given, 2 passes, pages / 2 touches (a smoke run, < 60 s:
// with 1 x pages touches it took 58 s at load 5-8).
// The host's memory cgroup (v1 at least) sometimes OOM-kills a process that is swapping
// hard rather than wait for reclaim: such a host run is retried (up to twice) and counted
// in the output ("host OOM kills retried").
// Exit status: 0 done; 1 a run failed or a checksum differed; 2 usage or a missing binary;
// 3 the vmrt side ran and matched, but the host comparison was skipped (printed as
// "SKIP host comparison: <reason>": no writable memory cgroup, swap could not be turned on,
// or --no-host).  Ends with `metric NAME VALUE` lines: paging_<mode>_r<r>_ratio (host time /
// vmrt time), _host_ms, _vmrt_ms, _host_pagein/_pageout, _vmrt_pagein/_pageout, and with
// --vmrt-cgroup _vmrtcg_ms and _vmrtcg_host_pageout.
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/swap.h>
#include <sys/wait.h>
#include <unistd.h>

#define XXH_INLINE_ALL  // header-only, as vm/swap_pager.cpp
#include <xxhash.h>

#include "bench/bench_common.h"

namespace {

constexpr const char* kProg = "paging_bench";
constexpr const char* kName = "vmrt_paging_bench";  // prefix of our cgroups and swap file
constexpr int kExitFail = 1;
constexpr int kExitUsage = 2;
constexpr int kExitHostSkipped = 3;
constexpr std::uint64_t kMiB = std::uint64_t{1} << 20;

// ---- state the signal handler cleans up (fixed buffers: it may run at any moment) ----

char g_swapfile[PATH_MAX];  // our swap file, "" when we made none
volatile sig_atomic_t g_swap_on = 0;
char g_cgroup[PATH_MAX];    // the cgroup a run is in, "" between runs

// Writes s to path; false on failure.  Async-signal-safe.
bool write_file(const char* path, const char* s) {
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return false;
  ssize_t n = write(fd, s, strlen(s));
  close(fd);
  return n == ssize_t(strlen(s));
}

// Kills every process in cgroup dir (SIGKILL), reaps our dead children, removes the dir.
// Async-signal-safe; gives up after ~2 s.
void cgroup_remove(const char* dir) {
  char procs[PATH_MAX + 16];
  std::snprintf(procs, sizeof procs, "%s/cgroup.procs", dir);
  for (int tries = 0; tries < 200; ++tries) {
    int fd = open(procs, O_RDONLY | O_CLOEXEC);
    if (fd < 0) break;
    char buf[4096];
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) break;
    buf[n] = 0;
    for (char* s = buf; *s != 0;) {
      long pid = std::strtol(s, &s, 10);
      if (pid > 0) kill(pid_t(pid), SIGKILL);
      while (*s == '\n') ++s;
    }
    while (waitpid(-1, nullptr, WNOHANG) > 0) {
    }
    timespec ts{0, 10 * 1000 * 1000};
    nanosleep(&ts, nullptr);
  }
  rmdir(dir);
}

// Turns our swap file off and deletes it.  Async-signal-safe.
void swap_remove() {
  if (g_swapfile[0] == 0) return;
  if (g_swap_on) swapoff(g_swapfile);
  g_swap_on = 0;
  unlink(g_swapfile);
  g_swapfile[0] = 0;
}

void cleanup() {
  if (g_cgroup[0] != 0) cgroup_remove(g_cgroup);
  g_cgroup[0] = 0;
  swap_remove();
}

void on_signal(int sig) {
  cleanup();
  signal(sig, SIG_DFL);
  raise(sig);
}

// ---- small file helpers (driver side) ----

bool exists(const std::string& path) { return access(path.c_str(), F_OK) == 0; }

// The value after "key " at the start of a line of text (memory.stat, /proc/vmstat); -1.
long long keyed(const std::string& text, const std::string& key) {
  size_t at = 0;
  while ((at = text.find(key + " ", at)) != std::string::npos) {
    if (at == 0 || text[at - 1] == '\n') return std::atoll(text.c_str() + at + key.size() + 1);
    at += key.size();
  }
  return -1;
}

// The number before " <label>" on a line of its own (vmstat -s style, right-aligned): of the
// last report in text, or with sum the total over every report (one per process); -1 when
// none has it.
long long counter_line(const std::string& text, const std::string& label, bool sum = false) {
  size_t at = 0;
  long long v = -1;
  while ((at = text.find(label, at)) != std::string::npos) {
    size_t end = at + label.size();
    if (end == text.size() || text[end] == '\n') {
      size_t b = text.rfind('\n', at);
      b = b == std::string::npos ? 0 : b + 1;
      char* stop = nullptr;
      long long x = std::strtoll(text.c_str() + b, &stop, 10);
      if (stop != nullptr && stop <= text.c_str() + at) v = sum && v >= 0 ? v + x : x;
    }
    at = end;
  }
  return v;
}

bool parse_size(const char* s, std::uint64_t* out) {
  char* end = nullptr;
  double v = std::strtod(s, &end);
  if (end == s || v <= 0) return false;
  std::uint64_t mul = 1;
  switch (*end) {
    case 'k': case 'K': mul = 1ull << 10; ++end; break;
    case 'm': case 'M': mul = 1ull << 20; ++end; break;
    case 'g': case 'G': mul = 1ull << 30; ++end; break;
    case 0: break;
    default: return false;
  }
  if (*end != 0) return false;
  *out = std::uint64_t(v * double(mul));
  return true;
}

// ---- the host's memory cgroup ----

enum class cg_version { none, v1, v2 };

struct cgroup_host {
  cg_version version = cg_version::none;
  std::string root;  // where our child cgroups go
  std::string why;   // when none: the reason
  unsigned serial = 0;
};

// Finds a memory controller we can make child cgroups in: v1's memory hierarchy, or a v2
// mount whose root delegates memory (we never change which controllers the root enables).
cgroup_host find_cgroup() {
  cgroup_host h;
  std::string mounts = bench::read_file("/proc/mounts");
  std::string v1, v2;
  size_t at = 0;
  while (at < mounts.size()) {
    size_t e = mounts.find('\n', at);
    if (e == std::string::npos) e = mounts.size();
    char dev[256], dir[PATH_MAX], type[64], opts[1024];
    if (std::sscanf(mounts.substr(at, e - at).c_str(), "%255s %4095s %63s %1023s", dev, dir, type, opts) == 4) {
      std::string o = std::string(",") + opts + ",";
      if (std::strcmp(type, "cgroup") == 0 && o.find(",memory,") != std::string::npos) v1 = dir;
      if (std::strcmp(type, "cgroup2") == 0 && v2.empty()) v2 = dir;
    }
    at = e + 1;
  }
  if (!v1.empty()) {
    if (access((v1 + "/cgroup.procs").c_str(), W_OK) == 0) {
      h.version = cg_version::v1;
      h.root = v1;
      return h;
    }
    h.why = "cgroup v1 memory hierarchy at " + v1 + " is not writable";
    return h;
  }
  if (!v2.empty()) {
    std::string sub = bench::read_file(v2 + "/cgroup.subtree_control");
    if (sub.find("memory") != std::string::npos && access((v2 + "/cgroup.procs").c_str(), W_OK) == 0) {
      h.version = cg_version::v2;
      h.root = v2;
      return h;
    }
    h.why = "cgroup v2 at " + v2 + " does not delegate the memory controller (or is not writable)";
    return h;
  }
  h.why = "no memory cgroup mounted";
  return h;
}

// Makes a fresh child cgroup limited to limit bytes of memory (0: no limit, accounting
// only), swap unlimited; sets g_cgroup.  Returns "" or what failed.
std::string cgroup_make(cgroup_host& h, std::uint64_t limit) {
  std::string dir = h.root + "/" + kName + "." + std::to_string(getpid()) + "." + std::to_string(++h.serial);
  if (mkdir(dir.c_str(), 0755) != 0) return "mkdir " + dir + ": " + std::strerror(errno);
  std::snprintf(g_cgroup, sizeof g_cgroup, "%s", dir.c_str());
  std::string lim = std::to_string(limit);
  if (limit == 0) return std::string();
  if (h.version == cg_version::v1) {
    // memsw (memory + swap) first: it must never be below the memory limit.
    if (exists(dir + "/memory.memsw.limit_in_bytes") && !write_file((dir + "/memory.memsw.limit_in_bytes").c_str(), "-1"))
      return "memory.memsw.limit_in_bytes: " + std::string(std::strerror(errno));
    if (!write_file((dir + "/memory.limit_in_bytes").c_str(), lim.c_str()))
      return "memory.limit_in_bytes: " + std::string(std::strerror(errno));
  } else {
    if (exists(dir + "/memory.swap.max")) write_file((dir + "/memory.swap.max").c_str(), "max");
    if (!write_file((dir + "/memory.max").c_str(), lim.c_str())) return "memory.max: " + std::string(std::strerror(errno));
  }
  return std::string();
}

// Times the cgroup's OOM killer struck (v1 memory.oom_control / v2 memory.events).
long long cgroup_oom_kills() {
  if (g_cgroup[0] == 0) return 0;
  std::string d = g_cgroup;
  std::string t = bench::read_file(d + "/memory.oom_control");
  long long v = keyed(t, "oom_kill");
  if (v < 0) v = keyed(bench::read_file(d + "/memory.events"), "oom_kill");
  return v < 0 ? 0 : v;
}

// ---- the host's swap ----

struct swap_host {
  bool usable = false;
  bool ours = false;    // a file we made (on only around host runs)
  std::string what;     // for the header
  std::string why;      // when not usable
};

// Lines of /proc/swaps after the header.
std::vector<std::string> swaps_listed() {
  std::vector<std::string> v;
  std::string t = bench::read_file("/proc/swaps");
  size_t at = t.find('\n');
  while (at != std::string::npos && at + 1 < t.size()) {
    size_t e = t.find('\n', at + 1);
    std::string line = t.substr(at + 1, e == std::string::npos ? std::string::npos : e - at - 1);
    if (!line.empty()) v.push_back(line);
    at = e;
  }
  return v;
}

// Swap files and cgroups a killed earlier run of ours left behind (its pid is gone).
void remove_stale(const cgroup_host& h, const std::string& swap_dir) {
  std::string prefix = swap_dir + "/" + kName + ".";
  for (const std::string& line : swaps_listed()) {
    std::string path = line.substr(0, line.find_first_of(" \t"));
    if (path.compare(0, prefix.size(), prefix) != 0) continue;
    long pid = std::atol(path.c_str() + prefix.size());
    if (pid > 0 && kill(pid_t(pid), 0) != 0 && errno == ESRCH) {
      std::printf("note: removing the swap file a killed run left on: %s\n", path.c_str());
      swapoff(path.c_str());
      unlink(path.c_str());
    }
  }
  if (DIR* d = opendir(swap_dir.c_str())) {
    while (dirent* e = readdir(d)) {
      std::string n = e->d_name;
      if (n.compare(0, std::strlen(kName) + 1, std::string(kName) + ".") != 0) continue;
      long pid = std::atol(n.c_str() + std::strlen(kName) + 1);
      if (pid > 0 && kill(pid_t(pid), 0) != 0 && errno == ESRCH) {
        swapoff((swap_dir + "/" + n).c_str());  // fails when it was not on
        unlink((swap_dir + "/" + n).c_str());
      }
    }
    closedir(d);
  }
  if (h.version == cg_version::none) return;
  if (DIR* d = opendir(h.root.c_str())) {
    while (dirent* e = readdir(d)) {
      std::string n = e->d_name;
      if (n.compare(0, std::strlen(kName) + 1, std::string(kName) + ".") != 0) continue;
      long pid = std::atol(n.c_str() + std::strlen(kName) + 1);
      if (pid > 0 && kill(pid_t(pid), 0) != 0 && errno == ESRCH) cgroup_remove((h.root + "/" + n).c_str());
    }
    closedir(d);
  }
}

// Runs argv (stdout and stderr to /dev/null); true when it exits 0.
bool run_quiet(const std::vector<std::string>& argv) {
  pid_t pid = fork();
  if (pid < 0) return false;
  if (pid == 0) {
    int fd = open("/dev/null", O_WRONLY);
    dup2(fd, 1);
    dup2(fd, 2);
    std::vector<char*> a;
    for (const std::string& s : argv) a.push_back(const_cast<char*>(s.c_str()));
    a.push_back(nullptr);
    execvp(a[0], a.data());
    _exit(127);
  }
  int st = 0;
  while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
  }
  return WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

// Uses the host's configured swap, or makes a swap file of bytes in dir and checks that it
// can be turned on (then turns it off again until a host run needs it).
swap_host setup_swap(const std::string& dir, std::uint64_t bytes) {
  swap_host s;
  std::vector<std::string> listed = swaps_listed();
  if (!listed.empty()) {
    s.usable = true;
    s.what = "the host's own swap (" + listed[0].substr(0, listed[0].find_first_of(" \t")) + (listed.size() > 1 ? ", ..." : "") + ")";
    return s;
  }
  std::snprintf(g_swapfile, sizeof g_swapfile, "%s/%s.%d.swap", dir.c_str(), kName, int(getpid()));
  int fd = open(g_swapfile, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) {
    s.why = std::string("cannot create ") + g_swapfile + ": " + std::strerror(errno);
    g_swapfile[0] = 0;
    return s;
  }
  // Written out (no holes: swapon refuses a sparse file).
  std::vector<char> zeros(kMiB, 0);
  for (std::uint64_t done = 0; done < bytes; done += kMiB) {
    if (write(fd, zeros.data(), zeros.size()) != ssize_t(zeros.size())) {
      s.why = std::string("writing ") + g_swapfile + ": " + std::strerror(errno);
      close(fd);
      swap_remove();
      return s;
    }
  }
  fsync(fd);
  close(fd);
  if (!run_quiet({"mkswap", g_swapfile}) && !run_quiet({"/sbin/mkswap", g_swapfile}) &&
      !run_quiet({"/usr/sbin/mkswap", g_swapfile})) {
    s.why = "mkswap failed (util-linux's mkswap not found or refused the file)";
    swap_remove();
    return s;
  }
  if (swapon(g_swapfile, 0) != 0) {
    s.why = std::string("swapon ") + g_swapfile + ": " + std::strerror(errno);
    swap_remove();
    return s;
  }
  g_swap_on = 1;
  swapoff(g_swapfile);
  g_swap_on = 0;
  s.usable = true;
  s.ours = true;
  s.what = "a " + std::to_string(bytes / kMiB) + " MiB swap file made for the run (" + g_swapfile +
           "), on only during host runs";
  return s;
}

// Turns our swap file on (before a host run) or off (after): a no-op for the host's own.
bool swap_set(const swap_host& s, bool on) {
  if (!s.ours) return true;
  if (on) {
    if (swapon(g_swapfile, 0) != 0) return false;
    g_swap_on = 1;
    return true;
  }
  if (!g_swap_on) return true;
  if (swapoff(g_swapfile) != 0) return false;
  g_swap_on = 0;
  return true;
}

// ---- runs ----

enum class side { host, vmrt, vmrt_cg };
constexpr const char* kSideName[] = {"host", "vmrt", "vmrt-cg"};
static_assert(sizeof kSideName / sizeof kSideName[0] == 3);

struct run_result {
  bool ok = false;
  bool oom = false;  // the cgroup's OOM killer ended it
  std::string error;
  std::string checksum;
  double ms = NAN;
  long long pagein = -1, pageout = -1;            // the side's own counters
  long long host_pagein = -1, host_pageout = -1;  // /proc/vmstat deltas (cgroup runs)
  double peak_mb = NAN;                           // the cgroup's peak charge (cgroup runs)
};

struct config {
  std::uint64_t limit = 64 * kMiB;
  std::uint64_t cg_physmem = 0;  // vmrt-cg's --physmem (0: the limit)
  int reps = 3;
  bool quick = false, vmrt_cg = false, no_host = false;
  bool account = false;  // vmrt's runs in an unlimited cgroup (their peak host charge)
  std::string ratios = "0.5,1,2,4", modes = "seq,random", swap_dir = "/var/tmp", trap;
  int timeout_s = 600;
  std::string workload, vmrun;
  std::vector<std::string> program;  // after `--`: this program instead of the sweep
};

constexpr const char* kProgramMode = "program";

std::vector<std::string> workload_args(const config& c, const std::string& mode, std::uint64_t mb) {
  if (mode == kProgramMode) return c.program;
  std::uint64_t pages = mb * kMiB / 4096;
  if (mode == "seq") return {c.workload, mode, std::to_string(mb), c.quick ? "2" : "3"};
  return {c.workload, mode, std::to_string(mb), std::to_string(c.quick ? pages / 2 : 2 * pages), "42"};
}

// Parses the workload's line: "<mode> <MB> MB: checksum X bad N ... total_ms T".
void parse_workload(const std::string& out, run_result& r) {
  size_t at = out.find(" checksum ");
  if (at == std::string::npos) {
    r.error = "no checksum line in the output";
    return;
  }
  char sum[64];
  unsigned long bad = 0;
  double total = 0;
  const char* s = out.c_str() + at;
  if (std::sscanf(s, " checksum %63s bad %lu", sum, &bad) != 2 || std::strstr(s, "total_ms ") == nullptr ||
      std::sscanf(std::strstr(s, "total_ms "), "total_ms %lf", &total) != 1) {
    r.error = "unreadable workload line";
    return;
  }
  if (bad != 0) {
    r.error = std::to_string(bad) + " bad pages";
    return;
  }
  r.checksum = sum;
  r.ms = total;
  r.ok = true;
}

run_result run_one(const config& c, cgroup_host& cg, const swap_host& sw, side sd, const std::string& mode,
                   std::uint64_t mb) {
  run_result r;
  // Limited: the host's and vmrt-cg's runs.  vmrt's own runs go in a cgroup without a limit
  // when the host side is on, to measure what the host charges them.
  bool limited = sd != side::vmrt;
  bool in_cgroup = limited || c.account;
  std::vector<std::string> argv;
  if (sd != side::host) {
    std::uint64_t physmem = sd == side::vmrt_cg && c.cg_physmem != 0 ? c.cg_physmem : c.limit;
    argv = {c.vmrun, "--physmem", std::to_string(physmem / kMiB) + "M"};
    if (!c.trap.empty()) argv.insert(argv.end(), {"--trap", c.trap});
    argv.push_back("--");
  }
  for (const std::string& a : workload_args(c, mode, mb)) argv.push_back(a);
  if (in_cgroup) {
    std::string e = cgroup_make(cg, limited ? c.limit : 0);
    if (!e.empty()) {
      r.error = "cgroup: " + e;
      if (g_cgroup[0] != 0) cgroup_remove(g_cgroup);
      g_cgroup[0] = 0;
      return r;
    }
    if (limited && !swap_set(sw, true)) {
      r.error = std::string("swapon: ") + std::strerror(errno);
      cgroup_remove(g_cgroup);
      g_cgroup[0] = 0;
      return r;
    }
  }
  // A program's stdout is its own: vmrt's reports go to a file (kept open across the exec).
  const bool program = mode == kProgramMode;
  char stats_path[] = "/tmp/paging_bench_stats.XXXXXX";
  int stats_fd = -1;
  if (program && sd != side::host) {
    stats_fd = mkstemp(stats_path);
    if (stats_fd < 0) {
      r.error = std::string("mkstemp: ") + std::strerror(errno);
      return r;
    }
    unlink(stats_path);
  }
  const std::string stats_fd_text = std::to_string(stats_fd < 0 ? 1 : stats_fd);
  std::string vmstat0 = bench::read_file("/proc/vmstat");
  const char* procs_path = nullptr;
  std::string procs = std::string(g_cgroup) + "/cgroup.procs";
  if (in_cgroup) procs_path = procs.c_str();
  bool vm = sd != side::host;
  bench::child_run cr = bench::run_child(
      argv,
      [&] {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (vm) {
          setenv("VMRT_STATS", "1", 1);
          // (the workload's: the reports follow its line on stdout)
          setenv("VMRT_STATS_FD", stats_fd_text.c_str(), 1);
        }
        if (procs_path != nullptr) {
          char pid[32];
          std::snprintf(pid, sizeof pid, "%d\n", int(getpid()));
          if (!write_file(procs_path, pid)) _exit(126);
        }
      },
      c.timeout_s);
  std::string vmstat1 = bench::read_file("/proc/vmstat");
  long long ooms = in_cgroup ? cgroup_oom_kills() : 0;
  if (in_cgroup) {
    std::string d = g_cgroup;
    std::string peak = bench::read_file(d + (cg.version == cg_version::v1 ? "/memory.max_usage_in_bytes" : "/memory.peak"));
    if (!peak.empty()) r.peak_mb = double(std::atoll(peak.c_str())) / double(kMiB);
    cgroup_remove(g_cgroup);
    g_cgroup[0] = 0;
    if (limited && !swap_set(sw, false)) std::fprintf(stderr, "%s: swapoff %s: %s\n", kProg, g_swapfile, std::strerror(errno));
  }
  if (limited) {
    r.host_pagein = keyed(vmstat1, "pswpin") - keyed(vmstat0, "pswpin");
    r.host_pageout = keyed(vmstat1, "pswpout") - keyed(vmstat0, "pswpout");
  }
  std::string stats = cr.out;
  if (stats_fd >= 0) {  // (unlinked: read through the descriptor)
    stats = bench::read_file("/proc/self/fd/" + stats_fd_text);
    close(stats_fd);
  }
  std::string err = bench::exit_error(cr, c.timeout_s);
  if (!err.empty()) {
    if (in_cgroup && WIFEXITED(cr.status) && WEXITSTATUS(cr.status) == 126) err = "could not join the cgroup";
    if (ooms > 0) {
      err += " (the cgroup's OOM killer)";
      r.oom = true;
    }
    r.error = err;
    return r;
  }
  if (program) {
    char sum[32];
    std::snprintf(sum, sizeof sum, "%016llx", (unsigned long long)XXH64(cr.out.data(), cr.out.size(), 0));
    r.checksum = sum;
    r.ms = cr.process_ms;
    r.ok = true;
  } else {
    parse_workload(cr.out, r);
  }
  if (vm) {
    r.pagein = counter_line(stats, " swap pager pages paged in", program);
    r.pageout = counter_line(stats, " swap pager pages paged out", program);
  } else {
    r.pagein = r.host_pagein;
    r.pageout = r.host_pageout;
  }
  return r;
}

struct point {
  std::string mode;
  double ratio;
  std::uint64_t mb;
  std::map<side, std::vector<run_result>> runs;
};

// "-" for the program's point (it has no working-set ratio or size).
std::string ratio_label(double r) {
  if (r <= 0) return "-";
  char b[32];
  std::snprintf(b, sizeof b, "%g", r);
  return b;
}
std::string mb_label(std::uint64_t mb) { return mb == 0 ? "-" : std::to_string(mb); }

// Median of a field over the successful runs; NaN when none.
template <class F>
double med(const std::vector<run_result>& v, F f) {
  std::vector<double> x;
  for (const run_result& r : v)
    if (r.ok) x.push_back(double(f(r)));
  return bench::median(x);
}

std::string fmt(double v, const char* f) {
  if (std::isnan(v)) return "-";
  char b[64];
  std::snprintf(b, sizeof b, f, v);
  return b;
}

void usage() {
  std::fprintf(stderr,
               "usage: paging_bench [--quick] [--limit SIZE] [--reps N] [--ratios LIST] [--modes seq,random]\n"
               "                    [--vmrt-cgroup] [--vmrt-cg-physmem SIZE] [--no-host] [--swap-dir DIR]\n"
               "                    [--timeout SEC] [--trap MODE] [-- PROGRAM [ARGS...]]\n");
}

}  // namespace

int main(int argc, char** argv) {
  config c;
  bool limit_given = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--quick") {
      c.quick = true;
    } else if (a == "--limit") {
      if (!parse_size(bench::option_value(argc, argv, i, kProg), &c.limit)) return usage(), kExitUsage;
      limit_given = true;
    } else if (a == "--reps") {
      c.reps = std::atoi(bench::option_value(argc, argv, i, kProg));
    } else if (a == "--ratios") {
      c.ratios = bench::option_value(argc, argv, i, kProg);
    } else if (a == "--modes") {
      c.modes = bench::option_value(argc, argv, i, kProg);
    } else if (a == "--vmrt-cgroup") {
      c.vmrt_cg = true;
    } else if (a == "--vmrt-cg-physmem") {
      if (!parse_size(bench::option_value(argc, argv, i, kProg), &c.cg_physmem)) return usage(), kExitUsage;
      c.vmrt_cg = true;
    } else if (a == "--no-host") {
      c.no_host = true;
    } else if (a == "--swap-dir") {
      c.swap_dir = bench::option_value(argc, argv, i, kProg);
    } else if (a == "--timeout") {
      c.timeout_s = std::atoi(bench::option_value(argc, argv, i, kProg));
    } else if (a == "--trap") {
      c.trap = bench::option_value(argc, argv, i, kProg);
    } else if (a == "--") {
      c.program.assign(argv + i + 1, argv + argc);
      if (c.program.empty()) return usage(), kExitUsage;
      break;
    } else {
      usage();
      return kExitUsage;
    }
  }
  if (c.quick) {
    c.reps = 1;
    if (!limit_given) c.limit = 16 * kMiB;
  }
  if (c.reps < 1 || c.limit < kMiB || c.timeout_s < 1) {
    std::fprintf(stderr, "%s: --reps >= 1, --limit >= 1M (vmrun's floor), --timeout >= 1\n", kProg);
    return kExitUsage;
  }
  std::string bin = bench::dir_of(bench::self_exe());
  c.workload = bin + "/paging_workload";
  c.vmrun = bin + "/vmrun";
  if (!c.program.empty()) {  // execv takes a path: look the program up in PATH as a shell would
    std::string found = bench::find_in_path(c.program[0]);
    if (found.empty()) {
      std::fprintf(stderr, "%s: %s: not found\n", kProg, c.program[0].c_str());
      return kExitUsage;
    }
    c.program[0] = c.workload = found;
  }
  for (const std::string& p : {c.workload, c.vmrun})
    if (access(p.c_str(), X_OK) != 0) {
      std::fprintf(stderr, "%s: %s missing (cmake --build build --target paging_bench vmrun vmrt_malloc)\n", kProg,
                   p.c_str());
      return kExitUsage;
    }

  std::vector<point> points;
  if (!c.program.empty()) points.push_back({kProgramMode, 0, 0, {}});
  for (const std::string& m : bench::split_list(c.program.empty() ? c.modes : std::string())) {
    if (m != "seq" && m != "random") {
      std::fprintf(stderr, "%s: unknown mode %s\n", kProg, m.c_str());
      return kExitUsage;
    }
    for (const std::string& rs : bench::split_list(c.ratios)) {
      double r = std::atof(rs.c_str());
      if (r <= 0) return usage(), kExitUsage;
      std::uint64_t mb = std::uint64_t(r * double(c.limit / kMiB) + 0.5);
      points.push_back({m, r, mb < 1 ? 1 : mb, {}});
    }
  }

  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  for (int s : {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGPIPE}) sigaction(s, &sa, nullptr);
  std::atexit(cleanup);

  // The host side: a memory cgroup and swap.
  cgroup_host cg = find_cgroup();
  std::string skip;
  swap_host sw;
  if (geteuid() != 0) cg = cgroup_host{cg_version::none, "", "not root (the cgroup and swapon need root)", 0};
  remove_stale(cg, c.swap_dir);
  if (c.no_host) skip = "--no-host";
  else if (cg.version == cg_version::none) skip = cg.why;
  else {
    std::uint64_t max_mb = 0;
    for (const point& p : points) max_mb = std::max(max_mb, p.mb);
    std::uint64_t bytes = std::max(4 * c.limit, max_mb * kMiB) + 64 * kMiB;
    if (!c.program.empty()) bytes = std::max(8 * c.limit, std::uint64_t{1024} * kMiB);  // vmrun's default swap
    sw = setup_swap(c.swap_dir, bytes);
    if (!sw.usable) skip = sw.why;
  }

  std::printf("paging_bench: limit %llu MiB, %d rep(s)%s; workload %s\n", (unsigned long long)(c.limit / kMiB),
              c.reps, c.quick ? " (--quick)" : "", c.workload.c_str());
  if (skip.empty())
    std::printf("host: cgroup %s memory controller at %s (child per run, memory limit %llu MiB, swap unlimited); swap: %s\n",
                cg.version == cg_version::v1 ? "v1" : "v2", cg.root.c_str(), (unsigned long long)(c.limit / kMiB),
                sw.what.c_str());
  else
    std::printf("SKIP host comparison: %s\n", skip.c_str());
  if (skip.empty() && c.vmrt_cg)
    std::printf("vmrt-cg: vmrun --physmem %lluM in a cgroup limited to %llu MiB\n",
                (unsigned long long)((c.cg_physmem != 0 ? c.cg_physmem : c.limit) / kMiB),
                (unsigned long long)(c.limit / kMiB));
  std::fflush(stdout);

  c.account = skip.empty();
  std::vector<side> sides;
  if (skip.empty()) sides.push_back(side::host);
  sides.push_back(side::vmrt);
  if (c.vmrt_cg && skip.empty()) sides.push_back(side::vmrt_cg);

  bool failed = false;
  int oom_retries = 0;
  for (int rep = 0; rep < c.reps; ++rep) {
    for (point& p : points) {
      std::vector<side> order = sides;
      if (rep % 2 == 1) std::reverse(order.begin(), order.end());
      for (side sd : order) {
        run_result r = run_one(c, cg, sw, sd, p.mode, p.mb);
        for (int retry = 0; !r.ok && r.oom && retry < 2; ++retry) {
          std::printf("  rep %d %-6s r=%-5s %4s MB %-7s OOM-killed in the cgroup, retrying\n", rep + 1,
                      p.mode.c_str(), ratio_label(p.ratio).c_str(), mb_label(p.mb).c_str(), kSideName[int(sd)]);
          ++oom_retries;
          r = run_one(c, cg, sw, sd, p.mode, p.mb);
        }
        std::printf("  rep %d %-6s r=%-5s %4s MB %-7s %s", rep + 1, p.mode.c_str(), ratio_label(p.ratio).c_str(),
                    mb_label(p.mb).c_str(), kSideName[int(sd)], r.ok ? "" : "FAILED: ");
        if (r.ok)
          std::printf("%9.1f ms  in %lld out %lld  checksum %s%s\n", r.ms, r.pagein, r.pageout, r.checksum.c_str(),
                      std::isnan(r.peak_mb) ? "" : ("  cgroup peak " + fmt(r.peak_mb, "%.1f") + " MiB").c_str());
        else
          std::printf("%s\n", r.error.c_str());
        std::fflush(stdout);
        if (!r.ok) failed = true;
        p.runs[sd].push_back(r);
      }
    }
  }

  // Every successful run of a point must agree on the checksum.
  for (point& p : points) {
    std::string want;
    for (auto& [sd, v] : p.runs)
      for (const run_result& r : v) {
        if (!r.ok) continue;
        if (want.empty()) want = r.checksum;
        else if (r.checksum != want) {
          std::printf("CHECKSUM MISMATCH: %s r=%s %s: %s, other runs %s\n", p.mode.c_str(),
                      ratio_label(p.ratio).c_str(), kSideName[int(sd)], r.checksum.c_str(), want.c_str());
          failed = true;
        }
      }
  }

  bool host = skip.empty();
  if (host) std::printf("host OOM kills retried: %d\n", oom_retries);
  std::printf("\nmedians of %d rep(s); time = %s; pages in/out: host = /proc/vmstat pswpin/pswpout, vmrt = its swap "
              "pager's%s\n",
              c.reps, c.program.empty() ? "the workload's own (malloc to last check)" : "the program's wall time (all of it)",
              host ? "; host peak / vmrt peak = the cgroup's peak charge (MiB, page cache included: the host's limited, "
                     "vmrt's unlimited)" : "");
  std::printf("%-6s %5s %6s | %10s %10s %9s | %9s %9s | %9s %9s", "mode", "W/L", "W MB", "host ms", "vmrt ms",
              "host/vmrt", "host in", "host out", "vmrt in", "vmrt out");
  if (host) std::printf(" | %9s %9s", "host peak", "vmrt peak");
  if (c.vmrt_cg && host) std::printf(" | %10s %9s %9s", "vmrt-cg ms", "cg sw in", "cg sw out");
  std::printf("\n");
  for (const point& p : points) {
    auto get = [&](side sd) -> const std::vector<run_result>& {
      static const std::vector<run_result> none;
      auto it = p.runs.find(sd);
      return it == p.runs.end() ? none : it->second;
    };
    double hm = med(get(side::host), [](const run_result& r) { return r.ms; });
    double vm = med(get(side::vmrt), [](const run_result& r) { return r.ms; });
    double hin = med(get(side::host), [](const run_result& r) { return r.pagein; });
    double hout = med(get(side::host), [](const run_result& r) { return r.pageout; });
    double vin = med(get(side::vmrt), [](const run_result& r) { return r.pagein; });
    double vout = med(get(side::vmrt), [](const run_result& r) { return r.pageout; });
    std::printf("%-6s %5s %6s | %10s %10s %9s | %9s %9s | %9s %9s", p.mode.c_str(), ratio_label(p.ratio).c_str(),
                mb_label(p.mb).c_str(), fmt(hm, "%.1f").c_str(), fmt(vm, "%.1f").c_str(),
                fmt(hm / vm, "%.2fx").c_str(), fmt(hin, "%.0f").c_str(), fmt(hout, "%.0f").c_str(),
                fmt(vin, "%.0f").c_str(), fmt(vout, "%.0f").c_str());
    double cm = NAN, cin = NAN, cout = NAN;
    if (host)
      std::printf(" | %9s %9s", fmt(med(get(side::host), [](const run_result& r) { return r.peak_mb; }), "%.1f").c_str(),
                  fmt(med(get(side::vmrt), [](const run_result& r) { return r.peak_mb; }), "%.1f").c_str());
    if (c.vmrt_cg && host) {
      cm = med(get(side::vmrt_cg), [](const run_result& r) { return r.ms; });
      cin = med(get(side::vmrt_cg), [](const run_result& r) { return r.host_pagein; });
      cout = med(get(side::vmrt_cg), [](const run_result& r) { return r.host_pageout; });
      std::printf(" | %10s %9s %9s", fmt(cm, "%.1f").c_str(), fmt(cin, "%.0f").c_str(), fmt(cout, "%.0f").c_str());
    }
    std::printf("\n");
  }
  std::printf("\n");
  cleanup();
  bool ours_listed = false;
  for (const std::string& line : swaps_listed())
    if (line.find(kName) != std::string::npos) ours_listed = true;
  if (ours_listed) {
    std::printf("ERROR: our swap file is still listed in /proc/swaps\n");
    return kExitFail;
  }
  if (sw.ours) std::printf("host swap file removed; /proc/swaps lists %zu entr%s\n", swaps_listed().size(),
                           swaps_listed().size() == 1 ? "y" : "ies");
  for (const point& p : points) {
    auto get = [&](side sd) {
      auto it = p.runs.find(sd);
      return it == p.runs.end() ? std::vector<run_result>() : it->second;
    };
    std::string n = "metric paging_" + p.mode + (p.mode == kProgramMode ? "" : "_r" + ratio_label(p.ratio));
    double hm = med(get(side::host), [](const run_result& r) { return r.ms; });
    double vm = med(get(side::vmrt), [](const run_result& r) { return r.ms; });
    if (host) bench::print_metric(n + "_ratio", hm / vm);
    if (host) bench::print_metric(n + "_host_ms", hm);
    bench::print_metric(n + "_vmrt_ms", vm);
    if (host) bench::print_metric(n + "_host_pagein", med(get(side::host), [](const run_result& r) { return r.pagein; }));
    if (host) bench::print_metric(n + "_host_pageout", med(get(side::host), [](const run_result& r) { return r.pageout; }));
    bench::print_metric(n + "_vmrt_pagein", med(get(side::vmrt), [](const run_result& r) { return r.pagein; }));
    bench::print_metric(n + "_vmrt_pageout", med(get(side::vmrt), [](const run_result& r) { return r.pageout; }));
    if (host) bench::print_metric(n + "_host_peak_mb", med(get(side::host), [](const run_result& r) { return r.peak_mb; }));
    if (host) bench::print_metric(n + "_vmrt_peak_mb", med(get(side::vmrt), [](const run_result& r) { return r.peak_mb; }));
    if (c.vmrt_cg && host) {
      bench::print_metric(n + "_vmrtcg_ms", med(get(side::vmrt_cg), [](const run_result& r) { return r.ms; }));
      bench::print_metric(n + "_vmrtcg_host_pageout",
                          med(get(side::vmrt_cg), [](const run_result& r) { return r.host_pageout; }));
    }
  }

  if (failed) return kExitFail;
  return skip.empty() ? 0 : kExitHostSkipped;
}
