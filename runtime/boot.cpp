// boot.cpp — configuration from the environment and machine bring-up:
// region, physmem + page array, the Linux pmap, the trap backend, the kernel vmspace
// over its window, kmem_map, and kmem over it.  What a host fork does to the machine is
// rt_fork.cpp's.  The trap backend waits for the first
// API vmspace (runtime_trap_start): a program that only mallocs gets no handler, no
// userfaultfd and no thread.  If the VM cannot be brought up,
// stage 0 (kmem over a host page source, no vmspaces) is the fallback, with a message.
#include "runtime/boot.h"

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "kmem/kmem.h"
#include "runtime/kmem_vm_source.h"
#include "runtime/physmem.h"
#include "runtime/pmap_linux.h"
#include "runtime/region.h"
#include "runtime/rt_base.h"
#include "runtime/rt_maps.h"
#include "runtime/rt_mmap.h"
#include "runtime/rt_pageout.h"
#include "runtime/rt_stats.h"
#include "runtime/rt_vma_budget.h"
#include "runtime/runtime_internal.h"
#include "runtime/trap.h"
#include "vm/pmap.h"
#include "vm/vm_heap.h"
#include "vm/vm_kern.h"
#include "vm/vm_lock.h"
#include "vm/vm_page.h"
#include "vm/vm_pdpolicy.h"
#include "vm/vm_stats.h"
#include "vm/vm_sys.h"
#include "vm/vm_tables.h"
#include "vm/vmspace.h"

namespace vmrt {

VMRT_FORK_DATA bool g_vm_up;       // false: stage 0 fallback (no vmspaces); read by every fork
rt::window* g_process_window;  // the process vmspace: the heap (vm_heap)

namespace {

VMRT_FORK_DATA runtime_config g_config;  // read at every exit (the stats report) and fork
VMRT_FORK_DATA std::atomic<int> g_boot_state{0};  // 0 = down, 1 = booting, 2 = up
rt::window* g_kernel_window;
vaddr_t g_kmem_base;

using rt::say;

// Limits of each size variable: a value outside [min, max] is refused (message, default).
constexpr size_limits kRegionLimits = kRegionSizeLimits;
constexpr size_limits kPhysmemLimits = kPhysmemSizeLimits;
constexpr size_limits kKmemLimits = kKmemSizeLimits;
constexpr size_limits kFrameCacheLimits = kFrameCacheSizeLimits;
static_assert(kRegionLimits.min >= rt::kMinRegion && kRegionLimits.max == rt::kMaxRegion);
static_assert(kKmemLimits.max == rt::kMaxRegion / 2 && kConfigRegionGranule == rt::kGranule);
// Default free-frame cache: physmem / kFrameCacheDiv, at most kFrameCacheMax.
constexpr std::size_t kFrameCacheDiv = 4;
// Default swap device when paging is on: this many times physmem, at least kSwapDefaultMin
// (a sparse file: only what is paged out takes disk).
constexpr std::size_t kSwapDefaultMul = 8;
constexpr std::size_t kSwapDefaultMin = std::size_t{1} << 30;
constexpr std::size_t kFrameCacheMax = std::size_t{1} << 30;
static_assert(kFrameCacheDiv >= 2 && kFrameCacheMax % 4096 == 0);
static_assert(kRegionLimits.min < kRegionLimits.max && kPhysmemLimits.min < kPhysmemLimits.max &&
              kKmemLimits.min < kKmemLimits.max && kKmemLimits.max <= kRegionLimits.max);

// A variable of config_var v (runtime/rt_config.h, the table vmrun checks against):
// garbage or a value outside the accepted range gets one message naming the variable,
// the value, the accepted range and the default used instead.  True when the variable
// set *out.
bool env_value(config_var v, std::uint64_t* out, const char* default_text) {
  const char* text = getenv(config_info(v).env);
  if (text == nullptr) return false;
  config_status st = config_parse(v, text, out);
  if (st == config_status::ok) return true;
  char why[256];
  vm_fd_out<384> o(2);
  o.str("vmrt: ").str(config_describe(v, nullptr, text, st, why, sizeof why)).str("; using the default ");
  o.str(default_text).ch('\n');
  return false;
}

bool env_size(config_var v, std::size_t* field) {
  char def[32];
  std::uint64_t n = 0;
  if (!env_value(v, &n, config_size_text(*field, def, sizeof def))) return false;
  *field = static_cast<std::size_t>(n);
  return true;
}

bool env_flag(config_var v) {
  std::uint64_t on = 0;
  return env_value(v, &on, "(off)") && on != 0;
}

// kmem_map of the kernel vmspace: wired kernel memory (kmem_alloc_wired); the program's
// malloc arena is the process heap (VMRT_KMEM_SIZE).
constexpr std::size_t kKernelKmemSize = std::size_t{64} << 20;
static_assert(kKernelKmemSize % rt::kGranule == 0 || rt::kGranule % kKernelKmemSize == 0);
static_assert(kKernelKmemSize + rt::kGranule == kConfigKernelWindow, "rt_config.h: the kernel window");

// A process's first medium blocks (64-512 KiB) are whole-page blocks next to its clusters
// until it has asked for this much of them (kmem_config::medium_spans_after).
constexpr std::size_t kMediumSpansAfter = std::size_t{1} << 20;
// How far into a 2 MiB block a heap of host memory begins (boot_vm).
constexpr vsize_t kHostHeapOffset = vsize_t{1} << 20;
static_assert(kHostHeapOffset % PAGE_SIZE == 0 && kHostHeapOffset < (vsize_t{2} << 20));

// ---- fitting the host's limits ------------------------------------------------------------
//
// Every byte vmrt maps is charged to the process's RLIMIT_AS (the PROT_NONE region
// included), and its private page tables and arrays to RLIMIT_DATA.  Under a finite limit
// vmrt takes at most half of what the limit leaves free at boot, so the program keeps at
// least the other half for its own mappings, stacks and libraries.  One byte of malloc
// capacity (kmem K) costs a region of 2K (kmem_map may use half the region), K of physmem
// (the direct map) and the per-page tables below.

// Host address space per byte of kmem capacity, in 1/4096ths: region 2 + direct map 1,
// plus the pmap's tables for 2 region pages (2 * kPmapBytesPer4k), the page array (48) and kmem's
// kmemusage + page index (17) per 4 KiB.
constexpr std::size_t kAsPer4k = 3 * 4096 + 2 * rt::kPmapBytesPer4k + 48 + 17;
// Private (RLIMIT_DATA) bytes per byte of kmem capacity, in 1/4096ths.
constexpr std::size_t kDataPer4k = 2 * rt::kPmapBytesPer4k + 48 + 17;
// Stage 0 (kmem over one host reservation): the reservation, its run table and kmem's tables.
constexpr std::size_t kStage0AsPer4k = 4096 + 8 + 17;
constexpr std::size_t kStage0DataPer4k = 8 + 17;
// Below this kmem capacity the VM is not worth its fixed costs: stage 0 instead.
constexpr std::size_t kMinVmKmem = std::size_t{32} << 20;
constexpr std::size_t kMinStage0 = std::size_t{1} << 20;
static_assert(kMinVmKmem % rt::kGranule == 0 && kMinVmKmem >= kKmemLimits.min);

// Bytes of each kind the limits let vmrt take: half of what is free, or SIZE_MAX.
std::size_t half_free(std::uint64_t limit, std::uint64_t used) {
  if (limit == 0) return SIZE_MAX;
  return limit > used ? static_cast<std::size_t>((limit - used) / 2) : 0;
}

std::size_t scaled(std::size_t budget, std::size_t per4k) {
  if (budget == SIZE_MAX) return SIZE_MAX;
  return static_cast<std::size_t>(static_cast<unsigned __int128>(budget) * 4096 / per4k);
}

// VmSize and VmData of this process (bytes) from /proc/self/status; false without /proc.
//  => no malloc (a stack buffer), callable from inside the dynamic loader.
bool read_vm_usage(std::uint64_t* vmsize, std::uint64_t* vmdata) {
  int fd = ::open("/proc/self/status", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  char buf[4096];
  std::size_t len = 0;
  ssize_t n;
  while (len < sizeof buf - 1 && (n = ::read(fd, buf + len, sizeof buf - 1 - len)) != 0) {
    if (n < 0) {
      if (errno == EINTR) continue;
      break;
    }
    len += static_cast<std::size_t>(n);
  }
  ::close(fd);
  buf[len] = '\0';
  auto field = [&](const char* key, std::uint64_t* out) {
    const char* p = std::strstr(buf, key);
    if (p == nullptr) return false;
    p += std::strlen(key);
    while (*p == ' ' || *p == '\t') ++p;
    std::uint64_t v = 0;
    for (; *p >= '0' && *p <= '9'; ++p) v = v * 10 + static_cast<std::uint64_t>(*p - '0');
    *out = v << 10;  // kB
    return true;
  };
  return field("VmSize:", vmsize) && field("VmData:", vmdata);
}

// A soft (or hard) limit in bytes; 0 = unlimited.
std::uint64_t limit_of(int resource, bool hard = false) {
  rlimit rl{};
  // The raw call: the shim interposes getrlimit (it hides vmrt's share of RLIMIT_AS).
  if (::syscall(SYS_prlimit64, 0, resource, nullptr, &rl) != 0) return 0;
  rlim_t v = hard ? rl.rlim_max : rl.rlim_cur;
  if (v == RLIM_INFINITY) return 0;
  return v == 0 ? 1 : v;
}
std::uint64_t soft_limit(int resource) { return limit_of(resource); }

// Scale the sizes not set explicitly to the limits (see above).  Records what it saw.
void fit_limits(runtime_config* c, bool region_set, bool physmem_set, bool kmem_set) {
  c->sizing = region_set || physmem_set || kmem_set ? sizing_reason::environment : sizing_reason::defaults;
  c->stage0 = false;
  c->as_limit = soft_limit(RLIMIT_AS);
  c->data_limit = soft_limit(RLIMIT_DATA);
  // The memfd is a file to the host: RLIMIT_FSIZE (its hard value: physmem raises the soft
  // one around its own calls) caps physmem.
  c->fsize_limit = limit_of(RLIMIT_FSIZE, true);
  if (c->fsize_limit != 0 && c->physmem_size > c->fsize_limit) {
    std::size_t cap = static_cast<std::size_t>(c->fsize_limit) & ~static_cast<std::size_t>(PAGE_MASK);
    if (cap < kPhysmemLimits.min) {
      c->stage0 = true;
      c->stage0_size = c->kmem_size;
      c->sizing = sizing_reason::stage0_limits;
      return;
    }
    c->physmem_size = cap;
    c->sizing = sizing_reason::fit_fsize;
  }
  if (c->as_limit == 0 && c->data_limit == 0) return;
  std::uint64_t vmsize = 0, vmdata = 0;
  if (!read_vm_usage(&vmsize, &vmdata)) vmsize = vmdata = std::uint64_t{64} << 20;  // no /proc: a guess
  c->as_in_use = vmsize;
  c->data_in_use = vmdata;
  std::size_t as_budget = half_free(c->as_limit, vmsize);
  std::size_t data_budget = half_free(c->data_limit, vmdata);
  // The kmem capacity both budgets allow.
  std::size_t k_as = scaled(as_budget, kAsPer4k), k_data = scaled(data_budget, kDataPer4k);
  std::size_t k = k_as < k_data ? k_as : k_data;
  // The sizes as they stand (defaults or explicit) when they fit both budgets.
  unsigned __int128 cost_as = static_cast<unsigned __int128>(c->region_size) * (4096 + rt::kPmapBytesPer4k) +
                              static_cast<unsigned __int128>(c->physmem_size) * (4096 + 48) +
                              static_cast<unsigned __int128>(c->kmem_size) * 17;
  unsigned __int128 cost_data = static_cast<unsigned __int128>(c->region_size) * rt::kPmapBytesPer4k +
                                static_cast<unsigned __int128>(c->physmem_size) * 48 +
                                static_cast<unsigned __int128>(c->kmem_size) * 17;
  if (cost_as <= static_cast<unsigned __int128>(as_budget) * 4096 &&
      cost_data <= static_cast<unsigned __int128>(data_budget) * 4096)
    return;
  if (region_set && physmem_set && kmem_set) return;  // explicit: boot tries them as given
  k &= ~(rt::kGranule - 1);
  if (k >= kMinVmKmem) {
    c->sizing = k == (k_as & ~(rt::kGranule - 1)) ? sizing_reason::fit_as : sizing_reason::fit_data;
    if (!kmem_set && c->kmem_size > k) c->kmem_size = k;
    if (!physmem_set && c->physmem_size > k) c->physmem_size = k;
    // The region holds the kernel window (kKernelKmemSize + a granule) and the process
    // window (kmem + a granule); boot_vm also keeps kmem within half the region.
    if (!region_set) {
      std::size_t need = c->kmem_size + kKernelKmemSize + 3 * rt::kGranule;
      c->region_size = need > 2 * c->kmem_size ? need : 2 * c->kmem_size + rt::kGranule;
    }
    std::size_t fc_max = c->physmem_size / kFrameCacheDiv;
    if (c->frame_cache > fc_max) c->frame_cache = fc_max;
    return;
  }
  // The VM does not fit: kmem over host pages, as much as the budgets allow.
  std::size_t s_as = scaled(as_budget, kStage0AsPer4k), s_data = scaled(data_budget, kStage0DataPer4k);
  std::size_t s = s_as < s_data ? s_as : s_data;
  if (s > c->kmem_size) s = c->kmem_size;
  s &= ~((std::size_t{1} << 20) - 1);
  c->stage0 = true;
  c->stage0_size = s < kMinStage0 ? kMinStage0 : s;
  c->sizing = sizing_reason::stage0_limits;
}

}  // namespace

runtime_config runtime_config_from_env() {
  runtime_config c{};
  c.region_size = kDefaultRegionSize;
  std::size_t ram = rt::host_memory_info().ram;
  c.physmem_size = ram < (std::size_t{64} << 30) ? ram : (std::size_t{64} << 30);
  c.kmem_size = std::size_t{16} << 30;
  c.trap = trap_backend::automatic;
  c.stats_fd = 2;
  bool region_set = env_size(config_var::region_size, &c.region_size);
  bool physmem_set = env_size(config_var::physmem, &c.physmem_size);
  bool kmem_set = env_size(config_var::kmem_size, &c.kmem_size);
  // An explicit region sizes the default kmem to what boots in it (vmrun refuses an
  // explicit kmem that does not fit).
  if (region_set && !kmem_set && c.kmem_size > config_kmem_max_for_region(c.region_size))
    c.kmem_size = config_kmem_max_for_region(c.region_size);
  c.frame_cache = c.physmem_size / kFrameCacheDiv < kFrameCacheMax ? c.physmem_size / kFrameCacheDiv : kFrameCacheMax;
  bool cache_set = env_size(config_var::frame_cache, &c.frame_cache);
  std::size_t cache = c.frame_cache;
  fit_limits(&c, region_set, physmem_set, kmem_set);
  if (cache_set) c.frame_cache = cache;
  c.stage0_size = c.stage0 ? c.stage0_size : c.kmem_size;
  std::uint64_t v = 0;
  if (env_value(config_var::trap, &v, "(auto)")) c.trap = static_cast<trap_backend>(v);
  // Paging: on when physical memory is bounded on purpose (VMRT_PHYSMEM) or a swap size is
  // given.  The default swap is sparse: it costs disk only for what is paged out.
  std::size_t swap = 0;
  bool swap_set = env_size(config_var::swap_size, &swap);
  c.paging = physmem_set || (swap_set && swap != 0);
  c.swap_size = 0;
  if (c.paging) {
    std::size_t dflt = c.physmem_size * kSwapDefaultMul;
    c.swap_size = swap_set ? swap : (dflt < kSwapDefaultMin ? kSwapDefaultMin : dflt);
  }
  c.swap_file = nullptr;
  if (const char* f = std::getenv(config_info(config_var::swap_file).env); f != nullptr && *f != '\0') c.swap_file = f;
  // Not the two-queue CLOCK: the reference bit is emulated by dropping PTEs, and on
  // these machines a reference (minor userfaultfd) fault costs about a quarter of a page-in
  // (55 us against 240 us, measured), so the two-queue CLOCK's 5-10 reference faults per
  // fault cost more than the 4-8% fewer faults it buys (bench/README.md, pdpolicy_sim):
  // python sorting 250k strings at 16M took 63 s under clock, 16 s under clock1.  The
  // two-handed CLOCK (clock2) clears a page's bit only a gap (10% of memory) before it looks
  // again, not a revolution: the same python 67 s against clock1's 134 s on a loaded machine
  // (73 k reference faults against 425 k, as many page-ins), paging_bench random at ratio 1
  // 0.6 s against 1.4 s (0.7 k against 15.8 k); pdpolicy_sim: page-ins at 240 us and
  // reference faults at 55 us cost 3-5% less than clock1 on the xz and python traces.
  c.pdpolicy = PDPOL_CLOCK2;
  if (env_value(config_var::pdpolicy, &v, "(clock2)")) c.pdpolicy = static_cast<unsigned>(v);
  c.heap = c.paging ? heap_backing::paged : heap_backing::host;
  if (env_value(config_var::heap, &v, c.paging ? "(paged)" : "(host)")) c.heap = static_cast<heap_backing>(v);
  c.mmap_host = false;  // the program's anonymous mmaps are vmrt's (rt_mmap) unless VMRT_MMAP=host
  if (env_value(config_var::mmap, &v, "(vmrt)")) {
    c.mmap_host = v == 1;
    c.mmap_unpaged = v == 2;
  }
  c.stats = env_flag(config_var::stats);
  c.kmem_diagnostics = env_flag(config_var::kmem_diag);
  if (env_value(config_var::stats_fd, &v, "(2)")) c.stats_fd = static_cast<int>(v);
  return c;
}


namespace {


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
  vmrt::sys::table_arena_limits_known(cfg.as_limit == 0, cfg.data_limit == 0);
  if (!rt::region_reserve(cfg.region_size)) return false;
  // The kernel window holds kmem_map (the VM's own wired malloc, kept small: the program's
  // malloc lives in the process heap); the process window holds the heap.
  std::size_t kmem = cfg.kmem_size;
  std::size_t max_kmem = rt::region_size() / 2;
  if (kmem > max_kmem) {
    rt::say("vmrt: VMRT_KMEM_SIZE larger than half the region; clamped\n");
    kmem = max_kmem;
  }
  kmem = (kmem + rt::kGranule - 1) & ~(rt::kGranule - 1);
  constexpr std::size_t kernel_window = kConfigKernelWindow;  // kKernelKmemSize and a granule (asserted above)
  // The process window: the mmap area, where the program's own anonymous and file mappings
  // go (rt_mmap, top-down; the data segment at its bottom, rt_brk), then the heap: half of
  // what the region has left, the other half for the vmspaces the C API and guests create.
  // The heap at the top and the area below it put the program's first mappings next to
  // the heap's first pages: one neighbourhood of the pmap's tables and of the host's page
  // tables, where an area above a heap of kmem bytes put them tens of GiB away (two
  // more table pages and host page-table pages for every process that maps a file).
  std::size_t pw = kmem + rt::kGranule;
  std::size_t rest = rt::region_size() - kernel_window;
  if (!cfg.mmap_host && rest > pw) pw += ((rest - pw) / 2) & ~(rt::kGranule - 1);
  // Where the heap will begin (the windows are placed first fit from the region's base):
  // the pmap lays its tables out around it, unless resource limits sized the machine
  // (their sizing counts the tables in region order).  A heap of host memory begins
  // kHostHeapOffset into a 2 MiB block, and the area's first mappings go right below it:
  // both in that block, one host page-table page, where a heap on the block's boundary put
  // the first mapping in the block below (a page-table page filled, and freed again at its
  // munmap, in every process that maps a file).
  const vsize_t offset = cfg.heap == heap_backing::host && !cfg.mmap_host ? kHostHeapOffset : 0;
  const bool limited = cfg.as_limit != 0 || cfg.data_limit != 0;
  const vaddr_t heap_at = cfg.mmap_host || limited ? 0 : rt::region_base() + kernel_window + pw - kmem - offset;
  if (!rt::pmap_linux_init(heap_at)) return false;
  if (!rt::physmem_init(cfg.physmem_size, cfg.frame_cache)) return false;
  // A heap of frames needs physmem's memfd at once: made now, a host that refuses it
  // (ENOSPC, a seccomp filter) gives stage 0 instead of a malloc that fails later.
  if (cfg.heap != heap_backing::host) {
    vm_lock_guard g;
    if (!rt::physmem_first_use()) return false;
  }
  pmap_set_machine_ops(&rt::g_pmap_linux_ops);
  // No trap backend yet: the heap's windows are mapped when handed out and kmem_map is
  // wired, so nothing faults until a vmspace with demand-paged memory exists
  // (runtime_trap_start, called by the API).
  vmspace* kvs = window_vmspace(kernel_window, rt::WK_KERNEL, &g_kernel_window);
  if (kvs == nullptr) return false;
  kern_return_t kr = kmem_submap_init(kvs, kKernelKmemSize, &g_kmem_base);
  if (kr != KERN_SUCCESS) {
    rt::say("vmrt: kmem_submap_init failed: ", kern_return_name(kr), "\n");
    return false;
  }
  vmspace* pvs = window_vmspace(pw, rt::WK_PROCESS, &g_process_window);
  if (pvs == nullptr) return false;
  vaddr_t heap = 0;
  if (cfg.paging && !rt::pageout_init(cfg.physmem_size, cfg.swap_size, cfg.swap_file, cfg.pdpolicy)) return false;
  const vaddr_t pw_end = g_process_window->base + g_process_window->size;
  kr = vm_heap_init_at(pvs, kmem,
                       cfg.heap == heap_backing::frames  ? VM_HEAP_FRAMES
                       : cfg.heap == heap_backing::paged ? VM_HEAP_PAGED
                                                         : VM_HEAP_HOST,
                       cfg.mmap_host ? 0 : pw_end - kmem - offset, &heap);
  if (kr != KERN_SUCCESS) {
    rt::say("vmrt: vm_heap_init failed: ", kern_return_name(kr), "\n");
    return false;
  }
  rt::vma_budget_init();
  // A page of reservation between the area and the heap: the program's first mapping, as
  // host memory of the heap's kind, would join the heap's host VMA, and an munmap of it at
  // the host's mapping limit would then need a split the host refuses (scenario
  // hostile_map_count, raw).
  if (!cfg.mmap_host && heap > g_process_window->base + PAGE_SIZE)
    rt::mm_area_init(vm_heap_map(), g_process_window->base, heap - PAGE_SIZE, cfg.paging && !cfg.mmap_unpaged);
  kmem::kmem_config kc;
  kc.diagnostics = cfg.kmem_diagnostics;
  kc.medium_spans_after = kMediumSpansAfter;
  if (!kmem::kmem_init(rt::kmem_heap_source(heap, kmem), kc)) {
    rt::say("vmrt: kmem_init over the heap failed\n");
    return false;
  }
  return true;
}

}  // namespace

namespace {

std::size_t g_stage0_size;  // host reservation under kmem in stage 0 (0: VM up)

// Stage 0: kmem over one host reservation of `size` bytes, halved until the host accepts
// (a tight RLIMIT_AS).  True when kmem is up.
bool boot_stage0(const runtime_config& cfg, std::size_t size) {
  kmem::kmem_config kc;
  kc.diagnostics = cfg.kmem_diagnostics;
  kc.medium_spans_after = kMediumSpansAfter;
  for (std::size_t s = size; s >= kMinStage0; s /= 2) {
    const kmem::kmem_page_source* src = kmem::kmem_host_page_source(s);
    if (src == nullptr) continue;
    if (!kmem::kmem_init(src, kc)) return false;
    g_stage0_size = s;
    return true;
  }
  return false;
}

void put_mib(vm_out& o, std::uint64_t v) { o.u(v >> 20).str(" MiB"); }

}  // namespace

bool runtime_boot_with(const runtime_config& cfg) {
  int expected = 0;
  if (!g_boot_state.compare_exchange_strong(expected, 1, std::memory_order_acq_rel)) {
    while (g_boot_state.load(std::memory_order_acquire) == 1) {
    }
    return false;
  }
  g_config = cfg;
  g_vm_up = !cfg.stage0 && boot_vm(cfg);
  bool ok = g_vm_up;
  if (!ok && !kmem::kmem_initialized()) {
    if (!cfg.stage0) {
      // Give back what the failed boot mapped: stage 0 needs the address space.
      if (g_kernel_window == nullptr) {
        rt::physmem_abandon();
        rt::region_release();
      }
      g_config.sizing = sizing_reason::stage0_failed;
    }
    ok = boot_stage0(cfg, cfg.stage0_size);
    // One message: what happened, what the program gets.
    vm_fd_out<512> o(2);
    o.str("vmrt: ");
    if (cfg.stage0) {
      o.str("the room left by");
      if (cfg.as_limit != 0) {
        o.str(" RLIMIT_AS=");
        put_mib(o, cfg.as_limit);
      }
      if (cfg.data_limit != 0) {
        o.str(" RLIMIT_DATA=");
        put_mib(o, cfg.data_limit);
      }
      if (cfg.fsize_limit != 0) {
        o.str(" RLIMIT_FSIZE=");
        o.u(cfg.fsize_limit >> 10).str(" KiB");
      }
      o.str(" is too small for the VM machine");
    } else {
      o.str("VM boot failed (see above)");
    }
    if (ok) {
      o.str(": malloc runs on kmem over ");
      put_mib(o, g_stage0_size);
      o.str(" of host pages (stage 0; no vmspaces)\n");
    } else {
      o.str(": and no host reservation for kmem could be made either\n");
    }
  }
  g_boot_state.store(ok ? 2 : 0, std::memory_order_release);
  if (ok && g_vm_up && cfg.heap == heap_backing::paged) {
    // A demand-paged heap faults from its first touch: traps now, and the pageout daemon.
    rt::trap_start(cfg.trap, cfg.stats ? cfg.stats_fd : -1);
    rt::pageout_start_thread();
  }
  return ok;
}

bool runtime_heap_faults() { return runtime_booted() && g_vm_up && vm_heap_exists() && vm_heap_get_backing() != VM_HEAP_HOST; }

std::size_t runtime_file_footprint() { return runtime_booted() && g_vm_up ? rt::physmem_bytes() : 0; }

std::size_t runtime_data_footprint() {
  if (!runtime_booted()) return 0;
  if (!g_vm_up) return (g_stage0_size >> 12) * kStage0DataPer4k;
  // The tables (the pmap's, vm_page_array, kmem's: vm/vm_tables.h) as the host counts them:
  // the table arena's read-write mapping and the tables beside it.
  return sys::table_bytes_writable() +
         (std::size_t{16} << 20);  // thread stacks, alternate stacks, zones
}

std::size_t runtime_address_footprint() {
  if (!runtime_booted()) return 0;
  // The table arena's whole reservation and the tables beside it (vm/vm_tables.h).
  const std::size_t tables = sys::table_arena_reserved() + sys::table_bytes_outside();
  if (!g_vm_up) return g_stage0_size + (g_stage0_size >> 9) + tables;
  std::size_t region = rt::region_size(), phys = rt::physmem_bytes();
  // The region's host reservation keeps its alignment slop (a granule, region.cpp).
  return region + rt::kGranule + phys + tables + (std::size_t{16} << 20);  // thread stacks, alternate stacks, zones
}

bool runtime_boot() {
  if (g_boot_state.load(std::memory_order_acquire) == 2) return true;
  runtime_boot_with(runtime_config_from_env());
  return g_boot_state.load(std::memory_order_acquire) == 2;
}

bool runtime_stats_requested() { return env_flag(config_var::stats); }

bool runtime_booted() { return g_boot_state.load(std::memory_order_acquire) == 2; }

bool runtime_trap_start() {
  if (!runtime_boot() || !g_vm_up) return false;
  return rt::trap_start(g_config.trap, g_config.stats ? g_config.stats_fd : -1);
}
// In the fork text: the shim's exit report asks it in every exiting fork child.
VMRT_FORK_TEXT const runtime_config& runtime_current_config() { return g_config; }

bool runtime_vm_up() { return g_vm_up; }
vmspace* runtime_kernel_vmspace() {
  return g_kernel_window != nullptr ? g_kernel_window->vs.load(std::memory_order_acquire) : nullptr;
}

void runtime_report_host(int fd) {
  vm_fd_out<256> o(fd);
  rt::vma_count c = rt::maps_count(rt::region_base(), rt::region_base() + rt::region_size());
  o.u(c.in_range, kVmstatColumn).str(" host VMAs in region (/proc/self/maps)\n");
  o.u(c.total, kVmstatColumn).str(" host VMAs in process (/proc/self/maps)\n");
  o.u(rt::physmem_host_bytes() >> 10, kVmstatColumn).str(" KiB of host memory in physmem\n");
  o.u(sys::table_bytes_inside() >> 10, kVmstatColumn).str(" KiB of VM tables laid out in the table arena (address space)\n");
  o.u(sys::table_bytes_outside() >> 10, kVmstatColumn).str(" KiB of VM tables outside the table arena\n");
  o.u(sys::table_arena_blocks_resident(), kVmstatColumn).str(" 2 MiB blocks of the table arena in use\n");
  o.u(sys::table_host_calls(), kVmstatColumn).str(" host mappings made for VM tables\n");
  o.str_r(rt::trap_backend_name(), kVmstatColumn).str(" trap backend\n");
  if (g_vm_up && vm_heap_exists()) {
    vm_heap_backing b = vm_heap_get_backing();
    bool host = b == VM_HEAP_HOST;
    o.str_r(host ? "host" : b == VM_HEAP_PAGED ? "paged" : "frames", kVmstatColumn).str(" heap backing (VMRT_HEAP)\n");
    vm_heap_info hi{};
    if (host && vm_heap_get_info(&hi) && pmap_machine_ops()->host_resident != nullptr)
      o.u(pmap_machine_ops()->host_resident(hi.base, hi.base + hi.size) >> 10, kVmstatColumn).str(" KiB of host memory in the heap\n");
  }
}

// How the sizes were chosen (vmstat -s lines).
void runtime_report_sizing(int fd) {
  vm_fd_out<1024> o(fd);
  const runtime_config& c = g_config;
  o.u(c.as_limit >> 10, kVmstatColumn).str(" KiB RLIMIT_AS at boot (0: unlimited)\n");
  o.u(c.as_in_use >> 10, kVmstatColumn).str(" KiB address space in use before boot\n");
  o.u(c.data_limit >> 10, kVmstatColumn).str(" KiB RLIMIT_DATA at boot (0: unlimited)\n");
  o.u(c.fsize_limit >> 10, kVmstatColumn).str(" KiB RLIMIT_FSIZE (hard) at boot (0: unlimited)\n");
  if (g_vm_up) {
    o.u(rt::region_size() >> 10, kVmstatColumn).str(" KiB region reserved\n");
    o.u(rt::physmem_bytes() >> 10, kVmstatColumn).str(" KiB physmem\n");
    o.u(c.kmem_size >> 10, kVmstatColumn).str(" KiB kmem submap\n");
    o.u(rt::vma_budget_limit(), kVmstatColumn).str(" host mapping limit (vm.max_map_count)\n");
    o.u(rt::vma_budget_headroom(), kVmstatColumn).str(" host mappings kept for vmrt below it (program mmaps refused past that)\n");
    o.u(rt::vma_budget_boot_estimate(), kVmstatColumn).str(" host mappings at boot (estimated from the loaded objects)\n");
  } else {
    o.u(g_stage0_size >> 10, kVmstatColumn).str(" KiB stage 0 host pages for kmem\n");
  }
  o.u(runtime_address_footprint() >> 10, kVmstatColumn).str(" KiB address space held by vmrt\n");
  o.str_r(kSizingReasonNames[static_cast<unsigned>(c.sizing)], kVmstatColumn).str(" (sizing)\n");
}

void runtime_report(int fd) {
  vm_fd_out<128> o(fd);
  o.str("--- vmstat -s ---\n").flush();
  if (g_vm_up) {
    vm_stats_report(fd);
    rt::rt_report_counters(fd);
    runtime_report_host(fd);
  }
  runtime_report_sizing(fd);
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
