// shim_child.h — run shim checks in a child process that has libvmrt_malloc.so
// preloaded (so the shim IS malloc there), from an ordinary doctest executable.
//
// The test executable re-executes itself (/proc/self/exe) with
// LD_PRELOAD=<dir of exe>/../lib/libvmrt_malloc.so and VMRT_SHIM_CHILD=<case>.
// A constructor (run before doctest's main) sees the variable, runs the named
// check function and exits with its status.  The parent inspects the exit
// status, the signal and stderr.
#pragma once

#include <doctest/doctest.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <string>
#include <sys/wait.h>
#include <unistd.h>

namespace shim_child {

// Under AddressSanitizer (the VMRT_SANITIZE build) the shim is not built and an
// LD_PRELOAD malloc cannot replace ASan's interceptors: the cases are skipped.
#if defined(__SANITIZE_ADDRESS__)
inline constexpr bool kUnderSanitizer = true;
#else
inline constexpr bool kUnderSanitizer = false;
#endif
#define SHIM_TEST_CASE(name) TEST_CASE(name * doctest::skip(shim_child::kUnderSanitizer))

using check_fn = int (*)();
struct entry {
  const char* name;
  check_fn fn;
};

// Each test file defines this table (terminated by {nullptr, nullptr}).
extern const entry g_cases[];

// In the child: failures print and count; the case returns the failure count.
inline int g_failures = 0;
#define CHILD_CHECK(cond)                                                               \
  do {                                                                                  \
    if (!(cond)) {                                                                      \
      std::fprintf(stderr, "child check failed: %s (%s:%d)\n", #cond, __FILE__, __LINE__); \
      ++shim_child::g_failures;                                                         \
    }                                                                                   \
  } while (0)

__attribute__((constructor)) inline void dispatch() {
  const char* name = std::getenv("VMRT_SHIM_CHILD");
  if (name == nullptr) return;
  for (const entry* e = g_cases; e->name != nullptr; ++e) {
    if (std::strcmp(e->name, name) == 0) {
      int failures = e->fn();
      std::fflush(stdout);
      std::fflush(stderr);
      std::_Exit(failures == 0 ? 0 : 1);
    }
  }
  std::fprintf(stderr, "no such child case: %s\n", name);
  std::_Exit(3);
}

inline std::string shim_path() {
  char buf[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) return "";
  buf[n] = '\0';
  std::string s(buf);
  return s.substr(0, s.rfind('/')) + "/../lib/libvmrt_malloc.so";
}

struct result {
  int exit_code = -1;  // -1 when killed by a signal
  int signal = 0;
  std::string err;     // the child's stderr
};

// Run case `name` in a child with the shim preloaded; extra_env: "K=V" or null.
inline result run(const char* name, const char* extra_env = nullptr, int timeout_s = 60) {
  result r;
  std::string shim = shim_path();
  REQUIRE_MESSAGE(access(shim.c_str(), R_OK) == 0, "libvmrt_malloc.so not built: " << shim);
  int pipefd[2];
  REQUIRE(pipe(pipefd) == 0);
  pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    dup2(pipefd[1], 2);
    close(pipefd[0]);
    close(pipefd[1]);
    setenv("LD_PRELOAD", shim.c_str(), 1);
    setenv("VMRT_SHIM_CHILD", name, 1);
    if (extra_env != nullptr) putenv(const_cast<char*>(extra_env));
    alarm(static_cast<unsigned>(timeout_s));  // a deadlock becomes SIGALRM
    execl("/proc/self/exe", "shim_child", static_cast<char*>(nullptr));
    _exit(127);
  }
  close(pipefd[1]);
  char buf[4096];
  ssize_t n;
  while ((n = read(pipefd[0], buf, sizeof buf)) > 0 || (n < 0 && errno == EINTR))
    if (n > 0) r.err.append(buf, static_cast<std::size_t>(n));
  close(pipefd[0]);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(status)) r.exit_code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) r.signal = WTERMSIG(status);
  return r;
}

// A case that must pass in the child.
inline void expect_pass(const char* name, const char* extra_env = nullptr) {
  result r = run(name, extra_env);
  INFO("child case " << std::string(name) << ": exit " << r.exit_code << ", signal " << r.signal << ", stderr:\n" << r.err);
  CHECK(r.signal == 0);
  CHECK(r.exit_code == 0);
}

// A case that must abort (SIGABRT) with `message` on stderr.
inline void expect_abort(const char* name, const char* message, const char* extra_env = nullptr) {
  result r = run(name, extra_env);
  INFO("child case " << std::string(name) << ": exit " << r.exit_code << ", signal " << r.signal << ", stderr:\n" << r.err);
  CHECK(r.signal == SIGABRT);
  CHECK(r.err.find(message) != std::string::npos);
}

}  // namespace shim_child
