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
  const char* path;       // the name column (a file's path, "[heap]", ...): path_len bytes, not terminated
  std::size_t path_len;   // 0: none
};

// Parses one line of /proc/self/maps, [s, e) without its newline, into *out (path points
// into the line; a line cut short keeps its fields and the start of its path).  False
// when the text is not a maps line.
bool maps_parse_line(const char* s, const char* e, maps_line* out);

// Snapshot /proc/self/maps into an anonymous buffer and call f(const maps_line&) per line:
// f may map and unmap.  False when the file cannot be read.  Not async-signal-safe only in
// that it may take a while; never mallocs.
bool maps_scan(void (*f)(const maps_line&, void*), void* arg);

// Reads /proc/self/maps through the caller's buffer and calls f per line as it is read:
// no mapping and no malloc, so it serves before the runtime boots and at the host's
// mapping limit.  f must not map or unmap (the kernel's walk is under way; maps_scan takes
// a snapshot for callers that do).  A line longer than cap is reported once, cut to cap
// bytes.  False when the file cannot be read.
bool maps_stream(char* buf, std::size_t cap, void (*f)(const maps_line&, void*), void* arg);

// The path the host shows for a mapping of file (dev, ino), copied to buf (cut to cap - 1
// bytes, terminated); false when no mapping of it is listed or the file cannot be read.
// The vnode pager's names (vm/vnode_pager.h, vnode_set_name_source).
bool maps_file_path(std::uint64_t dev, std::uint64_t ino, char* buf, std::size_t cap);

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
