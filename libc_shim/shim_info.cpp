// shim_info.cpp — glibc's malloc introspection and tuning calls under vmrt.
//
// What each returns under vmrt (kmem has size-class buckets, no arenas, no
// top chunk and no mmap threshold):
//   mallopt(param, value)  1 ("success", value ignored) for every parameter glibc
//                          knows (M_MXFAST, M_TRIM_THRESHOLD, M_TOP_PAD,
//                          M_MMAP_THRESHOLD, M_MMAP_MAX, M_CHECK_ACTION,
//                          M_PERTURB, M_ARENA_TEST, M_ARENA_MAX); 0 for others.
//   mallinfo2()            arena    = uordblks + fordblks
//                          ordblks  = free elements on kmem's bucket free lists
//                          uordblks = bytes in use, all kmem types (vmstat -m MemUse)
//                          fordblks = bytes free in bucket free lists
//                          usmblks  = high water of bytes in use (sum of maxused)
//                          smblks, hblks, hblkhd, fsmblks, keepcost = 0
//   mallinfo()             the same, each field truncated to int
//   malloc_stats()         the vmstat -m report and the shim counters on stderr
//   malloc_trim(pad)       runtime_trim() (kmem pages, then cached frames): 1 if memory went back to the host
//   malloc_info(0, fp)     an XML document like glibc's: one <size> per kmem
//                          bucket, totals; 0.  options != 0: -1 + EINVAL
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <malloc.h>

#include "libc_shim/shim_alloc.h"
#include "runtime/boot.h"
#include "vm/vm_out.h"

namespace shim = vmrt::shim;
namespace kmem = vmrt::kmem;

#define VMRT_EXPORT extern "C" __attribute__((visibility("default")))

namespace {

struct totals {
  std::size_t inuse_bytes = 0, free_bytes = 0, free_blocks = 0, max_bytes = 0;
};

totals gather() {
  totals t;
  if (!shim::ensure_booted()) return t;
  for (int i = 0; i < kmem::M_LAST; ++i) {
    kmem::type_stats ts{};
    if (kmem::get_type_stats(static_cast<kmem::malloc_type>(i), &ts)) {
      t.inuse_bytes += ts.memuse;
      t.max_bytes += ts.maxused;
    }
  }
  for (std::size_t i = 0; i < kmem::bucket_count(); ++i) {
    kmem::bucket_stats bs{};
    if (kmem::get_bucket_stats(i, &bs)) {
      t.free_blocks += bs.totalfree;
      t.free_bytes += bs.totalfree * bs.size;
    }
  }
  return t;
}

}  // namespace

VMRT_EXPORT int mallopt(int param, int /*value*/) noexcept {
  switch (param) {
    case M_MXFAST: case M_TRIM_THRESHOLD: case M_TOP_PAD: case M_MMAP_THRESHOLD: case M_MMAP_MAX:
    case M_CHECK_ACTION: case M_PERTURB: case M_ARENA_TEST: case M_ARENA_MAX:
      return 1;
    default:
      return 0;
  }
}

VMRT_EXPORT struct mallinfo2 mallinfo2() noexcept {
  totals t = gather();
  struct mallinfo2 m;
  std::memset(&m, 0, sizeof m);
  m.arena = t.inuse_bytes + t.free_bytes;
  m.ordblks = t.free_blocks;
  m.usmblks = t.max_bytes;
  m.uordblks = t.inuse_bytes;
  m.fordblks = t.free_bytes;
  return m;
}

VMRT_EXPORT struct mallinfo mallinfo() noexcept {
  struct mallinfo2 w = mallinfo2();
  struct mallinfo m;
  std::memset(&m, 0, sizeof m);
  m.arena = static_cast<int>(w.arena);
  m.ordblks = static_cast<int>(w.ordblks);
  m.usmblks = static_cast<int>(w.usmblks);
  m.uordblks = static_cast<int>(w.uordblks);
  m.fordblks = static_cast<int>(w.fordblks);
  return m;
}

VMRT_EXPORT void malloc_stats() noexcept {
  if (!shim::ensure_booted()) return;
  shim::report_now(2);
}

VMRT_EXPORT int malloc_trim(std::size_t /*pad*/) noexcept {
  if (!shim::ensure_booted()) return 0;
  return vmrt::runtime_trim() > 0 ? 1 : 0;
}

VMRT_EXPORT int malloc_info(int options, FILE* fp) noexcept {
  if (options != 0) {
    errno = EINVAL;
    return -1;
  }
  if (fp == nullptr || !shim::ensure_booted()) return -1;
  // Formatted line by line into a stack buffer, written with fwrite (the
  // program's FILE; we hold no lock, so stdio may call malloc safely).
  char text[512];
  vmrt::vm_out b(text, sizeof text);
  b.str("<malloc version=\"vmrt-kmem-1\">\n<heap nr=\"0\">\n<sizes>\n");
  std::fwrite(b.data(), 1, b.len(), fp);
  b.clear();
  for (std::size_t i = 0; i < kmem::bucket_count(); ++i) {
    kmem::bucket_stats bs{};
    if (!kmem::get_bucket_stats(i, &bs) || bs.total == 0) continue;
    b.str("  <size from=\"").u(bs.size).str("\" to=\"").u(bs.size).str("\" total=\"").u(bs.totalfree)
        .str("\" count=\"").u(bs.total).str("\" calls=\"").u(bs.calls).str("\"/>\n");
    std::fwrite(b.data(), 1, b.len(), fp);
    b.clear();
  }
  totals t = gather();
  b.str("</sizes>\n<total type=\"fast\" count=\"0\" size=\"0\"/>\n<total type=\"rest\" count=\"")
      .u(t.free_blocks).str("\" size=\"").u(t.free_bytes).str("\"/>\n<system type=\"current\" size=\"")
      .u(t.inuse_bytes + t.free_bytes).str("\"/>\n</heap>\n</malloc>\n");
  std::fwrite(b.data(), 1, b.len(), fp);
  return 0;
}
