// rt_brk.h — the program's data segment (brk/sbrk), served by vmrt.
//
// McKusick et al. (4.4BSD, ch. 5): "the data segment grows and shrinks" through the break,
// as a program asks with brk/sbrk.  Under the shim the program's malloc is vmrt's, so what
// calls brk/sbrk is the program itself (an allocator of its own, old code measuring its
// memory with sbrk(0)).  vmrt gives it a data segment at the bottom of the process
// vmspace's mmap area (rt_mmap), grown and shrunk by the same calls that serve the
// program's anonymous mmaps: entries of the process vmspace, procstat -v lists them, they
// are pageable memory when paging is on, and the host's fork shares them copy-on-write.
//
// The answers are Linux's sys_brk (mm/mmap.c): a break below the segment's start, one the
// host's limits refuse, or one whose pages would come within a page of the next mapping
// leaves the break where it was and returns it; shrinking unmaps whole pages above the new
// break (bytes of the page that holds the break stay), and memory given back and grown
// again reads as zeros.  glibc's brk() and sbrk() wrappers sit on top (shim_brk.cpp).
//
// A process decides once, at its first call: before vmrt booted (no mmap area yet) the
// break stays the host's for good (a break cannot move from one segment to another).
//
// Locking: one lock of its own around the break, taken before the VM lock (rt_mmap's
// calls take it); not from a signal handler.  No malloc.
#pragma once

#include "vm/vm_types.h"

namespace vmrt::rt {

enum class brk_owner : unsigned char { undecided, host, vmrt };

// Whose break is it?  Decides it at the first call (see above).
brk_owner brk_decide();

// Linux's sys_brk on vmrt's segment: ask for the break at want (0: only ask); returns the
// break after the call (the old one when refused).  => brk_decide() == brk_owner::vmrt.
vaddr_t brk_move(vaddr_t want);

// The segment's start (the break's lowest value); 0 when the segment is not vmrt's.
vaddr_t brk_start();

// The host's fork child (single-threaded): a lock another thread held at the fork is free.
void brk_fork_child();

}  // namespace vmrt::rt
