// vm_out.cpp — allocation-free formatting into a buffer or onto an fd.
#include "vm/vm_out.h"

#include <cerrno>
#include <unistd.h>

namespace vmrt {

void vm_write_all(int fd, const char* s, std::size_t n) {
  int saved = errno;
  while (n > 0) {
    ssize_t w = ::write(fd, s, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (w == 0) break;
    s += w;
    n -= static_cast<std::size_t>(w);
  }
  errno = saved;
}

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
  if (fd_ < 0) return;
  vm_write_all(fd_, buf_, len_);
  len_ = 0;
}

void vm_out::clear() {
  len_ = 0;
  if (fd_ < 0 && cap_ != 0) buf_[0] = '\0';
}

vm_out& vm_out::ch(char c) {
  if (fd_ >= 0) {
    if (len_ == cap_) flush();
    buf_[len_++] = c;
  } else if (len_ + 1 < cap_) {
    buf_[len_++] = c;
    buf_[len_] = '\0';
  } else {
    truncated_ = true;
  }
  return *this;
}

vm_out& vm_out::str(const char* s) {
  if (s == nullptr) s = "(null)";
  while (*s != '\0') ch(*s++);
  return *this;
}

namespace {
int str_len(const char* s) {
  int n = 0;
  if (s == nullptr) return 6;  // "(null)"
  while (s[n] != '\0') ++n;
  return n;
}
}  // namespace

vm_out& vm_out::str_w(const char* s, int width) {
  int len = str_len(s);
  str(s);
  return spaces(width - len);
}

vm_out& vm_out::str_r(const char* s, int width) {
  spaces(width - str_len(s));
  return str(s);
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

vm_out& vm_out::hex(std::uint64_t v, int digits) { return str("0x").hex_digits(v, digits); }

vm_out& vm_out::hex_bare(std::uint64_t v) { return hex_digits(v, 0); }

vm_out& vm_out::hex_digits(std::uint64_t v, int digits) {
  static constexpr char kHex[] = "0123456789abcdef";
  char tmp[16];
  int n = 0;
  do {
    tmp[n++] = kHex[v & 15];
    v >>= 4;
  } while (v != 0);
  for (int k = n; k < digits; ++k) ch('0');
  for (int k = n - 1; k >= 0; --k) ch(tmp[k]);
  return *this;
}

}  // namespace vmrt
