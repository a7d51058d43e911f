// frame_probe — host-only measurement of the ways the runtime can back a first touch
// with physmem frames, to choose pmap/physmem strategies (no vmrt code involved).
//
// Each mode touches N pages (one write per page) of a reserved PROT_NONE region; the
// memfd modes map `run` contiguous frames per host mmap(MAP_FIXED|MAP_SHARED), as a
// fault-around of `run` pages would.  Reported: µs per page, median of reps, beside
// plain anonymous memory (the host kernel's own first touch).
//
//   anon           plain anonymous mmap, first touch (the reference)
//   fresh          memfd frames never allocated (hole-punched): each touch is a host shmem fault
//   fresh+populate same, runs mapped with MAP_POPULATE
//   resident       frames allocated and resident in the memfd, runs mapped without populate
//   zero+populate  resident frames zeroed through a direct map, then mapped with MAP_POPULATE
//                  (a recycled-frame pool: what vmrt can do on reuse)
//   fresh+popread  never-allocated frames, runs mapped then madvise(MADV_POPULATE_READ)
//   zero+popread   resident frames zeroed through the direct map (memset), mapped, then
//                  MADV_POPULATE_READ: shmem has no write-notify, so the PTEs come out
//                  writable and the touch takes no fault (what vmrt's pmap does)
//   pwrite+popread resident frames zeroed with pwrite(2) from a zero buffer (no direct-map
//                  PTEs), mapped, MADV_POPULATE_READ

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include <fcntl.h>
#include <linux/falloc.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

namespace {

constexpr std::size_t kPage = 4096;

std::uint64_t now_ns() {
  timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return std::uint64_t(t.tv_sec) * 1000000000ull + std::uint64_t(t.tv_nsec);
}

#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22
#endif

enum mode { anon, fresh, fresh_populate, resident, zero_populate, fresh_popread, zero_popread, pwrite_popread, nmodes };
const char* const k_names[nmodes] = {"anon",          "fresh",         "fresh+populate", "resident",
                                     "zero+populate", "fresh+popread", "zero+popread",   "pwrite+popread"};

}  // namespace

int main(int argc, char** argv) {
  std::size_t mib = 256, run = 16;
  int reps = 5;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--mib") && i + 1 < argc) mib = std::strtoul(argv[++i], nullptr, 10);
    else if (!std::strcmp(argv[i], "--run") && i + 1 < argc) run = std::strtoul(argv[++i], nullptr, 10);
    else if (!std::strcmp(argv[i], "--reps") && i + 1 < argc) reps = std::atoi(argv[++i]);
    else {
      std::printf("usage: frame_probe [--mib N] [--run PAGES] [--reps N]\n");
      return std::strcmp(argv[i], "--help") == 0 ? 0 : 2;
    }
  }
  if (run < 1) run = 1;
  const std::size_t pages = mib * 1024 * 1024 / kPage, bytes = pages * kPage;
  int fd = memfd_create("frame_probe", 0);
  if (fd < 0 || ftruncate(fd, off_t(bytes)) != 0) {
    std::perror("memfd");
    return 1;
  }
  char* direct = static_cast<char*>(mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0));
  if (direct == MAP_FAILED) {
    std::perror("direct map");
    return 1;
  }
  static const char zeros[16 * kPage] = {};
  std::vector<double> us[nmodes];
  // Interleave modes per repetition.
  for (int r = 0; r < reps; ++r) {
    for (int m = 0; m < nmodes; ++m) {
      // Set the pool up for this mode (untimed).
      if (m == fresh || m == fresh_populate || m == fresh_popread)
        fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, off_t(bytes));
      if (m == resident || m == zero_populate || m == zero_popread || m == pwrite_popread) {
        // Make every frame resident and dirty (a recycled frame), untimed.
        for (std::size_t i = 0; i < pages; ++i) direct[i * kPage + 17] = 1;
      }
      char* reg = static_cast<char*>(
          mmap(nullptr, bytes, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0));
      if (reg == MAP_FAILED) return 1;
      std::uint64_t t0 = now_ns();
      if (m == anon) {
        char* p = static_cast<char*>(mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
        for (std::size_t i = 0; i < pages; ++i) static_cast<volatile char*>(p)[i * kPage] = 1;
        t0 = now_ns() - t0;
        munmap(p, bytes);
      } else {
        int pop = (m == fresh_populate || m == zero_populate) ? MAP_POPULATE : 0;
        for (std::size_t i = 0; i < pages; i += run) {
          std::size_t n = std::min(run, pages - i);
          if (m == zero_populate || m == zero_popread) std::memset(direct + i * kPage, 0, n * kPage);
          if (m == pwrite_popread) {
            for (std::size_t k = 0; k < n; k += 16) {
              std::size_t c = std::min<std::size_t>(16, n - k);
              if (pwrite(fd, zeros, c * kPage, off_t((i + k) * kPage)) != ssize_t(c * kPage)) return 1;
            }
          }
          if (mmap(reg + i * kPage, n * kPage, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED | pop, fd,
                   off_t(i * kPage)) == MAP_FAILED) {
            std::perror("mmap run");
            return 1;
          }
          if (m == fresh_popread || m == zero_popread || m == pwrite_popread)
            madvise(reg + i * kPage, n * kPage, MADV_POPULATE_READ);
          for (std::size_t j = i; j < i + n; ++j) static_cast<volatile char*>(reg)[j * kPage] = 1;
        }
        t0 = now_ns() - t0;
      }
      munmap(reg, bytes);
      us[m].push_back(double(t0) / 1000.0 / double(pages));
    }
  }
  std::printf("frame_probe: %zu MiB, runs of %zu pages, %d reps (median us per page; rep 0 in parentheses)\n", mib,
              run, reps);
  double ref = 0;
  for (int m = 0; m < nmodes; ++m) {
    std::vector<double> v = us[m];
    double first = v[0];
    std::sort(v.begin(), v.end());
    double med = v[v.size() / 2];
    if (m == anon) ref = med;
    std::printf("  %-15s %7.3f  (%7.3f)  anon/this %.2f\n", k_names[m], med, first, ref / med);
  }
  return 0;
}
