// kmem_types.cpp — the malloc type table (4.4BSD INITKMEMNAMES) and status names.
#include <array>
#include <string_view>

#include "kmem/kmem_internal.h"
#include "vm/vm_types.h"

namespace vmrt::kmem {
namespace {

struct type_entry {
  malloc_type type;
  vm_name<16> name;     // as vmstat -m prints it (in place: never relocated, vm/vm_types.h)
  std::uint64_t limit;  // default ks_limit, bytes; 0 = unlimited
};

// Every type is unlimited by default: under the shim, M_LIBC/M_CXX are the
// program's heap, and a limit would make ordinary malloc sleep.  set_limit()
// turns limits on per type.
inline constexpr std::array<type_entry, M_LAST> kTypes{{
    {M_FREE, "free", 0},
    {M_TEMP, "temp", 0},
    {M_DEVBUF, "devbuf", 0},
    {M_VMMAP, "VM map", 0},
    {M_VMOBJ, "VM object", 0},
    {M_LIBC, "libc", 0},
    {M_CXX, "c++", 0},
    {M_TEST, "test", 0},
}};

constexpr bool types_table_ok() {
  for (unsigned i = 0; i < kTypes.size(); ++i) {
    if (kTypes[i].type != static_cast<malloc_type>(i)) return false;
    std::string_view n(kTypes[i].name);
    if (n.empty() || n.size() > 13) return false;  // fits vmstat's Type column
  }
  return true;
}
static_assert(types_table_ok(), "type table is complete, in enum order, names fit the report");

inline constexpr std::array<vm_name<20>, KMEM_INVALID + 1> kStatusNames{{
    "KMEM_OK", "KMEM_FOREIGN", "KMEM_NOT_BLOCK", "KMEM_DOUBLE_FREE", "KMEM_WRONG_TYPE",
    "KMEM_CORRUPT", "KMEM_LIMIT", "KMEM_NOMEM", "KMEM_INVALID",
}};
static_assert(kStatusNames.size() == KMEM_INVALID + 1 && !kStatusNames[KMEM_NOMEM].empty());

}  // namespace

const char* type_name(malloc_type t) {
  return static_cast<unsigned>(t) < M_LAST ? kTypes[t].name : "undefined";
}

const char* kmem_status_name(kmem_status s) {
  return static_cast<unsigned>(s) < kStatusNames.size() ? kStatusNames[s] : "KMEM_?";
}

namespace detail {
std::uint64_t type_default_limit(malloc_type t) {
  return static_cast<unsigned>(t) < M_LAST ? kTypes[t].limit : 0;
}
}  // namespace detail

}  // namespace vmrt::kmem
