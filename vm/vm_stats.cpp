// vm_stats.cpp — counter table and the vmstat -s report.
#include "vm/vm_stats.h"

#include <cstring>

#include "vm/vm_out.h"
#include "vm/vm_types.h"

namespace vmrt {

VMRT_FORK_DATA constinit std::atomic<std::int64_t> g_vm_counters[V_COUNTER_COUNT] = {};



namespace {
constexpr bool table_in_enum_order() {
  for (unsigned k = 0; k < V_COUNTER_COUNT; ++k)
    if (kVmCounters[k].id != k || kVmCounters[k].name.empty()) return false;
  return true;
}
}  // namespace
static_assert(table_in_enum_order(), "kVmCounters must list every counter once, in enum order");

void vm_stat_max(vm_counter c, std::int64_t v) {
  std::int64_t cur = g_vm_counters[c].load(std::memory_order_relaxed);
  while (v > cur && !g_vm_counters[c].compare_exchange_weak(cur, v, std::memory_order_relaxed)) {
  }
}

bool vm_stat_find(const char* name, vm_counter* out) {
  for (unsigned k = 0; k < V_COUNTER_COUNT; ++k) {
    if (std::strcmp(kVmCounters[k].name, name) == 0) {
      *out = static_cast<vm_counter>(k);
      return true;
    }
  }
  return false;
}

const char* vm_stat_name(vm_counter c) { return c < V_COUNTER_COUNT ? kVmCounters[c].name : "?"; }

void vm_stats_report(int fd) {
  vm_fd_out<> o(fd);
  for (unsigned k = 0; k < V_COUNTER_COUNT; ++k) {
    o.i(vm_stat_get(static_cast<vm_counter>(k)), kVmstatColumn).ch(' ').str(kVmCounters[k].name).ch('\n');
  }
}

}  // namespace vmrt
