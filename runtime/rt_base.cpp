// rt_base.cpp — assertions, messages, the clock.
#include "runtime/rt_base.h"

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

std::uint64_t now_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<std::uint64_t>(ts.tv_nsec);
}

}  // namespace vmrt::rt
