// vm_fds.cpp — the descriptors vmrt keeps open in the program's table (see vm_fds.h).
#include "vm/vm_fds.h"

#include "vm/vm_types.h"

#include <atomic>
#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

namespace vmrt {
namespace {

constexpr int kBelowLimit = 64;    // kept descriptors sit this far below the soft limit...
constexpr int kLowestTop = 64;     // ...but never below this (a tiny limit: left where they are)
// fd + 1; 0 = free entry.  On the fork data page: a shell child closes descriptors.
VMRT_FORK_DATA constinit std::atomic<int> g_kept[kVmFdMax] = {};

// The lowest number a kept descriptor may take; -1 when the limit is too small to move.
int top_of_table() {
  rlimit rl{};
  if (::getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY) return -1;
  long lim = static_cast<long>(rl.rlim_cur) - kBelowLimit;
  return lim >= kLowestTop ? static_cast<int>(lim) : -1;
}

}  // namespace

int vm_fd_keep(int fd) {
  if (fd < 0) return fd;
  int top = top_of_table();
  if (top >= 0 && fd < top) {
    int hi = ::fcntl(fd, F_DUPFD_CLOEXEC, top);
    if (hi >= 0) {
      ::close(fd);
      fd = hi;
    }
  }
  for (std::atomic<int>& k : g_kept) {
    int expected = 0;
    if (k.compare_exchange_strong(expected, fd + 1, std::memory_order_acq_rel)) break;
  }
  return fd;
}

void vm_fd_close(int fd) {
  if (fd < 0) return;
  for (std::atomic<int>& k : g_kept) {
    int expected = fd + 1;
    if (k.compare_exchange_strong(expected, 0, std::memory_order_acq_rel)) break;
  }
  ::close(fd);
}

VMRT_FORK_TEXT bool vm_fd_is_kept(int fd) {
  if (fd < 0) return false;
  for (const std::atomic<int>& k : g_kept)
    if (k.load(std::memory_order_acquire) == fd + 1) return true;
  return false;
}

unsigned vm_fd_kept_in(unsigned first, unsigned last, int* out, unsigned max) {
  unsigned n = 0;
  for (const std::atomic<int>& k : g_kept) {
    int v = k.load(std::memory_order_acquire) - 1;
    if (v < 0 || static_cast<unsigned>(v) < first || static_cast<unsigned>(v) > last || n == max) continue;
    unsigned i = n++;
    while (i > 0 && out[i - 1] > v) {  // insertion: ascending
      out[i] = out[i - 1];
      --i;
    }
    out[i] = v;
  }
  return n;
}

}  // namespace vmrt
