// runtime_trap_test.cpp — traps: protection and no-entry traps caught with the trap
// hook, chaining to the program's own SIGSEGV handler for faults outside the region,
// death by SIGSEGV when nobody handles a trap, and a frame refused during a fault as
// SIGBUS/BUS_ADRERR (death by SIGBUS when unhandled).  Both backends.
#include <doctest/doctest.h>

#include <atomic>
#include <cstring>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <string>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <thread>
#include <unistd.h>

#include "runtime_test_support.h"
#include "runtime/trap.h"
#include "vm/vm_fail.h"
#include "vm/vm_lock.h"

RUNTIME_TESTS_UNDER_BOTH_BACKENDS()

namespace {
constexpr size_t kPage = 4096;

sigjmp_buf g_prog_env;
volatile int g_prog_code;
void* volatile g_prog_addr;
void program_handler(int, siginfo_t* si, void*) {
  g_prog_code = si->si_code;
  g_prog_addr = si->si_addr;
  siglongjmp(g_prog_env, 1);
}

// Every frame allocation fails from now on (fault injection, vm/vm_fail), logged nowhere.
void fail_every_frame() {
  static vmrt::vm_fail_spec spec;
  vmrt::vm_fail_error err;
  REQUIRE(vmrt::vm_fail_parse("frame", &spec, &err));
  vmrt::vm_fail_set_log_fd(open("/dev/null", O_WRONLY | O_CLOEXEC));
  vmrt::vm_fail_arm(spec);
}

// A fresh mapping of 8 MiB without fault-around, its first page touched (the backend is up).
char* fresh_mapping(vmrt_vmspace* vs) {
  char* p = static_cast<char*>(vmrt_mmap(vs, nullptr, 8 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  REQUIRE(p != VMRT_MAP_FAILED);
  REQUIRE(vmrt_madvise(vs, p, 8 << 20, MADV_RANDOM) == 0);
  p[0] = 1;
  return p;
}
}  // namespace

TEST_CASE("write to a read-only page traps with reason protection at the right address") {
  REQUIRE(vmrt_init() == 0);
  vmrt_vmspace* vs = vmrt_vmspace_create(16u << 20);
  REQUIRE(vs != nullptr);
  char* p = static_cast<char*>(vmrt_mmap(vs, nullptr, 16 * kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  REQUIRE(p != VMRT_MAP_FAILED);
  p[5 * kPage] = 42;  // resident
  REQUIRE(vmrt_mprotect(vs, p, 16 * kPage, PROT_READ) == 0);
  CHECK(p[5 * kPage] == 42);  // reads still work
  long long traps0 = vmrt_counter("traps");
  volatile char* target = p + 5 * kPage + 123;
  bool trapped = rtt::traps([&] { *target = 1; });
  CHECK(trapped);
  CHECK(rtt::trap_catcher::last.reason == VMRT_TRAP_PROTECTION);
  CHECK(rtt::trap_catcher::last.addr == (void*)target);
  CHECK(rtt::trap_catcher::last.access == PROT_WRITE);
  CHECK(rtt::trap_catcher::last.vmspace == vs);
  CHECK(vmrt_counter("traps") == traps0 + 1);
  CHECK(p[5 * kPage] == 42);  // never resolved silently
  // A non-resident read-only page: reads zero-fill, writes trap.
  volatile char* cold = p + 9 * kPage;
  CHECK(*cold == 0);
  CHECK(rtt::traps([&] { *cold = 1; }));
  CHECK(rtt::trap_catcher::last.reason == VMRT_TRAP_PROTECTION);
  CHECK(rtt::check_ok(vs));
  vmrt_vmspace_destroy(vs);
}

TEST_CASE("access to a hole traps with reason no-entry") {
  REQUIRE(vmrt_init() == 0);
  vmrt_vmspace* vs = vmrt_vmspace_create(16u << 20);
  REQUIRE(vs != nullptr);
  char* base = static_cast<char*>(vmrt_vmspace_base(vs));
  char* p = static_cast<char*>(vmrt_mmap(vs, base + 64 * kPage, 8 * kPage, PROT_READ | PROT_WRITE,
                                         MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0));
  REQUIRE(p == base + 64 * kPage);
  volatile char* hole = base + 10 * kPage + 8;
  CHECK(rtt::traps([&] { (void)*hole; }));
  CHECK(rtt::trap_catcher::last.reason == VMRT_TRAP_NO_ENTRY);
  CHECK(rtt::trap_catcher::last.addr == (void*)hole);
  CHECK(rtt::trap_catcher::last.access == PROT_READ);
  // After munmap the range is a hole again.
  p[0] = 1;
  REQUIRE(vmrt_munmap(vs, p, 8 * kPage) == 0);
  volatile char* gone = p;
  CHECK(rtt::traps([&] { *gone = 2; }));
  CHECK(rtt::trap_catcher::last.reason == VMRT_TRAP_NO_ENTRY);
  CHECK(rtt::check_ok(vs));
  vmrt_vmspace_destroy(vs);
}

TEST_CASE("SIGSEGV outside the region reaches the program's own handler; traps too when no hook") {
  REQUIRE(vmrt_init() == 0);
  struct sigaction sa{}, old{};
  sa.sa_sigaction = program_handler;
  sa.sa_flags = SA_SIGINFO;
  sigemptyset(&sa.sa_mask);
  REQUIRE(vmrt_sigaction(SIGSEGV, &sa, &old) == 0);
  // A host page outside vmrt's region.
  char* host = static_cast<char*>(mmap(nullptr, kPage, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  REQUIRE(host != MAP_FAILED);
  long long chained0 = vmrt_counter("chained signals");
  g_prog_code = 0;
  if (sigsetjmp(g_prog_env, 1) == 0) {
    *(volatile char*)host = 1;
    FAIL("the access did not fault");
  }
  CHECK(g_prog_addr == host);
  CHECK(g_prog_code == SEGV_ACCERR);
  CHECK(vmrt_counter("chained signals") == chained0 + 1);
  // A vmrt trap with no hook goes to the program's handler with SEGV_MAPERR / SEGV_ACCERR.
  vmrt_vmspace* vs = vmrt_vmspace_create(16u << 20);
  REQUIRE(vs != nullptr);
  char* base = static_cast<char*>(vmrt_vmspace_base(vs));
  if (sigsetjmp(g_prog_env, 1) == 0) {
    *(volatile char*)(base + 3 * kPage) = 1;
    FAIL("the hole access did not trap");
  }
  CHECK(g_prog_code == SEGV_MAPERR);
  CHECK(g_prog_addr == base + 3 * kPage);
  char* p = static_cast<char*>(vmrt_mmap(vs, nullptr, kPage, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  REQUIRE(p != VMRT_MAP_FAILED);
  if (sigsetjmp(g_prog_env, 1) == 0) {
    *(volatile char*)p = 1;
    FAIL("the write to a read-only mapping did not trap");
  }
  CHECK(g_prog_code == SEGV_ACCERR);
  REQUIRE(vmrt_sigaction(SIGSEGV, &old, nullptr) == 0);
  munmap(host, kPage);
  vmrt_vmspace_destroy(vs);
}

TEST_CASE("an unhandled trap kills the process with SIGSEGV") {
  REQUIRE(vmrt_init() == 0);
  vmrt_vmspace* vs = vmrt_vmspace_create(16u << 20);
  REQUIRE(vs != nullptr);
  char* base = static_cast<char*>(vmrt_vmspace_base(vs));
  pid_t pid = rtt::vm_fork();
  if (pid == 0) {
    struct sigaction dfl{};
    dfl.sa_handler = SIG_DFL;
    vmrt_sigaction(SIGSEGV, &dfl, nullptr);
    vmrt_set_trap_hook(nullptr, nullptr);
    *(volatile char*)(base + kPage) = 1;  // a hole
    _exit(0);
  }
  int st = 0;
  REQUIRE(waitpid(pid, &st, 0) == pid);
  CHECK(WIFSIGNALED(st));
  CHECK(WTERMSIG(st) == SIGSEGV);
  vmrt_vmspace_destroy(vs);
}

// Run body in a fork child that holds the VM lock, with the default action for SIGSEGV,
// SIGBUS and SIGABRT (not doctest's crash report) and a 60 s alarm (a hang ends as
// SIGALRM); the child's stderr into *msg, its signal the result (0: it exited).
template <class Body>
int with_vm_lock_in_child(std::string* msg, Body body) {
  int err[2];
  REQUIRE(pipe(err) == 0);
  pid_t pid = rtt::vm_fork();
  if (pid == 0) {
    dup2(err[1], 2);
    struct sigaction dfl{};
    dfl.sa_handler = SIG_DFL;
    vmrt_sigaction(SIGSEGV, &dfl, nullptr);
    vmrt_sigaction(SIGBUS, &dfl, nullptr);
    sigaction(SIGABRT, &dfl, nullptr);
    vmrt_set_trap_hook(nullptr, nullptr);
    alarm(60);
    vmrt::vm_lock_acquire();
    body();
    _exit(0);
  }
  close(err[1]);
  char buf[512];
  for (ssize_t n; (n = read(err[0], buf, sizeof buf)) > 0;) msg->append(buf, static_cast<std::size_t>(n));
  close(err[0]);
  int st = 0;
  REQUIRE(waitpid(pid, &st, 0) == pid);
  return WIFSIGNALED(st) ? WTERMSIG(st) : 0;
}

// The VM never touches program memory under its lock; if it did, under userfaultfd the
// thread would sleep in the kernel for a handler that needs the lock: a silent hang (a CI
// run of scenario paging stopped after 600 s without a trace).  The handler names the page
// and panics instead; under sigsegv the thread's own handler does (it was the program's
// SIGBUS or SIGSEGV before).
TEST_CASE("a fault by the thread that holds the VM lock ends the process, naming the page; no hang") {
  REQUIRE(vmrt_init() == 0);
  vmrt_vmspace* vs = vmrt_vmspace_create(16u << 20);
  REQUIRE(vs != nullptr);
  char* p = fresh_mapping(vs);
  std::string msg;
  // Never touched: a fault only vm_fault can serve.
  int sig = with_vm_lock_in_child(&msg, [p] { *(volatile char*)(p + 100 * kPage) = 1; });
  CHECK(sig == SIGABRT);
  INFO("stderr: " << msg);
  CHECK(msg.find("faulted on 0x") != std::string::npos);
  CHECK(msg.find("while holding the VM lock") != std::string::npos);
  if (rtt::uffd_backend())
    CHECK(msg.find("its /proc syscall line: -1 ") != std::string::npos);  // where it stopped: user mode
  vmrt_vmspace_destroy(vs);
}

// As above with the one handler thread already waiting for the lock (another thread's fault
// it took first): the holder's own event stays unread, and the process hung (a loaded CI run
// of scenario program_stacks, until the scenario's watchdog after 300 s).  A thread waiting
// for the lock sees the holder asleep in a fault and panics after 5 s.  Under sigsegv the
// holder's fault is its own thread's and panics at once.
TEST_CASE("a fault by the VM lock holder while every handler thread waits for the lock: a panic, no hang") {
  REQUIRE(vmrt_init() == 0);
  vmrt_vmspace* vs = vmrt_vmspace_create(16u << 20);
  REQUIRE(vs != nullptr);
  char* p = fresh_mapping(vs);
  std::string msg;
  int sig = with_vm_lock_in_child(&msg, [p] {
    std::thread other([p] { *(volatile char*)(p + 200 * kPage) = 1; });  // its handler waits for the lock
    usleep(300 * 1000);
    *(volatile char*)(p + 100 * kPage) = 1;
  });
  CHECK(sig == SIGABRT);
  INFO("stderr: " << msg);
  CHECK(msg.find("while holding the VM lock") != std::string::npos);
  if (rtt::uffd_backend())
    CHECK(msg.find("every handler thread waits for the VM lock") != std::string::npos);
  else
    CHECK(msg.find("faulted on 0x") != std::string::npos);
  vmrt_vmspace_destroy(vs);
}

// The lock holder's check asks the kernel what the holder does.  A thread asleep in a
// userfaultfd fault (its own descriptor here, never served until the test says) is told
// apart from one asleep in nanosleep and one running.
TEST_CASE("trap_thread_waiting tells a thread asleep in a userfaultfd fault from other threads") {
  int uffd = static_cast<int>(syscall(SYS_userfaultfd, O_CLOEXEC));
  if (uffd < 0) {
    MESSAGE("SKIP: no userfaultfd for this process (" << strerror(errno) << ")");
    return;
  }
  uffdio_api api{};
  api.api = UFFD_API;
  REQUIRE(ioctl(uffd, UFFDIO_API, &api) == 0);
  char* page = static_cast<char*>(mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  REQUIRE(page != MAP_FAILED);
  uffdio_register reg{};
  reg.range.start = reinterpret_cast<unsigned long>(page);
  reg.range.len = 4096;
  reg.mode = UFFDIO_REGISTER_MODE_MISSING;
  REQUIRE(ioctl(uffd, UFFDIO_REGISTER, &reg) == 0);

  std::atomic<pid_t> faulting{0}, sleeping{0}, spinning{0};
  std::atomic<bool> stop{false};
  std::thread a([&] {
    faulting = static_cast<pid_t>(syscall(SYS_gettid));
    (void)*reinterpret_cast<volatile char*>(page);
  });
  std::thread b([&] {
    sleeping = static_cast<pid_t>(syscall(SYS_gettid));
    while (!stop) usleep(1000 * 1000);
  });
  std::thread c([&] {
    spinning = static_cast<pid_t>(syscall(SYS_gettid));
    while (!stop) {
    }
  });
  while (faulting == 0 || sleeping == 0 || spinning == 0) usleep(1000);
  usleep(300 * 1000);  // all three where they stay
  char line[160];
  CHECK(vmrt::rt::trap_thread_waiting(faulting, line, sizeof line) == vmrt::rt::thread_wait::in_userfault);
  INFO("syscall line of the faulting thread: " << line);
  CHECK(std::string(line).rfind("-1 ", 0) == 0);  // not in a system call
  CHECK(vmrt::rt::trap_thread_waiting(sleeping, line, sizeof line) != vmrt::rt::thread_wait::in_userfault);
  CHECK(vmrt::rt::trap_thread_waiting(spinning, line, sizeof line) == vmrt::rt::thread_wait::elsewhere);
  stop = true;
  uffdio_zeropage z{};
  z.range = reg.range;
  CHECK(ioctl(uffd, UFFDIO_ZEROPAGE, &z) == 0);
  a.join();
  b.join();
  c.join();
  close(uffd);
  munmap(page, 4096);
}

// A stale event: the lock holder's thread is not waiting for the fault the event reports
// (here it never faulted: it holds the lock and sleeps in nanosleep).  The check returns
// after its 5 s and counts it; it panicked before the kernel was asked.
TEST_CASE("an event of the VM lock holder that is not waiting in a fault is stale, not a panic") {
  REQUIRE(vmrt_init() == 0);
  std::atomic<pid_t> holder{0};
  std::atomic<bool> release{false};
  std::thread t([&] {
    vmrt::vm_lock_acquire();
    holder = static_cast<pid_t>(syscall(SYS_gettid));
    while (!release) usleep(20 * 1000);
    vmrt::vm_lock_release();
  });
  while (holder == 0) usleep(1000);
  long long before = vmrt_counter("userfaultfd events of the VM lock holder found stale");
  vmrt::rt::trap_check_lock_holder_fault(0x1000, holder);  // returns (a panic would end the test)
  CHECK(vmrt_counter("userfaultfd events of the VM lock holder found stale") == before + 1);
  release = true;
  t.join();
}

TEST_CASE("a SIGSEGV sent with kill(2) is not a fault: default action still kills") {
  REQUIRE(vmrt_init() == 0);
  pid_t pid = rtt::vm_fork();
  if (pid == 0) {
    struct sigaction dfl{};
    dfl.sa_handler = SIG_DFL;
    vmrt_sigaction(SIGSEGV, &dfl, nullptr);
    kill(getpid(), SIGSEGV);
    _exit(0);
  }
  int st = 0;
  REQUIRE(waitpid(pid, &st, 0) == pid);
  CHECK(WIFSIGNALED(st));
  CHECK(WTERMSIG(st) == SIGSEGV);
}

// ---- sigaction(2) routing once the trap backend runs (what the shim's sigaction does) ----
namespace {
volatile int g_masked_usr1;
void masked_handler(int, siginfo_t* si, void*) {
  g_prog_addr = si->si_addr;
  sigset_t cur;
  pthread_sigmask(SIG_SETMASK, nullptr, &cur);
  g_masked_usr1 = sigismember(&cur, SIGUSR1);
  siglongjmp(g_prog_env, 1);
}
}  // namespace

TEST_CASE("sigaction(SIGSEGV) after start: the program's handler is chained, reported back, vmrt keeps faulting") {
  REQUIRE(vmrt_init() == 0);
  CHECK(vmrt::rt::trap_started());
  CHECK(std::strcmp(vmrt_trap_backend(), "none") != 0);
  struct sigaction sa{}, old{}, now{}, kernel{};
  sa.sa_sigaction = program_handler;
  sa.sa_flags = SA_SIGINFO;
  sigemptyset(&sa.sa_mask);
  REQUIRE(sigaction(SIGSEGV, &sa, &old) == 0);  // routed: RUNTIME_TEST_ROUTE_SIGACTION
  REQUIRE(sigaction(SIGSEGV, nullptr, &now) == 0);
  CHECK(bool(now.sa_sigaction == program_handler));
  // The kernel still has vmrt's handler.
  REQUIRE(__sigaction(SIGSEGV, nullptr, &kernel) == 0);
  CHECK(bool(kernel.sa_sigaction != program_handler));
  CHECK((kernel.sa_flags & SA_SIGINFO) != 0);
  // A real wild store in page zero (as a NULL-struct-member dereference; not NULL
  // itself, which UBSan would stop first) reaches the program's handler.
  g_prog_addr = reinterpret_cast<void*>(1);
  volatile int* wild = reinterpret_cast<volatile int*>(std::uintptr_t{64});
  if (sigsetjmp(g_prog_env, 1) == 0) {
    *wild = 1;
    FAIL("the wild store did not fault");
  }
  CHECK(g_prog_addr == reinterpret_cast<void*>(std::uintptr_t{64}));
  CHECK(g_prog_code == SEGV_MAPERR);
  // Demand paging in a vmspace still works behind the program's handler.
  vmrt_vmspace* vs = vmrt_vmspace_create(16u << 20);
  REQUIRE(vs != nullptr);
  char* p = static_cast<char*>(vmrt_mmap(vs, nullptr, 64 * kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  REQUIRE(p != VMRT_MAP_FAILED);
  for (size_t i = 0; i < 64; ++i) p[i * kPage] = static_cast<char>(i + 1);
  for (size_t i = 0; i < 64; ++i) CHECK(p[i * kPage] == static_cast<char>(i + 1));
  // Restoring the old action reports the program's handler as the old one.
  struct sigaction back{};
  REQUIRE(sigaction(SIGSEGV, &old, &back) == 0);
  CHECK(bool(back.sa_sigaction == program_handler));
  REQUIRE(sigaction(SIGSEGV, nullptr, &now) == 0);
  CHECK(bool(now.sa_handler == old.sa_handler));
  vmrt_vmspace_destroy(vs);
}

TEST_CASE("a chained handler gets sigaction delivery: its sa_mask blocked, SA_RESETHAND honoured") {
  REQUIRE(vmrt_init() == 0);
  struct sigaction sa{}, old{}, now{};
  sa.sa_sigaction = masked_handler;
  sa.sa_flags = SA_SIGINFO | SA_RESETHAND;
  sigemptyset(&sa.sa_mask);
  sigaddset(&sa.sa_mask, SIGUSR1);
  REQUIRE(sigaction(SIGSEGV, &sa, &old) == 0);
  g_masked_usr1 = 0;
  if (sigsetjmp(g_prog_env, 1) == 0) {
    *(volatile char*)(uintptr_t)64 = 1;
    FAIL("no fault");
  }
  CHECK(g_masked_usr1 == 1);
  CHECK(g_prog_addr == reinterpret_cast<void*>(64));
  // SA_RESETHAND: the disposition went back to SIG_DFL on delivery.
  REQUIRE(sigaction(SIGSEGV, nullptr, &now) == 0);
  CHECK((now.sa_flags & SA_SIGINFO) == 0);
  CHECK(bool(now.sa_handler == SIG_DFL));
  // The mask after siglongjmp is the one sigsetjmp saved (SIGUSR1 not blocked).
  sigset_t cur;
  pthread_sigmask(SIG_SETMASK, nullptr, &cur);
  CHECK(!sigismember(&cur, SIGUSR1));
  REQUIRE(sigaction(SIGSEGV, &old, nullptr) == 0);
}

TEST_CASE("other signals are plain sigaction(2)") {
  REQUIRE(vmrt_init() == 0);
  struct sigaction sa{}, old{}, kernel{};
  sa.sa_handler = SIG_IGN;
  sigemptyset(&sa.sa_mask);
  REQUIRE(vmrt_sigaction(SIGUSR2, &sa, &old) == 0);
  REQUIRE(__sigaction(SIGUSR2, nullptr, &kernel) == 0);
  CHECK(bool(kernel.sa_handler == SIG_IGN));
  REQUIRE(vmrt_sigaction(SIGUSR2, &old, nullptr) == 0);
  CHECK(vmrt_sigaction(0, &sa, nullptr) == -1);
}

// Issue 8: a frame refused during a fault (a RESOURCE trap) reaches the program as
// SIGBUS/BUS_ADRERR at the faulting address, as Linux delivers when it cannot supply a
// page of a mapping, never as SIGSEGV.
TEST_CASE("a fault refused for want of a frame is SIGBUS with BUS_ADRERR at the address") {
  REQUIRE(vmrt_init() == 0);
  vmrt_vmspace* vs = vmrt_vmspace_create(16u << 20);
  REQUIRE(vs != nullptr);
  char* p = fresh_mapping(vs);
  struct sigaction sa{}, old_bus{}, old_segv{};
  sa.sa_sigaction = program_handler;
  sa.sa_flags = SA_SIGINFO;
  sigemptyset(&sa.sa_mask);
  REQUIRE(vmrt_sigaction(SIGBUS, &sa, &old_bus) == 0);
  REQUIRE(vmrt_sigaction(SIGSEGV, &sa, &old_segv) == 0);
  static volatile int got_sig;
  got_sig = 0;
  struct sigaction probe = sa;
  probe.sa_sigaction = [](int sig, siginfo_t* si, void* uc) {
    got_sig = sig;
    program_handler(sig, si, uc);
  };
  REQUIRE(vmrt_sigaction(SIGBUS, &probe, nullptr) == 0);
  REQUIRE(vmrt_sigaction(SIGSEGV, &probe, nullptr) == 0);
  volatile char* target = p + (5 << 20) + 77;  // never touched: needs a frame
  fail_every_frame();
  g_prog_code = 0;
  g_prog_addr = nullptr;
  if (sigsetjmp(g_prog_env, 1) == 0) {
    *target = 1;
    vmrt::vm_fail_disarm();
    FAIL("the access did not trap");
  }
  vmrt::vm_fail_disarm();
  CHECK(got_sig == SIGBUS);
  CHECK(g_prog_code == BUS_ADRERR);
  CHECK(g_prog_addr == (void*)target);
  CHECK(vmrt::rt::trap_last().reason == vmrt::rt::TRAP_RESOURCE);
  *target = 2;  // frames are back: the same access succeeds
  CHECK(*target == 2);
  REQUIRE(vmrt_sigaction(SIGBUS, &old_bus, nullptr) == 0);
  REQUIRE(vmrt_sigaction(SIGSEGV, &old_segv, nullptr) == 0);
  vmrt_vmspace_destroy(vs);
}

TEST_CASE("an unhandled frame refusal kills the process with SIGBUS (default or ignored disposition)") {
  REQUIRE(vmrt_init() == 0);
  vmrt_vmspace* vs = vmrt_vmspace_create(16u << 20);
  REQUIRE(vs != nullptr);
  char* p = fresh_mapping(vs);
  for (void (*disp)(int) : {SIG_DFL, SIG_IGN}) {
    pid_t pid = rtt::vm_fork();
    if (pid == 0) {
      struct sigaction d{};
      d.sa_handler = disp;
      vmrt_sigaction(SIGBUS, &d, nullptr);
      d.sa_handler = SIG_DFL;
      vmrt_sigaction(SIGSEGV, &d, nullptr);
      vmrt_set_trap_hook(nullptr, nullptr);
      sigset_t bus;  // blocked, too: a fault's signal cannot be held off
      sigemptyset(&bus);
      sigaddset(&bus, SIGBUS);
      sigprocmask(SIG_BLOCK, &bus, nullptr);
      fail_every_frame();
      p[3 << 20] = 1;
      _exit(0);
    }
    int st = 0;
    REQUIRE(waitpid(pid, &st, 0) == pid);
    INFO("disposition " << (disp == SIG_DFL ? "SIG_DFL" : "SIG_IGN"));
    CHECK(WIFSIGNALED(st));
    CHECK(WTERMSIG(st) == SIGBUS);
  }
  vmrt_vmspace_destroy(vs);
}
