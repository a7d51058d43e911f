// shim_bootstrap.cpp — bump allocation for calls made during boot.
#include "libc_shim/shim_bootstrap.h"

#include "libc_shim/shim_boot.h"
#include "vm/vm_types.h"

#include <atomic>
#include <cstdint>
#include <cstring>

namespace vmrt::shim {
namespace {

VMRT_LARGE_BSS alignas(4096) unsigned char g_arena[kBootstrapArenaSize];
std::atomic<std::size_t> g_used{0};  // bump offset; lock-free CAS

constexpr std::size_t round_up(std::size_t v, std::size_t a) { return (v + a - 1) & ~(a - 1); }

}  // namespace

void* bootstrap_alloc(std::size_t size, std::size_t align) {
  if (align < kBootstrapHeader) align = kBootstrapHeader;
  if (align > 4096 || size > kBootstrapArenaSize) return nullptr;
  std::size_t off = g_used.load(std::memory_order_relaxed);
  for (;;) {
    std::size_t start = round_up(off + kBootstrapHeader, align);
    std::size_t end = round_up(start + (size == 0 ? 1 : size), kBootstrapHeader);
    if (end > kBootstrapArenaSize) return nullptr;
    if (g_used.compare_exchange_weak(off, end, std::memory_order_acq_rel)) {
      SHIM_ASSERT((start & (align - 1)) == 0 && end <= kBootstrapArenaSize);
      std::size_t sz = size;
      std::memcpy(g_arena + start - kBootstrapHeader, &sz, sizeof sz);
      return g_arena + start;
    }
  }
}

bool bootstrap_owns(const void* p) {
  auto a = reinterpret_cast<std::uintptr_t>(p);
  auto b = reinterpret_cast<std::uintptr_t>(g_arena);
  return a >= b && a < b + kBootstrapArenaSize;
}

std::size_t bootstrap_size(const void* p) {
  SHIM_ASSERT(bootstrap_owns(p));
  std::size_t sz;
  std::memcpy(&sz, static_cast<const unsigned char*>(p) - kBootstrapHeader, sizeof sz);
  return sz;
}

}  // namespace vmrt::shim
