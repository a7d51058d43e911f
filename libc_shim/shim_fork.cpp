// shim_fork.cpp — process creation and resource limits under vmrt.
//
// fork(): the child's physmem (a new memfd with host memory for every frame in use, and
// the sign-in pipe) is obtained in the parent before the host fork (runtime_fork_reserve),
// so a shortage makes fork() return -1 with EAGAIN (no descriptor) or ENOMEM (no memory)
// as the kernel's fork would, and no child is created.  If the set-up still fails under
// the fork-time locks, the child exits inside the atfork handler before any program code
// runs; fork() reaps it and returns -1/ENOMEM.  glibc's own internal forks (daemon,
// forkpty) run the same atfork handlers but return the pid of such a child (which exits
// with status kForkSetupFailedStatus).  vfork and posix_spawn (and system/popen, which
// glibc builds on it) share the parent's memory until exec: they need nothing from vmrt.
//
// A fork made on a stack in vmrt's frames (a thread whose stack the program malloc'd, with
// the heap of frames or paging) runs on a stack of host memory instead (fork_off_frames):
// until the child has copied the frames in use (physmem_fork_child, in its atfork handler)
// both processes map the same frames, and the parent's fork handlers and the child's
// glibc fork code both wrote below the same stack pointer into them — each overwrote the
// other's frames and one of them crashed (scenario fork_malloc_stack).  On the host stack
// the program's stack is written by neither until the child has its copy (the parent
// waits for the child to sign in).
//
// RLIMIT_FSIZE: physmem's memfd is a file to the host; the kernel's hard limit is kept
// at least as large as it (the program's files still get the soft limit it set, and
// getrlimit reports its values).  Without that, `ulimit -f` in a shell killed the shell's
// next fork with SIGXFSZ.
//
// RLIMIT_AS: vmrt's own reservations (the region, the physmem direct map, page tables)
// are not the program's.  When the program sets RLIMIT_AS after vmrt booted, the kernel
// is given the program's value plus vmrt's footprint, and getrlimit/prlimit report the
// program's value back: the program keeps the room it would have natively, and a shell's
// `ulimit -v N` followed by fork does not leave the shell unable to map its child's
// physmem.  Before exec (execve and the exec family, interposed here) the soft limit is
// put back to the program's values, so the new image (under vmrt or not) runs with the
// limits the program asked for.  posix_spawn/system/popen children keep the raised
// limit (glibc spawns through internal calls; lowering it around the call would make the
// spawn's own stack mmap fail).  RLIMIT_DATA likewise, with vmrt's private tables and
// stacks (runtime_data_footprint) as the hidden share.
//
// Because the heap lives inside vmrt's reservation, the kernel cannot hold malloc to the
// program's RLIMIT_AS: the shim does.  When the program sets a finite RLIMIT_AS after
// boot, the room the limit leaves beside its own mappings (VmSize less vmrt's footprint)
// becomes the budget of heap pages kmem may hold (kmem_heap_set_budget: checked only when
// kmem takes pages, as the kernel checks only when glibc maps): a malloc past it returns
// NULL with ENOMEM, as glibc's does when mmap/brk hit the limit.  The room is computed
// when the limit is set (later host mappings of the program are the kernel's to refuse);
// an infinite limit lifts it.  A RLIMIT_DATA after boot bounds a heap of frames the same
// way (host-memory heap windows are private data the kernel itself counts).  Not in
// stage 0 (kmem over one host reservation, no heap): there vmrt's footprint is not known
// closely enough to tell the program's own mappings apart (a 256 MiB limit left 39 MiB),
// so malloc stays bounded by the reservation only.
#include <atomic>
#include <cerrno>
#include <cstdarg>
#include <cstddef>
#include <dlfcn.h>
#include <fcntl.h>
#include <cstring>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <ucontext.h>
#include <unistd.h>

#include "libc_shim/shim_boot.h"
#include "libc_shim/shim_next.h"
#include "runtime/kmem_vm_source.h"
#include "runtime/runtime_internal.h"
#include "runtime/boot.h"
#include "runtime/physmem.h"
#include "runtime/region.h"
#include "runtime/spinlock.h"
#include "vm/vm_sys.h"

#define VMRT_EXPORT extern "C" __attribute__((visibility("default")))

extern "C" pid_t __fork(void);  // glibc's fork: runs the atfork handlers
extern char** environ;

namespace vmrt::shim {
namespace {

// ---- limits as the program sees them -------------------------------------------------------
// RLIMIT_AS: the kernel holds the program's values + vmrt's address footprint.
// RLIMIT_FSIZE: the kernel's hard limit is kept at least as large as physmem's memfd, so
// physmem can raise the soft limit around its own ftruncate/pwrite (runtime/physmem.cpp);
// the program's files are held to the soft limit it set.
struct hidden_limit {
  int res;
  rt::spinlock lock;
  bool hidden;   // the kernel holds something else than view [lock]
  rlimit view;   // what the program set [lock]
  // Copies readable without the lock (exec wrappers run in vfork and fork children).
  std::atomic<bool> hidden_r;
  std::atomic<rlim_t> view_soft, view_hard;
};
hidden_limit g_limits[] = {{RLIMIT_AS, {}, false, {}, {false}, {RLIM_INFINITY}, {RLIM_INFINITY}},
                           {RLIMIT_DATA, {}, false, {}, {false}, {RLIM_INFINITY}, {RLIM_INFINITY}},
                           {RLIMIT_FSIZE, {}, false, {}, {false}, {RLIM_INFINITY}, {RLIM_INFINITY}}};

hidden_limit* find_limit(int res) {
  for (hidden_limit& l : g_limits)
    if (l.res == res) return &l;
  return nullptr;
}

int raw_prlimit(int res, const rlimit* nv, rlimit* ov) {
  long r = ::syscall(SYS_prlimit64, 0, res, nv, ov);
  return r == 0 ? 0 : -1;
}

rlim_t plus(rlim_t v, std::size_t f) {
  if (v == RLIM_INFINITY || v > RLIM_INFINITY - 1 - f) return RLIM_INFINITY;
  return v + f;
}

// The kernel's values for what the program asked; false when nothing needs hiding.
bool kernel_values(int res, const rlimit& want, rlimit* k) {
  *k = want;
  if (!runtime_booted()) return false;
  if (res == RLIMIT_AS || res == RLIMIT_DATA) {
    std::size_t f = res == RLIMIT_AS ? runtime_address_footprint() : runtime_data_footprint();
    if (f == 0 || (want.rlim_cur == RLIM_INFINITY && want.rlim_max == RLIM_INFINITY)) return false;
    k->rlim_cur = plus(want.rlim_cur, f);
    k->rlim_max = plus(want.rlim_max, f);
    return true;
  }
  std::size_t f = runtime_file_footprint();
  if (f == 0 || want.rlim_max == RLIM_INFINITY || want.rlim_max >= f) return false;
  k->rlim_max = f;
  return true;
}

int set_limit_locked(hidden_limit* l, const rlimit* nv, rlimit* ov) {
  rt::spin_guard g(l->lock);
  rlimit cur{};
  if (raw_prlimit(l->res, nullptr, &cur) != 0) return -1;
  rlimit view = l->hidden ? l->view : cur;
  if (nv != nullptr) {
    if (nv->rlim_cur > nv->rlim_max) {
      errno = EINVAL;
      return -1;
    }
    // Raising the hard limit above the program's own is the kernel's to refuse (EPERM
    // unless privileged): ask the kernel for that raise, not for the hidden value.
    if (l->hidden && nv->rlim_max > view.rlim_max) {
      rlimit probe = cur;
      probe.rlim_max = cur.rlim_max == RLIM_INFINITY ? RLIM_INFINITY : cur.rlim_max + (nv->rlim_max - view.rlim_max);
      if (raw_prlimit(l->res, &probe, nullptr) != 0) return -1;
    }
    rlimit k;
    bool hide = kernel_values(l->res, *nv, &k);
    if (raw_prlimit(l->res, &k, nullptr) != 0) return -1;
    l->hidden = hide;
    l->view = *nv;
    l->view_soft.store(nv->rlim_cur, std::memory_order_relaxed);
    l->view_hard.store(nv->rlim_max, std::memory_order_relaxed);
    l->hidden_r.store(hide, std::memory_order_release);
  }
  if (ov != nullptr) *ov = view;
  return 0;
}

// A field of /proc/self/status ("VmSize:", "VmData:") in bytes; 0 without /proc.
//  => no malloc (a stack buffer).
std::size_t vm_status_now(const char* key) {
  int fd = ::open("/proc/self/status", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  char buf[4096];
  std::size_t len = 0;
  for (;;) {
    ssize_t n = ::read(fd, buf + len, sizeof buf - 1 - len);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    len += static_cast<std::size_t>(n);
    if (len == sizeof buf - 1) break;
  }
  ::close(fd);
  buf[len] = '\0';
  const char* p = std::strstr(buf, key);
  if (p == nullptr) return 0;
  p += std::strlen(key);
  while (*p == ' ' || *p == '\t') ++p;
  std::size_t kb = 0;
  for (; *p >= '0' && *p <= '9'; ++p) kb = kb * 10 + static_cast<std::size_t>(*p - '0');
  return kb << 10;
}

// The room each limit leaves the heap (SIZE_MAX: none); the heap budget is the smaller.
std::atomic<std::size_t> g_room_as{SIZE_MAX}, g_room_data{SIZE_MAX};

// Hold the program's malloc family and operator new to the room its new soft limit `cur`
// of `res` (RLIMIT_AS or RLIMIT_DATA) leaves beside its own mappings (see the header
// comment).  RLIM_INFINITY lifts that limit's share.
//  => runtime booted; no lock of this file held.
void apply_malloc_limit(int res, rlim_t cur) {
  if (!runtime_vm_up()) return;
  std::size_t room = SIZE_MAX;
  if (res == RLIMIT_AS && cur != RLIM_INFINITY) {
    // The heap lies inside vmrt's reservation: VmSize less vmrt's footprint is the
    // program's own.
    std::size_t vmsize = vm_status_now("VmSize:"), footprint = runtime_address_footprint();
    std::size_t own = vmsize > footprint ? vmsize - footprint : 0;
    room = cur > own ? static_cast<std::size_t>(cur - own) : 0;
  } else if (res == RLIMIT_DATA && cur != RLIM_INFINITY &&
             runtime_current_config().heap == heap_backing::frames) {
    // Host-memory heap windows are private data: the kernel holds them to the limit (it
    // is given the program's value plus vmrt's own tables).  A heap of frames (the shared
    // memfd) is not data: the budget does it.
    std::size_t vmdata = vm_status_now("VmData:"), footprint = runtime_data_footprint();
    std::size_t own = vmdata > footprint ? vmdata - footprint : 0;
    room = cur > own ? static_cast<std::size_t>(cur - own) : 0;
  }
  (res == RLIMIT_AS ? g_room_as : g_room_data).store(room);
  std::size_t as = g_room_as.load(), data = g_room_data.load();
  std::size_t b = as < data ? as : data;
  rt::kmem_heap_set_budget(b == SIZE_MAX ? 0 : b == 0 ? 1 : b);
}

// setrlimit/prlimit on this process for a limit the shim tracks; a new RLIMIT_AS or
// RLIMIT_DATA also sets the malloc limit (apply_malloc_limit).
int set_limit(hidden_limit* l, const rlimit* nv, rlimit* ov) {
  int r = set_limit_locked(l, nv, ov);
  if (r == 0 && nv != nullptr && (l->res == RLIMIT_AS || l->res == RLIMIT_DATA) && runtime_booted())
    apply_malloc_limit(l->res, nv->rlim_cur);
  return r;
}

int get_limit(hidden_limit* l, rlimit* ov) {
  rt::spin_guard g(l->lock);
  if (l->hidden) {
    *ov = l->view;
    return 0;
  }
  return raw_prlimit(l->res, nullptr, ov);
}

bool is_self(pid_t pid) { return pid == 0 || pid == ::getpid(); }

// Before exec: the program's own limits back in the kernel (the new image is not this
// vmrt's).  If exec fails they are put back when the host allows it (raising a hard limit
// needs privilege: an unprivileged process whose exec failed keeps the program's values,
// which its own mappings may already exceed; it normally exits at once).
// Lock-free: may run in a vfork child or a fork child.
struct exec_guard {
  bool lowered[sizeof(g_limits) / sizeof(g_limits[0])] = {};
  rlimit saved[sizeof(g_limits) / sizeof(g_limits[0])] = {};
  exec_guard() {
    for (std::size_t i = 0; i < sizeof(g_limits) / sizeof(g_limits[0]); ++i) {
      hidden_limit& l = g_limits[i];
      if (!l.hidden_r.load(std::memory_order_acquire)) continue;
      if (raw_prlimit(l.res, nullptr, &saved[i]) != 0) continue;
      rlimit k{l.view_soft.load(std::memory_order_relaxed), l.view_hard.load(std::memory_order_relaxed)};
      lowered[i] = raw_prlimit(l.res, &k, nullptr) == 0;
    }
  }
  ~exec_guard() {  // exec failed
    int e = errno;
    for (std::size_t i = 0; i < sizeof(g_limits) / sizeof(g_limits[0]); ++i)
      if (lowered[i]) raw_prlimit(g_limits[i].res, &saved[i], nullptr);
    errno = e;
  }
  exec_guard(const exec_guard&) = delete;
  exec_guard& operator=(const exec_guard&) = delete;
};

// The real PATH-searching exec functions, resolved once at load (never in a vfork child).
using execvpe_fn = int (*)(const char*, char* const*, char* const*);
using fexecve_fn = int (*)(int, char* const*, char* const*);
execvpe_fn g_execvpe;
fexecve_fn g_fexecve;

__attribute__((constructor)) void resolve_exec() {
  const next_entry entries[] = {{next_slot(g_execvpe), "execvpe"}, {next_slot(g_fexecve), "fexecve"}};
  next_symbols(entries, 2);
}

int sys_execve(const char* path, char* const argv[], char* const envp[]) {
  return static_cast<int>(::syscall(SYS_execve, path, argv, envp));
}

int do_execvpe(const char* file, char* const argv[], char* const envp[]) {
  if (g_execvpe == nullptr) resolve_exec();  // called before our constructor ran
  if (g_execvpe == nullptr) {
    errno = ENOSYS;
    return -1;
  }
  return g_execvpe(file, argv, envp);
}

}  // namespace
}  // namespace vmrt::shim

namespace shim = vmrt::shim;

namespace vmrt::shim {
namespace {

// The host stack fork_off_frames runs __fork on, with the two contexts at its base.
constexpr std::size_t kForkStackBytes = std::size_t{256} << 10;
struct fork_frame {
  ucontext_t back;   // the caller's context (uc_link: __fork's return resumes it)
  ucontext_t there;  // __fork on the host stack
  pid_t pid;
  int err;
};
// The forking thread's frame (makecontext passes no pointer).
thread_local __attribute__((tls_model("initial-exec"))) fork_frame* t_fork_frame;

void fork_there() {
  fork_frame* f = t_fork_frame;
  f->pid = __fork();
  f->err = errno;
}

// Is the stack this runs on in vmrt's frames?  (A heuristic on the region and on physmem
// being in use: a needless switch only costs the stack's mapping.)
VMRT_FORK_PARENT_TEXT bool stack_in_frames() {
  char here;
  return rt::physmem_in_use() && rt::region_contains(reinterpret_cast<vaddr_t>(&here));
}

// __fork on a stack of host memory (see the top of this file); -1 with ENOMEM when the host
// gives no stack (as fork's own shortage), -1 with errno when switching to it fails, the
// pid otherwise.
pid_t fork_off_frames() {
  void* m = sys::mmap(nullptr, kForkStackBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (m == MAP_FAILED) {
    errno = ENOMEM;
    return -1;
  }
  auto* f = static_cast<fork_frame*>(m);
  t_fork_frame = f;
  if (getcontext(&f->there) != 0) {
    sys::munmap(m, kForkStackBytes);
    return -1;
  }
  f->there.uc_stack.ss_sp = static_cast<char*>(m) + sizeof(fork_frame);
  f->there.uc_stack.ss_size = kForkStackBytes - sizeof(fork_frame);
  f->there.uc_link = &f->back;
  makecontext(&f->there, fork_there, 0);
  if (swapcontext(&f->back, &f->there) != 0) {
    sys::munmap(m, kForkStackBytes);
    return -1;
  }
  const pid_t pid = f->pid;
  const int err = f->err;
  sys::munmap(m, kForkStackBytes);  // each process its own copy
  t_fork_frame = nullptr;
  errno = err;
  return pid;
}

}  // namespace
}  // namespace vmrt::shim

// In the fork text both sides run: the child returns through it.
VMRT_EXPORT VMRT_FORK_TEXT pid_t fork(void) noexcept {
  if (!shim::ready()) return __fork();
  int e = vmrt::runtime_fork_reserve();
  if (e != 0) {
    errno = e;
    return -1;
  }
  pid_t pid = shim::stack_in_frames() ? shim::fork_off_frames() : __fork();
  if (pid != 0) vmrt::runtime_fork_returned(pid);  // a failed quiet fork is not counted
  if (pid > 0) {
    int fe = vmrt::runtime_fork_error();
    if (fe != 0) {
      while (::waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
      }
      errno = fe;
      return -1;
    }
  }
  return pid;
}

VMRT_EXPORT int setrlimit(__rlimit_resource_t res, const struct rlimit* rl) noexcept {
  if (shim::hidden_limit* l = shim::find_limit(res)) return shim::set_limit(l, rl, nullptr);
  return shim::raw_prlimit(res, rl, nullptr);
}
static_assert(sizeof(struct rlimit) == sizeof(struct rlimit64));
VMRT_EXPORT int setrlimit64(__rlimit_resource_t res, const struct rlimit64* rl) noexcept {
  return setrlimit(res, reinterpret_cast<const struct rlimit*>(rl));
}
VMRT_EXPORT int getrlimit(__rlimit_resource_t res, struct rlimit* rl) noexcept {
  if (shim::hidden_limit* l = shim::find_limit(res)) return shim::get_limit(l, rl);
  return shim::raw_prlimit(res, nullptr, rl);
}
VMRT_EXPORT int getrlimit64(__rlimit_resource_t res, struct rlimit64* rl) noexcept {
  return getrlimit(res, reinterpret_cast<struct rlimit*>(rl));
}
VMRT_EXPORT int prlimit(pid_t pid, enum __rlimit_resource res, const struct rlimit* nv, struct rlimit* ov) noexcept {
  shim::hidden_limit* l = shim::find_limit(res);
  if (l != nullptr && shim::is_self(pid)) {
    if (nv == nullptr) {
      rlimit tmp;
      return shim::get_limit(l, ov != nullptr ? ov : &tmp);
    }
    return shim::set_limit(l, nv, ov);
  }
  long r = ::syscall(SYS_prlimit64, pid, res, nv, ov);
  return r == 0 ? 0 : -1;
}
VMRT_EXPORT int prlimit64(pid_t pid, enum __rlimit_resource res, const struct rlimit64* nv, struct rlimit64* ov) noexcept {
  return prlimit(pid, res, reinterpret_cast<const struct rlimit*>(nv), reinterpret_cast<struct rlimit*>(ov));
}

VMRT_EXPORT int execve(const char* path, char* const argv[], char* const envp[]) noexcept {
  shim::exec_guard g;
  return shim::sys_execve(path, argv, envp);
}
VMRT_EXPORT int execv(const char* path, char* const argv[]) noexcept {
  shim::exec_guard g;
  return shim::sys_execve(path, argv, environ);
}
VMRT_EXPORT int execvpe(const char* file, char* const argv[], char* const envp[]) noexcept {
  shim::exec_guard g;
  return shim::do_execvpe(file, argv, envp);
}
VMRT_EXPORT int execvp(const char* file, char* const argv[]) noexcept {
  shim::exec_guard g;
  return shim::do_execvpe(file, argv, environ);
}
VMRT_EXPORT int fexecve(int fd, char* const argv[], char* const envp[]) noexcept {
  shim::exec_guard g;
  if (shim::g_fexecve == nullptr) shim::resolve_exec();
  if (shim::g_fexecve == nullptr) {
    errno = ENOSYS;
    return -1;
  }
  return shim::g_fexecve(fd, argv, envp);
}

// execl/execlp/execle: the argument list copied into an array on the stack (no malloc:
// these may run in a vfork child).  The count includes the terminating null.
#define VMRT_ARGV_FROM_VA(first, ap_name)                                         \
  std::size_t n_args = 2;                                                          \
  {                                                                                \
    va_list c;                                                                     \
    va_copy(c, ap_name);                                                           \
    while (va_arg(c, char*) != nullptr) ++n_args;                                  \
    va_end(c);                                                                     \
  }                                                                                \
  char** argv = static_cast<char**>(__builtin_alloca(n_args * sizeof(char*)));     \
  argv[0] = const_cast<char*>(first);                                              \
  for (std::size_t k = 1; k < n_args; ++k) argv[k] = va_arg(ap_name, char*)

VMRT_EXPORT int execl(const char* path, const char* arg, ...) noexcept {
  va_list ap;
  va_start(ap, arg);
  VMRT_ARGV_FROM_VA(arg, ap);
  va_end(ap);
  return execv(path, argv);
}
VMRT_EXPORT int execlp(const char* file, const char* arg, ...) noexcept {
  va_list ap;
  va_start(ap, arg);
  VMRT_ARGV_FROM_VA(arg, ap);
  va_end(ap);
  return execvp(file, argv);
}
VMRT_EXPORT int execle(const char* path, const char* arg, ...) noexcept {
  va_list ap;
  va_start(ap, arg);
  VMRT_ARGV_FROM_VA(arg, ap);
  char* const* envp = va_arg(ap, char* const*);  // after the terminating null
  va_end(ap);
  return execve(path, argv, envp);
}
