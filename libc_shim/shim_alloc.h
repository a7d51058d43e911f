// shim_alloc.h — the operations every malloc-family entry point and every C++
// operator is built from: allocate, allocate aligned, release, resize, size.
//
// Policy (one place):
//  - requests use kmem's M_NOWAIT: a user-space malloc must answer, never sleep
//    on a type limit; failure is NULL + errno ENOMEM, counted;
//  - misuse (foreign pointer, interior pointer, double free, corruption found
//    by kmem diagnostics) prints the address and aborts, like glibc's
//    "free(): invalid pointer";
//  - blocks from the bootstrap arena and from ld.so's minimal malloc are
//    recognised precisely and never passed to kmem;
//  - a block freed with the other shim type (operator delete of malloc memory
//    or the reverse, which glibc tolerates) is freed anyway and counted.
#pragma once

#include <cerrno>
#include <cstddef>
#include <cstdint>

#include "kmem/kmem.h"
#include "kmem/kmem_fast.h"
#include "libc_shim/shim_boot.h"
#include "libc_shim/shim_counters.h"

namespace vmrt::shim {

inline constexpr int kAllocFlags = kmem::M_NOWAIT;

void* alloc_slow(std::size_t n, std::size_t align, kmem::malloc_type t, int flags);
// Everything alloc's fast path left: before or during boot (the bootstrap arena), an empty
// chain, a held fast path, a large block, a limited type.  Null + ENOMEM on failure.
void* alloc_kmem(std::size_t n, kmem::malloc_type t, int flags);
void release_refused(void* p, kmem::malloc_type t, kmem::kmem_status st, const char* who);
void release_slow(void* p, kmem::malloc_type t, const char* who);
void release_kmem(void* p, kmem::malloc_type t, const char* who);

// n bytes charged to t (flags: 0 or M_ZERO).  Null + ENOMEM on failure.
//  => thread-safe; boots the runtime on first use.
// Fast path (t and flags are constants at every call site): kmem's inline pop from the
// thread cache's chain (kmem_fast.h), nothing else.  It needs no boot check: before boot no
// thread has a cache (the chain is empty), and a fork child holds kmem's fast paths while it
// sets itself up (kHoldForkChild); alloc_kmem checks the boot.
[[gnu::always_inline]] inline void* alloc(std::size_t n, kmem::malloc_type t, int flags) {
  void* p = kmem::detail::malloc_fast(n, t);
  if (__builtin_expect(p != nullptr, 1)) {
    if ((flags & kmem::M_ZERO) != 0) __builtin_memset(p, 0, n);
    return p;
  }
  return alloc_kmem(n, t, flags);
}

// The shim's reasons to hold kmem's fast paths (kmem::fast_paths_hold): every call then
// takes the out-of-line path, which checks them.
inline constexpr std::uint8_t kHoldFaultInjection = 2;  // fault injection armed (vm_fail_set_arm_hook)
inline constexpr std::uint8_t kHoldForkChild = 4;       // a fork child setting itself up (shim_boot.cpp)
static_assert(((kHoldFaultInjection | kHoldForkChild) & ~kmem::kFastHoldBits) == 0);

// n bytes aligned to align (a power of two; the caller checked).  Null + ENOMEM.
void* alloc_aligned(std::size_t n, std::size_t align, kmem::malloc_type t);

// Free p (null is a no-op).  Aborts with a message on misuse.  The fast path
// (kmem's inline push onto the thread cache's chain) needs no boot check: before kmem is up its
// arena is empty, so every pointer fails the range check.  Only the out-of-line
// path can change errno, and it preserves it (glibc's free does too).
[[gnu::always_inline]] inline void release(void* p, kmem::malloc_type t, const char* who) {
  if (__builtin_expect(kmem::detail::free_fast(p, t), 1)) return;
  if (p == nullptr) return;
  release_kmem(p, t, who);
}

// glibc realloc semantics: p null -> alloc; n == 0 and p non-null -> free, null;
// failure -> null + ENOMEM, p untouched.  Aborts on a pointer vmrt does not own.
void* resize(void* p, std::size_t n, kmem::malloc_type t, const char* who);

// Usable bytes at p (0 for null or for a block vmrt cannot size).
std::size_t usable(const void* p);

}  // namespace vmrt::shim
