// guest_libc.cpp — the guest libc subset: what a pure-computation C library imports
// (issue 10).  Host functions, called by guest code on the guest stack.
//
// - malloc family: the guest heap (guest.h: power-of-two buckets from 16 B to 64 KiB,
//   bumped from the heap area, the 4.4BSD malloc shape of McKusick et al., chapter
//   "Memory Management in the Kernel"; larger blocks mapped alone in the guest's
//   vmspace).  Bounded by the guest's memory_limit: past it malloc returns NULL.  Block
//   headers are guest memory: a free() of a pointer the heap did not give, or a header
//   the guest overwrote, ends the call with VMRT_GUEST_HEAP_CORRUPTED.
// - mmap/munmap: anonymous mappings of the guest's own vmspace, counted in the limit;
//   brk/sbrk: the heap area's break, shared with malloc (it shrinks no lower than malloc's
//   blocks).
// - __tls_get_addr: the guest's thread-local variables (one block per guest).
// - mem*, str*: the C library's, after checking that the ranges they write lie in the
//   guest's window (an out-of-window destination ends the call: VMRT_GUEST_WILD_ACCESS).
// - abort, __stack_chk_fail, __assert_fail: end the call with VMRT_GUEST_ABORT.
// - libm functions: the host's (pure functions).
#include "runtime/guest.h"

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <sys/mman.h>

#include "vm/vm_types.h"

namespace vmrt::guest {

namespace {

constexpr std::uint64_t kMagic = 0x6775657374686470ULL;  // "guesthdp"
constexpr std::uint64_t kLargeBucket = 0xff;

// The header before every block (16 bytes: keeps 16-byte alignment).
struct block_hdr {
  std::uint64_t magic_bucket;  // kMagic ^ bucket
  std::uint64_t size;          // large blocks: mapped bytes; small: bucket size
};
static_assert(sizeof(block_hdr) == 16);

vmrt_guest* cur_guest() {
  call_ctx* c = current();
  return c != nullptr ? c->g : nullptr;
}

// The heap is broken: end the call (from guest code), or report NULL/ignore (from the host).
void corrupted(const void* p) {
  if (current() != nullptr) escape(VMRT_GUEST_HEAP_CORRUPTED, p);
}

unsigned bucket_of(std::size_t total) {
  unsigned b = 0;
  std::size_t s = kHeapMinBlock;
  while (s < total) {
    s <<= 1;
    ++b;
  }
  return b;
}

bool in_heap(const vmrt_guest* g, std::uintptr_t p, std::size_t n) { return p >= g->hp.lo && p < g->hp.brk && n <= g->hp.brk - p; }
bool in_window(const vmrt_guest* g, std::uintptr_t p, std::size_t n) {
  return p >= g->win_lo && p < g->win_hi && n <= g->win_hi - p;
}

// A destination the guest libc writes: inside the guest's window, or the call ends.
void check_dst(const void* p, std::size_t n) {
  vmrt_guest* g = cur_guest();
  if (g != nullptr && n != 0 && !in_window(g, reinterpret_cast<std::uintptr_t>(p), n))
    escape(VMRT_GUEST_WILD_ACCESS, p);
}

}  // namespace

std::size_t memory_used(const vmrt_guest* g) { return (g->hp.brk - g->hp.lo) + g->hp.mmap_bytes; }

// Move the heap's break up by n bytes (a multiple of 16) within the memory limit, making
// the pages writable as needed: the old break, or 0.
std::uintptr_t heap_grow(vmrt_guest* g, std::size_t n) {
  if (memory_used(g) + n > g->opt.memory_limit || g->hp.hi - g->hp.brk < n) return 0;
  if (g->hp.brk + n > g->hp.committed) {
    std::uintptr_t to = (g->hp.brk + n + kHeapCommit - 1) & ~(kHeapCommit - 1);
    if (to > g->hp.hi) to = g->hp.hi;
    if (vmrt_mprotect(g->vs, reinterpret_cast<void*>(g->hp.committed), to - g->hp.committed, PROT_READ | PROT_WRITE) !=
        0)
      return 0;
    g->hp.committed = to;
  }
  std::uintptr_t old = g->hp.brk;
  g->hp.brk += n;
  return old;
}

void* heap_malloc(vmrt_guest* g, std::size_t n) {
  if (g == nullptr || g->vs == nullptr || n > g->opt.memory_limit) return nullptr;
  std::size_t total = n + sizeof(block_hdr);
  if (total <= kHeapMaxSmall) {
    unsigned b = bucket_of(total);
    std::size_t bsize = kHeapMinBlock << b;
    std::uintptr_t blk = g->hp.free_head[b];
    if (blk != 0) {
      if (!in_heap(g, blk, bsize) || (blk - g->hp.lo) % kHeapMinBlock != 0) {
        corrupted(reinterpret_cast<void*>(blk));
        return nullptr;
      }
      g->hp.free_head[b] = *reinterpret_cast<std::uintptr_t*>(blk + sizeof(block_hdr));
    } else {
      blk = heap_grow(g, bsize);
      if (blk == 0) return nullptr;
      g->hp.malloc_top = g->hp.brk;
    }
    block_hdr* h = reinterpret_cast<block_hdr*>(blk);
    h->magic_bucket = kMagic ^ b;
    h->size = bsize;
    return h + 1;
  }
  std::size_t len = round_page(total);
  if (memory_used(g) + len > g->opt.memory_limit) return nullptr;
  void* m = vmrt_mmap(g->vs, nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (m == VMRT_MAP_FAILED) return nullptr;
  g->hp.mmap_bytes += len;
  block_hdr* h = static_cast<block_hdr*>(m);
  h->magic_bucket = kMagic ^ kLargeBucket;
  h->size = len;
  return h + 1;
}

// The usable size of a block, 0 if p is not one of the heap's (after corrupted()).
static std::size_t block_size(vmrt_guest* g, void* p, std::uint64_t* bucket) {
  std::uintptr_t a = reinterpret_cast<std::uintptr_t>(p);
  if (a % 16 != 0 || !in_window(g, a - sizeof(block_hdr), sizeof(block_hdr))) {
    corrupted(p);
    return 0;
  }
  block_hdr* h = reinterpret_cast<block_hdr*>(a) - 1;
  std::uint64_t b = h->magic_bucket ^ kMagic;
  if (b == kLargeBucket) {
    if (h->size < PAGE_SIZE || h->size % PAGE_SIZE != 0 || (a - sizeof(block_hdr)) % PAGE_SIZE != 0 ||
        !in_window(g, a - sizeof(block_hdr), h->size)) {
      corrupted(p);
      return 0;
    }
  } else if (b >= kHeapBuckets || h->size != (kHeapMinBlock << b) || !in_heap(g, a - sizeof(block_hdr), h->size)) {
    corrupted(p);
    return 0;
  }
  *bucket = b;
  return h->size - sizeof(block_hdr);
}

void heap_free(vmrt_guest* g, void* p) {
  if (g == nullptr || p == nullptr) return;
  std::uint64_t b;
  if (block_size(g, p, &b) == 0) return;
  block_hdr* h = static_cast<block_hdr*>(p) - 1;
  if (b == kLargeBucket) {
    std::size_t len = h->size;
    h->magic_bucket = 0;
    vmrt_munmap(g->vs, h, len);
    g->hp.mmap_bytes -= len <= g->hp.mmap_bytes ? len : g->hp.mmap_bytes;
    return;
  }
  h->magic_bucket = 0;  // a second free is caught
  *reinterpret_cast<std::uintptr_t*>(h + 1) = g->hp.free_head[b];
  g->hp.free_head[b] = reinterpret_cast<std::uintptr_t>(h);
}

namespace {

// ---- the imports ----------------------------------------------------------------------
// ENTRY(): an import that may end the call records where the guest called it from (the
// trap then names the guest's instruction, not vmrt's).
#define ENTRY()                                                        \
  do {                                                                 \
    if (call_ctx* c_ = current()) c_->import_ra = __builtin_return_address(0); \
  } while (0)
extern "C" {

void* vmrt_g_malloc(std::size_t n) {
  ENTRY();
  return heap_malloc(cur_guest(), n);
}
void vmrt_g_free(void* p) {
  ENTRY();
  heap_free(cur_guest(), p);
}
void* vmrt_g_calloc(std::size_t n, std::size_t m) {
  ENTRY();
  if (m != 0 && n > SIZE_MAX / m) return nullptr;
  void* p = heap_malloc(cur_guest(), n * m);
  if (p != nullptr) std::memset(p, 0, n * m);
  return p;
}
void* vmrt_g_realloc(void* p, std::size_t n) {
  ENTRY();
  vmrt_guest* g = cur_guest();
  if (p == nullptr) return heap_malloc(g, n);
  if (n == 0) {
    heap_free(g, p);
    return nullptr;
  }
  std::uint64_t b;
  std::size_t have = block_size(g, p, &b);
  if (have == 0) return nullptr;
  if (n <= have && b != kLargeBucket) return p;
  void* q = heap_malloc(g, n);
  if (q == nullptr) return nullptr;
  std::memcpy(q, p, have < n ? have : n);
  heap_free(g, p);
  return q;
}
void* vmrt_g_aligned_alloc(std::size_t align, std::size_t n) {
  if (align <= 16) return heap_malloc(cur_guest(), n);
  return nullptr;  // larger alignments: not in the subset
}
int vmrt_g_posix_memalign(void** out, std::size_t align, std::size_t n) {
  void* p = vmrt_g_aligned_alloc(align, n);
  if (p == nullptr) return align > 16 ? EINVAL : ENOMEM;
  *out = p;
  return 0;
}

// brk(2) and sbrk(2) over the heap area, shared with malloc (which never gives memory back
// to the break): the break moves in 16-byte steps so malloc's blocks stay aligned; it grows
// within the memory limit and shrinks down to the highest block malloc has carved (below
// that the memory is malloc's).  Whole pages above a lowered break go back (their frames
// are freed: they read as zeros when the break rises over them again).
int vmrt_g_brk(void* addr) {
  vmrt_guest* g = cur_guest();
  if (g == nullptr) return -1;
  std::uintptr_t a = (reinterpret_cast<std::uintptr_t>(addr) + 15) & ~std::uintptr_t{15};
  if (a >= g->hp.brk) return a == g->hp.brk || heap_grow(g, a - g->hp.brk) != 0 ? 0 : (errno = ENOMEM, -1);
  std::uintptr_t floor = g->hp.malloc_top > g->hp.lo ? g->hp.malloc_top : g->hp.lo;
  if (a < floor) {
    errno = ENOMEM;
    return -1;
  }
  std::uintptr_t from = round_page(a), to = round_page(g->hp.brk);
  if (to > from) vmrt_madvise(g->vs, reinterpret_cast<void*>(from), to - from, MADV_DONTNEED);
  g->hp.brk = a;
  return 0;
}
void* vmrt_g_sbrk(std::intptr_t incr) {
  vmrt_guest* g = cur_guest();
  if (g == nullptr) return reinterpret_cast<void*>(-1);
  std::uintptr_t old = g->hp.brk;
  if (incr < 0 && static_cast<std::uintptr_t>(-incr) > old - g->hp.lo) return reinterpret_cast<void*>(-1);
  return vmrt_g_brk(reinterpret_cast<void*>(old + incr)) == 0 ? reinterpret_cast<void*>(old)
                                                              : reinterpret_cast<void*>(-1);
}

// __tls_get_addr(tls_index*): the address of a thread-local variable of the guest (the
// general- and local-dynamic models of the x86-64 TLS ABI; module 1 is the guest, offsets
// index its one TLS block).  Anything else ends the call.
struct tls_index {
  std::uint64_t module, offset;
};
void* vmrt_g_tls_get_addr(tls_index* ti) {
  vmrt_guest* g = cur_guest();
  if (g == nullptr) return nullptr;
  if (!in_window(g, reinterpret_cast<std::uintptr_t>(ti), sizeof *ti) || g->tls_block == 0 || ti->module != 1 ||
      ti->offset >= g->tls_size)
    escape(VMRT_GUEST_BAD_ACCESS, ti);
  return reinterpret_cast<void*>(g->tls_block + ti->offset);
}

void* vmrt_g_mmap(void* addr, std::size_t len, int prot, int flags, int fd, off_t off) {
  vmrt_guest* g = cur_guest();
  if (g == nullptr || (flags & MAP_ANONYMOUS) == 0 || fd != -1 || off != 0 || len == 0) return MAP_FAILED;
  std::size_t rl = round_page(len);
  if (memory_used(g) + rl > g->opt.memory_limit) return MAP_FAILED;
  if ((flags & (MAP_FIXED | MAP_FIXED_NOREPLACE)) != 0 && !in_window(g, reinterpret_cast<std::uintptr_t>(addr), rl))
    return MAP_FAILED;
  void* p = vmrt_mmap(g->vs, addr, rl, prot, flags, -1, 0);
  if (p == VMRT_MAP_FAILED) return MAP_FAILED;
  g->hp.mmap_bytes += rl;
  return p;
}
int vmrt_g_munmap(void* addr, std::size_t len) {
  vmrt_guest* g = cur_guest();
  std::uintptr_t a = reinterpret_cast<std::uintptr_t>(addr);
  std::size_t rl = round_page(len);
  // The guest's own mappings only: never its image, stack or heap area.
  if (g == nullptr || !in_window(g, a, rl) || (a < g->img_hi && a + rl > g->win_lo) ||
      (a < g->hp.hi && a + rl > g->hp.lo) || a + rl > g->guard_lo)
    return -1;
  if (vmrt_munmap(g->vs, addr, rl) != 0) return -1;
  g->hp.mmap_bytes -= rl <= g->hp.mmap_bytes ? rl : g->hp.mmap_bytes;
  return 0;
}

void* vmrt_g_memcpy(void* d, const void* s, std::size_t n) {
  ENTRY();
  check_dst(d, n);
  return std::memcpy(d, s, n);
}
void* vmrt_g_memmove(void* d, const void* s, std::size_t n) {
  ENTRY();
  check_dst(d, n);
  return std::memmove(d, s, n);
}
void* vmrt_g_memset(void* d, int c, std::size_t n) {
  ENTRY();
  check_dst(d, n);
  return std::memset(d, c, n);
}
char* vmrt_g_strcpy(char* d, const char* s) {
  ENTRY();
  check_dst(d, std::strlen(s) + 1);
  return std::strcpy(d, s);
}
char* vmrt_g_strncpy(char* d, const char* s, std::size_t n) {
  ENTRY();
  check_dst(d, n);
  return std::strncpy(d, s, n);
}
char* vmrt_g_strcat(char* d, const char* s) {
  ENTRY();
  check_dst(d, std::strlen(d) + std::strlen(s) + 1);
  return std::strcat(d, s);
}
char* vmrt_g_strdup(const char* s) {
  ENTRY();
  std::size_t n = std::strlen(s) + 1;
  char* p = static_cast<char*>(heap_malloc(cur_guest(), n));
  if (p != nullptr) std::memcpy(p, s, n);
  return p;
}
[[noreturn]] void vmrt_g_abort() {
  ENTRY();
  escape(VMRT_GUEST_ABORT, nullptr);
}
[[noreturn]] void vmrt_g_assert_fail(const char*, const char*, unsigned, const char*) {
  ENTRY();
  escape(VMRT_GUEST_ABORT, nullptr);
}

// Thin wrappers so the table holds plain function addresses (no overload sets).
int vmrt_g_memcmp(const void* a, const void* b, std::size_t n) { return std::memcmp(a, b, n); }
void* vmrt_g_memchr(const void* s, int c, std::size_t n) { return const_cast<void*>(std::memchr(s, c, n)); }
std::size_t vmrt_g_strlen(const char* s) { return std::strlen(s); }
std::size_t vmrt_g_strnlen(const char* s, std::size_t n) { return ::strnlen(s, n); }
int vmrt_g_strcmp(const char* a, const char* b) { return std::strcmp(a, b); }
int vmrt_g_strncmp(const char* a, const char* b, std::size_t n) { return std::strncmp(a, b, n); }
char* vmrt_g_strchr(const char* s, int c) { return const_cast<char*>(std::strchr(s, c)); }
char* vmrt_g_strrchr(const char* s, int c) { return const_cast<char*>(std::strrchr(s, c)); }
char* vmrt_g_strstr(const char* h, const char* n) { return const_cast<char*>(std::strstr(h, n)); }
long vmrt_g_strtol(const char* s, char** end, int base) { return std::strtol(s, end, base); }
unsigned long vmrt_g_strtoul(const char* s, char** end, int base) { return std::strtoul(s, end, base); }
int vmrt_g_atoi(const char* s) { return static_cast<int>(std::strtol(s, nullptr, 10)); }
int vmrt_g_abs(int v) { return v < 0 ? -v : v; }
long vmrt_g_labs(long v) { return v < 0 ? -v : v; }
double vmrt_g_sqrt(double x) { return std::sqrt(x); }
double vmrt_g_fabs(double x) { return std::fabs(x); }
double vmrt_g_floor(double x) { return std::floor(x); }
double vmrt_g_ceil(double x) { return std::ceil(x); }
double vmrt_g_exp(double x) { return std::exp(x); }
double vmrt_g_log(double x) { return std::log(x); }
double vmrt_g_pow(double x, double y) { return std::pow(x, y); }
double vmrt_g_sin(double x) { return std::sin(x); }
double vmrt_g_cos(double x) { return std::cos(x); }
double vmrt_g_fmod(double x, double y) { return std::fmod(x, y); }

}  // extern "C"

struct libc_entry {
  const char* name;
  void* fn;
};
#define E(n, f) {n, reinterpret_cast<void*>(&f)}
const libc_entry kLibc[] = {
    E("malloc", vmrt_g_malloc),   E("free", vmrt_g_free),         E("calloc", vmrt_g_calloc),
    E("realloc", vmrt_g_realloc), E("aligned_alloc", vmrt_g_aligned_alloc), E("posix_memalign", vmrt_g_posix_memalign),
    E("mmap", vmrt_g_mmap),       E("munmap", vmrt_g_munmap),     E("sbrk", vmrt_g_sbrk),
    E("brk", vmrt_g_brk),         E("__tls_get_addr", vmrt_g_tls_get_addr),
    E("memcpy", vmrt_g_memcpy),   E("memmove", vmrt_g_memmove),   E("memset", vmrt_g_memset),
    E("memcmp", vmrt_g_memcmp),   E("memchr", vmrt_g_memchr),     E("bcmp", vmrt_g_memcmp),
    E("strlen", vmrt_g_strlen),   E("strnlen", vmrt_g_strnlen),   E("strcmp", vmrt_g_strcmp),
    E("strncmp", vmrt_g_strncmp), E("strcpy", vmrt_g_strcpy),     E("strncpy", vmrt_g_strncpy),
    E("strcat", vmrt_g_strcat),   E("strchr", vmrt_g_strchr),     E("strrchr", vmrt_g_strrchr),
    E("strstr", vmrt_g_strstr),   E("strdup", vmrt_g_strdup),     E("strtol", vmrt_g_strtol),
    E("strtoul", vmrt_g_strtoul), E("atoi", vmrt_g_atoi),         E("abs", vmrt_g_abs),
    E("labs", vmrt_g_labs),       E("abort", vmrt_g_abort),       E("__stack_chk_fail", vmrt_g_abort),
    E("__assert_fail", vmrt_g_assert_fail),
    E("sqrt", vmrt_g_sqrt),       E("fabs", vmrt_g_fabs),         E("floor", vmrt_g_floor),
    E("ceil", vmrt_g_ceil),       E("exp", vmrt_g_exp),           E("log", vmrt_g_log),
    E("pow", vmrt_g_pow),         E("sin", vmrt_g_sin),           E("cos", vmrt_g_cos),
    E("fmod", vmrt_g_fmod),
};
#undef E

}  // namespace

void* libc_lookup(const char* name) {
  for (const libc_entry& e : kLibc)
    if (std::strcmp(e.name, name) == 0) return e.fn;
  return nullptr;
}

}  // namespace vmrt::guest

using namespace vmrt::guest;

namespace {

// Copy n bytes with guest faults caught: 0, or -1 + EFAULT (range outside g's window, or
// a fault on the way).
int guarded_copy(vmrt_guest* g, void* dst, const void* src, std::size_t n, std::uintptr_t guest_addr) {
  if (g == nullptr || g->vs == nullptr) {
    errno = EINVAL;
    return -1;
  }
  if (n == 0) return 0;
  if (!(guest_addr >= g->win_lo && guest_addr < g->win_hi && n <= g->win_hi - guest_addr)) {
    errno = EFAULT;
    return -1;
  }
  return guarded_memcpy(g, dst, src, n);
}

// errno EBUSY, and v.
template <class T> T busy(T v) {
  errno = EBUSY;
  return v;
}

}  // namespace

extern "C" {

// The host's calls on a forked guest make it the member in its window first (family_enter);
// EBUSY (NULL, -1) while another thread is in its family.
void* vmrt_guest_malloc(vmrt_guest* g, size_t n) {
  if (g == nullptr || !family_enter(g)) return busy<void*>(nullptr);
  void* p = heap_malloc(g, n);
  family_leave(g);
  return p;
}
void vmrt_guest_free(vmrt_guest* g, void* p) {
  if (g == nullptr || !family_enter(g)) return;
  heap_free(g, p);
  family_leave(g);
}
size_t vmrt_guest_memory_used(const vmrt_guest* g) { return g != nullptr ? memory_used(g) : 0; }
int vmrt_guest_copy_in(vmrt_guest* g, void* guest_dst, const void* src, size_t n) {
  if (g == nullptr || !family_enter(g)) return busy(-1);
  int rc = guarded_copy(g, guest_dst, src, n, reinterpret_cast<std::uintptr_t>(guest_dst));
  family_leave(g);
  return rc;
}
int vmrt_guest_copy_out(vmrt_guest* g, void* dst, const void* guest_src, size_t n) {
  if (g == nullptr || !family_enter(g)) return busy(-1);
  int rc = guarded_copy(g, dst, guest_src, n, reinterpret_cast<std::uintptr_t>(guest_src));
  family_leave(g);
  return rc;
}

}  // extern "C"
