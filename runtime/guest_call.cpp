// guest_call.cpp — calling into a guest through libffi on its own stack, and turning its
// faults into errors (issue 10).
//
// A call: the caller's record (call_ctx) is pushed on a per-thread list, _setjmp marks the
// escape point, a small assembly trampoline switches the stack pointer to the guest's
// stack (inside the guest's vmspace) and calls ffi_call there, which calls the guest
// function.  A fault while the record is active ends the call:
//   - SIGSEGV/SIGBUS: vmrt's trap handler (trap.cpp) resolves every fault it can; what it
//     refuses, and faults outside vmrt's region, reach the program's handler — ours,
//     installed through trap_sigaction (vmrt_sigaction semantics) while guests exist;
//   - SIGILL, SIGFPE and the time-limit timer signal: our handlers, installed with
//     sigaction while guests exist (the previous ones are called for signals that are
//     not a guest's);
// and the handler _longjmps to the escape point (signal mask restored from the
// interrupted context).  The time limit is a per-thread POSIX timer (SIGEV_THREAD_ID)
// that fires every millisecond once the limit passed: it ends the call only when the
// interrupted pc is in the guest's image, never inside host code the guest called (which
// may hold a lock).  Host code the guest calls (its libc, the embedder's imports) runs on
// the guest stack.
#include "runtime/guest.h"

#include <cerrno>
#include <cstring>
#include <ctime>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

#include "runtime/trap.h"
#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#endif
#include "vm/vm_out.h"
#include "vm/vm_types.h"

extern "C" int __sigaction(int sig, const struct sigaction* act, struct sigaction* old);

// vmrt_guest_on_stack(fn, arg, sp): call fn(arg) with the stack pointer at sp (16-byte
// aligned), then come back to the caller's stack.  rbp keeps the caller's stack.
extern "C" void vmrt_guest_on_stack(void (*fn)(void*), void* arg, void* sp);
asm(R"(
  .text
  .globl vmrt_guest_on_stack
  .hidden vmrt_guest_on_stack
  .type vmrt_guest_on_stack, @function
vmrt_guest_on_stack:
  .cfi_startproc
  pushq %rbp
  .cfi_def_cfa_offset 16
  .cfi_offset %rbp, -16
  movq %rsp, %rbp
  .cfi_def_cfa_register %rbp
  movq %rdx, %rsp
  movq %rdi, %rax
  movq %rsi, %rdi
  callq *%rax
  movq %rbp, %rsp
  popq %rbp
  .cfi_def_cfa %rsp, 8
  retq
  .cfi_endproc
  .size vmrt_guest_on_stack, .-vmrt_guest_on_stack
)");

namespace vmrt::guest {

void* host_alloc(std::size_t n);

namespace {

thread_local __attribute__((tls_model("initial-exec"))) call_ctx* t_ctx;
thread_local __attribute__((tls_model("initial-exec"))) long t_tid;
thread_local __attribute__((tls_model("initial-exec"))) bool t_timer_made;
thread_local __attribute__((tls_model("initial-exec"))) timer_t t_timer;

// The signal of the time-limit timer (a real-time signal: no program default meaning).
int timer_signal() { return SIGRTMAX - 2; }
constexpr long kTimerRetryNs = 1000 * 1000;  // re-fire while host code runs

struct status_name {
  vmrt_guest_status s;
  const char* name;
};
constexpr status_name kStatusNames[] = {
    {VMRT_GUEST_OK, "ok"},
    {VMRT_GUEST_NULL_DEREF, "null dereference"},
    {VMRT_GUEST_WRITE_PROTECTED, "protection violation"},
    {VMRT_GUEST_BAD_ACCESS, "access to unmapped guest memory"},
    {VMRT_GUEST_WILD_ACCESS, "access outside the guest"},
    {VMRT_GUEST_STACK_OVERFLOW, "stack overflow"},
    {VMRT_GUEST_OUT_OF_MEMORY, "out of memory"},
    {VMRT_GUEST_ILLEGAL_INSTRUCTION, "illegal instruction"},
    {VMRT_GUEST_DIVIDE_BY_ZERO, "division by zero"},
    {VMRT_GUEST_ARITHMETIC, "arithmetic exception"},
    {VMRT_GUEST_TIMEOUT, "time limit exceeded"},
    {VMRT_GUEST_ABORT, "abort"},
    {VMRT_GUEST_HEAP_CORRUPTED, "heap corrupted"},
    {VMRT_GUEST_NO_SUCH_FUNCTION, "no such function"},
    {VMRT_GUEST_BAD_SIGNATURE, "bad signature"},
    {VMRT_GUEST_BUSY, "guest busy"},
    {VMRT_GUEST_BAD_ARGUMENT, "bad argument"},
};
static_assert(sizeof kStatusNames / sizeof kStatusNames[0] == VMRT_GUEST_BAD_ARGUMENT + 1);
static_assert(kStatusNames[VMRT_GUEST_TIMEOUT].s == VMRT_GUEST_TIMEOUT &&
              kStatusNames[VMRT_GUEST_BAD_ARGUMENT].s == VMRT_GUEST_BAD_ARGUMENT, "indexed by status");

// ---- signals ----------------------------------------------------------------------------

pthread_mutex_t g_sig_mu = PTHREAD_MUTEX_INITIALIZER;
int g_guests;  // [g_sig_mu] live guests
constexpr int kSignals[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, 0 /* timer */};
constexpr int kNumSignals = sizeof kSignals / sizeof kSignals[0];
struct sigaction g_old[kNumSignals];  // the handlers ours replaced [g_sig_mu to write]

int sig_index(int sig) {
  if (sig == timer_signal()) return kNumSignals - 1;
  for (int i = 0; i < kNumSignals - 1; ++i)
    if (kSignals[i] == sig) return i;
  return -1;
}
int signal_at(int i) { return i == kNumSignals - 1 ? timer_signal() : kSignals[i]; }

// SIGSEGV/SIGBUS go through trap_sigaction (vmrt's handler stays installed and chains to
// ours); the others are plain sigaction.
int install(int sig, const struct sigaction* act, struct sigaction* old) {
  return vmrt::rt::trap_sigaction(sig, act, old);
}

// A signal that is not a guest's: the handler ours replaced, or its default action.
//  => signal context.
void forward(int sig, siginfo_t* si, void* uc) {
  int i = sig_index(sig);
  struct sigaction prev = g_old[i];
  bool info = (prev.sa_flags & SA_SIGINFO) != 0;
  if ((info && prev.sa_sigaction != nullptr) ||
      (!info && prev.sa_handler != SIG_DFL && prev.sa_handler != SIG_IGN)) {
    sigset_t block = prev.sa_mask, old;
    if ((prev.sa_flags & SA_NODEFER) == 0) sigaddset(&block, sig);
    pthread_sigmask(SIG_BLOCK, &block, &old);
    if (info) prev.sa_sigaction(sig, si, uc);
    else prev.sa_handler(sig);
    pthread_sigmask(SIG_SETMASK, &old, nullptr);
    return;
  }
  if (!info && prev.sa_handler == SIG_IGN && (si->si_code <= 0 || sig == timer_signal())) return;
  // The default action (a fault ignored is fatal as well, as the kernel forces it).
  struct sigaction dfl{};
  dfl.sa_handler = SIG_DFL;
  sigemptyset(&dfl.sa_mask);
  __sigaction(sig, &dfl, nullptr);
  sigset_t one;
  sigemptyset(&one);
  sigaddset(&one, sig);
  pthread_sigmask(SIG_UNBLOCK, &one, nullptr);
  ::syscall(SYS_tgkill, ::getpid(), ::syscall(SYS_gettid), sig);
}

bool in_image(const vmrt_guest* g, std::uintptr_t a) { return a >= g->img_lo && a < g->img_hi; }

// Every guest signal.  => signal context; escapes with _longjmp or returns.
void on_signal(int sig, siginfo_t* si, void* ucv) {
  call_ctx* c = t_ctx;
  ucontext_t* uc = static_cast<ucontext_t*>(ucv);
  bool user_sent = si->si_code <= 0 && sig != timer_signal();
  if (c == nullptr || !c->active || user_sent) {
    if (sig != timer_signal() || si->si_code != SI_TIMER) forward(sig, si, ucv);
    return;
  }
  vmrt_guest* g = c->g;
  std::uintptr_t pc = static_cast<std::uintptr_t>(uc->uc_mcontext.gregs[REG_RIP]);
  std::uintptr_t sp = static_cast<std::uintptr_t>(uc->uc_mcontext.gregs[REG_RSP]);
  std::uintptr_t addr = reinterpret_cast<std::uintptr_t>(si->si_addr);
  vmrt_guest_status kind;
  if (sig == timer_signal()) {
    if (si->si_code != SI_TIMER) return;
    if (!in_image(g, pc)) {  // host code running for the guest: wait for the guest's own code
      c->timed_out = true;
      return;
    }
    kind = VMRT_GUEST_TIMEOUT;
    addr = 0;
  } else if (sig == SIGFPE) {
    kind = si->si_code == FPE_INTDIV ? VMRT_GUEST_DIVIDE_BY_ZERO : VMRT_GUEST_ARITHMETIC;
  } else if (sig == SIGILL) {
    kind = VMRT_GUEST_ILLEGAL_INSTRUCTION;
  } else if (sig == SIGBUS) {
    kind = VMRT_GUEST_OUT_OF_MEMORY;
  } else if (si->si_code == SI_KERNEL) {  // general protection: a non-canonical address
    kind = VMRT_GUEST_WILD_ACCESS;
  } else if ((addr >= g->guard_lo && addr < g->stack_lo) || (sp >= g->guard_lo && sp < g->stack_lo)) {
    kind = VMRT_GUEST_STACK_OVERFLOW;
  } else if (addr < kNullZone) {
    kind = VMRT_GUEST_NULL_DEREF;
  } else if (addr >= g->win_lo && addr < g->win_hi) {
    kind = addr < g->img_lo ? VMRT_GUEST_BAD_ACCESS
           : si->si_code == SEGV_ACCERR ? VMRT_GUEST_WRITE_PROTECTED
                                        : VMRT_GUEST_BAD_ACCESS;
  } else {
    kind = VMRT_GUEST_WILD_ACCESS;
  }
  c->trap->kind = kind;
  c->trap->addr = reinterpret_cast<void*>(addr);
  c->trap->pc = reinterpret_cast<void*>(pc);
  greg_t err = uc->uc_mcontext.gregs[REG_ERR];
  // The page-fault error code (x86 PF_WRITE = 2, PF_INSTR = 16) says which access faulted.
  c->access = (sig == SIGSEGV || sig == SIGBUS) ? ((err & 16) != 0 ? PROT_EXEC : (err & 2) != 0 ? PROT_WRITE : PROT_READ) : 0;
  c->caller = nullptr;
  c->trap_sp = sp >= g->guard_lo && sp < g->stack_hi ? (sp < g->stack_lo ? g->stack_lo : sp) : 0;  // overflow: in the guard
  if (!in_image(g, pc) && sp >= g->stack_lo && sp < g->stack_hi) {
    // Host code the guest called (its libc, an import): the innermost return address into
    // the guest's image on the (guest) stack names the guest's call site.
    const std::uintptr_t* w = reinterpret_cast<const std::uintptr_t*>(sp & ~std::uintptr_t{7});
    for (int k = 0; k < 512 && reinterpret_cast<std::uintptr_t>(w + 1) <= g->stack_hi; ++k, ++w) {
      if (in_image(g, *w)) {
        c->caller = reinterpret_cast<void*>(*w);
        break;
      }
    }
  }
  c->mask = uc->uc_sigmask;
  c->restore_mask = true;
  _longjmp(c->jb, 1);
}

long my_tid() {
  if (t_tid == 0) t_tid = ::syscall(SYS_gettid);
  return t_tid;
}

// The thread's timer is deleted when the thread exits (a key destructor: key values
// below PTHREAD_KEYS_MAX's first block need no allocation in glibc).
pthread_once_t g_timer_key_once = PTHREAD_ONCE_INIT;
pthread_key_t g_timer_key;
bool g_timer_key_ok;
void timer_key_destroy(void*) {
  if (t_timer_made) timer_delete(t_timer);
  t_timer_made = false;
}
void timer_key_make() { g_timer_key_ok = pthread_key_create(&g_timer_key, timer_key_destroy) == 0; }

// Arm (ms > 0) or disarm (0) this thread's time-limit timer.  False when the timer
// cannot be made (the call then runs without a limit: the caller refuses it).
bool arm_timer(unsigned ms) {
  if (!t_timer_made) {
    if (ms == 0) return true;
    pthread_once(&g_timer_key_once, timer_key_make);
    if (!g_timer_key_ok || pthread_setspecific(g_timer_key, reinterpret_cast<void*>(1)) != 0) return false;
    struct sigevent sev{};
    sev.sigev_notify = SIGEV_THREAD_ID;
    sev.sigev_signo = timer_signal();
    sev._sigev_un._tid = static_cast<pid_t>(my_tid());
    if (timer_create(CLOCK_MONOTONIC, &sev, &t_timer) != 0) return false;
    t_timer_made = true;
  }
  struct itimerspec its{};
  if (ms != 0) {
    its.it_value.tv_sec = ms / 1000;
    its.it_value.tv_nsec = static_cast<long>(ms % 1000) * 1000000L;
    its.it_interval.tv_nsec = kTimerRetryNs;
  }
  return timer_settime(t_timer, 0, &its, nullptr) == 0;
}

struct tramp_arg {
  ffi_cif* cif;
  void* fn;
  void* rv;
  void** av;
};
// Runs on the guest stack.
void tramp(void* p) {
  tramp_arg* a = static_cast<tramp_arg*>(p);
  ffi_call(a->cif, FFI_FN(a->fn), a->rv, a->av);
}

std::uintptr_t current_sp() {
  std::uintptr_t sp;
  asm volatile("movq %%rsp, %0" : "=r"(sp));
  return sp;
}

void set_status(vmrt_guest_trap* t, vmrt_guest_status s) {
  std::memset(t, 0, sizeof *t);
  t->kind = s;
}

ffi_type* ffi_of(char c) {
  switch (c) {
    case 'v': return &ffi_type_void;
    case 'i': return &ffi_type_sint32;
    case 'l': return &ffi_type_sint64;
    case 'f': return &ffi_type_float;
    case 'd': return &ffi_type_double;
    case 'p': return &ffi_type_pointer;
    default: return nullptr;
  }
}

// One type of a signature at *s: a scalar (v i l f d p) or a struct "{...}" of scalars
// (i l f d p), laid out by the C rules.  Advances *s; nullptr when malformed.
ffi_type* parse_type(prepared* f, const char** s) {
  if (**s != '{') {
    ffi_type* t = ffi_of(**s);
    if (t != nullptr) ++*s;
    return t;
  }
  if (f->nstructs == kMaxStructs) return nullptr;
  unsigned k = f->nstructs, n = 0;
  const char* p = *s + 1;
  for (; *p != '}' && *p != '\0'; ++p) {
    ffi_type* e = ffi_of(*p);
    if (e == nullptr || *p == 'v' || n == kMaxStructFields) return nullptr;
    f->selems[k][n++] = e;
  }
  if (*p != '}' || n == 0) return nullptr;
  f->selems[k][n] = nullptr;
  ffi_type& st = f->stypes[k];
  st.size = 0;
  st.alignment = 0;
  st.type = FFI_TYPE_STRUCT;
  st.elements = f->selems[k];
  ++f->nstructs;
  *s = p + 1;
  return &st;
}

// Parse "R(ARGS)" into f; false when malformed.  A '.' in ARGS starts the variadic
// arguments ("i(p.ld)": printf-like; a float is passed promoted, as 'd').  A struct by
// value is "{...}" of scalars, as an argument or the result: "d({ld}i)", "{ll}(l)".
bool parse_sig(prepared* f, const char* sig) {
  if (sig == nullptr || std::strlen(sig) >= sizeof f->sig) return false;
  f->nstructs = 0;
  const char* s = sig;
  f->rtype = *s == '{' ? 'S' : *s;
  f->rtype_ffi = parse_type(f, &s);
  if (f->rtype_ffi == nullptr || *s != '(') return false;
  ++s;
  unsigned n = 0;
  int nfixed = -1;
  while (*s != ')' && *s != '\0') {
    if (*s == '.' && nfixed < 0) {
      nfixed = static_cast<int>(n);
      ++s;
      continue;
    }
    char c = *s == '{' ? 'S' : *s;
    if (c == 'v' || n == kMaxArgs) return false;
    if (nfixed >= 0 && c == 'f') return false;  // variadic floats are promoted to double
    ffi_type* t = parse_type(f, &s);
    if (t == nullptr) return false;
    f->argt[n] = c;
    f->atypes[n] = t;
    ++n;
  }
  if (*s != ')' || s[1] != '\0') return false;
  f->nargs = n;
  std::memcpy(f->sig, sig, std::strlen(sig) + 1);
  if (nfixed >= 0)
    return ffi_prep_cif_var(&f->cif, FFI_DEFAULT_ABI, static_cast<unsigned>(nfixed), n, f->rtype_ffi, f->atypes) ==
           FFI_OK;
  return ffi_prep_cif(&f->cif, FFI_DEFAULT_ABI, n, f->rtype_ffi, f->atypes) == FFI_OK;
}

// The guest call proper: fn with the prepared cif.  => the caller owns g.
vmrt_guest_status run(vmrt_guest* g, ffi_cif* cif, void* fn, void** av, void* rv, vmrt_guest_trap* t,
                      void** caller, int* access) {
  vmrt::rt::trap_thread_attach();  // faults on an exhausted guest stack need the alternate stack
  call_ctx c;
  c.g = g;
  c.prev = t_ctx;
  c.trap = t;
  c.timed_out = false;
  c.restore_mask = false;
  c.import_ra = nullptr;
  c.caller = nullptr;
  c.access = 0;
  c.trap_sp = 0;
  std::uintptr_t sp = g->stack_hi;
  std::uintptr_t here = current_sp();
  if (here > g->stack_lo && here <= g->stack_hi) sp = (here - 512) & ~std::uintptr_t{15};  // nested, on this stack
  tramp_arg ta{cif, fn, rv, av};
  bool timed = g->opt.time_limit_ms != 0 && c.prev == nullptr;
  if (timed && !arm_timer(g->opt.time_limit_ms)) {  // a limit that cannot be kept: refuse the call
    set_status(t, VMRT_GUEST_TIMEOUT);
    vm_out(t->message, sizeof t->message).str("time limit: no timer for this thread (timer_create failed)");
    return VMRT_GUEST_TIMEOUT;
  }
  t_ctx = &c;
  c.active = true;
  vmrt_guest_status st = VMRT_GUEST_OK;
  if (_setjmp(c.jb) == 0) {
    vmrt_guest_on_stack(tramp, &ta, reinterpret_cast<void*>(sp));
  } else {
    call_ctx* cc = t_ctx;  // == &c (re-read: locals may not survive the jump)
    st = cc->trap->kind;
    if (caller != nullptr) *caller = cc->caller;
    if (access != nullptr) *access = cc->access;
    if (cc->restore_mask) pthread_sigmask(SIG_SETMASK, &cc->mask, nullptr);
#if defined(__SANITIZE_ADDRESS__)
    // Frames abandoned on the guest stack leave their redzones poisoned.
    __asan_unpoison_memory_region(reinterpret_cast<void*>(g->stack_lo), g->stack_hi - g->stack_lo);
#endif
    // The abandoned frames are cleared: their return addresses into the image would be taken
    // for a later trap's call site (a host function's uninitialised stack slots hold them;
    // the guest call site of a fault in host code is found by scanning the stack).
    std::uintptr_t tsp = cc->trap_sp & ~std::uintptr_t{15};
    if (tsp >= g->stack_lo && tsp < sp) std::memset(reinterpret_cast<void*>(tsp), 0, sp - tsp);
  }
  t_ctx->active = false;
  t_ctx = t_ctx->prev;
  if (timed) arm_timer(0);
  return st;
}

// Take g for this thread (nested calls of the owner are allowed).
bool enter(vmrt_guest* g) {
  long tid = my_tid();
  long expect = 0;
  if (!g->owner.compare_exchange_strong(expect, tid, std::memory_order_acquire) && expect != tid) return false;
  if (!family_enter(g)) {  // a forked guest: its family's window is busy, or switching failed
    if (g->depth == 0) g->owner.store(0, std::memory_order_release);
    return false;
  }
  ++g->depth;
  return true;
}
void leave(vmrt_guest* g) {
  family_leave(g);
  if (--g->depth == 0) g->owner.store(0, std::memory_order_release);
}

// Look f's function up in its guest.
bool bind(prepared* f) {
  f->fn = vmrt_guest_symbol(f->g, f->name);
  f->ok = f->fn != nullptr;
  return f->ok;
}

}  // namespace

call_ctx* current() { return t_ctx; }

[[noreturn]] void escape(vmrt_guest_status kind, const void* addr) {
  call_ctx* c = t_ctx;
  c->trap->kind = kind;
  c->trap->addr = const_cast<void*>(addr);
  c->trap->pc = c->import_ra != nullptr ? c->import_ra : __builtin_return_address(0);
  c->trap->offset = 0;
  c->access = 0;
  c->restore_mask = false;
  c->caller = nullptr;
  _longjmp(c->jb, 1);
}

bool signals_acquire() {
  pthread_mutex_lock(&g_sig_mu);
  bool ok = true;
  if (g_guests == 0) {
    struct sigaction sa{};
    sa.sa_sigaction = on_signal;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESTART;
    sigemptyset(&sa.sa_mask);
    for (int i = 0; i < kNumSignals && ok; ++i) ok = install(signal_at(i), &sa, &g_old[i]) == 0;
  }
  if (ok) ++g_guests;
  pthread_mutex_unlock(&g_sig_mu);
  return ok;
}

void signals_release() {
  pthread_mutex_lock(&g_sig_mu);
  if (--g_guests == 0) {
    for (int i = 0; i < kNumSignals; ++i) {
      struct sigaction cur{};
      install(signal_at(i), nullptr, &cur);
      if ((cur.sa_flags & SA_SIGINFO) != 0 && cur.sa_sigaction == on_signal) install(signal_at(i), &g_old[i], nullptr);
    }
  }
  pthread_mutex_unlock(&g_sig_mu);
}

void describe(const vmrt_guest* g, vmrt_guest_trap* t, void* caller, int access) {
  t->offset = 0;
  t->symbol[0] = '\0';
  std::size_t off = 0;
  std::uintptr_t where = reinterpret_cast<std::uintptr_t>(caller != nullptr ? caller : t->pc);
  const char* sym = symbolize(g, where, &off);
  if (sym != nullptr) {
    vm_out(t->symbol, sizeof t->symbol).str(sym);
    t->offset = off;
  }
  vm_out o(t->message, sizeof t->message);
  o.str(vmrt_guest_status_name(t->kind));
  if (t->kind >= VMRT_GUEST_NULL_DEREF && t->kind <= VMRT_GUEST_OUT_OF_MEMORY) {
    o.str(access == PROT_WRITE ? " (write)" : access == PROT_EXEC ? " (execute)" : access == PROT_READ ? " (read)" : "");
    o.str(" at ").hex(reinterpret_cast<std::uintptr_t>(t->addr));
  }
  if (t->pc != nullptr) {
    o.str(" pc ").hex(reinterpret_cast<std::uintptr_t>(t->pc));
    bool host = !in_image(g, reinterpret_cast<std::uintptr_t>(t->pc));
    if (host && sym != nullptr) o.str(" (host code called from ").str(sym).str("+").hex(off).str(")");
    else if (sym != nullptr) o.str(" (").str(sym).str("+").hex(off).str(")");
    else if (host) o.str(" (host code called by the guest)");
  }
}

vmrt_guest_status run_void(vmrt_guest* g, void* fn, vmrt_guest_trap* t) {
  static ffi_cif cif;  // void(void): prepared once (ffi_prep_cif is deterministic)
  static bool made = false;
  if (!made) {
    if (ffi_prep_cif(&cif, FFI_DEFAULT_ABI, 0, &ffi_type_void, nullptr) != FFI_OK) return VMRT_GUEST_BAD_SIGNATURE;
    made = true;
  }
  set_status(t, VMRT_GUEST_OK);
  if (!enter(g)) {
    set_status(t, VMRT_GUEST_BUSY);
    return VMRT_GUEST_BUSY;
  }
  ffi_arg rv;
  void* caller = nullptr;
  int access = 0;
  vmrt_guest_status st = run(g, &cif, fn, nullptr, &rv, t, &caller, &access);
  leave(g);
  if (st != VMRT_GUEST_OK) describe(g, t, caller, access);
  return st;
}

int guarded_memcpy(vmrt_guest* g, void* dst, const void* src, std::size_t n) {
  vmrt::rt::trap_thread_attach();
  vmrt_guest_trap t;
  call_ctx c;
  c.g = g;
  c.prev = t_ctx;
  c.trap = &t;
  c.timed_out = false;
  c.restore_mask = false;
  c.import_ra = nullptr;
  c.caller = nullptr;
  c.access = 0;
  t_ctx = &c;
  c.active = true;
  int rc = 0;
  if (_setjmp(c.jb) == 0) {
    std::memcpy(dst, src, n);
  } else {
    rc = -1;
    if (t_ctx->restore_mask) pthread_sigmask(SIG_SETMASK, &t_ctx->mask, nullptr);
  }
  t_ctx->active = false;
  t_ctx = t_ctx->prev;
  if (rc != 0) errno = EFAULT;
  return rc;
}

void reprepare(vmrt_guest* g) {
  for (prepared* p = g->funcs; p != nullptr; p = p->next) bind(p);
}

}  // namespace vmrt::guest

using namespace vmrt::guest;
using vmrt::vm_out;

extern "C" {

const char* vmrt_guest_status_name(vmrt_guest_status s) {
  int i = static_cast<int>(s);
  return i >= 0 && i <= VMRT_GUEST_BAD_ARGUMENT ? kStatusNames[i].name : "unknown status";
}

vmrt_guest_func* vmrt_guest_prepare(vmrt_guest* g, const char* name, const char* sig) {
  if (g == nullptr || name == nullptr || std::strlen(name) >= sizeof(prepared::name)) {
    errno = EINVAL;
    return nullptr;
  }
  prepared* f = static_cast<prepared*>(host_alloc(sizeof(prepared)));
  if (f == nullptr) {
    errno = ENOMEM;
    return nullptr;
  }
  f->g = g;
  std::memcpy(f->name, name, std::strlen(name) + 1);
  if (!parse_sig(f, sig)) {
    host_free(f, sizeof *f);
    errno = EINVAL;
    return nullptr;
  }
  if (!bind(f)) {
    host_free(f, sizeof *f);
    errno = ENOENT;
    return nullptr;
  }
  f->next = g->funcs;
  g->funcs = f;
  return reinterpret_cast<vmrt_guest_func*>(f);
}

vmrt_guest_status vmrt_guest_invoke(vmrt_guest_func* fh, const vmrt_guest_value* args, vmrt_guest_value* ret,
                                    vmrt_guest_trap* trap) {
  prepared* f = reinterpret_cast<prepared*>(fh);
  vmrt_guest_trap local;
  vmrt_guest_trap* t = trap != nullptr ? trap : &local;
  t->kind = VMRT_GUEST_OK;
  if (f == nullptr || f->g->vs == nullptr || (f->nargs != 0 && args == nullptr)) {
    set_status(t, VMRT_GUEST_BAD_ARGUMENT);
    vm_out(t->message, sizeof t->message).str("bad argument (no function, no guest, or no argument array)");
    return VMRT_GUEST_BAD_ARGUMENT;
  }
  if (!f->ok) {
    set_status(t, VMRT_GUEST_NO_SUCH_FUNCTION);
    vm_out(t->message, sizeof t->message).str("no such function: ").str(f->name);
    return VMRT_GUEST_NO_SUCH_FUNCTION;
  }
  vmrt_guest* g = f->g;
  if (!enter(g)) {
    set_status(t, VMRT_GUEST_BUSY);
    vm_out(t->message, sizeof t->message).str("guest busy: another thread is calling it");
    return VMRT_GUEST_BUSY;
  }
  // Argument pointers straight into the caller's values (little-endian: an 'i' is the
  // low 4 bytes of .i).
  // A struct argument's value is a pointer to its bytes (host or guest memory); a struct
  // result is written where ret->p points.
  void* av[kMaxArgs];
  bool bad = f->rtype == 'S' && (ret == nullptr || ret->p == nullptr);
  for (unsigned i = 0; i < f->nargs; ++i) {
    av[i] = f->argt[i] == 'S' ? args[i].p : const_cast<vmrt_guest_value*>(&args[i]);
    bad |= av[i] == nullptr;
  }
  if (bad) {
    leave(g);
    set_status(t, VMRT_GUEST_BAD_ARGUMENT);
    vm_out(t->message, sizeof t->message).str("bad argument: a struct argument or result without a buffer");
    return VMRT_GUEST_BAD_ARGUMENT;
  }
  union {
    ffi_arg a;
    double d;
    float f;
    std::uint64_t u;
  } rv;
  rv.u = 0;
  void* caller = nullptr;
  int access = 0;
  vmrt_guest_status st =
      run(g, &f->cif, f->fn, av, f->rtype == 'S' ? ret->p : static_cast<void*>(&rv), t, &caller, &access);
  leave(g);
  if (st != VMRT_GUEST_OK) {
    describe(g, t, caller, access);
    return st;
  }
  if (ret != nullptr) {
    switch (f->rtype) {
      case 'i': ret->i = static_cast<std::int32_t>(rv.a); break;
      case 'l': ret->i = static_cast<std::int64_t>(rv.a); break;
      case 'p': ret->p = reinterpret_cast<void*>(rv.a); break;
      case 'd': ret->d = rv.d; break;
      case 'f': ret->f = rv.f; break;
      case 'S': break;  // written in place
      default: ret->i = 0; break;
    }
  }
  return VMRT_GUEST_OK;
}

vmrt_guest_status vmrt_guest_call(vmrt_guest* g, const char* name, const char* sig, const vmrt_guest_value* args,
                                  vmrt_guest_value* ret, vmrt_guest_trap* trap) {
  vmrt_guest_trap local;
  vmrt_guest_trap* t = trap != nullptr ? trap : &local;
  if (g == nullptr || name == nullptr || sig == nullptr || std::strlen(name) >= sizeof(prepared::name)) {
    set_status(t, VMRT_GUEST_BAD_ARGUMENT);
    vm_out(t->message, sizeof t->message).str("bad argument (guest, name or signature missing)");
    return VMRT_GUEST_BAD_ARGUMENT;
  }
  prepared f;  // on the stack: prepared for this call only
  std::memset(&f, 0, sizeof f);
  f.g = g;
  std::memcpy(f.name, name, std::strlen(name) + 1);
  if (!parse_sig(&f, sig)) {
    set_status(t, VMRT_GUEST_BAD_SIGNATURE);
    vm_out(t->message, sizeof t->message).str("bad signature \"").str(sig).str("\" (want R(ARGS), R in vilfdp, ARGS in ilfdp, {...} a struct, '.' before variadic ones)");
    return VMRT_GUEST_BAD_SIGNATURE;
  }
  if (g->vs == nullptr || !bind(&f)) {
    set_status(t, VMRT_GUEST_NO_SUCH_FUNCTION);
    vm_out(t->message, sizeof t->message).str("no such function: ").str(name);
    return VMRT_GUEST_NO_SUCH_FUNCTION;
  }
  return vmrt_guest_invoke(reinterpret_cast<vmrt_guest_func*>(&f), args, ret, t);
}

}  // extern "C"
