// vm_fds.cpp — the descriptors vmrt keeps open in the program's table (see vm_fds.h).
//
// A move has to know when no thread can still use the old number.  Uses count themselves in
// one of two counters, chosen by the parity of a generation number; a move publishes the new
// number, advances the generation, and waits for the old parity's counter to drain.  A use
// that read the old number entered before the advance (sequentially consistent order:
// counter, generation re-checked, number read), so the move waits for it; a use that enters
// after the advance counts in the other counter and reads the new number.  Each move waits
// for its own generation, so a counter is empty again before the next advance reuses it.
//
// A use that sleeps in read(2) until another thread acts (vm_fd_wait_use) cannot be waited
// out that way: it takes an entry of its own (thread id, generation, number), and the move
// waits until /proc shows the thread asleep inside read of that number -- the system call
// took its reference to the file on entry, so the number may then change under it -- or the
// entry is left.
#include "vm/vm_fds.h"

#include "vm/vm_fork_store.h"
#include "vm/vm_sys.h"
#include "vm/vm_types.h"

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <fcntl.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace vmrt {
namespace {

constexpr int kBelowLimit = 64;    // kept descriptors sit this far below the soft limit...
constexpr int kLowestTop = 64;     // ...but never below this (a tiny limit: left where they are)
// ...and the limit counts as at most this: the kernel's table grows to the highest number in
// use, and every fork copies it.  At the top of a 20000 limit (this project's machines) a
// table of 32768 entries made a paged fork ~3 % slower; a container's 1048576 would make it
// 8 MiB a process.  A program that uses more numbers than this skips vmrt's few (the kernel
// hands out the lowest free one), and a dup2 onto one moves it (vm_fd_move).
constexpr long kLimitCap = 4096;
constexpr unsigned kParities = 2;  // the generation's parity picks a use counter

// Number + 1 per handle; 0 = free entry.  On the fork data page: a shell child closes
// descriptors, and close() looks here.
VMRT_FORK_DATA constinit std::atomic<int> g_kept[kVmFdMax] = {};
// Uses in flight per generation parity, the generation, and the move lock.
VMRT_FORK_DATA constinit std::atomic<int> g_uses[kParities] = {};
VMRT_FORK_DATA constinit std::atomic<unsigned> g_gen{0};
VMRT_FORK_DATA constinit std::atomic<bool> g_moving{false};
// The process whose table the numbers are in; 0 until the first keep.
VMRT_FORK_DATA constinit std::atomic<int> g_pid{0};

// The sleeping uses (vm_fd_wait_use): thread id (0 = free entry), generation, number (-1
// until read).
struct waiter {
  std::atomic<int> tid;
  std::atomic<unsigned> gen;
  std::atomic<int> fd;
};
// Only the userfaultfd handler threads sleep in a use: out of .bss (VMRT_COLD_BSS), which
// holds what every process's boot writes.
VMRT_COLD_BSS constinit waiter g_waiters[kVmFdWaitersMax] = {};
VMRT_FORK_DATA constinit std::atomic<bool> g_had_waiters{false};  // a fork child looks at them
// The calling thread's kernel id, cached (a waiting use is taken once per wait).
constinit thread_local __attribute__((tls_model("initial-exec"))) int t_tid = 0;

// The lowest number a kept descriptor may take; -1 when the limit is too small to move.
int top_of_table() {
  rlimit rl{};
  if (::getrlimit(RLIMIT_NOFILE, &rl) != 0) return -1;
  const long soft = rl.rlim_cur < static_cast<rlim_t>(kLimitCap) ? static_cast<long>(rl.rlim_cur) : kLimitCap;
  long lim = soft - kBelowLimit;
  return lim >= kLowestTop ? static_cast<int>(lim) : -1;
}

// The handle whose number is fd; -1 when none.
VMRT_FORK_TEXT int handle_of(int fd) {
  if (fd < 0) return -1;
  for (unsigned h = 0; h < kVmFdMax; ++h)
    if (g_kept[h].load(std::memory_order_acquire) == fd + 1) return static_cast<int>(h);
  return -1;
}

bool valid(int h) { return h >= 0 && static_cast<unsigned>(h) < kVmFdMax; }

// A close-on-exec duplicate of fd at the lowest free number >= from; -1 with errno.  The
// system call itself: the shim's fcntl answers EBADF for a kept descriptor.
int dup_at_least(int fd, int from) {
  return static_cast<int>(sys::inline_syscall(SYS_fcntl, fd, F_DUPFD_CLOEXEC, from));
}

// Decimal digits of v at p; the end.
char* put_dec(char* p, unsigned long v) {
  char tmp[24];
  int n = 0;
  do tmp[n++] = static_cast<char>('0' + v % 10);
  while ((v /= 10) != 0);
  while (n > 0) *p++ = tmp[--n];
  return p;
}

// Is thread tid asleep inside read(fd)?  /proc/self/task/TID/syscall names the system call
// a sleeping thread is in and its arguments ("0 0x1f ..." for read of fd 31), "running"
// otherwise.  False when it cannot tell (no /proc).
bool asleep_in_read(int tid, int fd) {
  char path[64] = "/proc/self/task/";
  char* e = put_dec(path + 16, static_cast<unsigned long>(tid));
  const char kTail[] = "/syscall";
  for (char c : kTail) *e++ = c;
  int f = static_cast<int>(sys::inline_syscall(SYS_openat, AT_FDCWD, reinterpret_cast<long>(path), O_RDONLY | O_CLOEXEC));
  if (f < 0) return false;
  char buf[128];
  long n = sys::inline_syscall(SYS_read, f, reinterpret_cast<long>(buf), sizeof buf - 1);
  sys::inline_syscall(SYS_close, f);
  if (n <= 0) return false;
  buf[n] = '\0';
  char* p = nullptr;
  long nr = std::strtol(buf, &p, 10);
  if (p == buf || nr != SYS_read || *p != ' ') return false;
  char* q = nullptr;
  unsigned long arg0 = std::strtoul(p + 1, &q, 16);
  return q != p + 1 && arg0 == static_cast<unsigned long>(fd);
}

}  // namespace

int vm_fd_keep(int fd) {
  if (fd < 0) return -1;
  if (g_pid.load(std::memory_order_relaxed) == 0) g_pid.store(static_cast<int>(::getpid()), std::memory_order_relaxed);
  int top = top_of_table();
  if (top >= 0 && fd < top) {
    int hi = dup_at_least(fd, top);
    if (hi >= 0) {
      ::close(fd);
      fd = hi;
    }
  }
  for (unsigned h = 0; h < kVmFdMax; ++h) {
    int expected = 0;
    if (g_kept[h].compare_exchange_strong(expected, fd + 1, std::memory_order_acq_rel)) return static_cast<int>(h);
  }
  ::close(fd);
  errno = EMFILE;
  return -1;
}

void vm_fd_close(int h) {
  if (!valid(h)) return;
  int fd = g_kept[h].exchange(0, std::memory_order_acq_rel) - 1;
  if (fd >= 0) ::close(fd);
}

int vm_fd_number(int h) { return valid(h) ? g_kept[h].load(std::memory_order_acquire) - 1 : -1; }

vm_fd_use::vm_fd_use(int h) {
  for (;;) {
    unsigned g = g_gen.load();
    g_uses[g % kParities].fetch_add(1);
    if (g_gen.load() == g) {
      parity_ = g % kParities;
      break;
    }
    g_uses[g % kParities].fetch_sub(1);  // a move advanced meanwhile: count in the new one
  }
  fd_ = valid(h) ? g_kept[h].load() - 1 : -1;
}

vm_fd_use::~vm_fd_use() { g_uses[parity_].fetch_sub(1, std::memory_order_release); }

vm_fd_wait_use::vm_fd_wait_use(int h) {
  if (t_tid == 0) t_tid = static_cast<int>(sys::inline_syscall(SYS_gettid));
  const int tid = t_tid;
  for (slot_ = 0;; slot_ = (slot_ + 1) % kVmFdWaitersMax) {
    int expected = 0;
    if (g_waiters[slot_].tid.compare_exchange_strong(expected, tid)) break;
    if (slot_ + 1 == kVmFdWaitersMax) sched_yield();
  }
  if (!g_had_waiters.load(std::memory_order_relaxed)) g_had_waiters.store(true);
  waiter& w = g_waiters[slot_];
  w.fd.store(-1);
  for (;;) {
    unsigned g = g_gen.load();
    w.gen.store(g);
    if (g_gen.load() == g) break;
  }
  fd_ = valid(h) ? g_kept[h].load() - 1 : -1;
  w.fd.store(fd_);
}

vm_fd_wait_use::~vm_fd_wait_use() {
  g_waiters[slot_].fd.store(-1, std::memory_order_relaxed);
  g_waiters[slot_].tid.store(0, std::memory_order_release);
}

int vm_fd_ioctl(int h, unsigned long request, void* arg) {
  vm_fd_use u(h);
  if (u.fd() < 0) {
    errno = EBADF;
    return -1;
  }
  return ::ioctl(u.fd(), request, arg);
}

int vm_fd_fcntl(int h, int cmd, long arg) {
  vm_fd_use u(h);
  if (u.fd() < 0) {
    errno = EBADF;
    return -1;
  }
  return static_cast<int>(sys::inline_syscall(SYS_fcntl, u.fd(), cmd, arg));
}

VMRT_FORK_TEXT bool vm_fd_is_kept(int fd) { return handle_of(fd) >= 0; }

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

bool vm_fd_table_ours() { return g_pid.load(std::memory_order_relaxed) == static_cast<int>(::getpid()); }

int vm_fd_move(int fd) {
  while (g_moving.exchange(true, std::memory_order_acquire)) sched_yield();
  int h = handle_of(fd);  // under the move lock: no other move changes it now
  if (h < 0) {
    g_moving.store(false, std::memory_order_release);
    errno = EBADF;
    return -1;
  }
  int top = top_of_table();
  int to = dup_at_least(fd, top >= 0 ? top : 0);
  if (to < 0 && top > 0) to = dup_at_least(fd, 0);  // the top is full: any free number
  if (to < 0) {
    g_moving.store(false, std::memory_order_release);
    errno = EMFILE;
    return -1;
  }
  // Publish, then wait out every use that may have read the old number.  (A close of the
  // handle meanwhile leaves `to` to its owner's close: compare, never overwrite a 0.)
  int expected = fd + 1;
  if (!g_kept[h].compare_exchange_strong(expected, to + 1)) ::close(to);
  unsigned g = g_gen.fetch_add(1);
  while (g_uses[g % kParities].load() != 0) sched_yield();
  for (waiter& w : g_waiters) {
    for (;;) {
      int tid = w.tid.load();
      if (tid == 0 || w.gen.load() != g) break;
      int wfd = w.fd.load();
      if (wfd >= 0 && (wfd != fd || asleep_in_read(tid, wfd))) break;  // another number: unaffected
      sched_yield();
    }
  }
  g_moving.store(false, std::memory_order_release);
  return 0;
}

VMRT_FORK_CHILD_TEXT void vm_fd_fork_child() {
  // Written only where set: this page is a copy-on-write fault in the child otherwise.
  for (std::atomic<int>& u : g_uses) fork_store(u, 0);
  fork_store(g_moving, false);
  fork_store(t_tid, 0);  // the forking thread has a new id in the child
  if (g_pid.load(std::memory_order_relaxed) != 0)
    g_pid.store(static_cast<int>(sys::inline_syscall(SYS_getpid)), std::memory_order_relaxed);
  if (g_had_waiters.load(std::memory_order_relaxed))
    for (waiter& w : g_waiters)
      fork_store(w.tid, 0);
}

}  // namespace vmrt
