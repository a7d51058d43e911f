// shim_counters.h — event counters of the malloc shim (printed with the stats).
//
// Only rare events are counted here (the per-call counts live in kmem's
// per-type statistics), so the hot paths never touch a shared cache line.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>

#include "vm/vm_types.h"

namespace vmrt::shim {

enum counter : unsigned {
  C_BOOTSTRAP_ALLOCS,   // blocks served from the bootstrap arena (calls during boot)
  C_BOOTSTRAP_FREES,    // frees of bootstrap blocks (ignored: the arena is never reused)
  C_RTLD_FREES,         // frees of blocks from ld.so's minimal malloc (ignored, recognised)
  C_RTLD_REALLOCS,      // reallocs of ld.so minimal-malloc blocks (copied out)
  C_RTLD_SCANS,         // reads of /proc/self/maps for ld.so's ranges (at most one a process)
  C_MISMATCHED_FREES,   // operator delete of malloc memory or free of operator new memory
  C_ENOMEM,             // allocation requests answered with NULL + ENOMEM
  C_OVERFLOW,           // calloc / reallocarray size overflows (NULL + ENOMEM)
  C_EINVAL,             // bad alignments (EINVAL)
  C_NEW_HANDLER_CALLS,  // std::new_handler invocations by operator new
  C_FORKS,              // host forks seen by the atfork handlers (parent side)
  C_SIGACTION_FAULT_SIGNALS,  // the program's sigaction(SIGSEGV/SIGBUS) calls (see shim_signal.cpp)
  C_COUNT
};

// Names as printed in the report; indexed by counter.
inline constexpr std::array<vm_name<40>, C_COUNT> counter_names = {  // in place (vm/vm_types.h)
    "bootstrap-arena allocations", "bootstrap-arena frees ignored",
    "ld.so minimal-malloc frees ignored", "ld.so minimal-malloc reallocs copied",
    "ld.so range scans of /proc/self/maps",
    "mismatched new/malloc frees", "allocations failed (ENOMEM)",
    "size overflows (ENOMEM)", "bad alignments (EINVAL)",
    "new-handler calls", "host forks",
    "sigaction(SIGSEGV/SIGBUS) calls",
};
static_assert(counter_names.size() == C_COUNT, "one name per counter");

extern std::array<std::atomic<std::uint64_t>, C_COUNT> g_counters;

inline void count(counter c) { g_counters[c].fetch_add(1, std::memory_order_relaxed); }

// Print the counters (one "  N name" line each) to fd with write(2).
void report_counters(int fd);

}  // namespace vmrt::shim
