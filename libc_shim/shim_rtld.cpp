// shim_rtld.cpp — snapshot of the ranges ld.so's minimal malloc may have used.
#include "libc_shim/shim_rtld.h"

#include <cstdint>
#include <link.h>
#include <sys/auxv.h>
#include <sys/mman.h>

#include "runtime/rt_maps.h"

namespace vmrt::shim {
namespace {

struct range {
  std::uintptr_t lo, hi;
};
range g_ranges[kMaxRtldRanges];  // written once at boot, read-only afterwards
std::size_t g_nranges = 0;
range g_ldso_rw{0, 0};           // ld.so's writable segment, page-rounded
std::size_t g_nmappings = 0;     // lines of /proc/self/maps at the snapshot

constexpr std::uintptr_t kPageMask = 4095;
constexpr std::uintptr_t trunc_pg(std::uintptr_t a) { return a & ~kPageMask; }
constexpr std::uintptr_t round_pg(std::uintptr_t a) { return (a + kPageMask) & ~kPageMask; }

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

// dl_iterate_phdr callback: note ld.so's writable segment.
int find_ldso_rw(dl_phdr_info* info, std::size_t, void* ldso_base) {
  if (info->dlpi_addr != reinterpret_cast<std::uintptr_t>(ldso_base)) return 0;
  for (int i = 0; i < info->dlpi_phnum; ++i) {
    const ElfW(Phdr)& ph = info->dlpi_phdr[i];
    if (ph.p_type == PT_LOAD && ph.p_memsz != 0 && (ph.p_flags & PF_W) != 0)
      g_ldso_rw = range{trunc_pg(info->dlpi_addr + ph.p_vaddr), round_pg(info->dlpi_addr + ph.p_vaddr + ph.p_memsz)};
  }
  return 1;
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

}  // namespace

void rtld_snapshot() {
  dl_iterate_phdr(find_ldso_rw, reinterpret_cast<void*>(getauxval(AT_BASE)));
  if (g_ldso_rw.hi != 0) add_range(g_ldso_rw.lo, g_ldso_rw.hi);
  g_nmappings = 0;
  char buf[4096];  // on the booting thread's stack: nothing is mapped before the region
  (void)rt::maps_stream(
      buf, sizeof buf,
      [](const rt::maps_line& m, void*) {
        ++g_nmappings;
        const bool anon = m.inode == 0 && m.path_len == 0;
        if (anon && (m.prot & (PROT_READ | PROT_WRITE)) == (PROT_READ | PROT_WRITE) && !m.shared) add_minus_spans(m.lo, m.hi);
      },
      nullptr);
}

bool rtld_owns(const void* p, std::size_t* bytes_to_end) {
  auto a = reinterpret_cast<std::uintptr_t>(p);
  for (std::size_t i = 0; i < g_nranges; ++i) {
    if (a >= g_ranges[i].lo && a < g_ranges[i].hi) {
      if (bytes_to_end != nullptr) *bytes_to_end = g_ranges[i].hi - a;
      return true;
    }
  }
  return false;
}

std::size_t rtld_range_count() { return g_nranges; }

std::size_t rtld_mapping_count() { return g_nmappings; }

}  // namespace vmrt::shim
