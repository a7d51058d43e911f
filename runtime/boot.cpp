// boot.cpp — configuration from the environment and machine bring-up:
// region, physmem + page array, the Linux pmap, the trap backend, the kernel vmspace
// over its window, kmem_map, and kmem over it.  The trap backend waits for the first
// API vmspace (runtime_trap_start): a program that only mallocs gets no handler, no
// userfaultfd and no thread.  If the VM cannot be brought up,
// stage 0 (kmem over a host page source, no vmspaces) is the fallback, with a message.
#include "runtime/boot.h"

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <unistd.h>

#include "kmem/kmem.h"
#include "runtime/kmem_vm_source.h"
#include "runtime/physmem.h"
#include "runtime/pmap_linux.h"
#include "runtime/region.h"
#include "runtime/rt_base.h"
#include "runtime/rt_maps.h"
#include "runtime/rt_stats.h"
#include "runtime/runtime_internal.h"
#include "runtime/trap.h"
#include "vm/pmap.h"
#include "vm/vm_heap.h"
#include "vm/vm_kern.h"
#include "vm/vm_lock.h"
#include "vm/vm_page.h"
#include "vm/vm_stats.h"
#include "vm/vmspace.h"

namespace vmrt {
namespace {

runtime_config g_config;
std::atomic<int> g_boot_state{0};  // 0 = down, 1 = booting, 2 = up
bool g_vm_up;                      // false: stage 0 fallback (no vmspaces)
rt::window* g_kernel_window;
rt::window* g_process_window;  // the process vmspace: the heap (vm_heap)
vaddr_t g_kmem_base;
int g_fork_pipe[2] = {-1, -1};     // child -> parent: "physmem replaced"

using rt::say;

// Parse "123", "64K", "16M", "4G", "1T".  False on garbage or overflow.
bool parse_size(const char* s, std::size_t* out) {
  if (s == nullptr || *s == '\0') return false;
  std::size_t v = 0;
  const char* p = s;
  for (; *p >= '0' && *p <= '9'; ++p) {
    std::size_t d = static_cast<std::size_t>(*p - '0');
    if (v > (SIZE_MAX - d) / 10) return false;
    v = v * 10 + d;
  }
  if (p == s) return false;
  unsigned shift = 0;
  switch (*p) {
    case '\0': break;
    case 'k': case 'K': shift = 10; ++p; break;
    case 'm': case 'M': shift = 20; ++p; break;
    case 'g': case 'G': shift = 30; ++p; break;
    case 't': case 'T': shift = 40; ++p; break;
    default: return false;
  }
  if (*p == 'B' || *p == 'b') ++p;
  if (*p != '\0') return false;
  if (shift != 0 && v > (SIZE_MAX >> shift)) return false;
  *out = v << shift;
  return true;
}

std::size_t host_ram() {
  long pages = sysconf(_SC_PHYS_PAGES);
  long psz = sysconf(_SC_PAGESIZE);
  if (pages <= 0 || psz <= 0) return std::size_t{4} << 30;
  return static_cast<std::size_t>(pages) * static_cast<std::size_t>(psz);
}

// Limits of each size variable: a value outside [min, max] is refused (message, default).
struct size_limits {
  std::size_t min, max;
};
constexpr size_limits kRegionLimits{rt::kMinRegion, rt::kMaxRegion};
constexpr size_limits kPhysmemLimits{std::size_t{16} << 20, std::size_t{1} << 44};
constexpr size_limits kKmemLimits{std::size_t{16} << 20, rt::kMaxRegion / 2};
constexpr size_limits kFrameCacheLimits{0, std::size_t{1} << 44};
// Default free-frame cache: physmem / kFrameCacheDiv, at most kFrameCacheMax.
constexpr std::size_t kFrameCacheDiv = 4;
constexpr std::size_t kFrameCacheMax = std::size_t{1} << 30;
static_assert(kFrameCacheDiv >= 2 && kFrameCacheMax % 4096 == 0);
static_assert(kRegionLimits.min < kRegionLimits.max && kPhysmemLimits.min < kPhysmemLimits.max &&
              kKmemLimits.min < kKmemLimits.max && kKmemLimits.max <= kRegionLimits.max);

void put_size(vm_out& o, std::size_t v) {
  const char* unit = "";
  if (v % (std::size_t{1} << 40) == 0) { v >>= 40; unit = "T"; }
  else if (v % (std::size_t{1} << 30) == 0) { v >>= 30; unit = "G"; }
  else if (v >= (std::size_t{1} << 20)) { v >>= 20; unit = "M"; }
  o.u(v).str(unit);
}

// A size variable: garbage or a value outside the limits gets a message naming the
// variable, the value, the accepted range and the default used instead.
void env_size(const char* name, std::size_t* field, size_limits lim) {
  const char* v = getenv(name);
  if (v == nullptr) return;
  std::size_t n;
  bool parsed = parse_size(v, &n);
  if (parsed && n >= lim.min && n <= lim.max) {
    *field = n;
    return;
  }
  vm_fd_out<256> o(2);
  o.str("vmrt: ").str(name).ch('=').str(v).str(parsed ? ": out of range (" : ": not a size (use e.g. 512M, 4G; ");
  put_size(o, lim.min);
  o.str(" .. ");
  put_size(o, lim.max);
  o.str("); using the default ");
  put_size(o, *field);
  o.ch('\n');
}

bool env_flag(const char* name) {
  const char* v = getenv(name);
  return v != nullptr && *v != '\0' && std::strcmp(v, "0") != 0;
}

}  // namespace

runtime_config runtime_config_from_env() {
  runtime_config c{};
  c.region_size = std::size_t{64} << 30;
  std::size_t ram = host_ram();
  c.physmem_size = ram < (std::size_t{64} << 30) ? ram : (std::size_t{64} << 30);
  c.kmem_size = std::size_t{16} << 30;
  c.trap = trap_backend::automatic;
  c.stats_fd = 2;
  env_size("VMRT_REGION_SIZE", &c.region_size, kRegionLimits);
  env_size("VMRT_PHYSMEM", &c.physmem_size, kPhysmemLimits);
  env_size("VMRT_KMEM_SIZE", &c.kmem_size, kKmemLimits);
  c.frame_cache = c.physmem_size / kFrameCacheDiv < kFrameCacheMax ? c.physmem_size / kFrameCacheDiv : kFrameCacheMax;
  env_size("VMRT_FRAME_CACHE", &c.frame_cache, kFrameCacheLimits);
  if (const char* t = getenv("VMRT_TRAP")) {
    if (std::strcmp(t, "sigsegv") == 0) c.trap = trap_backend::sigsegv;
    else if (std::strcmp(t, "userfaultfd") == 0 || std::strcmp(t, "uffd") == 0) c.trap = trap_backend::userfaultfd;
    else if (std::strcmp(t, "auto") != 0)
      say("vmrt: VMRT_TRAP=", t, ": use auto, sigsegv or userfaultfd; using the default (auto)\n");
  }
  c.stats = env_flag("VMRT_STATS");
  c.kmem_diagnostics = env_flag("VMRT_KMEM_DIAG");
  if (const char* f = getenv("VMRT_STATS_FD")) {
    int fd = 0;
    const char* p = f;
    for (; *p >= '0' && *p <= '9' && fd < 1000000; ++p) fd = fd * 10 + (*p - '0');
    if (p == f || *p != '\0') say("vmrt: VMRT_STATS_FD=", f, ": not a file descriptor number; using the default (2)\n");
    else c.stats_fd = fd;
  }
  return c;
}


namespace {

// kmem_map of the kernel vmspace: wired kernel memory (kmem_alloc_wired); the program's
// malloc arena is the process heap (VMRT_KMEM_SIZE).
constexpr std::size_t kKernelKmemSize = std::size_t{64} << 20;
static_assert(kKernelKmemSize % rt::kGranule == 0 || rt::kGranule % kKernelKmemSize == 0);

// A window of `size` bytes of `kind` with an empty vmspace over it, published; null (with
// a message) when the region has no room or the vmspace cannot be made.
vmspace* window_vmspace(std::size_t size, rt::window_kind kind, rt::window** out) {
  rt::window* w = rt::window_alloc(size, kind);
  if (w == nullptr) {
    rt::say("vmrt: no room in the region for the ", kind == rt::WK_KERNEL ? "kernel" : "process", " window\n");
    return nullptr;
  }
  w->pm.ops = &rt::g_pmap_linux_ops;
  vmspace* vs = nullptr;
  kern_return_t kr = vmspace_create(w->base, w->base + w->size, &w->pm, &vs);
  if (kr != KERN_SUCCESS) {
    rt::say("vmrt: cannot create a vmspace: ", kern_return_name(kr), "\n");
    return nullptr;
  }
  w->vs.store(vs, std::memory_order_release);
  *out = w;
  return vs;
}

// Bring up the VM machine.  False (with a message) at the first failure.
bool boot_vm(const runtime_config& cfg) {
  if (!rt::region_reserve(cfg.region_size)) return false;
  if (!rt::pmap_linux_init()) return false;
  if (!rt::physmem_init(cfg.physmem_size, cfg.frame_cache)) return false;
  pmap_set_machine_ops(&rt::g_pmap_linux_ops);
  // No trap backend yet: the heap's windows are mapped when handed out and kmem_map is
  // wired, so nothing faults until a vmspace with demand-paged memory exists
  // (runtime_trap_start, called by the API).
  // The kernel window holds kmem_map (the VM's own wired malloc, kept small: the program's
  // malloc lives in the process heap); the process window holds the heap.
  std::size_t kmem = cfg.kmem_size;
  std::size_t max_kmem = rt::region_size() / 2;
  if (kmem > max_kmem) {
    rt::say("vmrt: VMRT_KMEM_SIZE larger than half the region; clamped\n");
    kmem = max_kmem;
  }
  kmem = (kmem + rt::kGranule - 1) & ~(rt::kGranule - 1);
  vmspace* kvs = window_vmspace(kKernelKmemSize + rt::kGranule, rt::WK_KERNEL, &g_kernel_window);
  if (kvs == nullptr) return false;
  kern_return_t kr = kmem_submap_init(kvs, kKernelKmemSize, &g_kmem_base);
  if (kr != KERN_SUCCESS) {
    rt::say("vmrt: kmem_submap_init failed: ", kern_return_name(kr), "\n");
    return false;
  }
  vmspace* pvs = window_vmspace(kmem + rt::kGranule, rt::WK_PROCESS, &g_process_window);
  if (pvs == nullptr) return false;
  vaddr_t heap = 0;
  kr = vm_heap_init(pvs, kmem, &heap);
  if (kr != KERN_SUCCESS) {
    rt::say("vmrt: vm_heap_init failed: ", kern_return_name(kr), "\n");
    return false;
  }
  kmem::kmem_config kc;
  kc.diagnostics = cfg.kmem_diagnostics;
  if (!kmem::kmem_init(rt::kmem_heap_source(heap, kmem), kc)) {
    rt::say("vmrt: kmem_init over the heap failed\n");
    return false;
  }
  return true;
}

}  // namespace

bool runtime_boot_with(const runtime_config& cfg) {
  int expected = 0;
  if (!g_boot_state.compare_exchange_strong(expected, 1, std::memory_order_acq_rel)) {
    while (g_boot_state.load(std::memory_order_acquire) == 1) {
    }
    return false;
  }
  g_config = cfg;
  g_vm_up = boot_vm(cfg);
  bool ok = g_vm_up;
  if (!ok && !kmem::kmem_initialized()) {
    rt::say("vmrt: VM boot failed: falling back to stage 0 (kmem over host pages; no vmspaces)\n");
    kmem::kmem_config kc;
    kc.diagnostics = cfg.kmem_diagnostics;
    const kmem::kmem_page_source* src = kmem::kmem_host_page_source(cfg.kmem_size);
    ok = src != nullptr && kmem::kmem_init(src, kc);
  }
  g_boot_state.store(ok ? 2 : 0, std::memory_order_release);
  return ok;
}

bool runtime_boot() {
  if (g_boot_state.load(std::memory_order_acquire) == 2) return true;
  runtime_boot_with(runtime_config_from_env());
  return g_boot_state.load(std::memory_order_acquire) == 2;
}

bool runtime_booted() { return g_boot_state.load(std::memory_order_acquire) == 2; }

bool runtime_trap_start() {
  if (!runtime_boot() || !g_vm_up) return false;
  return rt::trap_start(g_config.trap, g_config.stats ? g_config.stats_fd : -1);
}
const runtime_config& runtime_current_config() { return g_config; }

bool runtime_vm_up() { return g_vm_up; }
vmspace* runtime_kernel_vmspace() {
  return g_kernel_window != nullptr ? g_kernel_window->vs.load(std::memory_order_acquire) : nullptr;
}

// Lock order: kmem -> VM -> pmap.  The parent waits, after fork, until the child has
// its own physmem: until then both map the same memfd, and a parent write would show
// through in the child.
void runtime_fork_prepare() {
  rt::trap_fork_prepare();  // first: trap_start() takes the VM lock and may malloc
  kmem::fork_prepare();
  if (!g_vm_up) return;
  vm_lock_acquire();
  rt::pmap_linux_fork_prepare();
  if (::pipe2(g_fork_pipe, O_CLOEXEC) != 0) g_fork_pipe[0] = g_fork_pipe[1] = -1;
}

void runtime_fork_parent() {
  if (g_vm_up) {
    if (g_fork_pipe[1] >= 0) {
      ::close(g_fork_pipe[1]);  // EOF at once if fork failed (no child holds the write end)
      char c;
      ssize_t r;
      while ((r = ::read(g_fork_pipe[0], &c, 1)) < 0 && errno == EINTR) {
      }
      if (r == 1) rt::rt_count(rt::RC_HOST_FORKS);  // a child signed in: counted here, in the parent
      ::close(g_fork_pipe[0]);
      g_fork_pipe[0] = g_fork_pipe[1] = -1;
    }
    rt::pmap_linux_fork_parent();
    vm_lock_release();
  }
  kmem::fork_parent();
  rt::trap_fork_parent();
}

void runtime_fork_child() {
  if (g_vm_up) {
    bool ok = rt::physmem_fork_child();
    if (g_fork_pipe[1] >= 0) {
      char c = ok ? 1 : 0;
      (void)!::write(g_fork_pipe[1], &c, 1);
      ::close(g_fork_pipe[1]);
      ::close(g_fork_pipe[0]);
      g_fork_pipe[0] = g_fork_pipe[1] = -1;
    }
    rt::pmap_linux_fork_child();
    vm_lock_fork_child_reset();
  }
  kmem::fork_child();
  rt::trap_fork_child();
}

void runtime_report_host(int fd) {
  vm_fd_out<256> o(fd);
  rt::vma_count c = rt::maps_count(rt::region_base(), rt::region_base() + rt::region_size());
  o.u(c.in_range, kVmstatColumn).str(" host VMAs in region (/proc/self/maps)\n");
  o.u(c.total, kVmstatColumn).str(" host VMAs in process (/proc/self/maps)\n");
  o.u(rt::physmem_host_bytes() >> 10, kVmstatColumn).str(" KiB of host memory in physmem\n");
  o.str_r(rt::trap_backend_name(), kVmstatColumn).str(" trap backend\n");
}

void runtime_report(int fd) {
  vm_fd_out<128> o(fd);
  if (g_vm_up) {
    o.str("--- vmstat -s ---\n").flush();
    vm_stats_report(fd);
    rt::rt_report_counters(fd);
    runtime_report_host(fd);
  }
  o.str("--- vmstat -m ---\n").flush();
  kmem::report_vmstat_m(fd);
  if (g_vm_up) {
    o.str("--- procstat -v (process vmspace) ---\n").flush();
    vmspace_report_procstat(g_process_window->vs.load(std::memory_order_acquire), fd);
    o.str("--- procstat -v (kernel map) ---\n").flush();
    vmspace_report_procstat(runtime_kernel_vmspace(), fd);
  }
}

std::size_t runtime_trim() {
  if (!runtime_booted()) return 0;
  kmem::trim();
  // Empty heap windows go back to the VM (their frames were already released to the host
  // when their ranges were freed), then every cached free frame goes to the host.
  if (g_vm_up) vm_heap_trim();
  vm_lock_guard g;
  return static_cast<std::size_t>(vm_page_cache_trim(0)) << PAGE_SHIFT;
}

}  // namespace vmrt
