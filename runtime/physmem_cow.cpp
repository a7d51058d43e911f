// physmem_cow.cpp — copy-on-write host fork of physmem frames (see physmem_cow.h).
#include "runtime/physmem_cow.h"
#include "vm/vm_sys.h"

#include <cerrno>
#include <csignal>
#include <fcntl.h>
#include <cstdlib>
#include <cstring>
#include <linux/userfaultfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "runtime/physmem.h"
#include "runtime/pmap_linux.h"
#include "runtime/rt_base.h"
#include "runtime/rt_stats.h"
#include "vm/vm_fds.h"
#include "vm/vm_page.h"
#include "vm/vm_heap.h"
#include "vm/vm_phys.h"

namespace vmrt::rt {

std::atomic<bool> g_cow_live{false};

namespace {

// The memory a parent and one child share: a header and one state byte per frame.
struct cow_record {
  std::atomic<std::uint64_t> pending;  // frames still PENDING (or in flight)
  std::atomic<std::int32_t> parent;    // the parent's pid
  std::uint8_t pad[64 - sizeof(std::atomic<std::uint64_t>) - sizeof(std::atomic<std::int32_t>)];
  std::atomic<std::uint8_t> state[];   // physmem_nframes() bytes
};
static_assert(sizeof(cow_record) == 64);

std::size_t record_bytes() { return (sizeof(cow_record) + physmem_nframes() + PAGE_SIZE - 1) & ~std::size_t{PAGE_MASK}; }

// A parent's child: its record and the child's memfd (a vm_fds handle: pushes pwrite into
// it, physmem_write).
struct cow_child {
  cow_record* rec = nullptr;
  int fd = -1;
  pid_t pid = 0;       // 0 until fork() returned
  // Found done: pushes skip it until the next fork drops the record.  Set by a thread
  // holding the VM lock or one holding the pmap lock: atomic.
  std::atomic<bool> gone{false};
  std::atomic<std::uint32_t> since{0};  // pushes since it was last asked whether it is done
  std::atomic<bool> failed{false};      // a push failed: the child is (to be) killed
};
// Pushes to a child between two looks at whether it is done (a waitid each).
constexpr std::uint32_t kCowLookEvery = 256;

// Parent side [VM and pmap locks to change; either to read].
constinit cow_child g_children[kCowChildren] = {};  // no initializer runs (scenario no_static_init)
unsigned g_nchildren;
// Child side: the record shared with the parent, the source view (the parent's memfd,
// read-only) and this process's own memfd (a vm_fds handle: pulls pwrite into it) [set in
// the fork child; cleared with both locks].
cow_record* g_source;
const char* g_source_view;
int g_own_fd = -1;
// VMRT_FORK_COW is not 0 (read at trap start: physmem_cow_allow).
bool g_allowed;
// The child's SIGBUS-mode userfaultfd during its set-up (-1: none).
int g_boot_uffd = -1;

void set_live() { g_cow_live.store(g_nchildren != 0 || g_source != nullptr, std::memory_order_release); }

void cpu_relax() { __builtin_ia32_pause(); }

char* frame_bytes(const char* base, frame_t f) {
  return const_cast<char*>(base) + (static_cast<std::size_t>(f) << PAGE_SHIFT);
}

// ---- parent ----------------------------------------------------------------------------------

std::size_t frame_offset(frame_t f) { return static_cast<std::size_t>(f) << PAGE_SHIFT; }

// A push the host refused (out of memory for the child's memfd): the child cannot have its
// page as of the fork, and the parent is about to change it.  The child is killed rather
// than left to run on a page it never had; before fork() returned (pid 0) it is killed when
// it has one (physmem_cow_parent).
void push_failed(cow_child& c, int e) {
  say("vmrt: copy-on-write fork: cannot give a child its copy of a page (", errno_name(e), "): the child is killed\n");
  c.failed.store(true, std::memory_order_relaxed);
  c.gone.store(true, std::memory_order_relaxed);
  if (c.pid > 0) ::kill(c.pid, SIGKILL);
  rt_count(RC_COW_PUSH_FAILURES);
}

// Copy frame f into child c's memfd unless the child has it (or never needed it).  A pwrite,
// not a store through a mapping of the child's memfd: the child's own touch of the page
// must wait until every byte is in (physmem_write).
void push_one(cow_child& c, frame_t f) {
  std::atomic<std::uint8_t>& s = c.rec->state[f];
  std::uint8_t v = s.load(std::memory_order_acquire);
  for (;;) {
    if (v == COW_CLEAN || v == COW_PULLING) return;  // PULLING: the child holds the bytes already
    if (v == COW_PUSHING) {                          // another thread of this process
      cpu_relax();
      v = s.load(std::memory_order_acquire);
      continue;
    }
    if (s.compare_exchange_weak(v, COW_PUSHING, std::memory_order_acq_rel)) break;
  }
  // Through a buffer this thread has just written, not from the direct map: the host's
  // write copies with page faults disabled and, when the source page is not mapped (a
  // direct-map page this process never touched, or one the host swapped out), hands the
  // child's page over zero-filled and up to date before it retries (physmem_write).
  if (!c.failed.load(std::memory_order_relaxed)) {
    alignas(64) char buf[PAGE_SIZE];
    std::memcpy(buf, physmem_frame(f), PAGE_SIZE);
    if (!physmem_write(c.fd, buf, PAGE_SIZE, frame_offset(f))) push_failed(c, errno);
  }
  s.store(COW_CLEAN, std::memory_order_release);
  c.rec->pending.fetch_sub(1, std::memory_order_relaxed);
  rt_count(RC_COW_PUSHES);
}

// Move child `from`'s slot into `to` (slots are not copyable: atomics).
void move_slot(unsigned to, unsigned from) {
  cow_child& t = g_children[to];
  cow_child& f = g_children[from];
  t.rec = f.rec;
  t.fd = f.fd;
  t.pid = f.pid;
  t.gone.store(f.gone.load(std::memory_order_relaxed), std::memory_order_relaxed);
  t.since.store(f.since.load(std::memory_order_relaxed), std::memory_order_relaxed);
  t.failed.store(f.failed.load(std::memory_order_relaxed), std::memory_order_relaxed);
}

void clear_slot(unsigned k) {
  cow_child& c = g_children[k];
  c.rec = nullptr;
  c.fd = -1;
  c.pid = 0;
  c.gone.store(false, std::memory_order_relaxed);
  c.since.store(0, std::memory_order_relaxed);
  c.failed.store(false, std::memory_order_relaxed);
}

void drop_child(unsigned k) {
  cow_child& c = g_children[k];
  vmrt::sys::munmap(c.rec, record_bytes());
  vm_fd_close(c.fd);
  if (k != g_nchildren - 1) move_slot(k, g_nchildren - 1);
  clear_slot(--g_nchildren);
}

// Push every pending frame to child k (it will not be asked again) and drop its record.
void complete_child(unsigned k) {
  cow_child& c = g_children[k];
  frame_t end = vm_phys_bump_unlocked();  // no frame above the bump at the fork was pending
  for (frame_t f = 0; f < end && c.rec->pending.load(std::memory_order_relaxed) != 0; ++f) push_one(c, f);
  drop_child(k);
}

// Has child k no more use for its record?  Everything copied, or the child is gone (exited:
// a zombie counts; waitid with WNOWAIT leaves it for the program to reap).
bool child_done(const cow_child& c) {
  if (c.rec->pending.load(std::memory_order_relaxed) == 0) return true;
  if (c.pid <= 0) return false;
  siginfo_t si{};
  int rc = ::waitid(P_PID, static_cast<id_t>(c.pid), &si, WEXITED | WNOHANG | WNOWAIT);
  if (rc == 0) return si.si_pid == c.pid;  // 0 when it still runs
  return errno == ECHILD;                  // reaped already (or not ours any more)
}

// Drop the records of children that are done.  => VM and pmap locks held.
void reap_children() {
  for (unsigned k = 0; k < g_nchildren;)
    if (g_children[k].gone.load(std::memory_order_relaxed) || child_done(g_children[k])) drop_child(k);
    else ++k;
}

// ---- child -----------------------------------------------------------------------------------

// The parent is gone (this process was reparented): a push it left in flight will not end.
bool parent_gone() { return ::getppid() != g_source->parent.load(std::memory_order_relaxed); }

// Make frame f this process's own, by copy (pull) or, with `copy` false, because it is about
// to be overwritten whole (claim).
void pull_one(frame_t f, bool copy) {
  std::atomic<std::uint8_t>& s = g_source->state[f];
  std::uint8_t v = s.load(std::memory_order_acquire);
  if (v == COW_CLEAN) return;
  alignas(64) char buf[PAGE_SIZE];
  for (;;) {
    if (v == COW_CLEAN) return;
    if (v == COW_PULLING) {  // another thread of this process
      cpu_relax();
      v = s.load(std::memory_order_acquire);
      continue;
    }
    if (v == COW_PUSHING) {
      if (!parent_gone()) {
        cpu_relax();
        v = s.load(std::memory_order_acquire);
        continue;
      }
      // The parent died mid-push: it had not written its frame yet (it writes only after
      // a push ends), so the source is intact.  Take the frame over.
    } else if (copy) {
      // Read first, claim second: a successful claim proves the parent had not begun to push,
      // so it had not written the frame while it was read.
      std::memcpy(buf, frame_bytes(g_source_view, f), PAGE_SIZE);
    }
    if (s.compare_exchange_weak(v, COW_PULLING, std::memory_order_acq_rel)) break;
  }
  if (copy && v == COW_PUSHING) std::memcpy(buf, frame_bytes(g_source_view, f), PAGE_SIZE);
  if (copy) {
    // A pwrite, as a push: another thread of this process touching the page waits until
    // every byte is in.  Should the host refuse (out of memory), a store through the direct
    // map is all there is left.
    if (!physmem_write(g_own_fd, buf, PAGE_SIZE, frame_offset(f))) std::memcpy(physmem_frame(f), buf, PAGE_SIZE);
    rt_count(RC_COW_PULLS);
  } else {
    rt_count(RC_COW_CLAIMS);
  }
  s.store(COW_CLEAN, std::memory_order_release);
  g_source->pending.fetch_sub(1, std::memory_order_relaxed);
}

}  // namespace

void physmem_cow_allow(bool allow) { g_allowed = allow; }

bool physmem_cow_wanted(std::size_t used) {
  return used != 0 && g_allowed && pmap_linux_uffd() >= 0 && pmap_linux_cow_capable();
}

bool physmem_cow_prepare(int child_fd) VMRT_REQUIRES(g_vm_lock) {
  reap_children();
  if (g_nchildren == kCowChildren) complete_child(0);
  void* rec = vmrt::sys::mmap(nullptr, record_bytes(), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (rec == MAP_FAILED) return false;
  // The parent's own descriptor of the child's memfd (the reserved one is closed after
  // fork()); in the child it becomes the child's own (physmem_cow_child_begin).
  int fd = vm_fd_keep(::fcntl(child_fd, F_DUPFD_CLOEXEC, 0));
  if (fd < 0) {
    vmrt::sys::munmap(rec, record_bytes());
    return false;
  }
  rt_count(RC_HOST_MMAP);
  cow_record* r = static_cast<cow_record*>(rec);
  r->parent.store(static_cast<std::int32_t>(::getpid()), std::memory_order_relaxed);
  // Every frame in use below the high-water mark is pending (a free frame is zeroed before
  // any reuse in the child: its record says it is not PG_ZERO).
  std::uint64_t n = 0;
  frame_t end = vm_phys_bump();
  for (frame_t f = 0; f < end; ++f) {
    if (vm_page_frame_free(f)) continue;
    r->state[f].store(COW_PENDING, std::memory_order_relaxed);
    ++n;
  }
  r->pending.store(n, std::memory_order_release);
  cow_child& c = g_children[g_nchildren++];
  clear_slot(g_nchildren - 1);
  c.rec = r;
  c.fd = fd;
  set_live();
  vaddr_t heap_lo = 0, heap_hi = 0;
  vm_heap_range(&heap_lo, &heap_hi);
  if (!pmap_linux_cow_protect(heap_lo, heap_hi)) {
    // The host refused write protection somewhere: this child is copied as before.
    drop_child(g_nchildren - 1);
    set_live();
    return false;
  }
  rt_count(RC_COW_FORKS);
  rt_count(RC_COW_SHARED_AT_FORK, static_cast<std::int64_t>(n));
  return true;
}

void physmem_cow_parent(pid_t pid) {
  if (g_nchildren == 0 || g_children[g_nchildren - 1].pid != 0) return;
  if (pid > 0) {
    cow_child& c = g_children[g_nchildren - 1];
    c.pid = pid;
    if (c.failed.load(std::memory_order_relaxed)) ::kill(pid, SIGKILL);  // a push before fork() returned failed
    return;
  }
  drop_child(g_nchildren - 1);  // fork failed: nothing will pull
  set_live();
}

bool physmem_cow_child_begin() {
  // The newest record is this child's; the others are the parent's business.
  cow_record* mine_rec = g_children[g_nchildren - 1].rec;
  // The parent's descriptor of this child's memfd: this process's own now, for pulls.
  int mine_fd = g_children[g_nchildren - 1].fd;
  for (unsigned k = 0; k + 1 < g_nchildren; ++k) {
    vmrt::sys::munmap(g_children[k].rec, record_bytes());
    vm_fd_close(g_children[k].fd);
  }
  for (unsigned k = 0; k < kCowChildren; ++k) clear_slot(k);
  g_nchildren = 0;
  if (g_source != nullptr) {  // a grandchild: its parent completed its own pulls first
    vmrt::sys::munmap(g_source, record_bytes());
    vmrt::sys::munmap(const_cast<char*>(g_source_view), physmem_bytes());
    vm_fd_close(g_own_fd);
  }
  g_source = mine_rec;
  g_own_fd = mine_fd;
  // The source: a second mapping of the parent's memfd, read-only (mremap with old size 0
  // duplicates the direct map; physmem_fork_child then replaces every other mapping of it).
  void* sv = vmrt::sys::mremap(physmem_frame(0), 0, physmem_bytes(), MREMAP_MAYMOVE);
  if (sv == MAP_FAILED) return false;
  rt_count(RC_HOST_MMAP);
  (void)vmrt::sys::mprotect(sv, physmem_bytes(), PROT_READ);
  g_source_view = static_cast<const char*>(sv);
  set_live();
  return true;
}

const void* physmem_cow_source_view() { return g_source_view; }

void physmem_cow_child_ready() {
  // A SIGBUS-mode userfaultfd over the program's frame mappings until the handler runs.
  int fd = static_cast<int>(::syscall(SYS_userfaultfd, O_CLOEXEC));
  if (fd >= 0) {
    fd = vm_fd_keep(fd);
    uffdio_api api{};
    api.api = UFFD_API;
    api.features = UFFD_FEATURE_SIGBUS;
    if (vm_fd_ioctl(fd, UFFDIO_API, &api) == 0) {
      g_boot_uffd = fd;
      if (pmap_linux_cow_register_boot(fd)) return;
      g_boot_uffd = -1;
    }
    vm_fd_close(fd);
  }
  // Without it a first touch before the handler runs would find a hole and read zeros:
  // take every pending frame now (the copy a fork made before this file).
  say("vmrt: fork child: no userfaultfd for the set-up: frames are copied\n");
  physmem_cow_complete_source();
}

int physmem_cow_boot_uffd() { return g_boot_uffd; }

void physmem_cow_child_handover() {
  if (g_boot_uffd < 0) return;
  vm_fd_close(g_boot_uffd);
  g_boot_uffd = -1;
}

namespace {

// Push frames [f, f + n) to every child that may still need them.  A child that exited (or
// has everything) is noticed every kCowLookEvery pushes and skipped from then on; the next
// fork drops its record.
void push_all(frame_t f, std::size_t n) {
  for (unsigned c = 0; c < g_nchildren && c < kCowChildren; ++c) {
    cow_child& ch = g_children[c];
    if (ch.gone.load(std::memory_order_relaxed)) continue;
    if (ch.since.fetch_add(1, std::memory_order_relaxed) + 1 >= kCowLookEvery) {
      ch.since.store(0, std::memory_order_relaxed);
      if (child_done(ch)) {
        ch.gone.store(true, std::memory_order_relaxed);
        continue;
      }
    }
    for (std::size_t k = 0; k < n; ++k) push_one(ch, f + static_cast<frame_t>(k));
  }
}

}  // namespace

void physmem_cow_touch(frame_t f, std::size_t n, bool write) {
  if (!g_cow_live.load(std::memory_order_acquire)) return;
  if (g_source != nullptr)
    for (std::size_t k = 0; k < n; ++k) pull_one(f + static_cast<frame_t>(k), true);
  if (write) push_all(f, n);
}

void physmem_cow_overwrite(frame_t f, std::size_t n) {
  if (!g_cow_live.load(std::memory_order_acquire)) return;
  if (g_source != nullptr)
    for (std::size_t k = 0; k < n; ++k) pull_one(f + static_cast<frame_t>(k), false);
  push_all(f, n);
}

bool physmem_cow_pending(frame_t f) {
  if (!g_cow_live.load(std::memory_order_acquire)) return false;
  if (g_source != nullptr && g_source->state[f].load(std::memory_order_acquire) != COW_CLEAN) return true;
  for (unsigned c = 0; c < g_nchildren && c < kCowChildren; ++c)
    if (!g_children[c].gone.load(std::memory_order_relaxed) && g_children[c].rec->state[f].load(std::memory_order_acquire) != COW_CLEAN) return true;
  return false;
}

void physmem_cow_complete_source() {
  if (g_source == nullptr) return;
  frame_t end = vm_phys_bump_unlocked();  // no frame above the bump at the fork is pending
  for (frame_t f = 0; f < end && g_source->pending.load(std::memory_order_relaxed) != 0; ++f) pull_one(f, true);
}

}  // namespace vmrt::rt
