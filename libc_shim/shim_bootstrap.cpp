// shim_bootstrap.cpp — bump allocation for calls made during boot (shim_bootstrap.h).
#include "libc_shim/shim_bootstrap.h"

#include "libc_shim/shim_boot.h"
#include "vm/vm_sys.h"
#include "vm/vm_types.h"

#include <atomic>
#include <cstdint>
#include <cstring>
#include <sys/mman.h>

namespace vmrt::shim {
namespace {

// Offsets [0, kBootstrapStaticSize) lie in g_static, the rest in g_extra.
alignas(4096) VMRT_LARGE_BSS unsigned char g_static[kBootstrapStaticSize];
std::atomic<unsigned char*> g_extra{nullptr};  // mapped by the first block that lies there
std::atomic<std::size_t> g_used{0};            // bump offset; lock-free CAS

constexpr std::size_t round_up(std::size_t v, std::size_t a) { return (v + a - 1) & ~(a - 1); }

// => lock-free.  The extension, mapped by whichever thread gets there first (a loser
// unmaps its own); null when the host refuses.
unsigned char* extra() {
  unsigned char* e = g_extra.load(std::memory_order_acquire);
  if (e != nullptr) return e;
  void* m = vmrt::sys::mmap(nullptr, kBootstrapExtraSize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (m == MAP_FAILED) return nullptr;
  unsigned char* mine = static_cast<unsigned char*>(m);
  if (g_extra.compare_exchange_strong(e, mine, std::memory_order_acq_rel)) return mine;
  vmrt::sys::munmap(m, kBootstrapExtraSize);
  return e;
}

// The byte at arena offset off.
unsigned char* at(std::size_t off, unsigned char* ext) {
  return off < kBootstrapStaticSize ? g_static + off : ext + (off - kBootstrapStaticSize);
}

}  // namespace

void* bootstrap_alloc(std::size_t size, std::size_t align) {
  if (align < kBootstrapHeader) align = kBootstrapHeader;
  if (align > 4096 || size > kBootstrapExtraSize) return nullptr;
  const std::size_t len = size == 0 ? 1 : size;
  std::size_t off = g_used.load(std::memory_order_relaxed);
  for (;;) {
    std::size_t start = round_up(off + kBootstrapHeader, align);
    if (start - kBootstrapHeader < kBootstrapStaticSize && start + len > kBootstrapStaticSize)
      start = round_up(kBootstrapStaticSize + kBootstrapHeader, align);  // a block never straddles the two pieces
    const std::size_t end = round_up(start + len, kBootstrapHeader);
    if (end > kBootstrapArenaSize) return nullptr;
    if (g_used.compare_exchange_weak(off, end, std::memory_order_acq_rel)) {
      SHIM_ASSERT((start & (align - 1)) == 0 && end <= kBootstrapArenaSize);
      unsigned char* ext = nullptr;
      if (end > kBootstrapStaticSize && (ext = extra()) == nullptr) return nullptr;  // its offsets stay used
      std::size_t sz = size;
      std::memcpy(at(start - kBootstrapHeader, ext), &sz, sizeof sz);
      return at(start, ext);
    }
  }
}

bool bootstrap_owns(const void* p) {
  const auto a = reinterpret_cast<std::uintptr_t>(p);
  const auto s = reinterpret_cast<std::uintptr_t>(g_static);
  if (a >= s && a < s + kBootstrapStaticSize) return true;
  const auto e = reinterpret_cast<std::uintptr_t>(g_extra.load(std::memory_order_acquire));
  return e != 0 && a >= e && a < e + kBootstrapExtraSize;
}

std::size_t bootstrap_size(const void* p) {
  SHIM_ASSERT(bootstrap_owns(p));
  std::size_t sz;
  std::memcpy(&sz, static_cast<const unsigned char*>(p) - kBootstrapHeader, sizeof sz);
  return sz;
}

}  // namespace vmrt::shim
