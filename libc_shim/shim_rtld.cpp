// shim_rtld.cpp — ld.so's minimal-malloc ranges: noted at boot, read from /proc/self/maps
// at the first foreign pointer that needs them (shim_rtld.h).
#include "libc_shim/shim_rtld.h"

#include <atomic>
#include <cstdint>
#include <link.h>
#include <sched.h>
#include <sys/auxv.h>
#include <sys/mman.h>

#include "libc_shim/shim_counters.h"
#include "runtime/region.h"
#include "runtime/rt_maps.h"
#include "vm/vm_tables.h"
#include "vm/vm_types.h"

namespace vmrt::shim {
namespace {

struct range {
  std::uintptr_t lo, hi;
};

enum scan_state : int { kNotScanned, kScanning, kScanned };

// Written at boot by the booting thread, read-only afterwards.
range g_ldso_rw{0, 0};        // ld.so's writable segment, page-rounded
std::uintptr_t g_boot_tp = 0;   // the booting thread's thread pointer (its static TLS)
std::uintptr_t g_boot_dtv = 0;  // and its DTV
std::size_t g_estimate = 0;     // host mappings at boot, estimated

// The /proc/self/maps ranges, written by the one scanning thread, read once g_scan is
// kScanned.  Cold: a process that never frees a foreign pointer never writes them.
VMRT_COLD_BSS range g_ranges[kMaxRtldRanges];
VMRT_COLD_BSS std::size_t g_nranges;
std::atomic<int> g_scan{kNotScanned};

constexpr std::uintptr_t kPageMask = 4095;
constexpr std::uintptr_t trunc_pg(std::uintptr_t a) { return a & ~kPageMask; }
constexpr std::uintptr_t round_pg(std::uintptr_t a) { return (a + kPageMask) & ~kPageMask; }

// A PROT_NONE anonymous mapping at most this large right below a read/write one is taken
// for a thread stack's guard (glibc's default guard is a page; pthread_attr_setguardsize).
constexpr std::uintptr_t kMaxGuard = std::uintptr_t{1} << 20;
// Host mappings no loaded object accounts for: [stack], [vsyscall], [vvar], [vvar_vclock],
// [heap], and the loader's minimal-malloc mmaps (two to four).
constexpr std::size_t kLoaderMappings = 10;

void add_range(std::uintptr_t lo, std::uintptr_t hi) {
  if (g_nranges > 0 && g_ranges[g_nranges - 1].hi == lo) {
    g_ranges[g_nranges - 1].hi = hi;  // extend a contiguous range
    return;
  }
  if (g_nranges < kMaxRtldRanges) g_ranges[g_nranges++] = range{lo, hi};
}

// The loaded objects' PT_LOAD page spans that overlap one mapping [lo, hi), gathered by
// dl_iterate_phdr for that mapping alone (a table of every object's spans was an 8 KB array
// whose first page boot wrote: a page fault in every process).
struct overlap_spans {
  std::uintptr_t lo, hi;
  range span[kMaxObjectSpans];
  std::size_t n;
};

// dl_iterate_phdr callback: add each PT_LOAD span of the object that overlaps the mapping.
int collect_overlaps(dl_phdr_info* info, std::size_t, void* data) {
  auto* o = static_cast<overlap_spans*>(data);
  for (int i = 0; i < info->dlpi_phnum; ++i) {
    const ElfW(Phdr)& ph = info->dlpi_phdr[i];
    if (ph.p_type != PT_LOAD || ph.p_memsz == 0) continue;
    std::uintptr_t lo = trunc_pg(info->dlpi_addr + ph.p_vaddr);
    std::uintptr_t hi = round_pg(info->dlpi_addr + ph.p_vaddr + ph.p_memsz);
    if (hi > o->lo && lo < o->hi && o->n < kMaxObjectSpans) o->span[o->n++] = range{lo, hi};
  }
  return 0;
}

// dl_iterate_phdr callback at boot: note ld.so's writable segment, and count the host
// mappings each object makes: one per PT_LOAD segment, one more where PT_GNU_RELRO splits
// the writable segment, one more for bss beyond the file's last page.
struct boot_walk {
  std::uintptr_t ldso_base;
  std::size_t mappings;
};
int note_object(dl_phdr_info* info, std::size_t, void* data) {
  auto* w = static_cast<boot_walk*>(data);
  for (int i = 0; i < info->dlpi_phnum; ++i) {
    const ElfW(Phdr)& ph = info->dlpi_phdr[i];
    if (ph.p_type == PT_GNU_RELRO) ++w->mappings;
    if (ph.p_type != PT_LOAD || ph.p_memsz == 0) continue;
    ++w->mappings;
    const std::uintptr_t file_end = round_pg(info->dlpi_addr + ph.p_vaddr + ph.p_filesz);
    const std::uintptr_t mem_end = round_pg(info->dlpi_addr + ph.p_vaddr + ph.p_memsz);
    if (mem_end > file_end) ++w->mappings;
    if (info->dlpi_addr == w->ldso_base && (ph.p_flags & PF_W) != 0)
      g_ldso_rw = range{trunc_pg(info->dlpi_addr + ph.p_vaddr), mem_end};
  }
  return 0;
}

// Add [lo, hi) minus every object span.
void add_minus_spans(std::uintptr_t lo, std::uintptr_t hi) {
  overlap_spans o;
  o.lo = lo;
  o.hi = hi;
  o.n = 0;
  dl_iterate_phdr(collect_overlaps, &o);
  while (lo < hi) {
    bool inside = false;
    for (std::size_t i = 0; i < o.n; ++i) {
      if (o.span[i].lo <= lo && lo < o.span[i].hi) {
        lo = o.span[i].hi;  // skip an object's pages
        inside = true;
      }
    }
    if (inside) continue;
    std::uintptr_t next = hi;  // the next object span above lo
    for (std::size_t i = 0; i < o.n; ++i)
      if (o.span[i].lo > lo && o.span[i].lo < next) next = o.span[i].lo;
    add_range(lo, next);
    lo = next;
  }
}

// vmrt's own host memory: its region (the heap, the program's mmaps) and its table arena.
bool vmrt_memory(std::uintptr_t lo, std::uintptr_t hi) {
  return rt::region_contains(lo) || rt::region_contains(hi - 1) ||
         sys::table_in_arena(reinterpret_cast<const void*>(lo), hi - lo);
}

bool holds_boot_anchor(std::uintptr_t lo, std::uintptr_t hi) {
  return (g_boot_tp >= lo && g_boot_tp < hi) || (g_boot_dtv >= lo && g_boot_dtv < hi);
}

// One walk of /proc/self/maps: every anonymous private read/write mapping that is neither
// vmrt's nor a thread stack, minus the loaded objects' spans.
void scan_maps() {
  struct walk {
    range prev;          // the line before: an anonymous PROT_NONE private mapping, or {0, 0}
  } w{{0, 0}};
  char buf[4096];  // the calling thread's stack: no mapping, no malloc
  (void)rt::maps_stream(
      buf, sizeof buf,
      [](const rt::maps_line& m, void* a) {
        auto* x = static_cast<walk*>(a);
        const bool anon = m.inode == 0 && m.path_len == 0;
        const range guard = x->prev;
        x->prev = anon && m.prot == 0 && !m.shared ? range{m.lo, m.hi} : range{0, 0};
        if (!anon || m.shared || (m.prot & (PROT_READ | PROT_WRITE)) != (PROT_READ | PROT_WRITE)) return;
        if (vmrt_memory(m.lo, m.hi)) return;
        const bool stack = guard.hi == m.lo && guard.hi - guard.lo <= kMaxGuard;
        if (stack && !holds_boot_anchor(m.lo, m.hi)) return;
        add_minus_spans(m.lo, m.hi);
      },
      &w);
}

bool in(const range& r, std::uintptr_t a, std::size_t* bytes_to_end) {
  if (a < r.lo || a >= r.hi) return false;
  if (bytes_to_end != nullptr) *bytes_to_end = r.hi - a;
  return true;
}

// The /proc ranges, read by the first thread that asks; the others wait for it.
void ensure_scanned() {
  int s = g_scan.load(std::memory_order_acquire);
  if (s == kScanned) return;
  if (s == kNotScanned && g_scan.compare_exchange_strong(s, kScanning, std::memory_order_acq_rel)) {
    count(C_RTLD_SCANS);
    scan_maps();
    g_scan.store(kScanned, std::memory_order_release);
    return;
  }
  while (g_scan.load(std::memory_order_acquire) != kScanned) sched_yield();
}

}  // namespace

void rtld_boot() {
  boot_walk w{static_cast<std::uintptr_t>(getauxval(AT_BASE)), 0};
  dl_iterate_phdr(note_object, &w);
  g_estimate = w.mappings + kLoaderMappings;
  g_boot_tp = reinterpret_cast<std::uintptr_t>(__builtin_thread_pointer());
#if defined(__x86_64__)
  // glibc's TCB header: its second word (%fs:8) points at the DTV's second entry.
  g_boot_dtv = *reinterpret_cast<const std::uintptr_t*>(g_boot_tp + sizeof(void*));
#endif
}

bool rtld_owns(const void* p, std::size_t* bytes_to_end) {
  const auto a = reinterpret_cast<std::uintptr_t>(p);
  if (g_ldso_rw.hi != 0 && in(g_ldso_rw, a, bytes_to_end)) return true;
  ensure_scanned();
  for (std::size_t i = 0; i < g_nranges; ++i)
    if (in(g_ranges[i], a, bytes_to_end)) return true;
  return false;
}

std::size_t rtld_range_count() {
  return (g_ldso_rw.hi != 0 ? 1 : 0) + (g_scan.load(std::memory_order_acquire) == kScanned ? g_nranges : 0);
}

std::size_t rtld_mapping_estimate() { return g_estimate; }

}  // namespace vmrt::shim
