// vm_out.h — the one text formatter of the machine (vm/, kmem/, runtime/, libc_shim/).
//
// No malloc, no stdio, no locks: usable inside malloc, in signal handlers, after a
// fork.  Two modes over a caller-provided buffer:
//   - string mode, vm_out(buf, cap): the text is kept NUL-terminated in buf; text
//     past cap-1 bytes is dropped and truncated() becomes true (messages that are
//     built and then used as a string, e.g. kmem::describe);
//   - stream mode, vm_out(fd, buf, cap): buf is a staging area flushed to fd with
//     vm_write_all when full, on flush() and on destruction; nothing is dropped.
// vm_fd_out<N> is stream mode with its own N-byte buffer (on the caller's stack).
#pragma once

#include <cstddef>
#include <cstdint>

namespace vmrt {

// write(2) all of [s, s+n) to fd, retrying EINTR and short writes; gives up on
// any other error.  errno is preserved.  Async-signal-safe.
void vm_write_all(int fd, const char* s, std::size_t n);

class vm_out {
 public:
  // String mode (see above).  cap may be 0 (everything is dropped).
  vm_out(char* buf, std::size_t cap) : buf_(buf), cap_(cap) {
    if (cap_ != 0) buf_[0] = '\0';
  }
  // Stream mode (see above).  cap must be > 0.
  vm_out(int fd, char* buf, std::size_t cap) : fd_(fd), buf_(buf), cap_(cap) {}
  ~vm_out() { flush(); }
  vm_out(const vm_out&) = delete;
  vm_out& operator=(const vm_out&) = delete;

  vm_out& ch(char c);
  // nullptr prints "(null)".
  vm_out& str(const char* s);
  // s left-aligned in a field of `width` characters (longer strings are not cut).
  vm_out& str_w(const char* s, int width);
  // s right-aligned in a field of `width` characters.
  vm_out& str_r(const char* s, int width);
  // Unsigned / signed decimal, right-aligned in `width` (0: no padding).
  vm_out& u(std::uint64_t v, int width = 0);
  vm_out& i(std::int64_t v, int width = 0);
  // Hexadecimal with "0x", zero-padded to `digits` digits (0: minimal).
  vm_out& hex(std::uint64_t v, int digits = 0);
  // Hexadecimal without the "0x" prefix (as /proc names use).
  vm_out& hex_bare(std::uint64_t v);
  // The digits of v in lowercase hexadecimal, zero-padded to `digits`.
  vm_out& hex_digits(std::uint64_t v, int digits);
  vm_out& ptr(const void* p) { return hex(reinterpret_cast<std::uintptr_t>(p)); }
  vm_out& spaces(int n);

  // Stream mode: write what is buffered to the fd.  String mode: no-op.
  void flush();
  // Stream mode: change the fd written to by later flushes (flush first).
  void set_fd(int fd) { fd_ = fd; }
  // The text (string mode: all of it; stream mode: what is not flushed yet).
  const char* data() const { return buf_; }
  std::size_t len() const { return len_; }
  // String mode: NUL-terminated text.
  const char* c_str() const { return buf_; }
  bool truncated() const { return truncated_; }
  // Forget what is buffered (not written).
  void clear();

 private:
  int fd_ = -1;  // -1: string mode
  char* buf_;
  std::size_t cap_;
  std::size_t len_ = 0;
  bool truncated_ = false;
};

namespace detail {
template <std::size_t N>
struct vm_out_storage {
  char storage_[N];
};
}  // namespace detail

// Stream mode with its own buffer.  The storage is a base constructed before and
// destroyed after the vm_out that uses it.
template <std::size_t N = 1024>
class vm_fd_out : private detail::vm_out_storage<N>, public vm_out {
 public:
  explicit vm_fd_out(int fd) : vm_out(fd, this->storage_, N) {}
};

// Format v as decimal into buf (no terminator); returns the length.  buf >= 20 bytes.
int vm_fmt_u64(char* buf, std::uint64_t v);

}  // namespace vmrt
