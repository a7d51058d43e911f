// shim_malloc.cpp — the C malloc family, interposed with LD_PRELOAD.
//
// Every call is charged to kmem type M_LIBC.  Semantics follow glibc 2.36 where
// glibc and the C standard leave a choice:
//   malloc(0)            a unique minimal block (never null)
//   calloc(n, m)         n*m overflow -> NULL + ENOMEM
//   realloc(NULL, n)     malloc(n)
//   realloc(p, 0)        frees p, returns NULL (glibc's REALLOC_ZERO_BYTES_FREES)
//   reallocarray         n*m overflow -> NULL + ENOMEM, p untouched
//   posix_memalign       alignment not a power of two multiple of sizeof(void*):
//                        returns EINVAL; exhaustion returns ENOMEM; errno untouched
//   aligned_alloc        alignment not a power of two: as the host's glibc, memalign's
//                        rules before 2.38, NULL + EINVAL from 2.38 on
//   memalign             alignment rounded up to a power of two; > 2^63 -> EINVAL
//   valloc / pvalloc     page aligned; pvalloc rounds the size up to pages
//   free                 preserves errno; foreign pointer / double free: message + abort
//   free_sized, free_aligned_sized (C23): free (the size is not needed by kmem)
// The glibc __libc_* entry points are the same functions.
#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <gnu/libc-version.h>
#include <malloc.h>
#include <stdlib.h>

#include "libc_shim/shim_alloc.h"
#include "vm/vm_fail.h"

using vmrt::kmem::M_LIBC;
using vmrt::kmem::M_ZERO;
namespace shim = vmrt::shim;

#define VMRT_EXPORT extern "C" __attribute__((visibility("default")))

namespace {

constexpr std::size_t kPage = 4096;
constexpr bool is_pow2(std::size_t a) { return a != 0 && (a & (a - 1)) == 0; }
static_assert(is_pow2(kPage) && !is_pow2(0) && !is_pow2(24));

// Fault injection (vm/vm_fail.h): an injected failure is exhaustion, NULL + ENOMEM.
#define VMRT_FAIL_HOOK(fp, n) \
  if (vmrt::vm_fail_armed() && vmrt::vm_fail_eval(vmrt::fp, n)) return errno = ENOMEM, nullptr

// memalign/valloc/pvalloc: glibc's _mid_memalign rules.
void* mid_memalign(std::size_t align, std::size_t n) {
  if (align > (SIZE_MAX / 2 + 1)) {
    shim::count(shim::C_EINVAL);
    errno = EINVAL;
    return nullptr;
  }
  VMRT_FAIL_HOOK(FP_MEMALIGN, n);
  if (align <= 16) return shim::alloc(n, M_LIBC, 0);
  if (!is_pow2(align)) {
    std::size_t a = 32;
    while (a < align) a <<= 1;
    align = a;
  }
  return shim::alloc_aligned(n, align, M_LIBC);
}

// glibc 2.38 made aligned_alloc refuse an alignment that is not a power of two (EINVAL); until
// then it was memalign (any alignment, rounded up to a power of two).  The host's glibc
// decides, read once: under vmrun a program gets what it gets natively (Debian 12's 2.36
// returned a block for aligned_alloc(24, n) where the shim returned NULL).
bool aligned_alloc_strict() {
  static std::atomic<int> strict{-1};  // a race only computes the same answer twice
  int v = strict.load(std::memory_order_relaxed);
  if (v < 0) {
    const char* s = gnu_get_libc_version();  // "2.36"
    unsigned major = 0, minor = 0;
    while (*s >= '0' && *s <= '9') major = major * 10 + static_cast<unsigned>(*s++ - '0');
    if (*s == '.') ++s;
    while (*s >= '0' && *s <= '9') minor = minor * 10 + static_cast<unsigned>(*s++ - '0');
    v = major > 2 || (major == 2 && minor >= 38) ? 1 : 0;
    strict.store(v, std::memory_order_relaxed);
  }
  return v == 1;
}

}  // namespace

// malloc's out-of-line path: fault injection, then boot and kmem (shim::alloc_kmem).
__attribute__((noinline)) void* malloc_slow_entry(std::size_t n) {
  VMRT_FAIL_HOOK(FP_MALLOC, n);
  return shim::alloc_kmem(n, M_LIBC, 0);
}

// kmem's inline pop and nothing before it: armed fault injection holds kmem's fast paths
// (shim::kHoldFaultInjection), so the flag is tested on the slow path only (a malloc was 6
// instructions more with the two flag tests in front).
VMRT_EXPORT void* malloc(std::size_t n) noexcept {
  void* p = vmrt::kmem::detail::malloc_fast(n, M_LIBC);
  if (__builtin_expect(p != nullptr, 1)) return p;
  return malloc_slow_entry(n);
}

// errno is preserved by shim::release's out-of-line path (the only one that can
// change it), not saved on every call.
VMRT_EXPORT void free(void* p) noexcept { shim::release(p, M_LIBC, "free()"); }

VMRT_EXPORT void* calloc(std::size_t n, std::size_t m) noexcept {
  std::size_t total;
  if (__builtin_mul_overflow(n, m, &total)) {
    shim::count(shim::C_OVERFLOW);
    errno = ENOMEM;
    return nullptr;
  }
  VMRT_FAIL_HOOK(FP_CALLOC, total);
  return shim::alloc(total, M_LIBC, M_ZERO);
}

VMRT_EXPORT void* realloc(void* p, std::size_t n) noexcept {
  if (n != 0 || p == nullptr) VMRT_FAIL_HOOK(FP_REALLOC, n);  // realloc(p, 0) frees: never failed
  return shim::resize(p, n, M_LIBC, "realloc()");
}

VMRT_EXPORT void* reallocarray(void* p, std::size_t n, std::size_t m) noexcept {
  std::size_t total;
  if (__builtin_mul_overflow(n, m, &total)) {
    shim::count(shim::C_OVERFLOW);
    errno = ENOMEM;
    return nullptr;
  }
  if (total != 0 || p == nullptr) VMRT_FAIL_HOOK(FP_REALLOC, total);
  return shim::resize(p, total, M_LIBC, "reallocarray()");
}

VMRT_EXPORT int posix_memalign(void** out, std::size_t align, std::size_t n) noexcept {
  if (!is_pow2(align) || align % sizeof(void*) != 0) {
    shim::count(shim::C_EINVAL);
    return EINVAL;
  }
  if (vmrt::vm_fail_armed() && vmrt::vm_fail_eval(vmrt::FP_MEMALIGN, n)) return ENOMEM;
  int saved = errno;
  void* p = align <= 16 ? shim::alloc(n, M_LIBC, 0) : shim::alloc_aligned(n, align, M_LIBC);
  errno = saved;
  if (p == nullptr) return ENOMEM;
  *out = p;
  return 0;
}

VMRT_EXPORT void* aligned_alloc(std::size_t align, std::size_t n) noexcept {
  if (!is_pow2(align)) {
    if (!aligned_alloc_strict()) return mid_memalign(align, n);
    shim::count(shim::C_EINVAL);
    errno = EINVAL;
    return nullptr;
  }
  VMRT_FAIL_HOOK(FP_MEMALIGN, n);
  return align <= 16 ? shim::alloc(n, M_LIBC, 0) : shim::alloc_aligned(n, align, M_LIBC);
}

VMRT_EXPORT void* memalign(std::size_t align, std::size_t n) noexcept { return mid_memalign(align, n); }

VMRT_EXPORT void* valloc(std::size_t n) noexcept { return mid_memalign(kPage, n); }

VMRT_EXPORT void* pvalloc(std::size_t n) noexcept {
  if (n > SIZE_MAX - 2 * kPage) {
    shim::count(shim::C_OVERFLOW);
    errno = ENOMEM;
    return nullptr;
  }
  std::size_t rounded = (n + kPage - 1) & ~(kPage - 1);
  return mid_memalign(kPage, rounded == 0 ? kPage : rounded);
}

VMRT_EXPORT std::size_t malloc_usable_size(void* p) noexcept { return shim::usable(p); }

VMRT_EXPORT void free_sized(void* p, std::size_t /*size*/) noexcept { free(p); }
VMRT_EXPORT void free_aligned_sized(void* p, std::size_t /*align*/, std::size_t /*size*/) noexcept { free(p); }

// glibc's internal names, for programs (and old loaders) that call them directly.
VMRT_EXPORT void* __libc_malloc(std::size_t n) noexcept { return malloc(n); }
VMRT_EXPORT void __libc_free(void* p) noexcept { free(p); }
VMRT_EXPORT void* __libc_calloc(std::size_t n, std::size_t m) noexcept { return calloc(n, m); }
VMRT_EXPORT void* __libc_realloc(void* p, std::size_t n) noexcept { return realloc(p, n); }
VMRT_EXPORT void* __libc_memalign(std::size_t a, std::size_t n) noexcept { return mid_memalign(a, n); }
VMRT_EXPORT void* __libc_valloc(std::size_t n) noexcept { return valloc(n); }
VMRT_EXPORT void* __libc_pvalloc(std::size_t n) noexcept { return pvalloc(n); }
