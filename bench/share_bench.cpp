// share_bench.cpp — moving a message from one vmspace to another: copy (memcpy) against
// page loanout, page transfer and map entry passing (runtime/vmrt.h "sharing between
// address spaces"), for message sizes 64 B .. 64 MB; then the zero-copy channel
// (runtime/vmrt_channel.h) against pipe(2) and a shared-memory ring.
//
// Every method is timed end to end, one message per round:
//  copy      memcpy into the receiver's (resident) buffer, the receiver reads it;
//  loan      vmrt_loan, the receiver reads its view, vmrt_unloan, the sender writes each page
//            again (its pages were copy-on-write during the loan: one write fault a page);
//  transfer  vmrt_transfer (sender's range zero-filled), the receiver reads, vmrt_munmap,
//            the sender writes each page again (zero-fill faults: its pages left);
//  extract   vmrt_extract COPY (copy-on-write map entry passing), the receiver reads,
//            vmrt_munmap, the sender writes each page again (needs-copy write faults).
// "Reads" = one 8-byte load per 64-byte line of the message: the receiver consumes it.  The
// zero-copy methods work on whole pages: a 64-byte message lends, moves or passes one page.
// The round's phases (call, receiver reads, teardown, sender rewrite) are printed for 64 KiB
// and 1 MiB.  Medians over the rounds; ratios against copy in the same run; the crossovers (the smallest
// size from which a method stays at or below copy) as `metric` lines; a plot of time per
// byte against size (gnuplot, SVG and PNG) in --out DIR.
//
//   share_bench [--quick] [--out DIR] [--no-chart]
#include <fcntl.h>
#include <pthread.h>
#include <sys/stat.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "bench_common.h"
#include "runtime/vmrt.h"
#include "runtime/vmrt_channel.h"

namespace {

constexpr size_t kPage = 4096;
constexpr size_t kMaxMsg = size_t{64} << 20;

struct config {
  bool quick = false;
  bool chart = true;
  std::string out = "share_bench.out";
} g_cfg;

volatile std::uint64_t g_sink;

size_t round_page(size_t n) { return (n + kPage - 1) & ~(kPage - 1); }

// The receiver reads the message: one load per cache line.
void consume(const char* p, size_t n) {
  std::uint64_t s = 0;
  for (size_t i = 0; i < n; i += 64) s += *reinterpret_cast<const volatile std::uint64_t*>(p + i);
  g_sink = g_sink + s;
}
// The sender produces its next message in place: one write per page (makes it writable and
// resident again after a loan, a transfer or an extract).
void rewrite(char* p, size_t n) {
  for (size_t i = 0; i < n; i += kPage) p[i] = static_cast<char>(i >> 12);
}

int rounds_for(size_t sz) {
  int r = sz <= (64u << 10) ? 200 : sz <= (1u << 20) ? 40 : sz <= (4u << 20) ? 12 : sz <= (16u << 20) ? 6 : 4;
  if (g_cfg.quick) r = r >= 40 ? r / 4 : r > 3 ? r / 2 : r;
  return r < 3 ? 3 : r;
}

template <class F>
double median_us(int rounds, F f) {
  std::vector<double> v;
  f();  // warm-up round
  for (int i = 0; i < rounds; ++i) {
    std::uint64_t t0 = bench::now_ns();
    if (!f()) return NAN;
    v.push_back((bench::now_ns() - t0) / 1000.0);
  }
  return bench::median(v);
}

enum method { M_COPY, M_LOAN, M_TRANSFER, M_EXTRACT, M_COUNT };
constexpr const char* kMethodName[M_COUNT] = {"copy", "loan", "transfer", "extract"};

// One round of a zero-copy method m on a page-multiple message of sz bytes at src (in a)
// to b: the call, the receiver's reads, the teardown, the sender's rewrite.  ph (when not
// null) gets each phase's nanoseconds.  False when a call fails (errno set).
bool zero_copy_round(int m, vmrt_vmspace* a, vmrt_vmspace* b, char* src, size_t sz, size_t pg, std::uint64_t* ph) {
  std::uint64_t t0 = bench::now_ns();
  void* r = m == M_LOAN       ? vmrt_loan(a, src, pg, b, nullptr)
            : m == M_TRANSFER ? vmrt_transfer(a, src, pg, b, nullptr, VMRT_TRANSFER_ZERO)
                              : vmrt_extract(a, src, pg, b, nullptr, VMRT_EXTRACT_COPY);
  if (r == VMRT_MAP_FAILED) return false;
  std::uint64_t t1 = bench::now_ns();
  consume(static_cast<const char*>(r), sz);
  std::uint64_t t2 = bench::now_ns();
  if ((m == M_LOAN ? vmrt_unloan(b, r, pg) : vmrt_munmap(b, r, pg)) != 0) return false;
  std::uint64_t t3 = bench::now_ns();
  rewrite(src, pg);
  if (ph != nullptr) {
    ph[0] = t1 - t0;
    ph[1] = t2 - t1;
    ph[2] = t3 - t2;
    ph[3] = bench::now_ns() - t3;
  }
  return true;
}

// A trap in the bench is a vmrt bug: say where, with the VM's counters, and stop.
void on_trap(const vmrt_trap* t, void*) {
  std::fprintf(stderr, "share_bench: trap at %p access %d reason %d\n", t->addr, t->access, static_cast<int>(t->reason));
  vmrt_report_vmstat(2);
  _exit(3);
}

void die(const char* what) {
  std::perror(what);
  std::exit(1);
}


enum channel_method { C_CHANNEL, C_CHANNEL_ZC, C_PIPE, C_SHMRING, C_COUNT };

// The shared-memory ring: a MAP_SHARED region the sender copies into and the receiver reads
// in place, in chunks of at most its size (a one-copy transport between two processes).
constexpr size_t kShmRing = size_t{4} << 20;

bool write_file(const std::string& path, const std::string& s) {
  FILE* f = std::fopen(path.c_str(), "w");
  if (f == nullptr) return false;
  std::fwrite(s.data(), 1, s.size(), f);
  return std::fclose(f) == 0;
}

void write_chart(const std::vector<size_t>& sizes, const std::vector<std::vector<double>>& t) {
  std::string dat = "size copy loan transfer extract\n";
  for (size_t i = 0; i < sizes.size(); ++i) {
    dat += std::to_string(sizes[i]);
    for (int m = 0; m < M_COUNT; ++m) {
      char b[64];
      std::snprintf(b, sizeof b, " %.6f", t[i][m] * 1000.0 / static_cast<double>(sizes[i]));
      dat += b;
    }
    dat += "\n";
  }
  std::string dpath = g_cfg.out + "/share.dat";
  write_file(dpath, dat);
  std::string body =
      "set title 'share_bench: one message from one vmspace to another, end to end (lower is better)'\n"
      "set logscale xy\nset grid\nset key top right\nset xlabel 'message size (bytes)'\n"
      "set ylabel 'time per byte (ns)'\nset format x '%.0s%cB'\n"
      "plot for [c=2:5] '" + dpath + "' using 1:c with linespoints title columnheader(c)\n";
  std::string gp = "set terminal svg size 1000,650 dynamic noenhanced font 'sans,11'\nset output '" + g_cfg.out +
                   "/share.svg'\n" + body + "set terminal pngcairo size 1000,650 noenhanced font 'sans,10'\nset output '" +
                   g_cfg.out + "/share.png'\n" + body;
  if (bench::run_gnuplot(g_cfg.out + "/share.gp", gp))
    std::printf("chart: %s/share.svg, %s/share.png\n", g_cfg.out.c_str(), g_cfg.out.c_str());
}

// The smallest size from which method m's median stays at or below copy's (0: never).
size_t crossover(const std::vector<size_t>& sizes, const std::vector<std::vector<double>>& t, int m, int base) {
  size_t x = 0;
  for (size_t i = sizes.size(); i-- > 0;) {
    if (!(t[i][m] <= t[i][base])) break;
    x = sizes[i];
  }
  return x;
}

}  // namespace

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--quick") g_cfg.quick = true;
    else if (a == "--no-chart") g_cfg.chart = false;
    else if (a == "--out") g_cfg.out = bench::option_value(argc, argv, i, "share_bench");
    else {
      std::fprintf(stderr,
                   "usage: share_bench [--quick] [--out DIR] [--no-chart]\n"
                   "  copy vs loan vs transfer vs extract between two vmspaces, 64 B .. 64 MB, then the\n"
                   "  zero-copy channel vs pipe(2) vs a shared-memory ring; chart in DIR (share_bench.out)\n");
      return 2;
    }
  }
  std::uint64_t t_start = bench::now_ns();
  if (vmrt_init() != 0) die("vmrt_init");
  vmrt_set_trap_hook(on_trap, nullptr);
  std::printf("share_bench: trap backend %s%s\n", vmrt_trap_backend(), g_cfg.quick ? ", --quick" : "");
  vmrt_vmspace* a = vmrt_vmspace_create(size_t{512} << 20);
  vmrt_vmspace* b = vmrt_vmspace_create(size_t{512} << 20);
  if (a == nullptr || b == nullptr) die("vmrt_vmspace_create");
  // The sender's message buffer and the receiver's copy buffer: resident, reused.
  auto* src = static_cast<char*>(vmrt_mmap(a, nullptr, kMaxMsg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  auto* dst = static_cast<char*>(vmrt_mmap(b, nullptr, kMaxMsg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  if (src == VMRT_MAP_FAILED || dst == VMRT_MAP_FAILED) die("vmrt_mmap");
  std::memset(src, 'm', kMaxMsg);
  std::memset(dst, 0, kMaxMsg);

  std::vector<size_t> sizes;
  for (size_t s = 64; s <= kMaxMsg; s *= 4) sizes.push_back(s);
  std::vector<std::vector<double>> t(sizes.size(), std::vector<double>(M_COUNT, NAN));

  std::printf("\n%10s %6s %12s %12s %12s %12s   %8s %8s %8s\n", "size", "rounds", "copy us", "loan us", "transfer us",
              "extract us", "loan/cp", "xfer/cp", "extr/cp");
  for (size_t i = 0; i < sizes.size(); ++i) {
    const size_t sz = sizes[i], pg = round_page(sz);
    const int rounds = rounds_for(sz);
    t[i][M_COPY] = median_us(rounds, [&] {
      std::memcpy(dst, src, sz);
      consume(dst, sz);
      return true;
    });
    for (int m = M_LOAN; m < M_COUNT; ++m)
      t[i][m] = median_us(rounds, [&] { return zero_copy_round(m, a, b, src, sz, pg, nullptr); });
    for (int m = 0; m < M_COUNT; ++m)
      if (std::isnan(t[i][m])) std::printf("note: %s failed at %zu bytes: %s\n", kMethodName[m], sz, std::strerror(errno));
    std::printf("%10zu %6d %12.2f %12.2f %12.2f %12.2f   %8.2f %8.2f %8.2f\n", sz, rounds, t[i][M_COPY], t[i][M_LOAN],
                t[i][M_TRANSFER], t[i][M_EXTRACT], t[i][M_LOAN] / t[i][M_COPY], t[i][M_TRANSFER] / t[i][M_COPY],
                t[i][M_EXTRACT] / t[i][M_COPY]);
    std::fflush(stdout);
  }
  std::printf("(ratios: method / copy; below 1 the method is faster)\n");
  // Where a round goes, at 1 MiB and 64 KiB: the call, the receiver's reads, the teardown,
  // the sender's rewrite (medians of 9).
  for (size_t sz : {size_t{64} << 10, size_t{1} << 20}) {
    for (int m = M_LOAN; m < M_COUNT; ++m) {
      std::vector<double> ph[4];
      for (int r = 0; r < 10; ++r) {
        std::uint64_t ns[4];
        if (!zero_copy_round(m, a, b, src, sz, sz, ns)) die(kMethodName[m]);
        if (r == 0) continue;  // warm-up
        for (int k = 0; k < 4; ++k) ph[k].push_back(ns[k] / 1e3);
      }
      std::printf("  %-8s %8zu bytes: call %.1f us, receiver reads %.1f us, teardown %.1f us, sender rewrite %.1f us\n",
                  kMethodName[m], sz, bench::median(ph[0]), bench::median(ph[1]), bench::median(ph[2]),
                  bench::median(ph[3]));
    }
  }
  for (int m = M_LOAN; m < M_COUNT; ++m) {
    size_t x = crossover(sizes, t, m, M_COPY);
    std::printf("crossover %s vs copy: %s%zu bytes\n", kMethodName[m], x == 0 ? "none up to " : "", x == 0 ? kMaxMsg : x);
    bench::print_metric(std::string("share_crossover_") + kMethodName[m] + "_bytes", static_cast<double>(x));
  }
  for (size_t i = 0; i < sizes.size(); ++i)
    if (sizes[i] == (size_t{1} << 20) || sizes[i] == (size_t{64} << 20) || sizes[i] == 4096 || sizes[i] == 64) {
      for (int m = M_LOAN; m < M_COUNT; ++m)
        bench::print_metric(std::string("share_") + kMethodName[m] + "_over_copy_" + std::to_string(sizes[i]),
                            t[i][m] / t[i][M_COPY]);
    }
  if (g_cfg.chart) {
    if (mkdir(g_cfg.out.c_str(), 0755) != 0 && errno != EEXIST) std::perror(g_cfg.out.c_str());
    else write_chart(sizes, t);
  }

  // ---- the channel against pipe(2) and a shared-memory ring ------------------------------
  vmrt_channel* ch = vmrt_channel_create(a, b);
  vmrt_channel* zc = vmrt_channel_create(a, b);  // zero-copy forced: whole pages always lent
  if (ch == nullptr || zc == nullptr) die("vmrt_channel_create");
  vmrt_channel_set_copy_max(zc, 0);
  int fds[2];
  if (pipe(fds) != 0) die("pipe");
  int pipe_sz = fcntl(fds[1], F_SETPIPE_SZ, 1 << 20);
  if (pipe_sz < 0) pipe_sz = 65536;
  void* ring = mmap(nullptr, kShmRing, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (ring == MAP_FAILED) die("mmap ring");
  std::memset(ring, 0, kShmRing);
  std::printf("\nchannel (default: copy up to %zu bytes, loan above), channel-zc (every whole-page message lent) vs "
              "pipe(2)\n(%d-byte pipe, one thread alternating write and read) vs a shared-memory ring (%zu bytes, "
              "one copy)\n",
              vmrt_channel_copy_max(ch), pipe_sz, kShmRing);
  std::printf("%10s %12s %12s %12s %12s   %8s %8s %8s\n", "size", "channel us", "chan-zc us", "pipe us", "shm-ring us",
              "ch/pipe", "ch/ring", "zc/pipe");
  std::vector<std::vector<double>> ct(sizes.size(), std::vector<double>(C_COUNT, NAN));
  for (size_t i = 0; i < sizes.size(); ++i) {
    const size_t sz = sizes[i];
    const int rounds = rounds_for(sz);
    for (int k : {C_CHANNEL, C_CHANNEL_ZC}) {
      vmrt_channel* c = k == C_CHANNEL ? ch : zc;
      ct[i][k] = median_us(rounds, [&] {
        vmrt_msg m;
        if (vmrt_channel_send(c, src, sz, 0) != 0 || vmrt_channel_recv(c, &m) != 0) return false;
        consume(static_cast<const char*>(m.data), m.len);
        if (vmrt_channel_done(c, &m) != 0) return false;
        if (m.how != VMRT_CHANNEL_COPIED) rewrite(src, round_page(sz));
        return true;
      });
    }
    ct[i][C_PIPE] = median_us(rounds, [&] {
      for (size_t off = 0; off < sz;) {
        size_t n = sz - off < static_cast<size_t>(pipe_sz) ? sz - off : static_cast<size_t>(pipe_sz);
        if (write(fds[1], src + off, n) != static_cast<ssize_t>(n)) return false;
        for (size_t got = 0; got < n;) {
          ssize_t r = read(fds[0], dst + off + got, n - got);
          if (r <= 0) return false;
          got += static_cast<size_t>(r);
        }
        off += n;
      }
      consume(dst, sz);
      return true;
    });
    ct[i][C_SHMRING] = median_us(rounds, [&] {
      for (size_t off = 0; off < sz; off += kShmRing) {
        size_t n = sz - off < kShmRing ? sz - off : kShmRing;
        std::memcpy(ring, src + off, n);
        consume(static_cast<const char*>(ring), n);
      }
      return true;
    });
    std::printf("%10zu %12.2f %12.2f %12.2f %12.2f   %8.2f %8.2f %8.2f\n", sz, ct[i][C_CHANNEL], ct[i][C_CHANNEL_ZC],
                ct[i][C_PIPE], ct[i][C_SHMRING], ct[i][C_CHANNEL] / ct[i][C_PIPE], ct[i][C_CHANNEL] / ct[i][C_SHMRING],
                ct[i][C_CHANNEL_ZC] / ct[i][C_PIPE]);
    std::fflush(stdout);
  }
  for (size_t i = 0; i < sizes.size(); ++i)
    if (sizes[i] == 4096 || sizes[i] == (size_t{1} << 20) || sizes[i] == (size_t{64} << 20)) {
      bench::print_metric("share_channel_over_pipe_" + std::to_string(sizes[i]), ct[i][C_CHANNEL] / ct[i][C_PIPE]);
      bench::print_metric("share_channel_over_shmring_" + std::to_string(sizes[i]), ct[i][C_CHANNEL] / ct[i][C_SHMRING]);
      bench::print_metric("share_channel_zc_over_pipe_" + std::to_string(sizes[i]), ct[i][C_CHANNEL_ZC] / ct[i][C_PIPE]);
    }
  vmrt_channel_destroy(ch);
  vmrt_channel_destroy(zc);
  vmrt_vmspace_destroy(b);
  vmrt_vmspace_destroy(a);
  std::printf("pages on loan at the end: %lld (0 expected); loans made %lld, loan breaks %lld\n",
              vmrt_counter("pages on loan"), vmrt_counter("loans made"), vmrt_counter("loan breaks"));
  std::printf("total %.1f s\n", (bench::now_ns() - t_start) / 1e9);
  return 0;
}
