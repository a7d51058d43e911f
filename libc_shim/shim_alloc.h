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

#include "kmem/kmem.h"
#include "libc_shim/shim_boot.h"
#include "libc_shim/shim_counters.h"

namespace vmrt::shim {

inline constexpr int kAllocFlags = kmem::M_NOWAIT;

void* alloc_slow(std::size_t n, std::size_t align, kmem::malloc_type t, int flags);
void release_refused(void* p, kmem::malloc_type t, kmem::kmem_status st, const char* who);
void release_slow(void* p, kmem::malloc_type t, const char* who);

// n bytes charged to t (flags: 0 or M_ZERO).  Null + ENOMEM on failure.
//  => thread-safe; boots the runtime on first use.
inline void* alloc(std::size_t n, kmem::malloc_type t, int flags) {
  if (__builtin_expect(ready(), 1)) {
    void* p = kmem::malloc(n, t, kAllocFlags | flags, nullptr);
    if (__builtin_expect(p != nullptr, 1)) return p;
    count(C_ENOMEM);
    errno = ENOMEM;
    return nullptr;
  }
  return alloc_slow(n, 0, t, flags);
}

// n bytes aligned to align (a power of two; the caller checked).  Null + ENOMEM.
void* alloc_aligned(std::size_t n, std::size_t align, kmem::malloc_type t);

// Free p (null is a no-op).  Aborts with a message on misuse.  May change errno
// (the C entry points preserve it).
inline void release(void* p, kmem::malloc_type t, const char* who) {
  if (p == nullptr) return;
  if (__builtin_expect(ready(), 1)) {
    kmem::kmem_status st = kmem::free(p, t);
    if (__builtin_expect(st == kmem::KMEM_OK, 1)) return;
    release_refused(p, t, st, who);
    return;
  }
  release_slow(p, t, who);
}

// glibc realloc semantics: p null -> alloc; n == 0 and p non-null -> free, null;
// failure -> null + ENOMEM, p untouched.  Aborts on a pointer vmrt does not own.
void* resize(void* p, std::size_t n, kmem::malloc_type t, const char* who);

// Usable bytes at p (0 for null or for a block vmrt cannot size).
std::size_t usable(const void* p);

}  // namespace vmrt::shim
