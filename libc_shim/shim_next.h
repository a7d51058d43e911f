// shim_next.h — the definition an interposed symbol wraps: glibc's, the next one after the
// shim's in the loaded objects (dlsym(RTLD_NEXT) semantics), found once, into a slot the
// wrapper passes.
#pragma once

#include <cstddef>
#include <cstdlib>

#include "vm/vm_types.h"

namespace vmrt::shim {

// The next definition of `name`: looked up in the objects' own hash tables
// (runtime/rt_dynsym.h), dlsym(RTLD_NEXT) for what that lookup leaves (an indirect
// function); null when there is none.  => no lock held by the caller that the loader takes.
void* next_address(const char* name);

// A batch for one constructor: each slot whose name the objects define gets its address
// in one pass over their hash tables (~0.1 us a name where a dlsym took ~0.9 us: 37 names
// at every process's start), the rest from dlsym; a slot already filled is left alone.
struct next_entry {
  void** slot;
  const char* name;
};
void next_symbols(const next_entry* entries, std::size_t n);
template <class F> void** next_slot(F& f) { return reinterpret_cast<void**>(&f); }

// The next definition of `name` in `slot`: resolved at load by the file's constructor, or
// at the first call that comes before that.  Absent: abort (glibc has every symbol the shim
// wraps).  In the fork text: a shell's child makes wrapped calls.
template <class F> VMRT_FORK_TEXT F next_symbol(F& slot, const char* name) {
  F f = __atomic_load_n(&slot, __ATOMIC_ACQUIRE);
  if (f == nullptr) {
    f = reinterpret_cast<F>(next_address(name));
    if (f == nullptr) std::abort();
    __atomic_store_n(&slot, f, __ATOMIC_RELEASE);
  }
  return f;
}

}  // namespace vmrt::shim
