// rt_mlockall.h — mlockall/munlockall for a program under the shim.
//
// The host's mlockall would lock every mapping of the process, vmrt's own included: the
// direct map of physical memory and vmrt's tables are reserved large (MAP_NORESERVE, most of
// them never touched), and locking them populates them — a program calling
// mlockall(MCL_CURRENT | MCL_FUTURE) under vmrun grew by gigabytes until the machine ran
// out (found when tried; scenario mlock_all).  So vmrt locks what is the program's:
//   MCL_CURRENT  the program's file mappings and its stack (populated, as Linux does), its
//                other anonymous host mappings outside the region (thread stacks, libc's
//                data: locked as touched — vmrt's tables cannot be told from them in
//                /proc/self/maps), the mmap area entry by entry (host memory locked by the
//                host, pageable memory wired in the VM) and the heap's populated windows;
//   MCL_FUTURE   every mapping the program makes afterwards (mmap, brk growth) and every
//                heap window populated afterwards;
//   MCL_ONFAULT  as Linux: locked as touched instead of populated (pageable memory is wired
//                whole: the VM wires by faulting in).
// Arguments are checked as Linux checks them (EINVAL for no flag, unknown bits or
// MCL_ONFAULT alone; EPERM without the right to lock).  Not inherited by a fork child.
// Under --physmem the paged heap is not wired (it stays pageable): said in the README.
//
// Locking: takes the VM lock through the calls it makes; not from a signal handler.
#pragma once

#include <cstddef>

#include "vm/vm_types.h"

namespace vmrt::rt {

// mlockall(flags) / munlockall(): 0, or -1 with *err set.
int mlockall_emulated(int flags, int* err);
int munlockall_emulated(int* err);

// A mapping the program just made ([a, a + n)): locked when it asked for MCL_FUTURE.
void mlockall_note_mapping(vaddr_t a, std::size_t n);

// The host's fork child: locks and MCL_FUTURE are not inherited.
void mlockall_fork_child();

}  // namespace vmrt::rt
