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

// The number in [p, e) at p (hex or decimal digits), p left on the first other byte.
std::uint64_t parse_hex(const char*& p, const char* e) {
  std::uint64_t v = 0;
  for (; p < e; ++p) {
    char c = *p;
    if (c >= '0' && c <= '9') v = v * 16 + static_cast<unsigned>(c - '0');
    else if (c >= 'a' && c <= 'f') v = v * 16 + static_cast<unsigned>(c - 'a' + 10);
    else break;
  }
  return v;
}
std::uint64_t parse_dec(const char*& p, const char* e) {
  std::uint64_t v = 0;
  for (; p < e && *p >= '0' && *p <= '9'; ++p) v = v * 10 + static_cast<unsigned>(*p - '0');
  return v;
}
// True when p < e and *p == c; then steps over it.
bool expect(const char*& p, const char* e, char c) {
  if (p >= e || *p != c) return false;
  ++p;
  return true;
}

}  // namespace

// Format (proc(5)): "lo-hi perms offset major:minor inode   path", numbers in hex but the
// inode, the path absent for most anonymous mappings.
bool maps_parse_line(const char* s, const char* e, maps_line* out) {
  const char* q = s;
  maps_line l{};
  l.lo = parse_hex(q, e);
  if (!expect(q, e, '-')) return false;
  l.hi = parse_hex(q, e);
  if (!expect(q, e, ' ') || e - q < 5) return false;
  l.prot = (q[0] == 'r' ? PROT_READ : 0) | (q[1] == 'w' ? PROT_WRITE : 0) | (q[2] == 'x' ? PROT_EXEC : 0);
  l.shared = q[3] == 's';
  q += 4;
  if (!expect(q, e, ' ')) return false;
  l.offset = parse_hex(q, e);
  if (!expect(q, e, ' ')) return false;
  const auto maj = static_cast<unsigned>(parse_hex(q, e));
  if (!expect(q, e, ':')) return false;
  const auto min = static_cast<unsigned>(parse_hex(q, e));
  if (!expect(q, e, ' ')) return false;
  l.dev = makedev(maj, min);
  l.inode = parse_dec(q, e);
  while (q < e && *q == ' ') ++q;
  l.path = q;
  l.path_len = static_cast<std::size_t>(e - q);
  *out = l;
  return true;
}

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
    const char* nl = static_cast<const char*>(__builtin_memchr(p, '\n', static_cast<std::size_t>(stop - p)));
    const char* e = nl != nullptr ? nl : stop;
    maps_line l;
    if (maps_parse_line(p, e, &l)) f(l, arg);
    p = nl != nullptr ? nl + 1 : stop;
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

bool maps_stream(char* buf, std::size_t cap, void (*f)(const maps_line&, void*), void* arg) {
  int fd = ::open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  auto line = [f, arg](const char* s, const char* e) {
    maps_line l;
    if (maps_parse_line(s, e, &l)) f(l, arg);
  };
  std::size_t len = 0;   // bytes of an unfinished line at buf's start
  bool skipping = false;  // inside a line already reported cut short
  bool ok = true;
  for (;;) {
    ssize_t r = ::read(fd, buf + len, cap - len);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) ok = false;
    if (r <= 0) break;
    const char* p = buf;
    const char* end = buf + len + static_cast<std::size_t>(r);
    while (const char* nl = static_cast<const char*>(__builtin_memchr(p, '\n', static_cast<std::size_t>(end - p)))) {
      if (!skipping) line(p, nl);
      skipping = false;
      p = nl + 1;
    }
    len = static_cast<std::size_t>(end - p);
    if (len == cap) {  // no newline in a full buffer: report the line cut, drop the rest of it
      if (!skipping) line(buf, end);
      skipping = true;
    }
    if (skipping) len = 0;
    else if (len != 0 && p != buf) __builtin_memmove(buf, p, len);
  }
  if (ok && len != 0 && !skipping) line(buf, buf + len);  // a last line without its newline
  ::close(fd);
  return ok;
}

bool maps_total(std::size_t* out) {
  char buf[16384];
  std::size_t n = 0;
  const bool ok = maps_stream(buf, sizeof buf, [](const maps_line&, void* a) { ++*static_cast<std::size_t*>(a); }, &n);
  *out = n;
  return ok;
}

}  // namespace vmrt::rt
