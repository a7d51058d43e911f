// kmem_vmstat.cpp — `vmstat -m`: the 4.4BSD report of kernel malloc statistics.
//
// Three tables, laid out as 4.4BSD's vmstat prints them: by bucket size, the
// types using each bucket size, and by type; then the totals and kmem's own
// counters.  Written with write(2) through a stack buffer: no malloc, so it is
// safe at exit and from inside the shim.
#include <cstring>

#include "kmem/kmem_fmt.h"
#include "kmem/kmem_internal.h"

namespace vmrt::kmem {
using namespace detail;

namespace {

// Flushes the buffer when it is nearly full.
struct out_stream {
  int fd;
  char buf[2048];
  fmt_buf f{buf, sizeof buf};
  explicit out_stream(int d) : fd(d) {}
  void flush() {
    write_all(fd, f.buf, f.len);
    f.len = 0;
  }
  fmt_buf& line() {
    if (f.len > sizeof buf - 256) flush();
    return f;
  }
  ~out_stream() { flush(); }
};

std::uint64_t kib(std::uint64_t bytes) { return (bytes + 1023) / 1024; }

}  // namespace

void report_vmstat_m(int fd) {
  out_stream o(fd);
  if (!kmem_initialized()) {
    o.line().str("kmem: not initialised\n");
    return;
  }
  bucket_stats bs[kNumIndx];
  type_stats ts[M_LAST];
  bool any = false;
  for (unsigned i = kMinBucket; i <= kMaxBucket; ++i) {
    get_bucket_stats(i, &bs[i]);
    any |= bs[i].calls != 0;
  }
  for (unsigned t = 0; t < M_LAST; ++t) get_type_stats(static_cast<malloc_type>(t), &ts[t]);

  std::uint64_t totfree = 0, totuse = 0, totreq = 0;
  o.line().str("Memory statistics by bucket size\n");
  o.line().str("    Size   In Use   Free   Requests  HighWater  Couldfree\n");
  for (unsigned i = kMinBucket; i <= kMaxBucket; ++i) {
    const bucket_stats& b = bs[i];
    if (b.calls == 0) continue;
    fmt_buf& f = o.line();
    f.u64(b.size, 8);
    f.ch(' ');
    f.u64(b.total >= b.totalfree ? b.total - b.totalfree : 0, 8);
    f.ch(' ');
    f.u64(b.totalfree, 6);
    f.ch(' ');
    f.u64(b.calls, 10);
    f.ch(' ');
    f.u64(b.highwat, 7);
    f.ch(' ');
    f.u64(b.couldfree, 10);
    f.ch('\n');
    totfree += b.size * b.totalfree;
  }
  if (!any) o.line().str("(no bucket requests yet)\n");

  o.line().str("\nMemory usage type by bucket size\n");
  o.line().str("    Size  Type(s)\n");
  for (unsigned i = kMinBucket; i <= kMaxBucket; ++i) {
    if (bs[i].calls == 0) continue;
    bool first = true;
    std::size_t len = 8;
    for (unsigned t = 0; t < M_LAST; ++t) {
      if (ts[t].calls == 0 || (ts[t].size_mask & (std::uint32_t{1} << i)) == 0) continue;
      const char* name = type_name(static_cast<malloc_type>(t));
      fmt_buf& f = o.line();
      len += 2 + std::strlen(name);
      if (first) {
        f.u64(bucket_size(i), 8);
        f.str("  ");
        f.str(name);
      } else {
        f.ch(',');
      }
      if (len >= 80) {
        f.str("\n\t ");
        len = 10 + std::strlen(name);
      }
      if (!first) {
        f.ch(' ');
        f.str(name);
      }
      first = false;
    }
    o.line().ch('\n');
  }

  o.line().str("\nMemory statistics by type                           Type  Kern\n");
  o.line().str("          Type InUse MemUse HighUse  Limit Requests Limit Limit Size(s)\n");
  for (unsigned t = 0; t < M_LAST; ++t) {
    const type_stats& s = ts[t];
    if (s.calls == 0) continue;
    fmt_buf& f = o.line();
    f.str_w(type_name(static_cast<malloc_type>(t)), 14);
    f.u64(s.inuse, 6);
    f.u64(kib(s.memuse), 6);
    f.ch('K');
    f.u64(kib(s.maxused), 7);
    f.ch('K');
    f.u64(kib(s.limit), 6);
    f.ch('K');
    f.u64(s.calls, 9);
    f.u64(s.limblocks, 5);
    f.u64(s.mapblocks, 6);
    bool first = true;
    for (unsigned i = kMinBucket; i < 32; ++i) {
      if ((s.size_mask & (std::uint32_t{1} << i)) == 0) continue;
      f.str(first ? "  " : ",");
      if (i == 31) f.str(">=2G");
      else f.u64(std::uint64_t{1} << i);
      first = false;
    }
    f.ch('\n');
    totuse += s.memuse;
    totreq += s.calls;
  }
  o.line().str("\nMemory Totals:  In Use    Free    Requests\n");
  {
    fmt_buf& f = o.line();
    f.str("              ");
    f.u64(kib(totuse), 7);
    f.str("K ");
    f.u64(kib(totfree), 6);
    f.str("K    ");
    f.u64(totreq, 8);
    f.ch('\n');
  }

  kmem_counters c{};
  get_kmem_counters(&c);
  fmt_buf& f = o.line();
  f.str("\nkmem: MAXALLOCSAVE ");
  f.u64(kMaxAllocSave);
  f.str(", pages from source ");
  f.u64(c.pages_from_source);
  f.str(", page cache ");
  f.u64(c.page_cache_pages);
  f.str(", large blocks ");
  f.u64(c.large_blocks);
  f.str(" (");
  f.u64(c.large_pages);
  f.str(" pages)\n");
  fmt_buf& f2 = o.line();
  f2.str("kmem: thread caches ");
  f2.u64(c.live_thread_caches);
  f2.str(" live, ");
  f2.u64(c.exited_thread_caches);
  f2.str(" exited; magazines ");
  f2.u64(c.magazines);
  f2.str(", depot exchanges ");
  f2.u64(c.depot_exchanges);
  f2.str("; refused frees ");
  f2.u64(c.bad_frees);
  f2.str(", corrupt blocks ");
  f2.u64(c.corrupt_detected);
  f2.str(", trims ");
  f2.u64(c.trims);
  f2.ch('\n');
}

}  // namespace vmrt::kmem
