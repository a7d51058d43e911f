// rt_fork.cpp — a host fork() of a process under the shim (rt_fork.h).
//
// Lock order: kmem -> VM -> pmap.  A quiet fork (one thread, nothing handed to the child)
// takes no lock and writes nothing of vmrt's after it; otherwise prepare takes every kmem
// and VM lock, the child gets its own physmem (a copy-on-write record of the parent's
// frames, or nothing when no frame was ever in use: the lazy fork) and signs in on a pipe
// the parent waits on, and both sides let the locks go (the child resets them).
#include "runtime/rt_fork.h"

#include <cerrno>
#include <fcntl.h>
#include <sys/single_threaded.h>
#include <unistd.h>

#include "kmem/kmem.h"
#include "runtime/boot.h"
#include "runtime/physmem.h"
#include "runtime/physmem_cow.h"
#include "runtime/pmap_linux.h"
#include "runtime/region.h"
#include "runtime/rt_base.h"
#include "runtime/rt_brk.h"
#include "runtime/rt_fork_prefault.h"
#include "runtime/rt_mlockall.h"
#include "runtime/rt_mmap.h"
#include "runtime/rt_pageout.h"
#include "runtime/rt_populate.h"
#include "runtime/rt_stats.h"
#include "runtime/runtime_internal.h"
#include "runtime/trap.h"
#include "vm/swap_pager.h"
#include "vm/vm_critical.h"
#include "vm/vm_fds.h"
#include "vm/vm_fork_store.h"
#include "vm/vm_heap.h"
#include "vm/vm_lock.h"
#include "vm/vm_pageout.h"

namespace vmrt {

// The parent waits, after fork, until the child has its own physmem: until then both map
// the same memfd, and a parent write would show through in the child.
namespace {

VMRT_FORK_DATA int g_fork_pipe[2] = {-1, -1};  // child -> parent: "physmem replaced"

int pipe_make(void* fds) { return ::pipe2(static_cast<int*>(fds), O_CLOEXEC) == 0 ? static_cast<int*>(fds)[0] : -1; }

// The forking thread's verdict, from prepare to the parent's fork() return.
thread_local __attribute__((tls_model("initial-exec"))) int t_fork_error;
// Set in prepare [held locks]: the child may run (its physmem and pipe are ready).
VMRT_FORK_DATA bool g_fork_ready;
// Set in prepare by the forking thread: no frame was in use, so the child gets no copy and
// the parent does not wait for it (physmem_fork_child_unused; the lazy fork).
thread_local __attribute__((tls_model("initial-exec"))) bool g_fork_lazy;
VMRT_FORK_DATA int g_fork_errno;  // why not [held locks]
// Set in prepare by the forking thread: a quiet fork (fork_can_be_quiet).  It and the other
// per-fork variables are stored with fork_store (vm/vm_fork_store.h).
thread_local __attribute__((tls_model("initial-exec"))) bool t_fork_quiet;

// A quiet fork: the forking thread is the process's only thread (glibc's
// __libc_single_threaded: no program thread was ever started, and vmrt has none of its
// own: no trap handler, no pageout daemon), it is in no critical section (so it holds no
// vmrt lock: vm/vm_critical.h), and the child is handed nothing (no frame was ever in use,
// the heap is not paged).  Then no lock can be held by anyone, and the fork takes none, as
// glibc's own fork takes its malloc and stdio locks only in a process with threads: neither
// side writes anything of vmrt's after the fork but what the program itself writes.  A
// shell's command substitution is one: the parent copied the fork data page at every fork
// (its locks released, its counters bumped after the fork), the child wrote the lock words
// and the boot state again, and gettid was asked for the boot state's owner (scenario
// fork_quiet; 200 bash $(echo)s: 1.176x -> 1.145x native, 41 interleaved runs).
//  => the forking thread, before the fork; reads only.
VMRT_FORK_PARENT_TEXT bool fork_can_be_quiet() {
  if (__libc_single_threaded == 0 || t_critical.depth != 0) return false;
  if (!g_vm_up) return true;
  return rt::machine_thread_count() == 0 && !rt::trap_started() && !rt::physmem_in_use() &&
         !rt::g_cow_live.load(std::memory_order_relaxed) && !vm_heap_is_paged();
}

// Takes back what runtime_fork_prepare counted for a quiet fork: in the parent when the
// fork failed, in the child (the fork is its parent's).
VMRT_FORK_TEXT void quiet_fork_uncount() {
  rt::pending_forks& p = rt::t_pending_forks;
  p.populated -= rt::fork_populate_quiet_pages();
  if (g_vm_up) --p.forks;
}

// Each end closed and forgotten separately, and only when open: a lazy fork has no pipe,
// and its child then neither writes here nor reads the two -1s from .rodata (the compiler
// merges `a = b = -1` into one 8-byte store of a constant there: a page fault in every
// fork child, measured with `perf record -e page-faults -d`).
VMRT_FORK_TEXT void close_fork_pipe() {
  for (int& fd : g_fork_pipe)
    if (fd >= 0) {
      ::close(fd);
      fd = -1;
    }
}

// Everything the child needs, under the VM lock.  0 or the errno fork() must fail with.
int fork_reserve_locked() VMRT_REQUIRES(g_vm_lock) {
  rt::fork_setup st = rt::physmem_fork_reserve();
  if (st != rt::fork_setup::ok) return st == rt::fork_setup::no_descriptor ? EAGAIN : ENOMEM;  // EFBIG too: fork(2) has no such error
  if (g_fork_pipe[0] < 0 && rt::fd_with_room(pipe_make, g_fork_pipe) < 0) {
    g_fork_pipe[0] = g_fork_pipe[1] = -1;
    rt::physmem_fork_release();
    return EAGAIN;
  }
  return 0;
}

}  // namespace

VMRT_FORK_PARENT_TEXT int runtime_fork_reserve() {
  if (!runtime_booted() || !g_vm_up) return 0;
  if (fork_can_be_quiet()) return 0;  // nothing to reserve, and no lock word written
  // Frames are shared copy-on-write only with a trap backend to serve the writes after the
  // fork (physmem_cow.h): a process whose frames are in use (VMRT_HEAP=frames, no paging)
  // starts one at its first fork.  Here no vmrt lock is held and malloc may be called.
  if (!rt::trap_started()) {
    bool used;
    {
      vm_lock_guard g;
      used = rt::physmem_in_use();
    }
    if (used) (void)runtime_trap_start();
  }
  vm_lock_guard g;
  if (!rt::physmem_in_use()) return 0;  // a lazy fork (runtime_fork_prepare decides again)
  int e = fork_reserve_locked();
  if (e != 0) rt::rt_count(rt::RC_FORK_SETUP_FAILED);
  return e;
}

VMRT_FORK_PARENT_TEXT int runtime_fork_error() { return t_fork_error; }

VMRT_FORK_PARENT_TEXT void runtime_fork_returned(pid_t pid) {
  // A quiet fork was counted in prepare, in the thread's pending counts (rt_stats.h); a
  // failed one is taken back.
  if (t_fork_quiet) {
    if (pid < 0) quiet_fork_uncount();
    return;
  }
  if (pid > 0 && g_vm_up && g_fork_lazy) rt::rt_count(rt::RC_HOST_FORKS);
  if (pid > 0 && g_vm_up && rt::g_cow_live.load(std::memory_order_acquire)) {
    vm_lock_guard g;
    rt::physmem_cow_parent(pid);  // the copy-on-write record is this child's
  }
}

// The pages libc's fork touches must stay ready until the VM lock is held
// (rt_fork_prefault.h): a pageout scan that took one back between the touch and the lock
// makes the handler let go of its locks and touch again, this many times at most.
constexpr int kForkPrefaultTries = 8;

VMRT_FORK_PARENT_TEXT bool runtime_fork_quiet() { return t_fork_quiet; }

// The VM lock is taken here and let go in runtime_fork_parent or runtime_fork_child (across the
// host fork), which the analysis cannot follow from one function to another.
VMRT_FORK_PARENT_TEXT void runtime_fork_prepare() VMRT_NO_THREAD_SAFETY_ANALYSIS {
  const bool quiet = fork_can_be_quiet();
  fork_store(t_fork_quiet, quiet);
  if (quiet) {
    kmem::fork_prepare();  // takes nothing either: one thread
    fork_store(t_fork_error, 0);
    // Counted before the fork, in the thread's TLS (no counter on the fork data page is
    // written): the TLS pages the shim's parent handler populates, and the fork.
    rt::t_pending_forks.populated += rt::fork_populate_quiet_pages();
    if (!g_vm_up) return;
    fork_store(g_fork_lazy, true);
    fork_store(g_fork_errno, 0);
    fork_store(g_fork_ready, true);
    ++rt::t_pending_forks.forks;
    return;
  }
  rt::rt_fold_pending_forks();
  rt::fork_pages pages;
  pages.n = 0;
  // A child that still pulls frames from its own parent (copy-on-write) takes them all
  // first: its child must see a memfd of one process only.
  if (g_vm_up && rt::g_cow_live.load(std::memory_order_acquire)) rt::physmem_cow_complete_source();
  // The pages glibc's fork writes under vmrt's locks: resident (a paged heap) and, when the
  // fork shares frames copy-on-write, kept writable (physmem_fork_share).
  bool prefault = g_vm_up && (vm_heap_is_paged() || (vm_heap_exists() && vm_heap_get_backing() != VM_HEAP_HOST));
  for (int attempt = 1;; ++attempt) {
    rt::trap_fork_prepare();  // first: trap_start() takes the VM lock and may malloc
    // kmem keeps the forking thread's magazines across a fork (its pages are not written
    // again).  With a paged heap they are drained as before: draining pages much of the heap
    // in, and under sigsegv traps a fork child whose thread start (glibc's __ctype_init, all
    // signals blocked) met the locale's data paged out was killed by the blocked SIGSEGV
    // (scenario paging, "forks (sigsegv)"; README, known limits).
    if (vm_heap_is_paged()) kmem::thread_cache_drain();
    // Last before the locks: the drain's page-ins may have pushed these pages out.
    if (prefault) rt::fork_prefault(g_process_window->base, g_process_window->base + g_process_window->size, &pages);
    kmem::fork_prepare();
    t_fork_error = 0;
    if (!g_vm_up) return;
    vm_lock_acquire();
    if (!prefault || attempt == kForkPrefaultTries || rt::fork_prefault_holds(pages)) break;
    rt::rt_count(rt::RC_FORK_PREFAULT_RETRIES);
    vm_lock_release();
    kmem::fork_parent();
    rt::trap_fork_parent();
  }
  rt::pmap_linux_fork_prepare();
  g_fork_lazy = !rt::physmem_in_use();
  // Usually already reserved by the shim's fork(); tops the memfd up for frames taken since.
  g_fork_errno = g_fork_lazy ? 0 : fork_reserve_locked();
  if (g_fork_errno == 0 && !g_fork_lazy && rt::physmem_fork_share(pages.page, pages.n) != rt::fork_setup::ok) {
    close_fork_pipe();
    rt::physmem_fork_release();
    g_fork_errno = ENOMEM;
  }
  // The child's own copy of the swap device (the parent goes on handing out its slots).
  if (g_fork_errno == 0 && !swap_pager_fork_prepare()) {
    rt::physmem_fork_release();
    g_fork_errno = ENOMEM;
  }
  g_fork_ready = g_fork_errno == 0;
}

VMRT_FORK_PARENT_TEXT void runtime_fork_parent() VMRT_NO_THREAD_SAFETY_ANALYSIS {  // see runtime_fork_prepare
  if (t_fork_quiet) return;  // nothing was taken (runtime_fork_prepare)
  if (g_vm_up) {
    bool child_ok = g_fork_lazy && g_fork_ready;  // nothing to wait for (counted by runtime_fork_returned)
    if (g_fork_ready && !g_fork_lazy) {
      ::close(g_fork_pipe[1]);  // EOF at once if fork failed (no child holds the write end)
      g_fork_pipe[1] = -1;
      char c = 0;
      ssize_t r;
      while ((r = ::read(g_fork_pipe[0], &c, 1)) < 0 && errno == EINTR) {
      }
      child_ok = r == 1 && c == 1;
      if (child_ok) rt::rt_count(rt::RC_HOST_FORKS);  // a child signed in: counted here, in the parent
    }
    close_fork_pipe();
    rt::physmem_fork_release();
    swap_pager_fork_parent();
    if (!child_ok) {
      rt::physmem_cow_parent(-1);  // no child pulls from a copy-on-write record made for it
      rt::rt_count(rt::RC_FORK_SETUP_FAILED);
      t_fork_error = g_fork_ready ? ENOMEM : g_fork_errno;
    }
    rt::pmap_linux_fork_parent();
    vm_lock_release();
  }
  kmem::fork_parent();
  rt::trap_fork_parent();
}

VMRT_FORK_CHILD_TEXT void runtime_fork_child() VMRT_NO_THREAD_SAFETY_ANALYSIS {  // see runtime_fork_prepare
  // The counts a quiet fork made before it are the parent's, not this child's.
  if (t_fork_quiet) quiet_fork_uncount();
  vm_fd_fork_child();  // first: what follows may use a kept descriptor
  rt::machine_threads_fork_child();  // the parent's are not the child's; it starts its own
  if (g_vm_up) {
    // A child that cannot have its own physmem must not run a single instruction of the
    // program: it shares every malloc'd byte with its parent.  It exits here; the parent's
    // fork() reaps it and returns -1 (runtime_fork_error).
    bool ok = g_fork_ready && (g_fork_lazy ? (rt::physmem_fork_child_unused(), true) : rt::physmem_fork_child());
    if (g_fork_pipe[1] >= 0) {
      char c = ok ? 1 : 0;
      (void)!::write(g_fork_pipe[1], &c, 1);
    }
    close_fork_pipe();
    if (!ok) {
      if (g_fork_ready) rt::say("vmrt: fork child: physmem set-up failed; the child exits and fork() fails with ENOMEM\n");
      ::_exit(kForkSetupFailedStatus);
    }
    rt::pmap_linux_fork_child(!g_fork_lazy);
    swap_pager_fork_child();
    vm_lock_fork_child_reset();
    vm_pageout_fork_child();
    rt::mm_fork_child();  // MADV_DONTFORK memory is not the child's
  }
  kmem::fork_child();
  rt::brk_fork_child();
  rt::mlockall_fork_child();
  rt::trap_fork_child();
  if (g_vm_up) rt::pageout_fork_child();
  critical_fork_child();  // last: every lock above was reset, not released
}

}  // namespace vmrt
