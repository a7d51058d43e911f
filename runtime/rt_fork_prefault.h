// rt_fork_prefault.h — the program memory glibc's fork() touches while vmrt holds its
// locks, made resident before vmrt takes them.
//
// glibc's fork runs the atfork prepare handlers (vmrt's runs last: it was registered
// first) and then, in a process with threads (vmrt's userfaultfd handler is one), takes
// its NSS configuration state's lock and copies that state; in the child, before any
// child handler runs, it writes the state back and resets every stdio FILE's lock.  The
// NSS state (malloc'd at the first NSS lookup: bash's getpwuid) and the FILEs fopen()
// made live in the program's heap, which pages.  vmrt's prepare handler takes the VM
// lock and keeps it until its parent or child handler:
//   - in the parent, a fault on such a page can never be served: the handler needs the
//     lock its own faulting thread holds (under userfaultfd a hang ended by the lock
//     holder's panic, under sigsegv traps a refused fault: a CI run lost a bash command
//     substitution this way, scenarios fd_games and paging);
//   - in the child, until its trap backend registers the heap again, a page that was not
//     resident is a fresh zero page under glibc's writes.
// So the prepare handler first makes those pages resident and mapped writable (touching
// them as the program would, with no vmrt lock held), and checks them again once it holds
// the VM lock: a pageout scan may have taken one back meanwhile, and then it lets go of its
// locks and starts again.
#pragma once

#include <cstddef>

#include "vm/vm_types.h"

namespace vmrt::rt {

// The pages touched: the first kMax are remembered for the check.
struct fork_pages {
  static constexpr std::size_t kMax = 64;
  vaddr_t lo, hi;  // the process vmspace's window
  vaddr_t page[kMax];
  std::size_t n;   // remembered (<= kMax)
};

// Touch, for writing, every page of the process vmspace [lo, hi) that glibc's fork reaches: those
// libc's writable data points into (the NSS state and whatever else libc keeps in the heap),
// and each FILE on libc's list with its lock.  Pages whose map entry does not allow writes
// are left alone.  The pages that were not ready (each took a fault) are counted.
//  => no vmrt lock held; may sleep (page-ins); takes glibc's stdio list lock.
void fork_prefault(vaddr_t lo, vaddr_t hi, fork_pages* out);

// True when every remembered page is still mapped writable with its host PTE in place.
//  => VM lock held (no pageout scan runs).
bool fork_prefault_holds(const fork_pages& pages);

}  // namespace vmrt::rt
