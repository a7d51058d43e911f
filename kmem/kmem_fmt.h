// kmem_fmt.h — formatting into a caller's buffer and writing with write(2).
//
// No malloc, no printf: usable at exit, inside malloc, after a fork.  A fmt_buf
// never overflows: text past the capacity is dropped (and `truncated` is set).
#pragma once

#include <cstddef>
#include <cstdint>

namespace vmrt::kmem::detail {

struct fmt_buf {
  char* buf;
  std::size_t cap;
  std::size_t len = 0;
  bool truncated = false;

  fmt_buf(char* b, std::size_t c) : buf(b), cap(c) {
    if (cap != 0) buf[0] = '\0';
  }
  void ch(char c);
  void str(const char* s);
  // s right-aligned in a field of `width` characters (left-aligned when left).
  void str_w(const char* s, int width, bool left = false);
  // Unsigned / signed decimal, right-aligned in `width` characters.
  void u64(std::uint64_t v, int width = 0);
  void i64(std::int64_t v, int width = 0);
  // 0x-prefixed lowercase hexadecimal.
  void hex(std::uintptr_t v);
  // NUL-terminate (the terminator is not counted in len).
  const char* c_str();
};

// write(2) all of [s, s+n) to fd, retrying on EINTR and short writes.
void write_all(int fd, const char* s, std::size_t n);
inline void write_buf(int fd, fmt_buf& b) { write_all(fd, b.buf, b.len); }

}  // namespace vmrt::kmem::detail
