// vm_fail.cpp — fault injection: the spec parser, the trigger engine, the log.
//
// Design after FreeBSD fail(9) (named fail points, terms with a percentage, a
// count, a "print" term that only reports) and Linux fault-injection (failslab,
// fail_page_alloc: probability, interval, times, space, verbose, a task filter and
// a call-site filter).  Differences: one textual grammar for every layer, a
// counter-based PRNG (a call's draw depends only on the seed and the call number,
// so the same spec and seed fail the same calls), and size / byte-budget / thread
// filters combined freely.
#include "vm/vm_fail.h"

#include <cerrno>
#include <cstring>
#include <ctime>
#include <dlfcn.h>
#include <csignal>
#include <ucontext.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <unwind.h>

#include "vm/vm_types.h"
#include "vm/vm_out.h"
#include "vm/vm_types.h"

namespace vmrt {

namespace detail {
VMRT_FORK_DATA std::atomic<bool> g_vm_fail_armed{false};  // read by every malloc: fork children's first too
}

namespace {

std::atomic<vm_fail_arm_fn> g_arm_hook{nullptr};  // vm_fail_set_arm_hook

// ---------------------------------------------------------------------------
// Parser.

struct cursor {
  const char* base;
  const char* p;
  vm_fail_error* err;
  bool fail(const char* tok, std::size_t len, const char* a, const char* b = "", const char* c = "") {
    err->offset = static_cast<std::size_t>(tok - base);
    err->length = len == 0 ? 1 : len;
    vm_out o(err->message, sizeof err->message);
    o.str(a).str(b).str(c);
    return false;
  }
};

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n'; }
char lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

// [s, s+n) equals the NUL-terminated word w, ignoring case.
bool word_eq(const char* s, std::size_t n, const char* w) {
  std::size_t k = 0;
  for (; k < n && w[k] != '\0'; ++k)
    if (lower(s[k]) != w[k]) return false;
  return k == n && w[k] == '\0';
}

// Unsigned decimal [s, s+n): false on empty, non-digit or overflow.
bool parse_u64(const char* s, std::size_t n, std::uint64_t* out) {
  if (n == 0) return false;
  std::uint64_t v = 0;
  for (std::size_t k = 0; k < n; ++k) {
    if (s[k] < '0' || s[k] > '9') return false;
    unsigned d = static_cast<unsigned>(s[k] - '0');
    if (v > (UINT64_MAX - d) / 10) return false;
    v = v * 10 + d;
  }
  *out = v;
  return true;
}

// Size: digits with an optional K/M/G/T suffix (powers of 1024) and optional B.
bool parse_size(const char* s, std::size_t n, std::uint64_t* out) {
  std::size_t d = 0;
  while (d < n && s[d] >= '0' && s[d] <= '9') ++d;
  std::uint64_t v;
  if (!parse_u64(s, d, &v)) return false;
  unsigned shift = 0;
  std::size_t k = d;
  if (k < n) {
    switch (lower(s[k])) {
      case 'k': shift = 10; ++k; break;
      case 'm': shift = 20; ++k; break;
      case 'g': shift = 30; ++k; break;
      case 't': shift = 40; ++k; break;
      default: break;
    }
  }
  if (k < n && lower(s[k]) == 'b') ++k;
  if (k != n) return false;
  if (shift != 0 && v > (UINT64_MAX >> shift)) return false;
  *out = v << shift;
  return true;
}

// Probability: "0.25", ".5", "1", or a percentage "25%", "0.1%".  0 < p <= 1.
// Exact decimal arithmetic on the digits (no floating point): threshold = p * 2^64.
bool parse_prob(const char* s, std::size_t n, std::uint64_t* threshold) {
  bool percent = n > 0 && s[n - 1] == '%';
  if (percent) --n;
  // value = num / 10^frac_digits (scaled by 1/100 for a percentage)
  constexpr unsigned __int128 kMaxDen = 1000000000000000000ull;  // 10^18
  unsigned __int128 num = 0, den = 1;
  bool dot = false, any = false;
  for (std::size_t k = 0; k < n; ++k) {
    if (s[k] == '.' && !dot) {
      dot = true;
      continue;
    }
    if (s[k] < '0' || s[k] > '9') return false;
    any = true;
    // Fraction digits past 10^-18 are dropped (num < den <= 10^20 keeps num << 32 in
    // 128 bits below); an integer part that large is > 1 anyway.
    if (dot && den >= kMaxDen) continue;
    if (num > kMaxDen) return false;
    num = num * 10 + static_cast<unsigned>(s[k] - '0');
    if (dot) den *= 10;
  }
  if (!any) return false;
  if (percent) den *= 100;
  if (num == 0 || num > den) return false;
  if (num == den) {
    *threshold = UINT64_MAX;  // always (see draw())
    return true;
  }
  // (num << 64) / den without overflow: num < den < 2^107, so split.
  unsigned __int128 hi = (num << 32) / den, rem = (num << 32) % den;
  unsigned __int128 lo = (rem << 32) / den;
  *threshold = static_cast<std::uint64_t>((hi << 32) + lo);
  if (*threshold == 0) *threshold = 1;
  return true;
}

// The token [s, e): up to the next separator in `stops`.
const char* token_end(const char* s, const char* stops) {
  while (*s != '\0' && std::strchr(stops, *s) == nullptr && !is_space(*s)) ++s;
  return s;
}

void skip_spaces(cursor& c) {
  while (is_space(*c.p)) ++c.p;
}

// POINTS := POINT { '+' POINT };  POINT := NAME [ '[' TYPE { '|' TYPE } ']' ]
bool parse_points(cursor& c, vm_fail_clause* cl) {
  for (;;) {
    const char* s = c.p;
    const char* e = token_end(s, ";:,+[");
    if (e == s) return c.fail(s, 1, "expected a fail point name (malloc, calloc, realloc, memalign, new, alloc, kmem, "
                                    "frame, mmap, munmap, mprotect, mlock, pager_read, pager_write, swap_corrupt, pageout)");
    std::size_t n = static_cast<std::size_t>(e - s);
    std::uint32_t bits = 0;
    if (word_eq(s, n, "alloc")) bits = kVmFailAllocGroup;
    for (unsigned k = 0; k < FP_COUNT && bits == 0; ++k)
      if (word_eq(s, n, kVmFailPointNames[k])) bits = 1u << k;
    if (bits == 0) return c.fail(s, n, "unknown fail point (malloc, calloc, realloc, memalign, new, alloc, kmem, frame, "
                                       "mmap, munmap, mprotect, mlock, pager_read, pager_write, swap_corrupt, pageout)");
    if (cl->points & bits) return c.fail(s, n, "fail point named twice in one clause");
    cl->points |= bits;
    c.p = e;
    if (*c.p == '[') {
      if (bits != (1u << FP_KMEM)) return c.fail(c.p, 1, "only kmem takes a [type] qualifier");
      ++c.p;
      for (;;) {
        const char* t = c.p;
        const char* te = token_end(t, "|];:,");
        std::size_t tn = static_cast<std::size_t>(te - t);
        const char* name = t;
        std::size_t nn = tn;
        if (nn > 2 && lower(name[0]) == 'm' && name[1] == '_') {
          name += 2;
          nn -= 2;
        }
        unsigned k = 0;
        while (k < kVmFailKmemTypeCount && !word_eq(name, nn, kVmFailKmemTypes[k])) ++k;
        if (k == kVmFailKmemTypeCount)
          return c.fail(t, tn, "unknown kmem malloc type (free, temp, devbuf, vmmap, vmobj, libc, cxx, test; "
                               "M_ prefix optional)");
        cl->kmem_types |= 1u << k;
        c.p = te;
        if (*c.p == '|') {
          ++c.p;
          continue;
        }
        if (*c.p != ']') return c.fail(c.p, 1, "expected '|' or ']' in the kmem type list");
        ++c.p;
        break;
      }
    }
    if (*c.p != '+') return true;
    ++c.p;
  }
}

enum term_bit : std::uint32_t {
  T_PROB = 1, T_SEED = 2, T_EVERY = 4, T_NTH = 8, T_AFTER = 16, T_BYTES = 32, T_TIMES = 64,
  T_SIZE = 128, T_THREAD = 256, T_CALLER = 512, T_OBJECT = 1024, T_PRINT = 2048, T_SLEEP = 4096
};

// Duration: digits with a unit ns, us, ms or s; bare digits are milliseconds (fail(9)'s
// sleep term).  At most 60 s.
bool parse_duration(const char* s, std::size_t n, std::uint64_t* ns) {
  std::size_t d = 0;
  while (d < n && s[d] >= '0' && s[d] <= '9') ++d;
  std::uint64_t v;
  if (!parse_u64(s, d, &v)) return false;
  struct unit {
    const char* name;
    std::uint64_t ns;
  };
  static constexpr unit units[] = {{"", 1000000}, {"ns", 1}, {"us", 1000}, {"ms", 1000000}, {"s", 1000000000}};
  static_assert(sizeof(units) / sizeof(units[0]) == 5);
  for (const unit& u : units) {
    if (!word_eq(s + d, n - d, u.name)) continue;
    constexpr std::uint64_t kMaxNs = 60ull * 1000000000;
    if (v > kMaxNs / u.ns || v * u.ns == 0) return false;
    *ns = v * u.ns;
    return true;
  }
  return false;
}

bool copy_name(cursor& c, const char* v, std::size_t n, char* out, const char* what) {
  if (n == 0) return c.fail(v, 1, what, " needs a name");
  if (n >= kVmFailNameLen) return c.fail(v, n, what, " name too long (at most 63 characters)");
  std::memcpy(out, v, n);
  out[n] = '\0';
  return true;
}

// TERM := KEY '=' VALUE | 'print'
bool parse_term(cursor& c, vm_fail_clause* cl, std::uint32_t* seen) {
  const char* s = c.p;
  const char* e = token_end(s, ";,");
  std::size_t n = static_cast<std::size_t>(e - s);
  c.p = e;
  if (n == 0) return c.fail(s, 1, "expected a trigger term (prob=, seed=, every=, nth=, after=, bytes=, times=, size=, "
                                  "thread=, caller=, object=, print, sleep=)");
  const char* eq = static_cast<const char*>(std::memchr(s, '=', n));
  std::size_t kn = eq != nullptr ? static_cast<std::size_t>(eq - s) : n;
  const char* v = eq != nullptr ? eq + 1 : e;
  std::size_t vn = static_cast<std::size_t>(e - v);
  struct key {
    vm_name<8> name;  // in place: never relocated (vm/vm_types.h)
    term_bit bit;
    bool takes_value;
  };
  static constexpr key keys[] = {
      {"prob", T_PROB, true},   {"seed", T_SEED, true},     {"every", T_EVERY, true}, {"nth", T_NTH, true},
      {"after", T_AFTER, true}, {"bytes", T_BYTES, true},   {"times", T_TIMES, true}, {"size", T_SIZE, true},
      {"thread", T_THREAD, true}, {"caller", T_CALLER, true}, {"object", T_OBJECT, true}, {"print", T_PRINT, false},
      {"sleep", T_SLEEP, true}};
  static_assert(sizeof(keys) / sizeof(keys[0]) == 13);
  const key* k = nullptr;
  for (const key& x : keys)
    if (word_eq(s, kn, x.name)) k = &x;
  if (k == nullptr)
    return c.fail(s, kn, "unknown trigger term (prob=, seed=, every=, nth=, after=, bytes=, times=, size=, thread=, "
                         "caller=, object=, print, sleep=)");
  if (*seen & k->bit) return c.fail(s, n, "term given twice in one clause");
  *seen |= k->bit;
  if (!k->takes_value) {
    if (eq != nullptr) return c.fail(s, n, k->name, " takes no value");
    cl->print_only = true;
    return true;
  }
  if (eq == nullptr) return c.fail(s, n, k->name, " needs a value (", "KEY=VALUE)");
  std::uint64_t u;
  switch (k->bit) {
    case T_PROB:
      if (!parse_prob(v, vn, &cl->prob_threshold))
        return c.fail(v, vn, "prob: not a probability in (0, 1] (e.g. 0.01, .5, 1, or a percentage 2.5%)");
      cl->has_prob = true;
      return true;
    case T_SEED:
      if (!parse_u64(v, vn, &cl->seed)) return c.fail(v, vn, "seed: not an unsigned decimal integer");
      return true;
    case T_EVERY:
    case T_NTH:
    case T_AFTER:
    case T_TIMES:
      if (!parse_u64(v, vn, &u) || u == 0) return c.fail(v, vn, k->name, ": not a count >= 1");
      (k->bit == T_EVERY ? cl->every : k->bit == T_NTH ? cl->nth : k->bit == T_AFTER ? cl->after : cl->times) = u;
      return true;
    case T_BYTES:
      if (!parse_size(v, vn, &cl->bytes)) return c.fail(v, vn, "bytes: not a size (e.g. 4096, 64K, 10M)");
      cl->has_bytes = true;
      return true;
    case T_SIZE: {
      const char* dash = static_cast<const char*>(std::memchr(v, '-', vn));
      std::uint64_t lo = 0, hi = UINT64_MAX;
      bool ok;
      if (dash == nullptr) {
        ok = parse_size(v, vn, &lo);
        hi = lo;
      } else {
        std::size_t ln = static_cast<std::size_t>(dash - v), hn = vn - ln - 1;
        ok = (ln != 0 || hn != 0) && (ln == 0 || parse_size(v, ln, &lo)) && (hn == 0 || parse_size(dash + 1, hn, &hi));
      }
      if (!ok) return c.fail(v, vn, "size: not a size or range (N, LO-HI, LO-, -HI; e.g. 1M-, 16-64)");
      if (lo > hi) return c.fail(v, vn, "size: empty range (LO > HI)");
      cl->size_lo = lo;
      cl->size_hi = hi;
      return true;
    }
    case T_THREAD: {
      if (word_eq(v, vn, "main")) {
        cl->main_thread = true;
        return true;
      }
      const char* t = v;
      while (t < e) {
        const char* te = t;
        while (te < e && *te != '+') ++te;
        std::size_t tn = static_cast<std::size_t>(te - t);
        if (!parse_u64(t, tn, &u) || u == 0 || u > INT32_MAX)
          return c.fail(t, tn, "thread: not 'main' or a thread id (several joined with '+')");
        if (cl->ntids == kVmFailMaxTids) return c.fail(t, tn, "thread: at most 8 thread ids");
        cl->tids[cl->ntids++] = static_cast<std::int32_t>(u);
        t = te < e ? te + 1 : te;
        if (te < e && t == e) return c.fail(te, 1, "thread: trailing '+'");
      }
      if (cl->ntids == 0) return c.fail(v, vn, "thread: not 'main' or a thread id");
      return true;
    }
    case T_SLEEP:
      if (!parse_duration(v, vn, &cl->sleep_ns))
        return c.fail(v, vn, "sleep: not a duration from 1ns to 60s (N ms, or with a unit: 500us, 20ms, 1s)");
      return true;
    case T_CALLER:
      return copy_name(c, v, vn, cl->caller, "caller:");
    case T_OBJECT:
      return copy_name(c, v, vn, cl->object, "object:");
    default:
      return c.fail(s, n, "internal: unhandled term");
  }
}

// CLAUSE := POINTS [ ':' TERM { ',' TERM } ]
bool parse_clause(cursor& c, vm_fail_clause* cl) {
  std::memset(cl, 0, sizeof *cl);
  cl->seed = 1;
  cl->size_hi = UINT64_MAX;
  const char* start = c.p;
  if (!parse_points(c, cl)) return false;
  std::uint32_t seen = 0;
  skip_spaces(c);
  if (*c.p == ':') {
    ++c.p;
    for (;;) {
      skip_spaces(c);
      if (!parse_term(c, cl, &seen)) return false;
      skip_spaces(c);
      if (*c.p != ',') break;
      ++c.p;
    }
  }
  if (*c.p != '\0' && *c.p != ';') return c.fail(c.p, 1, "expected ',' between terms or ';' between clauses");
  if ((seen & T_SEED) && !(seen & T_PROB))
    return c.fail(start, static_cast<std::size_t>(c.p - start), "seed= without prob= (the seed drives the probability)");
  if ((seen & T_SLEEP) && (seen & T_PRINT))
    return c.fail(start, static_cast<std::size_t>(c.p - start), "sleep= and print are both actions: give one per clause");
  if (cl->nth != 0 && cl->after != 0 && cl->nth <= cl->after)
    return c.fail(start, static_cast<std::size_t>(c.p - start), "nth= at or before after=: the clause can never fire");
  return true;
}

// ---------------------------------------------------------------------------
// Engine state.

struct clause_rt {
  std::atomic<std::uint64_t> calls;      // matching calls (the call number n)
  std::atomic<std::uint64_t> bytes;      // bytes let through (budget)
  std::atomic<std::uint64_t> failures;   // failures injected (or printed)
};

VMRT_LARGE_BSS vm_fail_spec g_spec;                         // written by vm_fail_arm only
// Written by vm_fail_arm and, once armed, the points' calls.
VMRT_COLD_BSS clause_rt g_rt[kVmFailMaxClauses];
VMRT_COLD_BSS std::uint32_t g_point_clauses[FP_COUNT];  // bit per clause naming the point
VMRT_COLD_BSS std::uint32_t g_named_points;             // points any clause names
VMRT_COLD_BSS std::atomic<std::uint64_t> g_calls[FP_COUNT];
VMRT_COLD_BSS std::atomic<std::uint64_t> g_failures[FP_COUNT];
VMRT_COLD_BSS std::atomic<std::uint64_t> g_delays[FP_COUNT];
bool g_any_sleep;                            // some clause has sleep= (the summary's column)
std::atomic<int> g_log_fd{2};
std::atomic<bool> g_backtrace{true};
std::atomic<int> g_logging_tid{0};           // thread writing a record (re-entry guard)
std::atomic<bool> g_env_done{false};
VMRT_FORK_DATA bool g_armed_from_env = false;  // print the summary at exit (read by every exit)

int current_tid() { return static_cast<int>(::syscall(SYS_gettid)); }

// splitmix64 finaliser (Steele, Lea and Flood): a bijective mixer of good quality.
std::uint64_t mix64(std::uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

// The PRNG draw for call n of clause ci: depends only on (seed, clause, n).
bool draw(const vm_fail_clause& c, unsigned ci, std::uint64_t n) {
  if (c.prob_threshold == UINT64_MAX) return true;
  std::uint64_t key = mix64(c.seed + 0x9e3779b97f4a7c15ull * (ci + 1));
  return mix64(key + n * 0x9e3779b97f4a7c15ull) < c.prob_threshold;
}

// Stack capture.
constexpr int kMaxFrames = 32;
struct frames {
  std::uintptr_t ip[kMaxFrames];
  int n;
};

_Unwind_Reason_Code collect(struct _Unwind_Context* ctx, void* arg) {
  auto* f = static_cast<frames*>(arg);
  if (f->n >= kMaxFrames - 1) return _URC_END_OF_STACK;  // a slot stays free (log_event)
  std::uintptr_t ip = _Unwind_GetIP(ctx);
  if (ip == 0) return _URC_END_OF_STACK;
  f->ip[f->n++] = ip;
  return _URC_NO_REASON;
}

void capture(frames* f) {
  f->n = 0;
  _Unwind_Backtrace(collect, f);
}

const char* base_name(const char* path) {
  const char* b = std::strrchr(path, '/');
  return b != nullptr ? b + 1 : path;
}

// The caller / object filter: a frame in function `caller` (by dynamic symbol
// name) or in a shared object whose file name starts with `object`.
bool stack_matches(const vm_fail_clause& c) {
  frames f;
  capture(&f);
  for (int k = 1; k < f.n; ++k) {
    Dl_info di;
    if (::dladdr(reinterpret_cast<void*>(f.ip[k] - 1), &di) == 0) continue;
    if (c.caller[0] != '\0' && di.dli_sname != nullptr && std::strcmp(di.dli_sname, c.caller) == 0) return true;
    if (c.object[0] != '\0' && di.dli_fname != nullptr &&
        std::strncmp(base_name(di.dli_fname), c.object, std::strlen(c.object)) == 0)
      return true;
  }
  return false;
}

// Module and file offset of each frame, from /proc/self/maps (no loader lock, no
// allocation: a stack buffer read in chunks).
struct frame_where {
  char path[160];
  std::uint64_t off;
};

void resolve_frames(const frames& f, frame_where* w) {
  for (int k = 0; k < f.n; ++k) {
    w[k].path[0] = '\0';
    w[k].off = f.ip[k];
  }
  int fd = ::open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return;
  char buf[4096];
  std::size_t have = 0;
  for (;;) {
    ssize_t r = ::read(fd, buf + have, sizeof buf - 1 - have);
    if (r < 0 && errno == EINTR) continue;
    if (r > 0) have += static_cast<std::size_t>(r);
    buf[have] = '\0';
    char* line = buf;
    for (;;) {
      char* nl = std::strchr(line, '\n');
      if (nl == nullptr) break;
      *nl = '\0';
      // start-end perms offset dev inode path
      char* q = line;
      std::uint64_t fields[3] = {0, 0, 0};
      for (int fi = 0; fi < 3; ++fi) {
        if (fi == 2) {  // skip perms
          while (*q != ' ' && *q != '\0') ++q;
          while (*q == ' ') ++q;
        }
        std::uint64_t v = 0;
        for (;; ++q) {
          char ch = *q;
          unsigned d;
          if (ch >= '0' && ch <= '9') d = static_cast<unsigned>(ch - '0');
          else if (ch >= 'a' && ch <= 'f') d = static_cast<unsigned>(ch - 'a' + 10);
          else break;
          v = v * 16 + d;
        }
        fields[fi] = v;
        if (*q == '-' || *q == ' ') ++q;
      }
      // skip dev, inode
      for (int skip = 0; skip < 2; ++skip) {
        while (*q == ' ') ++q;
        while (*q != ' ' && *q != '\0') ++q;
      }
      while (*q == ' ') ++q;
      if (*q == '/') {
        for (int k = 0; k < f.n; ++k) {
          if (f.ip[k] >= fields[0] && f.ip[k] < fields[1]) {
            std::size_t len = std::strlen(q);
            if (len >= sizeof w[k].path) len = sizeof w[k].path - 1;
            std::memcpy(w[k].path, q, len);
            w[k].path[len] = '\0';
            w[k].off = f.ip[k] - fields[0] + fields[2];
          }
        }
      }
      line = nl + 1;
    }
    std::size_t rest = have - static_cast<std::size_t>(line - buf);
    std::memmove(buf, line, rest);
    have = rest;
    if (r <= 0 || have == sizeof buf - 1) break;
  }
  ::close(fd);
}

// The module holding this code, to drop the engine's own leading frames.
bool in_own_module(const frame_where& w, const frame_where& self) {
  return w.path[0] != '\0' && std::strcmp(w.path, self.path) == 0;
}

// Frames after the engine's own leading frames, and `skip` more.
void log_frames_impl(vm_out& o, const frames& f, int skip);
inline void log_frames(vm_out& o, const frames& f, int skip = 0) { log_frames_impl(o, f, skip); }

// One record per injected (or printed) failure, written with a single write(2)
// so records of several threads and processes (O_APPEND) do not interleave.
const char* event_kind(const vm_fail_clause& c) { return c.print_only ? "print " : c.sleep_ns != 0 ? "delay " : "inject "; }

void log_event(vm_fail_point fp, unsigned ci, std::uint64_t n, std::size_t size, int tid, const char* kind) {
  char buf[6144];
  vm_out o(buf, sizeof buf);
  o.str("vmrt-fail: ").str(kind).str(kVmFailPointNames[fp]).str(" #").u(n);
  o.str(" size=").u(size).str(" clause=").u(ci + 1).str(" tid=").i(tid).str(" pid=").i(::getpid());
  if (g_spec.clauses[ci].sleep_ns != 0) o.str(" sleep_us=").u(g_spec.clauses[ci].sleep_ns / 1000);
  o.str("\n");
  if (g_backtrace.load(std::memory_order_relaxed)) {
    frames f;
    capture(&f);
    log_frames(o, f);
  }
  o.str("vmrt-fail: end\n");
  vm_write_all(g_log_fd.load(std::memory_order_relaxed), o.data(), o.len());
}

// The crash record of VMRT_FAIL_CRASH=1 (vmrun --fail-sweep): the signal and the
// stack, then the default action (SA_RESETHAND: returning re-executes the fault,
// abort() re-raises).
void crash_handler(int sig, siginfo_t*, void* ucv) {
  char buf[6144];
#if defined(__x86_64__)
  {
    // First a record of the faulting instruction alone, from the signal context: the
    // stack walk below may fault itself (a smashed stack, a jump through a bad pointer:
    // the handler is SA_RESETHAND, so that second fault ends the process unrecorded).
    // When the instruction is in no module (a wild jump), the word at the stack pointer
    // follows: the return address of the call that jumped.  vmrun prefers the longer record.
    const ucontext_t* uc = static_cast<const ucontext_t*>(ucv);
    frames pc;
    pc.n = 0;
    pc.ip[pc.n++] = static_cast<std::uintptr_t>(uc->uc_mcontext.gregs[REG_RIP]) + 1;  // symbolisers take ip - 1
    frame_where w[2];
    resolve_frames(pc, w);
    if (w[0].path[0] == '\0') {
      std::uintptr_t ret = *reinterpret_cast<const std::uintptr_t*>(uc->uc_mcontext.gregs[REG_RSP]);
      if (ret != 0) pc.ip[pc.n++] = ret;
    }
    vm_out o(buf, sizeof buf);
    o.str("vmrt-fail: crash signal=").i(sig).str(" tid=").i(current_tid()).str(" pid=").i(::getpid()).str("\n");
    log_frames(o, pc);
    o.str("vmrt-fail: end\n");
    vm_write_all(g_log_fd.load(std::memory_order_relaxed), o.data(), o.len());
  }
#else
  (void)ucv;
#endif
  vm_out o(buf, sizeof buf);
  o.str("vmrt-fail: crash signal=").i(sig).str(" tid=").i(current_tid()).str(" pid=").i(::getpid()).str("\n");
  frames f;
  capture(&f);
  log_frames(o, f, 1);  // and the signal trampoline (__restore_rt) after our frames
  o.str("vmrt-fail: end\n");
  vm_write_all(g_log_fd.load(std::memory_order_relaxed), o.data(), o.len());
}

void install_crash_handlers() {
  static constexpr int kSignals[] = {SIGSEGV, SIGBUS, SIGABRT, SIGFPE, SIGILL};
  for (int sig : kSignals) {
    struct sigaction old{}, sa{};
    if (::sigaction(sig, nullptr, &old) != 0 || old.sa_handler != SIG_DFL) continue;  // the program's own
    sa.sa_sigaction = crash_handler;
    sa.sa_flags = SA_SIGINFO | SA_RESETHAND | SA_NODEFER;
    sigemptyset(&sa.sa_mask);
    ::sigaction(sig, &sa, nullptr);
  }
}

void log_frames_impl(vm_out& o, const frames& f, int skip) {
  {
    frame_where w[kMaxFrames + 1];
    // the last slot: where this function lives
    frames all = f;
    int selfslot = all.n++;  // capture() leaves this slot free
    all.ip[selfslot] = reinterpret_cast<std::uintptr_t>(&log_event);
    resolve_frames(all, w);
    int k = 0;
    while (k < f.n && in_own_module(w[k], w[selfslot])) ++k;
    k += skip;
    for (; k < f.n; ++k) {
      o.str("vmrt-fail:   at ").str(w[k].path[0] != '\0' ? w[k].path : "?").str(" ").hex(w[k].off).str("\n");
    }
  }
}

}  // namespace

bool vm_fail_parse(const char* text, vm_fail_spec* out, vm_fail_error* err) {
  std::memset(out, 0, sizeof *out);
  cursor c{text, text, err};
  err->offset = 0;
  err->length = 0;
  err->message[0] = '\0';
  skip_spaces(c);
  if (*c.p == '\0') return c.fail(c.p, 1, "empty spec (give at least one clause, e.g. malloc:prob=0.01)");
  for (;;) {
    skip_spaces(c);
    if (*c.p == ';' || *c.p == '\0') return c.fail(c.p, 1, "empty clause");
    if (out->nclauses == kVmFailMaxClauses) return c.fail(c.p, 1, "too many clauses (at most 16)");
    if (!parse_clause(c, &out->clauses[out->nclauses])) return false;
    ++out->nclauses;
    if (*c.p == '\0') return true;
    ++c.p;  // ';'
    skip_spaces(c);
    if (*c.p == '\0') return true;  // a trailing ';' is allowed
  }
}

void vm_fail_format_error(const char* text, const vm_fail_error& err, char* buf, std::size_t cap) {
  vm_out o(buf, cap);
  o.str(err.message).str("\n  ").str(text).str("\n  ");
  for (std::size_t k = 0; k < err.offset; ++k) o.ch(text[k] == '\t' ? '\t' : ' ');
  for (std::size_t k = 0; k < err.length; ++k) o.ch('^');
}

void vm_fail_set_arm_hook(vm_fail_arm_fn fn) {
  g_arm_hook.store(fn, std::memory_order_release);
  if (fn != nullptr && detail::g_vm_fail_armed.load(std::memory_order_acquire)) fn(true);
}

void vm_fail_arm(const vm_fail_spec& spec) {
  detail::g_vm_fail_armed.store(false, std::memory_order_release);
  g_spec = spec;
  g_named_points = 0;
  for (unsigned p = 0; p < FP_COUNT; ++p) {
    g_point_clauses[p] = 0;
    g_calls[p].store(0, std::memory_order_relaxed);
    g_failures[p].store(0, std::memory_order_relaxed);
    g_delays[p].store(0, std::memory_order_relaxed);
  }
  g_any_sleep = false;
  for (unsigned ci = 0; ci < spec.nclauses; ++ci) {
    g_rt[ci].calls.store(0, std::memory_order_relaxed);
    g_rt[ci].bytes.store(0, std::memory_order_relaxed);
    g_rt[ci].failures.store(0, std::memory_order_relaxed);
    for (unsigned p = 0; p < FP_COUNT; ++p)
      if (spec.clauses[ci].points & (1u << p)) g_point_clauses[p] |= 1u << ci;
    g_named_points |= spec.clauses[ci].points;
    if (spec.clauses[ci].sleep_ns != 0) g_any_sleep = true;
  }
  detail::g_vm_fail_armed.store(spec.nclauses != 0, std::memory_order_release);
  if (vm_fail_arm_fn fn = g_arm_hook.load(std::memory_order_acquire)) fn(spec.nclauses != 0);
}

void vm_fail_disarm() {
  detail::g_vm_fail_armed.store(false, std::memory_order_release);
  if (vm_fail_arm_fn fn = g_arm_hook.load(std::memory_order_acquire)) fn(false);
}

void vm_fail_set_log_fd(int fd) { g_log_fd.store(fd, std::memory_order_relaxed); }
void vm_fail_set_backtrace(bool on) { g_backtrace.store(on, std::memory_order_relaxed); }

vm_fail_counts vm_fail_get_counts(vm_fail_point fp) {
  return {g_calls[fp].load(std::memory_order_relaxed), g_failures[fp].load(std::memory_order_relaxed),
          g_delays[fp].load(std::memory_order_relaxed)};
}

void vm_fail_delay(std::uint64_t ns) {
  if (ns == 0) return;
  timespec ts{static_cast<time_t>(ns / 1000000000), static_cast<long>(ns % 1000000000)};
  while (::nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

bool vm_fail_eval(vm_fail_point fp, std::size_t size, unsigned sub, std::uint64_t* delay_ns) {
  if (!detail::g_vm_fail_armed.load(std::memory_order_acquire) || fp >= FP_COUNT) return false;
  // Re-entry from our own logging / stack walk (which should not allocate, but a
  // foreign unwinder or loader might): never fail, never count.
  int busy = g_logging_tid.load(std::memory_order_relaxed);
  int tid = 0;
  if (busy != 0) {
    tid = current_tid();
    if (busy == tid) return false;
  }
  std::uint32_t set = g_point_clauses[fp];
  if (set == 0) return false;  // no clause names the point: nothing to count (the summary shows named points)
  g_calls[fp].fetch_add(1, std::memory_order_relaxed);
  bool failed = false;  // every clause sees (and counts) every call
  std::uint64_t delay = 0;
  while (set != 0) {
    unsigned ci = static_cast<unsigned>(__builtin_ctz(set));
    set &= set - 1;
    const vm_fail_clause& c = g_spec.clauses[ci];
    clause_rt& rt = g_rt[ci];
    // Filters: a call that does not match is not counted by the clause.
    if (fp == FP_KMEM && c.kmem_types != 0 && (sub >= 32 || (c.kmem_types & (1u << sub)) == 0)) continue;
    if (size < c.size_lo || size > c.size_hi) continue;
    if (c.main_thread || c.ntids != 0) {
      if (tid == 0) tid = current_tid();
      bool ok = c.main_thread && tid == ::getpid();
      for (unsigned k = 0; k < c.ntids && !ok; ++k) ok = c.tids[k] == tid;
      if (!ok) continue;
    }
    if (c.caller[0] != '\0' || c.object[0] != '\0') {
      if (tid == 0) tid = current_tid();
      int expect = 0;
      if (!g_logging_tid.compare_exchange_strong(expect, tid, std::memory_order_acq_rel)) {
        if (expect == tid) break;
        continue;  // another thread is walking its stack: treat as no match
      }
      bool m = stack_matches(c);
      g_logging_tid.store(0, std::memory_order_release);
      if (!m) continue;
    }
    std::uint64_t n = rt.calls.fetch_add(1, std::memory_order_relaxed) + 1;
    if (c.times != 0 && rt.failures.load(std::memory_order_relaxed) >= c.times) continue;
    if (c.after != 0 && n <= c.after) continue;
    if (c.nth != 0 && n != c.nth) continue;
    if (c.every != 0 && n % c.every != 0) continue;
    if (c.has_bytes) {
      // The budget passes a call while the bytes passed so far plus this call fit.
      std::uint64_t used = rt.bytes.load(std::memory_order_relaxed);
      bool fits = false;
      while (used + size >= used && used + size <= c.bytes) {
        if (rt.bytes.compare_exchange_weak(used, used + size, std::memory_order_relaxed)) {
          fits = true;
          break;
        }
      }
      if (fits) continue;
    }
    if (c.has_prob && !draw(c, ci, n)) continue;
    std::uint64_t k = rt.failures.fetch_add(1, std::memory_order_relaxed) + 1;
    if (c.times != 0 && k > c.times) continue;  // lost a race for the last one
    if (c.sleep_ns == 0 && !c.print_only) g_failures[fp].fetch_add(1, std::memory_order_relaxed);
    if (tid == 0) tid = current_tid();
    int expect = 0;
    if (g_logging_tid.compare_exchange_strong(expect, tid, std::memory_order_acq_rel)) {
      log_event(fp, ci, n, size, tid, event_kind(c));
      g_logging_tid.store(0, std::memory_order_release);
    } else {
      // Another thread is logging: write the record without a stack.
      char buf[256];
      vm_out o(buf, sizeof buf);
      o.str("vmrt-fail: ").str(event_kind(c)).str(kVmFailPointNames[fp]).str(" #").u(n);
      o.str(" size=").u(size).str(" clause=").u(ci + 1).str(" tid=").i(tid).str("\nvmrt-fail: end\n");
      vm_write_all(g_log_fd.load(std::memory_order_relaxed), o.data(), o.len());
    }
    if (c.sleep_ns != 0) delay += c.sleep_ns;
    else if (!c.print_only) failed = true;
  }
  // A call that fails is not delayed as well (the failure is the answer).
  if (!failed && delay != 0) {
    g_delays[fp].fetch_add(1, std::memory_order_relaxed);
    if (delay_ns != nullptr) *delay_ns += delay;
    else vm_fail_delay(delay);
  }
  return failed;
}

void vm_fail_summary() {
  char buf[2048];
  vm_out o(buf, sizeof buf);
  o.str("vmrt-fail: summary pid=").i(::getpid()).str("\n");
  o.str("vmrt-fail:   ").str_w("point", 14).str_r("calls", 12).str_r("failed", 10);
  if (g_any_sleep) o.str_r("delayed", 10);
  o.str("\n");
  for (unsigned p = 0; p < FP_COUNT; ++p) {
    if ((g_named_points & (1u << p)) == 0) continue;
    o.str("vmrt-fail:   ").str_w(kVmFailPointNames[p], 14).u(g_calls[p].load(std::memory_order_relaxed), 12);
    o.u(g_failures[p].load(std::memory_order_relaxed), 10);
    if (g_any_sleep) o.u(g_delays[p].load(std::memory_order_relaxed), 10);
    o.str("\n");
  }
  vm_write_all(g_log_fd.load(std::memory_order_relaxed), o.data(), o.len());
}

void vm_fail_init_from_env() {
  g_env_done.store(true, std::memory_order_relaxed);
  const char* text = ::getenv("VMRT_FAIL");
  if (text == nullptr || *text == '\0') return;
  VMRT_LARGE_BSS static vm_fail_spec spec;  // too large for some threads' stacks; boot is single-threaded
  vm_fail_error err;
  if (!vm_fail_parse(text, &spec, &err)) {
    char msg[1024];
    vm_fail_format_error(text, err, msg, sizeof msg);
    vm_fd_out<1200> m(2);
    m.str("vmrt: VMRT_FAIL rejected, running without fault injection: ").str(msg).str("\n");
    return;
  }
  if (const char* path = ::getenv("VMRT_FAIL_LOG"); path != nullptr && *path != '\0') {
    int fd = ::open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) {
      vm_fd_out<512> m(2);
      m.str("vmrt: VMRT_FAIL_LOG: cannot open ").str(path).str(": errno ").i(errno).str("; logging to stderr\n");
    } else {
      // Out of the way of programs that close their low descriptors.
      int hi = ::fcntl(fd, F_DUPFD_CLOEXEC, 700);
      if (hi >= 0) {
        ::close(fd);
        fd = hi;
      }
      vm_fail_set_log_fd(fd);
    }
  } else {
    int hi = ::fcntl(2, F_DUPFD_CLOEXEC, 700);
    if (hi >= 0) vm_fail_set_log_fd(hi);
  }
  if (const char* cr = ::getenv("VMRT_FAIL_CRASH"); cr != nullptr && cr[0] == '1') install_crash_handlers();
  if (const char* bt = ::getenv("VMRT_FAIL_BACKTRACE"); bt != nullptr && bt[0] == '0') vm_fail_set_backtrace(false);
  vm_fail_arm(spec);
  g_armed_from_env = true;
}

#ifndef VMRT_FAIL_PARSER_ONLY
namespace {
// Early: before other constructors allocate much.  The exit summary runs from a
// destructor (after the program's atexit handlers).
__attribute__((constructor(101))) void vm_fail_ctor() {
  if (!g_env_done.load(std::memory_order_relaxed)) vm_fail_init_from_env();
}
// With the fork text (vm_types.h): every exiting process runs it, a fork child too.
VMRT_FORK_TEXT __attribute__((destructor(101))) void vm_fail_dtor() {
  if (g_armed_from_env && detail::g_vm_fail_armed.load(std::memory_order_relaxed)) {
    vm_fail_disarm();
    vm_fail_summary();
  }
}
}  // namespace
#endif

}  // namespace vmrt
