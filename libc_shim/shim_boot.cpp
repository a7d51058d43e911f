// shim_boot.cpp — first-call boot, pthread_atfork handlers, the exit report.
#include "libc_shim/shim_boot.h"
#include "libc_shim/shim_thread.h"
#include "vm/vm_types.h"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "kmem/kmem.h"
#include "libc_shim/shim_alloc.h"
#include "libc_shim/shim_counters.h"
#include "libc_shim/shim_rtld.h"
#include "vm/vm_fail.h"
#include "vm/vm_out.h"
#include "vm/vm_sys.h"
#include "runtime/boot.h"
#include "runtime/rt_populate.h"
#include "runtime/rt_vma_budget.h"

namespace vmrt::shim {

VMRT_FORK_DATA std::atomic<int> g_boot_state{BOOT_DOWN};
// Fork children hold kmem's fast paths while they set themselves up: the heap is vmrt's
// frames, which may fault (atfork_child).  [set at boot]
VMRT_FORK_DATA bool g_fork_child_hold;

namespace {

VMRT_FORK_DATA std::atomic<long> g_boot_tid{0};  // tid of the booting thread while BOOT_BOOTING
// A private duplicate of VMRT_STATS_FD taken at boot (high number, close-on-exec):
// programs like coreutils close stdout and stderr in an atexit handler, before
// the report runs.  -1 when stats are off or the dup failed.
int g_report_fd = -1;  // written once by the booting thread

// First choice and fallback for the duplicate's number: out of the way of the
// program's own lowest-free-number descriptors.
constexpr int kReportFdMin[] = {800, 100, 10};

void keep_report_fd() {
  const runtime_config& c = runtime_current_config();
  if (!c.stats) return;
  for (int min : kReportFdMin) {
    g_report_fd = ::fcntl(c.stats_fd, F_DUPFD_CLOEXEC, min);
    if (g_report_fd >= 0 || errno == EBADF) return;
  }
}

VMRT_FORK_TEXT long current_tid() { return vmrt::sys::inline_syscall(SYS_gettid); }

// pthread_atfork handlers: every kmem/VM lock is taken before the host fork and
// released (parent) or reinitialised with fresh state (child) after it.
VMRT_FORK_PARENT_TEXT void atfork_prepare() {
  thread_start_fork_prepare();
  runtime_fork_prepare();
  // A quiet fork is counted by the runtime, in the thread's TLS (the fork data page is not
  // written: runtime/rt_stats.h, pending_forks); report_counters adds those.
  if (!runtime_fork_quiet()) count(C_FORKS);
}
// Both sides first make the pages every fork writes writable in one call (each was a
// copy-on-write fault: runtime/rt_populate.h).  After a quiet fork (runtime_fork_quiet) the
// parent writes no fork data: its static TLS alone, which the program's mallocs write.
VMRT_FORK_PARENT_TEXT void atfork_parent() {
  if (runtime_fork_quiet()) {
    rt::fork_populate_written(rt::fork_side::quiet_parent);
    return;
  }
  rt::fork_populate_written(rt::fork_side::parent);
  runtime_fork_parent();
}
// In the child, what the runtime allocates while it sets the child up (the control blocks
// of its new handler threads) comes from the bootstrap arena: heap pages may fault, and
// until a handler thread runs no fault can be served.
// The entry points' fast paths test no boot state (shim_alloc.h): the forking thread's
// cache would serve those allocations from the heap, so with a heap of vmrt frames (which
// may fault) kmem's fast paths are held meanwhile.  A heap of host memory faults as the
// host's own: the cache may serve them, and the child writes no kmem page for the hold.
// After a quiet fork the child starts no thread and allocates nothing while it sets
// itself up: the boot state is not touched (its page is written only when something
// changes: runtime/rt_fork.cpp, fork_can_be_quiet).
VMRT_FORK_CHILD_TEXT void atfork_child() {
  rt::fork_populate_written(rt::fork_side::child);
  thread_fork_child();
  const bool hold = g_fork_child_hold;
  if (runtime_fork_quiet() && !hold) {
    runtime_fork_child();
    return;
  }
  g_boot_tid.store(current_tid(), std::memory_order_release);
  g_boot_state.store(BOOT_BOOTING, std::memory_order_release);
  if (hold) kmem::fast_paths_hold(kHoldForkChild, true);
  runtime_fork_child();
  g_boot_state.store(BOOT_READY, std::memory_order_release);
  if (hold) kmem::fast_paths_hold(kHoldForkChild, false);
  g_boot_tid.store(0, std::memory_order_release);
}

// Fault injection armed or disarmed (vm_fail_set_arm_hook): the fast paths skip its test.
void fault_injection_armed(bool armed) { kmem::fast_paths_hold(kHoldFaultInjection, armed); }

// At exit (shared-object destructor, run by _dl_fini after the program's own
// atexit handlers and destructors): the VMRT_STATS report.
// With the fork text: every exiting process runs it, a fork child too (in the page it faulted in
// for its fork handler, not one more).
VMRT_FORK_TEXT __attribute__((destructor)) void shim_exit_report() {
  if (!ready()) {
    // A program that never called malloc: boot now so the report still appears.
    if (!runtime_stats_requested() || !ensure_booted()) return;
  }
  const runtime_config& c = runtime_current_config();
  if (!c.stats) return;
  report_now(g_report_fd >= 0 ? g_report_fd : c.stats_fd);
}

}  // namespace

void die(const char* a, const char* b) {
  vm_fd_out<512> m(2);
  m.str("vmrt: ").str(a).str(b).str("\n");
  m.flush();
  std::abort();
}

void assert_failed(const char* cond, const char* file, int line) {
  vm_fd_out<512> m(2);
  m.str("vmrt: libvmrt_malloc.so: assertion failed: ").str(cond).str(" (").str(file).str(":").i(line).str(")\n");
  m.flush();
  std::abort();
}

bool ensure_booted() {
  for (;;) {
    int s = g_boot_state.load(std::memory_order_acquire);
    if (s == BOOT_READY) return true;
    if (s == BOOT_FAILED) return false;
    if (s == BOOT_BOOTING) {
      if (g_boot_tid.load(std::memory_order_acquire) == current_tid()) return false;
      sched_yield();
      continue;
    }
    int expected = BOOT_DOWN;
    if (!g_boot_state.compare_exchange_strong(expected, BOOT_BOOTING, std::memory_order_acq_rel)) continue;
    g_boot_tid.store(current_tid(), std::memory_order_release);
    // Before any thread has a cache (none can before kmem is up): from now on armed fault
    // injection holds the fast paths (armed at load, VMRT_FAIL, it holds them at once).
    vm_fail_set_arm_hook(fault_injection_armed);
    rtld_boot();  // before boot maps the region: ld.so's segment, the objects' mappings
    rt::vma_budget_seed(rtld_mapping_estimate());  // no walk of /proc/self/maps at boot
    if (!runtime_boot()) {
      vm_fd_out<256> m(2);
      m.str("vmrt: libvmrt_malloc.so: the vmrt runtime failed to boot (see above): malloc returns NULL "
            "(ENOMEM) beyond a 1 MiB bootstrap arena in this process\n");
      m.flush();
      g_boot_state.store(BOOT_FAILED, std::memory_order_release);
      g_boot_tid.store(0, std::memory_order_release);
      return false;
    }
    keep_report_fd();
    g_fork_child_hold = runtime_heap_faults();
    g_boot_state.store(BOOT_READY, std::memory_order_release);
    g_boot_tid.store(0, std::memory_order_release);
    // May itself call malloc (handler list growth): we are ready, so that is fine.
    if (pthread_atfork(atfork_prepare, atfork_parent, atfork_child) != 0)
      die("libvmrt_malloc.so: pthread_atfork failed; fork would not be safe");
    return true;
  }
}

void report_now(int fd) {
  vm_fd_out<512> b(fd);
  char comm[64] = "?";
  int cfd = ::open("/proc/self/comm", O_RDONLY | O_CLOEXEC);
  if (cfd >= 0) {
    ssize_t n = ::read(cfd, comm, sizeof comm - 1);
    ::close(cfd);
    if (n > 0) {
      comm[n] = '\0';
      if (comm[n - 1] == '\n') comm[n - 1] = '\0';
    }
  }
  b.str("==== vmrt statistics: pid ").i(::getpid()).str(" (").str(comm).str(") at exit ====\n");
  b.flush();
  runtime_report(fd);
  report_counters(fd);
}

}  // namespace vmrt::shim
