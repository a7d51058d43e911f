// shim_thread.cpp — a new thread's start survives a paged-out locale under sigsegv traps.
//
// glibc's start_thread runs __ctype_init before the thread's start routine, with every
// signal blocked: it reads the LC_CTYPE locale data (struct __locale_data), which setlocale
// malloc'd into the heap.  With a paged heap under the sigsegv backend, a paged-out page
// there meets a blocked SIGSEGV, which Linux makes fatal before any handler: the thread's
// process died (scenario paging, "forks (sigsegv)": fork children starting a thread failed
// in 3 of 11 loaded runs; vmrt's own pageout daemon in a fork child died the same way).  So
// pthread_create holds those pages (rt_vslock, as a system call's buffer) until the new
// thread reaches its start routine, where a trampoline releases them.  Under userfaultfd,
// or without a paged heap, pthread_create passes straight through.
//
// The same trampoline hands the new thread its creator's view of SIGSEGV/SIGBUS in its
// mask, which vmrt does not block for real (shim_signal.cpp, "Masks").
//
// And it sees the thread end.  glibc ends the process with exit(0) when its last thread
// ends (returns from its start routine, or calls pthread_exit: a main() that calls
// pthread_exit, a fork child whose only thread returns), by a count of the threads it
// created, vmrt's machine threads among them: with a userfaultfd handler or the pageout
// daemon running, the program's last thread ended alone, the process lived on with only
// vmrt's threads, and whoever waited for it waited forever (Python's test_threading under
// `--physmem`: a fork child's thread returning; its parent's waitpid never returned).  So
// the shim counts the program's threads (every pthread_create but vmrt's own goes through
// the trampoline), and when the last one ends while machine threads run, a machine thread
// waits until that thread is gone (its destructors run, as natively) and, when no thread
// but vmrt's runs, calls exit(0).  A thread ended by cancellation is seen by a
// thread-specific data destructor (glibc runs those for every thread end); without /proc
// nothing is done.
//
// A stack the program supplies (pthread_attr_setstack) may be vmrt memory: malloc'd, or
// from the program's mmap.  Under the sigsegv backend a fault on it is a signal, and a new
// thread has no alternate stack: the first fault of glibc's thread start on that stack
// found no place for the signal frame, and the kernel killed the process before the
// thread's first instruction.  And glibc puts the thread's descriptor (struct pthread:
// its rseq area, the tid the kernel clears at exit for pthread_join) at the top of that
// stack, where the kernel writes by itself (under userfaultfd too: the tid is cleared as
// the thread dies, and the kernel does not wait for a handler then: a paged-out descriptor
// left pthread_join asleep forever).  So pthread_create holds the top of such a
// stack (the descriptor, the static TLS and the start's frames, which glibc's thread exit
// reuses with every signal blocked) while the thread lives (runtime/rt_vslock_keep.h),
// until pthread_join reaps it; a detached thread's stays wired until the program frees the
// stack, and its TLS array is held for glibc to free at its end.  Every other fault on the stack is then an ordinary
// fault, served on the alternate stack.
#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <dlfcn.h>
#include <fcntl.h>
#include <locale.h>
#include <pthread.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "libc_shim/shim_boot.h"
#include "libc_shim/shim_next.h"
#include "libc_shim/shim_signal.h"
#include "libc_shim/shim_thread.h"
#include "runtime/rt_base.h"
#include "runtime/rt_stats.h"
#include "runtime/rt_vslock.h"
#include "runtime/rt_vslock_keep.h"
#include "runtime/trap.h"
#include "vm/vm_fork_store.h"
#include "vm/vm_heap.h"
#include "vm/vm_sys.h"

#define VMRT_EXPORT extern "C" __attribute__((visibility("default")))

namespace {

using create_fn = int (*)(pthread_t*, const pthread_attr_t*, void* (*)(void*), void*);
create_fn g_create;

__attribute__((constructor)) void resolve_create() {
  g_create = reinterpret_cast<create_fn>(vmrt::shim::next_address("pthread_create"));
}

// The global locale's LC_CTYPE data, as of the last pthread_create that could ask glibc
// (duplocale takes setlocale's lock, which a fork child's set-up must not: another thread of
// the parent may have held it at the fork).
const void* g_ctype_data;

const void* ctype_data() {
  if (vmrt::shim::ready()) {  // not the booting thread, nor a fork child's set-up
    if (locale_t d = ::duplocale(LC_GLOBAL_LOCALE); d != nullptr) {
      g_ctype_data = d->__locales[LC_CTYPE];
      ::freelocale(d);
    }
  }
  return g_ctype_data;
}

bool hold_needed() {
  return vmrt::rt::vslock_needed() && vmrt::vm_heap_is_paged();
}

struct start_ctx {
  void* (*fn)(void*);
  void* arg;
  unsigned faults_blocked;
  std::uintptr_t stack_top;  // of a program-supplied stack in vmrt memory; else 0
  std::uintptr_t start_low;  // the bottom of its start range (start_bytes below the top)
  vmrt::rt::vslock_hold hold;
};

// Is the calling thread detached?  (Asked at its end, as pthread_detach may have come late.)
bool self_detached() {
  pthread_attr_t a;
  if (::pthread_getattr_np(::pthread_self(), &a) != 0) return false;
  int state = PTHREAD_CREATE_JOINABLE;
  (void)::pthread_attr_getdetachstate(&a, &state);
  ::pthread_attr_destroy(&a);
  return state == PTHREAD_CREATE_DETACHED;
}

// A detached thread's end on a program stack: glibc frees its TLS (the dtv, malloc'd) with
// every signal blocked, where a paged-out dtv page is fatal under the sigsegv backend.  So
// the dtv is held, and the thread's holds are forgotten (nobody reaps it): their pages stay
// wired until freed, the dtv's at once by glibc.
void detached_end(std::uintptr_t self) {
  // x86-64 TCB: the thread pointer, then the dtv; dtv[-1] holds the number of entries,
  // each two words.
  auto* const* tcb = reinterpret_cast<std::uintptr_t* const*>(self);
  const std::uintptr_t* dtv = tcb[1];
  if (dtv != nullptr) {
    constexpr std::size_t kEntry = 2 * sizeof(std::uintptr_t);
    std::size_t n = dtv[-2] + 2;
    (void)vmrt::rt::vslock_keep(vmrt::rt::keep_kind::thread_exit, self, dtv - 2, n * kEntry);
    vmrt::rt::vslock_keep_forget(vmrt::rt::keep_kind::thread_exit, self);
  }
  vmrt::rt::vslock_keep_forget(vmrt::rt::keep_kind::thread_descriptor, self);
}

// The program's threads that have not ended: main's, and every one pthread_create made
// (counted before it starts).  A fork child's is its forking thread alone.
VMRT_FORK_DATA std::atomic<int> g_program_threads{1};

// Is thread tid running (listed, and not a zombie: a leader that ended first stays listed
// as one)?
bool task_running(int tid) {
  const char state = vmrt::rt::task_state(tid);
  return state != '\0' && state != 'Z' && state != 'X';
}

// The kernel's struct linux_dirent64 (getdents64), up to the start of its name.
struct dirent64_head {
  std::uint64_t ino;
  std::int64_t off;
  unsigned short reclen;
  unsigned char type;
  char name[1];
};
static_assert(__builtin_offsetof(dirent64_head, name) == 19, "linux_dirent64's layout");

// Which threads run: only vmrt's (named "vmrt-..."), some of the program's too, or /proc
// cannot say.
enum class threads_seen { only_vmrt, program, unknown };
threads_seen machine_threads_only() {
  int fd = static_cast<int>(vmrt::sys::inline_syscall(SYS_openat, AT_FDCWD, reinterpret_cast<long>("/proc/self/task"),
                                                      O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (fd < 0) return threads_seen::unknown;
  bool program = false, any = false;
  alignas(8) char buf[4096];
  for (long n; !program && (n = vmrt::sys::inline_syscall(SYS_getdents64, fd, reinterpret_cast<long>(buf), sizeof buf)) > 0;) {
    for (long off = 0; off < n;) {
      const auto* d = reinterpret_cast<const dirent64_head*>(buf + off);
      const char* name = d->name;
      off += d->reclen;
      if (name[0] < '0' || name[0] > '9') continue;  // "." and ".."
      int tid = 0;
      for (const char* p = name; *p >= '0' && *p <= '9'; ++p) tid = tid * 10 + (*p - '0');
      if (!task_running(tid)) continue;
      char comm[64];
      if (vmrt::rt::read_task_file(tid, "comm", comm, sizeof comm) < 0 ||
          __builtin_strncmp(comm, "vmrt-", 5) != 0)
        program = true;
      any = true;
    }
  }
  (void)vmrt::sys::inline_syscall(SYS_close, fd);
  return program ? threads_seen::program : any ? threads_seen::only_vmrt : threads_seen::unknown;
}

constexpr int kQuickChecks = 200;  // every 0.5 ms for the first 100 ms

// A machine thread: waits until the program's last thread (tid arg) is gone, then ends
// the process as glibc would have, when no thread but vmrt's runs (the program may have
// made one meanwhile: a destructor of the ending thread may).
void* exit_watch(void* arg) {
  const auto tid = static_cast<int>(reinterpret_cast<std::intptr_t>(arg));
  while (g_program_threads.load(std::memory_order_acquire) <= 0 && task_running(tid)) {
    timespec ts{0, 100 * 1000};
    (void)vmrt::sys::inline_syscall(SYS_nanosleep, reinterpret_cast<long>(&ts), 0);
  }
  // Threads the count does not know of (C11 thrd_create's, a SIGEV_THREAD timer's: glibc
  // makes them by internal calls) keep the process alive until they end, as natively, and a
  // thread of vmrt's not named as one runs for a moment now and then (the userfaultfd relay,
  // made while a thread waits in a fault): looked at again, quickly at first, then every
  // 20 ms, until only vmrt's run or the program makes a thread the count knows.
  for (int i = 0;; ++i) {
    if (g_program_threads.load(std::memory_order_acquire) > 0) return nullptr;
    switch (machine_threads_only()) {
      case threads_seen::only_vmrt: std::exit(0);
      case threads_seen::unknown: return nullptr;  // no /proc: nothing to go by
      case threads_seen::program: break;
    }
    timespec ts{0, i < kQuickChecks ? 500 * 1000 : 20 * 1000 * 1000};
    (void)vmrt::sys::inline_syscall(SYS_nanosleep, reinterpret_cast<long>(&ts), 0);
  }
}

// A program thread ends (its start routine returned, it calls pthread_exit, or it was
// cancelled).
void thread_ends() {
  if (g_program_threads.fetch_sub(1, std::memory_order_acq_rel) > 1) return;
  if (vmrt::rt::machine_thread_count() == 0) return;  // glibc's count reaches 0: it exits
  const long tid = vmrt::sys::inline_syscall(SYS_gettid);
  constexpr std::size_t kWatchStack = 64 * 1024;
  (void)vmrt::rt::start_machine_thread(exit_watch, reinterpret_cast<void*>(static_cast<std::intptr_t>(tid)), kWatchStack,
                                       "vmrt-exit");
}

// A thread ended by cancellation passes neither the trampoline's return nor the
// pthread_exit wrapper: glibc unwinds it to its start and runs its thread-specific data
// destructors there, as for every thread end.  So each counted thread holds a value under
// this key, whose destructor counts the end; the trampoline and pthread_exit clear the value
// before they count the end themselves.  No key (the program used all PTHREAD_KEYS_MAX):
// a cancelled thread is not seen, as before.
enum end_key_state : int { EK_NONE = 0, EK_MAKING = 1, EK_READY = 2, EK_FAILED = 3 };
std::atomic<int> g_end_key_state{EK_NONE};
pthread_key_t g_end_key;

void ended_unseen(void*) { thread_ends(); }

// => any program thread.  True when the key exists (made at the first call).
bool end_key_ready() {
  for (;;) {
    int s = g_end_key_state.load(std::memory_order_acquire);
    if (s == EK_READY) return true;
    if (s == EK_FAILED) return false;
    if (s == EK_MAKING || !g_end_key_state.compare_exchange_weak(s, EK_MAKING, std::memory_order_acq_rel)) continue;
    const bool ok = ::pthread_key_create(&g_end_key, ended_unseen) == 0;
    g_end_key_state.store(ok ? EK_READY : EK_FAILED, std::memory_order_release);
    return ok;
  }
}

// The calling program thread's end is counted by the key's destructor (counted) or by the
// caller (not).
void end_counted_by_key(bool counted) {
  if (!end_key_ready()) return;
  void* want = counted ? reinterpret_cast<void*>(1) : nullptr;
  if (::pthread_getspecific(g_end_key) != want) (void)::pthread_setspecific(g_end_key, want);
}

// The new thread's first code after glibc's own start: the locale is read, the hold goes.
// On a program-supplied stack it first gets vmrt's alternate stack and keeps its start range
// held (the descriptor, the TLS, the frames glibc's start and exit run in) for its life.
void* start_trampoline(void* p) {
  auto* c = static_cast<start_ctx*>(p);
  void* (*fn)(void*) = c->fn;
  void* arg = c->arg;
  std::uintptr_t top = c->stack_top;
  vmrt::shim::set_faults_blocked(c->faults_blocked);
  auto self = reinterpret_cast<std::uintptr_t>(::pthread_self());
  if (top != 0) {
    vmrt::rt::trap_thread_attach();
    (void)vmrt::rt::vslock_keep(vmrt::rt::keep_kind::thread_descriptor, self, reinterpret_cast<void*>(c->start_low),
                                top - c->start_low);
  }
  vmrt::rt::vsunlock(&c->hold);
  std::free(c);
  end_counted_by_key(true);  // a cancellation unwinds past the code below
  void* r = fn(arg);
  if (top != 0 && self_detached()) detached_end(self);
  end_counted_by_key(false);
  thread_ends();
  return r;
}

// Static TLS and the thread's start frames below it: what a new thread touches at the top
// of its stack before the trampoline runs.
constexpr std::size_t kStartFrameBytes = 16 * 1024;
using tls_info_fn = void (*)(std::size_t*, std::size_t*);
tls_info_fn g_tls_info;  // ld.so's _dl_get_tls_static_info (null: not found)

std::size_t start_bytes() {
  if (g_tls_info == nullptr) g_tls_info = reinterpret_cast<tls_info_fn>(::dlsym(RTLD_DEFAULT, "_dl_get_tls_static_info"));
  std::size_t size = 0, align = 0;
  if (g_tls_info != nullptr) g_tls_info(&size, &align);
  constexpr std::size_t kTlsGuess = 64 * 1024;  // without ld.so's answer
  return (g_tls_info != nullptr ? size : kTlsGuess) + kStartFrameBytes;
}

// The top of attr's stack when the program supplied one in vmrt memory (either backend: a
// dying thread's kernel write is served by neither), and in *size its size; 0 otherwise.
std::uintptr_t held_stack_top(const pthread_attr_t* attr, std::size_t* size) {
  if (attr == nullptr || !vmrt::rt::trap_started()) return 0;
  void* base = nullptr;
  *size = 0;
  // Without a program stack glibc reports base - size for an unset base: outside the region.
  if (::pthread_attr_getstack(attr, &base, size) != 0 || base == nullptr || *size == 0) return 0;
  if (!vmrt::rt::vslock_in_region(base, *size)) return 0;
  return reinterpret_cast<std::uintptr_t>(base) + *size;
}

// The bytes of struct __locale_data that __ctype_init reads (its header and the first
// values) lie within this much of its start.
constexpr std::size_t kCtypeDataBytes = 512;

}  // namespace

// => may sleep (holds).  EAGAIN, as for any other resource, when the trampoline's context
// cannot be allocated (a thread the count does not know of could be left running alone).
VMRT_EXPORT int pthread_create(pthread_t* t, const pthread_attr_t* attr, void* (*fn)(void*), void* arg) noexcept {
  if (g_create == nullptr) resolve_create();
  if (vmrt::rt::creating_machine_thread()) return g_create(t, attr, fn, arg);  // vmrt's own
  vmrt::rt::rt_fold_pending_forks();  // no quiet fork after this: counted where all threads see it
  unsigned faults = vmrt::shim::faults_blocked();
  bool hold = hold_needed();
  std::size_t stack_size = 0;
  std::uintptr_t top = held_stack_top(attr, &stack_size);
  const void* data = hold ? ctype_data() : nullptr;
  auto* c = static_cast<start_ctx*>(std::malloc(sizeof(start_ctx)));
  if (c == nullptr) return EAGAIN;
  c->fn = fn;
  c->arg = arg;
  c->faults_blocked = faults;
  c->stack_top = top;
  vmrt::rt::vslock_begin(&c->hold);
  if (top != 0) {
    const std::size_t want = start_bytes();
    const std::size_t n = want < stack_size ? want : stack_size;
    c->start_low = top - n;
    (void)vmrt::rt::vslock(&c->hold, reinterpret_cast<void*>(c->start_low), n, vmrt::VM_PROT_WRITE);
  }
  if (data != nullptr) (void)vmrt::rt::vslock(&c->hold, data, kCtypeDataBytes, vmrt::VM_PROT_READ);
  // The creator is a program thread too (main's first pthread_create marks main: cancelled
  // by another thread, it ends unseen as well).
  end_counted_by_key(true);
  g_program_threads.fetch_add(1, std::memory_order_acq_rel);
  int rc = g_create(t, attr, start_trampoline, c);
  if (rc != 0) {
    g_program_threads.fetch_sub(1, std::memory_order_acq_rel);
    vmrt::rt::vsunlock(&c->hold);
    std::free(c);
  }
  return rc;
}

// The join family: a thread reaped is gone for the kernel too (its tid cleared), so the
// descriptor's hold on a program-supplied stack goes (a no-op for other threads).
namespace {
int reaped(int rc, pthread_t t) {
  if (rc == 0) vmrt::rt::vslock_keep_release(vmrt::rt::keep_kind::thread_descriptor, reinterpret_cast<std::uintptr_t>(t));
  return rc;
}
int (*g_join)(pthread_t, void**);
int (*g_tryjoin)(pthread_t, void**);
int (*g_timedjoin)(pthread_t, void**, const timespec*);
int (*g_clockjoin)(pthread_t, void**, clockid_t, const timespec*);
int (*g_detach)(pthread_t);
}  // namespace

VMRT_EXPORT int pthread_join(pthread_t t, void** ret) { return reaped(vmrt::shim::next_symbol(g_join, "pthread_join")(t, ret), t); }
VMRT_EXPORT int pthread_tryjoin_np(pthread_t t, void** ret) noexcept {
  return reaped(vmrt::shim::next_symbol(g_tryjoin, "pthread_tryjoin_np")(t, ret), t);
}
VMRT_EXPORT int pthread_timedjoin_np(pthread_t t, void** ret, const timespec* abstime) {
  return reaped(vmrt::shim::next_symbol(g_timedjoin, "pthread_timedjoin_np")(t, ret, abstime), t);
}
VMRT_EXPORT int pthread_clockjoin_np(pthread_t t, void** ret, clockid_t clock, const timespec* abstime) {
  return reaped(vmrt::shim::next_symbol(g_clockjoin, "pthread_clockjoin_np")(t, ret, clock, abstime), t);
}
// A detached thread on a held program stack that ends here holds its TLS array for glibc's
// exit, as one that returns (start_trampoline).
VMRT_EXPORT void pthread_exit(void* ret) {
  static void (*g_exit)(void*);
  auto self = reinterpret_cast<std::uintptr_t>(::pthread_self());
  if (vmrt::rt::vslock_keep_has(vmrt::rt::keep_kind::thread_descriptor, self) && self_detached()) detached_end(self);
  end_counted_by_key(false);
  thread_ends();
  vmrt::shim::next_symbol(g_exit, "pthread_exit")(ret);
  __builtin_unreachable();
}

// Nobody will join it: its descriptor's pages stay wired until the program frees the stack.
VMRT_EXPORT int pthread_detach(pthread_t t) noexcept {
  int rc = vmrt::shim::next_symbol(g_detach, "pthread_detach")(t);
  if (rc == 0) vmrt::rt::vslock_keep_forget(vmrt::rt::keep_kind::thread_descriptor, reinterpret_cast<std::uintptr_t>(t));
  return rc;
}

VMRT_FORK_CHILD_TEXT void vmrt::shim::thread_fork_child() { fork_store(g_program_threads, 1); }

VMRT_FORK_PARENT_TEXT void vmrt::shim::thread_start_fork_prepare() {
  if (hold_needed()) (void)ctype_data();
}
