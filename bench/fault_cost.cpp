// fault_cost — what a page fault costs on this host against populating the same pages in
// one system call (MADV_POPULATE_WRITE / _READ, Linux 5.14+), side by side.
//
// runtime/rt_populate.h rests on this: on the PVM guests these machines are, a fault is an
// exception round trip through the hypervisor (15-50 us), while populating fills page
// tables from inside the kernel.  Rows (per page, median of the reps):
//   zero-fill     first write to fresh anonymous memory, page by page / one populate call
//   cow-after-fork first write to a private page after fork() (the child alive, so each
//                 write copies) / one populate call over the same pages
//   file-read     first read of a page-cache file mapping / one MADV_POPULATE_READ
// Then `metric fault_cost_<row>_fault_us`, `..._populate_us` and `..._ratio` (fault /
// populate) lines.
//
// A second table: what a fork child's first read of a page costs when nothing faults (the
// page is present in the parent, its page-table entry copied by the fork), against the same
// child reading it again: the hypervisor's shadow page tables make even that first access
// cost on these guests, which is why the fork path keeps what it touches on few pages
// (vm/vm_types.h, VMRT_FORK_*; scenario fork_pages).  Rows: pages side by side (`dense`) and
// one page per 2 MiB (`spread`: each in a page table of its own).  Metric lines
// `metric fault_cost_fork_read_<row>_first_us` and `..._again_us`.
//
//   fault_cost [--pages N] [--reps N]
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench/bench_common.h"

namespace {

using bench::median;
using bench::now_ns;
using bench::print_metric;

constexpr std::size_t kPage = 4096;

// Time one way of making n pages at p ready: per page, in microseconds.
double per_page_us(std::uint64_t t0, std::uint64_t t1, std::size_t n) {
  return static_cast<double>(t1 - t0) / 1e3 / static_cast<double>(n);
}

void touch_write(char* p, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) p[i * kPage] = 1;
}
unsigned touch_read(const char* p, std::size_t n) {
  unsigned s = 0;
  for (std::size_t i = 0; i < n; ++i) s += static_cast<unsigned char>(p[i * kPage]);
  return s;
}

volatile unsigned g_sink;  // the read row's sum: the reads are not optimised away

bool populate(void* p, std::size_t len, int advice) {
  if (madvise(p, len, advice) == 0) return true;
  std::fprintf(stderr, "fault_cost: madvise(MADV_POPULATE_%s): %s (Linux before 5.14?)\n",
               advice == MADV_POPULATE_WRITE ? "WRITE" : "READ", std::strerror(errno));
  return false;
}

// Zero-fill: the same mapping emptied with MADV_DONTNEED before each way.
bool zero_fill(char* p, std::size_t n, double* fault, double* pop) {
  madvise(p, n * kPage, MADV_DONTNEED);
  std::uint64_t t0 = now_ns();
  touch_write(p, n);
  std::uint64_t t1 = now_ns();
  madvise(p, n * kPage, MADV_DONTNEED);
  std::uint64_t t2 = now_ns();
  if (!populate(p, n * kPage, MADV_POPULATE_WRITE)) return false;
  std::uint64_t t3 = now_ns();
  *fault = per_page_us(t0, t1, n);
  *pop = per_page_us(t2, t3, n);
  return true;
}

// Copy-on-write after fork: a child that waits on a pipe keeps every page shared.
bool cow_after_fork(char* p, std::size_t n, double* fault, double* pop) {
  touch_write(p, n);
  double ways[2];
  for (int way = 0; way < 2; ++way) {
    int fds[2];
    if (pipe(fds) != 0) return false;
    pid_t c = fork();
    if (c < 0) return false;
    if (c == 0) {
      char b;
      close(fds[1]);
      (void)!read(fds[0], &b, 1);
      _exit(0);
    }
    close(fds[0]);
    std::uint64_t t0 = now_ns();
    bool ok = true;
    if (way == 0) touch_write(p, n);
    else ok = populate(p, n * kPage, MADV_POPULATE_WRITE);
    std::uint64_t t1 = now_ns();
    close(fds[1]);
    waitpid(c, nullptr, 0);
    if (!ok) return false;
    ways[way] = per_page_us(t0, t1, n);
  }
  *fault = ways[0];
  *pop = ways[1];
  return true;
}

// File read: a page-cache file mapped afresh for each way.
bool file_read(const char* path, std::size_t n, double* fault, double* pop) {
  int fd = open(path, O_RDONLY);
  if (fd < 0) return false;
  double ways[2];
  for (int way = 0; way < 2; ++way) {
    void* m = mmap(nullptr, n * kPage, PROT_READ, MAP_PRIVATE, fd, 0);
    if (m == MAP_FAILED) {
      close(fd);
      return false;
    }
    madvise(m, n * kPage, MADV_RANDOM);  // no fault-around: one fault a page, as a scattered reader
    std::uint64_t t0 = now_ns();
    bool ok = true;
    if (way == 0) g_sink = touch_read(static_cast<const char*>(m), n);
    else ok = populate(m, n * kPage, MADV_POPULATE_READ);
    std::uint64_t t1 = now_ns();
    munmap(m, n * kPage);
    if (!ok) {
      close(fd);
      return false;
    }
    ways[way] = per_page_us(t0, t1, n);
  }
  close(fd);
  *fault = ways[0];
  *pop = ways[1];
  return true;
}

// Read after fork: a child reads n pages present in its parent, `stride` pages apart, twice,
// and reports the two per-page times through a pipe.
bool read_after_fork(const char* p, std::size_t n, std::size_t stride, double* first, double* again) {
  int fds[2];
  if (pipe(fds) != 0) return false;
  pid_t c = fork();
  if (c < 0) return false;
  if (c == 0) {
    double t[2];
    for (double& x : t) {
      unsigned sum = 0;
      std::uint64_t t0 = now_ns();
      for (std::size_t i = 0; i < n; ++i) sum += static_cast<unsigned char>(p[i * stride * kPage]);
      x = per_page_us(t0, now_ns(), n);
      g_sink = sum;
    }
    _exit(write(fds[1], t, sizeof t) == static_cast<ssize_t>(sizeof t) ? 0 : 1);
  }
  close(fds[1]);
  double t[2];
  bool ok = read(fds[0], t, sizeof t) == static_cast<ssize_t>(sizeof t);
  close(fds[0]);
  int st;
  ok = waitpid(c, &st, 0) == c && WIFEXITED(st) && WEXITSTATUS(st) == 0 && ok;
  if (ok) *first = t[0], *again = t[1];
  return ok;
}

}  // namespace

int main(int argc, char** argv) {
  std::size_t pages = 256;
  int reps = 7;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--pages") == 0 && i + 1 < argc) pages = std::strtoul(argv[++i], nullptr, 10);
    else if (std::strcmp(argv[i], "--reps") == 0 && i + 1 < argc) reps = std::atoi(argv[++i]);
    else {
      std::fprintf(stderr, "usage: fault_cost [--pages N] [--reps N]\n");
      return 2;
    }
  }
  if (pages == 0 || reps < 1) return 2;
  char* p = static_cast<char*>(mmap(nullptr, pages * kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  if (p == MAP_FAILED) return 1;
  // The file for the file-read row: in the page cache after writing it.
  char path[] = "/tmp/fault_cost.XXXXXX";
  int fd = mkstemp(path);
  if (fd < 0) return 1;
  std::vector<char> page(kPage, 'x');
  for (std::size_t i = 0; i < pages; ++i)
    if (write(fd, page.data(), kPage) != static_cast<ssize_t>(kPage)) return 1;
  close(fd);

  struct row {
    const char* name;
    std::vector<double> fault, pop;
  } rows[] = {{"zero_fill", {}, {}}, {"cow_after_fork", {}, {}}, {"file_read", {}, {}}};
  for (int r = 0; r < reps; ++r) {
    double f, q;
    if (!zero_fill(p, pages, &f, &q)) return 1;
    rows[0].fault.push_back(f), rows[0].pop.push_back(q);
    if (!cow_after_fork(p, pages, &f, &q)) return 1;
    rows[1].fault.push_back(f), rows[1].pop.push_back(q);
    if (!file_read(path, pages, &f, &q)) return 1;
    rows[2].fault.push_back(f), rows[2].pop.push_back(q);
  }
  unlink(path);

  // The read-after-fork rows: pages written in the parent first (present, private).
  constexpr std::size_t kSpread = 512;  // pages per 2 MiB: one page-table page each
  char* q = static_cast<char*>(mmap(nullptr, pages * kSpread * kPage, PROT_READ | PROT_WRITE,
                                    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0));
  if (q == MAP_FAILED) return 1;
  struct fork_row {
    const char* name;
    std::size_t stride;
    std::vector<double> first, again;
  } frows[] = {{"dense", 1, {}, {}}, {"spread", kSpread, {}, {}}};
  for (fork_row& r : frows)
    for (std::size_t i = 0; i < pages; ++i) q[i * r.stride * kPage] = 1;
  for (int r = 0; r < reps; ++r)
    for (fork_row& fr : frows) {
      double a, b;
      if (!read_after_fork(q, pages, fr.stride, &a, &b)) return 1;
      fr.first.push_back(a), fr.again.push_back(b);
    }

  std::printf("%-16s %14s %14s %8s   (%zu pages, median of %d)\n", "row", "fault us/page", "populate us/pg", "ratio",
              pages, reps);
  for (const row& r : rows) {
    const double f = median(r.fault), q = median(r.pop);
    std::printf("%-16s %14.2f %14.2f %8.1f\n", r.name, f, q, q > 0 ? f / q : 0.0);
    print_metric(std::string("metric fault_cost_") + r.name + "_fault_us", f);
    print_metric(std::string("metric fault_cost_") + r.name + "_populate_us", q);
    print_metric(std::string("metric fault_cost_") + r.name + "_ratio", q > 0 ? f / q : 0.0);
  }
  std::printf("\n%-16s %14s %14s   (a fork child's reads of pages present in both processes)\n", "fork read",
              "first us/page", "again us/page");
  for (const fork_row& r : frows) {
    const double a = median(r.first), b = median(r.again);
    std::printf("%-16s %14.2f %14.2f\n", r.name, a, b);
    print_metric(std::string("metric fault_cost_fork_read_") + r.name + "_first_us", a);
    print_metric(std::string("metric fault_cost_fork_read_") + r.name + "_again_us", b);
  }
  return 0;
}
