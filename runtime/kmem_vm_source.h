// kmem_vm_source.h — kmem's page sources over the VM:
//  - the kmem submap: whole pages from kmem_alloc_wired (wired, zeroed, mapped: never
//    faulted on) and back with kmem_free_wired — the kernel's own wired malloc;
//  - the process heap (vm/vm_heap): pageable ranges whose windows are mapped when handed
//    out and whose pages cost host memory only once touched; freed ranges give their
//    memory back.  The malloc shim's kmem runs over this one.
#pragma once

#include "kmem/kmem.h"
#include "vm/vm_types.h"

namespace vmrt::rt {

// The source for the submap [base, base + size) (kmem_submap_init's range).  Static
// storage; no malloc.
const kmem::kmem_page_source* kmem_vm_source(vaddr_t base, vsize_t size);
// The source for the heap [base, base + size) (vm_heap_init's range).  Static storage.
const kmem::kmem_page_source* kmem_heap_source(vaddr_t base, vsize_t size);
// At most `bytes` of heap pages held by kmem from now on (0: no budget): the heap source
// refuses pages past it (kmem's malloc then returns NULL), checked only when kmem takes
// pages.  Lock-free; the shim sets it from the program's RLIMIT_AS (shim_fork.cpp).
void kmem_heap_set_budget(std::size_t bytes);

}  // namespace vmrt::rt
