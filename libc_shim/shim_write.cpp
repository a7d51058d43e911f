// shim_write.cpp — write(2)-only formatting for shim messages.
#include "libc_shim/shim_write.h"

#include <cerrno>
#include <cstring>
#include <unistd.h>

namespace vmrt::shim {

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

void write_str(int fd, const char* s) { write_all(fd, s, std::strlen(s)); }

line_buf& line_buf::str(const char* s) {
  while (*s != '\0' && len < sizeof text) text[len++] = *s++;
  return *this;
}

line_buf& line_buf::dec(std::uint64_t v) {
  char tmp[24];
  int n = 0;
  do {
    tmp[n++] = static_cast<char>('0' + v % 10);
    v /= 10;
  } while (v != 0);
  while (n > 0 && len < sizeof text) text[len++] = tmp[--n];
  return *this;
}

line_buf& line_buf::hex(std::uint64_t v) {
  static constexpr char digits[] = "0123456789abcdef";
  char tmp[16];
  int n = 0;
  do {
    tmp[n++] = digits[v & 15];
    v >>= 4;
  } while (v != 0);
  str("0x");
  while (n > 0 && len < sizeof text) text[len++] = tmp[--n];
  return *this;
}

void line_buf::flush(int fd) {
  write_all(fd, text, len);
  len = 0;
}

}  // namespace vmrt::shim
