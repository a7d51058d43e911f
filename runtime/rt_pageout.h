// rt_pageout.h — the machine's side of paging: the swap device's set-up from the
// configuration and the pageout daemon's host thread (vm/vm_pageout.h is the mechanism).
#pragma once

#include <cstddef>

#include "vm/vm_thread_safety.h"

namespace vmrt::rt {

// Paging on: open the swap device (`swap_bytes` > 0; `swap_file` null: a private temporary
// file), select the policy, set the free target from physmem's size.
//  => boot, VM up, no VM lock held; no malloc.  False with a message when the swap device
//     cannot be made.
bool pageout_init(std::size_t physmem_bytes, std::size_t swap_bytes, const char* swap_file, unsigned pdpolicy);
// Start the daemon's thread.  => after boot (pthread_create may call malloc).
void pageout_start_thread();
bool pageout_running();
// Host fork: the child has no daemon thread; start one.  => the child's only thread.
void pageout_fork_child();

}  // namespace vmrt::rt
