// rt_config.cpp — the VMRT_* parser and its messages (see rt_config.h).  No allocation:
// the runtime calls it from its first malloc.
#include "runtime/rt_config.h"

#include <cstring>

#include "vm/vm_out.h"

namespace vmrt {

bool config_parse_size(const char* s, std::size_t* out) {
  if (s == nullptr || *s == '\0') return false;
  std::size_t v = 0;
  const char* p = s;
  for (; *p >= '0' && *p <= '9'; ++p) {
    std::size_t d = static_cast<std::size_t>(*p - '0');
    if (v > (SIZE_MAX - d) / 10) return false;
    v = v * 10 + d;
  }
  if (p == s) return false;
  unsigned shift = 0;
  switch (*p) {
    case '\0': break;
    case 'k': case 'K': shift = 10; ++p; break;
    case 'm': case 'M': shift = 20; ++p; break;
    case 'g': case 'G': shift = 30; ++p; break;
    case 't': case 'T': shift = 40; ++p; break;
    default: break;
  }
  if (*p == 'B' || *p == 'b') ++p;
  if (*p != '\0') return false;
  if (shift != 0 && v > (SIZE_MAX >> shift)) return false;
  *out = v << shift;
  return true;
}

namespace {

// Decimal digits only, no sign, no suffix; false on garbage or overflow of size_t.
bool parse_decimal(const char* s, std::size_t* out) {
  if (s == nullptr || *s == '\0') return false;
  std::size_t v = 0;
  for (const char* p = s; *p != '\0'; ++p) {
    if (*p < '0' || *p > '9') return false;
    std::size_t d = static_cast<std::size_t>(*p - '0');
    if (v > (SIZE_MAX - d) / 10) return false;
    v = v * 10 + d;
  }
  *out = v;
  return true;
}

// A size as the messages write it: exact T, G or M when it is a whole number of them.
void put_size(vm_out& o, std::size_t v) {
  constexpr struct {
    unsigned shift;
    const char* unit;
  } kUnits[] = {{40, "T"}, {30, "G"}, {20, "M"}};
  if (v != 0) {
    for (const auto& u : kUnits) {
      if (v % (std::size_t{1} << u.shift) == 0) {
        o.u(v >> u.shift).str(u.unit);
        return;
      }
    }
  }
  // Not a whole number of M: a large value (host RAM) in whole M, rounded down.
  if (v >= (std::size_t{1} << 20)) o.u(v >> 20).str("M");
  else if (v != 0 && v % 1024 == 0) o.u(v >> 10).str("K");
  else o.u(v);
}

}  // namespace

config_status config_parse(config_var v, const char* text, std::uint64_t* out) {
  const config_var_info& info = config_info(v);
  if (text == nullptr) return config_status::malformed;
  std::size_t n = 0;
  switch (info.kind) {
    case config_kind::size:
      if (!config_parse_size(text, &n)) return config_status::malformed;
      break;
    case config_kind::fd:
      if (!parse_decimal(text, &n)) return config_status::malformed;
      break;
    case config_kind::choice:
      for (std::size_t i = 0; i < info.choices.n; ++i) {
        if (std::strcmp(text, info.choices[i].name) == 0) {
          *out = info.choices[i].value;
          return config_status::ok;
        }
      }
      return config_status::malformed;
    case config_kind::flag:
      *out = text[0] != '\0' && std::strcmp(text, "0") != 0 ? 1 : 0;
      return config_status::ok;
    case config_kind::path:
      if (text[0] == '\0') return config_status::malformed;
      *out = 1;
      return config_status::ok;
  }
  if (n < info.lim.min || n > info.lim.max) return config_status::out_of_range;
  *out = n;
  return config_status::ok;
}

const char* config_describe(config_var v, const char* origin, const char* text, config_status st, char* buf,
                            std::size_t cap) {
  const config_var_info& info = config_info(v);
  vm_out o(buf, cap);
  o.str(origin != nullptr ? origin : info.env).ch('=').str(text != nullptr ? text : "").str(": ");
  switch (info.kind) {
    case config_kind::size:
      o.str(st == config_status::out_of_range ? "out of range (accepted: " : "not a size (use e.g. 512M, 4G; accepted: ");
      put_size(o, info.lim.min);
      o.str(" .. ");
      put_size(o, info.lim.max);
      o.ch(')');
      break;
    case config_kind::fd:
      o.str(st == config_status::out_of_range ? "descriptor out of range (accepted: "
                                              : "not a file descriptor number (accepted: ");
      o.u(info.lim.min).str(" .. ").u(info.lim.max).ch(')');
      break;
    case config_kind::choice: {
      o.str("not a ").str(info.what).str(" (accepted: ");
      bool first = true;
      for (std::size_t i = 0; i < info.choices.n; ++i) {
        bool alias = false;
        for (std::size_t j = 0; j < i; ++j) alias = alias || info.choices[j].value == info.choices[i].value;
        if (alias) continue;
        if (!first) o.str(", ");
        o.str(info.choices[i].name);
        first = false;
      }
      o.ch(')');
      break;
    }
    case config_kind::flag:
      o.str("invalid");
      break;
    case config_kind::path:
      o.str("an empty file name");
      break;
  }
  return buf;
}

const char* config_size_text(std::size_t v, char* buf, std::size_t cap) {
  vm_out o(buf, cap);
  put_size(o, v);
  return buf;
}

}  // namespace vmrt
