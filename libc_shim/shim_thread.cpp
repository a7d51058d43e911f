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
#include <cstdlib>
#include <dlfcn.h>
#include <locale.h>
#include <pthread.h>

#include "libc_shim/shim_boot.h"
#include "libc_shim/shim_signal.h"
#include "libc_shim/shim_thread.h"
#include "runtime/rt_vslock.h"
#include "vm/vm_heap.h"

#define VMRT_EXPORT extern "C" __attribute__((visibility("default")))

namespace {

using create_fn = int (*)(pthread_t*, const pthread_attr_t*, void* (*)(void*), void*);
create_fn g_create;

__attribute__((constructor)) void resolve_create() {
  g_create = reinterpret_cast<create_fn>(::dlsym(RTLD_NEXT, "pthread_create"));
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
  vmrt::rt::vslock_hold hold;
};

// The new thread's first code after glibc's own start: the locale is read, the hold goes.
void* start_trampoline(void* p) {
  auto* c = static_cast<start_ctx*>(p);
  void* (*fn)(void*) = c->fn;
  void* arg = c->arg;
  vmrt::shim::set_faults_blocked(c->faults_blocked);
  vmrt::rt::vsunlock(&c->hold);
  std::free(c);
  return fn(arg);
}

// The bytes of struct __locale_data that __ctype_init reads (its header and the first
// values) lie within this much of its start.
constexpr std::size_t kCtypeDataBytes = 512;

}  // namespace

VMRT_EXPORT int pthread_create(pthread_t* t, const pthread_attr_t* attr, void* (*fn)(void*), void* arg) noexcept {
  if (g_create == nullptr) resolve_create();
  unsigned faults = vmrt::shim::faults_blocked();
  bool hold = hold_needed();
  if (!hold && faults == 0) return g_create(t, attr, fn, arg);
  const void* data = hold ? ctype_data() : nullptr;
  auto* c = static_cast<start_ctx*>(std::malloc(sizeof(start_ctx)));
  if ((hold && data == nullptr && faults == 0) || c == nullptr) {
    std::free(c);
    return g_create(t, attr, fn, arg);
  }
  c->fn = fn;
  c->arg = arg;
  c->faults_blocked = faults;
  vmrt::rt::vslock_begin(&c->hold);
  if (data != nullptr) (void)vmrt::rt::vslock(&c->hold, data, kCtypeDataBytes, vmrt::VM_PROT_READ);
  int rc = g_create(t, attr, start_trampoline, c);
  if (rc != 0) {
    vmrt::rt::vsunlock(&c->hold);
    std::free(c);
  }
  return rc;
}

VMRT_FORK_PARENT_TEXT void vmrt::shim::thread_start_fork_prepare() {
  if (hold_needed()) (void)ctype_data();
}
