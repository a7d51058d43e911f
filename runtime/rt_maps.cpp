// rt_maps.cpp — /proc/self/maps parsing without malloc.
#include "runtime/rt_maps.h"
#include "vm/vm_sys.h"

#include <cerrno>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/sysmacros.h>
#include <unistd.h>

namespace vmrt::rt {

namespace {

std::uint64_t parse_hex(const char*& p) {
  std::uint64_t v = 0;
  for (;; ++p) {
    char c = *p;
    if (c >= '0' && c <= '9') v = v * 16 + static_cast<unsigned>(c - '0');
    else if (c >= 'a' && c <= 'f') v = v * 16 + static_cast<unsigned>(c - 'a' + 10);
    else break;
  }
  return v;
}
std::uint64_t parse_dec(const char*& p) {
  std::uint64_t v = 0;
  for (; *p >= '0' && *p <= '9'; ++p) v = v * 10 + static_cast<unsigned>(*p - '0');
  return v;
}

}  // namespace

bool maps_scan(void (*f)(const maps_line&, void*), void* arg) {
  std::size_t cap = std::size_t{1} << 20;
  char* buf = nullptr;
  std::size_t len = 0;
  for (;;) {
    void* p = vmrt::sys::mmap(nullptr, cap, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return false;
    buf = static_cast<char*>(p);
    int fd = ::open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      vmrt::sys::munmap(p, cap);
      return false;
    }
    len = 0;
    for (;;) {
      ssize_t r = ::read(fd, buf + len, cap - len);
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) break;
      len += static_cast<std::size_t>(r);
      if (len == cap) break;
    }
    ::close(fd);
    if (len < cap) break;
    vmrt::sys::munmap(p, cap);
    cap *= 4;
  }
  const char* p = buf;
  const char* stop = buf + len;
  while (p < stop) {
    const char* q = p;
    while (p < stop && *p != '\n') ++p;
    if (p < stop) ++p;
    maps_line l{};
    l.lo = parse_hex(q);
    if (*q++ != '-') continue;
    l.hi = parse_hex(q);
    if (*q++ != ' ') continue;
    l.prot = (q[0] == 'r' ? PROT_READ : 0) | (q[1] == 'w' ? PROT_WRITE : 0) | (q[2] == 'x' ? PROT_EXEC : 0);
    l.shared = q[3] == 's';
    q += 5;
    l.offset = parse_hex(q);
    ++q;
    unsigned maj = static_cast<unsigned>(parse_hex(q));
    ++q;
    unsigned min = static_cast<unsigned>(parse_hex(q));
    ++q;
    l.dev = makedev(maj, min);
    l.inode = parse_dec(q);
    while (q < p && *q == ' ') ++q;
    const char* e = p;  // past the line's '\n' (or the end of the text)
    if (e > q && e[-1] == '\n') --e;
    l.path = q;
    l.path_len = e > q ? static_cast<std::size_t>(e - q) : 0;
    f(l, arg);
  }
  vmrt::sys::munmap(buf, cap);
  return true;
}

bool maps_file_path(std::uint64_t dev, std::uint64_t ino, char* buf, std::size_t cap) {
  struct ctx {
    std::uint64_t dev, ino;
    char* buf;
    std::size_t cap;
    bool found;
  } c{dev, ino, buf, cap, false};
  if (cap == 0) return false;
  maps_scan(
      [](const maps_line& l, void* a) {
        ctx* x = static_cast<ctx*>(a);
        if (x->found || l.inode != x->ino || l.dev != x->dev || l.path_len == 0) return;
        std::size_t n = l.path_len < x->cap - 1 ? l.path_len : x->cap - 1;
        __builtin_memcpy(x->buf, l.path, n);
        x->buf[n] = '\0';
        x->found = true;
      },
      &c);
  return c.found;
}

vma_count maps_count(std::uintptr_t lo, std::uintptr_t hi) {
  struct ctx {
    std::uintptr_t lo, hi;
    vma_count c;
  } c{lo, hi, {0, 0}};
  maps_scan(
      [](const maps_line& l, void* a) {
        ctx* x = static_cast<ctx*>(a);
        ++x->c.total;
        if (l.lo < x->hi && l.hi > x->lo) ++x->c.in_range;
      },
      &c);
  return c.c;
}

bool maps_total(std::size_t* out) {
  int fd = ::open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  char buf[16384];
  std::size_t n = 0;
  bool ok = true;
  for (;;) {
    ssize_t r = ::read(fd, buf, sizeof buf);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) ok = false;
    if (r <= 0) break;
    for (ssize_t i = 0; i < r; ++i) n += buf[i] == '\n';
  }
  ::close(fd);
  *out = n;
  return ok;
}

}  // namespace vmrt::rt
