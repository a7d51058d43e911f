// rt_base.cpp — assertions, messages, machine threads, the clock.
#include "runtime/rt_base.h"

#include <pthread.h>
#include <signal.h>
#include <time.h>

#include "vm/vm_assert.h"

namespace vmrt::rt {

void say(const char* a, const char* b, const char* c) {
  vm_fd_out<256> o(2);
  o.str(a).str(b).str(c);
}

[[noreturn]] void rt_panic(const char* what, const char* msg, const char* file, int line) {
  vm_assert_failed("vmrt", what, msg, file, line);
}

bool start_machine_thread(void* (*fn)(void*), void* arg, std::size_t stack, const char* name) {
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  pthread_attr_setstacksize(&attr, stack);
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);  // the new thread inherits the full mask
  pthread_t t;
  int rc = pthread_create(&t, &attr, fn, arg);
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  pthread_attr_destroy(&attr);
  if (rc != 0) return false;
  pthread_setname_np(t, name);
  return true;
}

std::uint64_t now_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<std::uint64_t>(ts.tv_nsec);
}

}  // namespace vmrt::rt
