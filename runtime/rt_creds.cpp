// rt_creds.cpp — machine threads follow the program's credentials (see rt_creds.h).
#include "runtime/rt_creds.h"

#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <linux/capability.h>
#include <fcntl.h>
#include <sched.h>
#include <time.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

#include "vm/vm_out.h"
#include "vm/vm_sys.h"

namespace vmrt::rt {
namespace {

// glibc's internal signal for set*id (nptl: SIGCANCEL is the first real-time signal,
// SIGSETXID the next; both are kept from the program, which sees SIGRTMIN above them).
constexpr int kSigSetxid = __SIGRTMIN + 1;
static_assert(kSigSetxid == 33, "glibc's SIGSETXID");

// The kernel's struct sigaction (rt_sigaction): glibc's sigaction() refuses its own
// internal signals, so the relay is installed with the system call.
struct kernel_sigaction {
  void (*handler)(int, siginfo_t*, void*);
  unsigned long flags;
  void (*restorer)();
  std::uint64_t mask;
};
constexpr long kSigsetBytes = sizeof(std::uint64_t);

// The calling thread is one of vmrt's machine threads.
thread_local __attribute__((tls_model("initial-exec"))) bool t_machine;
// glibc's SIGSETXID action, as found when the relay was installed [written once, before the
// relay is visible].
kernel_sigaction g_glibc;
std::atomic<bool> g_installed;

// A thread's capability sets (version 3: two words per set).
struct caps {
  __user_cap_data_struct d[_LINUX_CAPABILITY_U32S_3];
};
// tid 0: the calling thread.
bool get_caps(int tid, caps* c) {
  __user_cap_header_struct h{_LINUX_CAPABILITY_VERSION_3, tid};
  return sys::inline_syscall(SYS_capget, reinterpret_cast<long>(&h), reinterpret_cast<long>(c->d)) == 0;
}
void set_own_caps(const caps& c) {
  __user_cap_header_struct h{_LINUX_CAPABILITY_VERSION_3, 0};
  (void)sys::inline_syscall(SYS_capset, reinterpret_cast<long>(&h), reinterpret_cast<long>(c.d));
}
bool same(const caps& a, const caps& b) { return std::memcmp(a.d, b.d, sizeof a.d) == 0; }

// Take the leader's capabilities when they differ from this thread's (a raise the kernel
// refuses leaves them as they are).
void follow(const caps& leader) {
  caps mine{};
  if (get_caps(0, &mine) && !same(mine, leader)) set_own_caps(leader);
}

// What /proc shows of a thread's ids: its Uid, Gid and Groups lines, as read.
struct ids {
  char text[512];
  std::size_t len;
};

// Read path's Uid/Gid/Groups lines into out.  System calls only (signal handler).
bool read_ids(const char* path, ids* out) {
  int fd = static_cast<int>(sys::inline_syscall(SYS_openat, AT_FDCWD, reinterpret_cast<long>(path), O_RDONLY | O_CLOEXEC));
  if (fd < 0) return false;
  char buf[4096];
  long n = sys::inline_syscall(SYS_read, fd, reinterpret_cast<long>(buf), sizeof buf - 1);
  (void)sys::inline_syscall(SYS_close, fd);
  if (n <= 0) return false;
  buf[n] = 0;
  out->len = 0;
  for (const char* line = buf; *line != 0;) {
    const char* end = std::strchr(line, '\n');
    std::size_t len = end != nullptr ? static_cast<std::size_t>(end - line) + 1 : std::strlen(line);
    bool wanted = std::strncmp(line, "Uid:", 4) == 0 || std::strncmp(line, "Gid:", 4) == 0 || std::strncmp(line, "Groups:", 7) == 0;
    if (wanted && out->len + len <= sizeof out->text) {
      std::memcpy(out->text + out->len, line, len);
      out->len += len;
    }
    line += len;
  }
  return true;
}
bool same_ids(const ids& a, const ids& b) { return a.len == b.len && std::memcmp(a.text, b.text, a.len) == 0; }

// After its own call, a machine thread waits for the leader's ids to equal its own (the
// leader's call done: glibc makes the calling thread's call only once every other thread's
// handler has returned, and a call that failed changed nothing on either side), then takes
// the leader's capabilities: a machine thread keeps permitted capabilities across a uid
// change, the program may not have.  The leader's call returns before this sees it: for
// that moment (microseconds) a machine thread may still hold a permitted set the program
// gave up; never an effective one (a uid change clears it) and no program code runs on
// these threads.  Looks again at once for the first rounds, then every 20 us, for at most
// about a second; then only lowers (what both hold).
constexpr int kSpinRounds = 2000;
constexpr int kWaitRounds = 50000;
constexpr long kWaitNs = 20000;

void follow_after(int leader) {
  char buf[64];
  vm_out path(buf, sizeof buf);  // no snprintf in a signal handler
  path.str("/proc/self/task/").u(static_cast<std::uint64_t>(leader)).str("/status");
  ids theirs{}, mine{};
  for (int i = 0; i < kWaitRounds; ++i) {
    if (!read_ids(path.c_str(), &theirs) || !read_ids("/proc/thread-self/status", &mine)) break;
    if (same_ids(theirs, mine)) {
      caps now{};
      if (get_caps(leader, &now)) follow(now);
      return;
    }
    if (i < kSpinRounds) {
      sched_yield();
      continue;
    }
    timespec ts{0, kWaitNs};
    (void)sys::inline_syscall(SYS_nanosleep, reinterpret_cast<long>(&ts), 0);
  }
  caps lead{}, own{};
  if (!get_caps(leader, &lead) || !get_caps(0, &own)) return;
  for (std::size_t k = 0; k < _LINUX_CAPABILITY_U32S_3; ++k) {
    own.d[k].effective &= lead.d[k].effective;
    own.d[k].permitted &= lead.d[k].permitted;
    own.d[k].inheritable &= lead.d[k].inheritable;
  }
  set_own_caps(own);
}

// SIGSETXID on any thread.  Program threads go straight to glibc's handler.  A machine
// thread takes the leader's capabilities first (so the call gives it the leader's result),
// and afterwards follows the leader's own call (follow_after).  Async-signal-safe: system
// calls only; errno kept.
void relay(int sig, siginfo_t* si, void* ctx) {
  if (!t_machine) {
    g_glibc.handler(sig, si, ctx);
    return;
  }
  int saved = errno;
  int leader = static_cast<int>(sys::inline_syscall(SYS_getpid));
  caps before{};
  bool known = get_caps(leader, &before);  // false: the leader has exited (a zombie leader)
  if (known) follow(before);
  g_glibc.handler(sig, si, ctx);
  if (known) follow_after(leader);
  errno = saved;
}

}  // namespace

void creds_machine_thread_start() {
  t_machine = true;
  (void)sys::inline_syscall(SYS_prctl, PR_SET_KEEPCAPS, 1);
}

void creds_install_relay() {
  if (g_installed.load(std::memory_order_acquire)) return;
  kernel_sigaction old{};
  if (sys::inline_syscall(SYS_rt_sigaction, kSigSetxid, 0, reinterpret_cast<long>(&old), kSigsetBytes) != 0) return;
  // No handler of glibc's (another libc, or no thread was ever created): nothing to relay.
  if (old.handler == nullptr || reinterpret_cast<std::uintptr_t>(old.handler) == reinterpret_cast<std::uintptr_t>(SIG_IGN) ||
      old.handler == relay)
    return;
  g_glibc = old;
  kernel_sigaction act = old;
  act.handler = relay;
  if (sys::inline_syscall(SYS_rt_sigaction, kSigSetxid, reinterpret_cast<long>(&act), 0, kSigsetBytes) == 0)
    g_installed.store(true, std::memory_order_release);
}

}  // namespace vmrt::rt
