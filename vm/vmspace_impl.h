// vmspace_impl.h — the vmspace record, shared by vm/ files that work on it
// (vmspace.cpp, vm_mmap.cpp, vm_fault.cpp, vm_kern.cpp).  Not for runtime/.
#pragma once

#include "vm/vm_map.h"
#include "vm/vmspace.h"

namespace vmrt {

struct vmspace {
  vm_map map;                                          // entries [VM lock]
  pmap* pm;                                            // translations [constant]
  std::uint64_t id;                                    // [constant]
  // Whole-vmspace swapping (vm_swapout.h).
  std::uint64_t last_run;                              // vm_swapout_clock() when it last ran [atomic builtins]
  bool swapped VMRT_GUARDED_BY(g_vm_lock);             // swapped out, no fault since
  bool swapping VMRT_GUARDED_BY(g_vm_lock);            // a swapout is walking it (the lock may be dropped)
  std::uint64_t swapouts VMRT_GUARDED_BY(g_vm_lock);
  std::uint64_t swapins VMRT_GUARDED_BY(g_vm_lock);
  std::uint64_t pages_out VMRT_GUARDED_BY(g_vm_lock);  // pages freed by its swapouts
  vmspace* all_prev VMRT_GUARDED_BY(g_vm_lock);        // every vmspace, newest first
  vmspace* all_next VMRT_GUARDED_BY(g_vm_lock);
};

// Link a new vmspace into the swapper's list / unlink a dying one.  => VM lock held.
void vm_swapout_attach(vmspace* vs);
void vm_swapout_detach(vmspace* vs);

}  // namespace vmrt
