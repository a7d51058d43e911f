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

#include <cstddef>
#include <cstdint>

namespace vmrt {

enum class trap_backend : std::uint8_t {
  automatic,    // userfaultfd when available (kernel-mode accesses work), else sigsegv
  sigsegv,      // faults resolved in the faulting thread; syscalls on untouched memory: EFAULT
  userfaultfd,  // missing pages via a userfaultfd handler thread, protection faults via SIGSEGV
};

// Configuration, from the environment; every variable is documented in `vmrun --help`.
struct runtime_config {
  std::size_t region_size;    // VMRT_REGION_SIZE   (bytes, suffixes K/M/G/T; default 64G)
  std::size_t physmem_size;   // VMRT_PHYSMEM       (bytes; default: host RAM, at most 64G)
  std::size_t kmem_size;      // VMRT_KMEM_SIZE     (kmem submap; default 16G)
  std::size_t frame_cache;    // VMRT_FRAME_CACHE   (freed frames kept host-resident for reuse,
                              //  zeroed on reuse; default min(physmem/4, 1G); 0 = release at once)
  trap_backend trap;          // VMRT_TRAP          (auto | sigsegv | userfaultfd)
  bool stats;                 // VMRT_STATS=1       (reports at exit)
  bool kmem_diagnostics;      // VMRT_KMEM_DIAG=1   (fill freed blocks, detect misuse)
  int stats_fd;               // VMRT_STATS_FD      (default 2)
};

// Parse the VMRT_* environment (no malloc).  Invalid values: a message on stderr
// and the default.
runtime_config runtime_config_from_env();

// Boot with the environment's configuration.  Returns true when the machine is up.
bool runtime_boot();
// Boot with an explicit configuration (tests, embedders).  False if already booted.
bool runtime_boot_with(const runtime_config& cfg);
bool runtime_booted();
// Boot if needed, then start the trap backend (idempotent, thread-safe).  True when
// the VM is up and faults in vmspaces are handled.  => may call malloc (pthread_create):
// never from inside malloc, a signal handler, or with a VM/kmem lock held.
bool runtime_trap_start();
const runtime_config& runtime_current_config();

// Host fork(): call prepare in the parent before fork, then parent or child after.
// The child gets its own physmem (a copy of every in-use frame) and its own trap
// backend threads; afterwards parent and child memory are independent.
void runtime_fork_prepare();
void runtime_fork_parent();
void runtime_fork_child();

// Give memory back to the host: kmem returns its free pages to the VM, then every cached
// free frame is released (hole punch).  Returns the bytes released to the host; 0 when the
// machine is not up.  Takes kmem's and the VM lock: not from a signal handler.
std::size_t runtime_trim();

// vmstat -s, vmstat -m and the kernel map's procstat -v, written with write(2).
void runtime_report(int fd);

}  // namespace vmrt
