// pdpolicy_sim — trace-driven simulator of vmrt's page replacement policies (vm_pdpolicy.h).
//
// Replays reference strings (sequences of page numbers) with a given number of page frames
// and counts faults (misses) for:
//   - vmrt's policies, the REAL code (vm/vm_pdpolicy_clock.cpp, linked from the vm library):
//     clock (FreeBSD two-queue), clock1 (one-handed second chance), 2q, clock-noage (two
//     queues without act_count), and clock at other inactive targets; fake vm_page records, one per distinct page, and a simulated
//     reference bit: set on every access to a resident page, returned and cleared by the
//     environment's test_clear_referenced (vmrt emulates it the same way: a page-in is
//     reported to the policy by vm_pdpolicy_activate, later accesses set the bit).  A miss
//     with every frame full asks vm_pdpolicy_select_victim (max_scan = 8 x frames); if it
//     returns null the simulator evicts the oldest resident page itself and counts it
//     ("fallback").  Also counted: reference faults, accesses to a resident page after the
//     policy cleared its bit — vmrt emulates the bit by unmapping, so each is a soft fault.
//   - exact LRU, and Belady's OPT (next-use times precomputed; the minimum any policy can do).
// Traces: real programs' reference strings recorded at run time with
// `valgrind --tool=lackey --trace-mem=yes` (instruction and data addresses -> 4 KiB page
// numbers, consecutive repeats collapsed), and synthetic ones (loop, zipf hot set + scans,
// uniform random).  Memory sizes: 10/25/50/75% of each trace's distinct pages.
//
//   pdpolicy_sim [--quick] [--refs N] [--trace FILE]... [--no-record] [--save DIR]
//     --quick      real traces capped at 2M references, recording capped at 20 s each
//     --refs N     cap every recorded / loaded trace at N references (default 20M)
//     --trace FILE replay FILE as well: either text, one reference per line (a page number,
//                  decimal or 0x-hex; or a lackey line "I  04016f70,3" / " L 1fff000648,8",
//                  whose address is turned into a page), or binary: the 8 bytes "PDTRACE1"
//                  then little-endian uint64 page numbers.  Consecutive repeats collapsed.
//     --no-record  no valgrind recordings (synthetic and --trace only)
//     --save DIR   write each trace as DIR/<name>.pdtrace (the binary format above)
//     --frames N,..  these frame counts instead of the 10/25/50/75% sweep
//   bench/pdpolicy_sample.txt is a tiny sample (the textbook string of the self-check).
// Output: a table per trace, then `metric NAME VALUE` lines (policy faults / OPT faults and /
// LRU faults, the geometric mean over the memory sizes, and per size for clock).
#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cinttypes>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <queue>
#include <random>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench_common.h"
#include "vm/vm_page.h"
#include "vm/vm_pdpolicy.h"
#include "vm/vm_stats.h"

namespace {

// ---- traces ------------------------------------------------------------------------------
struct trace {
  std::string name;
  std::string source;
  std::vector<std::uint32_t> refs;  // dense page ids 0..distinct-1
  std::uint32_t distinct = 0;
};

// Collects page numbers: collapses consecutive repeats, maps pages to dense ids.
struct trace_builder {
  trace t;
  std::unordered_map<std::uint64_t, std::uint32_t> ids;
  std::uint64_t last = ~std::uint64_t{0};
  std::size_t cap;
  explicit trace_builder(std::size_t c) : cap(c) {}
  bool full() const { return t.refs.size() >= cap; }
  void add(std::uint64_t page) {
    if (page == last || full()) return;
    last = page;
    auto it = ids.find(page);
    std::uint32_t id;
    if (it == ids.end()) {
      id = static_cast<std::uint32_t>(ids.size());
      ids.emplace(page, id);
    } else {
      id = it->second;
    }
    t.refs.push_back(id);
  }
  trace done(std::string name, std::string source) {
    t.name = std::move(name);
    t.source = std::move(source);
    t.distinct = static_cast<std::uint32_t>(ids.size());
    return std::move(t);
  }
};

// One line of text: a lackey record ("I  addr,size", " L addr,size", " S ...", " M ...")
// gives addr >> 12; a bare number is a page number.  False for anything else.
bool parse_line(const char* s, std::uint64_t* page) {
  if (s[0] == '=' || s[0] == '#' || s[0] == 0 || s[0] == '\n') return false;
  const char* comma = std::strchr(s, ',');
  if (comma != nullptr) {  // lackey
    const char* p = s;
    while (*p == ' ' || *p == 'I' || *p == 'L' || *p == 'S' || *p == 'M') ++p;
    char* end = nullptr;
    std::uint64_t a = std::strtoull(p, &end, 16);
    if (end == p) return false;
    *page = a >> 12;
    return true;
  }
  char* end = nullptr;
  std::uint64_t v = std::strtoull(s, &end, 0);
  if (end == s) return false;
  *page = v;
  return true;
}

bool load_trace_file(const std::string& path, std::size_t cap, trace* out) {
  FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) {
    std::fprintf(stderr, "pdpolicy_sim: %s: %s\n", path.c_str(), std::strerror(errno));
    return false;
  }
  trace_builder b(cap);
  char magic[8];
  std::size_t got = std::fread(magic, 1, 8, f);
  if (got == 8 && std::memcmp(magic, "PDTRACE1", 8) == 0) {
    std::uint64_t buf[4096];
    std::size_t n;
    while (!b.full() && (n = std::fread(buf, 8, 4096, f)) > 0)
      for (std::size_t k = 0; k < n; ++k) b.add(buf[k]);
  } else {
    std::rewind(f);
    char line[512];
    std::uint64_t page;
    while (!b.full() && std::fgets(line, sizeof line, f) != nullptr)
      if (parse_line(line, &page)) b.add(page);
  }
  std::fclose(f);
  std::string base = path.substr(path.rfind('/') == std::string::npos ? 0 : path.rfind('/') + 1);
  std::string name;
  for (char c : base.substr(0, base.find('.'))) name += std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
  *out = b.done("file_" + name, path);
  return true;
}

bool save_trace(const trace& t, const std::string& dir) {
  // Ids, not the original page numbers: the same reference string up to renaming.
  std::string path = dir + "/" + t.name + ".pdtrace";
  FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) return false;
  std::fwrite("PDTRACE1", 1, 8, f);
  for (std::uint32_t r : t.refs) {
    std::uint64_t v = r;
    std::fwrite(&v, 8, 1, f);
  }
  std::fclose(f);
  return true;
}

bool have_valgrind() { return std::system("valgrind --version >/dev/null 2>&1") == 0; }

// Record `argv` under lackey: its --log-fd is a pipe read here; stops at `cap` references
// (after collapsing) or `seconds`, then kills valgrind (SIGKILL: it passes SIGTERM to the
// guest, which may take long to act under lackey).  The program's own output is discarded.
bool record_lackey(const std::vector<std::string>& argv, const std::string& name, std::size_t cap,
                   double seconds, const std::string& cwd, trace* out) {
  int fds[2];
  if (pipe(fds) != 0) return false;
  pid_t pid = fork();
  if (pid < 0) return false;
  if (pid == 0) {
    if (chdir(cwd.c_str()) != 0) _exit(126);
    int null = open("/dev/null", O_RDWR);
    dup2(null, 0);
    dup2(null, 1);
    dup2(null, 2);
    dup2(fds[1], 9);
    close(fds[0]);
    setenv("PYTHONHASHSEED", "0", 1);  // the same python trace every run
    std::vector<std::string> args = {"valgrind", "--tool=lackey", "--trace-mem=yes", "--log-fd=9"};
    args.insert(args.end(), argv.begin(), argv.end());
    std::vector<char*> cargv;
    for (auto& a : args) cargv.push_back(const_cast<char*>(a.c_str()));
    cargv.push_back(nullptr);
    execvp("valgrind", cargv.data());
    _exit(127);
  }
  close(fds[1]);
  FILE* f = fdopen(fds[0], "r");
  trace_builder b(cap);
  char line[512];
  std::uint64_t page;
  std::uint64_t t0 = bench::now_ns(), lines = 0;
  bool timed_out = false;
  while (!b.full() && std::fgets(line, sizeof line, f) != nullptr) {
    if (parse_line(line, &page)) b.add(page);
    if ((++lines & 0xffff) == 0 && (bench::now_ns() - t0) / 1e9 > seconds) {
      timed_out = true;
      break;
    }
  }
  kill(pid, SIGKILL);
  std::fclose(f);
  int st = 0;
  waitpid(pid, &st, 0);
  std::string cmd;
  for (auto& a : argv) cmd += (cmd.empty() ? "" : " ") + a;
  char info[160];
  std::snprintf(info, sizeof info, "valgrind lackey, %" PRIu64 " raw records in %.1f s%s%s", lines,
                (bench::now_ns() - t0) / 1e9, b.full() ? ", capped" : "", timed_out ? ", time cap" : "");
  *out = b.done(name, cmd + " (" + info + ")");
  if (out->refs.size() < 1000) {
    std::printf("SKIP trace %s: valgrind gave only %zu references (%s)\n", name.c_str(), out->refs.size(),
                info);
    return false;
  }
  return true;
}

// Synthetic traces (fixed seeds: every run replays the same strings).
trace synth_loop(std::uint32_t pages, std::uint32_t passes) {
  trace_builder b(SIZE_MAX);
  for (std::uint32_t p = 0; p < passes; ++p)
    for (std::uint32_t k = 0; k < pages; ++k) b.add(k);
  char src[120];
  std::snprintf(src, sizeof src, "synthetic: %u passes over %u pages in order (LRU's worst case)", passes, pages);
  return b.done("loop", src);
}

trace synth_zipf_scan(std::uint32_t hot, std::uint32_t cold, std::uint32_t rounds, std::uint32_t hot_refs) {
  std::mt19937_64 rng(42);
  std::vector<double> cdf(hot);
  double sum = 0;
  for (std::uint32_t k = 0; k < hot; ++k) cdf[k] = (sum += 1.0 / std::pow(k + 1.0, 0.9));
  std::uniform_real_distribution<double> u(0, sum);
  // Zipf ranks scattered over the hot pages, so rank order is not page order.
  std::vector<std::uint32_t> perm(hot);
  for (std::uint32_t k = 0; k < hot; ++k) perm[k] = k;
  std::shuffle(perm.begin(), perm.end(), rng);
  trace_builder b(SIZE_MAX);
  for (std::uint32_t r = 0; r < rounds; ++r) {
    for (std::uint32_t k = 0; k < hot_refs; ++k) {
      auto rank = static_cast<std::uint32_t>(std::lower_bound(cdf.begin(), cdf.end(), u(rng)) - cdf.begin());
      b.add(perm[std::min(rank, hot - 1)]);
    }
    for (std::uint32_t k = 0; k < cold; ++k) b.add(hot + k);  // a table scan, the same each round
  }
  char src[160];
  std::snprintf(src, sizeof src, "synthetic: %u rounds of %u zipf(0.9) refs over %u hot pages, then a scan of %u cold pages",
                rounds, hot_refs, hot, cold);
  return b.done("zipf_scan", src);
}

trace synth_random(std::uint32_t pages, std::uint32_t n) {
  std::mt19937_64 rng(7);
  std::uniform_int_distribution<std::uint32_t> d(0, pages - 1);
  trace_builder b(SIZE_MAX);
  for (std::uint32_t k = 0; k < n; ++k) b.add(d(rng));
  char src[120];
  std::snprintf(src, sizeof src, "synthetic: %u uniform random refs over %u pages", n, pages);
  return b.done("random", src);
}

// ---- the policies ------------------------------------------------------------------------
struct result {
  std::uint64_t faults = 0;
  std::uint64_t fallbacks = 0;  // vmrt policy returned no victim
  std::uint64_t scanned = 0;    // pages the policy looked at
  // Reference faults: accesses to a resident page after test_clear_referenced cleared its bit
  // (vmrt emulates the bit by unmapping the page, so each of these is a soft fault there).
  std::uint64_t ref_faults = 0;
};

// vmrt's policy over fake pages.
std::vector<vmrt::vm_page> g_pages;
std::vector<std::uint8_t> g_refbit;
std::vector<std::uint8_t> g_unmapped;  // cleared by the policy, not accessed since
bool sim_test_clear_referenced(vmrt::vm_page* m) {
  std::size_t i = static_cast<std::size_t>(m - g_pages.data());
  bool r = g_refbit[i] != 0;
  g_refbit[i] = 0;
  g_unmapped[i] = 1;
  return r;
}
const vmrt::vm_pdpolicy_env kSimEnv = {sim_test_clear_referenced};

result run_vmrt(const trace& t, std::uint32_t frames, vmrt::vm_pdpolicy_kind kind, unsigned inactive_pct) {
  using namespace vmrt;
  g_pages.assign(t.distinct, vm_page{});
  g_refbit.assign(t.distinct, 0);
  g_unmapped.assign(t.distinct, 0);
  std::vector<std::uint8_t> resident(t.distinct, 0);
  // Residents in load order, for the fallback (oldest still resident goes).
  std::vector<std::uint32_t> fifo;
  fifo.reserve(t.refs.size() / 4 + frames);
  std::size_t fifo_head = 0;
  vm_pdpolicy_reset();
  vm_pdpolicy_init(kind, &kSimEnv);
  vm_pdpolicy_set_inactive_pct(inactive_pct);
  result res;
  std::uint32_t used = 0;
  unsigned max_scan = frames * 8 + 16;
  for (std::uint32_t p : t.refs) {
    if (resident[p]) {
      g_refbit[p] = 1;
      if (g_unmapped[p]) {
        res.ref_faults++;
        g_unmapped[p] = 0;
      }
      continue;
    }
    res.faults++;
    if (used == frames) {
      unsigned scanned = 0;
      vm_page* v = vm_pdpolicy_select_victim(max_scan, &scanned);
      res.scanned += scanned;
      std::uint32_t vi;
      if (v != nullptr) {
        vi = static_cast<std::uint32_t>(v - g_pages.data());
      } else {
        res.fallbacks++;
        while (!resident[fifo[fifo_head]]) ++fifo_head;
        vi = fifo[fifo_head++];
        vm_pdpolicy_dequeue(&g_pages[vi]);
      }
      resident[vi] = 0;
      g_refbit[vi] = 0;
      used--;
    }
    resident[p] = 1;
    g_unmapped[p] = 0;
    used++;
    fifo.push_back(p);
    if (fifo_head > fifo.size() / 2 && fifo_head > 4096) {  // compact
      fifo.erase(fifo.begin(), fifo.begin() + static_cast<std::ptrdiff_t>(fifo_head));
      fifo_head = 0;
    }
    vm_pdpolicy_activate(&g_pages[p]);
  }
  return res;
}

result run_lru(const trace& t, std::uint32_t frames) {
  constexpr std::uint32_t NIL = ~0u;
  std::vector<std::uint32_t> prev(t.distinct, NIL), next(t.distinct, NIL);
  std::vector<std::uint8_t> resident(t.distinct, 0);
  std::uint32_t head = NIL, tail = NIL, used = 0;  // head = most recent
  auto unlink = [&](std::uint32_t p) {
    if (prev[p] != NIL) next[prev[p]] = next[p];
    else head = next[p];
    if (next[p] != NIL) prev[next[p]] = prev[p];
    else tail = prev[p];
  };
  auto push_front = [&](std::uint32_t p) {
    prev[p] = NIL;
    next[p] = head;
    if (head != NIL) prev[head] = p;
    else tail = p;
    head = p;
  };
  result res;
  for (std::uint32_t p : t.refs) {
    if (resident[p]) {
      if (head != p) {
        unlink(p);
        push_front(p);
      }
      continue;
    }
    res.faults++;
    if (used == frames) {
      std::uint32_t v = tail;
      unlink(v);
      resident[v] = 0;
      used--;
    }
    resident[p] = 1;
    used++;
    push_front(p);
  }
  return res;
}

// Next-use index of every reference (refs.size() when never used again).
std::vector<std::uint32_t> next_uses(const trace& t) {
  std::vector<std::uint32_t> nu(t.refs.size());
  std::vector<std::uint32_t> last(t.distinct, static_cast<std::uint32_t>(t.refs.size()));
  for (std::size_t i = t.refs.size(); i-- > 0;) {
    nu[i] = last[t.refs[i]];
    last[t.refs[i]] = static_cast<std::uint32_t>(i);
  }
  return nu;
}

result run_opt(const trace& t, const std::vector<std::uint32_t>& nu, std::uint32_t frames) {
  std::vector<std::uint8_t> resident(t.distinct, 0);
  std::vector<std::uint32_t> cur(t.distinct, 0);
  std::priority_queue<std::pair<std::uint32_t, std::uint32_t>> heap;  // (next use, page), latest first
  std::uint32_t used = 0;
  result res;
  for (std::size_t i = 0; i < t.refs.size(); ++i) {
    std::uint32_t p = t.refs[i];
    if (!resident[p]) {
      res.faults++;
      if (used == frames) {
        for (;;) {
          auto [n, v] = heap.top();
          heap.pop();
          if (resident[v] && cur[v] == n) {
            resident[v] = 0;
            used--;
            break;
          }
        }
      }
      resident[p] = 1;
      used++;
    }
    cur[p] = nu[i];
    heap.emplace(nu[i], p);
    if (heap.size() > 4 * static_cast<std::size_t>(frames) + 1024) {  // drop stale entries
      std::vector<std::pair<std::uint32_t, std::uint32_t>> keep;
      while (!heap.empty()) {
        auto e = heap.top();
        heap.pop();
        if (resident[e.second] && cur[e.second] == e.first) keep.push_back(e);
      }
      heap = std::priority_queue<std::pair<std::uint32_t, std::uint32_t>>(keep.begin(), keep.end());
    }
  }
  return res;
}

struct policy_row {
  const char* name;
  bool vmrt;
  vmrt::vm_pdpolicy_kind kind;
  unsigned inactive_pct;
};
// The vmrt rows first; "clock" is the default policy (33% inactive target).
const policy_row kPolicies[] = {
    {"clock", true, vmrt::PDPOL_CLOCK, 33},  {"clock-i10", true, vmrt::PDPOL_CLOCK, 10},
    {"clock-i50", true, vmrt::PDPOL_CLOCK, 50}, {"clock1", true, vmrt::PDPOL_CLOCK1, 33},
    {"2q", true, vmrt::PDPOL_2Q, 33},        {"2q-i50", true, vmrt::PDPOL_2Q, 50},
    {"clock-noage", true, vmrt::PDPOL_CLOCK_NOAGE, 33}, {"clock2", true, vmrt::PDPOL_CLOCK2, vmrt::PDPOL_CLOCK2_GAP_PCT_DEFAULT},
    {"clock2-g3", true, vmrt::PDPOL_CLOCK2, 3},
    {"lru", false, vmrt::PDPOL_CLOCK, 0},    {"opt", false, vmrt::PDPOL_CLOCK, 0},
};
constexpr std::size_t kNPol = sizeof kPolicies / sizeof kPolicies[0];
constexpr unsigned kSizesPct[] = {10, 25, 50, 75};
constexpr std::size_t kNSizes = sizeof kSizesPct / sizeof kSizesPct[0];

std::vector<std::pair<std::string, double>> g_size_metrics;  // printed at the end

struct summary {
  std::string trace;
  double over_opt[kNPol];  // geometric mean over sizes
  double over_lru[kNPol];
  double ref_per_fault[kNPol];  // reference faults per fault, mean over sizes (vmrt rows)
};

std::vector<std::uint32_t> g_frames;  // --frames: fixed frame counts instead of the % sweep

// The textbook reference string (Silberschatz et al., Operating System Concepts, ch. 9) with
// 3 frames: OPT 9 faults, LRU 12.  Checked at start so a broken OPT or LRU cannot go unseen.
bool selfcheck() {
  trace_builder b(SIZE_MAX);
  for (std::uint64_t p : {7, 0, 1, 2, 0, 3, 0, 4, 2, 3, 0, 3, 2, 1, 2, 0, 1, 7, 0, 1}) b.add(p);
  trace t = b.done("textbook", "");
  auto nu = next_uses(t);
  std::uint64_t opt = run_opt(t, nu, 3).faults, lru = run_lru(t, 3).faults;
  std::uint64_t clk = run_vmrt(t, 3, vmrt::PDPOL_CLOCK1, 33).faults;
  std::printf("selfcheck: textbook string, 3 frames: OPT %" PRIu64 " (expect 9), LRU %" PRIu64
              " (expect 12), clock1 %" PRIu64 " (>= OPT)\n", opt, lru, clk);
  return opt == 9 && lru == 12 && clk >= opt;
}

summary run_trace(const trace& t) {
  std::printf("\n== trace %s: %zu references, %u distinct pages\n   %s\n", t.name.c_str(), t.refs.size(), t.distinct,
              t.source.c_str());
  std::printf("%-7s %-6s", "mem%", "frames");
  for (const auto& p : kPolicies) std::printf(" %10s", p.name);
  std::printf("   clock/opt clock/lru clock1/opt 2q/opt  fallbacks(clock)  scans/fault(clock)  reffaults/fault(clock clock1 2q noage clock2)\n");
  std::vector<std::uint32_t> nu = next_uses(t);
  summary s;
  s.trace = t.name;
  double log_opt[kNPol] = {}, log_lru[kNPol] = {}, rpf[kNPol] = {};
  const std::size_t nsizes = g_frames.empty() ? kNSizes : g_frames.size();
  for (std::size_t si = 0; si < nsizes; ++si) {
    unsigned pct = g_frames.empty() ? kSizesPct[si] : static_cast<unsigned>(std::uint64_t{g_frames[si]} * 100 / t.distinct);
    std::uint32_t frames = g_frames.empty()
                               ? std::max<std::uint32_t>(4, static_cast<std::uint32_t>(std::uint64_t{t.distinct} * pct / 100))
                               : g_frames[si];
    result r[kNPol];
    for (std::size_t k = 0; k < kNPol; ++k) {
      const policy_row& p = kPolicies[k];
      if (p.vmrt) r[k] = run_vmrt(t, frames, p.kind, p.inactive_pct);
      else if (std::strcmp(p.name, "lru") == 0) r[k] = run_lru(t, frames);
      else r[k] = run_opt(t, nu, frames);
    }
    const double opt = static_cast<double>(r[kNPol - 1].faults), lru = static_cast<double>(r[kNPol - 2].faults);
    std::printf("%-7u %-6u", pct, frames);
    for (std::size_t k = 0; k < kNPol; ++k) std::printf(" %10" PRIu64, r[k].faults);
    double c = static_cast<double>(r[0].faults);
    auto per_fault = [](const result& x) { return x.faults ? static_cast<double>(x.ref_faults) / x.faults : 0.0; };
    std::printf("   %9.3f %9.3f %10.3f %6.3f  %16" PRIu64 "  %18.2f  %7.2f %6.2f %6.2f %6.2f %6.2f\n", c / opt, c / lru, r[3].faults / opt,
                r[4].faults / opt, r[0].fallbacks, r[0].faults ? static_cast<double>(r[0].scanned) / r[0].faults : 0.0,
                per_fault(r[0]), per_fault(r[3]), per_fault(r[4]), per_fault(r[6]), per_fault(r[7]));
    for (std::size_t k = 0; k < kNPol; ++k) {
      log_opt[k] += std::log(r[k].faults / opt);
      log_lru[k] += std::log(r[k].faults / lru);
      rpf[k] += per_fault(r[k]);
    }
    char name[160];
    if (g_frames.empty()) std::snprintf(name, sizeof name, "metric pdpol_clock_over_opt_%s_m%u", t.name.c_str(), pct);
    else std::snprintf(name, sizeof name, "metric pdpol_clock_over_opt_%s_f%u", t.name.c_str(), frames);
    g_size_metrics.emplace_back(name, c / opt);
  }
  for (std::size_t k = 0; k < kNPol; ++k) {
    s.over_opt[k] = std::exp(log_opt[k] / static_cast<double>(nsizes));
    s.over_lru[k] = std::exp(log_lru[k] / static_cast<double>(nsizes));
    s.ref_per_fault[k] = rpf[k] / static_cast<double>(nsizes);
  }
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  bool quick = false, record = true;
  std::size_t cap = 20'000'000;
  bool cap_set = false;
  std::vector<std::string> files;
  std::string save_dir;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--quick") quick = true;
    else if (a == "--no-record") record = false;
    else if (a == "--refs" && i + 1 < argc) cap = std::strtoull(argv[++i], nullptr, 0), cap_set = true;
    else if (a == "--trace" && i + 1 < argc) files.push_back(argv[++i]);
    else if (a == "--save" && i + 1 < argc) save_dir = argv[++i];
    else if (a == "--frames" && i + 1 < argc) {
      for (char* p = argv[++i]; *p != 0;) {
        char* end = nullptr;
        unsigned long v = std::strtoul(p, &end, 10);
        if (end == p || v == 0) break;
        g_frames.push_back(static_cast<std::uint32_t>(v));
        p = *end == ',' ? end + 1 : end;
      }
    }
    else {
      std::fprintf(stderr,
                   "usage: pdpolicy_sim [--quick] [--refs N] [--trace FILE]... [--no-record] [--save DIR] [--frames N,..]\n"
                   "  FILE: text, one page number per line (decimal or 0x..) or valgrind lackey lines;\n"
                   "        or binary: \"PDTRACE1\" then little-endian uint64 page numbers\n");
      return 2;
    }
  }
  if (quick && !cap_set) cap = 2'000'000;
  const double rec_seconds = quick ? 20.0 : 300.0;
  std::uint64_t t0 = bench::now_ns();
  std::printf("pdpolicy_sim: vmrt's replacement policies (real vm_pdpolicy code) vs LRU and OPT; faults per run\n");
  std::printf("policies: clock = FreeBSD two-queue CLOCK (inactive target 33%%), -iN = inactive target N%%, "
              "clock1 = one-handed second chance, 2q = new pages enter inactive\n");

  if (!selfcheck()) {
    std::printf("FAIL selfcheck: the simulator's OPT or LRU is wrong\n");
    return 1;
  }
  std::vector<trace> traces;
  if (record) {
    if (!have_valgrind()) {
      std::printf("SKIP real-program traces: valgrind is not installed (scripts/setup.sh installs it); "
                  "synthetic traces only\n");
    } else {
      char tmpl[] = "/tmp/pdpolicy_sim.XXXXXX";
      char* dir = mkdtemp(tmpl);
      if (dir == nullptr) {
        std::perror("mkdtemp");
        return 1;
      }
      std::string d = dir;
      // Inputs for the programs: a python script; 256 KiB of compressible text for xz.
      {
        FILE* f = std::fopen((d + "/work.py").c_str(), "w");
        std::fputs("import json\n"
                   "d = {i: str(i) * 3 for i in range(40000)}\n"
                   "s = sorted(d.values(), key=lambda v: v[::-1])\n"
                   "j = json.loads(json.dumps(d))\n"
                   "print(len(s), len(j))\n",
                   f);
        std::fclose(f);
        f = std::fopen((d + "/input.txt").c_str(), "w");
        std::mt19937 rng(1);
        static const char* words[] = {"page", "frame", "object", "shadow", "pager", "fault", "queue", "swap",
                                      "clock", "hand",  "active", "inactive", "laundry", "free", "wire", "map"};
        for (int k = 0; k < 40000; ++k) std::fprintf(f, "%s%c", words[rng() % 16], k % 12 == 11 ? '\n' : ' ');
        std::fclose(f);
      }
      struct prog {
        const char* name;
        std::vector<std::string> argv;
      };
      std::vector<prog> progs = {
          {"xz", {"xz", "-6", "-c", "-k", "input.txt"}},
          {"python", {"python3", "work.py"}},
          {"sqlite", {"sqlite3", ":memory:",
                      "create table t(a integer primary key, b); with recursive c(x) as (select 1 union all "
                      "select x+1 from c where x<50000) insert into t select x, hex(randomblob(40)) from c; "
                      "create index tb on t(b); select count(*) from t where b like 'A%';"}},
      };
      if (quick) progs.pop_back();  // two real programs in --quick
      for (auto& p : progs) {
        // Debian's binary, not a wrapper on PATH (a pyenv shim is a shell script: valgrind
        // would trace the shell, not the program it starts).
        std::string abs = "/usr/bin/" + p.argv[0];
        if (access(abs.c_str(), X_OK) == 0) p.argv[0] = abs;
        trace t;
        if (record_lackey(p.argv, p.name, cap, rec_seconds, d, &t)) traces.push_back(std::move(t));
      }
      std::string rm = "rm -rf '" + d + "'";
      if (std::system(rm.c_str()) != 0) std::fprintf(stderr, "pdpolicy_sim: could not remove %s\n", d.c_str());
    }
  }
  traces.push_back(synth_loop(1000, quick ? 100 : 300));
  traces.push_back(synth_zipf_scan(800, 3000, quick ? 40 : 120, 20000));
  traces.push_back(synth_random(1000, quick ? 300000 : 1000000));
  for (auto& f : files) {
    trace t;
    if (load_trace_file(f, cap, &t)) traces.push_back(std::move(t));
    else return 1;
  }
  std::printf("recording/generating took %.1f s\n", (bench::now_ns() - t0) / 1e9);
  if (!save_dir.empty())
    for (auto& t : traces)
      if (!save_trace(t, save_dir)) std::fprintf(stderr, "pdpolicy_sim: cannot write into %s\n", save_dir.c_str());

  std::vector<summary> sums;
  for (auto& t : traces) {
    if (t.distinct < 2) {
      std::printf("SKIP trace %s: only %u distinct pages\n", t.name.c_str(), t.distinct);
      continue;
    }
    sums.push_back(run_trace(t));
  }

  if (g_frames.empty())
    std::printf("\n== geometric mean over memory sizes %u/%u/%u/%u%% of distinct pages: faults / OPT (faults / LRU)\n",
                kSizesPct[0], kSizesPct[1], kSizesPct[2], kSizesPct[3]);
  else
    std::printf("\n== geometric mean over the --frames sizes: faults / OPT (faults / LRU)\n");
  std::printf("%-12s", "trace");
  for (const auto& p : kPolicies) std::printf(" %15s", p.name);
  std::printf("\n");
  for (auto& s : sums) {
    std::printf("%-12s", s.trace.c_str());
    for (std::size_t k = 0; k < kNPol; ++k) std::printf("   %5.3f (%5.3f)", s.over_opt[k], s.over_lru[k]);
    std::printf("\n");
  }
  std::printf("total time %.1f s\n", (bench::now_ns() - t0) / 1e9);
  for (auto& [name, v] : g_size_metrics) bench::print_metric(name, v);
  for (auto& s : sums) {
    for (std::size_t k = 0; k < kNPol - 1; ++k) {
      std::string pn = kPolicies[k].name;
      for (char& c : pn) c = c == '-' ? '_' : c;
      bench::print_metric("metric pdpol_" + pn + "_over_opt_" + s.trace, s.over_opt[k]);
      if (k + 2 < kNPol) bench::print_metric("metric pdpol_" + pn + "_over_lru_" + s.trace, s.over_lru[k]);
      if (kPolicies[k].vmrt)
        bench::print_metric("metric pdpol_" + pn + "_reffaults_per_fault_" + s.trace, s.ref_per_fault[k]);
    }
  }
  return 0;
}
