// allocsuite — an allocator comparison suite: classic allocator workloads (written
// here from their published descriptions, see bench/workloads.cpp) and real programs
// from Debian (redis-server driven by redis-benchmark, memcached driven by a small
// loopback client in this program, sqlite3, python3, a gcc build), each run under every allocator
// by LD_PRELOAD, repetitions interleaved, medians, results checked against glibc's.
// Output: a table, results.csv / runs.csv, and a chart (SVG and PNG via gnuplot) of
// time and peak RSS per workload normalised to a baseline allocator; for vmrt, the
// `vmstat -m` summary of one more run of each workload (VMRT_STATS=1, VMRT_STATS_FD), not
// measured: the report at exit runs cold code into fresh buffers, ~0.3 MiB of peak RSS on
// the small rows, which the measured runs must not carry.  See bench/README.md.
//
// The driver uses the C++ standard library freely; the workloads run in a
// re-executed worker (`allocsuite --worker NAME --scale S`) under the allocator.

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

#include <dlfcn.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench/bench_common.h"
#include "bench/workloads.h"

namespace {

using bench::median;
using bench::now_ns;

constexpr int k_stats_fd = 9;  // VMRT_STATS_FD of vmrt runs

// ---------------------------------------------------------------------------------
// Allocators
// ---------------------------------------------------------------------------------

struct allocator {
  std::string name;
  std::string path;  // preloaded library; glibc: libc itself (see preload_for)
  bool available = true;
  std::string note;
  bool is_glibc = false;
  bool is_vmrt = false;
};

std::string g_self, g_libc;

std::string self_dir() { return bench::dir_of(g_self); }

std::string first_readable(std::initializer_list<const char*> c) {
  for (const char* p : c)
    if (access(p, R_OK) == 0) return p;
  return "";
}

std::vector<allocator> default_allocators() {
  std::vector<allocator> v;
  allocator g;
  g.name = "glibc";
  g.is_glibc = true;
  g.path = g_libc;
  v.push_back(g);
  auto add = [&](const char* name, std::string path, const char* missing_note) {
    allocator a;
    a.name = name;
    a.path = path;
    a.available = !path.empty() && access(path.c_str(), R_OK) == 0;
    if (!a.available) a.note = std::string(missing_note) + (path.empty() ? "" : " (" + path + ")");
    v.push_back(a);
  };
  add("jemalloc", first_readable({"/usr/lib/x86_64-linux-gnu/libjemalloc.so.2"}), "libjemalloc2 not installed");
  add("mimalloc",
      first_readable({"/usr/lib/x86_64-linux-gnu/libmimalloc.so.2", "/usr/lib/x86_64-linux-gnu/libmimalloc.so.2.0",
                      "/usr/lib/x86_64-linux-gnu/libmimalloc.so"}),
      "libmimalloc2.0 not installed");
  add("tcmalloc", first_readable({"/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4"}),
      "libtcmalloc-minimal4 not installed");
  std::string shim;
  if (const char* e = getenv("VMRT_MALLOC_SO")) shim = e;
  else shim = self_dir() + "/../lib/libvmrt_malloc.so";
  char real[PATH_MAX];
  if (realpath(shim.c_str(), real)) shim = real;
  add("vmrt", shim, "vmrt shim missing: build target vmrt_malloc");
  v.back().is_vmrt = true;
  return v;
}

// ---------------------------------------------------------------------------------
// Tasks: worker workloads and real applications
// ---------------------------------------------------------------------------------

enum class task_kind { worker, redis, memcached, sqlite, python, gcc };

struct task {
  std::string name;
  task_kind kind;
  int threads;
  std::string what;
  bool in_summary = true;  // counted in geomean/worst (not the RSS probe)
  std::string missing;     // why it is skipped (program not installed)
};

task make_task(const std::string& name, task_kind kind, int threads, const std::string& what) {
  task t;
  t.name = name;
  t.kind = kind;
  t.threads = threads;
  t.what = what;
  return t;
}

struct run_result {
  bool ok = false;
  std::string error;
  double ms = 0;           // workload time (worker: its own clock; apps: wall)
  long maxrss_kb = 0;      // peak RSS of the process under test (wait4)
  std::string result;      // what must equal glibc's
  long long req = -1;      // peak requested bytes (workers that know it)
  long long extra = -1;    // workload figure (malloc64_probe: kB added)
  double rps = NAN;        // requests per second (servers)
  double cpu_ms = NAN;     // servers: the server's CPU time (user + system), its share of the run
  std::string vmstat;      // vmrt: summary of the vmstat -m report
  double highuse_kb = NAN; // vmrt: sum of HighUse over malloc types
};

struct config {
  double scale = 1;      // workers' counts
  double app_scale = 1;  // the applications' request and row counts
  int timeout_s = 120;
  bool verbose = false;
  std::string tmpdir, outdir;
};
config g_cfg;

// Environment of a process under test: the allocator preloaded, vmrt's statistics on
// fd k_stats_fd (into stats_path) for vmrt runs.  Runs in the forked child.
void prepare_child(const allocator& a, const std::string& stats_path) {
  if (a.path.empty()) unsetenv("LD_PRELOAD");
  else setenv("LD_PRELOAD", a.path.c_str(), 1);
  unsetenv("VMRT_STATS");
  unsetenv("VMRT_STATS_FD");
  if (a.is_vmrt && !stats_path.empty()) {
    int fd = open(stats_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0) {
      if (fd != k_stats_fd) {
        dup2(fd, k_stats_fd);
        close(fd);
      }
      setenv("VMRT_STATS", "1", 1);
      setenv("VMRT_STATS_FD", std::to_string(k_stats_fd).c_str(), 1);
    }
  }
}

// A client or helper that is not under test: no preload, no statistics.
void prepare_plain() {
  unsetenv("LD_PRELOAD");
  unsetenv("VMRT_STATS");
  unsetenv("VMRT_STATS_FD");
}

bool write_file(const std::string& path, const std::string& s) {
  FILE* f = std::fopen(path.c_str(), "w");
  if (!f) return false;
  std::fwrite(s.data(), 1, s.size(), f);
  return std::fclose(f) == 0;
}

std::uint64_t fnv(const std::string& s) {
  std::uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  return h;
}

std::string hex(std::uint64_t v) {
  char b[20];
  std::snprintf(b, sizeof b, "%016" PRIx64, v);
  return b;
}

// "113K" / "2M" / "512" -> kB.
double size_kb(const std::string& s) {
  if (s.empty()) return NAN;
  double v = std::atof(s.c_str());
  switch (s.back()) {
    case 'K': return v;
    case 'M': return v * 1024;
    case 'G': return v * 1024 * 1024;
    default: return v / 1024;
  }
}

// The vmstat -m summary of the last report in a VMRT_STATS file: summed HighUse and
// Requests over the malloc types, the totals' free bytes, kmem's large-block line.
// One process's report (from its "==== vmrt statistics" line): the summary and the sum of
// HighUse over malloc types.
void summarize_report(std::string s, run_result& r) {
  double high = 0, inuse = 0;
  long long requests = 0;
  size_t k = s.find("Memory statistics by type");
  if (k != std::string::npos) {
    size_t line = s.find('\n', k);                    // end of the title line
    line = line == std::string::npos ? line : s.find('\n', line + 1);  // skip column header
    while (line != std::string::npos && line + 1 < s.size()) {
      size_t e = s.find('\n', line + 1);
      std::string l = s.substr(line + 1, e == std::string::npos ? std::string::npos : e - line - 1);
      if (l.find_first_not_of(' ') == std::string::npos || l.find("Memory Totals") != std::string::npos) break;
      // Type InUse MemUse HighUse Limit Requests TypeLimit KernLimit Size(s).
      std::vector<std::string> tok;
      for (size_t i = 0; i < l.size();) {
        size_t j = l.find_first_not_of(' ', i);
        if (j == std::string::npos) break;
        size_t e2 = l.find(' ', j);
        tok.push_back(l.substr(j, e2 == std::string::npos ? std::string::npos : e2 - j));
        i = e2 == std::string::npos ? l.size() : e2;
      }
      if (tok.size() >= 9) {
        inuse += size_kb(tok[2]);
        high += size_kb(tok[3]);
        requests += std::atoll(tok[5].c_str());
      }
      line = e;
    }
  }
  std::string free_s = "?";
  k = s.find("Memory Totals:");
  if (k != std::string::npos) {
    size_t l1 = s.find('\n', k);
    char iu[32], fr[32];
    long long rq;
    if (l1 != std::string::npos && std::sscanf(s.c_str() + l1 + 1, "%31s %31s %lld", iu, fr, &rq) == 3) free_s = fr;
  }
  std::string large = "?";
  k = s.find("large blocks ");
  if (k != std::string::npos) {
    size_t e = s.find_first_of(",\n", k);
    large = s.substr(k + 13, e - k - 13);
  }
  char buf[256];
  std::snprintf(buf, sizeof buf, "HighUse %.0fK, %lld requests, free %s, large blocks %s", high, requests, free_s.c_str(),
                large.c_str());
  r.vmstat = buf;
  r.highuse_kb = high;
}

// The vmstat -m summary of a run: every process under the allocator appends its report at
// exit (a build runs gcc, cc1, as, collect2 and ld), and the one that held the most (the
// largest HighUse; in a build ld, which holds the objects it links: cc1's trees live in its
// own garbage-collected pages) stands for the run, named when there were several.
void summarize_vmstat(const std::string& path, run_result& r) {
  const std::string s = bench::read_file(path);
  const std::string mark = "==== vmrt statistics";
  std::vector<size_t> at;
  for (size_t k = s.find(mark); k != std::string::npos; k = s.find(mark, k + 1)) at.push_back(k);
  if (at.empty()) {
    r.vmstat = "no report";
    return;
  }
  run_result best;
  std::string best_comm;
  for (size_t i = 0; i < at.size(); ++i) {
    const std::string one = s.substr(at[i], i + 1 < at.size() ? at[i + 1] - at[i] : std::string::npos);
    run_result x;
    summarize_report(one, x);
    if (!best.vmstat.empty() && !(x.highuse_kb > best.highuse_kb)) continue;
    best = x;
    // "==== vmrt statistics: pid N (comm) at exit ===="
    const size_t o = one.find('('), c = one.find(')');
    best_comm = o != std::string::npos && c != std::string::npos && c > o ? one.substr(o + 1, c - o - 1) : "?";
  }
  r.vmstat = at.size() > 1 ? best_comm + " of " + std::to_string(at.size()) + " processes: " + best.vmstat : best.vmstat;
  r.highuse_kb = best.highuse_kb;
}

// The repetition number of the one unmeasured run per workload that takes vmrt's report.
constexpr int kStatsRep = -2;

// Where the report of vmrt's statistics run goes; "" (no VMRT_STATS) for every measured run.
std::string stats_path(const task& t, const allocator& a, int rep) {
  if (!a.is_vmrt || rep != kStatsRep) return "";
  return g_cfg.outdir + "/vmstat/" + t.name + ".txt";
}

// --- worker workloads -------------------------------------------------------------

run_result run_worker(const task& t, const allocator& a, int rep) {
  run_result res;
  std::string sp = stats_path(t, a, rep);
  char scale[32];
  std::snprintf(scale, sizeof scale, "%g", g_cfg.scale);
  bench::child_run c = bench::run_child({g_self, "--worker", t.name, "--scale", scale},
                                        [&] { prepare_child(a, sp); }, g_cfg.timeout_s);
  res.maxrss_kb = c.maxrss_kb;
  res.error = bench::exit_error(c, g_cfg.timeout_s);
  if (!res.error.empty()) return res;
  auto k = c.out.find("RESULT ");
  if (k == std::string::npos) {
    res.error = "no result line";
    return res;
  }
  unsigned long long ns = 0, sum = 0;
  long hwm = 0, rss = 0, pss = 0;
  long long req = -1, extra = -1;
  char provider[PATH_MAX] = "";
  if (std::sscanf(c.out.c_str() + k, "RESULT %llu %llx %ld %ld %ld %4095s req=%lld extra=%lld", &ns, &sum, &hwm, &rss, &pss,
                  provider, &req, &extra) != 8) {
    res.error = "bad result line";
    return res;
  }
  // The preload must have taken effect: malloc comes from the allocator's library.
  std::string got = provider;
  char real_got[PATH_MAX], real_want[PATH_MAX];
  bool same = realpath(got.c_str(), real_got) && realpath(a.path.c_str(), real_want) &&
              std::strcmp(real_got, real_want) == 0;
  if (!same) {
    res.error = "malloc came from " + got + ", not " + a.path + " (LD_PRELOAD did not take effect)";
    return res;
  }
  res.ok = true;
  res.ms = double(ns) / 1e6;
  res.result = hex(sum);
  res.req = req;
  res.extra = extra;
  if (!sp.empty()) summarize_vmstat(sp, res);
  return res;
}

// --- servers -----------------------------------------------------------------------

struct server {
  pid_t pid = -1;
};

// Start argv in the background under allocator a, its output into log.
server start_server(const std::vector<std::string>& argv, const allocator& a, const std::string& sp,
                    const std::string& log) {
  server s;
  std::vector<char*> args;
  for (const std::string& x : argv) args.push_back(const_cast<char*>(x.c_str()));
  args.push_back(nullptr);
  pid_t pid = fork();
  if (pid == 0) {
    int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
      close(fd);
    }
    int nul = open("/dev/null", O_RDONLY);
    if (nul >= 0) dup2(nul, 0);
    prepare_child(a, sp);
    execv(args[0], args.data());
    _exit(127);
  }
  s.pid = pid;
  return s;
}

// SIGTERM the server, wait up to 10 s (then SIGKILL); its peak RSS and how it ended.
std::string stop_server(server& s, long& maxrss_kb, bool term_is_ok, double* cpu_ms = nullptr) {
  if (s.pid <= 0) return "not started";
  kill(s.pid, SIGTERM);
  std::uint64_t deadline = now_ns() + 10000000000ull;
  int status = 0;
  rusage ru{};
  bool killed = false;
  for (;;) {
    pid_t r = wait4(s.pid, &status, WNOHANG, &ru);
    if (r == s.pid) break;
    if (r < 0 && errno != EINTR) return "wait failed";
    if (!killed && now_ns() > deadline) {
      kill(s.pid, SIGKILL);
      killed = true;
    }
    usleep(5000);
  }
  s.pid = -1;
  maxrss_kb = ru.ru_maxrss;
  if (cpu_ms)
    *cpu_ms = double(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e3 + double(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e3;
  if (killed) return "did not stop within 10 s of SIGTERM";
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return "";
  if (WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM && term_is_ok) return "";
  if (WIFSIGNALED(status)) return std::string("server killed by signal ") + strsignal(WTERMSIG(status));
  return "server exit status " + std::to_string(WEXITSTATUS(status));
}

int connect_unix(const std::string& path) {
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  std::snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path.c_str());
  if (connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
    close(fd);
    return -1;
  }
  timeval tv{20, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  return fd;
}

// Wait until the server accepts on its socket (10 s); false if it died or never did.
bool wait_listening(const server& s, const std::string& sock) {
  std::uint64_t deadline = now_ns() + 10000000000ull;
  while (now_ns() < deadline) {
    int st;
    if (waitpid(s.pid, &st, WNOHANG) == s.pid) return false;
    int fd = connect_unix(sock);
    if (fd >= 0) {
      close(fd);
      return true;
    }
    usleep(10000);
  }
  return false;
}

std::string log_tail(const std::string& log) {
  std::string s = bench::read_file(log);
  if (s.size() > 300) s = s.substr(s.size() - 300);
  for (char& c : s)
    if (c == '\n') c = ' ';
  return s;
}

// redis-server (unix socket only, no persistence) under the allocator, driven by
// redis-benchmark (not under the allocator) with a fixed request count.
const char* k_redis_tests = "set,get,incr,lpush,lpop,sadd,hset,zadd,lrange_100";
run_result run_redis(const task& t, const allocator& a, int rep) {
  run_result res;
  std::string sock = g_cfg.tmpdir + "/redis.sock", log = g_cfg.tmpdir + "/redis.log";
  unlink(sock.c_str());
  std::string sp = stats_path(t, a, rep);
  server s = start_server({"/usr/bin/redis-server", "--port", "0", "--unixsocket", sock, "--unixsocketperm", "700", "--save",
                           "", "--appendonly", "no", "--dir", g_cfg.tmpdir, "--daemonize", "no", "--loglevel", "warning"},
                          a, sp, log);
  long rss = 0;
  if (!wait_listening(s, sock)) {
    stop_server(s, rss, true);
    res.error = "redis-server did not start: " + log_tail(log);
    return res;
  }
  std::uint64_t n = bench::cnt_at_least(200000, g_cfg.app_scale, 2000);
  std::uint64_t t0 = now_ns();
  bench::child_run c = bench::run_child({"/usr/bin/redis-benchmark", "-s", sock, "-n", std::to_string(n), "-r", "100000",
                                         "-d", "128", "-P", "16", "-c", "20", "-t", k_redis_tests, "--csv"},
                                        prepare_plain, g_cfg.timeout_s);
  double ms = double(now_ns() - t0) / 1e6;
  std::string berr = bench::exit_error(c, g_cfg.timeout_s);
  double cpu_ms = NAN;
  std::string serr = stop_server(s, rss, true, &cpu_ms);
  res.cpu_ms = cpu_ms;
  res.maxrss_kb = rss;
  if (!berr.empty()) {
    res.error = "redis-benchmark: " + berr;
    return res;
  }
  if (!serr.empty()) {
    res.error = serr + ": " + log_tail(log);
    return res;
  }
  // --csv: a header line, then "TEST","rps",... per test.
  int tests = 0;
  size_t p = 0;
  while ((p = c.out.find("\n\"", p)) != std::string::npos) {
    ++p;
    ++tests;
  }
  int want = 1 + int(std::count(k_redis_tests, k_redis_tests + std::strlen(k_redis_tests), ','));
  if (tests < want) {
    res.error = "redis-benchmark reported " + std::to_string(tests) + " of " + std::to_string(want) + " tests";
    return res;
  }
  res.ok = true;
  res.ms = ms;
  res.rps = double(n) * want / (ms / 1e3);
  res.result = std::to_string(want) + " tests x " + std::to_string(n);
  if (!sp.empty()) summarize_vmstat(sp, res);
  return res;
}

// A buffered reader over a socket for the memcached text protocol.
struct reader {
  int fd;
  std::string buf;
  size_t pos = 0;
  bool fill() {
    if (pos > 0 && pos == buf.size()) {
      buf.clear();
      pos = 0;
    }
    char tmp[65536];
    ssize_t n = read(fd, tmp, sizeof tmp);
    if (n < 0 && errno == EINTR) return true;
    if (n <= 0) return false;
    buf.append(tmp, size_t(n));
    return true;
  }
  bool line(std::string& out) {
    for (;;) {
      size_t e = buf.find("\r\n", pos);
      if (e != std::string::npos) {
        out = buf.substr(pos, e - pos);
        pos = e + 2;
        return true;
      }
      if (!fill()) return false;
    }
  }
  bool bytes(size_t n, std::string& out) {
    while (buf.size() - pos < n + 2)
      if (!fill()) return false;
    out = buf.substr(pos, n);
    pos += n + 2;
    return true;
  }
};

bool send_all(int fd, const std::string& s) {
  size_t off = 0;
  while (off < s.size()) {
    ssize_t n = write(fd, s.data() + off, s.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    off += size_t(n);
  }
  return true;
}

// memcached's load: set K keys (16 B..4 KiB values), multi-get random keys, overwrite
// a third with new sizes (values move between slab classes), delete a sixth, get again.
// Pipelined in batches of 32 commands.  Deterministic: same hits and checksum under
// every allocator (128 MB of cache, no evictions).
std::string memcached_load(const std::string& sock, std::uint64_t keys, std::string& err) {
  int fd = connect_unix(sock);
  if (fd < 0) {
    err = "cannot connect to memcached";
    return "";
  }
  reader rd{fd, std::string()};
  std::uint64_t rs = 12345;
  auto rnd = [&] {
    rs ^= rs << 13;
    rs ^= rs >> 7;
    rs ^= rs << 17;
    return rs;
  };
  auto value = [](std::uint64_t key, std::uint64_t gen) {
    std::uint64_t n = 16 + ((key * 2654435761u + gen * 97) % 4080);
    std::string v(n, char('a' + (key + gen) % 26));
    v[0] = char('A' + gen % 26);
    return v;
  };
  std::uint64_t hits = 0, h = 1469598103934665603ull;
  std::string l, data;
  auto set_batch = [&](const std::vector<std::uint64_t>& ks, std::uint64_t gen) -> bool {
    std::string req;
    for (std::uint64_t k : ks) {
      std::string v = value(k, gen);
      req += "set key:" + std::to_string(k) + " 0 0 " + std::to_string(v.size()) + "\r\n" + v + "\r\n";
    }
    if (!send_all(fd, req)) return false;
    for (size_t i = 0; i < ks.size(); ++i)
      if (!rd.line(l) || l != "STORED") return false;
    return true;
  };
  auto get_batch = [&](const std::vector<std::uint64_t>& ks) -> bool {
    std::string req = "get";
    for (std::uint64_t k : ks) req += " key:" + std::to_string(k);
    req += "\r\n";
    if (!send_all(fd, req)) return false;
    for (;;) {
      if (!rd.line(l)) return false;
      if (l == "END") return true;
      char key[64];
      unsigned flags;
      size_t n;
      if (std::sscanf(l.c_str(), "VALUE %63s %u %zu", key, &flags, &n) != 3) return false;
      if (!rd.bytes(n, data)) return false;
      ++hits;
      h = (h ^ fnv(std::string(key) + data)) * 1099511628211ull;
    }
  };
  std::vector<std::uint64_t> ks;
  bool ok = true;
  for (std::uint64_t k = 0; k < keys && ok; k += 32) {  // load
    ks.clear();
    for (std::uint64_t j = k; j < std::min(keys, k + 32); ++j) ks.push_back(j);
    ok = set_batch(ks, 0);
  }
  for (std::uint64_t b = 0; b < keys / 16 && ok; ++b) {  // 2 gets per key
    ks.clear();
    for (int j = 0; j < 32; ++j) ks.push_back(rnd() % keys);
    ok = get_batch(ks);
  }
  for (std::uint64_t b = 0; b < keys / 96 && ok; ++b) {  // overwrite a third with new sizes
    ks.clear();
    for (int j = 0; j < 32; ++j) ks.push_back(rnd() % keys);
    ok = set_batch(ks, 1 + b % 7);
  }
  for (std::uint64_t b = 0; b < keys / 6 && ok; ++b) {  // delete a sixth
    std::uint64_t k = rnd() % keys;
    ok = send_all(fd, "delete key:" + std::to_string(k) + "\r\n") && rd.line(l) && (l == "DELETED" || l == "NOT_FOUND");
  }
  for (std::uint64_t b = 0; b < keys / 32 && ok; ++b) {
    ks.clear();
    for (int j = 0; j < 32; ++j) ks.push_back(rnd() % keys);
    ok = get_batch(ks);
  }
  close(fd);
  if (!ok) {
    err = "memcached protocol error or timeout";
    return "";
  }
  return std::to_string(hits) + " hits, " + hex(h);
}

run_result run_memcached(const task& t, const allocator& a, int rep) {
  run_result res;
  std::string sock = g_cfg.tmpdir + "/memcached.sock", log = g_cfg.tmpdir + "/memcached.log";
  unlink(sock.c_str());
  std::string sp = stats_path(t, a, rep);
  std::vector<std::string> argv = {"/usr/bin/memcached", "-s", sock, "-a", "0700", "-m", "128", "-t", "2", "-c", "64"};
  if (geteuid() == 0) {
    argv.push_back("-u");
    argv.push_back("root");
  }
  server s = start_server(argv, a, sp, log);
  long rss = 0;
  if (!wait_listening(s, sock)) {
    stop_server(s, rss, true);
    res.error = "memcached did not start: " + log_tail(log);
    return res;
  }
  std::uint64_t keys = bench::cnt_at_least(40000, g_cfg.app_scale, 600);
  std::string err;
  std::uint64_t t0 = now_ns();
  std::string out = memcached_load(sock, keys, err);
  double ms = double(now_ns() - t0) / 1e6;
  double cpu_ms = NAN;
  std::string serr = stop_server(s, rss, true, &cpu_ms);
  res.cpu_ms = cpu_ms;
  res.maxrss_kb = rss;
  if (!err.empty()) {
    res.error = err;
    return res;
  }
  if (!serr.empty()) {
    res.error = serr + ": " + log_tail(log);
    return res;
  }
  std::uint64_t ops = keys + keys * 2 + keys / 3 + keys / 6 + keys;
  res.ok = true;
  res.ms = ms;
  res.rps = double(ops) / (ms / 1e3);
  res.result = out;
  if (!sp.empty()) summarize_vmstat(sp, res);
  return res;
}

// sqlite3 on an in-memory database: bulk insert, index, updates that grow rows,
// deletes, aggregates; the printed results must match glibc's.
std::string sqlite_script(std::uint64_t rows) {
  std::string n = std::to_string(rows);
  return "PRAGMA cache_size=-200000;\n"
         "CREATE TABLE t(a INTEGER PRIMARY KEY, b TEXT, c REAL, d BLOB);\n"
         "WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM s WHERE i<" + n + ")\n"
         "  INSERT INTO t SELECT i, printf('%08x-%s', (i*2654435761) % 4294967296,"
         " substr('abcdefghijklmnopqrstuvwxyz', 1 + i % 26)), i * 0.5, zeroblob(i % 200) FROM s;\n"
         "CREATE INDEX tb ON t(b);\n"
         "SELECT count(*), sum(length(b)) FROM t WHERE b LIKE '1%';\n"
         "UPDATE t SET b = b || b || b WHERE a % 3 = 0;\n"
         "DELETE FROM t WHERE a % 5 = 0;\n"
         "CREATE TABLE u AS SELECT substr(b, 1, 3) k, count(*) n, sum(c) s FROM t GROUP BY k;\n"
         "SELECT count(*), sum(a), max(length(b)), total(c) FROM t;\n"
         "SELECT k, n, s FROM u ORDER BY n DESC, k LIMIT 5;\n"
         "SELECT group_concat(k, '') FROM (SELECT k FROM u ORDER BY k LIMIT 50);\n";
}

// python3 with PYTHONMALLOC=malloc (so the allocator under test serves the small
// objects that pymalloc would otherwise take): dicts, lists, strings, tuples, json.
const char* k_python_script = R"PY(
import json, sys
n = int(sys.argv[1])
d = {}
for i in range(n):
    d['k%d' % i] = ('v' * (i % 50), i, [i, i * 2])
s = 0
for k in sorted(d, key=lambda k: (len(d[k][0]), k))[: n // 2]:
    s = (s * 31 + len(k) + d[k][1]) % 1000000007
rows = [{'id': i, 'name': 'n%d' % (i * 7 % n), 'tags': ['t%d' % (i % 13)] * (i % 5)} for i in range(n // 2)]
text = json.dumps(rows)
back = json.loads(text)
parts = []
for r in back:
    parts.append('%s:%s' % (r['name'], ','.join(r['tags'])))
blob = '|'.join(parts)
words = {}
for w in blob.split('|'):
    words[w] = words.get(w, 0) + 1
del d, rows, back
print(s, len(text), len(blob), len(words), sum(words.values()))
)PY";

run_result run_program(const task& t, const allocator& a, int rep) {
  run_result res;
  std::string sp = stats_path(t, a, rep);
  std::vector<std::string> argv;
  std::string input;
  if (t.kind == task_kind::sqlite) {
    input = g_cfg.tmpdir + "/sqlite.sql";
    write_file(input, sqlite_script(bench::cnt_at_least(300000, g_cfg.app_scale, 2000)));
    argv = {"/usr/bin/sqlite3", ":memory:"};
  } else {
    argv = {"/usr/bin/python3", "-c", k_python_script, std::to_string(bench::cnt_at_least(400000, g_cfg.app_scale, 2000))};
  }
  bench::child_run c = bench::run_child(argv,
                                        [&] {
                                          if (!input.empty()) {
                                            int fd = open(input.c_str(), O_RDONLY);
                                            if (fd >= 0) dup2(fd, 0);
                                          }
                                          setenv("PYTHONMALLOC", "malloc", 1);
                                          setenv("PYTHONHASHSEED", "0", 1);
                                          prepare_child(a, sp);
                                        },
                                        g_cfg.timeout_s);
  res.maxrss_kb = c.maxrss_kb;
  res.error = bench::exit_error(c, g_cfg.timeout_s);
  if (!res.error.empty()) return res;
  if (c.out.empty()) {
    res.error = "no output";
    return res;
  }
  res.ok = true;
  res.ms = c.process_ms;
  std::string first = c.out.substr(0, c.out.find('\n'));
  if (first.size() > 40) first = first.substr(0, 40);
  res.result = first + " #" + hex(fnv(c.out)).substr(0, 8);
  if (!sp.empty()) summarize_vmstat(sp, res);
  return res;
}

// A gcc build: the compiler driver, cc1, as, collect2 and ld, all under the allocator,
// building a generated C program.  Each file holds `funcs` functions over an array of
// linked records (snprintf into them, a switch of seven cases, table lookups, loops, and
// a call down a chain that -O2 inlines), in unsigned arithmetic (no overflow is left
// undefined); main calls every file's run_N.  cc1 makes ~320K mallocs (140 MB) compiling
// a 40-function file: the C compiler of a build, where the allocator is a part of the
// time, not most of it.  The program the build makes must print what glibc's printed and
// be byte-identical to it (gcc is deterministic).
struct gcc_build {
  std::vector<std::string> argv;     // gcc -O2 -o prog main.c f0.c ...
  std::string prog;
  std::vector<std::string> written;  // every file made for the build, prog last
  bool made = false, ok = false;
};
gcc_build g_gcc;

std::string gcc_source_file(unsigned file, unsigned funcs) {
  const std::string f = std::to_string(file);
  std::string o = "#include <stdio.h>\n#include <string.h>\n\n";
  o += "struct rec" + f + " { int k; double v; char name[24]; struct rec" + f + "* next; };\n";
  char buf[2048];
  for (unsigned i = 0; i < funcs; ++i) {
    std::string table;
    for (unsigned j = 0; j < 16; ++j) {
      if (j != 0) table += ',';
      table += std::to_string((i * 37 + j * 11) % 101);
    }
    std::string chain = i > 0 && i % 3 != 0 ? "acc += f_" + f + "_" + std::to_string(i - 1) + "(x + 1, s) & 255;" : "";
    std::snprintf(buf, sizeof buf,
                  "\nstatic int tab_%s_%u[16] = {%s};\n"
                  "unsigned f_%s_%u(int x, const char* s) {\n"
                  "  struct rec%s r[8]; unsigned acc = %u;\n"
                  "  for (int i = 0; i < 8; i++) { r[i].k = x * %u + i; r[i].v = r[i].k * 0.5;"
                  " snprintf(r[i].name, sizeof r[i].name, \"n%%d_%%s\", i, s); r[i].next = i ? &r[i-1] : 0; }\n"
                  "  for (struct rec%s* p = &r[7]; p; p = p->next) {\n"
                  "    switch ((p->k + %u) %% 7) {\n"
                  "      case 0: acc += (unsigned)p->k * %u; break;\n"
                  "      case 1: acc ^= (unsigned)strlen(p->name) << %u; break;\n"
                  "      case 2: acc -= tab_%s_%u[p->k %% 16]; break;\n"
                  "      case 3: acc += (unsigned)(p->v * %u.25); break;\n"
                  "      case 4: if (acc & 1) acc = acc * 3 + 1; else acc /= 2; break;\n"
                  "      case 5: for (int j = 0; j < (p->k & 15); j++) acc += (unsigned)(j * tab_%s_%u[j %% 16]); break;\n"
                  "      default: acc = ~acc + %u;\n"
                  "    }\n"
                  "  }\n"
                  "  %s\n"
                  "  return acc;\n"
                  "}\n",
                  f.c_str(), i, table.c_str(), f.c_str(), i, f.c_str(), i, i % 13 + 1, f.c_str(), i % 5, i % 17 + 2, i % 9,
                  f.c_str(), i, i % 7, f.c_str(), i, i, chain.c_str());
    o += buf;
  }
  o += "\nunsigned run_" + f + "(int x) {\n  unsigned s = 0;\n";
  for (unsigned i = 0; i < funcs; ++i) o += "  s += f_" + f + "_" + std::to_string(i) + "(x + " + std::to_string(i) + ", \"u\");\n";
  o += "  return s;\n}\n";
  return o;
}

// Written once per suite run into DIR/gcc: at app scale S, round(4 S) files (at least
// one) of 40 S functions (at least 8), and main.c.  Null when a file cannot be written.
const gcc_build* gcc_sources() {
  gcc_build& b = g_gcc;
  if (b.made) return b.ok ? &b : nullptr;
  b.made = true;
  const std::string dir = g_cfg.tmpdir + "/gcc";
  if (mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) return nullptr;
  const unsigned files = std::max(1u, unsigned(std::lround(4 * g_cfg.app_scale)));
  const unsigned funcs = unsigned(bench::cnt_at_least(40, g_cfg.app_scale, 8));
  b.prog = dir + "/prog";
  b.argv = {"/usr/bin/gcc", "-O2", "-o", b.prog, dir + "/main.c"};
  std::string main_c = "#include <stdio.h>\n";
  for (unsigned f = 0; f < files; ++f) main_c += "unsigned run_" + std::to_string(f) + "(int);\n";
  main_c += "int main(void) {\n  unsigned long t = 0;\n";
  for (unsigned f = 0; f < files; ++f) {
    const std::string path = dir + "/f" + std::to_string(f) + ".c";
    b.written.push_back(path);
    if (!write_file(path, gcc_source_file(f, funcs))) return nullptr;
    b.argv.push_back(path);
    main_c += "  t += run_" + std::to_string(f) + "(" + std::to_string(f) + ");\n";
  }
  main_c += "  printf(\"%lu\\n\", t);\n  return 0;\n}\n";
  b.written.push_back(dir + "/main.c");
  b.written.push_back(b.prog);
  b.ok = write_file(dir + "/main.c", main_c);
  return b.ok ? &b : nullptr;
}

// The build's files and directory, when a run made them.
void gcc_sources_remove() {
  if (!g_gcc.made) return;
  for (const std::string& f : g_gcc.written) unlink(f.c_str());
  rmdir((g_cfg.tmpdir + "/gcc").c_str());
}

run_result run_gcc(const task& t, const allocator& a, int rep) {
  run_result res;
  const gcc_build* b = gcc_sources();
  if (b == nullptr) {
    res.error = "cannot write the sources under " + g_cfg.tmpdir + "/gcc: " + std::strerror(errno);
    return res;
  }
  unlink(b->prog.c_str());
  std::string sp = stats_path(t, a, rep);
  bench::child_run c = bench::run_child(b->argv, [&] { prepare_child(a, sp); }, g_cfg.timeout_s);
  // wait4's peak RSS covers the processes gcc waited for: cc1's, the largest.
  res.maxrss_kb = c.maxrss_kb;
  res.error = bench::exit_error(c, g_cfg.timeout_s);
  if (!res.error.empty()) return res;
  // The program it built, not under the allocator.
  bench::child_run p = bench::run_child({b->prog}, prepare_plain, g_cfg.timeout_s);
  std::string perr = bench::exit_error(p, g_cfg.timeout_s);
  if (!perr.empty() || p.out.empty()) {
    res.error = "the built program: " + (perr.empty() ? std::string("no output") : perr);
    return res;
  }
  res.ok = true;
  res.ms = c.process_ms;
  res.result = p.out.substr(0, p.out.find('\n')) + " #" + hex(fnv(bench::read_file(b->prog))).substr(0, 8);
  if (!sp.empty()) summarize_vmstat(sp, res);
  return res;
}

run_result run_task(const task& t, const allocator& a, int rep) {
  switch (t.kind) {
    case task_kind::worker: return run_worker(t, a, rep);
    case task_kind::redis: return run_redis(t, a, rep);
    case task_kind::memcached: return run_memcached(t, a, rep);
    case task_kind::sqlite:
    case task_kind::python: return run_program(t, a, rep);
    case task_kind::gcc: return run_gcc(t, a, rep);
  }
  return run_result();
}

std::vector<task> all_tasks() {
  std::vector<task> v;
  for (int i = 0; i < bench::k_alloc_bench_nworkloads; ++i) {
    const bench::workload& w = bench::k_alloc_bench_workloads[i];
    v.push_back(make_task(w.name, task_kind::worker, w.threads, w.what));
  }
  for (int i = 0; i < bench::k_suite_nworkloads; ++i) {
    const bench::workload& w = bench::k_suite_workloads[i];
    v.push_back(make_task(w.name, task_kind::worker, w.threads, w.what));
    if (v.back().name == "malloc64_probe") v.back().in_summary = false;
  }
  auto app = [&](const char* name, task_kind k, int threads, const char* what, std::initializer_list<const char*> progs,
                 const char* pkg) {
    task t = make_task(name, k, threads, what);
    for (const char* p : progs)
      if (access(p, X_OK) != 0) t.missing = std::string(p) + " not installed (Debian package " + pkg + ")";
    v.push_back(t);
  };
  app("redis", task_kind::redis, 1,
      "redis-server on a unix socket, redis-benchmark -P 16 -c 20 -d 128, 200K requests x 9 tests (time: benchmark wall)",
      {"/usr/bin/redis-server", "/usr/bin/redis-benchmark"}, "redis-server, redis-tools");
  app("memcached", task_kind::memcached, 2,
      "memcached -t 2 on a unix socket, 40K keys (16 B..4 KiB): set, multi-get, overwrite, delete, get",
      {"/usr/bin/memcached"}, "memcached");
  app("sqlite", task_kind::sqlite, 1, "sqlite3 :memory:, 300K rows: insert, index, grow, delete, group by",
      {"/usr/bin/sqlite3"}, "sqlite3");
  app("python", task_kind::python, 1, "python3 (PYTHONMALLOC=malloc): 400K-entry dict, sort, json round trip",
      {"/usr/bin/python3"}, "python3");
  app("gcc", task_kind::gcc, 1,
      "gcc -O2 building a generated C program, 4 files of 40 functions and main (cc1, as, collect2, ld under the "
      "allocator; the program must match glibc's build byte for byte)",
      {"/usr/bin/gcc"}, "gcc");
  return v;
}

// ---------------------------------------------------------------------------------
// Driver
// ---------------------------------------------------------------------------------

void usage(FILE* f) {
  std::fprintf(f,
               "usage: allocsuite [--quick | --tiny] [--reps N] [--scale S] [--app-scale S] [--only LIST] [--skip LIST]\n"
               "                  [--allocators LIST] [--alloc NAME=PATH.so]... [--baseline NAME]\n"
               "                  [--out DIR] [--timeout SEC] [--no-apps] [--no-chart] [--pow2] [--verbose]\n"
               "\n"
               "Runs every workload under glibc, jemalloc, mimalloc, tcmalloc and vmrt (and any --alloc),\n"
               "each in its own process with LD_PRELOAD, repetitions interleaved, and prints medians of\n"
               "time and peak RSS normalised to the baseline, internal fragmentation, and for vmrt the\n"
               "vmstat -m summary.  Writes DIR/results.csv, DIR/runs.csv, DIR/chart.{svg,png} (gnuplot),\n"
               "DIR/vmstat/*.txt.  Ends with `metric NAME VALUE` lines (vmrt against jemalloc).\n"
               "\n"
               "  --quick          11 reps of the workloads at scale 0.15, 5 of the applications at 0.1\n"
               "                   (11 of those whose rep takes under 3 s: sqlite, python)\n"
               "                   (under 3 minutes on two cores; fewer reps when the machine is loaded)\n"
               "  --tiny           1 rep at scale 0.02 (a few seconds; the smoke test)\n"
               "  (default)        5 reps at scale 1\n"
               "  --reps N         repetitions per (allocator, workload)\n"
               "  --scale S        size multiplier for every workload\n"
               "  --app-scale S    the applications' request and row counts (default: --scale; quick 0.1)\n"
               "  --only LIST      only these workloads;  --skip LIST  all but these\n"
               "  --allocators L   only these allocators (names, including --alloc ones)\n"
               "  --alloc N=P      also measure the allocator in shared library P under the name N\n"
               "  --baseline NAME  normalise to NAME (default jemalloc; glibc if NAME is not run)\n"
               "  --out DIR        output directory (default <bin>/../allocsuite)\n"
               "  --timeout SEC    kill a run after SEC seconds (quick 60, default 300)\n"
               "  --no-apps        only the built-in workloads;  --no-chart  no gnuplot\n"
               "  --pow2           also run vmrt_pow2 (<bin>/../lib/libvmrt_malloc_pow2.so, cmake -DVMRT_POW2_SHIM=ON,\n"
               "                   or $VMRT_POW2_MALLOC_SO): kmem with 4.4BSD's power-of-two buckets, and print\n"
               "                   the cost of that geometry against vmrt's size classes\n"
               "\n"
               "The vmrt shim is <dir of this binary>/../lib/libvmrt_malloc.so (or $VMRT_MALLOC_SO).\n"
               "Workloads:\n");
  for (const task& t : all_tasks())
    std::fprintf(f, "  %-15s %s%s\n", t.name.c_str(), t.what.c_str(), t.missing.empty() ? "" : " [missing]");
}

double geomean(const std::vector<double>& v) {
  if (v.empty()) return NAN;
  double s = 0;
  for (double x : v) s += std::log(x);
  return std::exp(s / double(v.size()));
}

std::string csv_quote(const std::string& s) {
  std::string o = "\"";
  for (char c : s) {
    if (c == '"') o += '"';
    o += c;
  }
  return o + "\"";
}

std::string fmt(double v, const char* f = "%.3f") {
  if (std::isnan(v)) return "";
  char b[64];
  std::snprintf(b, sizeof b, f, v);
  return b;
}

// gnuplot: two stacked clustered histograms (time and peak RSS / baseline, log scale).
bool write_chart(const std::vector<std::string>& wnames, const std::vector<std::string>& anames,
                 const std::vector<std::vector<double>>& tr, const std::vector<std::vector<double>>& rr,
                 const std::string& baseline) {
  if (access("/usr/bin/gnuplot", X_OK) != 0) {
    std::printf("note: no chart: gnuplot not installed (Debian package gnuplot-nox)\n");
    return false;
  }
  std::string dat;
  for (int which = 0; which < 2; ++which) {
    dat += "workload";
    for (const std::string& a : anames) dat += " " + a;
    dat += "\n";
    const auto& m = which == 0 ? tr : rr;
    for (size_t w = 0; w < wnames.size(); ++w) {
      dat += wnames[w];
      for (size_t a = 0; a < anames.size(); ++a) {
        dat += ' ';
        dat += std::isnan(m[w][a]) ? std::string("?") : fmt(m[w][a], "%.4f");
      }
      dat += "\n";
    }
    dat += "\n\n";
  }
  std::string dpath = g_cfg.outdir + "/chart.dat";
  write_file(dpath, dat);
  std::string plot;
  for (size_t a = 0; a < anames.size(); ++a)
    plot += std::string(a ? ", '' " : "'" + dpath + "' ") + "index IDX using " + std::to_string(a + 2) +
            (a == 0 ? ":xtic(1)" : "") + " title '" + anames[a] + "'";
  auto panel = [&](const char* idx, const char* ylabel) {
    std::string p = plot;
    for (size_t k; (k = p.find("IDX")) != std::string::npos;) p.replace(k, 3, idx);
    return std::string("set ylabel '") + ylabel + "'\nplot " + p + ", 1 notitle lc rgb 'black' dt 2\n";
  };
  std::string common =
      "set datafile missing '?'\nset style data histograms\nset style histogram clustered gap 1\n"
      "set style fill solid 0.85 border -1\nset boxwidth 0.9\nset logscale y 2\nset grid ytics\n"
      "set xtics rotate by -40 font ',9'\nset key outside right top\nset key autotitle columnhead\n";
  std::string body = "set multiplot layout 2,1 title 'allocsuite: time and peak RSS relative to " + baseline +
                     " (lower is better)'\n" + common + panel("0", ("time / " + baseline).c_str()) +
                     panel("1", ("peak RSS / " + baseline).c_str()) + "unset multiplot\n";
  std::string gp = "set terminal svg size 1400,900 dynamic noenhanced font 'sans,11'\nset output '" + g_cfg.outdir +
                   "/chart.svg'\n" + body + "set terminal pngcairo size 1400,900 noenhanced font 'sans,10'\nset output '" +
                   g_cfg.outdir + "/chart.png'\n" + body;
  return bench::run_gnuplot(g_cfg.outdir + "/chart.gp", gp);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc >= 3 && std::strcmp(argv[1], "--worker") == 0) {
    double scale = 1;
    if (argc >= 5 && std::strcmp(argv[3], "--scale") == 0) scale = std::atof(argv[4]);
    return bench::worker_main("allocsuite", argv[2], scale > 0 ? scale : 1);
  }
  bool quick = false, tiny = false, no_apps = false, no_chart = false, pow2 = false;
  int reps = -1, worker_reps = -1, timeout_s = -1;
  double scale = -1, app_scale = -1;
  std::string only, skip, allocs, baseline = "jemalloc", outdir;
  std::vector<std::pair<std::string, std::string>> extra;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto need = [&] { return bench::option_value(argc, argv, i, "allocsuite"); };
    if (a == "--help" || a == "-h") {
      g_self = bench::self_exe();
      usage(stdout);
      return 0;
    } else if (a == "--quick") quick = true;
    else if (a == "--tiny") tiny = true;
    else if (a == "--verbose" || a == "-v") g_cfg.verbose = true;
    else if (a == "--no-apps") no_apps = true;
    else if (a == "--no-chart") no_chart = true;
    else if (a == "--pow2") pow2 = true;
    else if (a == "--reps") reps = std::atoi(need());
    else if (a == "--scale") scale = std::atof(need());
    else if (a == "--app-scale") app_scale = std::atof(need());
    else if (a == "--timeout") timeout_s = std::atoi(need());
    else if (a == "--only") only = need();
    else if (a == "--skip") skip = need();
    else if (a == "--allocators") allocs = need();
    else if (a == "--baseline") baseline = need();
    else if (a == "--out") outdir = need();
    else if (a == "--alloc") {
      std::string v = need();
      size_t eq = v.find('=');
      if (eq == std::string::npos || eq == 0 || eq + 1 == v.size()) {
        std::fprintf(stderr, "allocsuite: --alloc wants NAME=PATH.so, got %s\n", v.c_str());
        return 2;
      }
      extra.push_back({v.substr(0, eq), v.substr(eq + 1)});
    } else {
      std::fprintf(stderr, "allocsuite: unknown option %s\n", a.c_str());
      usage(stderr);
      return 2;
    }
  }
  // Quick: 5 reps, as the default: medians of 3 moved a multithreaded row of 20-40 ms by
  // 0.1-0.2x from run to run (2026-12-03: cache_thrash 1.07 / 1.17, realloc_growth 0.98 /
  // 1.16); 5 take ~75 s idle, and the time budget below still stops a loaded run early.
  // The workers, though: at scale 0.15 a row runs 20-40 ms, where 5 reps left an
  // interquartile range of 20-40% (2026-12-04: symbolic 1.23x jemalloc in one quick run,
  // 0.85x at scale 1 with 9 reps), and --quick's worst_time metric was that noise.  They cost
  // ~5 s a rep for all five allocators against ~12 s for the applications, so quick gives
  // them 11 (medians of 11), the applications 5.  --reps N sets both.
  if (reps >= 1) worker_reps = reps;
  if (reps < 1) reps = tiny ? 1 : 5;
  if (worker_reps < 1) worker_reps = quick ? 11 : reps;
  // Quick: workers at 0.15, the applications at 0.1.  With everything at 0.25 one rep took
  // 88 s at load 6-7 (redis 35 s of it, 7 s per allocator; python 16, memcached 8, sqlite 7,
  // the 15 workers 23), so the budget stopped quick after one rep: medians of one run.
  if (scale <= 0) scale = tiny ? 0.02 : quick ? 0.15 : 1.0;
  if (app_scale <= 0) app_scale = quick ? 0.1 : scale;
  if (timeout_s < 1) timeout_s = (quick || tiny) ? 60 : 300;
  g_cfg.scale = scale;
  g_cfg.app_scale = app_scale;
  g_cfg.timeout_s = timeout_s;

  g_self = bench::self_exe();
  if (g_self.empty()) return 1;
  {
    Dl_info info;
    void* m = dlsym(RTLD_DEFAULT, "malloc");
    if (m && dladdr(m, &info) && info.dli_fname) {
      char real[PATH_MAX];
      g_libc = realpath(info.dli_fname, real) ? real : info.dli_fname;
    }
    if (g_libc.find("libc.so") == std::string::npos) {
      std::fprintf(stderr, "allocsuite: run me without LD_PRELOAD (malloc comes from %s)\n", g_libc.c_str());
      return 2;
    }
  }
  g_cfg.outdir = outdir.empty() ? self_dir() + "/../allocsuite" : outdir;
  mkdir(g_cfg.outdir.c_str(), 0755);
  mkdir((g_cfg.outdir + "/vmstat").c_str(), 0755);
  {
    char real[PATH_MAX];
    if (realpath(g_cfg.outdir.c_str(), real)) g_cfg.outdir = real;
  }
  char tmpl[] = "/tmp/allocsuite.XXXXXX";
  if (!mkdtemp(tmpl)) {
    std::perror("mkdtemp");
    return 1;
  }
  g_cfg.tmpdir = tmpl;

  std::vector<allocator> all = default_allocators();
  if (pow2) {
    // vmrt with 4.4BSD's power-of-two buckets (kmem built with KMEM_POW2_CLASSES=1).
    const char* env = getenv("VMRT_POW2_MALLOC_SO");
    extra.insert(extra.begin(), {"vmrt_pow2", env && *env ? env : self_dir() + "/../lib/libvmrt_malloc_pow2.so"});
  }
  for (auto& e : extra) {
    allocator a;
    a.name = e.first;
    char real[PATH_MAX];
    a.path = realpath(e.second.c_str(), real) ? real : e.second;
    a.available = access(a.path.c_str(), R_OK) == 0;
    if (!a.available) a.note = "cannot read " + e.second;
    all.push_back(a);
  }
  std::vector<allocator> als;
  for (auto& a : all) {
    if (!bench::in_list(allocs, a.name)) continue;
    if (!a.available) {
      std::printf("note: skipping allocator %s: %s\n", a.name.c_str(), a.note.c_str());
      continue;
    }
    als.push_back(a);
  }
  std::vector<task> tasks;
  for (task& t : all_tasks()) {
    if (!bench::in_list(only, t.name) || (!skip.empty() && bench::in_list(skip, t.name))) continue;
    if (no_apps && t.kind != task_kind::worker) continue;
    if (!t.missing.empty()) {
      std::printf("note: skipping workload %s: %s\n", t.name.c_str(), t.missing.c_str());
      continue;
    }
    tasks.push_back(t);
  }
  if (als.empty() || tasks.empty()) {
    std::fprintf(stderr, "allocsuite: nothing to run\n");
    return 2;
  }
  const size_t NA = als.size(), NT = tasks.size();
  auto aidx = [&](const std::string& name) -> int {
    for (size_t k = 0; k < NA; ++k)
      if (als[k].name == name) return int(k);
    return -1;
  };
  int ibase = aidx(baseline);
  if (ibase < 0) {
    std::printf("note: baseline %s not run; normalising to glibc\n", baseline.c_str());
    baseline = "glibc";
    ibase = aidx("glibc");
    if (ibase < 0) {
      ibase = 0;
      baseline = als[0].name;
    }
  }
  std::printf("allocsuite: %s mode, %d reps interleaved (applications %d), scale %g (applications %g), %ld CPUs, baseline %s, output %s\n",
              tiny ? "tiny" : quick ? "quick" : "full", worker_reps, reps, scale, app_scale, sysconf(_SC_NPROCESSORS_ONLN),
              baseline.c_str(), g_cfg.outdir.c_str());
  for (auto& a : als) std::printf("  %-9s %s\n", a.name.c_str(), a.path.c_str());
  std::fflush(stdout);

  // results[t][a]: successful runs; failed[t][a]: first error (the pair is dropped).
  std::vector<std::vector<std::vector<run_result>>> results(NT, std::vector<std::vector<run_result>>(NA));
  std::vector<std::vector<std::string>> failed(NT, std::vector<std::string>(NA));
  std::string runs_csv =
      "workload,allocator,rep,ok,time_ms,peak_rss_kb,req_peak_bytes,extra_kb,rps,result,vmstat,error,server_cpu_ms\n";
  std::uint64_t t_start = now_ns();
  std::vector<double> wall_s(NT, 0.0);  // wall time per workload, set-up and all allocators included
  int reps_done = 0;  // of the workers; the applications stop at reps
  double last_rep_s = 0;
  // (vmrt's statistics runs follow the repetitions: one run of each workload, ~6 s in quick.)
  const double budget_s = quick ? 160.0 : tiny ? 1e9 : 1e9;
  // A later rep that a load spike slows down is cut short at this point (its remaining
  // workloads keep the reps they had), so one slow rep cannot carry quick past 3 minutes.
  const double cutoff_s = quick ? 168.0 : 1e9;
  bool cut = false;
  const int all_reps = std::max(reps, worker_reps);
  // An application whose first rep (all allocators) took under kCheapAppSeconds gets the
  // workers' reps: at 5 reps quick's sqlite row (~0.2 s a run) swung 0.82x-1.19x jemalloc
  // between runs with interquartile ranges of 20-30%, the suite's worst row by noise alone;
  // the servers (4-5 s a rep) keep reps.
  constexpr double kCheapAppSeconds = 3.0;
  // The gcc build keeps reps: at quick's size a run is ~0.3 s, seven processes (the driver,
  // two of cc1 and as, collect2, ld) with an interquartile range of ~10% at 5 reps, and 11
  // would add ~20 s to quick's 3 minutes.
  auto reps_of = [&](size_t t, int r) {
    if (tasks[t].kind == task_kind::worker) return worker_reps;
    if (tasks[t].kind == task_kind::gcc) return reps;
    return r >= 1 && wall_s[t] < kCheapAppSeconds * r ? std::max(reps, worker_reps) : reps;
  };
  for (int r = 0; r < all_reps && !cut; ++r) {
    double el = double(now_ns() - t_start) / 1e9;
    // The next rep is estimated from the last (the workers' reps after the applications'
    // last one take a fraction of the time).
    if (r >= 1 && el + last_rep_s > budget_s) {
      std::printf("  (quick: stopping after %d reps, %.0f s, to stay within the time budget)\n", r, el);
      break;
    }
    reps_done = r + 1;
    const std::uint64_t rep_t0 = now_ns();
    for (size_t t = 0; t < NT; ++t) {
      if (r >= reps_of(t, r)) continue;
      if (r >= 1 && double(now_ns() - t_start) / 1e9 > cutoff_s) {
        std::printf("  (quick: rep %d cut short before %s at %.0f s, to stay within the time budget)\n", r,
                    tasks[t].name.c_str(), double(now_ns() - t_start) / 1e9);
        cut = true;
        break;
      }
      for (size_t k = 0; k < NA; ++k) {
        size_t ai = (k + size_t(r)) % NA;  // rotate the allocator order per repetition
        if (!failed[t][ai].empty()) continue;
        const std::uint64_t w0 = now_ns();
        run_result res = run_task(tasks[t], als[ai], r);
        wall_s[t] += double(now_ns() - w0) / 1e9;
        runs_csv += tasks[t].name + "," + als[ai].name + "," + std::to_string(r) + "," + (res.ok ? "1" : "0") + "," +
                    fmt(res.ms) + "," + std::to_string(res.maxrss_kb) + "," + std::to_string(res.req) + "," +
                    std::to_string(res.extra) + "," + fmt(res.rps, "%.0f") + "," + csv_quote(res.result) + "," +
                    csv_quote(res.vmstat) + "," + csv_quote(res.error) + "," + fmt(res.cpu_ms, "%.1f") + "\n";
        if (!res.ok) {
          failed[t][ai] = res.error;
          std::printf("  ! %s under %s: %s (dropped from this workload)\n", tasks[t].name.c_str(), als[ai].name.c_str(),
                      res.error.c_str());
          std::fflush(stdout);
          continue;
        }
        if (g_cfg.verbose)
          std::printf("  rep %d %-15s %-9s %9.2f ms  maxrss %7.1f MiB  %s\n", r, tasks[t].name.c_str(),
                      als[ai].name.c_str(), res.ms, res.maxrss_kb / 1024.0, res.result.c_str());
        results[t][ai].push_back(res);
      }
    }
    last_rep_s = double(now_ns() - rep_t0) / 1e9;
    std::printf("  rep %d done, %.0f s\n", r, double(now_ns() - t_start) / 1e9);
    std::fflush(stdout);
  }
  // vmrt's statistics: one more run of each workload it ran, with VMRT_STATS, not measured
  // (its time and RSS are not among the repetitions').
  std::vector<std::vector<run_result>> stats_run(NT, std::vector<run_result>(NA));
  for (size_t t = 0; t < NT; ++t)
    for (size_t k = 0; k < NA; ++k)
      if (als[k].is_vmrt && !results[t][k].empty() && failed[t][k].empty()) {
        const std::uint64_t w0 = now_ns();
        stats_run[t][k] = run_task(tasks[t], als[k], kStatsRep);
        wall_s[t] += double(now_ns() - w0) / 1e9;
      }
  // Baseline RSS of an empty worker per allocator (for the fragmentation column).
  std::vector<double> noop_kb(NA, NAN);
  {
    task noop = make_task("noop", task_kind::worker, 1, "empty worker");
    for (size_t k = 0; k < NA; ++k) {
      std::vector<double> v;
      for (int r = 0; r < 3; ++r) {
        run_result res = run_worker(noop, als[k], -1);
        if (res.ok) v.push_back(double(res.maxrss_kb));
      }
      noop_kb[k] = median(v);
    }
  }
  double total_s = double(now_ns() - t_start) / 1e9;

  // Results must equal glibc's (or the first allocator's when glibc is not run).
  int iglibc = aidx("glibc");
  std::vector<bool> mismatch_any(NT, false);
  for (size_t t = 0; t < NT; ++t) {
    std::string ref;
    int ref_from = -1;
    std::vector<size_t> order;
    if (iglibc >= 0) order.push_back(size_t(iglibc));
    for (size_t k = 0; k < NA; ++k)
      if (int(k) != iglibc) order.push_back(k);
    for (size_t ai : order) {
      if (ref_from >= 0) break;
      if (!results[t][ai].empty()) {
        ref = results[t][ai][0].result;
        ref_from = int(ai);
      }
    }
    for (size_t k = 0; k < NA; ++k)
      for (auto& x : results[t][k])
        if (x.result != ref && failed[t][k].empty()) {
          failed[t][k] = "result '" + x.result + "' differs from " + als[size_t(ref_from)].name + "'s '" + ref + "'";
          mismatch_any[t] = true;
        }
  }

  // Paired comparison of two allocators' times on one workload, round by round (the reps are
  // interleaved: round i of each ran under the same load), by the exact sign test: under "no
  // difference" each round is a fair coin, so k or more slower rounds of n has probability
  // P(X >= k), X ~ Binomial(n, 1/2).  Below 5 % one way: slower (or faster) beyond this
  // machine's noise; otherwise a tie.  11 rounds need 9 one way; 5 need all 5; under 5 rounds
  // nothing can be told apart.  A median ratio of 1.02 is then either a tie or a real 2 %.
  enum class verdict : std::uint8_t { none, tie, slower, faster };
  auto tail_half = [](int k, int n) {  // P(X >= k), X ~ Binomial(n, 1/2)
    double p = 0, c = 1;                // c = C(n, i)
    for (int i = 0; i <= n; ++i) {
      if (i >= k) p += c;
      c = c * double(n - i) / double(i + 1);
    }
    return p / std::ldexp(1.0, n);
  };
  auto compare = [&](size_t t, size_t k, size_t base) {
    const auto& a = results[t][k];
    const auto& b = results[t][base];
    const size_t n = std::min(a.size(), b.size());
    int slower = 0, faster = 0;
    for (size_t i = 0; i < n; ++i) {
      if (a[i].ms > b[i].ms) ++slower;
      else if (a[i].ms < b[i].ms) ++faster;
    }
    const int m = slower + faster;
    if (k == base || m < 5) return verdict::none;
    if (tail_half(slower, m) < 0.05) return verdict::slower;
    if (tail_half(faster, m) < 0.05) return verdict::faster;
    return verdict::tie;
  };
  auto verdict_mark = [](verdict v) { return v == verdict::slower ? ">" : v == verdict::faster ? "<" : v == verdict::tie ? "~" : " "; };
  auto verdict_name = [](verdict v) {
    return v == verdict::slower ? "slower" : v == verdict::faster ? "faster" : v == verdict::tie ? "tie" : "";
  };

  // Medians.
  struct cell {
    bool ok = false;
    double ms = NAN, rss_kb = NAN, rps = NAN, frag = NAN, bucket_frag = NAN, cpu_ms = NAN;
    double spread = NAN;  // the time's interquartile range over its median (run-to-run noise)
    verdict vs_base = verdict::none;  // the rounds against the baseline's (compare)
    long long extra = -1;
    std::string result, vmstat, error;
  };
  std::vector<std::vector<cell>> med(NT, std::vector<cell>(NA));
  for (size_t t = 0; t < NT; ++t)
    for (size_t k = 0; k < NA; ++k) {
      cell& c = med[t][k];
      auto& rs = results[t][k];
      c.error = failed[t][k];
      if (rs.empty() || !failed[t][k].empty()) continue;
      std::vector<double> ms, rss, rps, req, hu, ex, cpu;
      for (auto& x : rs) {
        ms.push_back(x.ms);
        rss.push_back(double(x.maxrss_kb));
        if (!std::isnan(x.rps)) rps.push_back(x.rps);
        if (!std::isnan(x.cpu_ms)) cpu.push_back(x.cpu_ms);
        if (x.req > 0) req.push_back(double(x.req));
        if (x.extra >= 0) ex.push_back(double(x.extra));
      }
      c.ok = true;
      c.ms = median(ms);
      if (failed[t][size_t(ibase)].empty()) c.vs_base = compare(t, k, size_t(ibase));
      if (ms.size() >= 4) {
        std::vector<double> sorted = ms;
        std::sort(sorted.begin(), sorted.end());
        auto at = [&](double q) {  // linear interpolation between order statistics
          double x = q * double(sorted.size() - 1);
          size_t i = size_t(x);
          return i + 1 < sorted.size() ? sorted[i] + (x - double(i)) * (sorted[i + 1] - sorted[i]) : sorted[i];
        };
        if (c.ms > 0) c.spread = (at(0.75) - at(0.25)) / c.ms;
      }
      c.rss_kb = median(rss);
      c.rps = median(rps);
      c.cpu_ms = median(cpu);
      c.extra = ex.empty() ? -1 : (long long)median(ex);
      c.result = rs[0].result;
      const run_result& st = stats_run[t][k];
      c.vmstat = st.ok ? st.vmstat : st.error.empty() ? std::string() : "statistics run: " + st.error;
      if (st.ok && !std::isnan(st.highuse_kb)) hu.push_back(st.highuse_kb);
      double rq = median(req);
      if (!std::isnan(rq) && rq > 0) {
        c.frag = (c.rss_kb - (std::isnan(noop_kb[k]) ? 0 : noop_kb[k])) * 1024.0 / rq;
        // HighUse is exact for one thread; with several, blocks parked in per-thread
        // magazines are not in it, so the ratio is not shown.
        if (!hu.empty() && tasks[t].threads == 1) c.bucket_frag = median(hu) * 1024.0 / rq;
      }
    }

  // Table.
  std::printf("\nMedians of %d interleaved runs (applications %d; those under %.0f s a rep as many as the workers)%s.\n"
              "time: the workload's own clock (workers) or wall time (apps);\n"
              "RSS: peak RSS of the process under test (wait4). x%s: ratio to %s (lower is better for both).\n"
              "frag: (peak RSS - empty-worker RSS) / peak bytes requested; for vmrt also HighUse / requested.\n"
              "+-: the time's interquartile range over its median (4 reps or more): a ratio closer to 1 than\n"
              "    the two rows' spreads is within this machine's run-to-run noise.\n"
              "x base is followed by the rounds' verdict against the baseline (exact sign test over the\n"
              "    interleaved rounds, 5%% one-sided; 5 rounds or more): > slower, < faster, ~ a tie.\n",
              reps_done, std::min(reps_done, reps), kCheapAppSeconds, cut ? " (the last cut short: its later workloads have one fewer)" : "", baseline.c_str(),
              baseline.c_str());
  for (size_t t = 0; t < NT; ++t) {
    const task& tk = tasks[t];
    char scaled[48] = "";
    const double sc = tk.kind == task_kind::worker ? scale : app_scale;
    if (sc != 1.0) std::snprintf(scaled, sizeof scaled, " [counts x%g]", sc);
    std::printf("\n%s (%d thread%s): %s%s%s\n", tk.name.c_str(), tk.threads, tk.threads > 1 ? "s" : "", tk.what.c_str(),
                scaled, mismatch_any[t] ? "   RESULT MISMATCH" : "");
    std::printf("  %-10s %10s %6s %7s %10s %7s %6s  %s\n", "allocator", "time ms", "+-", "x base", "RSS MiB", "x base",
                "frag", "result / notes");
    const cell& b = med[t][size_t(ibase)];
    for (size_t k = 0; k < NA; ++k) {
      const cell& c = med[t][k];
      if (!c.ok) {
        std::printf("  %-10s FAILED: %s\n", als[k].name.c_str(), c.error.empty() ? "no run" : c.error.c_str());
        continue;
      }
      std::string notes = c.result;
      if (!std::isnan(c.rps)) notes = fmt(c.rps, "%.0f") + " req/s";
      if (!std::isnan(c.cpu_ms)) notes += ", server CPU " + fmt(c.cpu_ms, "%.0f") + " ms";
      if (c.extra >= 0) notes = "malloc(64 MiB) added " + std::to_string(c.extra) + " kB RSS";
      if (!c.vmstat.empty()) {
        notes += "  [" + c.vmstat;
        if (!std::isnan(c.bucket_frag)) notes += ", HighUse/req " + fmt(c.bucket_frag, "%.2f");
        notes += "]";
      }
      std::string spread = std::isnan(c.spread) ? "" : fmt(100 * c.spread, "%.0f") + "%";
      std::printf("  %-10s %10.2f %6s %6.2f%s %10.1f %7.2f %6s  %s\n", als[k].name.c_str(), c.ms, spread.c_str(), c.ms / b.ms,
                  verdict_mark(c.vs_base), c.rss_kb / 1024, c.rss_kb / b.rss_kb, fmt(c.frag, "%.2f").c_str(), notes.c_str());
    }
  }

  // CSV.
  std::string csv =
      "workload,allocator,status,reps,time_ms,time_vs_" + baseline + ",peak_rss_mib,rss_vs_" + baseline +
      ",frag,bucket_frag,rps,malloc64_added_kb,result,vmstat,error,time_spread,time_verdict_vs_" + baseline + "\n";
  for (size_t t = 0; t < NT; ++t)
    for (size_t k = 0; k < NA; ++k) {
      const cell& c = med[t][k];
      const cell& b = med[t][size_t(ibase)];
      csv += tasks[t].name + "," + als[k].name + "," + (c.ok ? "ok" : "failed") + "," +
             std::to_string(results[t][k].size()) + "," + fmt(c.ms) + "," + fmt(c.ms / b.ms) + "," +
             fmt(c.rss_kb / 1024) + "," + fmt(c.rss_kb / b.rss_kb) + "," + fmt(c.frag) + "," + fmt(c.bucket_frag) + "," +
             fmt(c.rps, "%.0f") + "," + (c.extra >= 0 ? std::to_string(c.extra) : "") + "," + csv_quote(c.result) + "," +
             csv_quote(c.vmstat) + "," + csv_quote(c.error) + "," + fmt(c.spread) + "," +
             verdict_name(c.vs_base) + "\n";
    }
  write_file(g_cfg.outdir + "/results.csv", csv);
  write_file(g_cfg.outdir + "/runs.csv", runs_csv);

  // Geometric means per allocator against the baseline (workloads both completed).
  std::printf("\nGeometric means over the workloads (malloc64_probe excluded: see its kB line), vs %s:\n",
              baseline.c_str());
  std::printf("  %-10s %9s %9s %9s %9s %4s\n", "allocator", "time", "worst", "RSS", "worst", "n");
  std::vector<std::vector<double>> tr(NT, std::vector<double>(NA, NAN)), rr(NT, std::vector<double>(NA, NAN));
  for (size_t t = 0; t < NT; ++t)
    for (size_t k = 0; k < NA; ++k)
      if (med[t][k].ok && med[t][size_t(ibase)].ok) {
        tr[t][k] = med[t][k].ms / med[t][size_t(ibase)].ms;
        rr[t][k] = med[t][k].rss_kb / med[t][size_t(ibase)].rss_kb;
      }
  for (size_t k = 0; k < NA; ++k) {
    std::vector<double> a, b;
    for (size_t t = 0; t < NT; ++t)
      if (tasks[t].in_summary && !std::isnan(tr[t][k])) {
        a.push_back(tr[t][k]);
        b.push_back(rr[t][k]);
      }
    std::printf("  %-10s %9.3f %9.3f %9.3f %9.3f %4zu\n", als[k].name.c_str(), geomean(a),
                a.empty() ? NAN : *std::max_element(a.begin(), a.end()), geomean(b),
                b.empty() ? NAN : *std::max_element(b.begin(), b.end()), a.size());
  }

  // The cost of the power-of-two geometry: the same kmem with 4.4BSD's buckets against its
  // size classes, in the same run (--pow2).
  std::vector<std::pair<std::string, double>> pow2_metrics;  // printed with the other metrics
  if (const int ip = aidx("vmrt_pow2"), iv = aidx("vmrt"); ip >= 0 && iv >= 0) {
    std::printf("\nCost of 4.4BSD's power-of-two buckets: vmrt_pow2 (kmem built with KMEM_POW2_CLASSES=1)\n"
                "against vmrt (size classes), medians of the same run; > 1: the power-of-two geometry costs.\n");
    std::printf("  %-16s %9s %9s   %9s %9s   %9s %9s\n", "workload", "time", "RSS", "vmrt", "(RSS)", "pow2", "(RSS)");
    std::printf("  %-16s %9s %9s   %9s %9s   %9s %9s\n", "", "pow2/cls", "pow2/cls", "x jemalloc", "", "x jemalloc", "");
    const int ij = aidx("jemalloc");
    std::vector<double> ct, cr;
    for (size_t t = 0; t < NT; ++t) {
      const auto& v = med[t][size_t(iv)];
      const auto& w = med[t][size_t(ip)];
      if (!v.ok || !w.ok) continue;
      const double tv = w.ms / v.ms, rv = w.rss_kb / v.rss_kb;
      auto vs_je = [&](const auto& r, bool rss) -> double {
        if (ij < 0 || !med[t][size_t(ij)].ok) return NAN;
        return rss ? r.rss_kb / med[t][size_t(ij)].rss_kb : r.ms / med[t][size_t(ij)].ms;
      };
      std::printf("  %-16s %9.3f %9.3f   %9.3f %9.3f   %9.3f %9.3f\n", tasks[t].name.c_str(), tv, rv, vs_je(v, false),
                  vs_je(v, true), vs_je(w, false), vs_je(w, true));
      pow2_metrics.push_back({"metric pow2_time_vs_classes." + tasks[t].name, tv});
      pow2_metrics.push_back({"metric pow2_rss_vs_classes." + tasks[t].name, rv});
      if (tasks[t].in_summary) {
        ct.push_back(tv);
        cr.push_back(rv);
      }
    }
    std::printf("  %-16s %9.3f %9.3f\n", "geomean", geomean(ct), geomean(cr));
    pow2_metrics.push_back({"metric geomean_pow2_time_vs_classes", geomean(ct)});
    pow2_metrics.push_back({"metric geomean_pow2_rss_vs_classes", geomean(cr)});
  }

  bool chart = false;
  if (!no_chart) {
    std::vector<std::string> wn, an;
    for (auto& t : tasks) wn.push_back(t.name);
    for (auto& a : als) an.push_back(a.name);
    chart = write_chart(wn, an, tr, rr, baseline);
  }
  std::printf("\nwrote %s/results.csv, %s/runs.csv%s%s\n", g_cfg.outdir.c_str(), g_cfg.outdir.c_str(),
              chart ? (", " + g_cfg.outdir + "/chart.svg, " + g_cfg.outdir + "/chart.png").c_str() : "",
              aidx("vmrt") >= 0 ? (", vmrt reports in " + g_cfg.outdir + "/vmstat/").c_str() : "");
  std::printf("total %.1f s\n", total_s);
  {
    // Where the wall time went (every allocator and rep, server set-up included), largest first.
    std::vector<size_t> order(NT);
    for (size_t t = 0; t < NT; ++t) order[t] = t;
    std::sort(order.begin(), order.end(), [&](size_t x, size_t y) { return wall_s[x] > wall_s[y]; });
    std::printf("wall time by workload:");
    for (size_t t : order) std::printf(" %s %.1f s;", tasks[t].name.c_str(), wall_s[t]);
    std::printf("\n\n");
  }

  // Metrics: vmrt against jemalloc (and mimalloc), whatever the baseline.
  int ivm = aidx("vmrt"), ije = aidx("jemalloc"), imi = aidx("mimalloc");
  auto ratios = [&](int num, int den, std::vector<double>& t_out, std::vector<double>& r_out, bool per_workload,
                    const char* vs) {
    for (size_t t = 0; t < NT; ++t) {
      double tv = NAN, rv = NAN;
      if (num >= 0 && den >= 0 && med[t][size_t(num)].ok && med[t][size_t(den)].ok) {
        tv = med[t][size_t(num)].ms / med[t][size_t(den)].ms;
        rv = med[t][size_t(num)].rss_kb / med[t][size_t(den)].rss_kb;
      }
      if (per_workload) {
        bench::print_metric("metric time_vs_" + std::string(vs) + "." + tasks[t].name, tv);
        bench::print_metric("metric rss_vs_" + std::string(vs) + "." + tasks[t].name, rv);
      }
      if (tasks[t].in_summary && !std::isnan(tv)) {
        t_out.push_back(tv);
        r_out.push_back(rv);
      }
    }
  };
  std::vector<double> tj, rj, tm, rm;
  ratios(ivm, ije, tj, rj, true, "jemalloc");
  ratios(ivm, imi, tm, rm, false, "mimalloc");
  for (size_t t = 0; t < NT; ++t) {
    if (tasks[t].name == "malloc64_probe")
      for (size_t k = 0; k < NA; ++k)
        if (med[t][k].ok) bench::print_metric("metric malloc64_added_kb." + als[k].name, double(med[t][k].extra));
    if (tasks[t].kind == task_kind::redis || tasks[t].kind == task_kind::memcached) {
      if (ivm >= 0 && med[t][size_t(ivm)].ok) bench::print_metric("metric " + tasks[t].name + "_rps.vmrt", med[t][size_t(ivm)].rps);
      if (ije >= 0 && med[t][size_t(ije)].ok)
        bench::print_metric("metric " + tasks[t].name + "_rps.jemalloc", med[t][size_t(ije)].rps);
      if (ivm >= 0 && ije >= 0 && med[t][size_t(ivm)].ok && med[t][size_t(ije)].ok)
        bench::print_metric("metric " + tasks[t].name + "_server_cpu_vs_jemalloc",
                            med[t][size_t(ivm)].cpu_ms / med[t][size_t(ije)].cpu_ms);
    }
  }
  bench::print_metric("metric geomean_time_vs_mimalloc", geomean(tm));
  bench::print_metric("metric geomean_rss_vs_mimalloc", geomean(rm));
  bench::print_metric("metric geomean_time_vs_jemalloc", geomean(tj));
  bench::print_metric("metric geomean_rss_vs_jemalloc", geomean(rj));
  bench::print_metric("metric worst_time_vs_jemalloc", tj.empty() ? NAN : *std::max_element(tj.begin(), tj.end()));
  // The rows the sign test tells apart (vmrt against jemalloc, workloads in the summary): a
  // worst ratio above 1 on a row that is a tie is this machine's noise, not a slower vmrt.
  if (ivm >= 0 && ije >= 0) {
    int slower = 0, faster = 0, ties = 0;
    for (size_t t = 0; t < NT; ++t) {
      if (!tasks[t].in_summary || !med[t][size_t(ivm)].ok || !med[t][size_t(ije)].ok) continue;
      const verdict v = compare(t, size_t(ivm), size_t(ije));
      slower += v == verdict::slower;
      faster += v == verdict::faster;
      ties += v == verdict::tie;
    }
    bench::print_metric("metric time_rows_slower_than_jemalloc", double(slower));
    bench::print_metric("metric time_rows_faster_than_jemalloc", double(faster));
    bench::print_metric("metric time_rows_tied_with_jemalloc", double(ties));
  }
  bench::print_metric("metric worst_rss_vs_jemalloc", rj.empty() ? NAN : *std::max_element(rj.begin(), rj.end()));
  for (auto& [name, v] : pow2_metrics) bench::print_metric(name, v);

  // Clean the scratch directory (sockets, logs, the sqlite script, the gcc build).
  for (const char* f : {"redis.sock", "redis.log", "memcached.sock", "memcached.log", "sqlite.sql"})
    unlink((g_cfg.tmpdir + "/" + f).c_str());
  gcc_sources_remove();
  rmdir(g_cfg.tmpdir.c_str());
  bool any_mismatch = std::any_of(mismatch_any.begin(), mismatch_any.end(), [](bool b) { return b; });
  return any_mismatch ? 1 : 0;
}
