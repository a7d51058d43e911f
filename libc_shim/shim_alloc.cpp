// shim_alloc.cpp — slow paths of the shim's allocation operations.
#include "libc_shim/shim_alloc.h"

#include <cstdint>
#include <cstring>

#include "libc_shim/shim_bootstrap.h"
#include "libc_shim/shim_rtld.h"
#include "vm/vm_out.h"

namespace vmrt::shim {
namespace {

constexpr kmem::malloc_type other_type(kmem::malloc_type t) {
  return t == kmem::M_CXX ? kmem::M_LIBC : kmem::M_CXX;
}

[[noreturn]] void die_pointer(const char* who, const char* what, const void* p, kmem::kmem_status st) {
  vm_fd_out<512> m(2);
  m.str("vmrt: ").str(who).str(": ").str(what).str(" ").ptr(p).str(" (kmem: ").str(kmem::kmem_status_name(st))
      .str(")\n");
  m.flush();
  std::abort();
}

// Abort for a refused pointer that is neither a bootstrap nor an ld.so block.
[[noreturn]] void die_refused(const void* p, kmem::kmem_status st, const char* who) {
  switch (st) {
    case kmem::KMEM_FOREIGN: die_pointer(who, "invalid pointer (not allocated by vmrt):", p, st);
    case kmem::KMEM_NOT_BLOCK: die_pointer(who, "invalid pointer (inside a vmrt block, not its start):", p, st);
    case kmem::KMEM_DOUBLE_FREE: die_pointer(who, "double free detected:", p, st);
    case kmem::KMEM_CORRUPT: die_pointer(who, "heap corruption detected (write after free or overrun) at", p, st);
    default: die_pointer(who, "pointer refused by kmem:", p, st);
  }
}

}  // namespace

void* alloc_slow(std::size_t n, std::size_t align, kmem::malloc_type t, int flags) {
  if (!ensure_booted()) {
    void* p = bootstrap_alloc(n, align);  // zero-filled, so M_ZERO holds too
    if (p == nullptr) {
      count(C_ENOMEM);
      errno = ENOMEM;
      return nullptr;
    }
    count(C_BOOTSTRAP_ALLOCS);
    return p;
  }
  void* p = align != 0 ? kmem::malloc_aligned(n, align, t, kAllocFlags | flags, nullptr)
                       : kmem::malloc(n, t, kAllocFlags | flags, nullptr);
  if (p == nullptr) {
    count(C_ENOMEM);
    errno = ENOMEM;
  }
  return p;
}

[[gnu::noinline]] void* alloc_kmem(std::size_t n, kmem::malloc_type t, int flags) {
  if (__builtin_expect(!ready(), 0)) return alloc_slow(n, 0, t, flags);
  void* p = kmem::malloc(n, t, kAllocFlags | flags, nullptr);
  if (__builtin_expect(p != nullptr, 1)) return p;
  count(C_ENOMEM);
  errno = ENOMEM;
  return nullptr;
}

// Everything free's inline fast path left: a full chain, a thread without a
// cache, a limited type, diagnostics, a large block, before boot, misuse.
// Preserves errno.
[[gnu::noinline]] void release_kmem(void* p, kmem::malloc_type t, const char* who) {
  const int saved = errno;
  if (__builtin_expect(ready(), 1)) {
    kmem::kmem_status st = kmem::free(p, t);
    if (st != kmem::KMEM_OK) release_refused(p, t, st, who);
  } else {
    release_slow(p, t, who);
  }
  errno = saved;
}

void* alloc_aligned(std::size_t n, std::size_t align, kmem::malloc_type t) {
  SHIM_ASSERT(align != 0 && (align & (align - 1)) == 0);
  if (__builtin_expect(ready(), 1)) {
    void* p = kmem::malloc_aligned(n, align, t, kAllocFlags, nullptr);
    if (p != nullptr) return p;
    count(C_ENOMEM);
    errno = ENOMEM;
    return nullptr;
  }
  return alloc_slow(n, align, t, 0);
}

void release_refused(void* p, kmem::malloc_type t, kmem::kmem_status st, const char* who) {
  if (st == kmem::KMEM_WRONG_TYPE) {
    count(C_MISMATCHED_FREES);
    st = kmem::free(p, other_type(t));
    if (st == kmem::KMEM_OK) return;
  }
  if (st == kmem::KMEM_FOREIGN) {
    if (bootstrap_owns(p)) {
      count(C_BOOTSTRAP_FREES);
      return;
    }
    if (rtld_owns(p, nullptr)) {
      count(C_RTLD_FREES);
      return;
    }
  }
  die_refused(p, st, who);
}

void release_slow(void* p, kmem::malloc_type t, const char* who) {
  if (bootstrap_owns(p)) {
    count(C_BOOTSTRAP_FREES);
    return;
  }
  if (!ensure_booted()) {  // booting, or boot failed: only bootstrap and ld.so blocks exist
    if (rtld_owns(p, nullptr)) {
      count(C_RTLD_FREES);
      return;
    }
    die_refused(p, kmem::KMEM_FOREIGN, who);
  }
  release(p, t, who);
}

void* resize(void* p, std::size_t n, kmem::malloc_type t, const char* who) {
  if (p == nullptr) return alloc(n, t, 0);
  if (n == 0) {
    release(p, t, who);
    return nullptr;
  }
  if (!ready() && !ensure_booted()) {
    // Booting thread recursing, or boot failed: only bootstrap and ld.so blocks exist.
    std::size_t old = 0;
    if (bootstrap_owns(p)) old = bootstrap_size(p);
    else if (!rtld_owns(p, &old)) die_refused(p, kmem::KMEM_FOREIGN, who);
    void* q = bootstrap_alloc(n, 0);
    if (q == nullptr) {
      errno = ENOMEM;
      return nullptr;
    }
    std::memcpy(q, p, old < n ? old : n);
    return q;
  }
  kmem::kmem_status st = kmem::KMEM_OK;
  void* q = kmem::realloc(p, n, t, kAllocFlags, &st);
  if (q != nullptr) return q;
  if (st == kmem::KMEM_WRONG_TYPE) {
    count(C_MISMATCHED_FREES);
    q = kmem::realloc(p, n, other_type(t), kAllocFlags, &st);
    if (q != nullptr) return q;
  }
  std::size_t old = 0;
  if (st == kmem::KMEM_FOREIGN) {
    if (bootstrap_owns(p)) {
      old = bootstrap_size(p);
    } else if (rtld_owns(p, &old)) {
      count(C_RTLD_REALLOCS);
    } else {
      die_refused(p, st, who);
    }
    // Copy out of the foreign block; the old block is left alone (never reused).
    void* r = alloc(n, t, 0);
    if (r != nullptr) std::memcpy(r, p, old < n ? old : n);
    return r;
  }
  if (st == kmem::KMEM_OK || st == kmem::KMEM_NOMEM || st == kmem::KMEM_LIMIT) {
    count(C_ENOMEM);
    errno = ENOMEM;
    return nullptr;
  }
  die_refused(p, st, who);
}

std::size_t usable(const void* p) {
  if (p == nullptr) return 0;
  if (ready()) {
    std::size_t u = kmem::usable_size(p);
    if (u != 0) return u;
  }
  if (bootstrap_owns(p)) return bootstrap_size(p);
  return 0;
}

}  // namespace vmrt::shim
