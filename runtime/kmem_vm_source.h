// kmem_vm_source.h — kmem's page source over the VM's kmem submap: whole pages
// from kmem_alloc_wired (wired, zeroed, mapped: never faulted on, so the program
// and the host kernel use them freely) and back with kmem_free_wired.
#pragma once

#include "kmem/kmem.h"
#include "vm/vm_types.h"

namespace vmrt::rt {

// The source for the submap [base, base + size) (kmem_submap_init's range).  Static
// storage; no malloc.
const kmem::kmem_page_source* kmem_vm_source(vaddr_t base, vsize_t size);

}  // namespace vmrt::rt
