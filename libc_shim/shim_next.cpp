// shim_next.cpp — the next definitions of the symbols the shim wraps (shim_next.h).
#include "libc_shim/shim_next.h"

#include <dlfcn.h>

#include "runtime/rt_base.h"
#include "runtime/rt_dynsym.h"

namespace vmrt::shim {
namespace {

// The shim's own link map: where the lookup starts (RTLD_NEXT from here).  Found in the
// loader's list (a walk of a few entries) each time: the few calls at load need no cache.
const link_map* shim_object() {
  const link_map* l = rt::dynsym_object_at(__ehdr_start);
  return l != nullptr ? l : rt::dynsym_object_of(reinterpret_cast<const void*>(&shim_object));
}

}  // namespace

void next_symbols(const next_entry* entries, std::size_t n) {
  constexpr std::size_t kBatch = 48;
  const char* names[kBatch];
  void* got[kBatch];
  for (std::size_t done = 0; done < n; done += kBatch) {
    const std::size_t m = n - done < kBatch ? n - done : kBatch;
    for (std::size_t i = 0; i < m; ++i) names[i] = entries[done + i].name;
    rt::dynsym_next(shim_object(), names, got, m);
    for (std::size_t i = 0; i < m; ++i) {
      void** slot = entries[done + i].slot;
      if (__atomic_load_n(slot, __ATOMIC_ACQUIRE) != nullptr) continue;
      void* p = got[i] != nullptr ? got[i] : ::dlsym(RTLD_NEXT, names[i]);
      if (p != nullptr) __atomic_store_n(slot, p, __ATOMIC_RELEASE);
    }
  }
}

void* next_address(const char* name) {
  void* p = nullptr;
  const next_entry e{&p, name};
  next_symbols(&e, 1);
  return p;
}

}  // namespace vmrt::shim
