// rt_maps.h — reading /proc/self/maps without malloc (fork replay, exact host VMA
// counts for reports and tests).
#pragma once

#include <cstddef>
#include <cstdint>

namespace vmrt::rt {

struct maps_line {
  std::uintptr_t lo, hi;  // [lo, hi)
  int prot;               // PROT_* bits
  bool shared;            // 's' in the permissions
  std::uint64_t offset;   // file offset
  std::uint64_t dev;      // makedev(major, minor)
  std::uint64_t inode;
};

// Snapshot /proc/self/maps into an anonymous buffer and call f(const maps_line&) per line.
// False when the file cannot be read.  Not async-signal-safe only in that it may take
// a while; never mallocs.
bool maps_scan(void (*f)(const maps_line&, void*), void* arg);

// Host VMAs of this process: all, and those inside [lo, hi).
struct vma_count {
  std::size_t total;
  std::size_t in_range;
};
vma_count maps_count(std::uintptr_t lo, std::uintptr_t hi);

// The number of host VMAs (lines of /proc/self/maps), counted through a small stack buffer:
// no host mapping is needed, so it works at the host's mapping limit.  False when the file
// cannot be read.
bool maps_total(std::size_t* out);

}  // namespace vmrt::rt
