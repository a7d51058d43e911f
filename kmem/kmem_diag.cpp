// kmem_diag.cpp — diagnostics (kmem_config.diagnostics) and misuse messages.
//
// With diagnostics, a byte per 16-byte granule of the arena (mmap'd with
// MAP_NORESERVE: untouched parts cost nothing) records, for each block start,
// 0x80|type while the block is allocated and the last owner's type once freed.
// Freed bucket blocks are filled with kFreePattern past their two link words; a
// block leaving a free list must still hold the pattern and its free marker, or
// it was written after free (KMEM_CORRUPT, reported through the hook, block
// dropped).  The state byte makes double frees and wrong-type frees exact.
#include <atomic>
#include <cstring>

#include "kmem/kmem_first_chunk.h"
#include "kmem/kmem_internal.h"
#include "vm/vm_out.h"

namespace vmrt::kmem::detail {
namespace {

inline constexpr std::uint64_t kFreePattern = 0xdeadc0dedeadc0deull;

void default_hook(const kmem_report& r) {
  vm_fd_out<256> o(2);
  o.str(r.message).ch('\n');
}

std::atomic<report_hook> g_hook{nullptr};

void call_hook(kmem_status st, std::uintptr_t a, std::size_t size, malloc_type t, std::size_t offset,
               const char* msg) {
  kmem_report r{st, reinterpret_cast<const void*>(a), size, t, offset, msg};
  report_hook h = g_hook.load(std::memory_order_acquire);
  (h != nullptr ? h : default_hook)(r);
}

malloc_type diag_type_at(std::uintptr_t a) {
  if (!g.diag) return M_LAST;
  return static_cast<malloc_type>(g.diag_state[(a - g.base) >> kMinBucket] & 0x7f);
}

}  // namespace

void diag_on_free(std::uintptr_t a, std::size_t size, malloc_type t) {
  std::uint64_t* w = reinterpret_cast<std::uint64_t*>(a);
  for (std::size_t i = 2; i < size / 8; ++i) w[i] = kFreePattern;
  w[0] = kFreePattern;
  g.diag_state[(a - g.base) >> kMinBucket] = static_cast<std::uint8_t>(t);
}

void diag_on_alloc(std::uintptr_t a, malloc_type t) {
  g.diag_state[(a - g.base) >> kMinBucket] = static_cast<std::uint8_t>(0x80 | t);
}

bool diag_check_reuse(std::uintptr_t a, std::size_t size) {
  const std::uint64_t* w = reinterpret_cast<const std::uint64_t*>(a);
  std::size_t bad = size;
  if (!is_marked(a)) bad = 8;
  for (std::size_t i = 2; bad == size && i < size / 8; ++i)
    if (w[i] != kFreePattern) bad = i * 8;
  if (bad == size) return true;
  g.corrupt_detected.fetch_add(1, std::memory_order_relaxed);
  malloc_type t = diag_type_at(a);
  char buf[256];
  vm_out f(buf, sizeof buf);
  f.str("kmem: write after free: block ");
  f.hex(a);
  f.str(" (");
  f.u(size);
  f.str("-byte bucket, last type ");
  f.str(type_name(t));
  f.str(") modified at offset ");
  f.u(bad);
  f.str("; block taken out of use");
  call_hook(KMEM_CORRUPT, a, size, t, bad, f.c_str());
  // Keep it marked allocated so a later free of it is not mistaken for valid.
  g.diag_state[(a - g.base) >> kMinBucket] = static_cast<std::uint8_t>(0x80 | M_FREE);
  return false;
}

void report(kmem_status st, const void* addr, malloc_type given) {
  char buf[256];
  kmem::describe(addr, st, buf, sizeof buf, given);
  block_info bi{};
  kmem::get_block_info(addr, &bi);
  call_hook(st, reinterpret_cast<std::uintptr_t>(addr), bi.size, bi.type, 0, buf);
}

}  // namespace vmrt::kmem::detail

namespace vmrt::kmem {
using namespace detail;

report_hook set_report_hook(report_hook hook) { return g_hook.exchange(hook, std::memory_order_acq_rel); }

bool get_block_info(const void* addr, block_info* out) {
  *out = block_info{0, 0, false, false, M_LAST};
  std::uintptr_t a = reinterpret_cast<std::uintptr_t>(addr);
  if (!kmem_initialized() || a - g.base >= g.size) return false;
  std::uint32_t pg = page_of(a);
  // Walk back to the page that starts the block (bounded: bucket clusters are
  // at most MAXALLOCSAVE; large blocks are searched up to 16 MiB back).
  const std::uint32_t max_back = 4096;
  for (std::uint32_t back = 0; back <= max_back && back <= pg; ++back) {
    const kmemusage& ku = g.usage[pg - back];
    const std::uintptr_t pa = page_addr(pg - back);
    if (page_code(pg - back) == kFirstCode) {
      // The first chunk: its granule table names the class of each slot.
      std::uintptr_t start;
      bool handed_out;
      const unsigned cls = back == 0 ? first_block_of(a, &start, &handed_out) : 0;
      if (cls == 0) return false;  // in no slot (no block runs into the chunk from below)
      out->start = start;
      out->size = bucket_size(cls);
      out->allocated = handed_out && !is_marked(start);
      return true;
    }
    if (const unsigned code = page_code(pg - back); code >= kMinBucket) {
      // A cluster's first page (its class) or a further page of one (a tail code).
      const unsigned cls = kCodes.cls[code];
      const std::uintptr_t cl = page_addr(cluster_first_page(pg - back, code));
      const std::size_t size = bucket_size(cls);
      if (a >= cl + (std::size_t{pages_per_cluster(cls)} << kPageShift)) return false;
      out->start = cl + (a - cl) / size * size;
      out->size = size;
      if (g.diag) {
        std::uint8_t s = g.diag_state[(out->start - g.base) >> kMinBucket];
        out->allocated = (s & 0x80) != 0;
        out->type = static_cast<malloc_type>(s & 0x7f);
      } else {
        out->allocated = !is_marked(out->start);
      }
      return true;
    }
    if ((ku.ku_indx == KU_LARGE || ku.ku_indx == KU_FREED_LARGE) && ku.ku_list == KL_MEDIUM) {
      // A medium block starts in this page; before its start, a is in the block (or free
      // space) before it.
      std::uintptr_t start = pa + (std::uintptr_t{ku.ku_freehead} << kGranShift);
      if (a < start) continue;
      std::size_t size = std::size_t{ku.ku_pagecnt} << kGranShift;
      if (ku.ku_indx == KU_FREED_LARGE) {
        if (a != start) return false;
      } else if (a >= start + size) {
        return false;
      }
      out->start = start;
      out->size = ku.ku_indx == KU_LARGE ? size : 0;
      out->large = true;
      out->allocated = ku.ku_indx == KU_LARGE;
      out->type = g.diag ? diag_type_at(start) : M_LAST;
      return true;
    }
    if (ku.ku_indx == KU_LARGE) {
      if (a >= pa + (std::size_t{ku.ku_pagecnt} << kPageShift)) return false;
      out->start = pa;
      out->size = std::size_t{ku.ku_pagecnt} << kPageShift;
      out->large = true;
      out->allocated = true;
      out->type = diag_type_at(pa);
      if (!g.diag) out->type = M_LAST;
      return true;
    }
    if (ku.ku_indx == KU_FREED_LARGE && back == 0 && (a & kPageMask) == 0) {
      out->start = pa;
      out->large = true;
      out->type = diag_type_at(pa);
      return true;
    }
    if (ku.ku_indx == KU_CACHED) return false;
  }
  return false;
}

std::size_t describe(const void* addr, kmem_status status, char* buf, std::size_t len, malloc_type given) {
  if (buf == nullptr || len == 0) return 0;
  vm_out f(buf, len);
  std::uintptr_t a = reinterpret_cast<std::uintptr_t>(addr);
  block_info bi{};
  bool known = get_block_info(addr, &bi);
  auto block_desc = [&]() {
    f.str(" (");
    if (bi.large) {
      f.str("large block");
      if (bi.size != 0) {
        f.str(" of ");
        f.u(bi.size);
        f.str(" bytes");
      }
    } else {
      f.u(bi.size);
      f.str("-byte bucket");
    }
    f.str(", type ");
    f.str(bi.type < M_LAST ? type_name(bi.type) : "unknown");
    f.ch(')');
  };
  f.str("kmem: ");
  switch (status) {
    case KMEM_OK:
      f.str("block ");
      f.hex(a);
      if (known) block_desc();
      f.str(" is fine");
      break;
    case KMEM_FOREIGN:
      f.str("free(): invalid pointer ");
      f.hex(a);
      f.str(": not in the kmem arena [");
      f.hex(g.base);
      f.str(", ");
      f.hex(g.base + g.size);
      f.ch(')');
      break;
    case KMEM_NOT_BLOCK:
      f.str("free(): invalid pointer ");
      f.hex(a);
      if (known && bi.start != 0) {
        f.str(": ");
        f.u(a - bi.start);
        f.str(" bytes into block ");
        f.hex(bi.start);
        block_desc();
      } else {
        f.str(": not in any kmem block");
      }
      break;
    case KMEM_DOUBLE_FREE:
      f.str("free(): double free of ");
      f.hex(a);
      if (known) block_desc();
      break;
    case KMEM_WRONG_TYPE:
      f.str("free(): block ");
      f.hex(a);
      if (known) block_desc();
      f.str(" freed as type ");
      f.str(given < M_LAST ? type_name(given) : "unknown");
      break;
    case KMEM_CORRUPT:
      f.str("malloc(): block ");
      f.hex(a);
      if (known) block_desc();
      f.str(" was modified after free");
      break;
    case KMEM_LIMIT:
      f.str("malloc(): type ");
      f.str(given < M_LAST ? type_name(given) : "unknown");
      f.str(" is over its limit");
      break;
    case KMEM_NOMEM:
      f.str("malloc(): the kmem arena is exhausted");
      break;
    case KMEM_INVALID:
      f.str("invalid argument");
      break;
  }
  return f.len();
}

}  // namespace vmrt::kmem
