// kmem_vmstat.cpp — `vmstat -m`: the 4.4BSD report of kernel malloc statistics.
//
// Three tables, laid out as 4.4BSD's vmstat prints them: by bucket size, the
// types using each bucket size, and by type; then the totals and kmem's own
// counters.  Written with write(2) through a stack buffer: no malloc, so it is
// safe at exit and from inside the shim.
#include <cstring>
#include <initializer_list>

#include "kmem/kmem_internal.h"
#include "vm/vm_out.h"

namespace vmrt::kmem {
using namespace detail;

namespace {

// One number of a table row: right-aligned in `width` (0: no padding), then `after`.
struct cell {
  std::uint64_t value;
  int width;
  const char* after;
};

void put_cells(vm_out& o, std::initializer_list<cell> cells) {
  for (const cell& c : cells) o.u(c.value, c.width).str(c.after);
}

std::uint64_t kib(std::uint64_t bytes) { return (bytes + 1023) / 1024; }

}  // namespace

void report_vmstat_m(int fd) {
  vm_fd_out<2048> o(fd);
  if (!kmem_initialized()) {
    o.str("kmem: not initialised\n");
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
  o.str("Memory statistics by bucket size\n");
  o.str("    Size   In Use   Free   Requests  HighWater  Couldfree\n");
  for (unsigned i = kMinBucket; i <= kMaxBucket; ++i) {
    const bucket_stats& b = bs[i];
    if (b.calls == 0) continue;
    put_cells(o, {{b.size, 8, " "},
                  {b.total >= b.totalfree ? b.total - b.totalfree : 0, 8, " "},
                  {b.totalfree, 6, " "},
                  {b.calls, 10, " "},
                  {b.highwat, 7, " "},
                  {b.couldfree, 10, "\n"}});
    totfree += b.size * b.totalfree;
  }
  if (!any) o.str("(no bucket requests yet)\n");

  o.str("\nMemory usage type by bucket size\n");
  o.str("    Size  Type(s)\n");
  for (unsigned i = kMinBucket; i <= kMaxBucket; ++i) {
    if (bs[i].calls == 0) continue;
    bool first = true;
    std::size_t len = 8;
    for (unsigned t = 0; t < M_LAST; ++t) {
      if (ts[t].calls == 0 || (ts[t].size_mask & (std::uint32_t{1} << kClasses.band[i])) == 0) continue;
      const char* name = type_name(static_cast<malloc_type>(t));
      len += 2 + std::strlen(name);
      if (first) o.u(bucket_size(i), 8).str("  ").str(name);
      else o.ch(',');
      if (len >= 80) {
        o.str("\n\t ");
        len = 10 + std::strlen(name);
      }
      if (!first) o.ch(' ').str(name);
      first = false;
    }
    o.ch('\n');
  }

  o.str("\nMemory statistics by type                           Type  Kern\n");
  o.str("          Type  InUse MemUse HighUse  Limit Requests Limit Limit Size(s)\n");
  for (unsigned t = 0; t < M_LAST; ++t) {
    const type_stats& s = ts[t];
    if (s.calls == 0) continue;
    // A space after the name: a six-digit InUse must not run into it ("libc567950").
    o.str_r(type_name(static_cast<malloc_type>(t)), 14).ch(' ');
    put_cells(o, {{s.inuse, 6, ""},
                  {kib(s.memuse), 6, "K"},
                  {kib(s.maxused), 7, "K"},
                  {kib(s.limit), 6, "K"},
                  {s.calls, 9, ""},
                  {s.limblocks, 5, ""},
                  {s.mapblocks, 6, ""}});
    bool first = true;
    for (unsigned i = kMinBucket; i < 32; ++i) {
      if ((s.size_mask & (std::uint32_t{1} << i)) == 0) continue;
      o.str(first ? "  " : ",");
      if (i == 31) o.str(">=2G");
      else o.u(std::uint64_t{1} << i);
      first = false;
    }
    o.ch('\n');
    totuse += s.memuse;
    totreq += s.calls;
  }
  o.str("\nMemory Totals:  In Use    Free    Requests\n");
  o.str("              ");
  put_cells(o, {{kib(totuse), 7, "K "}, {kib(totfree), 6, "K    "}, {totreq, 8, "\n"}});

  kmem_counters c{};
  get_kmem_counters(&c);
  o.str("\nkmem: MAXALLOCSAVE ");
  put_cells(o, {{kMaxAllocSave, 0, ", pages from source "},
                {c.pages_from_source, 0, ", page cache "},
                {c.page_cache_pages, 0, " (pool "},
                {c.pool_pages, 0, ", clusters carved from it "},
                {c.pool_reused, 0, "), large blocks "},
                {c.large_blocks, 0, " ("},
                {c.large_pages, 0, " pages), medium blocks "},
                {c.medium_blocks, 0, " ("},
                {kib(c.medium_bytes), 0, "K in "},
                {c.medium_spans, 0, " spans)\n"}});
  o.str("kmem: large cache ");
  put_cells(o, {{c.large_cache_pages, 0, " pages in "},
                {c.large_cache_runs, 0, " runs, "},
                {c.large_cache_hits, 0, " mallocs served; "},
                {c.large_cache_sweeps, 0, " sweeps gave back "},
                {c.large_cache_discarded, 0, " resident pages of sparse runs\n"}});
  o.str("kmem: memory shortages of the page source ");
  put_cells(o, {{c.shortage_releases, 0, " seen, "},
                {c.shortage_pages, 0, " pages kept for reuse given back at them\n"}});
  o.str("kmem: thread caches ");
  put_cells(o, {{c.live_thread_caches, 0, " live, "},
                {c.exited_thread_caches, 0, " exited; magazines "},
                {c.magazines, 0, ", depot exchanges "},
                {c.depot_exchanges, 0, "; refused frees "},
                {c.bad_frees, 0, ", corrupt blocks "},
                {c.corrupt_detected, 0, ", trims "},
                {c.trims, 0, "\n"}});
}

}  // namespace vmrt::kmem
