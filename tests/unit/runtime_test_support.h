// runtime_test_support.h — helpers for runtime_*/api_* tests.
//
// RUNTIME_TESTS_UNDER_BOTH_BACKENDS(): when VMRT_TRAP is not set, the test
// executable re-runs itself (same arguments) once with VMRT_TRAP=sigsegv and once
// with VMRT_TRAP=userfaultfd, and exits non-zero if either run failed.  The runtime
// boots once per process, so each backend gets its own process.
#pragma once

#include <cerrno>
#include <csetjmp>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <string>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

#include "runtime/boot.h"
#include "runtime/trap.h"
#include "runtime/vmrt.h"

extern "C" int __sigaction(int sig, const struct sigaction* act, struct sigaction* old);

namespace rtt {

inline bool uffd_backend() { return std::strcmp(vmrt_trap_backend(), "userfaultfd") == 0; }

inline int run_under_both_backends() {
  if (std::getenv("VMRT_TRAP") != nullptr) return -1;
  std::string cmd;
  {
    int fd = open("/proc/self/cmdline", O_RDONLY);
    char buf[8192];
    ssize_t n = fd >= 0 ? read(fd, buf, sizeof buf) : -1;
    if (fd >= 0) close(fd);
    if (n > 0) cmd.assign(buf, static_cast<size_t>(n));
  }
  std::vector<char*> argv;
  for (size_t i = 0; i < cmd.size(); i += std::strlen(&cmd[i]) + 1) argv.push_back(&cmd[i]);
  argv.push_back(nullptr);
  int worst = 0;
  for (const char* b : {"sigsegv", "userfaultfd"}) {
    std::fprintf(stderr, "==== %s: VMRT_TRAP=%s ====\n", argv[0], b);
    pid_t pid = fork();
    if (pid == 0) {
      setenv("VMRT_TRAP", b, 1);
      execv("/proc/self/exe", argv.data());
      _exit(127);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    int rc = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    std::fprintf(stderr, "==== VMRT_TRAP=%s: %s (status %d) ====\n", b, rc == 0 ? "passed" : "FAILED", rc);
    if (rc != 0) worst = rc;
  }
  return worst;
}

// A host fork with the runtime's fork hooks (what the shim's pthread_atfork does).
inline pid_t vm_fork() {
  vmrt::runtime_fork_prepare();
  pid_t pid = fork();
  if (pid == 0) vmrt::runtime_fork_child();
  else vmrt::runtime_fork_parent();
  if (pid > 0) vmrt::runtime_fork_returned(pid);
  return pid;
}

// Trap capture: the hook records the trap and siglongjmps back.
struct trap_catcher {
  static inline sigjmp_buf env;
  static inline vmrt_trap last;
  static inline volatile int count;
  static void hook(const vmrt_trap* t, void*) {
    last = *t;
    count = count + 1;
    siglongjmp(env, 1);
  }
};

// Run f(); true when it trapped (caught by the hook).
template <class F> bool traps(F&& f) {
  vmrt_set_trap_hook(trap_catcher::hook, nullptr);
  bool trapped = false;
  if (sigsetjmp(trap_catcher::env, 1) == 0) {
    f();
  } else {
    trapped = true;
  }
  vmrt_set_trap_hook(nullptr, nullptr);
  return trapped;
}

inline long long counter(const char* name) { return vmrt_counter(name); }

inline bool check_ok(const vmrt_vmspace* vs) { return vmrt_check(vs, 2) == 0; }

}  // namespace rtt

// Paging on for this executable: VMRT_PHYSMEM=size before the runtime boots, inherited by
// the re-runs under each backend.  Before RUNTIME_TESTS_UNDER_BOTH_BACKENDS() (static
// initialisers of one file run in order).
#define RUNTIME_TESTS_WITH_PHYSMEM(size)                                                 \
  namespace {                                                                            \
  struct rtt_physmem_env {                                                               \
    rtt_physmem_env() { setenv("VMRT_PHYSMEM", size, 0); }                               \
  } rtt_physmem_env_instance;                                                            \
  }

#define RUNTIME_TESTS_UNDER_BOTH_BACKENDS()                                   \
  RUNTIME_TEST_ROUTE_SIGACTION()                                              \
  namespace {                                                                 \
  struct rtt_both_backends {                                                  \
    rtt_both_backends() {                                                     \
      int rc = rtt::run_under_both_backends();                                \
      if (rc >= 0) _exit(rc);                                                 \
    }                                                                         \
  } rtt_both_backends_instance;                                               \
  }

// doctest installs its own SIGSEGV/SIGBUS handlers around every test case; like the
// shim, a test executable interposes sigaction() so that, once vmrt is up, those two
// signals become the program's handler behind vmrt's (trap_sigaction) instead of
// replacing vmrt's handler.
#define RUNTIME_TEST_ROUTE_SIGACTION()                                                      \
  extern "C" int sigaction(int sig, const struct sigaction* act, struct sigaction* old) {   \
    if ((sig == SIGSEGV || sig == SIGBUS) && vmrt::runtime_booted())                        \
      return vmrt::rt::trap_sigaction(sig, act, old);                                       \
    return __sigaction(sig, act, old);                                                      \
  }
