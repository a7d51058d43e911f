// vmrun-guest — `vmrun --guest`: load one guest (an x86-64 ELF shared object) into a
// vmspace and call one function (runtime/guest.h, issue 10).
//
//   vmrun --guest [--ret T] [--time-limit MS] [--memory SIZE] [--stack SIZE] lib.so FUNC [ARG...]
//
// Argument types come from their form: an integer (decimal, or 0x hex) is a long ('l'),
// a number with '.', 'e', "inf" or "nan" is a double ('d'), anything else is a string,
// copied into the guest's memory and passed as a pointer ('p').  A prefix forces the
// type: i:5 (int), l:5, d:2, f:2.5, s:text (string), p:0x1000 (a raw guest address).
// --ret gives the return type: l (default), i, d, f, p (printed in hex), s (a pointer to
// a NUL-terminated string in the guest, printed), v (nothing printed).
// Exit status: 0 and the result on stdout; 1 and the trap on stderr ("vmrun: guest trap:
// KIND at ADDR pc PC (SYMBOL+OFF)") — never death by a signal; 2 usage; 126 load refused.
//
// An ordinary program (not part of the machine): it uses libc freely.
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "runtime/vmrt.h"

namespace {

constexpr int kExitTrap = 1;
constexpr int kExitUsage = 2;
constexpr int kExitLoad = 126;

[[noreturn]] void usage(const std::string& why) {
  std::fprintf(stderr,
               "vmrun --guest: %s\n"
               "usage: vmrun --guest [--ret l|i|d|f|p|s|v] [--time-limit MS] [--memory SIZE] [--stack SIZE]\n"
               "                     lib.so FUNC [ARG...]   (ARG: 42, 0x2a, 1.5, text, or i:/l:/d:/f:/s:/p: prefixed)\n",
               why.c_str());
  std::exit(kExitUsage);
}

bool parse_size(const char* s, size_t* out) {
  char* end = nullptr;
  errno = 0;
  unsigned long long v = std::strtoull(s, &end, 10);
  if (errno != 0 || end == s) return false;
  unsigned shift = 0;
  if (*end == 'K' || *end == 'k') shift = 10;
  else if (*end == 'M' || *end == 'm') shift = 20;
  else if (*end == 'G' || *end == 'g') shift = 30;
  if (shift != 0) ++end;
  if (*end != '\0') return false;
  *out = static_cast<size_t>(v) << shift;
  return true;
}

bool parse_long(const std::string& s, long long* out) {
  if (s.empty()) return false;
  char* end = nullptr;
  errno = 0;
  long long v = std::strtoll(s.c_str(), &end, 0);
  if (errno != 0 || *end != '\0') return false;
  *out = v;
  return true;
}

bool parse_double(const std::string& s, double* out) {
  if (s.empty()) return false;
  char* end = nullptr;
  errno = 0;
  double v = std::strtod(s.c_str(), &end);
  if (*end != '\0') return false;
  *out = v;
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  char ret_type = 'l';
  vmrt_guest_options opt{};
  int i = 1;
  for (; i < argc && argv[i][0] == '-' && argv[i][1] == '-'; ++i) {
    std::string a = argv[i];
    if (a == "--") {
      ++i;
      break;
    }
    if (i + 1 >= argc) usage(a + " needs a value");
    std::string v = argv[++i];
    if (a == "--ret") {
      if (v.size() != 1 || std::strchr("lidfpsv", v[0]) == nullptr) usage("--ret: one of l i d f p s v");
      ret_type = v[0];
    } else if (a == "--time-limit") {
      long long ms;
      if (!parse_long(v, &ms) || ms <= 0 || ms > 86400000) usage("--time-limit: milliseconds, 1..86400000");
      opt.time_limit_ms = static_cast<unsigned>(ms);
    } else if (a == "--memory") {
      if (!parse_size(v.c_str(), &opt.memory_limit) || opt.memory_limit == 0) usage("--memory: a size (e.g. 64M)");
    } else if (a == "--stack") {
      if (!parse_size(v.c_str(), &opt.stack_size) || opt.stack_size == 0) usage("--stack: a size (e.g. 1M)");
    } else {
      usage("unknown option '" + a + "'");
    }
  }
  if (argc - i < 2) usage("need lib.so and FUNC");
  const char* lib = argv[i];
  const char* func = argv[i + 1];
  std::vector<std::string> args(argv + i + 2, argv + argc);
  if (args.size() > 16) usage("at most 16 arguments");

  vmrt_guest* g = nullptr;
  char err[512];
  if (vmrt_guest_load(lib, &opt, &g, err, sizeof err) != 0) {
    std::fprintf(stderr, "vmrun: guest refused: %s\n", err);
    return kExitLoad;
  }
  std::string sig(1, ret_type == 's' ? 'p' : ret_type);
  sig += '(';
  std::vector<vmrt_guest_value> vals;
  for (const std::string& a0 : args) {
    vmrt_guest_value v;
    v.i = 0;
    char t = 0;
    std::string a = a0;
    if (a.size() >= 2 && a[1] == ':' && std::strchr("ildfsp", a[0]) != nullptr) {
      t = a[0];
      a = a.substr(2);
    }
    long long n;
    double d;
    if (t == 0) t = parse_long(a, &n) ? 'l' : parse_double(a, &d) ? 'd' : 's';
    switch (t) {
      case 'i':
      case 'l':
      case 'p':
        if (!parse_long(a, &n)) usage("not an integer: '" + a + "'");
        v.i = n;
        break;
      case 'd':
        if (!parse_double(a, &d)) usage("not a number: '" + a + "'");
        v.d = d;
        break;
      case 'f':
        if (!parse_double(a, &d)) usage("not a number: '" + a + "'");
        v.f = static_cast<float>(d);
        break;
      case 's': {
        void* p = vmrt_guest_malloc(g, a.size() + 1);
        if (p == nullptr || vmrt_guest_copy_in(g, p, a.c_str(), a.size() + 1) != 0) {
          std::fprintf(stderr, "vmrun: guest: no room for a %zu-byte string argument\n", a.size() + 1);
          return kExitLoad;
        }
        v.p = p;
        t = 'p';
        break;
      }
    }
    sig += t;
    vals.push_back(v);
  }
  sig += ')';
  vmrt_guest_value r;
  vmrt_guest_trap t;
  vmrt_guest_status st = vmrt_guest_call(g, func, sig.c_str(), vals.data(), &r, &t);
  if (st != VMRT_GUEST_OK) {
    std::fprintf(stderr, "vmrun: guest trap: %s\n", t.message);
    vmrt_guest_destroy(g);
    return st == VMRT_GUEST_NO_SUCH_FUNCTION || st == VMRT_GUEST_BAD_SIGNATURE ? kExitUsage : kExitTrap;
  }
  switch (ret_type) {
    case 'l':
    case 'i': std::printf("%lld\n", static_cast<long long>(r.i)); break;
    case 'd': std::printf("%.17g\n", r.d); break;
    case 'f': std::printf("%.9g\n", static_cast<double>(r.f)); break;
    case 'p': std::printf("%p\n", r.p); break;
    case 's': {
      std::string out;
      char c = 1;
      for (const char* p = static_cast<const char*>(r.p); p != nullptr && out.size() < (1u << 20); ++p) {
        if (vmrt_guest_copy_out(g, &c, p, 1) != 0) {
          std::fprintf(stderr, "vmrun: guest: the result %p is not a string in the guest's memory\n", r.p);
          vmrt_guest_destroy(g);
          return kExitTrap;
        }
        if (c == '\0') break;
        out += c;
      }
      std::printf("%s\n", out.c_str());
      break;
    }
    default: break;
  }
  vmrt_guest_destroy(g);
  return 0;
}
