// shim_boot.h — bringing vmrt up from the first malloc call, fork and exit hooks.
//
// The first malloc-family call in the process (often from inside ld.so, before
// any constructor ran) boots the runtime.  States:
//   down -> booting (one thread, its tid recorded) -> ready
// Other threads wait while one boots; a malloc call made by the booting thread
// itself (runtime_boot() recursing into malloc) is told "not ready" and served
// from the bootstrap arena.  After boot the shim registers its pthread_atfork
// handlers; at exit a destructor prints the VMRT_STATS report.
#pragma once

#include <atomic>

namespace vmrt::shim {

// BOOT_FAILED: the runtime could not boot, not even stage 0 (no host mapping could be made:
// vm.max_map_count or RLIMIT_AS exhausted before the first malloc).  One message; from then
// on malloc is served by the bootstrap arena and returns NULL/ENOMEM once it is used up,
// as an allocator that cannot map memory does: the program is not aborted.
enum boot_state : int { BOOT_DOWN = 0, BOOT_BOOTING = 1, BOOT_READY = 2, BOOT_FAILED = 3 };
// Hidden: the entry points read it PC-relative, not through the GOT.
extern std::atomic<int> g_boot_state __attribute__((visibility("hidden")));  // written only by the booting thread

// Fast check used by every entry point.
inline bool ready() { return g_boot_state.load(std::memory_order_acquire) == BOOT_READY; }

// Boot if needed.  Returns true when kmem may be used; false for a call made by the
// booting thread while boot is in progress, and for every call once boot failed (use
// the bootstrap arena; BOOT_FAILED says so once).
//  => may spin (sched_yield) while another thread boots.  Calls no malloc.
bool ensure_booted();

// Print the exit report (runtime_report + shim counters) to fd now.
void report_now(int fd);

// Abort with a message: "vmrt: <a><b>\n".  Never returns.
[[noreturn]] void die(const char* a, const char* b = "");

// Cheap invariant checks, always on: message with file:line, then abort.
[[noreturn]] void assert_failed(const char* cond, const char* file, int line);
#define SHIM_ASSERT(cond) \
  do {                    \
    if (__builtin_expect(!(cond), 0)) ::vmrt::shim::assert_failed(#cond, __FILE__, __LINE__); \
  } while (0)

}  // namespace vmrt::shim
