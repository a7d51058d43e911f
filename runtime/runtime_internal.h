// runtime_internal.h — runtime/ internals shared by boot, the API edge and tests.
#pragma once

#include "vm/vm_types.h"

namespace vmrt {

struct vmspace;
namespace rt {
struct window;
}

// Set at boot (boot.cpp) and read by every host fork (rt_fork.cpp): the VM machine is up
// (false: stage 0, kmem over host pages, no vmspaces), and the process window, whose
// vmspace holds the heap.  On the fork data page (VMRT_FORK_DATA) / read-mostly.
extern bool g_vm_up __attribute__((visibility("hidden")));
extern rt::window* g_process_window __attribute__((visibility("hidden")));

// True when the VM machine is up (false: stage 0 fallback, no vmspaces).
bool runtime_vm_up();
// The kernel vmspace (holds kmem_map); null before boot / in stage 0.
vmspace* runtime_kernel_vmspace();
// Host lines of vmstat -s: host VMAs (exact, from /proc/self/maps), physmem host bytes,
// the trap backend.
void runtime_report_host(int fd);

}  // namespace vmrt
