// rt_base.h — what every runtime/ file needs: assertions and output that never
// allocate (usable inside malloc, in signal handlers, after a fork).
#pragma once

#include <cstddef>
#include <cstdint>

namespace vmrt::rt {

// Write "vmrt: <what> (<msg>) at file:line" to fd 2 and abort.
[[noreturn]] void rt_panic(const char* what, const char* msg, const char* file, int line);

// write(2) all of [s, s+n) to fd (retries EINTR and short writes; errno preserved).
void write_all(int fd, const char* s, std::size_t n);

// A line builder over a caller's buffer; text past the capacity is dropped.
struct out_buf {
  char* buf;
  std::size_t cap;
  std::size_t len = 0;
  out_buf(char* b, std::size_t c) : buf(b), cap(c) {}
  out_buf& ch(char c) {
    if (len < cap) buf[len++] = c;
    return *this;
  }
  out_buf& str(const char* s);
  // Decimal, right-aligned in `width` characters.
  out_buf& dec(std::uint64_t v, int width = 0);
  out_buf& sdec(std::int64_t v, int width = 0);
  // Fixed-point: v / 1000 with 3 decimals ("1.234").
  out_buf& milli(std::uint64_t v);
  out_buf& hex(std::uintptr_t v);
  // Left-aligned in `width` characters.
  out_buf& pad(const char* s, int width);
  void flush(int fd) {
    write_all(fd, buf, len);
    len = 0;
  }
};

// One-line message on stderr (three pieces).
void say(const char* a, const char* b = "", const char* c = "");

// Monotonic clock in nanoseconds (vDSO; async-signal-safe).
std::uint64_t now_ns();

}  // namespace vmrt::rt

#define RT_ASSERT(cond, msg)                                                        \
  do {                                                                              \
    if (__builtin_expect(!(cond), 0)) ::vmrt::rt::rt_panic(#cond, (msg), __FILE__, __LINE__); \
  } while (0)
