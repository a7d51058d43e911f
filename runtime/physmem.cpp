// physmem.cpp — the memfd frame pool and the direct map.
#include "runtime/physmem.h"

#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runtime/rt_base.h"
#include "runtime/rt_maps.h"
#include "runtime/rt_stats.h"
#include "vm/vm_lock.h"
#include "vm/vm_out.h"
#include "vm/vm_page.h"

namespace vmrt::rt {

char* g_direct_map;

namespace {

int g_fd = -1;
frame_t g_nframes;
std::size_t g_bytes;
// Identity of the current physmem memfd: the program may close or replace the fd.
std::uint64_t g_dev, g_ino;

// Move fd to the top of the descriptor table (close-on-exec), out of the way of programs
// that use low numbers as they like (`exec 3>file` in a shell, dup2 onto 3, 4, ...).
int move_fd_high(int fd) {
  rlimit rl{};
  long top = ::getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY ? static_cast<long>(rl.rlim_cur) : 1024;
  if (top > 65536) top = 65536;
  for (long want = top - 1; want > fd && want >= top - 64; --want) {
    int hi = ::fcntl(fd, F_DUPFD_CLOEXEC, static_cast<int>(want));
    if (hi >= 0) {
      ::close(fd);
      return hi;
    }
  }
  return fd;  // no room up there: keep the low number
}

int make_memfd(std::size_t bytes) {
  int fd = ::memfd_create("vmrt-physmem", MFD_CLOEXEC);
  if (fd < 0) return -1;
  if (::ftruncate(fd, static_cast<off_t>(bytes)) != 0) {
    ::close(fd);
    return -1;
  }
  return move_fd_high(fd);
}

void remember_identity(int fd) {
  struct stat st;
  if (::fstat(fd, &st) == 0) {
    g_dev = st.st_dev;
    g_ino = st.st_ino;
  }
}

// A new physmem memfd of `bytes` and a shared read/write mapping of all of it (*map).
// => returns the fd, or -1 after writing no_fd / no_map (nothing is left open).
int make_mapped_memfd(std::size_t bytes, void** map, const char* no_fd, const char* no_map) {
  int fd = make_memfd(bytes);
  if (fd < 0) {
    say(no_fd);
    return -1;
  }
  *map = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, fd, 0);
  if (*map == MAP_FAILED) {
    ::close(fd);
    say(no_map);
    return -1;
  }
  return fd;
}

// Give the host memory behind frames back: MADV_REMOVE on the direct map punches the same
// hole in the memfd as fallocate would, without needing the descriptor.
void punch(frame_t f, std::size_t n) {
  (void)::madvise(g_direct_map + (static_cast<std::size_t>(f) << PAGE_SHIFT), n << PAGE_SHIFT, MADV_REMOVE);
}

}  // namespace

bool physmem_init(std::size_t bytes, std::size_t frame_cache) {
  RT_ASSERT(g_fd < 0, "physmem initialised twice");
  bytes &= ~static_cast<std::size_t>(PAGE_MASK);
  std::size_t max_bytes = static_cast<std::size_t>(UINT32_MAX - 1) << PAGE_SHIFT;
  if (bytes > max_bytes) bytes = max_bytes;
  if (bytes < (std::size_t{16} << 20)) bytes = std::size_t{16} << 20;
  void* dm;
  int fd = make_mapped_memfd(bytes, &dm, "vmrt: cannot create the physmem memfd\n",
                             "vmrt: cannot map the physmem direct map\n");
  if (fd < 0) return false;
  g_fd = fd;
  remember_identity(fd);
  g_direct_map = static_cast<char*>(dm);
  g_bytes = bytes;
  g_nframes = static_cast<frame_t>(bytes >> PAGE_SHIFT);
  if (vm_page_startup(g_nframes) != KERN_SUCCESS) {
    say("vmrt: vm_page_startup failed (cannot map the page array)\n");
    return false;
  }
  {
    vm_lock_guard g;
    vm_page_cache_set_limit(static_cast<frame_t>((frame_cache < bytes ? frame_cache : bytes) >> PAGE_SHIFT));
  }
  return true;
}

int physmem_fd() {
  struct stat st;
  if (g_fd >= 0 && ::fstat(g_fd, &st) == 0 && st.st_dev == g_dev && st.st_ino == g_ino) return g_fd;
  // The program closed or replaced our descriptor: find the memfd again through the
  // direct map's entry in /proc/self/map_files.
  char name[80];
  {
    vm_out o(name, sizeof name);
    o.str("/proc/self/map_files/")
        .hex_bare(reinterpret_cast<std::uintptr_t>(g_direct_map))
        .ch('-')
        .hex_bare(reinterpret_cast<std::uintptr_t>(g_direct_map) + g_bytes);
  }
  int fd = ::open(name, O_RDWR | O_CLOEXEC);
  if (fd < 0) return -1;
  if (::fstat(fd, &st) != 0 || st.st_dev != g_dev || st.st_ino != g_ino) {
    ::close(fd);
    return -1;
  }
  g_fd = move_fd_high(fd);
  rt_count(RC_PHYSMEM_FD_REOPENED);
  return g_fd;
}
frame_t physmem_nframes() { return g_nframes; }

// Frames that need zeroing are cached frames (host-resident): a memset through the direct
// map is far cheaper than punching them and paying for fresh host pages on the next mapping.
void physmem_zero(frame_t f, std::size_t n) {
  RT_ASSERT(static_cast<std::size_t>(f) + n <= g_nframes, "zero past physmem");
  std::memset(physmem_frame(f), 0, n << PAGE_SHIFT);
  rt_count(RC_PAGES_ZEROED, static_cast<std::int64_t>(n));
}

void physmem_release(frame_t f, std::size_t n) {
  RT_ASSERT(static_cast<std::size_t>(f) + n <= g_nframes, "release past physmem");
  punch(f, n);
  rt_count(RC_PAGES_RELEASED, static_cast<std::int64_t>(n));
}

std::size_t physmem_host_bytes() {
  struct stat st;
  int fd = physmem_fd();
  if (fd < 0 || ::fstat(fd, &st) != 0) return 0;
  return static_cast<std::size_t>(st.st_blocks) * 512;
}

// ---- fork --------------------------------------------------------------------------------

namespace {

struct remap_ctx {
  std::uint64_t dev, ino;
  int nfd;
  bool ok;
};

void remap_line(const maps_line& l, void* arg) {
  remap_ctx* c = static_cast<remap_ctx*>(arg);
  if (!l.shared || l.inode != c->ino || l.dev != c->dev) return;
  void* r = ::mmap(reinterpret_cast<void*>(l.lo), l.hi - l.lo, l.prot, MAP_SHARED | MAP_FIXED | MAP_NORESERVE,
                   c->nfd, static_cast<off_t>(l.offset));
  rt_count(RC_HOST_MMAP);
  if (r == MAP_FAILED) c->ok = false;
}

}  // namespace

bool physmem_fork_child() {
  int old_fd = physmem_fd();
  if (old_fd < 0) {
    say("vmrt: fork child: the physmem memfd is gone (closed by the program?)\n");
    return false;
  }
  void* tmp;
  int nfd = make_mapped_memfd(g_bytes, &tmp, "vmrt: fork child: cannot create a new physmem memfd\n",
                              "vmrt: fork child: cannot map the new physmem\n");
  if (nfd < 0) return false;
  // Copy every allocated extent of the old memfd (holes read as zeros in both), except
  // free frames (the free-frame cache keeps them host-resident): the child's records say
  // they are not PG_ZERO, so they are zeroed before any reuse.
  std::int64_t copied = 0;
  off_t off = 0;
  const off_t end = static_cast<off_t>(g_bytes);
  while (off < end) {
    off_t data = ::lseek(old_fd, off, SEEK_DATA);
    if (data < 0) break;  // ENXIO: no more data
    off_t hole = ::lseek(old_fd, data, SEEK_HOLE);
    if (hole < 0 || hole > end) hole = end;
    frame_t f = static_cast<frame_t>(data >> PAGE_SHIFT);
    frame_t fe = static_cast<frame_t>((hole + static_cast<off_t>(PAGE_MASK)) >> PAGE_SHIFT);
    while (f < fe) {
      if (vm_page_frame_free(f)) {
        ++f;
        continue;
      }
      frame_t j = f + 1;
      while (j < fe && !vm_page_frame_free(j)) ++j;
      std::size_t lo = static_cast<std::size_t>(f) << PAGE_SHIFT, hi = static_cast<std::size_t>(j) << PAGE_SHIFT;
      if (hi > static_cast<std::size_t>(hole)) hi = static_cast<std::size_t>(hole);
      if (lo < static_cast<std::size_t>(data)) lo = static_cast<std::size_t>(data);
      std::memcpy(static_cast<char*>(tmp) + lo, g_direct_map + lo, hi - lo);
      copied += j - f;
      f = j;
    }
    off = hole;
  }
  ::munmap(tmp, g_bytes);
  rt_count(RC_FORK_FRAMES_COPIED, copied);
  // Replace every mapping of the old memfd (the direct map and every pmap mapping) by the
  // same range of the new one, with the same protection.
  remap_ctx c{g_dev, g_ino, nfd, true};
  if (!maps_scan(remap_line, &c)) {
    ::close(nfd);
    say("vmrt: fork child: cannot read /proc/self/maps\n");
    return false;
  }
  ::close(old_fd);
  g_fd = nfd;
  remember_identity(nfd);
  if (!c.ok) say("vmrt: fork child: some physmem mappings could not be replaced\n");
  return c.ok;
}

}  // namespace vmrt::rt
