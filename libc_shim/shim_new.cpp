// shim_new.cpp — every replaceable C++ operator new / delete, charged to M_CXX.
//
// Throwing forms: on exhaustion call the program's std::new_handler (looked up
// weakly, so the shim has no libstdc++ dependency: a C++ program brings
// libstdc++ and its handler; a C program has none) and retry, as the standard's
// new-handler loop does.  A handler that throws std::bad_alloc unwinds through
// this frame (it has unwind tables) to the program.  With no handler installed
// the shim cannot construct a std::bad_alloc (that needs libstdc++), so it
// aborts with "vmrt: operator new: out of memory (N bytes)".
// Nothrow forms return nullptr on exhaustion without calling the handler (the
// shim cannot catch what a handler throws).
// Delete forms ignore the size / alignment argument (kmem frees without a
// size) and abort like free() on a pointer vmrt did not allocate.
#include <cstddef>
#include <cstdlib>
#include <new>

#include "libc_shim/shim_alloc.h"
#include "vm/vm_fail.h"
#include "vm/vm_out.h"

using vmrt::kmem::M_CXX;
namespace shim = vmrt::shim;

// libstdc++'s std::get_new_handler, bound weakly: null when libstdc++ is absent.
namespace std {
__attribute__((weak)) new_handler get_new_handler() noexcept;
__attribute__((weak, noreturn)) void __throw_bad_alloc();  // libstdc++: throws std::bad_alloc
}

#define VMRT_EXPORT __attribute__((visibility("default")))

namespace {

[[noreturn]] void new_out_of_memory(std::size_t n) {
  vmrt::vm_fd_out<512> m(2);
  m.str("vmrt: operator new: out of memory (").u(n).str(" bytes)\n");
  m.flush();
  std::abort();
}

[[noreturn]] void bad_alignment(std::size_t a) {
  vmrt::vm_fd_out<512> m(2);
  m.str("vmrt: operator new: invalid alignment ").u(a).str(" (not a power of two)\n");
  m.flush();
  std::abort();
}

std::new_handler current_handler() {
  auto get = &std::get_new_handler;
  if (reinterpret_cast<void*>(get) == nullptr) return nullptr;
  return get();
}

// The new-handler loop (and fault injection), out of line.
__attribute__((noinline)) void* new_slow(std::size_t n, std::size_t align) {
  for (;;) {
    bool injected = vmrt::vm_fail_armed() && vmrt::vm_fail_eval(vmrt::FP_NEW, n);  // fault injection
    void* p = injected ? nullptr : align > 16 ? shim::alloc_aligned(n, align, M_CXX) : shim::alloc(n, M_CXX, 0);
    if (__builtin_expect(p != nullptr, 1)) return p;
    std::new_handler h = current_handler();
    // An injected failure with no handler behaves as the standard says: std::bad_alloc.
    if (h == nullptr && injected && reinterpret_cast<void*>(&std::__throw_bad_alloc) != nullptr) std::__throw_bad_alloc();
    if (h == nullptr) new_out_of_memory(n);
    shim::count(shim::C_NEW_HANDLER_CALLS);
    h();
  }
}

// align 0: plain.  The fast path: one attempt when no fail spec is armed.
void* new_loop(std::size_t n, std::size_t align) {
  if (align != 0 && (align & (align - 1)) != 0) bad_alignment(align);
  if (__builtin_expect(!vmrt::vm_fail_armed(), 1)) {
    void* p = align > 16 ? shim::alloc_aligned(n, align, M_CXX) : shim::alloc(n, M_CXX, 0);
    if (__builtin_expect(p != nullptr, 1)) return p;
  }
  return new_slow(n, align);
}

void* new_nothrow(std::size_t n, std::size_t align) noexcept {
  if (align != 0 && (align & (align - 1)) != 0) return nullptr;
  if (vmrt::vm_fail_armed() && vmrt::vm_fail_eval(vmrt::FP_NEW, n)) return nullptr;
  return align > 16 ? shim::alloc_aligned(n, align, M_CXX) : shim::alloc(n, M_CXX, 0);
}

void del(void* p) noexcept { shim::release(p, M_CXX, "operator delete"); }

}  // namespace

VMRT_EXPORT void* operator new(std::size_t n) { return new_loop(n, 0); }
VMRT_EXPORT void* operator new[](std::size_t n) { return new_loop(n, 0); }
VMRT_EXPORT void* operator new(std::size_t n, const std::nothrow_t&) noexcept { return new_nothrow(n, 0); }
VMRT_EXPORT void* operator new[](std::size_t n, const std::nothrow_t&) noexcept { return new_nothrow(n, 0); }
VMRT_EXPORT void* operator new(std::size_t n, std::align_val_t a) { return new_loop(n, static_cast<std::size_t>(a)); }
VMRT_EXPORT void* operator new[](std::size_t n, std::align_val_t a) { return new_loop(n, static_cast<std::size_t>(a)); }
VMRT_EXPORT void* operator new(std::size_t n, std::align_val_t a, const std::nothrow_t&) noexcept {
  return new_nothrow(n, static_cast<std::size_t>(a));
}
VMRT_EXPORT void* operator new[](std::size_t n, std::align_val_t a, const std::nothrow_t&) noexcept {
  return new_nothrow(n, static_cast<std::size_t>(a));
}

VMRT_EXPORT void operator delete(void* p) noexcept { del(p); }
VMRT_EXPORT void operator delete[](void* p) noexcept { del(p); }
VMRT_EXPORT void operator delete(void* p, std::size_t) noexcept { del(p); }
VMRT_EXPORT void operator delete[](void* p, std::size_t) noexcept { del(p); }
VMRT_EXPORT void operator delete(void* p, const std::nothrow_t&) noexcept { del(p); }
VMRT_EXPORT void operator delete[](void* p, const std::nothrow_t&) noexcept { del(p); }
VMRT_EXPORT void operator delete(void* p, std::align_val_t) noexcept { del(p); }
VMRT_EXPORT void operator delete[](void* p, std::align_val_t) noexcept { del(p); }
VMRT_EXPORT void operator delete(void* p, std::size_t, std::align_val_t) noexcept { del(p); }
VMRT_EXPORT void operator delete[](void* p, std::size_t, std::align_val_t) noexcept { del(p); }
VMRT_EXPORT void operator delete(void* p, std::align_val_t, const std::nothrow_t&) noexcept { del(p); }
VMRT_EXPORT void operator delete[](void* p, std::align_val_t, const std::nothrow_t&) noexcept { del(p); }
