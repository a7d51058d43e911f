// rt_stats.cpp — runtime counters.
#include "runtime/rt_stats.h"
#include "vm/vm_types.h"

#include <cstring>

#include "runtime/rt_base.h"
#include "vmrt_version.h"  // generated at configure time

namespace vmrt::rt {

VMRT_FORK_DATA std::atomic<std::int64_t> g_rt_counters[RC_COUNT];
__thread pending_forks t_pending_forks __attribute__((tls_model("initial-exec")));

void rt_fold_pending_forks() {
  pending_forks& p = t_pending_forks;
  if (p.forks == 0 && p.populated == 0) return;  // nothing written: a report in a fork child
  rt_count(RC_HOST_FORKS, p.forks);
  rt_count(RC_QUIET_FORKS, p.forks);
  rt_count(RC_FORK_POPULATED, p.populated);
  p = pending_forks{};
}

void rt_host_vmas_add(std::int64_t delta) {
  std::int64_t now = g_rt_counters[RC_HOST_VMAS].fetch_add(delta, std::memory_order_relaxed) + delta;
  vm_stat_add(V_HOST_VMAS, delta);
  std::int64_t peak = g_rt_counters[RC_HOST_VMAS_PEAK].load(std::memory_order_relaxed);
  while (now > peak && !g_rt_counters[RC_HOST_VMAS_PEAK].compare_exchange_weak(peak, now, std::memory_order_relaxed)) {
  }
  vm_stat_max(V_HOST_VMAS_PEAK, now);
}

bool rt_counter_by_name(const char* name, std::int64_t* out) {
  rt_fold_pending_forks();
  for (unsigned i = 0; i < RC_COUNT; ++i) {
    if (std::strcmp(kRtCounters[i].name, name) == 0) {
      *out = rt_get(static_cast<rt_counter>(i));
      return true;
    }
  }
  return false;
}

void rt_report_counters(int fd) {
  rt_fold_pending_forks();
  vm_fd_out<512> o(fd);
  // Which vmrt produced the report: version, then the git revision it was built from.
  o.str_r(VMRT_VERSION, kVmstatColumn).str(" vmrt version (git ").str(VMRT_GIT_REVISION).str(")\n");
  for (unsigned i = 0; i < RC_COUNT; ++i) {
    if (kRtCounters[i].mirror != V_COUNTER_COUNT) continue;
    o.i(rt_get(static_cast<rt_counter>(i)), kVmstatColumn).ch(' ').str(kRtCounters[i].name).ch('\n');
  }
}

}  // namespace vmrt::rt
