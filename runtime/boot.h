// boot.h — bringing the machine up, once per host process.
//
// runtime_boot() reserves the guest region, creates physmem (memfd frame pool +
// direct map), starts the page array, builds the kernel vmspace with its kmem
// submap and initialises kmem over that submap.  The trap backend (SIGSEGV/SIGBUS
// handlers, userfaultfd + its handler thread) is not installed at boot: kmem memory
// is wired and always mapped, so it waits for the first vmspace with demand-paged
// memory (runtime_trap_start, called by the API).  The shim calls runtime_boot()
// from its first malloc (possibly from inside the dynamic loader,
// before any constructor ran), so it:
//   => takes no lock that malloc may hold, calls no malloc, throws nothing;
//   => is idempotent and thread-safe (first caller boots, others wait);
//   => reads its configuration from the environment (VMRT_* variables below).
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>

#include "runtime/rt_config.h"
#include "runtime/rt_fork.h"

namespace vmrt {

enum class trap_backend : std::uint8_t {
  automatic,    // userfaultfd when available (kernel-mode accesses work), else sigsegv
  sigsegv,      // faults resolved in the faulting thread; syscalls on untouched memory: EFAULT
  userfaultfd,  // missing pages via a userfaultfd handler thread, protection faults via SIGSEGV
};

enum class heap_backing : std::uint8_t {
  host,    // the program's heap is host anonymous memory: host fork shares it copy-on-write
  frames,  // the heap is vmrt frames (physmem): bounded by VMRT_PHYSMEM; host fork copies it
  paged,   // vmrt frames, demand paged, paged out to swap under pressure (vm_heap PAGED)
};

// Why the sizes in runtime_config are what they are (printed by vmstat -s).
enum class sizing_reason : std::uint8_t {
  defaults,         // no address-space or data limit constrains the defaults
  environment,      // VMRT_REGION_SIZE / VMRT_PHYSMEM / VMRT_KMEM_SIZE set explicitly
  fit_as,           // scaled down to half the address space RLIMIT_AS leaves free
  fit_data,         // scaled down to half the data RLIMIT_DATA leaves free (page tables)
  fit_fsize,        // physmem capped by RLIMIT_FSIZE (the memfd is a file to the host)
  stage0_limits,    // the VM does not fit the limits: kmem over host pages (stage 0)
  stage0_failed,    // the VM failed to boot: kmem over host pages (stage 0)
};
inline constexpr const char* kSizingReasonNames[] = {
    "defaults (no limit applies)", "VMRT_* sizes", "fit to RLIMIT_AS", "fit to RLIMIT_DATA",
    "physmem fit to RLIMIT_FSIZE",
    "stage 0: VM does not fit the limits", "stage 0: VM boot failed"};
static_assert(sizeof(kSizingReasonNames) / sizeof(kSizingReasonNames[0]) ==
              static_cast<unsigned>(sizing_reason::stage0_failed) + 1);

// Accepted ranges of the variables: runtime/rt_config.h (shared with vmrun, which
// refuses the values the runtime would refuse, with exit status 2).
static_assert(static_cast<unsigned>(trap_backend::automatic) == kTrapChoices[0].value &&
                  static_cast<unsigned>(trap_backend::sigsegv) == kTrapChoices[1].value &&
                  static_cast<unsigned>(trap_backend::userfaultfd) == kTrapChoices[2].value,
              "kTrapChoices carry trap_backend ordinals");
static_assert(static_cast<unsigned>(heap_backing::host) == kHeapChoices[0].value &&
                  static_cast<unsigned>(heap_backing::frames) == kHeapChoices[1].value &&
                  static_cast<unsigned>(heap_backing::paged) == kHeapChoices[2].value,
              "kHeapChoices carry heap_backing ordinals");

// Configuration, from the environment; every variable is documented in `vmrun --help`.
struct runtime_config {
  std::size_t region_size;    // VMRT_REGION_SIZE   (bytes, suffixes K/M/G/T; default 64G)
  std::size_t physmem_size;   // VMRT_PHYSMEM       (bytes; default: host RAM, at most 64G)
  std::size_t kmem_size;      // VMRT_KMEM_SIZE     (kmem submap; default 16G)
  std::size_t frame_cache;    // VMRT_FRAME_CACHE   (freed frames kept host-resident for reuse,
                              //  zeroed on reuse; default min(physmem/4, 1G); 0 = release at once)
  trap_backend trap;          // VMRT_TRAP          (auto | sigsegv | userfaultfd)
  heap_backing heap;          // VMRT_HEAP          (host | frames | paged; default host, paged
                              //  when paging is on)
  bool paging;                // physical memory is bounded and pageable: VMRT_PHYSMEM or
                              //  VMRT_SWAP_SIZE set (a swap device, the pageout daemon)
  std::size_t swap_size;      // VMRT_SWAP_SIZE     (bytes; default 8 x physmem, at least 1G,
                              //  when paging; 0 = no swap: physmem is a hard limit)
  const char* swap_file;      // VMRT_SWAP_FILE     (default: a private temporary file)
  unsigned pdpolicy;          // VMRT_PDPOLICY      (clock | clock1 | 2q; vm_pdpolicy_kind)
  bool mmap_host;             // VMRT_MMAP          (host: the program's mmaps go to the host;
                              //  vmrt, the default from runtime_config_from_env: its
                              //  anonymous mmaps are vmrt's, in the mmap area, rt_mmap)
  bool mmap_unpaged;          // VMRT_MMAP=unpaged  (vmrt's, but host memory under paging)
  bool stats;                 // VMRT_STATS=1       (reports at exit)
  bool kmem_diagnostics;      // VMRT_KMEM_DIAG=1   (fill freed blocks, detect misuse)
  int stats_fd;               // VMRT_STATS_FD      (default 2)
  // Sizing against the host's limits (runtime_config_from_env): what was seen and chosen.
  // Limits of 0 mean unlimited; "in use" is the process's size before vmrt booted.
  std::uint64_t as_limit, as_in_use, data_limit, data_in_use;
  std::uint64_t fsize_limit;  // hard RLIMIT_FSIZE: the physmem memfd cannot be larger
  std::size_t stage0_size;    // bytes of host pages for kmem when stage0 is chosen
  sizing_reason sizing;
  bool stage0;                // boot straight into stage 0 (the VM does not fit)
};

// Parse the VMRT_* environment (no malloc).  Invalid values: a message on stderr
// and the default.
runtime_config runtime_config_from_env();

// Boot with the environment's configuration.  Returns true when the machine is up.
bool runtime_boot();
// Boot with an explicit configuration (tests, embedders).  False if already booted.
bool runtime_boot_with(const runtime_config& cfg);
bool runtime_booted();
// VMRT_STATS as the environment sets it, without reading the rest of the configuration
// (runtime_config_from_env reads the host's RAM and three resource limits: four system calls
// the exit of a process that never called malloc made only to learn it is unset).
bool runtime_stats_requested();
// The process heap may fault (vmrt frames: VMRT_HEAP=frames, or paged under VMRT_PHYSMEM),
// unlike a heap of host memory.  False before boot and without a heap.
bool runtime_heap_faults();
// Boot if needed, then start the trap backend (idempotent, thread-safe).  True when
// the VM is up and faults in vmspaces are handled.  => may call malloc (pthread_create):
// never from inside malloc, a signal handler, or with a VM/kmem lock held.
bool runtime_trap_start();
const runtime_config& runtime_current_config();

// Host fork(): runtime/rt_fork.h.

// Address space vmrt itself holds (region, direct map, page tables and arrays, stage 0
// arena): the shim keeps it out of the program's RLIMIT_AS (see shim_fork.cpp).
std::size_t runtime_address_footprint();
// The part of it the host charges to RLIMIT_DATA (vmrt's private tables and stacks; the
// region and the memfd mappings are not private data).
std::size_t runtime_data_footprint();
// Size of vmrt's physmem memfd (0 in stage 0): the shim keeps the hard RLIMIT_FSIZE at
// least this large so fork can size the child's memfd (see shim_fork.cpp).
std::size_t runtime_file_footprint();

// Give memory back to the host: kmem returns its free pages to the VM, then every cached
// free frame is released (hole punch).  Returns the bytes released to the host; 0 when the
// machine is not up.  Takes kmem's and the VM lock: not from a signal handler.
std::size_t runtime_trim();

// vmstat -s, vmstat -m and the kernel map's procstat -v, written with write(2).
void runtime_report(int fd);

}  // namespace vmrt
