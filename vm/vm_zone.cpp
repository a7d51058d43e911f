// vm_zone.cpp — slab zones over raw mmap.
#include "vm/vm_zone.h"
#include "vm/vm_sys.h"

#include <cstring>
#include <sys/mman.h>

#include "vm/vm_lock.h"
#include "vm/vm_out.h"

namespace vmrt {
namespace {
vm_zone* g_zones = nullptr;  // registry [VM lock]

// A new slab to carve from (what was left of the last one, less than an item, is dropped).
bool zone_grow(vm_zone* z) {
  void* p = vmrt::sys::mmap(nullptr, kZoneSlabBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return false;
  z->slabs++;
  std::size_t n = kZoneSlabBytes / z->size;
  VMRT_ASSERT(n >= 1);
  z->carve = static_cast<char*>(p);
  z->carve_end = z->carve + n * z->size;
  z->nfree += n;
  return true;
}
}  // namespace

void* vm_zone_alloc(vm_zone* z) {
  VM_LOCK_ASSERT();
  VMRT_ASSERT(z->size >= sizeof(vm_zone_item) && z->size <= kZoneSlabBytes);
  if (!z->registered) {
    z->registered = true;
    z->next_zone = g_zones;
    g_zones = z;
  }
  z->requests++;
  if (z->limit != 0 && z->used >= z->limit) {
    z->fails++;
    return nullptr;
  }
  vm_zone_item* it = z->free_list;
  if (it != nullptr) {
    z->free_list = it->next;
  } else {
    if (z->carve == z->carve_end && !zone_grow(z)) {
      z->fails++;
      return nullptr;
    }
    it = reinterpret_cast<vm_zone_item*>(z->carve);
    z->carve += z->size;
  }
  z->nfree--;
  z->used++;
  std::memset(it, 0, z->size);
  return it;
}

void vm_zone_free(vm_zone* z, void* p) {
  VM_LOCK_ASSERT();
  VMRT_ASSERT(p != nullptr && z->used > 0);
  auto* it = static_cast<vm_zone_item*>(p);
  it->next = z->free_list;
  z->free_list = it;
  z->nfree++;
  z->used--;
}

void vm_zone_report(int fd) {
  vm_lock_guard g;
  vm_fd_out<> o(fd);
  o.str_w("ITEM", 22).str("   SIZE  LIMIT     USED     FREE        REQ FAIL\n");
  for (vm_zone* z = g_zones; z != nullptr; z = z->next_zone) {
    char name[40];
    std::size_t n = std::strlen(z->name);
    if (n > 20) n = 20;
    std::memcpy(name, z->name, n);
    name[n] = ':';
    name[n + 1] = '\0';
    o.str_w(name, 22).u(z->size, 7).u(z->limit, 7).u(z->used, 9).u(z->nfree, 9).u(z->requests, 11).u(z->fails, 5).ch('\n');
  }
}

}  // namespace vmrt
