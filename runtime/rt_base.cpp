// rt_base.cpp — assertions and non-allocating output.
#include "runtime/rt_base.h"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <time.h>
#include <unistd.h>

namespace vmrt::rt {

void write_all(int fd, const char* s, std::size_t n) {
  int saved = errno;
  while (n > 0) {
    ssize_t w = ::write(fd, s, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      break;
    }
    s += w;
    n -= static_cast<std::size_t>(w);
  }
  errno = saved;
}

out_buf& out_buf::str(const char* s) {
  while (*s != '\0') ch(*s++);
  return *this;
}

out_buf& out_buf::dec(std::uint64_t v, int width) {
  char tmp[24];
  int n = 0;
  do {
    tmp[n++] = static_cast<char>('0' + v % 10);
    v /= 10;
  } while (v != 0);
  for (int i = n; i < width; ++i) ch(' ');
  while (n > 0) ch(tmp[--n]);
  return *this;
}

out_buf& out_buf::sdec(std::int64_t v, int width) {
  if (v < 0) {
    char tmp[24];
    out_buf t(tmp, sizeof tmp);
    t.ch('-').dec(static_cast<std::uint64_t>(-(v + 1)) + 1);
    for (int i = static_cast<int>(t.len); i < width; ++i) ch(' ');
    for (std::size_t i = 0; i < t.len; ++i) ch(tmp[i]);
    return *this;
  }
  return dec(static_cast<std::uint64_t>(v), width);
}

out_buf& out_buf::milli(std::uint64_t v) {
  dec(v / 1000).ch('.');
  std::uint64_t f = v % 1000;
  ch(static_cast<char>('0' + f / 100)).ch(static_cast<char>('0' + (f / 10) % 10)).ch(static_cast<char>('0' + f % 10));
  return *this;
}

out_buf& out_buf::hex(std::uintptr_t v) {
  str("0x");
  char tmp[20];
  int n = 0;
  do {
    tmp[n++] = "0123456789abcdef"[v & 15];
    v >>= 4;
  } while (v != 0);
  while (n > 0) ch(tmp[--n]);
  return *this;
}

out_buf& out_buf::pad(const char* s, int width) {
  int n = 0;
  for (; s[n] != '\0'; ++n) ch(s[n]);
  for (; n < width; ++n) ch(' ');
  return *this;
}

void say(const char* a, const char* b, const char* c) {
  char tmp[512];
  out_buf o(tmp, sizeof tmp);
  o.str(a).str(b).str(c);
  o.flush(2);
}

[[noreturn]] void rt_panic(const char* what, const char* msg, const char* file, int line) {
  char tmp[512];
  out_buf o(tmp, sizeof tmp);
  o.str("vmrt: assertion failed: ").str(what).str(" (").str(msg).str(") at ").str(file).ch(':').dec(
      static_cast<std::uint64_t>(line)).ch('\n');
  o.flush(2);
  std::abort();
}

std::uint64_t now_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<std::uint64_t>(ts.tv_nsec);
}

}  // namespace vmrt::rt
