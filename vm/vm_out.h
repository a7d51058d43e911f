// vm_out.h — a tiny buffered writer over write(2) for reports and messages.
//
// No malloc, no stdio: a fixed buffer on the caller's stack, flushed when full and
// on destruction.  Async-signal-safe.
#pragma once

#include <cstddef>
#include <cstdint>

namespace vmrt {

class vm_out {
 public:
  explicit vm_out(int fd) : fd_(fd) {}
  ~vm_out() { flush(); }
  vm_out(const vm_out&) = delete;
  vm_out& operator=(const vm_out&) = delete;

  vm_out& ch(char c);
  vm_out& str(const char* s);
  // s left-aligned in a field of `width` characters (longer strings are not cut).
  vm_out& str_w(const char* s, int width);
  // Unsigned decimal, right-aligned in `width` (0: no padding).
  vm_out& u(std::uint64_t v, int width = 0);
  vm_out& i(std::int64_t v, int width = 0);
  // Hexadecimal with "0x", zero-padded to `digits` digits (0: minimal).
  vm_out& hex(std::uint64_t v, int digits = 0);
  vm_out& spaces(int n);
  void flush();

 private:
  int fd_;
  std::size_t n_ = 0;
  char buf_[1024];
};

// Format v as decimal into buf (no terminator); returns the length.  buf >= 20 bytes.
int vm_fmt_u64(char* buf, std::uint64_t v);

}  // namespace vmrt
