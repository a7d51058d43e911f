// shim_next.h — the definition an interposed symbol wraps: glibc's, found with
// dlsym(RTLD_NEXT), once, into a slot the wrapper passes.
#pragma once

#include <cstdlib>
#include <dlfcn.h>

#include "vm/vm_types.h"

namespace vmrt::shim {

// The next definition of `name` (glibc's) in `slot`: resolved at load by the file's
// constructor, or at the first call that comes before that.  Absent: abort (glibc has every
// symbol the shim wraps).  In the fork text: a shell's child makes wrapped calls.
template <class F> VMRT_FORK_TEXT F next_symbol(F& slot, const char* name) {
  F f = __atomic_load_n(&slot, __ATOMIC_ACQUIRE);
  if (f == nullptr) {
    f = reinterpret_cast<F>(::dlsym(RTLD_NEXT, name));
    if (f == nullptr) std::abort();
    __atomic_store_n(&slot, f, __ATOMIC_RELEASE);
  }
  return f;
}

}  // namespace vmrt::shim
