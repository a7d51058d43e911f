// vmspace_impl.h — the vmspace record, shared by vm/ files that work on it
// (vmspace.cpp, vm_mmap.cpp, vm_fault.cpp, vm_kern.cpp).  Not for runtime/.
#pragma once

#include "vm/vm_map.h"
#include "vm/vmspace.h"

namespace vmrt {

struct vmspace {
  vm_map map;     // entries [VM lock]
  pmap* pm;       // translations [constant]
  std::uint64_t id;  // [constant]
};

}  // namespace vmrt
