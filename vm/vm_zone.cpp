// vm_zone.cpp — slab zones over raw mmap.
#include "vm/vm_zone.h"
#include "vm/vm_sys.h"

#include <cstring>
#include <sys/mman.h>

#include "vm/vm_lock.h"
#include "vm/vm_out.h"
#include "vm/vm_types.h"

namespace vmrt {
namespace {
vm_zone* g_zones VMRT_GUARDED_BY(g_vm_lock) = nullptr;  // registry
// The chunk the runs smaller than a slab are carved from, shared by every zone: the part
// not yet handed out, [g_chunk, g_chunk_end).
char* g_chunk VMRT_GUARDED_BY(g_vm_lock) = nullptr;
char* g_chunk_end VMRT_GUARDED_BY(g_vm_lock) = nullptr;
// The first chunk is static: zero pages in .lbss, reserved with the rest of the library's
// image, so every process carves its boot zones without an mmap of its own (a system call
// of ~20-60 us in a fresh process on these guests, a host mapping a fork duplicates, and a
// 2 MiB neighbourhood of host page tables of its own).  Its first page, which boot writes,
// is populated at load (VMRT_BOOT_BSS).  Taken by the first run.
alignas(4096) VMRT_BOOT_BSS char g_first_chunk[kZoneSlabBytes];
bool g_first_taken VMRT_GUARDED_BY(g_vm_lock) = false;

// A slab's worth of host memory; null when the host refuses.
char* map_slab() {
  void* p = vmrt::sys::mmap(nullptr, kZoneSlabBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  return p == MAP_FAILED ? nullptr : static_cast<char*>(p);
}

// Host memory for `bytes` of a run: from the shared chunk when the run is smaller than a slab
// (a new chunk when what is left is too short: the rest is dropped), else a slab of its own.
// Null when the host refuses.  => VM lock held.
char* run_memory(std::size_t bytes) VMRT_REQUIRES(g_vm_lock) {
  if (bytes >= kZoneSlabBytes) return map_slab();
  if (static_cast<std::size_t>(g_chunk_end - g_chunk) < bytes) {
    char* c = g_first_taken ? map_slab() : g_first_chunk;
    g_first_taken = true;
    if (c == nullptr) return nullptr;
    g_chunk = c;
    g_chunk_end = c + kZoneSlabBytes;
  }
  char* r = g_chunk;
  g_chunk += bytes;
  return r;
}

// A new run to carve from (what was left of the last one, less than an item, is dropped):
// kZoneFirstItems items the first time, twice as many each next time, at most a slab.
bool zone_grow(vm_zone* z) VMRT_REQUIRES(g_vm_lock) {
  const std::size_t per_slab = kZoneSlabBytes / z->size;
  VMRT_ASSERT(per_slab >= 1);
  std::size_t n = per_slab;
  if (z->runs < 32 && (kZoneFirstItems << z->runs) < per_slab) n = kZoneFirstItems << z->runs;
  char* p = run_memory(n == per_slab ? kZoneSlabBytes : n * z->size);
  if (p == nullptr) return false;
  z->runs++;
  z->carve = p;
  z->carve_end = p + n * z->size;
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
