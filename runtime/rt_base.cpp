// rt_base.cpp — assertions, messages, machine threads, the clock.
#include "runtime/rt_base.h"

#include <atomic>
#include <climits>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/sysinfo.h>
#include <time.h>
#include <unistd.h>

#include "runtime/rt_creds.h"
#include "runtime/rt_stats.h"
#include "vm/vm_fail.h"
#include "vm/vm_assert.h"
#include "vm/vm_sys.h"
#include "vm/vm_types.h"
#include "vm/vm_fork_store.h"

namespace vmrt::rt {

void say(const char* a, const char* b, const char* c) {
  vm_fd_out<256> o(2);
  o.str(a).str(b).str(c);
}

namespace {
struct errno_entry {
  int e;
  vm_name<8> name;  // in place: never relocated (vm/vm_types.h)
};
constexpr errno_entry kErrnoNames[] = {{EPERM, "EPERM"},   {ENOMEM, "ENOMEM"}, {EMFILE, "EMFILE"}, {ENFILE, "ENFILE"},
                                       {ENOSPC, "ENOSPC"}, {EFBIG, "EFBIG"},   {EACCES, "EACCES"}, {EINVAL, "EINVAL"},
                                       {ENOSYS, "ENOSYS"}, {EAGAIN, "EAGAIN"}, {ENOENT, "ENOENT"}, {EIO, "EIO"}};
static_assert(sizeof(kErrnoNames) / sizeof(kErrnoNames[0]) == 12);
}  // namespace

// The system call itself, not sysconf(_SC_PHYS_PAGES): sysconf's dispatch table in libc's
// read-only data was a page fault in every process (perf record -e page-faults -d).  A fork
// child keeps its parent's answer.
host_memory host_memory_info() {
  static std::atomic<int> asked{0};  // 0 not yet, 1 answered
  static host_memory cached;
  if (asked.load(std::memory_order_acquire) == 0) {
    struct sysinfo si {};
    host_memory h{std::size_t{4} << 30, true};
    if (sys::inline_syscall(SYS_sysinfo, reinterpret_cast<long>(&si)) == 0) {
      if (si.totalram != 0) h.ram = static_cast<std::size_t>(si.totalram) * (si.mem_unit != 0 ? si.mem_unit : 1);
      h.swap = si.totalswap != 0;
    }
    cached = h;  // two threads racing here write the same answer
    asked.store(1, std::memory_order_release);
  }
  return cached;
}

const char* errno_name(int e) {
  for (const errno_entry& x : kErrnoNames)
    if (x.e == e) return x.name;
  return "an error";
}

[[noreturn]] void rt_panic(const char* what, const char* msg, const char* file, int line) {
  vm_assert_failed("vmrt", what, msg, file, line);
}

namespace {

// What a starting machine thread runs, handed over without malloc: a slot is claimed by the
// creator and released by the new thread once it has read it.
struct machine_start {
  void* (*fn)(void*) = nullptr;
  void* arg = nullptr;
  const char* name = nullptr;  // a string literal of the creator's
  std::atomic<int> busy{0};  // 1 from claim to the new thread's marking; a futex word
};
static_assert(sizeof(std::atomic<int>) == sizeof(int), "busy is waited on as a futex word");
constinit machine_start g_starts[8] = {};  // static data: no initializer runs (scenario no_static_init)
VMRT_FORK_DATA std::atomic<unsigned> g_machine_threads{0};
thread_local __attribute__((tls_model("initial-exec"))) bool t_creating_machine;

// Machine threads' stacks: host memory vmrt maps itself (with a guard page below), handed to
// pthread_create, and used again by a fork child, where the threads that ran on them do not
// exist.  glibc's own stacks for them cost a fork child under paging ~0.65 ms a thread
// (perf record, a paged fork loop): it took the parent's stacks from its cache, whose path
// resolves a lazily bound symbol in every child (_dl_fixup, the parent never took it) and
// clears the TLS there.  A slot stays busy until the next fork child (machine threads run
// until the process ends); none free, glibc allocates as before.
struct machine_stack {
  std::atomic<bool> busy{false};  // held by a creator, then by the thread running on it
  void* base = nullptr;           // lowest usable byte, the guard page below it [busy holder]
  std::size_t bytes = 0;          // [busy holder]
};
constinit machine_stack g_stacks[8] = {};
constexpr std::size_t kStackGuard = 4096;

// A free stack of exactly `bytes`, held: one already mapped, else a free slot mapped now;
// null when none can be had (glibc's then).  A slot's fields are read and written only by
// the one holding it.
machine_stack* machine_stack_take(std::size_t bytes) {
  for (int map_new = 0; map_new < 2; ++map_new) {
    for (machine_stack& m : g_stacks) {
      bool expected = false;
      if (!m.busy.compare_exchange_strong(expected, true, std::memory_order_acquire)) continue;
      if (map_new == 0 && m.base != nullptr && m.bytes == bytes) return &m;
      if (map_new == 1 && m.base == nullptr) {
        void* p = vmrt::sys::mmap(nullptr, bytes + kStackGuard, PROT_READ | PROT_WRITE,
                                  MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
        if (p == MAP_FAILED) {
          m.busy.store(false, std::memory_order_release);
          return nullptr;
        }
        (void)vmrt::sys::mprotect(p, kStackGuard, PROT_NONE);
        m.bytes = bytes;
        m.base = static_cast<char*>(p) + kStackGuard;
        return &m;
      }
      m.busy.store(false, std::memory_order_release);
    }
  }
  return nullptr;
}

void machine_stack_give_back(machine_stack* m) { m->busy.store(false, std::memory_order_release); }

// The slot is released once the thread is marked as vmrt's: its creator waits for that
// (start_machine_thread), so no set*id broadcast of the program finds the thread unmarked.
void* machine_main(void* p) {
  machine_start* s = static_cast<machine_start*>(p);
  void* (*fn)(void*) = s->fn;
  void* arg = s->arg;
  // Named here, one prctl: from the creator it was a sprintf, an open, a write and a close
  // of /proc/self/task/TID/comm (pthread_setname_np), ~0.45 ms of a paged fork child's three
  // thread starts.  Before the marking, which the creator waits for.
  (void)sys::inline_syscall(SYS_prctl, PR_SET_NAME, reinterpret_cast<long>(s->name));
  // Fault injection (fail point thread_start): the thread reaches its marking late, as a
  // loaded machine may make it (scenario setxid_threads).
  if (vm_fail_armed()) {
    std::uint64_t delay = 0;
    if (vm_fail_eval(FP_THREAD_START, 0, 0, &delay) && delay == 0) delay = 20 * 1000 * 1000;
    vm_fail_delay(delay);
  }
  creds_machine_thread_start();
  s->busy.store(0, std::memory_order_release);
  ::syscall(SYS_futex, reinterpret_cast<int*>(&s->busy), FUTEX_WAKE_PRIVATE, INT_MAX, nullptr, nullptr, 0);
  return fn(arg);
}

machine_start* claim_start() {
  for (;;) {
    for (machine_start& s : g_starts) {
      int expected = 0;
      if (s.busy.compare_exchange_strong(expected, 1, std::memory_order_acquire)) return &s;
    }
    sched_yield();  // more than eight threads starting at once: wait for one to read its slot
  }
}

// The largest stack a machine thread is tried with (its static TLS larger than that: no thread).
constexpr std::size_t kMachineStackMax = std::size_t{256} << 20;
// The smallest stack size that held the static TLS, once one had to be doubled for it.
std::atomic<std::size_t> g_stack_floor{0};

// pthread_create of a detached machine thread running machine_main(s) with every signal
// blocked, on a stack of `bytes`: vmrt's own when one is free (or can be mapped), else
// glibc's; pthread_create's result (EINVAL: the stack cannot hold the static TLS, which
// glibc checks alike for its own stacks).
int create_on(pthread_t* t, machine_start* s, std::size_t bytes) {
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  // The new thread starts with every signal blocked; the caller's mask stays as it is (the
  // first handler thread's creator takes a timer signal while it creates it: trap.cpp).
  sigset_t all;
  sigfillset(&all);
  pthread_attr_setsigmask_np(&attr, &all);
  machine_stack* own = machine_stack_take(bytes);
  int rc = own != nullptr ? pthread_attr_setstack(&attr, own->base, bytes) : pthread_attr_setstacksize(&attr, bytes);
  if (rc == 0) rc = pthread_create(t, &attr, machine_main, s);
  if (rc != 0 && own != nullptr) machine_stack_give_back(own);
  pthread_attr_destroy(&attr);
  return rc;
}

}  // namespace

bool start_machine_thread(void* (*fn)(void*), void* arg, std::size_t stack, const char* name, bool wait_marked) {
  rt_fold_pending_forks();  // no quiet fork after this: counted where all threads see it
  machine_start* s = claim_start();
  s->fn = fn;
  s->arg = arg;
  s->name = name;
  // The new thread keeps permitted capabilities across uid changes from its first
  // instruction (rt_creds.h): PR_SET_KEEPCAPS is part of the credentials a clone shares, so
  // it is set around the creation.  Set only in machine_main, a set*id broadcast that
  // reached the thread before machine_main ran (glibc never blocks its SIGSETXID) cleared
  // its capabilities, its next call failed where the program's succeeded, and glibc
  // aborted the program (setpriv --init-groups under a loaded CI run, scenario
  // setxid_threads).
  const bool had_keepcaps = sys::inline_syscall(SYS_prctl, PR_GET_KEEPCAPS) == 1;
  if (!had_keepcaps) (void)sys::inline_syscall(SYS_prctl, PR_SET_KEEPCAPS, 1);
  pthread_t t;
  t_creating_machine = true;
  // A stack holds the thread's static TLS too (every module's __thread data, at its top):
  // glibc refuses one too small for it with EINVAL, whoever allocates it.  A program with
  // large __thread arrays (1 MiB) had no handler thread and no pageout daemon under paging,
  // and hung at its first fault; the size doubles until the TLS fits.
  int rc = EINVAL;
  std::size_t bytes = stack;
  while (bytes < g_stack_floor.load(std::memory_order_relaxed)) bytes *= 2;
  for (; bytes <= kMachineStackMax; bytes *= 2)
    if ((rc = create_on(&t, s, bytes)) != EINVAL) break;
  if (rc == 0 && bytes > stack) g_stack_floor.store(bytes, std::memory_order_relaxed);  // the next ones start there
  t_creating_machine = false;
  if (rc == 0) g_machine_threads.fetch_add(1, std::memory_order_relaxed);
  if (!had_keepcaps) (void)sys::inline_syscall(SYS_prctl, PR_SET_KEEPCAPS, 0);
  if (rc != 0) {
    s->busy.store(0, std::memory_order_release);
    return false;
  }
  creds_install_relay();  // glibc's set*id handler exists now that a thread was created
  // Until the new thread has marked itself (t_machine, rt_creds.cpp), the SIGSETXID relay
  // takes it for a program thread and gives it no capability: a set*id the program made in
  // that window failed in the thread and glibc aborted the program.  The pageout daemon,
  // started without waiting, was still unmarked when a loaded CI run's program called
  // setresgid after raising CAP_SETGID (scenario setxid_threads, keepcaps: seen twice).
  // (A slot taken again at once by another creator only makes this wait longer.)
  // The creator sleeps on the slot until the new thread's wake: it spun in sched_yield, which
  // kept its vCPU busy, so on two vCPUs the new thread waited on the other, busy one (161
  // yields, ~3 ms, in a paged fork child's pagedaemon start: perf trace); asleep, its vCPU
  // goes idle and takes the new thread at once.  The timeout bounds a lost wake.
  if (wait_marked)
    while (s->busy.load(std::memory_order_acquire) != 0) {
      timespec t{0, 1000 * 1000};
      ::syscall(SYS_futex, reinterpret_cast<int*>(&s->busy), FUTEX_WAIT_PRIVATE, 1, &t, nullptr, 0);
    }
  return true;
}

unsigned machine_thread_count() { return g_machine_threads.load(std::memory_order_relaxed); }
VMRT_FORK_CHILD_TEXT void machine_threads_fork_child() {
  // A process that never started one writes nothing here (vm/vm_fork_store.h).
  fork_store(g_machine_threads, 0);
  for (machine_stack& m : g_stacks) fork_store(m.busy, false);  // their threads stayed in the parent
}
bool creating_machine_thread() { return t_creating_machine; }

long read_task_file(int tid, const char* leaf, char* buf, std::size_t size) {
  char path[64];
  vm_out o(path, sizeof path);
  o.str("/proc/self/task/").u(static_cast<std::uint64_t>(tid)).ch('/').str(leaf);
  int fd = ::open(o.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  ssize_t n = ::read(fd, buf, size - 1);
  ::close(fd);
  if (n < 0) return -1;
  while (n > 0 && buf[n - 1] == '\n') --n;
  buf[n] = '\0';
  return n;
}

char task_state(int tid) {
  char stat[512];
  if (read_task_file(tid, "stat", stat, sizeof stat) <= 0) return '\0';
  const char* close_paren = std::strrchr(stat, ')');  // "pid (comm) S ...": comm may hold ')'
  return close_paren != nullptr && close_paren[1] != '\0' ? close_paren[2] : '\0';
}

std::uint64_t now_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<std::uint64_t>(ts.tv_nsec);
}

}  // namespace vmrt::rt
