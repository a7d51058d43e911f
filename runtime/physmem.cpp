// physmem.cpp — the memfd frame pool and the direct map.
#include "runtime/physmem.h"
#include "vm/vm_host_layout.h"
#include "vm/vm_sys.h"

#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <csignal>
#include <fcntl.h>
#include <pthread.h>
#include <time.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "runtime/physmem_cow.h"
#include "runtime/pmap_linux.h"
#include "runtime/rt_config.h"
#include "runtime/rt_base.h"
#include "runtime/rt_maps.h"
#include "runtime/rt_stats.h"
#include "vm/vm_fds.h"
#include "vm/vm_lock.h"
#include "vm/vm_out.h"
#include "vm/vm_page.h"
#include "vm/vm_phys.h"

namespace vmrt::rt {

char* g_direct_map;

namespace {

frame_t g_nframes;
std::size_t g_bytes;
// Identity of the current physmem memfd (its mappings are found by it in /proc/self/maps).
std::uint64_t g_dev, g_ino;
// The next fork child's memfd, reserved by the parent; -1 when none.
VMRT_FORK_DATA int g_next_fd VMRT_GUARDED_BY(g_vm_lock) = -1;
// The fork in progress shares frames copy-on-write (physmem_cow).
VMRT_FORK_DATA bool g_fork_cow VMRT_GUARDED_BY(g_vm_lock);
// No memfd of this process's own is behind the direct map: it is a PROT_NONE reservation
// until this process hands out its first frame (physmem_first_use).  True from boot, and in
// a fork child whose parent had handed out no frame.
VMRT_FORK_DATA bool g_unbacked;
// The largest program alternate signal stack a copy-on-write fork gives its child at once.
constexpr std::size_t kAltStackHold = std::size_t{256} << 10;
// Extra soft RLIMIT_NOFILE room fd_with_room may borrow for one call.
constexpr rlim_t kFdRoom = 8;

int memfd_make(void*) { return ::memfd_create("vmrt-physmem", MFD_CLOEXEC); }

// Run op() (true on success, errno set on failure) with RLIMIT_FSIZE out of vmrt's way: the
// memfd is not one of the program's files, but the host applies the program's file-size
// limit to it (ftruncate, pwrite) and raises SIGXFSZ, which kills by default.  SIGXFSZ is
// blocked in this thread for the call, the soft limit is raised to the hard one when it is
// lower, and a SIGXFSZ the host raised for vmrt's own failed call is consumed.
template <class F> bool fsize_room(F&& op) {
  sigset_t xfsz, old;
  sigemptyset(&xfsz);
  sigaddset(&xfsz, SIGXFSZ);
  pthread_sigmask(SIG_BLOCK, &xfsz, &old);
  bool was_pending = false;
  {
    sigset_t pend;
    if (sigpending(&pend) == 0) was_pending = sigismember(&pend, SIGXFSZ) == 1;
  }
  rlimit cur{};
  bool raised = false;
  if (::syscall(SYS_prlimit64, 0, RLIMIT_FSIZE, nullptr, &cur) == 0 && cur.rlim_cur != RLIM_INFINITY &&
      cur.rlim_cur < cur.rlim_max) {
    rlimit more = cur;
    more.rlim_cur = cur.rlim_max;
    raised = ::syscall(SYS_prlimit64, 0, RLIMIT_FSIZE, &more, nullptr) == 0;
  }
  bool ok = op();
  int e = errno;
  if (raised) (void)::syscall(SYS_prlimit64, 0, RLIMIT_FSIZE, &cur, nullptr);
  if (!ok && e == EFBIG && !was_pending) {
    timespec zero{0, 0};
    (void)::sigtimedwait(&xfsz, nullptr, &zero);
  }
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  errno = e;
  return ok;
}

// A new memfd of `bytes`, or -1 (errno set; EFBIG: RLIMIT_FSIZE is below it).
int make_memfd(std::size_t bytes) {
  int fd = fd_with_room(memfd_make, nullptr);
  if (fd < 0) return -1;
  if (!fsize_room([fd, bytes] { return ::ftruncate(fd, static_cast<off_t>(bytes)) == 0; })) {
    int e = errno;
    ::close(fd);
    errno = e;
    return -1;
  }
  return fd;
}

void remember_identity(int fd) {
  struct stat st;
  if (::fstat(fd, &st) == 0) {
    g_dev = st.st_dev;
    g_ino = st.st_ino;
  }
}

// Give the host memory behind frames back: MADV_REMOVE on the direct map punches the same
// hole in the memfd as fallocate would, without needing the descriptor.
void punch(frame_t f, std::size_t n) {
  (void)vmrt::sys::madvise(g_direct_map + (static_cast<std::size_t>(f) << PAGE_SHIFT), n << PAGE_SHIFT, MADV_REMOVE);
}

// Call f(first, count) for each run of frames in use below the allocation high-water mark
// (vm_phys_bump: no frame above it was ever handed out).  Stops at the first false.
//  => VM lock held (or the fork child's only thread).
template <class F> bool for_each_used_run(F&& f) VMRT_REQUIRES(g_vm_lock) {
  frame_t end = vm_phys_bump();
  if (end > g_nframes) end = g_nframes;
  frame_t i = 0;
  while (i < end) {
    if (vm_page_frame_free(i)) {
      ++i;
      continue;
    }
    frame_t j = i + 1;
    while (j < end && !vm_page_frame_free(j)) ++j;
    if (!f(i, static_cast<std::size_t>(j - i))) return false;
    i = j;
  }
  return true;
}

}  // namespace

int fd_with_room(int (*make)(void*), void* arg) {
  int fd = make(arg);
  if (fd >= 0 || (errno != EMFILE && errno != ENFILE)) return fd;
  int e = errno;
  rlimit cur{};
  bool can_raise = ::syscall(SYS_prlimit64, 0, RLIMIT_NOFILE, nullptr, &cur) == 0 && e == EMFILE &&
                   cur.rlim_cur != RLIM_INFINITY && (cur.rlim_max == RLIM_INFINITY || cur.rlim_cur < cur.rlim_max);
  if (!can_raise) {
    errno = e;
    return -1;
  }
  rlimit more = cur;
  more.rlim_cur = cur.rlim_max == RLIM_INFINITY || cur.rlim_max - cur.rlim_cur > kFdRoom ? cur.rlim_cur + kFdRoom
                                                                                          : cur.rlim_max;
  if (::syscall(SYS_prlimit64, 0, RLIMIT_NOFILE, &more, nullptr) != 0) {
    errno = e;
    return -1;
  }
  fd = make(arg);
  e = errno;
  (void)::syscall(SYS_prlimit64, 0, RLIMIT_NOFILE, &cur, nullptr);
  errno = e;
  return fd;
}

namespace {

// The direct map's range as a reservation with no memory behind it (PROT_NONE), at `at`
// (replacing what is there) or, with at null, below the host's mapping area (vm/vm_host_layout.h).
void* direct_map_reservation(void* at, std::size_t bytes) {
  if (at == nullptr) return vmrt::sys::host_reserve(bytes);
  return vmrt::sys::mmap(at, bytes, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED, -1, 0);
}

}  // namespace

bool physmem_init(std::size_t bytes, std::size_t frame_cache) {
  RT_ASSERT(g_direct_map == nullptr, "physmem initialised twice");
  bytes &= ~static_cast<std::size_t>(PAGE_MASK);
  std::size_t max_bytes = static_cast<std::size_t>(UINT32_MAX - 1) << PAGE_SHIFT;
  if (bytes > max_bytes) bytes = max_bytes;
  // The configuration's floor (runtime/rt_config.h), which boot's sizing and vmrun check:
  // a floor of 16 MiB here raised a 1M or 8M request without a word.
  if (bytes < kConfigMinPhysmem) bytes = kConfigMinPhysmem;
  // Only the address range now: the memfd is made when the first frame is handed out
  // (physmem_first_use).  Most processes under the shim never use a frame (the heap is
  // host memory), and each mapping call costs a host TLB shootdown on these guests.
  void* dm = direct_map_reservation(nullptr, bytes);
  if (dm == MAP_FAILED) {
    say("vmrt: cannot reserve the physmem direct map: ", errno_name(errno), "\n");
    return false;
  }
  g_unbacked = true;
  g_direct_map = static_cast<char*>(dm);
  g_bytes = bytes;
  g_nframes = static_cast<frame_t>(bytes >> PAGE_SHIFT);
  if (vm_page_startup(g_nframes) != KERN_SUCCESS) {
    say("vmrt: vm_page_startup failed (cannot map the page array)\n");
    physmem_abandon();
    return false;
  }
  {
    vm_lock_guard g;
    vm_page_cache_set_limit(static_cast<frame_t>((frame_cache < bytes ? frame_cache : bytes) >> PAGE_SHIFT));
  }
  vm_phys_set_first_use_hook(physmem_first_use);
  return true;
}

void physmem_abandon() {
  if (g_direct_map != nullptr) vmrt::sys::munmap(g_direct_map, g_bytes);
  g_direct_map = nullptr;
  g_bytes = 0;
  g_nframes = 0;
}

frame_t physmem_nframes() { return g_nframes; }
std::size_t physmem_bytes() { return g_bytes; }

// Frames that need zeroing are cached frames (host-resident): a memset through the direct
// map is far cheaper than punching them and paying for fresh host pages on the next mapping.
void physmem_zero(frame_t f, std::size_t n) {
  RT_ASSERT(static_cast<std::size_t>(f) + n <= g_nframes, "zero past physmem");
  physmem_cow_overwrite(f, n);
  std::memset(physmem_frame(f), 0, n << PAGE_SHIFT);
  rt_count(RC_PAGES_ZEROED, static_cast<std::int64_t>(n));
}

void physmem_release(frame_t f, std::size_t n) {
  RT_ASSERT(static_cast<std::size_t>(f) + n <= g_nframes, "release past physmem");
  physmem_cow_overwrite(f, n);  // a fork child still needing the bytes gets them first
  punch(f, n);
  rt_count(RC_PAGES_RELEASED, static_cast<std::int64_t>(n));
}

bool physmem_write(int h, const void* src, std::size_t len, std::size_t off) {
  auto write_all = [h, src, len, off] {
    vm_fd_use u(h);
    const char* s = static_cast<const char*>(src);
    std::size_t done = 0;
    while (done < len) {
      ssize_t w = ::pwrite(u.fd(), s + done, len - done, static_cast<off_t>(off + done));
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) {
        if (w == 0) errno = ENOSPC;
        return false;
      }
      done += static_cast<std::size_t>(w);
    }
    return true;
  };
  // The host holds the memfd to the program's RLIMIT_FSIZE: below the write's end the write
  // would raise SIGXFSZ, so it goes through fsize_room (rare: a shell's `ulimit -f`).
  rlimit cur{};
  if (::syscall(SYS_prlimit64, 0, RLIMIT_FSIZE, nullptr, &cur) == 0 &&
      (cur.rlim_cur == RLIM_INFINITY || cur.rlim_cur >= off + len))
    return write_all();
  return fsize_room(write_all);
}

std::size_t physmem_host_bytes() {
  if (g_direct_map == nullptr) return 0;
  // Frames never handed out are holes: count resident pages below the high-water mark only.
  std::size_t end;
  {
    vm_lock_guard g;
    end = static_cast<std::size_t>(vm_phys_bump());
  }
  if (end > g_nframes) end = g_nframes;
  VMRT_LARGE_BSS static unsigned char vec[4096];  // reports are not concurrent; no stack hog
  std::size_t resident = 0;
  for (std::size_t f = 0; f < end; f += sizeof vec) {
    std::size_t n = end - f < sizeof vec ? end - f : sizeof vec;
    if (vmrt::sys::mincore(physmem_frame(static_cast<frame_t>(f)), n << PAGE_SHIFT, vec) != 0) break;
    for (std::size_t k = 0; k < n; ++k) resident += vec[k] & 1;
  }
  return resident << PAGE_SHIFT;
}

// ---- fork --------------------------------------------------------------------------------

VMRT_FORK_PARENT_TEXT bool physmem_in_use() { return vm_phys_bump_unlocked() != 0; }

VMRT_FORK_CHILD_TEXT void physmem_fork_child_unused() {
  if (g_unbacked) return;  // already a reservation (a child of a child)
  // The parent's pool is not this process's: nothing of it is in use here, and keeping the
  // mapping would keep whatever the parent puts in it alive as long as this child lives.
  void* r = direct_map_reservation(g_direct_map, g_bytes);
  rt_count(RC_HOST_MMAP);
  if (r == MAP_FAILED) say("vmrt: fork child: cannot release the parent's physmem mapping: ", errno_name(errno), "\n");
  g_unbacked = true;
}

bool physmem_first_use() {
  if (!g_unbacked) return true;
  int fd = make_memfd(g_bytes);
  if (fd < 0) {
    say("vmrt: cannot create the physmem memfd: ", errno_name(errno), "\n");
    return false;
  }
  void* dm = vmrt::sys::mmap(g_direct_map, g_bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE | MAP_FIXED, fd, 0);
  rt_count(RC_HOST_MMAP);
  int e = errno;
  if (dm != MAP_FAILED) remember_identity(fd);  // a fork child finds its mappings by it
  ::close(fd);  // the direct map keeps the memfd alive; no descriptor stays in the program's table
  if (dm == MAP_FAILED) {
    say("vmrt: cannot map the physmem direct map: ", errno_name(e), "\n");
    return false;
  }
  // pmap maps frames by duplicating direct-map pages (mremap with old size 0): a seccomp
  // filter or host that refuses it leaves frames unusable, so find out before one is used.
  void* dup = vmrt::sys::mremap(dm, 0, PAGE_SIZE, MREMAP_MAYMOVE);
  if (dup == MAP_FAILED) {
    e = errno;
    (void)direct_map_reservation(g_direct_map, g_bytes);
    say("vmrt: cannot duplicate direct-map pages (mremap: ", errno_name(e), ")\n");
    return false;
  }
  vmrt::sys::munmap(dup, PAGE_SIZE);
  g_unbacked = false;
  return true;
}

namespace {
fork_setup reserve_copy() VMRT_REQUIRES(g_vm_lock);
}  // namespace

fork_setup physmem_fork_reserve() VMRT_REQUIRES(g_vm_lock) {
  if (g_next_fd < 0) {
    g_next_fd = make_memfd(g_bytes);
    if (g_next_fd < 0) {
      if (errno == EMFILE || errno == ENFILE) return fork_setup::no_descriptor;
      return errno == EFBIG ? fork_setup::file_size : fork_setup::no_memory;
    }
  }
  // Shared copy-on-write, the child's memory comes as it is used (as a host fork's would).
  if (physmem_cow_wanted(1)) return fork_setup::ok;
  return reserve_copy();
}

fork_setup physmem_fork_share(const vaddr_t* pages, std::size_t npages) VMRT_REQUIRES(g_vm_lock) {
  g_fork_cow = false;
  if (physmem_cow_wanted(1) && physmem_cow_prepare(g_next_fd)) {
    g_fork_cow = true;
    pmap_linux_cow_release(pages, npages);
    // Its alternate signal stack, if the program put one in vmrt's memory (gdb does): the
    // kernel writes a fault's signal frame there in the child before its handler runs.
    stack_t ss{};
    if (::sigaltstack(nullptr, &ss) == 0 && (ss.ss_flags & SS_DISABLE) == 0 && ss.ss_size <= kAltStackHold) {
      vaddr_t lo = trunc_page(reinterpret_cast<vaddr_t>(ss.ss_sp));
      vaddr_t hi = round_page(reinterpret_cast<vaddr_t>(ss.ss_sp) + ss.ss_size);
      vaddr_t page[kAltStackHold / PAGE_SIZE + 1];
      std::size_t n = 0;
      for (vaddr_t a = lo; a < hi && n < sizeof page / sizeof page[0]; a += PAGE_SIZE) page[n++] = a;
      pmap_linux_cow_release(page, n);
    }
    return fork_setup::ok;
  }
  return reserve_copy();
}

namespace {

fork_setup reserve_copy() VMRT_REQUIRES(g_vm_lock) {
  // Host memory for every frame in use, obtained now: a shortage fails the fork in the
  // parent instead of leaving a child without memory.  Ranges already allocated cost a walk.
  bool ok = for_each_used_run([](frame_t f, std::size_t n) VMRT_REQUIRES(g_vm_lock) {
    off_t off = static_cast<off_t>(static_cast<std::size_t>(f) << PAGE_SHIFT);
    int rc;
    while ((rc = ::fallocate(g_next_fd, 0, off, static_cast<off_t>(n << PAGE_SHIFT))) != 0 && errno == EINTR) {
    }
    return rc == 0;
  });
  if (!ok) {
    physmem_fork_release();  // the memory it got so far goes back with it
    return fork_setup::no_memory;
  }
  return fork_setup::ok;
}

}  // namespace

VMRT_FORK_PARENT_TEXT void physmem_fork_release() VMRT_REQUIRES(g_vm_lock) {
  if (g_next_fd >= 0) ::close(g_next_fd);
  g_next_fd = -1;
}

namespace {

struct remap_ctx {
  std::uint64_t dev, ino;
  int nfd;
  bool ok;
  std::uintptr_t keep;  // a mapping of the old memfd that stays (the copy-on-write source view)
};

void remap_line(const maps_line& l, void* arg) {
  remap_ctx* c = static_cast<remap_ctx*>(arg);
  if (!l.shared || l.inode != c->ino || l.dev != c->dev || l.lo == c->keep) return;
  void* r = vmrt::sys::mmap(reinterpret_cast<void*>(l.lo), l.hi - l.lo, l.prot, MAP_SHARED | MAP_FIXED | MAP_NORESERVE,
                   c->nfd, static_cast<off_t>(l.offset));
  rt_count(RC_HOST_MMAP);
  if (r == MAP_FAILED) c->ok = false;
}

}  // namespace

bool physmem_fork_child() VMRT_REQUIRES(g_vm_lock) {
  int nfd = g_next_fd;
  g_next_fd = -1;
  if (nfd < 0) {
    say("vmrt: fork child: no physmem was reserved for the child\n");
    return false;
  }
  // Copy every frame in use (free frames, cached or not, are not copied: the child's records
  // say they are not PG_ZERO, so they are zeroed before any reuse).  pwrite reads the direct
  // map: no second mapping of physmem, nothing charged to RLIMIT_AS.  A copy-on-write fork
  // copies nothing: the parent's memfd stays mapped read-only as the source of pulls.
  std::int64_t copied = 0;
  std::uintptr_t keep = 0;
  if (g_fork_cow) {
    if (!physmem_cow_child_begin()) {
      ::close(nfd);
      say("vmrt: fork child: cannot map the parent's physmem for copy-on-write: ", errno_name(errno), "\n");
      return false;
    }
    keep = reinterpret_cast<std::uintptr_t>(physmem_cow_source_view());
  }
  bool ok = g_fork_cow || fsize_room([&copied, nfd] {
    vm_lock_assume_held();  // run here, in the fork child's only thread, under the fork's lock
    return for_each_used_run([&copied, nfd](frame_t f, std::size_t n) {
    const char* src = physmem_frame(f);
    std::size_t len = n << PAGE_SHIFT;
    off_t off = static_cast<off_t>(static_cast<std::size_t>(f) << PAGE_SHIFT);
    while (len > 0) {
      ssize_t w = ::pwrite(nfd, src, len, off);
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) return false;
      src += w;
      off += w;
      len -= static_cast<std::size_t>(w);
    }
    copied += static_cast<std::int64_t>(n);
    return true;
    });
  });
  if (!ok) {
    ::close(nfd);
    say("vmrt: fork child: cannot copy physmem into the child's memfd: ", errno_name(errno), "\n");
    return false;
  }
  rt_count(RC_FORK_FRAMES_COPIED, copied);
  // Replace every mapping of the old memfd (the direct map and every pmap mapping) by the
  // same range of the new one, with the same protection.
  remap_ctx c{g_dev, g_ino, nfd, true, keep};
  // Reading /proc/self/maps needs a descriptor: a table full up to a soft limit below the
  // hard one borrows room for it (fd_with_room).
  struct scan_arg {
    remap_ctx* c;
    bool ok;
  } sa{&c, false};
  (void)fd_with_room(
      [](void* a) {
        scan_arg* s = static_cast<scan_arg*>(a);
        s->ok = maps_scan(remap_line, s->c);
        return s->ok ? 0 : -1;
      },
      &sa);
  if (!sa.ok) {
    ::close(nfd);
    say("vmrt: fork child: cannot read /proc/self/maps (physmem mappings cannot be replaced)\n");
    return false;
  }
  remember_identity(nfd);
  ::close(nfd);
  if (!c.ok) say("vmrt: fork child: some physmem mappings could not be replaced: ", errno_name(errno), "\n");
  if (c.ok && g_fork_cow) physmem_cow_child_ready();
  return c.ok;
}

}  // namespace vmrt::rt
