// shim_write.h — output for the shim without the C library's stdio.
//
// The shim runs inside malloc: printf may allocate, so every message is
// formatted into a caller-provided buffer and written with write(2).  All
// functions are async-signal-safe and never allocate.
#pragma once

#include <cstddef>
#include <cstdint>

namespace vmrt::shim {

// A fixed buffer that formats text, decimal and hex numbers.  Overflow
// truncates silently (messages are diagnostics, never data).
struct line_buf {
  char text[512];  // formatted bytes
  std::size_t len = 0;

  line_buf& str(const char* s);
  line_buf& dec(std::uint64_t v);
  line_buf& hex(std::uint64_t v);  // "0x..." lower case
  line_buf& ptr(const void* p) { return hex(reinterpret_cast<std::uintptr_t>(p)); }
  // Write everything to fd (retrying on EINTR / short writes), then empty.
  void flush(int fd);
};

// write(2) a NUL-terminated string to fd, retrying short writes.
void write_all(int fd, const char* s, std::size_t n);
void write_str(int fd, const char* s);

}  // namespace vmrt::shim
