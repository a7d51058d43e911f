// vm_host_layout.h — where vmrt's big host reservations go.
//
// vmrt reserves tens of GiB of address space when it boots (the region, the direct map, the
// table arena: PROT_NONE, no memory behind them).  Placed by the host, they took the
// addresses just below the shared libraries, where the host also puts every later mapping
// asked of it without an address: the mappings libc makes for itself after boot (setlocale's
// locale files) and any made by code that bypasses the shim then went below vmrt's
// reservations, in a GiB and a 2 MiB block of their own.  Each such block costs the process a
// host page-table page (and each GiB a page-middle-directory page), tens of microseconds on
// these guests to fill, to copy at every fork and to free at exit (bench/exec_cost, pte).  So
// the reservations go kHostRoom below the libraries instead, one under the other, and the
// host's own mapping area keeps the room it has natively, next to the libraries.
//
// The placement is a hint: where the host cannot honour it (the range is taken, or the
// process uses the legacy bottom-up layout), the host places the reservation as before.
#pragma once

#include <cstddef>

namespace vmrt::sys {

// => any thread; may sleep (mmap).  `bytes` of address space, PROT_NONE and MAP_NORESERVE,
// 1 GiB aligned when the hint holds.  MAP_FAILED, with errno set, when the host refuses.
void* host_reserve(std::size_t bytes);

}  // namespace vmrt::sys
