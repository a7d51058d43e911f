// vnode_pager.cpp — vnode objects and their pager (see vnode_pager.h).
#include "vm/vnode_pager.h"

#include <cerrno>
#include <cstring>
#include <span>
#include <sys/mman.h>
#include <sys/uio.h>
#include <unistd.h>

#include "vm/pmap.h"
#include "vm/vm_assert.h"
#include "vm/vm_lock.h"
#include "vm/vm_object.h"
#include "vm/vm_page.h"
#include "vm/vm_stats.h"
#include "vm/vm_sys.h"

namespace vmrt {
namespace {

// One mapped file: its identity, its object and the pager's store; its name is in
// g_vnode_names, at the same index.
struct vnode {
  vm_object* obj;          // null: the slot is free
  std::uint64_t dev, ino;  // the host's identity of the file
  char* store;             // the file mapped shared read-only in vmrt's memory (null: none)
  std::uint64_t store_bytes;
  char* old_store;         // the store before it last grew: a copy may still be reading it
  std::uint64_t old_bytes;
  bool named;              // its name holds what is known of it (given, or asked of the name source)
};
VMRT_LARGE_BSS vnode g_vnodes[kVnodeMax] VMRT_GUARDED_BY(g_vm_lock);
// The names, apart: the shim names a vnode only when a report asks (vnode_set_name_source),
// so they are rarely written, and inside the vnode (304 bytes, 64 without) a program that
// maps 14 files (git) wrote a second page of the table.
VMRT_LARGE_BSS char g_vnode_names[kVnodeMax][kVnodeNameMax] VMRT_GUARDED_BY(g_vm_lock);
inline char* name_of(const vnode* v) { return g_vnode_names[v - g_vnodes]; }
// Slots [0, g_vnodes_used) have been used: lookups scan only those (the table is 19 pages;
// scanning all of it touched them in every process that maps a file).
unsigned g_vnodes_used VMRT_GUARDED_BY(g_vm_lock);
vnode_name_fn g_name_source;  // vnode_set_name_source [set at boot]

// The slots ever used.
std::span<vnode> used_vnodes() VMRT_REQUIRES(g_vm_lock) { return {g_vnodes, g_vnodes_used}; }

vnode* vnode_of(const vm_object* obj) VMRT_REQUIRES(g_vm_lock) {
  if (obj == nullptr || obj->type != OBJT_VNODE) return nullptr;
  for (vnode& v : used_vnodes())
    if (v.obj == obj) return &v;
  return nullptr;
}

// Pages of the store (the file's pages when it was attached; the last one may be partial).
vm_pindex_t store_pages(const vnode* v) {
  return v == nullptr ? 0 : static_cast<vm_pindex_t>((v->store_bytes + PAGE_MASK) >> PAGE_SHIFT);
}

// Copy page pindex of the file from the store into buf: false when the store does not hold
// it (past the file's end, or cut by a truncation since: process_vm_readv says EFAULT
// where a plain copy would raise SIGBUS inside vmrt).
bool copy_from_store(const vnode* v, vm_pindex_t pindex, void* buf) {
  if (pindex >= store_pages(v)) return false;
  iovec local{buf, PAGE_SIZE}, remote{v->store + (pindex << PAGE_SHIFT), PAGE_SIZE};
  ssize_t r = ::process_vm_readv(::getpid(), &local, 1, &remote, 1, 0);
  return r == static_cast<ssize_t>(PAGE_SIZE);
}

void drop_store(vnode* v) {
  if (v->store != nullptr) vmrt::sys::munmap(v->store, v->store_bytes);
  if (v->old_store != nullptr) vmrt::sys::munmap(v->old_store, v->old_bytes);
  v->store = v->old_store = nullptr;
  v->store_bytes = v->old_bytes = 0;
}

// ---- pager operations --------------------------------------------------------------------

// The file holds every page before its end: clustering may read any run of them.
bool vn_has_page(vm_object* obj, vm_pindex_t pindex, unsigned* before, unsigned* after) VMRT_REQUIRES(g_vm_lock) {
  vm_pindex_t n = store_pages(vnode_of(obj));
  if (pindex >= n) return false;
  if (before != nullptr && *before > pindex) *before = static_cast<unsigned>(pindex);
  if (after != nullptr && *after > n - pindex - 1) *after = static_cast<unsigned>(n - pindex - 1);
  return true;
}

vm_pager_result vn_get_pages(vm_object* obj, vm_page* const* pages, unsigned n, bool may_unlock,
                             vm_pager_result* rtvals) {
  VM_LOCK_ASSERT();
  VMRT_ASSERT(n >= 1 && n <= kPagerMaxRun);
  const pmap_ops* ops = pmap_machine_ops();
  const vnode* v = vnode_of(obj);
  // The store stays while the object lives (the caller holds a reference): safe unlocked.
  void* bufs[kPagerMaxRun];
  for (unsigned k = 0; k < n; ++k) {
    VMRT_ASSERT(pages[k]->flags & PG_BUSY);
    bufs[k] = ops->page_address(pages[k]);
  }
  vm_lock_drop_if(may_unlock);
  std::uint64_t read = 0;
  for (unsigned k = 0; k < n; ++k) {
    bool ok = v != nullptr && copy_from_store(v, pages[k]->pindex, bufs[k]);
    rtvals[k] = ok ? VM_PAGER_OK : VM_PAGER_ABSENT;
    read += ok ? 1 : 0;
  }
  vm_lock_retake_if(may_unlock);
  vm_stat_inc(V_VNODE_PAGEIN_OPS);
  vm_stat_add(V_VNODE_PAGEINS, static_cast<std::int64_t>(read));
  for (unsigned k = 0; k < n; ++k)
    if (rtvals[k] != VM_PAGER_OK) return rtvals[k];
  return VM_PAGER_OK;
}

// Private file pages are never written to the file: the store refuses them (a clean page
// is freed without a write and read back from the file).
void vn_put_pages(vm_object*, vm_page* const*, unsigned n, unsigned, bool, vm_pager_result* rtvals) {
  for (unsigned k = 0; k < n; ++k) rtvals[k] = VM_PAGER_ERROR;
}
void vn_free_range(vm_object*, vm_pindex_t, vm_pindex_t) {}  // the file keeps its pages
void vn_collapse(vm_object*, vm_object*, vm_pindex_t) {}     // a vnode object is never a shadow
void vn_move(vm_object*, vm_pindex_t, vm_pindex_t, vm_pindex_t) {}
bool vn_has_any(vm_object* obj, vm_pindex_t start, vm_pindex_t) VMRT_REQUIRES(g_vm_lock) {
  return start < store_pages(vnode_of(obj));
}

void vn_dealloc(vm_object* obj) VMRT_REQUIRES(g_vm_lock) {
  vnode* v = vnode_of(obj);
  if (v == nullptr) return;
  drop_store(v);
  v->obj = nullptr;
}

}  // namespace

const vm_pager_ops kVnodePagerOps{"vnode",      "vn",        vn_has_page, vn_get_pages, vn_put_pages,
                                  vn_free_range, vn_collapse, vn_move,     vn_has_any,   vn_dealloc};

vm_object* vnode_object_get(std::uint64_t dev, std::uint64_t ino, const char* name, vm_pindex_t file_pages,
                            vm_pindex_t extent) {
  VM_LOCK_ASSERT();
  vm_pindex_t size = extent > file_pages ? extent : file_pages;
  vnode* free_slot = nullptr;
  for (vnode& v : used_vnodes()) {
    if (v.obj == nullptr) {
      if (free_slot == nullptr) free_slot = &v;
      continue;
    }
    if (v.dev == dev && v.ino == ino) {
      vm_object_reference(v.obj);
      // Pages read before the file was cut are gone with it (as Linux's truncation drops
      // them from the page cache and from every private mapping that did not copy them).
      vm_object_page_remove(v.obj, file_pages, ~vm_pindex_t{0}, true);
      if (v.obj->size < size) v.obj->size = size;
      return v.obj;
    }
  }
  if (free_slot == nullptr) {
    if (g_vnodes_used == kVnodeMax) return nullptr;
    free_slot = &g_vnodes[g_vnodes_used];
  }
  vm_object* obj = vm_object_allocate(OBJT_VNODE, size);
  if (obj == nullptr) return nullptr;
  if (free_slot == &g_vnodes[g_vnodes_used]) ++g_vnodes_used;
  *free_slot = vnode{obj, dev, ino, nullptr, 0, nullptr, 0, name != nullptr};
  if (name != nullptr) {
    std::size_t len = std::strlen(name);
    if (len >= kVnodeNameMax) len = kVnodeNameMax - 1;
    std::memcpy(name_of(free_slot), name, len);
    name_of(free_slot)[len] = '\0';
  }
  return obj;
}

void vnode_set_name_source(vnode_name_fn fn) { g_name_source = fn; }

const char* vnode_object_name(const vm_object* obj) VMRT_REQUIRES(g_vm_lock) {
  vnode* v = vnode_of(obj);  // the table's slot: its name is filled in here
  if (v == nullptr) return "";
  char* name = name_of(v);
  if (!v->named) {
    if (g_name_source == nullptr || !g_name_source(v->dev, v->ino, name, kVnodeNameMax)) name[0] = '\0';
    v->named = g_name_source != nullptr;
  }
  return name;
}

int vnode_object_attach_store(vm_object* obj, int fd, std::uint64_t bytes) {
  VM_LOCK_ASSERT();
  vnode* v = vnode_of(obj);
  if (v == nullptr) return ENOMEM;
  if (v->store != nullptr && v->store_bytes >= bytes) return 0;
  // Room to grow: a file that grows under its mappings is read from the same store.
  std::uint64_t want = bytes < kVnodeStoreMin ? kVnodeStoreMin : bytes;
  want = (want + PAGE_MASK) & ~static_cast<std::uint64_t>(PAGE_MASK);
  void* p = vmrt::sys::mmap(nullptr, want, PROT_READ, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) return errno;
  // A copy that dropped the VM lock may still read the old store: it stays until the next
  // growth or the object's end.
  if (v->old_store != nullptr) vmrt::sys::munmap(v->old_store, v->old_bytes);
  v->old_store = v->store;
  v->old_bytes = v->store_bytes;
  v->store = static_cast<char*>(p);
  v->store_bytes = want;
  return 0;
}

vm_pindex_t vnode_object_pages(const vm_object* obj) VMRT_REQUIRES(g_vm_lock) { return store_pages(vnode_of(obj)); }

bool vnode_object_read_page(const vm_object* obj, vm_pindex_t pindex, void* buf) VMRT_REQUIRES(g_vm_lock) {
  return copy_from_store(vnode_of(obj), pindex, buf);
}

}  // namespace vmrt
