// uffd_relay.cpp — the userfaultfd events of a thread that is itself waiting in a fault,
// handed to it through a signal (uffd_relay.h).
#include "runtime/uffd_relay.h"

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdint>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include <linux/futex.h>

#include "runtime/rt_stats.h"
#include "vm/vm_fds.h"
#include "vm/vm_sys.h"
#include "vm/vm_types.h"

// glibc's sigaction under its exported internal name (trap.cpp says why).
extern "C" int __sigaction(int sig, const struct sigaction* act, struct sigaction* old);

namespace vmrt::rt {

namespace {

constexpr std::size_t kRelayStack = 64 * 1024;
constexpr unsigned kRingSlots = 64;  // events read and not yet served
static_assert((kRingSlots & (kRingSlots - 1)) == 0, "the ring index wraps by mask");
// How soon the relay sees a stop request when it has no wake-up descriptor (the host
// refused the eventfd); with one the stop wakes it at once.
constexpr int kRelayPollMs = 1;

// The relay thread and the creating thread's handler share this, and nothing else.
struct relay_state {
  int fd = 0;  // all zero: the state lies in .lbss, untouched until a relay runs (scenario exec_boot)
  int fh = 0;  // the descriptor's vm_fds handle, for serve
  int wake = 0;  // the wake-up eventfd's number, polled beside fd (-1: none)
  uffd_serve_fn serve = nullptr;
  pid_t pid = 0;          // the process
  pid_t target = 0;       // the creating thread, signalled per event
  int sig = 0;            // the borrowed signal
  std::atomic<bool> stop{false};
  std::atomic<unsigned> head{0};  // written by the relay
  std::atomic<unsigned> tail{0};  // written by the creating thread
  uffd_msg ring[kRingSlots] = {};
  // The relay's thread id until it has exited: the host clears it and wakes a futex waiter
  // (CLONE_CHILD_CLEARTID).
  alignas(4) volatile pid_t alive = 0;
  struct sigaction prev = {};  // the program's action for the borrowed signal
  sigset_t old_mask = {};      // the creating thread's mask before the relay
};
VMRT_LARGE_BSS constinit relay_state g_relay;  // zero, no initializer runs (scenario no_static_init)

// A system call that leaves errno alone: the relay has no TLS of its own (its %fs is the
// creating thread's), so it must not write errno.  -errno on failure.
__attribute__((no_sanitize("address", "thread", "undefined"))) inline long bare_syscall(long nr, long a1 = 0,
                                                                                         long a2 = 0, long a3 = 0,
                                                                                         long a4 = 0) {
  long r;
  register long r10 asm("r10") = a4;
  asm volatile("syscall" : "=a"(r) : "a"(nr), "D"(a1), "S"(a2), "d"(a3), "r"(r10) : "rcx", "r11", "memory");
  return r;
}

// The relay thread: read an event into the ring, signal the creating thread; until stopped.
// Runs on its own host stack with the creating thread's TLS pointer: no libc, no errno, no
// sanitizer runtime (which keeps per-thread state in TLS).
__attribute__((no_sanitize("address", "thread", "undefined"))) int relay_main(void*) {
  relay_state& r = g_relay;
  while (!r.stop.load(std::memory_order_acquire)) {
    unsigned head = r.head.load(std::memory_order_relaxed);
    if (head - r.tail.load(std::memory_order_acquire) == kRingSlots) {  // full: let the server catch up
      bare_syscall(SYS_tgkill, r.pid, r.target, r.sig);
      timespec pause{0, kRelayPollMs * 1000000L};
      bare_syscall(SYS_nanosleep, reinterpret_cast<long>(&pause), 0);
      continue;
    }
    pollfd pfd[2] = {{r.fd, POLLIN, 0}, {r.wake, POLLIN, 0}};
    const long nfds = r.wake >= 0 ? 2 : 1;
    if (bare_syscall(SYS_poll, reinterpret_cast<long>(pfd), nfds, kRelayPollMs) <= 0) continue;
    if ((pfd[0].revents & POLLIN) == 0) continue;  // the stop's wake-up (or an error): look again
    long n = bare_syscall(SYS_read, r.fd, reinterpret_cast<long>(&r.ring[head & (kRingSlots - 1)]), sizeof(uffd_msg));
    if (n != static_cast<long>(sizeof(uffd_msg))) continue;  // EAGAIN: another reader took it
    r.head.store(head + 1, std::memory_order_release);
    bare_syscall(SYS_tgkill, r.pid, r.target, r.sig);
  }
  return 0;
}

// Serve what the relay has read.  => the creating thread, its relay signal blocked.
void drain_ring() {
  relay_state& r = g_relay;
  for (;;) {
    unsigned tail = r.tail.load(std::memory_order_relaxed);
    if (tail == r.head.load(std::memory_order_acquire)) return;
    uffd_msg msg = r.ring[tail & (kRingSlots - 1)];
    r.tail.store(tail + 1, std::memory_order_release);
    rt_count(RC_UFFD_RELAYED);
    rt_count(RC_UFFD_BOOTSTRAP_SERVED);
    r.serve(r.fh, msg);
  }
}

// A signal from the relay: serve.  Anything else (the program's own use of the signal, in
// the few microseconds it is borrowed) goes to the program's handler; a default or ignored
// action drops it.
void relay_signal(int sig, siginfo_t* si, void* uc) {
  const relay_state& r = g_relay;
  if (si->si_code != SI_TKILL || si->si_pid != r.pid) {
    if ((r.prev.sa_flags & SA_SIGINFO) != 0) {
      if (r.prev.sa_sigaction != nullptr) r.prev.sa_sigaction(sig, si, uc);
    } else if (r.prev.sa_handler != SIG_DFL && r.prev.sa_handler != SIG_IGN) {
      r.prev.sa_handler(sig);
    }
    return;
  }
  int saved = errno;
  drain_ring();
  errno = saved;
}

sigset_t just(int sig) {
  sigset_t s;
  sigemptyset(&s);
  sigaddset(&s, sig);
  return s;
}

}  // namespace

uffd_relay::uffd_relay(int fd, int fh, uffd_serve_fn serve) {
#if defined(__SANITIZE_THREAD__)
  // ThreadSanitizer delivers signals at its own interception points, not in a fault wait,
  // and does not know a thread made by a raw clone: no relay (the unit tests' TSan build);
  // the creator reads the events itself after pthread_create, as without one.
  (void)fd, (void)fh, (void)serve;
  return;
#endif
  relay_state& r = g_relay;
  r.fd = fd;
  r.fh = fh;
  r.serve = serve;
  r.pid = static_cast<pid_t>(::getpid());
  r.target = static_cast<pid_t>(::syscall(SYS_gettid));
  r.sig = SIGRTMAX;
  r.stop.store(false, std::memory_order_relaxed);
  r.head.store(0, std::memory_order_relaxed);
  r.tail.store(0, std::memory_order_relaxed);
  // The stop's wake-up: without it the relay noticed a stop only at its poll's timeout, and
  // every first handler thread (each fork child's under paging) waited ~1 ms more for it.
  // Kept at the top of the table (vm_fds.h), as the program may run beside a boot's relay.
  wake_ = vm_fd_keep(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  r.wake = vm_fd_number(wake_);
  void* stack = vmrt::sys::mmap(nullptr, kRelayStack, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK,
                                -1, 0);
  if (stack == MAP_FAILED) return;
  stack_ = stack;
  struct sigaction act{};
  act.sa_sigaction = relay_signal;
  act.sa_flags = SA_SIGINFO | SA_RESTART;
  sigfillset(&act.sa_mask);
  // The relay takes no signal: it is made with every signal blocked.
  sigset_t all, before;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &before);
  r.old_mask = before;
  if (__sigaction(r.sig, &act, &r.prev) != 0) {
    pthread_sigmask(SIG_SETMASK, &before, nullptr);
    return;
  }
  handler_set_ = true;
  constexpr int kFlags =
      CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD | CLONE_SYSVSEM | CLONE_PARENT_SETTID | CLONE_CHILD_CLEARTID;
  char* top = static_cast<char*>(stack) + kRelayStack;
  int tid = ::clone(relay_main, top, kFlags, nullptr, &r.alive, nullptr, &r.alive);
  sigset_t let_in = before;
  sigdelset(&let_in, r.sig);
  pthread_sigmask(SIG_SETMASK, &let_in, nullptr);
  running_ = tid > 0;
}

uffd_relay::~uffd_relay() {
  relay_state& r = g_relay;
  if (running_) {
    r.stop.store(true, std::memory_order_release);
    if (wake_ >= 0) {
      vm_fd_use use(wake_);
      const std::uint64_t one = 1;
      (void)!::write(use.fd(), &one, sizeof one);
    }
    for (;;) {  // until the host has cleared the relay's thread id
      pid_t t = r.alive;
      if (t == 0) break;
      ::syscall(SYS_futex, &r.alive, FUTEX_WAIT, t, nullptr, nullptr, 0);
    }
  }
  if (handler_set_) {
    sigset_t one = just(r.sig);
    pthread_sigmask(SIG_BLOCK, &one, nullptr);
    timespec zero{0, 0};
    siginfo_t si;
    bool program_signal = false;  // one of the program's arrived while the signal was borrowed
    while (::syscall(SYS_rt_sigtimedwait, &one, &si, &zero, _NSIG / 8) == r.sig)
      program_signal |= si.si_code != SI_TKILL || si.si_pid != r.pid;
    drain_ring();
    __sigaction(r.sig, &r.prev, nullptr);
    if (program_signal) ::syscall(SYS_tgkill, r.pid, r.target, r.sig);  // pending again, for the program's action
    pthread_sigmask(SIG_SETMASK, &r.old_mask, nullptr);
  }
  if (stack_ != nullptr) vmrt::sys::munmap(stack_, kRelayStack);
  vm_fd_close(wake_);
}

}  // namespace vmrt::rt
