// mmap_diff — one side of the differential test of the mmap family (issue 6, "Tests").
//
// Runs a seeded random sequence of mmap / munmap / mprotect / madvise / mremap / msync /
// mincore / mlock / munlock / sbrk / brk calls, content writes and reads, and forks, valid
// and deliberately invalid, and prints ONE normalised line per step: the operation, its
// arguments described as handle + page offset (never a raw address), the result normalised
// ("H3+2p" for an address inside a known handle, "new H5" for a fresh page-aligned mapping),
// the errno name, then for each handle the step touched a mincore residency string and a
// content hash, and the hash of each test file's bytes read with pread(2).  A fork step
// prints the child's own steps (read back through a pipe), then which of the parent's handles
// changed (only shared memory may) and where the child's marker shows.
//
// The program knows nothing of vmrt: tests/scenario/mmap_differential.sh runs it natively and
// under vmrun with the same seed and diffs the two outputs line by line.  Reproduce one seed:
//   mmap_diff --seed N --steps K [--ops LIST]        (natively)
//   build/bin/vmrun -- mmap_diff --seed N --steps K   (under vmrt)
//
// Determinism rules (the output must be a function of the seed and Linux's semantics only):
//  - Handles, not addresses.  A handle is a page range the program owns; pages in it are
//    mapped (with a kind and protection the model tracks from the calls' results) or holes.
//    Calls span holes and several mappings inside one handle's range, never two handles (what
//    lies between two handles depends on the layout).
//  - Holes inside handles are filled with PROT_NONE placeholders (MAP_FIXED_NOREPLACE) around
//    every call that lets the kernel choose an address, so where the kernel puts a new
//    mapping never depends on the layout; the placeholders are removed right after.
//  - A mapping made with a hint prints only "new Hk" (honoured or not is layout-dependent); an
//    mremap that may grow in place or move (growth past the handle's range) prints only
//    "valid" and always becomes a new handle.
//  - mincore is printed only for private anonymous pages ('R' resident, '.' not, '?' not
//    deterministic: file and shared pages the page cache may hold, pages after MADV_FREE, pages
//    a fork child inherited: Linux copies a vma's ptes only if it has an anon_vma, which
//    depends on merges with neighbours), '_' for a hole.  It is taken before the content
//    hash (which reads pages in).
//  - Contents are hashed only for readable pages whose contents are deterministic (not after
//    MADV_FREE until rewritten), never PROT_NONE, never beyond the end of the backing object.
//  - Transparent huge pages are disabled for the process (prctl) so residency is per page.
//  - No malloc during the run (one before it boots the shim): all tables are static, output
//    goes through a static buffer and write(2).
#include <cerrno>
#include <cinttypes>
#include <csignal>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif
#ifndef MAP_SHARED_VALIDATE
#define MAP_SHARED_VALIDATE 0x03
#endif
#ifndef MREMAP_DONTUNMAP
#define MREMAP_DONTUNMAP 4
#endif
#ifndef MADV_WIPEONFORK
#define MADV_WIPEONFORK 18
#define MADV_KEEPONFORK 19
#endif
#ifndef MADV_COLD
#define MADV_COLD 20
#endif

namespace {

constexpr size_t kPage = 4096;
constexpr int kMaxHandles = 24;
constexpr int kMaxPages = 48;      // a handle's range never exceeds this many pages
constexpr int kNewMax = 12;        // a new mapping has 1..kNewMax pages
constexpr int kFiles = 2;          // real files f0, f1
constexpr int kFilePages = 8;      // each file is this many pages
constexpr int kMaxObjects = 4096;  // files + shared anonymous objects
constexpr int kBrkMax = 16 * (int)kPage;

// ---------------------------------------------------------------- output
int g_out_fd = 1;
char g_out[1 << 16];
size_t g_out_len;
void flush_out() {
  size_t off = 0;
  while (off < g_out_len) {
    ssize_t n = write(g_out_fd, g_out + off, g_out_len - off);
    if (n <= 0) {
      if (n < 0 && errno == EINTR) continue;
      _exit(3);
    }
    off += (size_t)n;
  }
  g_out_len = 0;
}
struct Line {
  char b[2048];
  size_t n = 0;
  void ap(const char* fmt, ...) __attribute__((format(printf, 2, 3))) {
    va_list va;
    va_start(va, fmt);
    int k = vsnprintf(b + n, sizeof b - n, fmt, va);
    va_end(va);
    if (k > 0) n = (n + (size_t)k < sizeof b) ? n + (size_t)k : sizeof b - 1;
  }
  void emit() {
    if (g_out_len + n + 1 > sizeof g_out) flush_out();
    memcpy(g_out + g_out_len, b, n);
    g_out_len += n;
    g_out[g_out_len++] = '\n';
    n = 0;
  }
};

const char* errname(int e) {
  switch (e) {
    case 0: return "ok";
    case EPERM: return "EPERM";
    case ENOENT: return "ENOENT";
    case EBADF: return "EBADF";
    case EAGAIN: return "EAGAIN";
    case ENOMEM: return "ENOMEM";
    case EACCES: return "EACCES";
    case EFAULT: return "EFAULT";
    case EBUSY: return "EBUSY";
    case EEXIST: return "EEXIST";
    case ENODEV: return "ENODEV";
    case EINVAL: return "EINVAL";
    case ENFILE: return "ENFILE";
    case EMFILE: return "EMFILE";
    case ETXTBSY: return "ETXTBSY";
    case EFBIG: return "EFBIG";
    case ENOSPC: return "ENOSPC";
    case ENOSYS: return "ENOSYS";
    case EOVERFLOW: return "EOVERFLOW";
    case EOPNOTSUPP: return "EOPNOTSUPP";
    case EIO: return "EIO";
    default: return "E?";
  }
}

// ---------------------------------------------------------------- random
uint64_t g_rng;
uint64_t next_u64() {  // splitmix64
  uint64_t z = (g_rng += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}
int rnd(int n) { return n <= 1 ? 0 : (int)(next_u64() % (uint64_t)n); }
bool chance(int pct) { return rnd(100) < pct; }

// ---------------------------------------------------------------- model
enum Kind : uint8_t { kHole = 0, kAnonPriv, kAnonShared, kFilePriv, kFileShared };
const char* const kKindName[] = {"hole", "anon-private", "anon-shared", "file-private", "file-shared"};

struct Page {
  Kind kind;
  int8_t prot;     // PROT_* bits, -1 = unknown (a failed mprotect may have changed part)
  bool known;      // contents deterministic
  bool freed;      // MADV_FREE'd: contents and residency not deterministic until rewritten
  bool ro_fd;      // file-shared from a read-only descriptor: PROT_WRITE refused
  bool locked, lock_unknown;
  bool resid_unknown;  // in a fork child: Linux copies the ptes of a vma only if it has an
                       // anon_vma, which depends on merges with neighbouring vmas (layout)
  bool dontfork, wipeonfork;
  uint16_t obj;    // backing object (file or shared anonymous object)
  uint16_t opg;    // page index inside the object
};
struct Handle {
  bool live;
  bool split;      // partial vma-changing operations happened: the range may be several vmas
  bool forkweird;  // fork-advice state unknown: the child leaves this handle alone
  char* base;
  int n;           // range in pages
  Page p[kMaxPages];
};
Handle g_h[kMaxHandles];
int g_obj_pages[kMaxObjects];  // size of each object in pages
int g_nobj = kFiles;

int g_fd[kFiles], g_fd_ro, g_fd_dir, g_fd_null, g_fd_pipe;
char g_dir[64];
char* g_brk0;
int g_brk_off;
bool g_in_child;
int g_step;
const char* g_prefix = "S";

bool mapped(const Page& p) { return p.kind != kHole; }
bool is_shared(const Page& p) { return p.kind == kAnonShared || p.kind == kFileShared; }
bool accessible(const Page& p) {
  return mapped(p) && p.prot >= 0 && (p.kind == kAnonPriv || p.opg < g_obj_pages[p.obj]);
}
bool readable(const Page& p) { return accessible(p) && (p.prot & PROT_READ); }
bool writable(const Page& p) { return accessible(p) && (p.prot & PROT_WRITE); }
// --posix-private: private file pages are not hashed.  POSIX leaves it unspecified whether
// a private mapping sees changes made to the file after it was established; Linux shows them
// on pages not yet written, vmrt's vnode pager under paging (scenario mmap_paged) does not.
bool g_posix_private;
bool hashable(const Page& p) { return readable(p) && p.known && !p.freed && !(g_posix_private && p.kind == kFilePriv); }
char* addr_of(const Handle& h, int pg) { return h.base + (size_t)pg * kPage; }
bool all_holes(const Handle& h) {
  for (int i = 0; i < h.n; ++i)
    if (mapped(h.p[i])) return false;
  return true;
}

uint64_t hash_bytes(uint64_t h, const void* p, size_t n) {
  const unsigned char* c = (const unsigned char*)p;
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t w;
    memcpy(&w, c + i, 8);
    h = (h ^ w) * 0x100000001b3ULL;
    h ^= h >> 29;
  }
  for (; i < n; ++i) h = (h ^ c[i]) * 0x100000001b3ULL;
  return h;
}

uint64_t handle_hash(const Handle& h) {
  uint64_t x = 0xcbf29ce484222325ULL;
  for (int i = 0; i < h.n; ++i) {
    if (!hashable(h.p[i])) continue;
    x = hash_bytes(x ^ (uint64_t)i, addr_of(h, i), kPage);
  }
  return x;
}

// Hash of the private anonymous pages only (a fork child's writes must never reach them;
// private file pages legitimately show the file's changes made through shared mappings).
uint64_t anon_hash(const Handle& h) {
  uint64_t x = 0xcbf29ce484222325ULL;
  for (int i = 0; i < h.n; ++i) {
    if (!hashable(h.p[i]) || h.p[i].kind != kAnonPriv) continue;
    x = hash_bytes(x ^ (uint64_t)i, addr_of(h, i), kPage);
  }
  return x;
}

// mincore string of a handle: one char a page, each page asked separately (holes give ENOMEM).
void mincore_summary(const Handle& h, char* out) {
  for (int i = 0; i < h.n; ++i) {
    const Page& p = h.p[i];
    if (!mapped(p)) {
      out[i] = '_';
      continue;
    }
    if (p.kind != kAnonPriv || p.freed || p.lock_unknown || p.resid_unknown) {
      out[i] = '?';
      continue;
    }
    unsigned char v = 0;
    int r = mincore(addr_of(h, i), kPage, &v);
    out[i] = r != 0 ? 'E' : (v & 1) ? 'R' : '.';
  }
  out[h.n] = 0;
}

uint64_t file_hash(int f) {
  static char buf[kFilePages * kPage];
  ssize_t n = pread(g_fd[f], buf, sizeof buf, 0);
  if (n < 0) return 0;
  return hash_bytes(0xcbf29ce484222325ULL ^ (uint64_t)n, buf, (size_t)n);
}

// Describe address a relative to the handles: "H3+2p", "H3+2p+100", or "outside".
void describe_addr(Line& l, const void* a) {
  uintptr_t x = (uintptr_t)a;
  for (int i = 0; i < kMaxHandles; ++i) {
    const Handle& h = g_h[i];
    if (!h.live) continue;
    uintptr_t b = (uintptr_t)h.base;
    if (x >= b && x < b + (size_t)h.n * kPage) {
      size_t off = x - b;
      l.ap("H%d+%zup", i, off / kPage);
      if (off % kPage) l.ap("+%zu", off % kPage);
      return;
    }
  }
  l.ap("outside%s", x % kPage ? "-unaligned" : "");
}

int free_slot() {
  for (int i = 0; i < kMaxHandles; ++i)
    if (!g_h[i].live) return i;
  return -1;
}
int nlive() {
  int n = 0;
  for (int i = 0; i < kMaxHandles; ++i) n += g_h[i].live;
  return n;
}
int pick_handle() {
  int n = nlive();
  if (n == 0) return -1;
  int k = rnd(n);
  for (int i = 0; i < kMaxHandles; ++i)
    if (g_h[i].live && k-- == 0) return i;
  return -1;
}
// A random page range [s, s+len) inside handle h.
void pick_range(const Handle& h, int* s, int* len, int maxlen = kMaxPages) {
  *s = rnd(h.n);
  int m = h.n - *s;
  if (m > maxlen) m = maxlen;
  *len = 1 + rnd(m);
}

// MMAP_DIFF_TRACE=1: raw addresses of every call and, when a hole is found taken, the
// /proc/self/maps line covering it, on stderr (debugging aid; never set by the scenario).
bool g_trace;
void trace_addr(const char* what, const void* a) {
  char m[160];
  int n = snprintf(m, sizeof m, "trace %s %d: %s %p; host maps:\n", g_prefix, g_step, what, a);
  if (write(2, m, (size_t)n) < 0) return;
  int fd = open("/proc/self/maps", O_RDONLY);
  if (fd < 0) return;
  static char buf[1 << 17];
  ssize_t got = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (got <= 0) return;
  buf[got] = 0;
  for (char* line = buf; line && *line;) {
    char* nl = strchr(line, '\n');
    unsigned long lo = strtoul(line, nullptr, 16), hi = strtoul(strchr(line, '-') + 1, nullptr, 16);
    if ((uintptr_t)a + 0x10000 >= lo && (uintptr_t)a < hi + 0x10000) {
      if (write(2, line, nl ? (size_t)(nl - line + 1) : strlen(line)) < 0) return;
    }
    line = nl ? nl + 1 : nullptr;
  }
}

// ---- the fence.  Linux merges a fresh private anonymous mapping with a compatible
// neighbour, and a VMA merged with memory outside the handles (the loader's and libc's own
// anonymous memory) changes later merges inside them (anon_vma compatibility) — a
// dependence on the layout, not on the seed.  Before the run every gap between the
// process's mappings (up to 1 GiB) is filled with shared anonymous PROT_NONE memory, which
// never merges with anything, and one more such mapping goes where the kernel would place
// the next one (top-down: below everything the process mapped): the handles go below it,
// never next to memory that is not the run's own.
void fence_layout() {
  constexpr unsigned long kMaxGap = 1UL << 30;
  static char buf[1 << 17];
  int fd = open("/proc/self/maps", O_RDONLY);
  if (fd < 0) return;
  ssize_t got = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (got <= 0) return;
  buf[got] = 0;
  unsigned long prev_end = 0;
  for (char* line = buf; line && *line;) {
    char* nl = strchr(line, '\n');
    unsigned long lo = strtoul(line, nullptr, 16), hi = strtoul(strchr(line, '-') + 1, nullptr, 16);
    if (prev_end != 0 && lo > prev_end && lo - prev_end <= kMaxGap)
      mmap((void*)prev_end, lo - prev_end, PROT_NONE, MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED_NOREPLACE, -1, 0);
    if (hi > prev_end) prev_end = hi;
    line = nl ? nl + 1 : nullptr;
  }
  mmap(nullptr, 64 * kPage, PROT_NONE, MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
}

// ---- placeholders: holes inside handles are occupied while the kernel chooses an address.
struct Placeholder {
  char* a;
  size_t len;
};
Placeholder g_ph[kMaxHandles * kMaxPages];
int g_nph;
// Fill every hole of every handle except pages [s1, e1) and [s2, e2) of handle except_h (an
// mremap's source and in-place target: the call must see them as they are).
void fill_holes(int except_h = -1, int s1 = 0, int e1 = 0, int s2 = 0, int e2 = 0) {
  g_nph = 0;
  for (int i = 0; i < kMaxHandles; ++i) {
    Handle& h = g_h[i];
    if (!h.live) continue;
    auto skip = [&](int j) {
      return mapped(h.p[j]) || (i == except_h && ((j >= s1 && j < e1) || (j >= s2 && j < e2)));
    };
    int j = 0;
    while (j < h.n) {
      if (skip(j)) {
        ++j;
        continue;
      }
      int k = j;
      while (k < h.n && !skip(k)) ++k;
      size_t len = (size_t)(k - j) * kPage;
      void* r = mmap(addr_of(h, j), len, PROT_NONE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED_NOREPLACE, -1, 0);
      if (r == MAP_FAILED || r != addr_of(h, j)) {
        Line l;
        l.ap("%s %d NOTE placeholder for hole H%d+%dp/%dp failed: %s", g_prefix, g_step, i, j, k - j,
             r == MAP_FAILED ? errname(errno) : "moved");
        l.emit();
        if (g_trace) trace_addr("placeholder refused", addr_of(h, j));
        if (r != MAP_FAILED) munmap(r, len);
      } else {
        g_ph[g_nph++] = {addr_of(h, j), len};
      }
      j = k;
    }
  }
}
void release_holes() {
  for (int i = 0; i < g_nph; ++i) munmap(g_ph[i].a, g_ph[i].len);
  g_nph = 0;
}

// ---------------------------------------------------------------- step bookkeeping
struct Step {
  Line l;
  bool touched[kMaxHandles] = {};
  void touch(int h) {
    if (h >= 0) touched[h] = true;
  }
  void result_int(long r, int e) {
    l.ap(" -> %ld %s", r, r == -1 ? errname(e) : "ok");
  }
  void finish() {
    if (g_trace) {
      char m[2300];
      int k = snprintf(m, sizeof m, "trace %.2000s\n", l.b);
      if (write(2, m, (size_t)k) < 0) {}
      for (int i = 0; i < kMaxHandles; ++i)
        if (touched[i] && g_h[i].live) {
          k = snprintf(m, sizeof m, "trace   H%d = %p..%p\n", i, (void*)g_h[i].base, (void*)addr_of(g_h[i], g_h[i].n));
          if (write(2, m, (size_t)k) < 0) {}
        }
    }
    l.ap(" |");
    for (int i = 0; i < kMaxHandles; ++i) {
      if (!touched[i]) continue;
      if (!g_h[i].live) {
        l.ap(" H%d:gone", i);
        continue;
      }
      char mc[kMaxPages + 1];
      mincore_summary(g_h[i], mc);
      l.ap(" H%d:[%s]#%012" PRIx64, i, mc, handle_hash(g_h[i]) & UINT64_C(0xffffffffffff));
    }
    l.ap(" | f0=%012" PRIx64 " f1=%012" PRIx64, file_hash(0) & UINT64_C(0xffffffffffff), file_hash(1) & UINT64_C(0xffffffffffff));
    l.emit();
  }
};

int random_prot() {
  static const int kProts[] = {PROT_NONE, PROT_READ, PROT_READ | PROT_WRITE, PROT_READ | PROT_WRITE,
                               PROT_WRITE, PROT_READ | PROT_EXEC, PROT_READ | PROT_WRITE | PROT_EXEC};
  return kProts[rnd(sizeof kProts / sizeof kProts[0])];
}
// Private anonymous memory is what most programs map, and the only kind whose residency
// the test compares: it gets 40%, the other kinds 20% each.
Kind random_kind() {
  int v = rnd(10);
  return v < 4 ? kAnonPriv : v < 6 ? kAnonShared : v < 8 ? kFilePriv : kFileShared;
}
void prot_str(Line& l, int prot) {
  if (prot & ~7) {
    l.ap("prot=%#x", prot);
    return;
  }
  l.ap("%s%s%s%s", prot == 0 ? "---" : "", prot & PROT_READ ? "r" : "", prot & PROT_WRITE ? "w" : "",
       prot & PROT_EXEC ? "x" : "");
}

// Model pages [s, s+len) of handle h as a fresh mapping of `kind` (obj/opg for backed kinds).
void set_new_pages(Handle& h, int s, int len, Kind kind, int prot, int obj, int opg, bool ro) {
  for (int i = 0; i < len; ++i) {
    Page& p = h.p[s + i];
    p = Page{};
    p.kind = kind;
    p.prot = (int8_t)(prot & 7);
    p.known = true;
    p.ro_fd = ro;
    p.obj = (uint16_t)obj;
    p.opg = (uint16_t)(opg + i);
  }
}

int new_object(int pages) {
  if (g_nobj >= kMaxObjects) return kMaxObjects - 1;  // shares the last slot: sizes only grow
  g_obj_pages[g_nobj] = pages;
  return g_nobj++;
}

// A fresh mapping [r, r+npages) must not overlap any live handle's range (natively it cannot:
// the holes are occupied while the kernel chooses); prints " OVERLAPS Hx+yp" if it does.
void check_overlap(Step& st, const char* r, int npages, int self) {
  for (int i = 0; i < kMaxHandles; ++i) {
    const Handle& h = g_h[i];
    if (!h.live || i == self) continue;
    const char* lo = r > h.base ? r : h.base;
    const char* e1 = r + (size_t)npages * kPage;
    const char* e2 = addr_of(h, h.n);
    if (lo < (e1 < e2 ? e1 : e2)) {
      st.l.ap(" OVERLAPS H%d+%zup", i, (size_t)(lo - h.base) / kPage);
      return;
    }
  }
}

// Register a fresh mapping returned by the kernel; prints "new Hk".
int register_new(Step& st, char* r, int npages, Kind kind, int prot, int obj, int opg, bool ro) {
  int k = free_slot();
  if (k < 0 || ((uintptr_t)r % kPage) != 0) {
    st.l.ap(" -> %s (dropped)", ((uintptr_t)r % kPage) ? "UNALIGNED" : "valid");
    munmap(r, (size_t)npages * kPage);
    return -1;
  }
  Handle& h = g_h[k];
  h = Handle{};
  h.live = true;
  h.base = r;
  h.n = npages;
  set_new_pages(h, 0, npages, kind, prot, obj, opg, ro);
  st.l.ap(" -> new H%d", k);
  check_overlap(st, r, npages, k);
  st.touch(k);
  return k;
}

// ---------------------------------------------------------------- operations
void op_mmap(Step& st) {
  st.l.ap("mmap");
  Kind kind = random_kind();
  int prot = random_prot();
  int npages = 1 + rnd(kNewMax);
  int flags = (kind == kAnonShared || kind == kFileShared) ? MAP_SHARED : MAP_PRIVATE;
  int fd = -1, f = 0, opg = 0;
  bool ro = false;
  if (kind == kAnonPriv || kind == kAnonShared) flags |= MAP_ANONYMOUS;
  else {
    f = rnd(kFiles);
    opg = rnd(kFilePages);
    if (opg + npages > kFilePages + 1 && chance(70)) npages = kFilePages - opg;  // mostly inside
    if (npages < 1) npages = 1;
    fd = g_fd[f];
    if (f == 0 && chance(20)) {
      fd = g_fd_ro;
      ro = kind == kFileShared;
      st.l.ap(" ro-fd");
    }
  }
  if (chance(20)) flags |= MAP_NORESERVE;
  if (chance(20)) flags |= MAP_POPULATE;
  void* hint = nullptr;
  if (chance(25)) {
    int hh = pick_handle();
    int w = rnd(4);
    if (w == 0 || hh < 0) hint = (void*)0x10000;
    else if (w == 1) hint = addr_of(g_h[hh], g_h[hh].n);       // just past a handle
    else if (w == 2) hint = addr_of(g_h[hh], rnd(g_h[hh].n));  // inside a handle
    else hint = addr_of(g_h[hh], 0) + 123;                     // unaligned
    st.l.ap(" hint");
  }
  st.l.ap(" %s ", kKindName[kind]);
  if (fd >= 0) st.l.ap("f%d@%dp ", f, opg);
  prot_str(st.l, prot);
  st.l.ap(" %dp%s%s", npages, flags & MAP_NORESERVE ? " noreserve" : "", flags & MAP_POPULATE ? " populate" : "");
  fill_holes();
  errno = 0;
  void* r = mmap(hint, (size_t)npages * kPage, prot, flags, fd, (off_t)opg * (off_t)kPage);
  int e = errno;
  release_holes();
  if (r == MAP_FAILED) {
    st.l.ap(" -> -1 %s", errname(e));
    return;
  }
  int obj = fd >= 0 ? f : kind == kAnonShared ? new_object(npages) : 0;
  register_new(st, (char*)r, npages, kind, prot, obj, opg, ro);
}

// MAP_FIXED (or MAP_FIXED_NOREPLACE) over part of an existing handle.
void op_mmap_fixed(Step& st, bool noreplace) {
  int hh = pick_handle();
  if (hh < 0) return op_mmap(st);
  Handle& h = g_h[hh];
  int s, len;
  pick_range(h, &s, &len);
  Kind kind = random_kind();
  int prot = random_prot();
  int flags = (kind == kAnonShared || kind == kFileShared) ? MAP_SHARED : MAP_PRIVATE;
  flags |= noreplace ? MAP_FIXED_NOREPLACE : MAP_FIXED;
  int fd = -1, f = 0, opg = 0;
  if (kind == kAnonPriv || kind == kAnonShared) flags |= MAP_ANONYMOUS;
  else {
    f = rnd(kFiles);
    opg = rnd(kFilePages);
    fd = g_fd[f];
  }
  if (chance(15)) flags |= MAP_POPULATE;
  bool unaligned = chance(8);
  char* a = addr_of(h, s) + (unaligned ? 100 : 0);
  st.l.ap("%s H%d+%dp%s %s ", noreplace ? "mmap-noreplace" : "mmap-fixed", hh, s, unaligned ? "+100" : "",
          kKindName[kind]);
  if (fd >= 0) st.l.ap("f%d@%dp ", f, opg);
  prot_str(st.l, prot);
  st.l.ap(" %dp%s", len, flags & MAP_POPULATE ? " populate" : "");
  st.touch(hh);
  errno = 0;
  void* r = mmap(a, (size_t)len * kPage, prot, flags, fd, (off_t)opg * (off_t)kPage);
  int e = errno;
  if (r == MAP_FAILED) {
    st.l.ap(" -> -1 %s", errname(e));
    return;
  }
  st.l.ap(" -> ");
  describe_addr(st.l, r);
  if ((char*)r != addr_of(h, s)) {  // MAP_FIXED_NOREPLACE on an old kernel: a hint; drop it
    st.l.ap(" (not at the target)");
    munmap(r, (size_t)len * kPage);
    return;
  }
  int obj = fd >= 0 ? f : kind == kAnonShared ? new_object(len) : 0;
  set_new_pages(h, s, len, kind, prot, obj, opg, false);
  if (!(s == 0 && len == h.n)) h.split = true;
}

void after_unmap(Handle& h) {
  if (all_holes(h)) h.live = false;
}

void op_munmap(Step& st) {
  int hh = pick_handle();
  if (hh < 0) return op_mmap(st);
  Handle& h = g_h[hh];
  int s, len;
  int v = rnd(10);
  if (v < 3) {
    s = 0;
    len = h.n;
  } else {
    pick_range(h, &s, &len);
  }
  size_t bytes = (size_t)len * kPage;
  char* a = addr_of(h, s);
  const char* what = v < 3 ? "whole" : "range";
  int bad = rnd(100);
  if (bad < 5) {
    a += 100;
    what = "unaligned-addr";
  } else if (bad < 9) {
    bytes = 0;
    what = "len0";
  } else if (bad < 12) {
    bytes = SIZE_MAX & ~(kPage - 1);
    what = "len-huge";
  } else if (bad < 20) {
    bytes -= 100;  // an unaligned length is rounded up
    what = "unaligned-len";
  }
  st.l.ap("munmap %s H%d+%dp %dp", what, hh, s, len);
  st.touch(hh);
  errno = 0;
  int r = munmap(a, bytes);
  int e = errno;
  st.result_int(r, e);
  if (r == 0 && bytes > 0) {
    for (int i = 0; i < len; ++i) h.p[s + i] = Page{};
    if (s > 0 && s + len < h.n) h.split = true;
    after_unmap(h);
  }
}

void op_mprotect(Step& st) {
  int hh = pick_handle();
  if (hh < 0) return op_mmap(st);
  Handle& h = g_h[hh];
  int s, len;
  pick_range(h, &s, &len);
  int prot = random_prot();
  char* a = addr_of(h, s);
  size_t bytes = (size_t)len * kPage;
  const char* what = "";
  int bad = rnd(100);
  if (bad < 4) {
    a += 100;
    what = " unaligned";
  } else if (bad < 8) {
    prot |= 0x20;
    what = " bad-prot";
  } else if (bad < 11) {
    bytes = SIZE_MAX & ~(kPage - 1);
    what = " len-huge";
  } else if (bad < 14) {
    prot |= PROT_GROWSDOWN;
    what = " growsdown";
  } else if (bad < 17) {
    bytes = 0;
    what = " len0";
  }
  st.l.ap("mprotect%s H%d+%dp %dp ", what, hh, s, len);
  prot_str(st.l, prot);
  st.touch(hh);
  errno = 0;
  int r = mprotect(a, bytes, prot);
  int e = errno;
  st.result_int(r, e);
  if (bytes == 0 || a != addr_of(h, s)) return;
  if (r == 0) {
    for (int i = 0; i < len; ++i)
      if (mapped(h.p[s + i])) h.p[s + i].prot = (int8_t)(prot & 7);
  } else if (e != EINVAL) {  // ENOMEM (hole) or EACCES: a prefix may have changed
    for (int i = 0; i < len; ++i)
      if (mapped(h.p[s + i])) h.p[s + i].prot = -1;
  }
  if (!(s == 0 && len == h.n)) h.split = true;
}

struct Advice {
  int v;
  const char* name;
  bool vma_flag;  // changes vma flags (splits a vma when partial)
};
const Advice kAdvice[] = {
    {MADV_DONTNEED, "DONTNEED", false},     {MADV_DONTNEED, "DONTNEED", false},
    {MADV_FREE, "FREE", false},             {MADV_WILLNEED, "WILLNEED", false},
    {MADV_NORMAL, "NORMAL", true},          {MADV_RANDOM, "RANDOM", true},
    {MADV_SEQUENTIAL, "SEQUENTIAL", true},  {MADV_DONTFORK, "DONTFORK", true},
    {MADV_DOFORK, "DOFORK", true},          {MADV_WIPEONFORK, "WIPEONFORK", true},
    {MADV_KEEPONFORK, "KEEPONFORK", true},  {MADV_REMOVE, "REMOVE", false},
    {MADV_COLD, "COLD", false},             {12345, "invalid-12345", false},
    {100, "invalid-100", false},
};

void op_madvise(Step& st) {
  int hh = pick_handle();
  if (hh < 0) return op_mmap(st);
  Handle& h = g_h[hh];
  int s, len;
  pick_range(h, &s, &len);
  const Advice& adv = kAdvice[rnd(sizeof kAdvice / sizeof kAdvice[0])];
  char* a = addr_of(h, s);
  size_t bytes = (size_t)len * kPage;
  const char* what = "";
  int bad = rnd(100);
  if (bad < 4) {
    a += 100;
    what = " unaligned";
  } else if (bad < 7) {
    bytes = 0;
    what = " len0";
  } else if (bad < 10) {
    bytes = SIZE_MAX & ~(kPage - 1);
    what = " len-huge";
  }
  st.l.ap("madvise%s H%d+%dp %dp %s", what, hh, s, len, adv.name);
  st.touch(hh);
  errno = 0;
  int r = madvise(a, bytes, adv.v);
  int e = errno;
  st.result_int(r, e);
  if (bytes == 0 || a != addr_of(h, s) || bytes != (size_t)len * kPage) return;
  bool applied = r == 0 || e == ENOMEM;  // ENOMEM: applied to the mapped parts (Linux)
  for (int i = 0; i < len; ++i) {
    Page& p = h.p[s + i];
    if (!mapped(p)) continue;
    switch (adv.v) {
      case MADV_FREE:
        if (p.kind == kAnonPriv) {
          p.freed = true;
          p.known = false;
        }
        break;
      case MADV_DONTNEED:
        if (applied && p.kind == kAnonPriv) p.freed = false, p.known = true, p.resid_unknown = false;
        break;
      case MADV_DONTFORK: if (applied) p.dontfork = true; break;
      case MADV_DOFORK: if (applied) p.dontfork = false; break;
      case MADV_WIPEONFORK: if (applied) p.wipeonfork = true; break;
      case MADV_KEEPONFORK: if (applied) p.wipeonfork = false; break;
      default: break;
    }
  }
  // A DONTNEED failing part way (a locked vma) leaves a prefix zapped: those pages are still
  // deterministic (zero, or the file's bytes), so there is nothing to forget.
  if (!applied && (adv.v == MADV_DONTFORK || adv.v == MADV_DOFORK || adv.v == MADV_WIPEONFORK ||
                   adv.v == MADV_KEEPONFORK) && e != EINVAL)
    h.forkweird = true;
  if (!applied && (adv.v == MADV_WIPEONFORK) && e == EINVAL) h.forkweird = true;  // prefix applied
  if (adv.vma_flag && !(s == 0 && len == h.n)) h.split = true;
}

bool op_enabled(const char* name);

void op_mremap(Step& st) {
  int hh = pick_handle();
  if (hh < 0) return op_mmap(st);
  if (g_h[hh].split && !op_enabled("mremapsplit")) {
    // Without "mremapsplit": only handles no partial operation has split (a range of such a
    // handle is one vma; on split ones the result follows Linux's vma merge rules).
    hh = -1;
    for (int i = 0; i < kMaxHandles && hh < 0; ++i)
      if (g_h[i].live && !g_h[i].split) hh = i;
    if (hh < 0) return op_mmap(st);
  }
  Handle& h = g_h[hh];
  int s, len;
  pick_range(h, &s, &len);
  // Growth past the handle's range is address-dependent unless it may move.
  int v = rnd(100);
  int newlen = len;
  int flags = 0;
  const char* what;
  bool beyond = false;
  int dst_h = -1, dst_s = 0;
  size_t oldb = (size_t)len * kPage, newb;
  char* a = addr_of(h, s);
  if (v < 20) {  // shrink in place
    newlen = 1 + rnd(len);
    what = "shrink";
  } else if (v < 40) {  // grow inside the range (into holes or over mapped pages: ENOMEM)
    if (s + len >= h.n) {
      newlen = len;
      what = "same-size";
    } else {
      newlen = len + 1 + rnd(h.n - s - len);
      what = "grow-in-range";
    }
    if (chance(50)) flags = MREMAP_MAYMOVE, what = newlen > len ? "grow-in-range maymove" : "same-size maymove";
  } else if (v < 55) {  // MAYMOVE growth past the range: only from a run ending at the range end
    len = h.n - s;
    oldb = (size_t)len * kPage;
    newlen = len + 1 + rnd(4);
    if (newlen > kMaxPages) newlen = kMaxPages;
    flags = MREMAP_MAYMOVE;
    beyond = true;
    what = "grow maymove";
  } else if (v < 72) {  // MREMAP_FIXED into some handle's range
    dst_h = pick_handle();
    Handle& d = g_h[dst_h];
    newlen = 1 + rnd(len + 2);
    if (newlen > d.n) newlen = d.n;
    dst_s = rnd(d.n - newlen + 1);
    flags = MREMAP_MAYMOVE | MREMAP_FIXED;
    what = "fixed";
    if (chance(30)) {
      flags |= MREMAP_DONTUNMAP;
      newlen = len <= d.n ? len : d.n;
      dst_s = rnd(d.n - newlen + 1);
      what = "fixed dontunmap";
    }
  } else if (v < 82) {  // DONTUNMAP to a kernel-chosen address
    flags = MREMAP_MAYMOVE | MREMAP_DONTUNMAP;
    what = "dontunmap";
  } else {  // invalid on purpose
    int b = rnd(7);
    if (b == 0) a += 100, what = "bad unaligned";
    else if (b == 1) flags = 0x40, what = "bad flags";
    else if (b == 2) flags = MREMAP_FIXED, what = "bad fixed-without-maymove";
    else if (b == 3) flags = MREMAP_MAYMOVE | MREMAP_DONTUNMAP, newlen = len + 1, what = "bad dontunmap-resize";
    else if (b == 4) newlen = -1, what = "bad newlen-huge";
    else if (b == 5) newlen = 0, what = "bad newlen0";
    else {
      // old_len 0 on a private mapping: EINVAL (on a shared one it would duplicate)
      oldb = 0;
      flags = MREMAP_MAYMOVE;
      what = h.p[s].kind == kAnonPriv || h.p[s].kind == kFilePriv ? "bad oldlen0-private" : "oldlen0";
      if (h.p[s].kind != kAnonPriv && h.p[s].kind != kFilePriv) {
        st.l.ap("mremap skipped-oldlen0-nonprivate H%d+%dp", hh, s);
        st.touch(hh);
        st.l.ap(" -> 0 ok");
        return;
      }
    }
  }
  newb = newlen < 0 ? (SIZE_MAX & ~(kPage - 1)) : (size_t)newlen * kPage;
  char* dst = nullptr;
  st.l.ap("mremap %s H%d+%dp %dp -> %dp", what, hh, s, (int)(oldb / kPage), newlen);
  if (flags & MREMAP_FIXED) {
    if (dst_h < 0) {
      dst_h = hh;
      dst_s = 0;
    }
    dst = addr_of(g_h[dst_h], dst_s);
    st.l.ap(" at H%d+%dp", dst_h, dst_s);
    st.touch(dst_h);
  }
  st.touch(hh);
  bool kernel_chooses = (flags & MREMAP_MAYMOVE) && !(flags & MREMAP_FIXED);
  bool in_range_grow = !beyond && newlen > len && s + newlen <= h.n;
  bool target_free = in_range_grow;
  for (int i = s + len; in_range_grow && i < s + newlen; ++i)
    if (mapped(h.p[i])) target_free = false;
  if (kernel_chooses) {
    if (target_free) fill_holes(hh, s, s + len, s + len, s + newlen);
    else fill_holes(hh, s, s + len);
  }
  errno = 0;
  // Always pass new_address (null unless MREMAP_FIXED): glibc reads it for MREMAP_DONTUNMAP
  // too, and the kernel checks its alignment, so a missing argument is register garbage.
  void* r = mremap(a, oldb, newb, flags, dst);
  int e = errno;
  if (kernel_chooses) release_holes();
  if (r == MAP_FAILED) {
    st.l.ap(" => -1 %s", errname(e));
    return;
  }
  // Snapshot the source pages (they move).
  Page src[kMaxPages];
  for (int i = 0; i < len; ++i) src[i] = h.p[s + i];
  auto grown_page = [&](int i) {  // page i (>= len) of the remapped range
    Page p = src[len - 1];
    p.opg = (uint16_t)(src[len - 1].opg + (i - len + 1));
    p.known = true;
    p.freed = false;
    p.lock_unknown = false;
    return p;
  };
  auto fill_dest = [&](Handle& d, int ds) {
    // Linux >= 6.17 moves several vmas at once (MREMAP_FIXED, same size): a gap in the
    // source leaves the destination page as it was.
    for (int i = 0; i < newlen && ds + i < d.n; ++i)
      if (i >= len || mapped(src[i])) d.p[ds + i] = i < len ? src[i] : grown_page(i);
  };
  bool dontunmap = flags & MREMAP_DONTUNMAP;
  auto clear_source = [&]() {
    for (int i = 0; i < len; ++i) {
      if (dontunmap) {
        // The source stays mapped: private anonymous pages become empty (zero, not resident),
        // shared and file pages keep showing the same object.
        Page& p = h.p[s + i];
        p.known = true;
        p.freed = false;
      } else {
        h.p[s + i] = Page{};
      }
    }
  };
  if (beyond) {
    // In place or moved is address-dependent: always a new handle; the source leaves h's range.
    st.l.ap(" => %s", ((uintptr_t)r % kPage) ? "UNALIGNED" : "valid");
    int k = free_slot();
    h.n = s;  // drop the source run (it ended at the range end)
    if (h.n == 0) h.live = false, k = hh;
    if (k < 0) {
      munmap(r, newb);
      st.l.ap(" (dropped)");
      return;
    }
    Handle& d = g_h[k];
    d = Handle{};
    d.live = true;
    d.base = (char*)r;
    d.n = newlen;
    fill_dest(d, 0);
    st.l.ap(" as H%d", k);
    check_overlap(st, (char*)r, newlen, k);
    st.touch(k);
    if (h.live) after_unmap(h);
    return;
  }
  if ((char*)r == a && !(flags & MREMAP_FIXED) && !dontunmap) {  // in place
    st.l.ap(" => ");
    describe_addr(st.l, r);
    if (newlen < len) {
      for (int i = newlen; i < len; ++i) h.p[s + i] = Page{};
    } else {
      for (int i = len; i < newlen; ++i) h.p[s + i] = grown_page(i);
    }
    if (newlen != len) h.split = true;
    after_unmap(h);
    return;
  }
  if (flags & MREMAP_FIXED) {
    st.l.ap(" => ");
    describe_addr(st.l, r);
    if ((char*)r != dst) return;
    clear_source();
    fill_dest(g_h[dst_h], dst_s);
    g_h[dst_h].split = true;
    h.split = true;
    g_h[dst_h].live = true;
    if (!dontunmap) after_unmap(h);
    return;
  }
  // Moved to a kernel-chosen address: a new handle.
  clear_source();
  h.split = true;
  int k = free_slot();
  bool h_gone = !dontunmap && all_holes(h);
  if (h_gone) {
    h.live = false;
    if (k < 0 || k > hh) k = hh;
  }
  if (k < 0 || ((uintptr_t)r % kPage)) {
    st.l.ap(" => %s (dropped)", ((uintptr_t)r % kPage) ? "UNALIGNED" : "valid");
    munmap(r, newb);
    return;
  }
  Handle& d = g_h[k];
  d = Handle{};
  d.live = true;
  d.base = (char*)r;
  d.n = newlen;
  fill_dest(d, 0);
  st.l.ap(" => new H%d", k);
  check_overlap(st, (char*)r, newlen, k);
  st.touch(k);
}

void op_msync(Step& st) {
  int hh = pick_handle();
  if (hh < 0) return op_mmap(st);
  Handle& h = g_h[hh];
  int s, len;
  pick_range(h, &s, &len);
  static const struct {
    int f;
    const char* n;
  } kF[] = {{MS_SYNC, "SYNC"},
            {MS_ASYNC, "ASYNC"},
            {MS_INVALIDATE, "INVALIDATE"},
            {MS_SYNC | MS_INVALIDATE, "SYNC|INVALIDATE"},
            {MS_SYNC | MS_ASYNC, "bad SYNC|ASYNC"},
            {0x100, "bad 0x100"},
            {0, "0"}};
  int fi = rnd(sizeof kF / sizeof kF[0]);
  if (kF[fi].f & MS_INVALIDATE)
    for (int i = 0; i < len; ++i)
      if (h.p[s + i].lock_unknown) fi = 0;
  char* a = addr_of(h, s);
  size_t bytes = (size_t)len * kPage;
  const char* what = "";
  int bad = rnd(100);
  if (bad < 5) a += 100, what = " unaligned";
  else if (bad < 8) bytes = 0, what = " len0";
  else if (bad < 11) bytes = SIZE_MAX & ~(kPage - 1), what = " len-huge";
  st.l.ap("msync%s H%d+%dp %dp %s", what, hh, s, len, kF[fi].n);
  st.touch(hh);
  errno = 0;
  int r = msync(a, bytes, kF[fi].f);
  st.result_int(r, errno);
}

void op_mincore(Step& st) {
  int hh = pick_handle();
  if (hh < 0) return op_mmap(st);
  Handle& h = g_h[hh];
  int s, len;
  pick_range(h, &s, &len);
  char* a = addr_of(h, s);
  size_t bytes = (size_t)len * kPage;
  unsigned char vec[kMaxPages + 1];
  unsigned char* vp = vec;
  const char* what = "";
  int bad = rnd(100);
  if (bad < 5) a += 100, what = " unaligned";
  else if (bad < 8) bytes = 0, what = " len0";
  else if (bad < 11) bytes = SIZE_MAX & ~(kPage - 1), what = " len-huge";
  else if (bad < 14) vp = (unsigned char*)8, what = " bad-vec";
  memset(vec, 0xee, sizeof vec);
  st.l.ap("mincore%s H%d+%dp %dp", what, hh, s, len);
  st.touch(hh);
  errno = 0;
  int r = mincore(a, bytes, vp);
  int e = errno;
  st.result_int(r, e);
  if (r == 0 && vp == vec && a == addr_of(h, s) && bytes == (size_t)len * kPage) {
    st.l.ap(" vec=");
    for (int i = 0; i < len; ++i) {
      const Page& p = h.p[s + i];
      bool det = p.kind == kAnonPriv && !p.freed && !p.lock_unknown && !p.resid_unknown;
      st.l.ap("%c", !det ? '?' : (vec[i] & ~1) ? 'X' : (vec[i] & 1) ? 'R' : '.');
    }
  }
}

void op_mlock(Step& st) {
  int hh = pick_handle();
  if (hh < 0) return op_mmap(st);
  Handle& h = g_h[hh];
  int s, len;
  pick_range(h, &s, &len, 4);
  bool lock = chance(60);
  char* a = addr_of(h, s);
  size_t bytes = (size_t)len * kPage;
  const char* what = "";
  int bad = rnd(100);
  if (bad < 6) a += 100, bytes -= 100, what = " unaligned";  // allowed: rounded
  else if (bad < 9) bytes = 0, what = " len0";
  else if (bad < 12) bytes = SIZE_MAX & ~(kPage - 1), what = " len-huge";
  st.l.ap("%s%s H%d+%dp %dp", lock ? "mlock" : "munlock", what, hh, s, len);
  st.touch(hh);
  errno = 0;
  int r = lock ? mlock(a, bytes) : munlock(a, bytes);
  int e = errno;
  st.result_int(r, e);
  if (bytes == 0 || bytes > (size_t)len * kPage) return;
  for (int i = 0; i < len; ++i) {
    Page& p = h.p[s + i];
    if (!mapped(p)) continue;
    if (r == 0) p.locked = lock, p.lock_unknown = false, p.resid_unknown = p.resid_unknown && !lock;
    else p.lock_unknown = true;
  }
  if (!(s == 0 && len == h.n)) h.split = true;
}

void op_brk(Step& st) {
  int v = rnd(10);
  long delta;
  if (v < 4) delta = (long)((1 + rnd(3)) * kPage);
  else if (v < 7) delta = -(long)((1 + rnd(3)) * kPage);
  else if (v < 8) delta = 100;
  else if (v < 9) delta = -100;
  else {
    // brk below the start of the data segment: refused, the break does not move
    st.l.ap("brk below-start");
    errno = 0;
    int r = brk(g_brk0 - (1 << 30));
    int e = errno;
    st.result_int(r, e);
    st.l.ap(" break=+%ld", (long)((char*)sbrk(0) - g_brk0));
    return;
  }
  if (g_brk_off + delta < 0) delta = -delta;
  if (g_brk_off + delta > kBrkMax) delta = -delta;
  if (g_brk_off + delta < 0) delta = 0;
  st.l.ap("sbrk %+ld", delta);
  errno = 0;
  void* r = sbrk(delta);
  int e = errno;
  if (r == (void*)-1) {
    st.l.ap(" -> -1 %s", errname(e));
    return;
  }
  long prev = (long)((char*)r - g_brk0);
  long now = (long)((char*)sbrk(0) - g_brk0);
  st.l.ap(" -> prev=+%ld now=+%ld", prev, now);
  int old = g_brk_off;
  g_brk_off = (int)now;
  if (g_brk_off > old) memset(g_brk0 + old, (int)(0x40 + g_step % 64), (size_t)(g_brk_off - old));
  st.l.ap(" data#%012" PRIx64, hash_bytes(0, g_brk0, (size_t)g_brk_off) & UINT64_C(0xffffffffffff));
}

void op_write(Step& st) {
  int hh = pick_handle();
  if (hh < 0) return op_mmap(st);
  Handle& h = g_h[hh];
  int s, len;
  pick_range(h, &s, &len);
  st.l.ap("write H%d+%dp %dp", hh, s, len);
  st.touch(hh);
  int n = 0;
  for (int i = 0; i < len; ++i) {
    Page& p = h.p[s + i];
    if (!writable(p) || p.lock_unknown) continue;
    char* pa = addr_of(h, s + i);
    memset(pa, (int)((g_step * 31 + i) & 0xff), kPage);
    uint32_t tag = (uint32_t)g_step * 1000u + (uint32_t)i;
    memcpy(pa + (g_step % 512) * 8, &tag, 4);
    p.known = true;
    p.freed = false;
    p.resid_unknown = false;
    ++n;
  }
  st.l.ap(" -> %d pages written", n);
}

void op_read(Step& st) {
  int hh = pick_handle();
  if (hh < 0) return op_mmap(st);
  Handle& h = g_h[hh];
  int s, len;
  pick_range(h, &s, &len);
  st.l.ap("read H%d+%dp %dp", hh, s, len);
  st.touch(hh);
  uint64_t sum = 0;
  int n = 0;
  for (int i = 0; i < len; ++i) {
    const Page& p = h.p[s + i];
    if (!readable(p)) continue;
    volatile const unsigned char* pa = (const unsigned char*)addr_of(h, s + i);
    unsigned char c = pa[(g_step * 7) % kPage];
    if (hashable(p)) sum = sum * 131 + c + 1, ++n;
  }
  st.l.ap(" -> %d pages sum=%" PRIu64, n, sum);
}

// Invalid calls that need no handle (descriptors, flags, lengths).
void op_invalid(Step& st) {
  int v = rnd(17);
  size_t len = kPage;
  int prot = PROT_READ, flags = MAP_PRIVATE | MAP_ANONYMOUS, fd = -1;
  off_t off = 0;
  const char* what = "";
  switch (v) {
    case 0: len = 0, what = "len0"; break;
    case 1: len = SIZE_MAX, what = "len-SIZE_MAX"; break;
    case 2: len = SIZE_MAX & ~(kPage - 1), what = "len-huge-aligned"; break;
    case 3: len = (size_t)1 << 62, what = "len-2^62"; break;
    case 4: flags = MAP_ANONYMOUS, what = "neither-private-nor-shared"; break;
    case 5: flags = MAP_SHARED_VALIDATE | MAP_ANONYMOUS | 0x8000000, what = "shared-validate-unknown-flag"; break;
    case 6: flags = MAP_PRIVATE, fd = 1000, what = "EBADF-fd"; break;
    case 7: flags = MAP_SHARED, fd = g_fd_dir, what = "directory-fd"; break;
    case 8: flags = MAP_SHARED, fd = g_fd_pipe, what = "pipe-fd"; break;
    case 9: flags = MAP_SHARED, fd = g_fd_ro, prot = PROT_READ | PROT_WRITE, what = "ro-fd-shared-write"; break;
    case 10: flags = MAP_PRIVATE, fd = g_fd[0], off = 100, what = "unaligned-offset"; break;
    case 11: flags = MAP_PRIVATE, fd = g_fd[0], off = -(off_t)kPage, what = "negative-offset"; break;
    case 12: prot = 0x20 | PROT_READ, what = "bad-prot-bit"; break;
    case 13: flags = MAP_SHARED | MAP_PRIVATE | MAP_ANONYMOUS, what = "both-private-and-shared"; break;
    case 14: flags = MAP_SHARED_VALIDATE | MAP_ANONYMOUS | 0x200000, what = "shared-validate-bit21"; break;
    case 15: flags = MAP_SHARED_VALIDATE | MAP_SYNC, fd = g_fd[1], what = "shared-validate-MAP_SYNC-file"; break;
    default: flags = MAP_SHARED, fd = g_fd_null, what = "dev-null-fd"; break;
  }
  st.l.ap("mmap-invalid %s", what);
  fill_holes();
  errno = 0;
  void* r = mmap(nullptr, len, prot, flags, fd, off);
  int e = errno;
  release_holes();
  if (r == MAP_FAILED) {
    st.l.ap(" -> -1 %s", errname(e));
    return;
  }
  // Linux accepted it: keep it as a handle if it is small, else report and unmap.
  if (len > (size_t)kMaxPages * kPage || len == 0) {
    st.l.ap(" -> accepted (unmapped again)");
    munmap(r, len);
    return;
  }
  int np = (int)((len + kPage - 1) / kPage);
  Kind kind = (flags & MAP_ANONYMOUS) ? ((flags & MAP_SHARED) ? kAnonShared : kAnonPriv)
                                      : ((flags & MAP_SHARED) ? kFileShared : kFilePriv);
  if (fd == g_fd_null || fd == g_fd_dir || fd == g_fd_pipe) {
    // e.g. /dev/null maps (as zero pages on some kernels): keep it simple, unmap it
    st.l.ap(" -> accepted (unmapped again)");
    munmap(r, len);
    return;
  }
  int obj = kind == kAnonShared ? new_object(np) : 0;
  register_new(st, (char*)r, np, kind, prot & 7, obj, (int)(off / (off_t)kPage), fd == g_fd_ro);
}

// ---------------------------------------------------------------- fork
void do_step(bool allow_fork);

void child_prepare() {
  g_in_child = true;
  g_prefix = "  c";
  for (int i = 0; i < kMaxHandles; ++i) {
    Handle& h = g_h[i];
    if (!h.live) continue;
    if (h.forkweird) {
      h.live = false;  // fork-advice state unknown: not used in the child
      continue;
    }
    for (int j = 0; j < h.n; ++j) {
      Page& p = h.p[j];
      p.locked = false;
      p.lock_unknown = false;
      if (!mapped(p)) continue;
      if (p.dontfork) p = Page{};
      else if (p.wipeonfork && p.kind == kAnonPriv) p.known = true, p.freed = false;
      else if (p.kind == kAnonPriv) p.resid_unknown = true;
    }
    if (all_holes(h)) h.live = false;
  }
}

void op_fork(Step& st) {
  uint64_t before[kMaxHandles];
  uint64_t before_anon[kMaxHandles];  // private anonymous pages: the child never changes them
  for (int i = 0; i < kMaxHandles; ++i) before[i] = g_h[i].live ? handle_hash(g_h[i]) : 0;
  for (int i = 0; i < kMaxHandles; ++i) before_anon[i] = g_h[i].live ? anon_hash(g_h[i]) : 0;
  int child_steps = 1 + rnd(6);
  uint64_t child_seed = next_u64();
  int pfd[2];
  if (pipe(pfd) != 0) {
    st.l.ap("fork -> pipe failed");
    return;
  }
  flush_out();
  pid_t pid = fork();
  if (pid < 0) {
    st.l.ap("fork -> -1 %s", errname(errno));
    close(pfd[0]);
    close(pfd[1]);
    return;
  }
  if (pid == 0) {
    close(pfd[0]);
    g_out_fd = pfd[1];
    g_out_len = 0;
    child_prepare();
    g_rng = child_seed;
    int parent_step = g_step;
    for (int i = 0; i < child_steps; ++i) {
      g_step = parent_step * 100 + i;
      do_step(false);
    }
    // Write a marker into the first writable shared page: the parent must see it.
    Line l;
    l.ap("  c marker");
    bool done = false;
    for (int i = 0; i < kMaxHandles && !done; ++i) {
      Handle& h = g_h[i];
      if (!h.live) continue;
      for (int j = 0; j < h.n && !done; ++j) {
        Page& p = h.p[j];
        if (is_shared(p) && writable(p) && readable(p) && p.known && !p.lock_unknown) {
          memcpy(addr_of(h, j) + 8, "CHILD-WROTE-HERE", 16);
          l.ap(" H%d+%dp", i, j);
          done = true;
        }
      }
    }
    if (!done) l.ap(" none");
    l.emit();
    flush_out();
    _exit(0);
  }
  close(pfd[1]);
  // The child's lines, then the parent's own view.
  static char buf[1 << 16];
  size_t got = 0;
  for (;;) {
    ssize_t n = read(pfd[0], buf + got, sizeof buf - 1 - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += (size_t)n;
    if (got >= sizeof buf - 1) break;
  }
  close(pfd[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  st.l.ap("fork %d child steps -> child ", child_steps);
  if (WIFEXITED(status)) st.l.ap("exit %d", WEXITSTATUS(status));
  else st.l.ap("signal %d", WIFSIGNALED(status) ? WTERMSIG(status) : -1);
  st.l.emit();
  if (got > 0) {  // copy the child's lines (already newline-terminated)
    if (g_out_len + got > sizeof g_out) flush_out();
    memcpy(g_out + g_out_len, buf, got);
    g_out_len += got;
    if (buf[got - 1] != '\n') g_out[g_out_len++] = '\n';
  }
  // Parent side: which handles changed (only shared ones may), and the marker.
  st.l.ap("%s %d fork-check changed:", g_prefix, g_step);
  int nchanged = 0;
  for (int i = 0; i < kMaxHandles; ++i) {
    if (!g_h[i].live) continue;
    if (handle_hash(g_h[i]) != before[i]) {
      st.l.ap(" H%d%s", i, anon_hash(g_h[i]) != before_anon[i] ? "(anon-private!)" : "");
      ++nchanged;
    }
  }
  if (nchanged == 0) st.l.ap(" none");
  st.l.ap(" marker-seen:");
  int seen = 0;
  for (int i = 0; i < kMaxHandles; ++i) {
    Handle& h = g_h[i];
    if (!h.live) continue;
    for (int j = 0; j < h.n; ++j)
      if (readable(h.p[j]) && h.p[j].known && !(g_posix_private && h.p[j].kind == kFilePriv) &&
          memcmp(addr_of(h, j) + 8, "CHILD-WROTE-HERE", 16) == 0) {
        st.l.ap(" H%d+%dp", i, j);
        ++seen;
      }
  }
  if (!seen) st.l.ap(" none");
  for (int i = 0; i < kMaxHandles; ++i) st.touch(i);
}

// ---------------------------------------------------------------- driver
struct OpDef {
  const char* name;
  int weight;
  bool enabled;
};
OpDef g_ops[] = {
    {"mmap", 12, true},    {"fixed", 6, true},   {"noreplace", 4, true}, {"munmap", 8, true},
    {"mprotect", 8, true}, {"madvise", 10, true}, {"mremap", 9, true},   {"msync", 4, true},
    {"mincore", 5, true},  {"mlock", 3, true},   {"brk", 3, true},       {"write", 14, true},
    {"read", 5, true},     {"fork", 2, true},    {"invalid", 5, true},
    {"mremapsplit", 0, true},  // not an operation: lets mremap act on split handles
};
constexpr int kNumOps = sizeof g_ops / sizeof g_ops[0];
bool op_enabled(const char* name) {
  for (int i = 0; i < kNumOps; ++i)
    if (!strcmp(g_ops[i].name, name)) return g_ops[i].enabled;
  return false;
}

void do_step(bool allow_fork) {
  Step st;
  st.l.ap("%s %d ", g_prefix, g_step);
  int total = 0;
  for (int i = 0; i < kNumOps; ++i)
    if (g_ops[i].enabled && (allow_fork || strcmp(g_ops[i].name, "fork") != 0)) total += g_ops[i].weight;
  int k = rnd(total > 0 ? total : 1);
  const char* op = "mmap";
  for (int i = 0; i < kNumOps && total > 0; ++i) {
    if (!g_ops[i].enabled || (!allow_fork && strcmp(g_ops[i].name, "fork") == 0)) continue;
    if (k < g_ops[i].weight) {
      op = g_ops[i].name;
      break;
    }
    k -= g_ops[i].weight;
  }
  // Keep the table populated: with few handles, map; with a full table, unmap.
  if (nlive() < 2 && strcmp(op, "brk") != 0 && strcmp(op, "invalid") != 0 && strcmp(op, "fork") != 0) op = "mmap";
  if (free_slot() < 0 && (strcmp(op, "mmap") == 0 || strcmp(op, "invalid") == 0)) op = "munmap";
  if (!strcmp(op, "mmap")) op_mmap(st);
  else if (!strcmp(op, "fixed")) op_mmap_fixed(st, false);
  else if (!strcmp(op, "noreplace")) op_mmap_fixed(st, true);
  else if (!strcmp(op, "munmap")) op_munmap(st);
  else if (!strcmp(op, "mprotect")) op_mprotect(st);
  else if (!strcmp(op, "madvise")) op_madvise(st);
  else if (!strcmp(op, "mremap")) op_mremap(st);
  else if (!strcmp(op, "msync")) op_msync(st);
  else if (!strcmp(op, "mincore")) op_mincore(st);
  else if (!strcmp(op, "mlock")) op_mlock(st);
  else if (!strcmp(op, "brk")) op_brk(st);
  else if (!strcmp(op, "write")) op_write(st);
  else if (!strcmp(op, "read")) op_read(st);
  else if (!strcmp(op, "fork")) op_fork(st);
  else op_invalid(st);
  st.finish();
}

void digest_all(const char* label) {
  Line l;
  l.ap("%s %d digest-%s", g_prefix, g_step, label);
  for (int i = 0; i < kMaxHandles; ++i) {
    const Handle& h = g_h[i];
    if (!h.live) continue;
    char mc[kMaxPages + 1];
    mincore_summary(h, mc);
    l.ap(" H%d:%dp[%s]#%012" PRIx64, i, h.n, mc, handle_hash(h) & UINT64_C(0xffffffffffff));
  }
  l.emit();
}

void cleanup_files() {
  char p[128];
  for (int f = 0; f < kFiles; ++f) {
    snprintf(p, sizeof p, "%s/f%d", g_dir, f);
    unlink(p);
  }
  rmdir(g_dir);
}

void on_fatal(int sig) {
  // A fault is a result too: report the step, flush, and die with the signal.
  char m[96];
  int n = snprintf(m, sizeof m, "%s %d FATAL signal %d\n", g_prefix, g_step, sig);
  flush_out();
  if (write(g_out_fd, m, (size_t)n) < 0) {}
  if (!g_in_child) cleanup_files();
  signal(sig, SIG_DFL);
  raise(sig);
}

int usage() {
  fprintf(stderr, "usage: mmap_diff --seed N --steps K [--posix-private] [--ops LIST]\n  LIST: comma-separated of");
  for (int i = 0; i < kNumOps; ++i) fprintf(stderr, " %s", g_ops[i].name);
  fprintf(stderr, "\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  uint64_t seed = 1;
  int steps = 100;
  for (int i = 1; i < argc; ++i) {
    if (!strcmp(argv[i], "--seed") && i + 1 < argc) seed = strtoull(argv[++i], nullptr, 0);
    else if (!strcmp(argv[i], "--steps") && i + 1 < argc) steps = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--posix-private")) g_posix_private = true;
    else if (!strcmp(argv[i], "--ops") && i + 1 < argc) {
      const char* list = argv[++i];
      for (int k = 0; k < kNumOps; ++k) g_ops[k].enabled = false;
      const char* p = list;
      while (*p) {
        const char* e = strchr(p, ',');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        bool found = false;
        for (int k = 0; k < kNumOps; ++k)
          if (strlen(g_ops[k].name) == n && !strncmp(g_ops[k].name, p, n)) g_ops[k].enabled = found = true;
        if (!found) return usage();
        p += n;
        if (*p == ',') ++p;
      }
    } else return usage();
  }
  prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0);
  g_trace = getenv("MMAP_DIFF_TRACE") != nullptr;
  signal(SIGSEGV, on_fatal);
  signal(SIGBUS, on_fatal);
  g_rng = seed * 0x2545f4914f6cdd1dULL + 1;

  snprintf(g_dir, sizeof g_dir, "/tmp/mmap_diff.XXXXXX");
  if (!mkdtemp(g_dir)) {
    perror("mkdtemp");
    return 1;
  }
  static char content[kFilePages * kPage];
  for (int f = 0; f < kFiles; ++f) {
    char p[128];
    snprintf(p, sizeof p, "%s/f%d", g_dir, f);
    g_fd[f] = open(p, O_RDWR | O_CREAT | O_TRUNC, 0644);
    for (size_t i = 0; i < sizeof content; ++i) content[i] = (char)('a' + (i * 7 + (size_t)f * 13 + i / kPage) % 26);
    if (g_fd[f] < 0 || pwrite(g_fd[f], content, sizeof content, 0) != (ssize_t)sizeof content) {
      perror("file");
      return 1;
    }
    g_obj_pages[f] = kFilePages;
    if (f == 0) g_fd_ro = open(p, O_RDONLY);
  }
  g_fd_dir = open(g_dir, O_RDONLY | O_DIRECTORY);
  g_fd_null = open("/dev/null", O_RDWR);
  int pp[2];
  if (pipe(pp) != 0) return 1;
  g_fd_pipe = pp[0];
  // One malloc before the run: under vmrun it boots vmrt (the shim starts on the first
  // malloc), natively it settles glibc's arena; the break is measured after it.
  void* volatile boot = malloc(64);
  free(boot);
  g_brk0 = (char*)sbrk(0);
  fence_layout();

  Line l;
  l.ap("mmap_diff seed %" PRIu64 " steps %d ops", seed, steps);
  for (int k = 0; k < kNumOps; ++k)
    if (g_ops[k].enabled) l.ap(" %s", g_ops[k].name);
  l.emit();
  for (g_step = 1; g_step <= steps; ++g_step) {
    do_step(true);
    if (g_step % 25 == 0) digest_all("periodic");
  }
  --g_step;
  digest_all("final");
  Line e;
  e.ap("end");
  e.emit();
  flush_out();
  cleanup_files();
  return 0;
}
