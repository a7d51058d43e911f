// rt_config.h — the VMRT_* configuration variables: one table of names, kinds and
// accepted ranges, one parser, one message format.  Shared by the runtime (boot.cpp reads
// the environment; an invalid value there gets the message and the default) and by the
// launcher (vmrun refuses the same values with exit status 2 before running anything),
// so the two cannot disagree about what is valid.
//
// Everything here is callable from inside malloc and the dynamic loader: no allocation,
// no locks, no exceptions.
#pragma once

#include <cstddef>
#include <cstdint>

#include "vm/vm_types.h"

namespace vmrt {

// Accepted range of a numeric variable, both ends included.
struct size_limits {
  std::size_t min, max;
};

enum class config_var : std::uint8_t {
  region_size,  // VMRT_REGION_SIZE
  physmem,      // VMRT_PHYSMEM
  kmem_size,    // VMRT_KMEM_SIZE
  frame_cache,  // VMRT_FRAME_CACHE
  trap,         // VMRT_TRAP
  heap,         // VMRT_HEAP
  mmap,         // VMRT_MMAP
  stats_fd,     // VMRT_STATS_FD
  stats,        // VMRT_STATS
  kmem_diag,    // VMRT_KMEM_DIAG
  swap_size,    // VMRT_SWAP_SIZE
  swap_file,    // VMRT_SWAP_FILE
  pdpolicy,     // VMRT_PDPOLICY
  count
};

enum class config_kind : std::uint8_t {
  size,       // digits with an optional K/M/G/T suffix and an optional B: bytes in lim
  choice,     // one of the variable's names (config_var_info::choices)
  fd,         // a decimal descriptor number in lim
  flag,       // any value: empty or "0" is off, anything else on (nothing is refused)
  path,       // a file name: anything but the empty string (the runtime reads the text itself)
};

// A name a choice variable accepts and the value it stands for (an enum ordinal).  Several
// names may stand for one value: the first is the name, the others aliases (not listed in
// messages).
struct config_choice {
  vm_name<16> name;  // in place: the tables are never relocated (vm/vm_types.h)
  std::uint8_t value;
};
// VMRT_TRAP: trap_backend ordinals (boot.h pins them).
inline constexpr config_choice kTrapChoices[] = {{"auto", 0}, {"sigsegv", 1}, {"userfaultfd", 2}, {"uffd", 2}};
// VMRT_HEAP: heap_backing ordinals (boot.h pins them).
inline constexpr config_choice kHeapChoices[] = {{"host", 0}, {"frames", 1}, {"paged", 2}};
// VMRT_PDPOLICY: vm_pdpolicy_kind ordinals (boot.cpp pins them).
inline constexpr config_choice kPdpolicyChoices[] = {{"clock", 0}, {"clock1", 1}, {"2q", 2}, {"clock-noage", 3}, {"clock2", 4}};
// VMRT_MMAP: 0 = the program's anonymous mmaps are vmrt's (rt_mmap, the default; private
// ones are pageable memory when paging is on), 1 = the host's, 2 = vmrt's but host memory
// even when paging is on (to compare).
inline constexpr config_choice kMmapChoices[] = {{"vmrt", 0}, {"host", 1}, {"unpaged", 2}};

// A choice variable's names, held in its row (config_var_info::choices), and how many.
inline constexpr std::size_t kMaxConfigChoices = 5;
struct config_choices {
  config_choice c[kMaxConfigChoices];
  std::uint8_t n;
  constexpr const config_choice& operator[](std::size_t i) const { return c[i]; }
};
template <std::size_t N>
constexpr config_choices choices_of(const config_choice (&from)[N]) {
  static_assert(N <= kMaxConfigChoices, "kMaxConfigChoices: more names than a row holds");
  config_choices t{};
  for (std::size_t i = 0; i < N; ++i) t.c[i] = from[i];
  t.n = static_cast<std::uint8_t>(N);
  return t;
}

// One row per variable, names in place (vm/vm_types.h, vm_name): the table is read-only
// data, not a page of pointers the loader relocates in every process.
struct config_var_info {
  config_var var;
  vm_name<24> env;     // the environment variable
  vm_name<16> option;  // vmrun's option setting it (empty: environment only)
  config_kind kind;
  size_limits lim;     // size and fd kinds
  config_choices choices{};  // choice kind (choices.n: none otherwise)
  vm_name<32> what{};        // choice kind: what a value names ("trap backend")
};

// Descriptors above the kernel's largest possible table (fs.nr_open's ceiling) cannot be open.
inline constexpr std::size_t kMaxStatsFd = (std::size_t{1} << 20) - 1;

// The region holds the kernel window (its wired kmem_map plus a granule) and the process
// window (the heap, kmem rounded up to a granule, plus a granule); boot_vm pins these.
inline constexpr std::size_t kConfigRegionGranule = std::size_t{16} << 20;
inline constexpr std::size_t kConfigKernelWindow = (std::size_t{64} << 20) + kConfigRegionGranule;
// The smallest region that boots the VM: the kernel window and the smallest process window.
inline constexpr std::size_t kConfigMinRegion = kConfigKernelWindow + (std::size_t{16} << 20) + kConfigRegionGranule;

// The floor of physical memory: what the paging machinery can have pinned at once, with
// room.  Frames are held busy by the pageout daemon's laundering cluster (kPagerMaxRun, 32
// pages, during its write), by each userfaultfd handler thread's page-in (a read-ahead run
// takes only frames that are free), and by a copy-on-write fault (source and copy): well
// under 100 frames.  Below that a fault could find every frame busy with I/O that itself
// waits for one.  1M (256 frames) also holds the pageout daemon's minimum free target.
// (Programs run correctly with 64K in the paging scenario's workloads; 1M leaves margin.)
inline constexpr std::size_t kConfigMinPhysmem = std::size_t{1} << 20;

inline constexpr config_var_info kConfigVars[] = {
    {config_var::region_size, "VMRT_REGION_SIZE", "--region", config_kind::size,
     {kConfigMinRegion, std::size_t{1} << 44}},
    {config_var::physmem, "VMRT_PHYSMEM", "--physmem", config_kind::size,
     {kConfigMinPhysmem, std::size_t{1} << 44}},
    {config_var::kmem_size, "VMRT_KMEM_SIZE", "--kmem-size", config_kind::size,
     {std::size_t{16} << 20, std::size_t{1} << 43}},
    {config_var::frame_cache, "VMRT_FRAME_CACHE", "", config_kind::size, {0, std::size_t{1} << 44}},
    {config_var::trap, "VMRT_TRAP", "--trap", config_kind::choice, {0, 0}, choices_of(kTrapChoices),
     "trap backend"},
    {config_var::heap, "VMRT_HEAP", "", config_kind::choice, {0, 0}, choices_of(kHeapChoices),
     "heap backing"},
    {config_var::mmap, "VMRT_MMAP", "", config_kind::choice, {0, 0}, choices_of(kMmapChoices),
     "mmap service"},
    {config_var::stats_fd, "VMRT_STATS_FD", "--stats-fd", config_kind::fd, {0, kMaxStatsFd}},
    {config_var::stats, "VMRT_STATS", "--stats", config_kind::flag, {0, 0}},
    {config_var::kmem_diag, "VMRT_KMEM_DIAG", "--kmem-diag", config_kind::flag, {0, 0}},
    {config_var::swap_size, "VMRT_SWAP_SIZE", "--swap", config_kind::size, {0, std::size_t{1} << 44}},
    {config_var::swap_file, "VMRT_SWAP_FILE", "--swap-file", config_kind::path, {0, 0}},
    {config_var::pdpolicy, "VMRT_PDPOLICY", "--pdpolicy", config_kind::choice, {0, 0}, choices_of(kPdpolicyChoices),
     "page replacement policy"},
};
inline constexpr std::size_t kConfigVarCount = sizeof(kConfigVars) / sizeof(kConfigVars[0]);
static_assert(kConfigVarCount == static_cast<std::size_t>(config_var::count));

constexpr bool config_table_in_order() {
  for (std::size_t i = 0; i < kConfigVarCount; ++i) {
    if (static_cast<std::size_t>(kConfigVars[i].var) != i) return false;
    const size_limits& l = kConfigVars[i].lim;
    if ((kConfigVars[i].kind == config_kind::size || kConfigVars[i].kind == config_kind::fd) && l.min > l.max)
      return false;
    if (kConfigVars[i].kind == config_kind::choice && (kConfigVars[i].choices.n == 0 || kConfigVars[i].what.empty()))
      return false;
  }
  return true;
}
static_assert(config_table_in_order(),
              "kConfigVars: one row per config_var, in enum order, min <= max, choices named");

constexpr const config_var_info& config_info(config_var v) { return kConfigVars[static_cast<std::size_t>(v)]; }

// The ranges by name (boot.cpp and region.h pin their own constants against these).
inline constexpr size_limits kRegionSizeLimits = config_info(config_var::region_size).lim;
inline constexpr size_limits kPhysmemSizeLimits = config_info(config_var::physmem).lim;
inline constexpr size_limits kKmemSizeLimits = config_info(config_var::kmem_size).lim;
inline constexpr size_limits kFrameCacheSizeLimits = config_info(config_var::frame_cache).lim;
static_assert(kKmemSizeLimits.max <= kRegionSizeLimits.max / 2, "kmem may use at most half the region");

// Default region when VMRT_REGION_SIZE is not set (and no limit scales it).
inline constexpr std::size_t kDefaultRegionSize = std::size_t{64} << 30;
static_assert(kDefaultRegionSize >= kRegionSizeLimits.min && kDefaultRegionSize <= kRegionSizeLimits.max);

enum class config_status : std::uint8_t { ok, malformed, out_of_range };

// Parse "123", "64K", "16M", "4G", "1T" (optional trailing B).  False on garbage,
// an empty string or overflow.
bool config_parse_size(const char* s, std::size_t* out);

// Parse the text of variable v: *out gets bytes (size), the descriptor (fd), the
// choice's value (an enum ordinal) or 0/1 (flag).  *out is untouched unless ok.
config_status config_parse(config_var v, const char* text, std::uint64_t* out);

// The largest kmem a region of `region` bytes boots with: at most half the region
// (boot_vm clamps anything larger) and no more than the region leaves beside the kernel
// window (else the process window finds no room and the VM falls back to stage 0).
// Whole granules; 0 when no kmem fits.
constexpr std::size_t config_kmem_max_for_region(std::size_t region) {
  std::size_t r = region < kRegionSizeLimits.min ? kRegionSizeLimits.min
                  : region > kRegionSizeLimits.max ? kRegionSizeLimits.max
                                                   : region;
  r = (r + kConfigRegionGranule - 1) & ~(kConfigRegionGranule - 1);
  std::size_t half = r / 2;
  std::size_t room = r > kConfigKernelWindow + kConfigRegionGranule ? r - kConfigKernelWindow - kConfigRegionGranule : 0;
  return (half < room ? half : room) & ~(kConfigRegionGranule - 1);
}
static_assert(config_kmem_max_for_region(kDefaultRegionSize) == std::size_t{32} << 30);
static_assert(config_kmem_max_for_region(kRegionSizeLimits.min) >= kKmemSizeLimits.min,
              "the smallest accepted region boots with the smallest accepted kmem");
static_assert(config_kmem_max_for_region(std::size_t{128} << 20) == std::size_t{32} << 20);

// One line (no newline) describing why `text` was refused for v, e.g.
//   "VMRT_PHYSMEM=512K: out of range (accepted: 1M .. 16T)"
// `origin` names where the value came from (the variable, or vmrun's option); nullptr:
// the variable's name.  Writes at most cap bytes into buf, NUL-terminated; returns buf.
const char* config_describe(config_var v, const char* origin, const char* text, config_status st, char* buf,
                            std::size_t cap);

// Writes a size the way the messages do: 16T, 4G, 512M, or bytes.  Same contract.
const char* config_size_text(std::size_t v, char* buf, std::size_t cap);

}  // namespace vmrt
