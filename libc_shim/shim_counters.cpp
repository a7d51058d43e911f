// shim_counters.cpp — the shim's event counters.
#include "libc_shim/shim_counters.h"

#include "libc_shim/shim_write.h"

namespace vmrt::shim {

std::array<std::atomic<std::uint64_t>, C_COUNT> g_counters{};

void report_counters(int fd) {
  line_buf b;
  b.str("vmrt malloc shim (libvmrt_malloc.so) events:\n");
  b.flush(fd);
  for (unsigned i = 0; i < C_COUNT; ++i) {
    b.str("  ").dec(g_counters[i].load(std::memory_order_relaxed)).str(" ").str(counter_names[i]).str("\n");
    b.flush(fd);
  }
}

}  // namespace vmrt::shim
