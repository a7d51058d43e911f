// vm_out.cpp — buffered write(2) formatting.
#include "vm/vm_out.h"

#include <cstring>
#include <unistd.h>

namespace vmrt {

int vm_fmt_u64(char* buf, std::uint64_t v) {
  char tmp[24];
  int n = 0;
  do {
    tmp[n++] = static_cast<char>('0' + v % 10);
    v /= 10;
  } while (v != 0);
  for (int k = 0; k < n; ++k) buf[k] = tmp[n - 1 - k];
  return n;
}

void vm_out::flush() {
  std::size_t off = 0;
  while (off < n_) {
    ssize_t w = write(fd_, buf_ + off, n_ - off);
    if (w <= 0) break;
    off += static_cast<std::size_t>(w);
  }
  n_ = 0;
}

vm_out& vm_out::ch(char c) {
  if (n_ == sizeof buf_) flush();
  buf_[n_++] = c;
  return *this;
}

vm_out& vm_out::str(const char* s) {
  while (*s != '\0') ch(*s++);
  return *this;
}

vm_out& vm_out::str_w(const char* s, int width) {
  int len = static_cast<int>(std::strlen(s));
  str(s);
  return spaces(width - len);
}

vm_out& vm_out::spaces(int n) {
  for (int k = 0; k < n; ++k) ch(' ');
  return *this;
}

vm_out& vm_out::u(std::uint64_t v, int width) {
  char tmp[24];
  int n = vm_fmt_u64(tmp, v);
  spaces(width - n);
  for (int k = 0; k < n; ++k) ch(tmp[k]);
  return *this;
}

vm_out& vm_out::i(std::int64_t v, int width) {
  char tmp[24];
  int n = 0;
  std::uint64_t mag = v < 0 ? ~static_cast<std::uint64_t>(v) + 1 : static_cast<std::uint64_t>(v);
  if (v < 0) tmp[n++] = '-';
  n += vm_fmt_u64(tmp + n, mag);
  spaces(width - n);
  for (int k = 0; k < n; ++k) ch(tmp[k]);
  return *this;
}

vm_out& vm_out::hex(std::uint64_t v, int digits) {
  static constexpr char kHex[] = "0123456789abcdef";
  char tmp[16];
  int n = 0;
  do {
    tmp[n++] = kHex[v & 15];
    v >>= 4;
  } while (v != 0);
  str("0x");
  for (int k = n; k < digits; ++k) ch('0');
  for (int k = n - 1; k >= 0; --k) ch(tmp[k]);
  return *this;
}

}  // namespace vmrt
