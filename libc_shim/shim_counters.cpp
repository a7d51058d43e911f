// shim_counters.cpp — the shim's event counters.
#include "libc_shim/shim_counters.h"
#include "vm/vm_types.h"

#include "runtime/rt_stats.h"
#include "vm/vm_out.h"

namespace vmrt::shim {

VMRT_FORK_DATA std::array<std::atomic<std::uint64_t>, C_COUNT> g_counters{};

void report_counters(int fd) {
  vm_fd_out<512> b(fd);
  b.str("vmrt malloc shim (libvmrt_malloc.so) events:\n");
  // The quiet forks were counted by the runtime alone (atfork_prepare).
  rt::rt_fold_pending_forks();
  const std::uint64_t quiet = static_cast<std::uint64_t>(rt::rt_get(rt::RC_QUIET_FORKS));
  for (unsigned i = 0; i < C_COUNT; ++i)
    b.str("  ").u(g_counters[i].load(std::memory_order_relaxed) + (i == C_FORKS ? quiet : 0)).str(" ").str(counter_names[i]).str("\n");
}

}  // namespace vmrt::shim
