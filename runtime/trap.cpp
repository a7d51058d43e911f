// trap.cpp — SIGSEGV/SIGBUS handler and the userfaultfd handler thread.
#include "runtime/trap.h"
#include "vm/vm_sys.h"
#include "vm/vm_types.h"

#include <atomic>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <linux/futex.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <pthread.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#include "runtime/physmem_cow.h"
#include "runtime/pmap_linux.h"
#include "runtime/region.h"
#include "runtime/rt_base.h"
#include "runtime/rt_lock_stack.h"
#include "runtime/rt_signal.h"
#include "runtime/rt_stats.h"
#include "runtime/spinlock.h"
#include "runtime/uffd_relay.h"
#include "vm/vm_fault.h"
#include "vm/vm_fds.h"
#include "vm/vm_lock.h"
#include "vm/vm_stats.h"
#include "vm/vm_swapout.h"

#ifndef USERFAULTFD_IOC_NEW
#define USERFAULTFD_IOC_NEW _IO(0xAA, 0x00)
#endif

// glibc's sigaction under its exported internal name: a program or the shim may
// interpose sigaction() (to route SIGSEGV/SIGBUS through trap_sigaction), so vmrt's
// own installs must not go through that symbol.
extern "C" int __sigaction(int sig, const struct sigaction* act, struct sigaction* old);

namespace vmrt::rt {

namespace {

constexpr std::size_t kAltStackSize = 64 * 1024;
// A fault "resolved" this many times in a row at the same page without progress is
// refused (RESOURCE) instead of looping forever.  Host mapping work or a translation removed
// anywhere between two faults is progress (see t_progress): the page may have been taken
// away or write-protected again legitimately (a warm guest restored, a fork, a loan, an
// mprotect, reference emulation, pageout) and faulted in again.
constexpr unsigned kMaxRepeats = 64;
constexpr std::size_t kUffdThreadStack = 256 * 1024;

kern_return_t default_resolver(vmspace* vs, vaddr_t va, vm_fault_type type, vm_fault_result* res) {
  return vm_fault(vs, va, type, res);
}

// Null: default_resolver.  (A pointer initialised to a function is a relocation the loader
// writes at load, a copy-on-write fault on a page of .data in every process: resolver().)
std::atomic<fault_resolver> g_resolver{nullptr};
inline fault_resolver resolver() {
  fault_resolver r = g_resolver.load(std::memory_order_acquire);
  return r != nullptr ? r : default_resolver;
}
// The state every fork child and every wrapped read/write looks at: on the fork data page.
VMRT_FORK_DATA trap_backend g_backend = trap_backend::sigsegv;  // [g_start_lock; read after g_started]
// 0 not started, 2 started.  Written under g_start_lock.
VMRT_FORK_DATA std::atomic<int> g_started{0};
VMRT_FORK_DATA spinlock g_start_lock;  // serialises trap_start(); held across host fork()
// The program's handlers for SIGSEGV/SIGBUS once ours are installed
// [g_sig_lock, taken with every signal blocked].
VMRT_FORK_DATA spinlock g_sig_lock;
bool g_handlers_installed;     // [g_sig_lock]
VMRT_COLD_BSS struct sigaction g_prev_segv;  // [g_sig_lock]
VMRT_COLD_BSS struct sigaction g_prev_bus;   // [g_sig_lock]

// g_sig_lock with every signal blocked (so no handler of this thread can want it).
struct sig_guard : spin_guard_nosig {
  sig_guard() : spin_guard_nosig(g_sig_lock) {}
};
std::atomic<trap_hook> g_hook{nullptr};
std::atomic<void*> g_hook_arg{nullptr};
trap_info g_last;  // last trap (racy by design: diagnostics)

std::atomic<int> g_thread_state{0};  // 0 none, 1 starting, 2 running
int g_uffd = -1;  // the userfaultfd's vm_fds handle (vm/vm_fds.h): its number may move
// Handler threads reading the userfaultfd (trap_set_uffd_threads).  Several take one event
// each, so a fault waiting for a page-in does not hold up faults on other pages.
std::atomic<unsigned> g_uffd_threads{1};

thread_local __attribute__((tls_model("initial-exec"))) bool t_altstack;
thread_local __attribute__((tls_model("initial-exec"))) vaddr_t t_last_page;
thread_local __attribute__((tls_model("initial-exec"))) unsigned t_repeats;
// Host mapping calls and pmap removals when this thread's last fault was resolved: a fault
// at the same page after more of them is progress, not a spin, and starts the count again.
thread_local __attribute__((tls_model("initial-exec"))) std::int64_t t_progress;

std::int64_t progress_mark() { return rt_get(RC_HOST_MMAP) + rt_get(RC_HOST_MPROTECT) + rt_get(RC_PMAP_REMOVE_PAGES); }

// Give the calling thread an alternate signal stack.  Called from the handler (uc set),
// the new stack must also be written into the interrupted context: rt_sigreturn
// restores the alternate stack saved in uc_stack, which would undo sigaltstack().
void install_altstack(void* uc = nullptr) {
  if (t_altstack) return;
  t_altstack = true;
  stack_t cur;
  if (::sigaltstack(nullptr, &cur) == 0 && (cur.ss_flags & SS_DISABLE) == 0) return;
  void* p = vmrt::sys::mmap(nullptr, kAltStackSize + PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                   -1, 0);
  if (p == MAP_FAILED) return;
  vmrt::sys::mprotect(p, PAGE_SIZE, PROT_NONE);  // guard page below the stack
  stack_t ss{};
  ss.ss_sp = static_cast<char*>(p) + PAGE_SIZE;
  ss.ss_size = kAltStackSize;
  ss.ss_flags = 0;
  if (::sigaltstack(&ss, nullptr) == 0) {
    rt_count(RC_ALTSTACKS);
    if (uc != nullptr) static_cast<ucontext_t*>(uc)->uc_stack = ss;
  }
}

// Pass the signal to the program's previous handler, or die the way the kernel kills.
// The handler is called the way the kernel would call it: SA_RESETHAND resets the
// disposition first, and its sa_mask (plus sig, unless SA_NODEFER) is blocked while
// it runs (our own handler is SA_NODEFER with an empty mask).
// `synthesized`: sig is not the signal the host delivered (a refused frame arrives as
// SIGSEGV and is delivered as SIGBUS): re-executing the access would not raise sig, so
// with no handler (SIG_DFL, or SIG_IGN, which the kernel overrides for a fault as its
// force_sig does) the default action is taken by sending sig to this thread, unblocked.
void chain(int sig, siginfo_t* si, void* uc, bool synthesized = false) {
  struct sigaction prev;
  {
    sig_guard g;
    struct sigaction& cur = sig == SIGSEGV ? g_prev_segv : g_prev_bus;
    prev = cur;
    bool has_handler = (cur.sa_flags & SA_SIGINFO) != 0 ? cur.sa_sigaction != nullptr
                                                         : cur.sa_handler != SIG_DFL && cur.sa_handler != SIG_IGN;
    if (has_handler && (cur.sa_flags & SA_RESETHAND) != 0) {
      cur = {};
      cur.sa_handler = SIG_DFL;
      sigemptyset(&cur.sa_mask);
    }
  }
  bool user_sent = si->si_code <= 0;  // kill(2), sigqueue(3), tgkill(2): not a fault
  bool info = (prev.sa_flags & SA_SIGINFO) != 0;
  if ((info && prev.sa_sigaction != nullptr) ||
      (!info && prev.sa_handler != SIG_DFL && prev.sa_handler != SIG_IGN)) {
    rt_count(RC_CHAINED_SIGNALS);
    // The mask the kernel would give the program's handler: the interrupted context's, its
    // sa_mask, and the signal (vmrt's own handler blocks more: install_handler).
    sigset_t block = static_cast<ucontext_t*>(uc)->uc_sigmask, old;
    sigorset(&block, &block, &prev.sa_mask);
    if ((prev.sa_flags & SA_NODEFER) == 0) sigaddset(&block, sig);
    pthread_sigmask(SIG_SETMASK, &block, &old);  // a siglongjmp out restores its own mask
    if (info) prev.sa_sigaction(sig, si, uc);
    else prev.sa_handler(sig);
    pthread_sigmask(SIG_SETMASK, &old, nullptr);
    return;
  }
  if (user_sent && !info && prev.sa_handler == SIG_IGN) return;
  // No handler: restore the default action.  A fault re-executes the access on return,
  // faults again and kills the process with this signal (core dump); a signal sent with
  // kill(2) is sent again (our handler is SA_NODEFER, so it is delivered at once).
  struct sigaction dfl{};
  dfl.sa_handler = SIG_DFL;
  sigemptyset(&dfl.sa_mask);
  __sigaction(sig, &dfl, nullptr);
  if (user_sent || synthesized) {
    sigset_t one;
    sigemptyset(&one);
    sigaddset(&one, sig);
    pthread_sigmask(SIG_UNBLOCK, &one, nullptr);
    ::syscall(SYS_tgkill, ::getpid(), ::syscall(SYS_gettid), sig);
  }
}

// A refused access: the trap hook, else the program's handler, else death.  A fault
// refused for want of memory (RESOURCE: the frame allocator or the host could not
// supply a page) is SIGBUS with BUS_ADRERR at the faulting address, as Linux delivers
// when it cannot supply a page of a mapping (a file hole past EOF, a hugetlb pool, a
// shmem page beyond its limit); the others are SIGSEGV with SEGV_MAPERR / SEGV_ACCERR.
void deliver_trap(int sig, siginfo_t* si, void* uc, vaddr_t addr, int access, trap_reason reason, window* w) {
  rt_count(RC_TRAPS);
  rt_count(reason == TRAP_NO_ENTRY ? RC_TRAPS_NO_ENTRY : reason == TRAP_PROTECTION ? RC_TRAPS_PROTECTION : RC_TRAPS_RESOURCE);
  trap_info t{addr, access, reason, w};
  g_last = t;
  trap_hook h = g_hook.load(std::memory_order_acquire);
  if (h != nullptr) {
    rt_count(RC_TRAP_HOOK_CALLS);
    h(&t, g_hook_arg.load(std::memory_order_acquire));  // may siglongjmp
  }
  siginfo_t copy = *si;
  if (reason == TRAP_MEMORY_ERROR) {
    vm_fd_out<160> o(2);
    o.str("vmrt: the page at ").hex(trunc_page(addr)).str(" could not be read back from swap intact (checksum mismatch or I/O error): SIGBUS\n");
  }
  if (reason == TRAP_RESOURCE || reason == TRAP_MEMORY_ERROR) {
    bool synthesized = sig != SIGBUS || reason == TRAP_MEMORY_ERROR;
    if (synthesized) {
      std::memset(&copy, 0, sizeof copy);
      copy.si_signo = SIGBUS;
      copy.si_code = reason == TRAP_MEMORY_ERROR ? BUS_MCEERR_AR : BUS_ADRERR;
      copy.si_addr = reinterpret_cast<void*>(addr);
    }
    chain(SIGBUS, &copy, uc, synthesized);
    return;
  }
  if (sig == SIGSEGV) copy.si_code = reason == TRAP_PROTECTION ? SEGV_ACCERR : SEGV_MAPERR;
  chain(sig, &copy, uc);
}

// A fault by the VM lock holder that no handler can serve (a VM bug: the VM touches program
// memory only through the direct map): say the page (0: unknown, the event unread), the
// thread and where vmrt is loaded, and panic.  `where` is the thread's /proc syscall line
// under userfaultfd, else null.
[[noreturn]] void lock_holder_fault_panic(vaddr_t page, pid_t tid, const char* where) {
  {
    vm_fd_out<400> o(2);  // written when it goes out of scope
    o.str("vmrt: thread ").u(static_cast<std::uint64_t>(tid));
    if (page != 0)
      o.str(" faulted on ").hex(page);
    else
      o.str(" faulted (every handler thread waits for the VM lock, the page unread)");
    o.str(" while holding the VM lock: no handler can serve it (a VM bug)");
    if (where != nullptr) o.str("; its /proc syscall line: ").str(where);
    o.str("; vmrt is loaded at ").hex(reinterpret_cast<std::uintptr_t>(__ehdr_start)).str("\n");
  }
  VMRT_PANIC("fault by the VM lock holder");
}

void on_fault(int sig, siginfo_t* si, void* uc) {
  int saved_errno = errno;
  vaddr_t addr = reinterpret_cast<vaddr_t>(si->si_addr);
  if (si->si_code <= 0 || !region_contains(addr)) {  // sent by a process, or not ours
    chain(sig, si, uc);
    errno = saved_errno;
    return;
  }
  // A copy-on-write fork child before its handler thread runs: a first touch of a frame still
  // in the parent's memfd (physmem_cow.h).  Served here, without any lock.
  if (sig == SIGBUS && physmem_cow_boot_uffd() >= 0 && pmap_linux_cow_fault(addr)) {
    errno = saved_errno;
    return;
  }
  // Served by vm_fault, which takes the VM lock: the holder's own fault would come back as
  // the host's SIGBUS or a recursive lock, the program's crash for a bug of vmrt's.
  if (vm_lock_owned()) lock_holder_fault_panic(trunc_page(addr), vm_lock_owner_tid(), nullptr);
  install_altstack(uc);
  lock_stack_fault_scope serving;  // this handler's stack is held: no probe (rt_lock_stack.h)
  rt_count(RC_SIGSEGV_FAULTS);
  const ucontext_t* u = static_cast<const ucontext_t*>(uc);
  greg_t err = u->uc_mcontext.gregs[REG_ERR];
  vm_fault_type type = (err & 16) != 0 ? VM_FAULT_EXECUTE : (err & 2) != 0 ? VM_FAULT_WRITE : VM_FAULT_READ;
  window* w = window_lookup(addr);
  vmspace* vs = w != nullptr ? w->vs.load(std::memory_order_acquire) : nullptr;
  trap_reason reason = TRAP_NO_ENTRY;
  if (sig == SIGBUS) {
    // The host could not back the page: a file mapping's page past the file's end (the
    // host maps the program's shared file mappings: rt_mmap), or out of memory for a
    // frame.  The program's handler gets the host's own siginfo (BUS_ADRERR, the address).
    reason = TRAP_RESOURCE;
    if (si->si_code == BUS_ADRERR) vm_stat_inc(V_FILE_SIGBUS);
  } else if (vs != nullptr) {
    vaddr_t page = trunc_page(addr);
    if (page == t_last_page && progress_mark() != t_progress) t_repeats = 0;
    kern_return_t kr = resolver()(vs, page, type, nullptr);
    t_progress = progress_mark();
    if (kr == KERN_SUCCESS) {
      if (page == t_last_page) {
        if (++t_repeats < kMaxRepeats) {
          rt_count(RC_SIGSEGV_RESOLVED);
          errno = saved_errno;
          return;
        }
        kr = KERN_RESOURCE_SHORTAGE;  // no progress: refuse rather than spin
      } else {
        t_last_page = page;
        t_repeats = 0;
        rt_count(RC_SIGSEGV_RESOLVED);
        errno = saved_errno;
        return;
      }
    }
    t_last_page = 0;
    reason = kr == KERN_INVALID_ADDRESS      ? TRAP_NO_ENTRY
             : kr == KERN_PROTECTION_FAILURE ? TRAP_PROTECTION
             : kr == KERN_MEMORY_ERROR       ? TRAP_MEMORY_ERROR
                                             : TRAP_RESOURCE;
  }
  deliver_trap(sig, si, uc, addr, type, reason, w);
  errno = saved_errno;
}

// vmrt's fault handler runs with every asynchronous signal blocked (the kernel restores the
// interrupted mask on return, and what arrived meanwhile is delivered then).  A program's
// handler for such a signal may touch the very page the interrupted fault is reading in from
// swap (busy, the VM lock dropped for the read): it faulted, waited for the busy page, and the
// read it waited for was its own thread's (bash's SIGCHLD handler in a command substitution
// under --physmem with sigsegv traps hung forever; scenario fd_games).  Synchronous fault
// signals stay deliverable: a fault inside the handler must still be served.
bool install_handler(int sig, struct sigaction* prev) {
  struct sigaction sa{};
  sa.sa_sigaction = on_fault;
  sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_NODEFER;
  sigfillset(&sa.sa_mask);
  for (int s : {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGTRAP, SIGSYS}) sigdelset(&sa.sa_mask, s);
  return __sigaction(sig, &sa, prev) == 0;
}

// ---- userfaultfd ------------------------------------------------------------------------

int uffd_new() {
  int fd = static_cast<int>(::syscall(SYS_userfaultfd, O_CLOEXEC));
  if (fd < 0) {
    int dev = ::open("/dev/userfaultfd", O_RDWR | O_CLOEXEC);
    if (dev >= 0) {
      fd = ::ioctl(dev, USERFAULTFD_IOC_NEW, O_CLOEXEC);
      ::close(dev);
    }
  }
  return vm_fd_keep(fd);  // at the top of the table, out of the program's way (vm_fds.h)
}

// A userfaultfd with minor faults and write protection on shmem when the host has them
// (Linux 5.14, 5.19), else with what it has: its vm_fds handle; -1 when none.  No SIGBUS mode: kernel-mode
// faults must be served.
bool g_uffd_minor;
bool g_uffd_wp;
int uffd_open() {
  constexpr std::uint64_t kMinor = UFFD_FEATURE_MINOR_SHMEM;
  constexpr std::uint64_t kWp = UFFD_FEATURE_WP_HUGETLBFS_SHMEM;
  for (std::uint64_t wanted : {kMinor | kWp, kMinor, kWp, std::uint64_t{0}}) {
    for (std::uint64_t features : {wanted | UFFD_FEATURE_THREAD_ID, wanted}) {
      int fh = uffd_new();
      if (fh < 0) return -1;
      uffdio_api api{};
      api.api = UFFD_API;
      api.features = features;
      if (vm_fd_ioctl(fh, UFFDIO_API, &api) == 0) {
        g_uffd_minor = (features & kMinor) != 0;
        g_uffd_wp = (features & kWp) != 0;
        return fh;
      }
      vm_fd_close(fh);  // a failed handshake leaves the descriptor unusable: a new one
    }
  }
  return -1;
}

// How long the VM lock holder's own fault may wait before trap_check_lock_holder_fault
// asks the kernel what the holder is doing.
constexpr int kLockHolderFaultSecs = 5;

}  // namespace

// wchan names the kernel function a sleeping thread waits in ("handle_userfault"); where
// the host hides it ("0"), a thread asleep outside any system call ("-1 sp pc" in
// /proc/.../syscall) can only be waiting for a fault.
thread_wait trap_thread_waiting(pid_t tid, char* syscall, std::size_t size) {
  syscall[0] = '\0';
  (void)read_task_file(tid, "syscall", syscall, size);
  char wchan[64];
  if (read_task_file(tid, "wchan", wchan, sizeof wchan) > 1)
    return std::strcmp(wchan, "handle_userfault") == 0 ? thread_wait::in_userfault : thread_wait::elsewhere;
  char state = task_state(tid);
  if (state == '\0') return thread_wait::unknown;
  if (state != 'S' && state != 'D') return thread_wait::elsewhere;
  if (std::strncmp(syscall, "-1 ", 3) == 0) return thread_wait::in_userfault;
  return thread_wait::unknown;
}

// A fault by the thread that holds the VM lock can never be served: the handler needs the
// lock, and the holder sleeps in the kernel until the fault is served.  The VM touches
// program memory only through the direct map, so this is a VM bug; say which page and
// where the thread stopped rather than hang.  The event may be stale: its thread left the
// fault (another event's wake covered the page, or a signal interrupted the wait and the
// page was served before the access was retried) and holds the lock again legitimately,
// perhaps for long (a fork under load).  So the holder must keep the lock, without taking
// it again, for kLockHolderFaultSecs, and the kernel must say it sleeps in a userfault,
// before this panics; a holder that is not waiting makes the event stale (counted), and
// the caller goes on to serve it once the lock is free.  ptid is 0 without
// UFFD_FEATURE_THREAD_ID.
//  => no lock held; may sleep.
void trap_check_lock_holder_fault(vaddr_t page, pid_t ptid) {
  if (ptid == 0 || vm_lock_owner_tid() != ptid) return;
  std::uint64_t seq = vm_lock_acquisitions();
  char syscall[160];
  for (int k = 1;; ++k) {
    timespec ts{0, 100 * 1000 * 1000};
    ::nanosleep(&ts, nullptr);
    if (vm_lock_owner_tid() != ptid || vm_lock_acquisitions() != seq) return;
    if (k % (kLockHolderFaultSecs * 10) != 0) continue;
    thread_wait w = trap_thread_waiting(ptid, syscall, sizeof syscall);
    if (w == thread_wait::elsewhere) {
      rt_count(RC_UFFD_HOLDER_STALE);
      return;
    }
    if (w == thread_wait::in_userfault) break;
    if (k == kLockHolderFaultSecs * 10) {  // unknown: say so once, and go on watching
      vm_fd_out<320> o(2);
      o.str("vmrt: thread ").u(static_cast<std::uint64_t>(ptid)).str(" has held the VM lock for ")
          .u(kLockHolderFaultSecs).str(" s since its fault on ").hex(page)
          .str(" and sleeps in a system call (").str(syscall).str("): still waiting\n");
    }
  }
  lock_holder_fault_panic(page, ptid, syscall);
}

namespace {

// The VM lock's stall hook under userfaultfd (vm_lock.h).  The holder's own fault reaches
// trap_check_lock_holder_fault only through a handler thread free to read its event; when
// every handler thread waits for the lock, that event stays unread and the process hung.  A
// thread waiting for the lock sees it instead: the holder kept the lock kLockHolderFaultSecs
// and sleeps in a userfaultfd fault, twice a tenth of a second apart.
//  => called by vm_lock_acquire with no lock held; may sleep.
void lock_stall(pid_t holder, unsigned seconds) {
  if (holder == 0 || seconds < static_cast<unsigned>(kLockHolderFaultSecs)) return;
  std::uint64_t seq = vm_lock_acquisitions();
  char syscall[160];
  if (trap_thread_waiting(holder, syscall, sizeof syscall) != thread_wait::in_userfault) return;
  timespec nap{0, 100 * 1000 * 1000};
  ::nanosleep(&nap, nullptr);
  if (vm_lock_owner_tid() != holder || vm_lock_acquisitions() != seq) return;
  if (trap_thread_waiting(holder, syscall, sizeof syscall) != thread_wait::in_userfault) return;
  static std::atomic<bool> said{false};  // several waiters: one says it
  if (said.exchange(true)) {
    for (;;) ::pause();
  }
  lock_holder_fault_panic(0, holder, syscall);
}

void uffd_wake(int fh, vaddr_t start, vsize_t len) {
  uffdio_range r{start, len};
  vm_fd_ioctl(fh, UFFDIO_WAKE, &r);
}

// Serve one userfaultfd event: resolve the fault and wake the waiters.
//  => no lock held; may sleep (page-in).
void serve_event(int fh, const uffd_msg& msg) {
  if (msg.event != UFFD_EVENT_PAGEFAULT) return;
  rt_count(RC_UFFD_FAULTS);
  vaddr_t page = trunc_page(static_cast<vaddr_t>(msg.arg.pagefault.address));
  // A write-protect fault is a write to a copy-on-write page (pmap_linux.h, "Write protection").
  bool wp = (msg.arg.pagefault.flags & UFFD_PAGEFAULT_FLAG_WP) != 0;
  if (wp) rt_count(RC_UFFD_WP_FAULTS);
  vm_fault_type type = wp || (msg.arg.pagefault.flags & UFFD_PAGEFAULT_FLAG_WRITE) != 0 ? VM_FAULT_WRITE : VM_FAULT_READ;
  window* w = window_lookup(page);
  vmspace* vs = w != nullptr ? w->vs.load(std::memory_order_acquire) : nullptr;
  // A write after a copy-on-write host fork: the frame goes to the child first.  Also with no
  // child left (a fork whose child failed its set-up drops the record and leaves the parent's
  // pages write-protected for it): the protection goes, else the write faulted for ever.
  if (wp && pmap_linux_cow_write(page)) {
    rt_count(RC_UFFD_RESOLVED);
    uffd_wake(fh, page, PAGE_SIZE);
    return;
  }
  // Mapped meanwhile (fault-around of another event), or a zapped page mapped again
  // (the vmspace ran: the swapper hears of it).
  if (pmap_linux_uffd_resolve(page, type)) {
    if (vs != nullptr) vm_swapout_note_run(vs);
    rt_count(RC_UFFD_RESOLVED);
    uffd_wake(fh, page, PAGE_SIZE);
    return;
  }
  // What needs the VM lock comes last: a fault of the lock holder itself that the steps above
  // serve (its stack page zapped for a reference check, or mapped meanwhile) is no deadlock.
  trap_check_lock_holder_fault(page, static_cast<pid_t>(msg.arg.pagefault.feat.ptid));
  vm_fault_result res{0, 0};
  kern_return_t kr =
      vs != nullptr ? resolver()(vs, page, type, &res) : KERN_INVALID_ADDRESS;
  if (kr == KERN_SUCCESS) {
    rt_count(RC_UFFD_RESOLVED);
    if (res.npages > 0 && res.first <= page && page < res.first + res.npages * PAGE_SIZE)
      uffd_wake(fh, res.first, res.npages * PAGE_SIZE);
    else
      uffd_wake(fh, page, PAGE_SIZE);
  } else {
    // Refused: a user access now traps through SIGSEGV, a kernel access gets EFAULT.
    rt_count(RC_UFFD_REFUSED);
    if (wp) pmap_linux_wp_refuse(page);
    pmap_linux_refuse(page);
    uffd_wake(fh, page, PAGE_SIZE);
  }
}

// Handler threads that have reached their read loop (their start-up touches are done).
std::atomic<unsigned> g_threads_up{0};
static_assert(sizeof(g_threads_up) == sizeof(int), "g_threads_up is waited on as a futex word");

// A new handler thread's arrival wakes its creator at once (it napped 200 us at a time).
void threads_up_wake() {
  ::syscall(SYS_futex, reinterpret_cast<int*>(&g_threads_up), FUTEX_WAKE_PRIVATE, INT_MAX, nullptr, nullptr, 0);
}

// Sleep until g_threads_up is no longer `up`, a signal arrives (a relayed event is served in
// its handler) or `ns` pass.
void threads_up_wait(unsigned up, long ns) {
  timespec t{0, ns};
  ::syscall(SYS_futex, reinterpret_cast<int*>(&g_threads_up), FUTEX_WAIT_PRIVATE, static_cast<int>(up), &t, nullptr, 0);
}

// Read handle fh's userfaultfd: the number is read inside a use, which a program's dup2 onto
// it waits for (vm/vm_fds.h); a handler thread sleeps in the read (`wait`), the bootstrap's
// read does not (the descriptor is non-blocking then).  The read's result and errno.
ssize_t uffd_read(int fh, uffd_msg* msgs, std::size_t bytes, bool wait) {
  if (wait) {
    vm_fd_wait_use use(fh);
    if (use.fd() < 0) return -1;
    return ::read(use.fd(), msgs, bytes);
  }
  vm_fd_use use(fh);
  if (use.fd() < 0) return -1;
  return ::read(use.fd(), msgs, bytes);
}

// Serve the events a read of `bytes` bytes returned; their number.  => as serve_event.
long serve_read(int fh, const uffd_msg* msgs, ssize_t bytes) {
  long n = bytes / static_cast<ssize_t>(sizeof(uffd_msg));
  for (long i = 0; i < n; ++i) serve_event(fh, msgs[i]);
  return n;
}

// Bumped (and woken) when the first handler thread's start is over and the userfaultfd is
// blocking again (start_first_thread): a futex word.
std::atomic<unsigned> g_bootstrap_gen{0};

void bootstrap_over() {
  g_bootstrap_gen.fetch_add(1, std::memory_order_release);
  ::syscall(SYS_futex, reinterpret_cast<int*>(&g_bootstrap_gen), FUTEX_WAKE_PRIVATE, INT_MAX, nullptr, nullptr, 0);
}

void* uffd_thread(void* arg) {
  int fh = static_cast<int>(reinterpret_cast<std::intptr_t>(arg));
  g_threads_up.fetch_add(1, std::memory_order_acq_rel);
  threads_up_wake();
  uffd_msg msgs[16];
  // One thread takes what is queued at once; several take one event each.
  std::size_t batch = g_uffd_threads.load(std::memory_order_relaxed) > 1 ? sizeof msgs[0] : sizeof msgs;
  for (;;) {
    const unsigned gen = g_bootstrap_gen.load(std::memory_order_acquire);
    ssize_t n = uffd_read(fh, msgs, batch, true);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) {
        // The descriptor is non-blocking while this thread's creator finishes starting it
        // (start_first_thread: its relay and the creator read the events meanwhile).  Read
        // again in a loop (~260 empty reads in a paged fork child), this thread kept a vCPU
        // busy that the relay, whose exit the creator waits for, needed.  Asleep until the
        // start is over (the timeout bounds a wake lost to a later non-blocking window).
        rt_count(RC_UFFD_EMPTY_READS);
        timespec t{0, 1000 * 1000};
        ::syscall(SYS_futex, reinterpret_cast<int*>(&g_bootstrap_gen), FUTEX_WAIT_PRIVATE, static_cast<int>(gen), &t,
                  nullptr, 0);
        continue;
      }
      return nullptr;  // fd closed (fork child replaced it)
    }
    serve_read(fh, msgs, n);
  }
}

// Serve what is queued on the non-blocking userfaultfd (handle fh); the number of events served.
//  => the caller holds no VM lock; may sleep (page-ins).
long serve_queued(int fh) {
  uffd_msg msgs[16];
  long served = 0;
  for (;;) {
    ssize_t n = uffd_read(fh, msgs, sizeof msgs, false);
    if (n <= 0) return served;
    served += serve_read(fh, msgs, n);
  }
}

// Start the first handler thread while the calling thread serves the faults taken before
// any handler runs: the new thread's on its way to its start routine (glibc's start_thread
// reads the LC_CTYPE locale data, which lives in the heap) and the calling thread's own,
// inside pthread_create (uffd_relay.h).  In a fork child every registered page lacks its
// host PTE and heap pages may be paged out, so those touches are faults only a handler can
// resolve.  A relay thread reads them and the calling thread serves them from its signal
// handler; without a relay the calling thread reads them itself after pthread_create
// returns.  The descriptor is non-blocking meanwhile, so no reader sleeps in read() on an
// event another one took.
//  => g_start_lock held, or the fork child's only thread; may sleep.
bool start_first_thread(int fh) {
  int fl = vm_fd_fcntl(fh, F_GETFL, 0);
  vm_fd_fcntl(fh, F_SETFL, fl | O_NONBLOCK);
  unsigned up = g_threads_up.load(std::memory_order_acquire);
  bool ok;
  {
    uffd_relay relay(vm_fd_number(fh), fh, serve_event);
    ok = start_machine_thread(uffd_thread, reinterpret_cast<void*>(static_cast<std::intptr_t>(fh)), kUffdThreadStack,
                              "vmrt-uffd", false);  // waited for below, while its faults are served
    while (ok && relay.ok() && g_threads_up.load(std::memory_order_acquire) == up)
      threads_up_wait(up, 200 * 1000);  // a relayed event interrupts the wait
  }
  while (ok && g_threads_up.load(std::memory_order_acquire) == up) {
    pollfd pfd{vm_fd_number(fh), POLLIN, 0};
    constexpr int kPollMs = 5;
    if (::poll(&pfd, 1, kPollMs) <= 0) continue;
    rt_count(RC_UFFD_BOOTSTRAP_SERVED, serve_queued(fh));
  }
  vm_fd_fcntl(fh, F_SETFL, fl);
  bootstrap_over();
  return ok;
}

// Start the userfaultfd handler threads (sigsegv backend: nothing to start).
//  => g_start_lock held, or the fork child's only thread; may call malloc; may sleep.
bool start_thread() {
  if (g_backend != trap_backend::userfaultfd) return true;
  int expected = 0;
  if (!g_thread_state.compare_exchange_strong(expected, 1)) {
    while (g_thread_state.load() == 1) sched_yield();
    return g_thread_state.load() == 2;
  }
  // The handler threads take no signals.  One is enough to serve faults; a second one
  // that cannot start is said, not fatal.
  vm_lock_set_stall_hook(lock_stall);
  unsigned want = g_uffd_threads.load(std::memory_order_relaxed);
  for (unsigned k = 0; k < want; ++k) {
    if (k == 0 ? start_first_thread(g_uffd)
               : start_machine_thread(uffd_thread, reinterpret_cast<void*>(static_cast<std::intptr_t>(g_uffd)),
                                      kUffdThreadStack, "vmrt-uffd"))
      continue;
    say("vmrt: cannot start a userfaultfd handler thread\n");
    if (k == 0) {
      g_thread_state.store(0);
      return false;
    }
    break;
  }
  g_thread_state.store(2);
  return true;
}

}  // namespace

void trap_set_uffd_threads(unsigned n) { g_uffd_threads.store(n == 0 ? 1 : n, std::memory_order_relaxed); }

void trap_set_resolver(fault_resolver r) { g_resolver.store(r); }

namespace {

// Dense-block zero fills (vm_fault.h, kZeroBlock) stand in for Linux's transparent huge
// pages: none when the host's THP is "never" (read once at start), nor while the process
// has THP disabled (PR_SET_THP_DISABLE, asked per fill: a program may set it any time).
bool g_host_thp_never = false;  // [set before the probe is installed]

bool zero_dense_allowed() {
  if (g_host_thp_never) return false;
  int saved = errno;
  long r = ::syscall(SYS_prctl, PR_GET_THP_DISABLE, 0L, 0L, 0L, 0L);
  errno = saved;
  return r == 0;  // (an old host without the call answers -1: no fill, as before)
}

// True when /sys/kernel/mm/transparent_hugepage/enabled selects "[never]".
bool host_thp_never() {
  int fd = static_cast<int>(::syscall(SYS_openat, AT_FDCWD, "/sys/kernel/mm/transparent_hugepage/enabled",
                                      O_RDONLY | O_CLOEXEC));
  if (fd < 0) return false;
  char buf[128];
  long n = ::syscall(SYS_read, fd, buf, sizeof buf - 1);
  ::syscall(SYS_close, fd);
  if (n <= 0) return false;
  buf[n] = '\0';
  return std::strstr(buf, "[never]") != nullptr;
}

}  // namespace

bool trap_start(trap_backend want, int note_fd) {
  if (g_started.load(std::memory_order_acquire) == 2) return true;
  spin_guard sg(g_start_lock);
  if (g_started.load(std::memory_order_relaxed) == 2) return true;
  trap_backend backend = trap_backend::sigsegv;
  int uffd = -1;
  if (want != trap_backend::sigsegv) {
    uffd = uffd_open();
    if (uffd >= 0) {
      backend = trap_backend::userfaultfd;
    } else if (want == trap_backend::userfaultfd) {
      say("vmrt: VMRT_TRAP=userfaultfd: userfaultfd unavailable; using sigsegv traps\n");
    } else if (note_fd >= 0) {
      vm_fd_out<128> o(note_fd);
      o.str("vmrt: userfaultfd unavailable: sigsegv traps (syscalls on untouched memory get EFAULT)\n");
    }
  }
  install_altstack();
  {
    // Our handlers replace whatever the kernel holds, which becomes the chained handler.
    sig_guard g;
    if (!install_handler(SIGSEGV, &g_prev_segv)) {
      if (uffd >= 0) vm_fd_close(uffd);
      say("vmrt: cannot install the SIGSEGV handler\n");
      return false;
    }
    if (!install_handler(SIGBUS, &g_prev_bus)) {
      __sigaction(SIGSEGV, &g_prev_segv, nullptr);
      if (uffd >= 0) vm_fd_close(uffd);
      say("vmrt: cannot install the SIGBUS handler\n");
      return false;
    }
    g_handlers_installed = true;
  }
  g_backend = backend;
  g_host_thp_never = host_thp_never();
  vm_fault_set_zero_dense_probe(zero_dense_allowed);
  if (uffd >= 0) {
    g_uffd = uffd;
    // Under the VM lock, so no reservation is half made while the pmap switches over.
    // Every non-resident page of the kernel window reserves VM_PROT_NONE (kmem memory
    // is wired), so nothing reserved so far needs registering.
    vm_lock_guard vg;
    pmap_linux_set_uffd(uffd, g_uffd_minor);
    // VMRT_UFFD_WP=0 keeps copy-on-write pages mprotect'ed (fast user-mode write faults,
    // EFAULT for kernel-mode writes): for measurement (README, "Trap backends").
    const char* wp = ::getenv("VMRT_UFFD_WP");
    pmap_linux_set_uffd_wp(g_uffd_wp && !(wp != nullptr && wp[0] == '0' && wp[1] == '\0'));
    // VMRT_FORK_COW=0: a host fork copies every frame in use (physmem_cow.h), for comparison.
    // Read now: at a fork the program's environment may be in paged memory (bash's own
    // getenv reads its malloc'd variables), and the fork's set-up holds the VM lock.
    const char* cow = ::getenv("VMRT_FORK_COW");
    physmem_cow_allow(!(cow != nullptr && cow[0] == '0' && cow[1] == '\0'));
  }
  lock_stack_install();  // program memory may fault from now on
  g_started.store(2, std::memory_order_release);
  return start_thread();
}

VMRT_FORK_TEXT bool trap_started() { return g_started.load(std::memory_order_acquire) == 2; }

VMRT_FORK_TEXT trap_backend trap_active_backend() { return g_backend; }
const char* trap_backend_name() {
  if (!trap_started()) return "none";
  return g_backend == trap_backend::userfaultfd ? "userfaultfd" : "sigsegv";
}

void trap_thread_attach() { install_altstack(); }

trap_hook trap_set_hook(trap_hook h, void* arg, void** old_arg) {
  if (old_arg != nullptr) *old_arg = g_hook_arg.load();
  g_hook_arg.store(arg, std::memory_order_release);
  return g_hook.exchange(h, std::memory_order_acq_rel);
}

trap_info trap_last() { return g_last; }

VMRT_FORK_TEXT int trap_sigaction(int sig, const struct sigaction* act, struct sigaction* old) {
  if (sig != SIGSEGV && sig != SIGBUS) return rt_signal_action(sig, act, old);
  sig_guard g;
  if (!g_handlers_installed) return __sigaction(sig, act, old);
  struct sigaction& prev = sig == SIGSEGV ? g_prev_segv : g_prev_bus;
  if (!rt_signal_tables_ours()) {
    // A vfork child resetting its handlers before exec: its own kernel action only, never
    // the parent's chained handler (same memory).
    struct sigaction kold{};
    int r = __sigaction(sig, act, &kold);
    if (r == 0 && old != nullptr) *old = rt_signal_reported(kold, reinterpret_cast<void*>(on_fault), prev);
    return r;
  }
  if (old != nullptr) *old = prev;
  if (act != nullptr) prev = *act;
  return 0;
}

// Taken before a host fork, let go after it in the parent (reset in the child): not for
// the analysis to follow.
VMRT_FORK_PARENT_TEXT void trap_fork_prepare() VMRT_NO_THREAD_SAFETY_ANALYSIS { g_start_lock.lock(); }
VMRT_FORK_PARENT_TEXT void trap_fork_parent() VMRT_NO_THREAD_SAFETY_ANALYSIS { g_start_lock.unlock(); }

VMRT_FORK_CHILD_TEXT void trap_fork_child() {
  rt_signal_fork_child();
  g_start_lock.reset();
  g_sig_lock.reset();
  if (!trap_started()) return;
  // Threads do not survive fork, and the inherited userfaultfd is the parent's: reading it
  // would steal the parent's events.  The child's registrations were dropped by the host.
  t_altstack = false;  // the forking thread keeps its alternate stack (memory is copied)
  install_altstack();
  if (g_backend != trap_backend::userfaultfd) return;
  vm_fd_close(g_uffd);
  g_uffd = uffd_open();
  if (g_uffd < 0) {
    say("vmrt: fork child: cannot recreate the userfaultfd\n");
    pmap_linux_set_uffd(-1, false);
    return;
  }
  pmap_linux_set_uffd(g_uffd, g_uffd_minor);
  pmap_linux_reregister();
  g_thread_state.store(0);
  g_threads_up.store(0);
  start_thread();
}

}  // namespace vmrt::rt
