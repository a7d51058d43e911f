// rt_pageout.cpp — the pageout daemon's host thread and the swap device's set-up.
#include "runtime/rt_pageout.h"

#include <cerrno>
#include <cstring>

#include "runtime/pmap_linux.h"
#include "runtime/rt_base.h"
#include "runtime/trap.h"
#include "vm/swap_pager.h"
#include "vm/vm_pageout.h"
#include "vm/vm_pdpolicy.h"
#include "vm/vm_types.h"

namespace vmrt::rt {
namespace {

constexpr std::size_t kDaemonStack = 128 * 1024;
// The daemon keeps this share of physmem free (and at least kMinFreeTarget frames), so that
// faults seldom have to reclaim for themselves.
constexpr std::size_t kFreeTargetDiv = 32;
constexpr frame_t kMinFreeTarget = 256;
// Userfaultfd handler threads while paging: a fault waiting for swap leaves two to serve.
constexpr unsigned kPagingUffdThreads = 3;

VMRT_FORK_DATA bool g_running = false;  // read by every fork child (pageout_fork_child)

void* daemon_main(void*) { vm_pageout_daemon_loop(); }

bool start_thread() { return start_machine_thread(daemon_main, nullptr, kDaemonStack, "vmrt-pagedaemon"); }

}  // namespace

bool pageout_init(std::size_t physmem_bytes, std::size_t swap_bytes, const char* swap_file, unsigned pdpolicy) {
  if (swap_bytes > 0) {
    kern_return_t kr = swap_pager_init(swap_file, nullptr, swap_bytes);
    if (kr != KERN_SUCCESS) {
      int e = errno;
      vm_fd_out<512> o(2);
      o.str("vmrt: cannot make the swap device ").str(swap_file != nullptr ? swap_file : "(temporary file)").str(": ");
      o.str(kr == KERN_INVALID_ARGUMENT ? "smaller than one cluster (128K)" : std::strerror(e)).ch('\n');
      return false;
    }
  }
  // The minimum applies up to a quarter of memory (a 1M pool keeps 64 frames free, not all).
  frame_t frames = static_cast<frame_t>(physmem_bytes / PAGE_SIZE);
  frame_t target = frames / kFreeTargetDiv;
  frame_t floor = kMinFreeTarget < frames / 4 ? kMinFreeTarget : frames / 4;
  if (target < floor) target = floor;
  vm_pageout_init(static_cast<vm_pdpolicy_kind>(pdpolicy), target);
  pmap_linux_set_paging();
  trap_set_uffd_threads(kPagingUffdThreads);
  return true;
}

void pageout_start_thread() {
  if (g_running || !vm_pageout_enabled()) return;
  g_running = start_thread();
  if (!g_running) say("vmrt: cannot start the pageout daemon; faults reclaim for themselves\n");
}

bool pageout_running() { return g_running; }

VMRT_FORK_CHILD_TEXT void pageout_fork_child() {
  if (g_running) g_running = start_thread();
}

}  // namespace vmrt::rt
