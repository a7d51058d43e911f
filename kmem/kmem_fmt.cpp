// kmem_fmt.cpp — allocation-free formatting and write(2) helpers.
#include "kmem/kmem_fmt.h"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <unistd.h>

#include "kmem/kmem_assert.h"

namespace vmrt::kmem::detail {

void fmt_buf::ch(char c) {
  if (len + 1 < cap) {
    buf[len++] = c;
    buf[len] = '\0';
  } else {
    truncated = true;
  }
}

void fmt_buf::str(const char* s) {
  if (s == nullptr) s = "(null)";
  while (*s != '\0') ch(*s++);
}

void fmt_buf::str_w(const char* s, int width, bool left) {
  if (s == nullptr) s = "(null)";
  int n = static_cast<int>(std::strlen(s));
  if (!left)
    for (int i = n; i < width; ++i) ch(' ');
  str(s);
  if (left)
    for (int i = n; i < width; ++i) ch(' ');
}

void fmt_buf::u64(std::uint64_t v, int width) {
  char tmp[24];
  int n = 0;
  do {
    tmp[n++] = static_cast<char>('0' + v % 10);
    v /= 10;
  } while (v != 0);
  for (int i = n; i < width; ++i) ch(' ');
  while (n > 0) ch(tmp[--n]);
}

void fmt_buf::i64(std::int64_t v, int width) {
  if (v >= 0) {
    u64(static_cast<std::uint64_t>(v), width);
    return;
  }
  char tmp[24];
  int n = 0;
  std::uint64_t m = static_cast<std::uint64_t>(-(v + 1)) + 1;
  do {
    tmp[n++] = static_cast<char>('0' + m % 10);
    m /= 10;
  } while (m != 0);
  tmp[n++] = '-';
  for (int i = n; i < width; ++i) ch(' ');
  while (n > 0) ch(tmp[--n]);
}

void fmt_buf::hex(std::uintptr_t v) {
  static constexpr char kDigits[] = "0123456789abcdef";
  char tmp[20];
  int n = 0;
  do {
    tmp[n++] = kDigits[v & 15];
    v >>= 4;
  } while (v != 0);
  ch('0');
  ch('x');
  while (n > 0) ch(tmp[--n]);
}

const char* fmt_buf::c_str() {
  if (cap != 0) buf[len < cap ? len : cap - 1] = '\0';
  return buf;
}

void write_all(int fd, const char* s, std::size_t n) {
  while (n > 0) {
    ssize_t w = ::write(fd, s, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return;
    }
    s += w;
    n -= static_cast<std::size_t>(w);
  }
}

[[noreturn]] void kmem_panic(const char* what, const char* msg, const char* file, int line) {
  char b[512];
  fmt_buf f(b, sizeof b);
  f.str("kmem: assertion failed: ");
  f.str(what);
  f.str(" (");
  f.str(msg);
  f.str(") at ");
  f.str(file);
  f.ch(':');
  f.u64(static_cast<std::uint64_t>(line));
  f.ch('\n');
  write_buf(2, f);
  std::abort();
}

}  // namespace vmrt::kmem::detail
