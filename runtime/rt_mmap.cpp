// rt_mmap.cpp — the program's own mappings (see rt_mmap.h): the area, mmap, munmap, mprotect,
// madvise, mincore, msync and mlock (mremap: rt_mremap.cpp).
//
// The answers follow Linux's mm/mmap.c, mm/mprotect.c, mm/madvise.c, mm/mremap.c,
// mm/mincore.c and mm/msync.c: the order in which arguments are checked decides which
// errno a doubly-wrong call gets, and a walk that meets a hole after changing what came
// before it (mprotect, madvise, mincore, msync, mlock) keeps those changes and reports
// ENOMEM, as Linux does.
#include "runtime/rt_mmap.h"
#include "runtime/rt_mmap_area.h"

#include <cerrno>
#include <climits>
#include <cstring>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "runtime/pmap_linux.h"
#include "runtime/region.h"
#include "runtime/rt_maps.h"
#include "runtime/rt_stats.h"
#include "runtime/rt_vma_budget.h"
#include "runtime/trap.h"
#include "vm/pmap.h"
#include "vm/vm_assert.h"
#include "vm/vm_fail.h"
#include "vm/vm_heap.h"
#include "vm/vm_lock.h"
#include "vm/vm_map.h"
#include "vm/vm_object.h"
#include "vm/vm_pageout.h"
#include "vm/vm_pager.h"
#include "vm/vm_stats.h"
#include "vm/vm_sys.h"
#include "vm/vmspace.h"
#include "vm/vnode_pager.h"

#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif
#ifndef PROT_SEM
#define PROT_SEM 0x8
#endif
#ifndef MREMAP_DONTUNMAP
#define MREMAP_DONTUNMAP 4
#endif

namespace vmrt::rt {
namespace mma {

vm_map* g_map;
vaddr_t g_lo, g_hi;
VMRT_FORK_DATA bool g_area_used VMRT_GUARDED_BY(g_vm_lock);

namespace {

bool g_paging;  // private anonymous mappings may be pageable VM memory [constant after init]

constexpr int kProtRWX = PROT_READ | PROT_WRITE | PROT_EXEC;
// Host VMAs a new mapping may add: itself, and a split of the reservation it lands in.
constexpr unsigned kNewMappingVmas = 2;
// mmap flags vmrt serves; any other bit goes to the host.  (MAP_STACK, MAP_DENYWRITE and
// MAP_EXECUTABLE are accepted and ignored by Linux as well.)
constexpr int kServedFlags = MAP_SHARED | MAP_PRIVATE | MAP_FIXED | MAP_ANONYMOUS | MAP_NORESERVE | MAP_POPULATE |
                             MAP_STACK | MAP_FIXED_NOREPLACE | MAP_DENYWRITE | MAP_EXECUTABLE;
constexpr int kMapType = 0x0f;  // MAP_TYPE

inline vm_prot_t vm_prot_of(int prot) { return static_cast<vm_prot_t>(prot & kProtRWX); }

// Does [s, e) hold host memory entries?  => VM lock held.
bool has_host_memory(vaddr_t s, vaddr_t e) VMRT_REQUIRES(g_vm_lock) {
  vm_map_entry* ent;
  if (!vm_map_lookup_entry(g_map, s, &ent)) ent = ent->next;
  for (; !vm_map_is_end(g_map, ent) && ent->start < e; ent = ent->next)
    if (!vm_backed(ent)) return true;
  return false;
}

// The bytes of [s, e) whose entries are charged to the commit.  => VM lock held.
vsize_t charged_bytes(vaddr_t s, vaddr_t e) VMRT_REQUIRES(g_vm_lock) {
  vsize_t n = 0;
  vm_map_entry* ent;
  if (!vm_map_lookup_entry(g_map, s, &ent)) ent = ent->next;
  for (; !vm_map_is_end(g_map, ent) && ent->start < e; ent = ent->next)
    if ((ent->eflags & MAP_ENTRY_CHARGED) != 0) n += (ent->end < e ? ent->end : e) - (ent->start > s ? ent->start : s);
  return n;
}

}  // namespace

// vm_map_delete of [s, e), giving its charge back.  => VM lock held.
void delete_locked(vaddr_t s, vaddr_t e) VMRT_REQUIRES(g_vm_lock) {
  vsize_t c = charged_bytes(s, e);
  vm_map_delete(g_map, s, e);
  if (c != 0) vm_commit_uncharge(c);
}

// Drop [s, e) of the area: entries (pageable pages and their swap copies with them, their
// commit charge) and host memory.  => VM lock held.
void remove_locked(vaddr_t s, vaddr_t e) VMRT_REQUIRES(g_vm_lock) {
  if (s >= e) return;
  bool host = has_host_memory(s, e);
  delete_locked(s, e);
  if (host) pmap_machine_ops()->host_unmap(g_map->pm, s, e);
}

namespace {

// Are the program's private anonymous mappings pageable VM memory?  With paging on (vmrun
// --physmem / --swap) and the userfaultfd backend, which serves the kernel's own touches
// (read(2) into a page that is not resident): under sigsegv traps such a touch would fail
// with EFAULT, so there they stay host memory.
bool paged_anon() {
  return g_paging && trap_started() && trap_active_backend() == trap_backend::userfaultfd;
}

}  // namespace

// Insert pageable private anonymous memory [s, e): a copy-on-write entry with no object yet
// (the first fault makes one; a page is zero-filled when first touched, alone, and paged
// out and in like the heap's), and the reservation that sends its faults to vm_fault.
//  => VM lock held.
// Writable memory is charged to the commit first (strict, as Linux's overcommit_memory=2:
// the program's mmap fails with ENOMEM rather than a later touch finding neither a frame
// nor a swap slot); KERN_RESOURCE_SHORTAGE when it does not fit.
kern_return_t insert_paged_locked(vaddr_t s, vaddr_t e, vm_prot_t prot, vm_inherit_t inh) VMRT_REQUIRES(g_vm_lock) {
  bool charge = (prot & VM_PROT_WRITE) != 0;
  if (charge && vm_commit_charge(e - s) != KERN_SUCCESS) return KERN_RESOURCE_SHORTAGE;
  auto ef = static_cast<std::uint16_t>(MAP_ENTRY_COW | MAP_ENTRY_ZERO_SINGLE | (charge ? MAP_ENTRY_CHARGED : 0));
  kern_return_t kr = noted(vm_map_insert(g_map, nullptr, 0, s, e, prot, VM_PROT_ALL, ef, inh));
  if (kr == KERN_SUCCESS) pmap_reserve(g_map->pm, s, e, prot);
  else if (charge) vm_commit_uncharge(e - s);
  return kr;
}

// Insert pageable private file memory [s, e): a copy-on-write entry over the file's vnode
// object from byte off (its pages come from the vnode pager; the first write shadows it, so
// the program's writes never reach the file), and the reservation that sends its faults to
// vm_fault.  Writable memory is charged to the commit, as Linux charges private file
// mappings.  => VM lock held.
kern_return_t insert_paged_file_locked(vaddr_t s, vaddr_t e, vm_prot_t prot, vm_inherit_t inh, vm_object* obj,
                                       vm_ooffset_t off) VMRT_REQUIRES(g_vm_lock) {
  bool charge = (prot & VM_PROT_WRITE) != 0;
  if (charge && vm_commit_charge(e - s) != KERN_SUCCESS) return KERN_RESOURCE_SHORTAGE;
  auto ef = static_cast<std::uint16_t>(MAP_ENTRY_COW | MAP_ENTRY_NEEDS_COPY | (charge ? MAP_ENTRY_CHARGED : 0));
  vm_object_reference(obj);
  kern_return_t kr = noted(vm_map_insert(g_map, obj, off, s, e, prot, VM_PROT_ALL, ef, inh));
  if (kr == KERN_SUCCESS) {
    pmap_reserve(g_map->pm, s, e, prot);
    return kr;
  }
  vm_object_deallocate(obj);
  if (charge) vm_commit_uncharge(e - s);
  return kr;
}

// The file position of address x of a pageable entry: the vnode object at the bottom of its
// chain and the byte offset there.  False when the entry maps no file.  => VM lock held.
bool file_position(const vm_map_entry* ent, vaddr_t x, vm_object** obj, vm_ooffset_t* off) {
  vm_object* o = ent->object;
  vm_ooffset_t at = ent->offset + (x - ent->start);
  while (o != nullptr && o->backing_object != nullptr) {
    at += ptoa(o->backing_offset);
    o = o->backing_object;
  }
  if (o == nullptr || o->type != OBJT_VNODE) return false;
  *obj = o;
  *off = at;
  return true;
}

// Pageable memory [s, e) that continues the entry `last` after the grown range's old end
// `from` (an mremap growth): the file's next pages for a private file mapping, as Linux grows
// it, else new zero-fill memory.  `from` is inside last or at its end: a range moved out of the
// middle of a mapping continues where the range ended, not where the mapping does (the
// file's pages past the mapping's end were mapped, past the file's end a SIGBUS: the paged
// differential, seeds 1 and 2).
//  => VM lock held.
kern_return_t insert_tail_locked(const vm_map_entry* last, vaddr_t from, vaddr_t s, vaddr_t e)
    VMRT_REQUIRES(g_vm_lock) {
  VMRT_ASSERT(from > last->start && from <= last->end);
  vm_object* obj;
  vm_ooffset_t off;
  if (file_position(last, from, &obj, &off))
    return insert_paged_file_locked(s, e, last->protection, last->inheritance, obj, off);
  return insert_paged_locked(s, e, last->protection, last->inheritance);
}

namespace {
std::uint64_t g_shared_names VMRT_GUARDED_BY(g_vm_lock);
constexpr unsigned kSharedNameShift = 40;  // 1 TiB per shared mapping: more than the area
}  // namespace
// A mapping's identity, kept in its entries' offset (vm_map merges host memory entries
// only when their offsets are contiguous): private memory is named by its address, so
// neighbours merge, as Linux merges anonymous private VMAs; each shared mapping gets its
// own range of names, so two shared mappings side by side stay two, as on Linux (two shmem
// objects), and a mapping moved by mremap keeps its name.
vm_ooffset_t new_identity(vaddr_t s, bool shared) {
  return shared ? (++g_shared_names) << kSharedNameShift : s;
}

namespace {

// Linux's walks that go on past holes (madvise, msync): f(piece start, piece end) for each
// entry piece of [s, e) in order until f returns false; *hole = [s, e) has one.
//  => VM lock held.
template <class F> void walk_over_holes(vaddr_t s, vaddr_t e, bool* hole, F&& f) VMRT_REQUIRES(g_vm_lock) {
  *hole = false;
  vaddr_t x = s;
  while (x < e) {
    vm_map_entry* ent;
    if (!vm_map_lookup_entry(g_map, x, &ent)) {
      *hole = true;
      vm_map_entry* nx = ent->next;
      if (vm_map_is_end(g_map, nx) || nx->start >= e) return;
      x = nx->start;
      continue;
    }
    vaddr_t y = ent->end < e ? ent->end : e;
    if (!f(x, y)) return;
    x = y;
  }
}

}  // namespace

// Drop the pageable pieces of [s, e) (their pages, their swap copies, their reservation)
// before the host maps something over the range: the pmap puts a reservation back where it
// removes resident pages, which must happen before the host's mapping arrives, not after.
//  => VM lock held.
void remove_paged_locked(vaddr_t s, vaddr_t e) VMRT_REQUIRES(g_vm_lock) {
  bool hole;
  walk_over_holes(s, e, &hole, [](vaddr_t x, vaddr_t y) VMRT_REQUIRES(g_vm_lock) {
    vm_map_entry* ent;
    VMRT_ASSERT(vm_map_lookup_entry(g_map, x, &ent));
    if (vm_backed(ent)) delete_locked(x, y);
    return true;
  });
}

namespace {

// Merge the entries around [s, e) again after an attribute change (Linux merges the VMAs).
//  => VM lock held.
void simplify_locked(vaddr_t s, vaddr_t e) VMRT_REQUIRES(g_vm_lock) {
  vm_map_entry* ent;
  if (!vm_map_lookup_entry(g_map, s, &ent)) ent = ent->next;
  while (!vm_map_is_end(g_map, ent) && ent->start <= e) {
    ent = vm_map_simplify_entry(g_map, ent);
    ent = ent->next;
  }
}

}  // namespace

// Insert the entry for new host memory [s, e) named `ident`.  The entry's inheritance says
// what the host's fork() gives the child: SHARE (MAP_SHARED), COPY (private), NONE
// (MADV_DONTFORK: a hole in the child, mm_fork_child).  => VM lock held.
// A file mapping's entry maps the file's vnode object (obj, taken with a reference of the
// entry's own) and its identity is the file offset.
inline vm_inherit_t inherit_of(bool shared) { return shared ? VM_INHERIT_SHARE : VM_INHERIT_COPY; }
kern_return_t insert_locked(vaddr_t s, vaddr_t e, int prot, vm_inherit_t inh, vm_ooffset_t ident, vm_object* obj)
    VMRT_REQUIRES(g_vm_lock) {
  if (obj != nullptr) vm_object_reference(obj);
  kern_return_t kr = noted(vm_map_insert(g_map, obj, ident, s, e, vm_prot_of(prot), VM_PROT_ALL, MAP_ENTRY_HOSTMEM, inh));
  if (kr != KERN_SUCCESS && obj != nullptr) vm_object_deallocate(obj);
  return kr;
}
kern_return_t insert_locked(vaddr_t s, vaddr_t e, int prot, bool shared, vm_ooffset_t ident) VMRT_REQUIRES(g_vm_lock) {
  return insert_locked(s, e, prot, inherit_of(shared), ident);
}

// After a host call that may have unmapped part of [s, e) of the area (a failed MAP_FIXED
// mmap, a failed MREMAP_FIXED: Linux unmaps the destination before it gives up), the pages
// the host no longer maps leave the map and become the area's reservation again.
//  => VM lock held.
constexpr vsize_t kResyncChunk = 4096;  // pages per mincore call
void resync_unmapped(vaddr_t s, vaddr_t e) {
  VMRT_LARGE_BSS static unsigned char vec[kResyncChunk] VMRT_GUARDED_BY(g_vm_lock);
  unsigned char v;
  vaddr_t run = 0;
  bool in_run = false;
  for (vaddr_t x = s; x <= e;) {
    // Whole chunks the host maps are skipped at once.
    vsize_t chunk = e - x < (kResyncChunk << PAGE_SHIFT) ? e - x : kResyncChunk << PAGE_SHIFT;
    if (x < e && !in_run && vmrt::sys::mincore(reinterpret_cast<void*>(x), chunk, vec) == 0) {
      x += chunk;
      continue;
    }
    bool gone = x < e && vmrt::sys::mincore(reinterpret_cast<void*>(x), PAGE_SIZE, &v) != 0 && errno == ENOMEM;
    if (gone && !in_run) {
      run = x;
      in_run = true;
    } else if (!gone && in_run) {
      remove_locked(run, x);
      in_run = false;
    }
    x += PAGE_SIZE;
  }
}

// Is [s, s + n) one VMA of the host's?  (Linux's mremap needs the old range inside one
// VMA; the host holds the program's mappings of the area as Linux would hold them, having
// made the same calls, merges and splits included.)  A resize to a length that cannot fit
// anywhere changes nothing and answers EFAULT exactly when the range spans VMAs.
bool host_one_vma(vaddr_t s, vsize_t n) {
  constexpr vsize_t kProbe = (vsize_t{1} << 47) - PAGE_SIZE;
  if (n >= kProbe) return true;
  void* r = vmrt::sys::mremap(reinterpret_cast<void*>(s), n, kProbe, 0, nullptr);
  VMRT_ASSERT(r == MAP_FAILED);
  return errno != EFAULT;
}

namespace {

// Rightmost entry of the subtree x that starts at or below limit with a gap of at least
// len before it (the map's tree keeps the largest gap of each subtree).  => VM lock held.
vm_map_entry* last_fit(vm_map_entry* x, vaddr_t limit, vsize_t len) VMRT_REQUIRES(g_vm_lock) {
  if (x == nullptr || x->max_free < len) return nullptr;
  if (x->start <= limit) {
    vm_map_entry* r = last_fit(x->right, limit, len);
    if (r != nullptr) return r;
    if (x->start - x->prev->end >= len) return x;
  }
  return last_fit(x->left, limit, len);
}

}  // namespace

// Where Linux's default (top-down) layout would put n bytes: the top of the highest gap of
// the area that holds them.  New mappings then sit right below the ones made before them,
// as natively, so the neighbours Linux merges with (or not) are the same.  False: no room.
//  => VM lock held.
bool findspace_topdown(vsize_t n, vaddr_t* out) VMRT_REQUIRES(g_vm_lock) {
  // The gap below g_hi: from the end of the last entry that starts below it (the heap, the
  // map's last entry, lies above the area).
  vm_map_entry* below;
  if (!vm_map_lookup_entry(g_map, g_hi - 1, &below)) {  // else g_hi's own page is mapped: no gap at the top
    vaddr_t top_from = vm_map_is_end(g_map, below) || below->end < g_lo ? g_lo : below->end;
    if (top_from <= g_hi && g_hi - top_from >= n) {
      *out = g_hi - n;
      return true;
    }
  }
  vm_map_entry* x = last_fit(g_map->root, g_hi, n);
  if (x == nullptr || x->start < g_lo || x->start - g_lo < n) return false;
  *out = x->start - n;
  return true;
}

namespace {

unsigned host_flags(int flags) {
  return ((flags & kMapType) == MAP_SHARED ? PMAP_HOST_SHARED : 0u) | ((flags & MAP_NORESERVE) != 0 ? PMAP_HOST_NORESERVE : 0u) |
         ((flags & MAP_POPULATE) != 0 ? PMAP_HOST_POPULATE : 0u);
}

}  // namespace

}  // namespace mma

using namespace mma;

void mm_area_init(vm_map* map, vaddr_t lo, vaddr_t hi, bool paging) {
  if (lo >= hi) return;
  vnode_set_name_source(maps_file_path);  // a file mapping's name, when procstat asks
  g_map = map;
  g_lo = lo;
  g_hi = hi;
  g_paging = paging;
}

bool mm_area_ready() { return g_map != nullptr; }

void mm_area_bounds(vaddr_t* lo, vaddr_t* hi) {
  *lo = g_lo;
  *hi = g_hi;
}

bool mm_area_range_free(vaddr_t a, vsize_t n) {
  if (g_map == nullptr || n == 0 || !inside(a, n)) return false;
  vm_lock_guard g;
  return vm_map_range_free(g_map, a, a + n);
}

// A regular file the program maps (shared or private, with the flags the anonymous path
// serves): its identity, looked up before the VM lock is taken (its name only when procstat
// asks: vnode_set_name_source).  Other files (devices, /dev/zero, directories, pipes, bad
// descriptors) are not: the host answers for them (ENODEV, EBADF, ...) or maps them itself.
struct file_id {
  std::uint64_t dev, ino;
  vm_pindex_t pages;  // the file's size, in pages
};
static bool served_file(int flags, int fd, file_id* id) {
  int type = flags & kMapType;
  if ((flags & MAP_ANONYMOUS) != 0 || (type != MAP_PRIVATE && type != MAP_SHARED) || (flags & ~kServedFlags) != 0)
    return false;
  int saved = errno;  // a refused fstat must not leave its errno on a successful mmap
  struct stat st;
  bool regular = ::fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
  if (regular) {
    id->dev = st.st_dev;
    id->ino = st.st_ino;
    id->pages = static_cast<vm_pindex_t>((static_cast<std::uint64_t>(st.st_size) + PAGE_MASK) >> PAGE_SHIFT);
  }
  errno = saved;
  return regular;
}

// The host maps [a, a + n) for the program with host flags hf (MAP_FIXED there, or
// MAP_FIXED_NOREPLACE over a range the map holds: the host sees the mapping or the area's
// reservation there and answers as Linux does, its argument checks first, then EEXIST), and
// the map records it (adopted host memory), so nothing of vmrt's lands on it and the calls
// on it walk it like the rest.  A file mapping (fid) maps its vnode object at the file
// offset; other host mappings get a name of their own.  A failed MAP_FIXED may have unmapped
// the old mapping, as on Linux: the map follows the host; a place vmrt chose (placed: it was
// free) gets its reservation back.  => VM lock held.
static mm_route host_map_here(vaddr_t a, vsize_t n, int prot, int flags, int hf, int fd, off_t off, const file_id* fid,
                              bool placed, mm_answer* out) VMRT_REQUIRES(g_vm_lock) {
  if ((hf & MAP_FIXED) != 0) remove_paged_locked(a, a + n);
  void* r = vmrt::sys::mmap(reinterpret_cast<void*>(a), n, prot, hf, fd, off);
  if (r == MAP_FAILED) {
    int e = errno;
    if (placed) pmap_linux_host_unpunch(a, a + n);
    else if ((hf & MAP_FIXED) != 0) resync_unmapped(a, a + n);
    return fail(out, e);
  }
  bool shared = (flags & kMapType) != MAP_PRIVATE;
  vm_map_delete(g_map, a, a + n);
  pmap_linux_host_adopt(a, a + n, static_cast<vm_prot_t>(prot & kProtRWX), shared);
  vm_object* obj = nullptr;
  if (fid != nullptr) {
    obj = vnode_object_get(fid->dev, fid->ino, nullptr, fid->pages, atop(static_cast<vm_ooffset_t>(off) + n));
    vm_stat_inc(V_FILE_MMAPS);
  }
  vm_ooffset_t ident = obj != nullptr ? static_cast<vm_ooffset_t>(off) : new_identity(0, true);
  kern_return_t kr = insert_locked(a, a + n, prot, inherit_of(shared), ident, obj);
  if (obj != nullptr) vm_object_deallocate(obj);  // the entry holds its own reference
  if (kr != KERN_SUCCESS) {
    remove_locked(a, a + n);  // cannot record it: it goes (the program sees ENOMEM)
    return fail(out, ENOMEM);
  }
  vm_stat_inc(V_PROG_MMAPS);
  return answer(out, static_cast<long>(a));
}

// A mapping the host makes where the program places it inside the area (MAP_FIXED /
// MAP_FIXED_NOREPLACE): file mappings, and anonymous ones with flags vmrt does not serve.
static mm_route map_host_fixed(vaddr_t a, vsize_t n, int prot, int flags, int fd, off_t off, const file_id* fid,
                               mm_answer* out) {
  vm_lock_guard g;
  int hf = flags;
  if ((flags & MAP_FIXED) == 0 && vm_map_range_free(g_map, a, a + n)) hf = (flags & ~MAP_FIXED_NOREPLACE) | MAP_FIXED;
  return host_map_here(a, n, prot, flags, hf, fd, off, fid, false, out);
}

// A host-served mmap that the program places inside the area?  Then map_host_fixed.
static bool host_fixed_in_area(void* addr, std::size_t len, int flags) {
  vsize_t fn = round_len(len);
  vaddr_t fa = va(addr);
  return (flags & (MAP_FIXED | MAP_FIXED_NOREPLACE)) != 0 && len != 0 && fn != 0 && aligned(fa) && inside(fa, fn);
}

// A hint outside the area that Linux would take: the range is free in the host's address
// space (probed with MAP_FIXED_NOREPLACE, which also refuses what is below mmap_min_addr).
// The host then serves the mapping there, as Linux would place it natively: programs rely
// on it (luajit retries hint after hint until its machine code lands within 2 GB of its
// own text; placed in the area instead, every try missed and it looped).
static bool host_takes_hint(vaddr_t h, vsize_t n) {
  if (h == 0 || h + n < h || meets(h, n)) return false;
  void* r = vmrt::sys::mmap(reinterpret_cast<void*>(h), n, PROT_NONE,
                            MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED_NOREPLACE, -1, 0);
  if (r == MAP_FAILED) return false;
  vmrt::sys::munmap(r, n);
  return va(r) == h;  // (a kernel without MAP_FIXED_NOREPLACE places it elsewhere)
}

// Most a pageable file mapping may reach into its file (the vnode pager's store maps the
// file up to there); a mapping further in is the host's.
constexpr std::uint64_t kPagedFileMax = std::uint64_t{1} << 36;

// A private file mapping as pageable memory at [a, a + n) (free, or MAP_FIXED /
// MAP_FIXED_NOREPLACE there): Linux's answer for the arguments first (EEXIST, then the
// file's own checks, asked of the host with a mapping it places itself and that goes
// again), then the file's vnode object gets its store and the entry maps it copy-on-write.
//  => VM lock held.
static mm_route map_file_paged(vaddr_t a, vsize_t n, int prot, int flags, int fd, off_t off, const file_id* fid,
                               mm_answer* out) VMRT_REQUIRES(g_vm_lock) {
  if ((flags & MAP_FIXED) == 0 && !vm_map_range_free(g_map, a, a + n)) return fail(out, EEXIST);  // FIXED_NOREPLACE
  void* probe = vmrt::sys::mmap(nullptr, n, prot, flags & ~(MAP_FIXED | MAP_FIXED_NOREPLACE | MAP_POPULATE), fd, off);
  if (probe == MAP_FAILED) return fail(out, errno);
  vmrt::sys::munmap(probe, n);
  vm_object* obj = vnode_object_get(fid->dev, fid->ino, nullptr, fid->pages, atop(static_cast<vm_ooffset_t>(off) + n));
  if (obj == nullptr) return host_map_here(a, n, prot, flags, flags | MAP_FIXED, fd, off, fid, (flags & MAP_FIXED) == 0, out);
  if (int e = vnode_object_attach_store(obj, fd, static_cast<std::uint64_t>(off) + n); e != 0) {
    vm_object_deallocate(obj);
    return fail(out, e);
  }
  if ((flags & MAP_FIXED) != 0) remove_locked(a, a + n);
  kern_return_t kr = insert_paged_file_locked(a, a + n, vm_prot_of(prot), VM_INHERIT_COPY, obj, static_cast<vm_ooffset_t>(off));
  vm_object_deallocate(obj);  // the entry holds its own reference
  if (kr != KERN_SUCCESS) return fail(out, ENOMEM);
  if ((flags & MAP_POPULATE) != 0 && (prot & kProtRWX) != PROT_NONE) (void)vm_map_populate_locked(g_map, a, a + n);
  vm_stat_inc(V_PROG_MMAPS);
  vm_stat_inc(V_FILE_MMAPS);
  rt_count(RC_MMAP_PAGED);
  return answer(out, static_cast<long>(a));
}

// A regular file's mapping, served: placed as an anonymous one (top-down, a free hint,
// MAP_FIXED, MAP_FIXED_NOREPLACE) and mapped there by the host, whose page cache holds its
// pages (read(2)/write(2) by any process see them, and a private mapping's copy-on-write is
// Linux's).  The host's argument checks (EACCES, EOVERFLOW, EPERM) come before it unmaps
// anything, so they answer at the chosen place exactly as Linux at its own.
static mm_route mmap_file(void* addr, std::size_t len, int prot, int flags, int fd, off_t off, const file_id* fid,
                          mm_answer* out) {
  vsize_t n = round_len(len);
  if (len == 0 || n == 0 || (off & static_cast<off_t>(PAGE_MASK)) != 0) return mm_route::host;  // EINVAL / ENOMEM
  if (!vma_budget_allows(kNewMappingVmas)) return fail(out, ENOMEM);
  vaddr_t a = va(addr);
  bool fixed = (flags & (MAP_FIXED | MAP_FIXED_NOREPLACE)) != 0;
  if (fixed && (!aligned(a) || !inside(a, n))) {  // EINVAL, or not the area's
    vma_budget_note_outside();
    return mm_route::host;
  }
  // Private mappings are pageable memory when paging is on (and their extent in the file is
  // one a store can span); shared ones stay the host's page cache (coherence).
  bool paged = (flags & kMapType) == MAP_PRIVATE && paged_anon() && static_cast<std::uint64_t>(off) + n <= kPagedFileMax;
  if (fixed && !paged) return map_host_fixed(a, n, prot, flags, fd, off, fid, out);
  if (!fixed && host_takes_hint(a & ~static_cast<vaddr_t>(PAGE_MASK), n)) {
    vma_budget_note_outside();
    return mm_route::host;
  }
  vm_lock_guard g;
  if (!fixed) {
    vaddr_t h = a & ~static_cast<vaddr_t>(PAGE_MASK);
    if (!(h != 0 && inside(h, n) && vm_map_range_free(g_map, h, h + n)) && !findspace_topdown(n, &h)) {
      rt_count(RC_MMAP_TO_HOST);
      vma_budget_note_outside();
      return mm_route::host;
    }
    if (!paged) return host_map_here(h, n, prot, flags, flags | MAP_FIXED, fd, off, fid, true, out);
    a = h;
  }
  return map_file_paged(a, n, prot, flags, fd, off, fid, out);
}

mm_route mm_mmap(void* addr, std::size_t len, int prot, int flags, int fd, off_t off, mm_answer* out) {
  if (g_map == nullptr) return mm_route::host;
  if (file_id fid; served_file(flags, fd, &fid)) return mmap_file(addr, len, prot, flags, fd, off, &fid, out);
  int type = flags & kMapType;
  if ((flags & MAP_ANONYMOUS) == 0 || (type != MAP_PRIVATE && type != MAP_SHARED) || (flags & ~kServedFlags) != 0) {
    if (len != 0 && !vma_budget_allows(kNewMappingVmas)) return fail(out, ENOMEM);
    if (!host_fixed_in_area(addr, len, flags)) {
      vma_budget_note_outside();
      return mm_route::host;
    }
    return map_host_fixed(va(addr), round_len(len), prot, flags, fd, off, nullptr, out);
  }
  prot &= kProtRWX;  // Linux's mmap ignores every other prot bit (PROT_SEM, unknown ones)
  vsize_t n = round_len(len);
  if (len == 0 || n == 0 || (off & static_cast<off_t>(PAGE_MASK)) != 0) return mm_route::host;  // EINVAL / ENOMEM
  // Near vm.max_map_count: the kernel's ENOMEM, vmrt's headroom kept (rt_vma_budget.h).
  if (!vma_budget_allows(kNewMappingVmas)) return fail(out, ENOMEM);
  bool fixed = (flags & (MAP_FIXED | MAP_FIXED_NOREPLACE)) != 0;
  vaddr_t a = va(addr);
  if (fixed && (!aligned(a) || !inside(a, n))) return mm_route::host;  // EINVAL, or not the area's
  bool shared = type == MAP_SHARED;
  if (!fixed && host_takes_hint(a & ~static_cast<vaddr_t>(PAGE_MASK), n)) {
    vma_budget_note_outside();
    return mm_route::host;
  }
  if (vm_fail_armed() && vm_fail_eval(FP_MMAP, n)) return fail(out, ENOMEM);
  bool paged = !shared && paged_anon();
  vm_lock_guard g;
  if (fixed) {
    if ((flags & MAP_FIXED) == 0 && !vm_map_range_free(g_map, a, a + n)) return fail(out, EEXIST);  // FIXED_NOREPLACE
    // MAP_FIXED replaces; host_map below replaces the host side (pageable memory: the old
    // host memory goes here).
    if (paged) remove_locked(a, a + n);
    else delete_locked(a, a + n);
  } else {
    // A hint inside the area is taken when free (Linux takes a free hint); else first fit.
    vaddr_t h = a & ~static_cast<vaddr_t>(PAGE_MASK);
    if (!(h != 0 && inside(h, n) && vm_map_range_free(g_map, h, h + n)) &&
        !findspace_topdown(n, &h)) {
      rt_count(RC_MMAP_TO_HOST);
      vma_budget_note_outside();
      return mm_route::host;  // no room in the area: the host's address space serves it
    }
    a = h;
  }
  if (paged) {
    if (insert_paged_locked(a, a + n, vm_prot_of(prot), VM_INHERIT_COPY) != KERN_SUCCESS) return fail(out, ENOMEM);
    if ((flags & MAP_POPULATE) != 0 && prot != PROT_NONE) (void)vm_map_populate_locked(g_map, a, a + n);
    vm_stat_inc(V_PROG_MMAPS);
    rt_count(RC_MMAP_PAGED);
    return answer(out, static_cast<long>(a));
  }
  if (insert_locked(a, a + n, prot, shared, new_identity(a, shared)) != KERN_SUCCESS) {
    if (fixed) pmap_machine_ops()->host_unmap(g_map->pm, a, a + n);  // the old mapping is gone either way
    return fail(out, ENOMEM);
  }
  if (pmap_machine_ops()->host_map(g_map->pm, a, a + n, static_cast<vm_prot_t>(prot), host_flags(flags)) != KERN_SUCCESS) {
    int e = errno;
    vm_map_delete(g_map, a, a + n);
    return fail(out, e == 0 ? ENOMEM : e);
  }
  vm_stat_inc(V_PROG_MMAPS);
  return answer(out, static_cast<long>(a));
}

mm_route mm_munmap(void* addr, std::size_t len, mm_answer* out) {
  vaddr_t a = va(addr);
  if (g_map == nullptr || !meets(a, len)) return mm_route::host;
  vsize_t n = round_len(len);
  if (!aligned(a) || n == 0 || a + n < a) return fail(out, EINVAL);
  // Fault injection: munmap(2)'s ENOMEM (splitting a mapping would pass the mapping limit),
  // before anything is unmapped.
  if (vm_fail_armed() && vm_fail_eval(FP_MUNMAP, n)) return fail(out, ENOMEM);
  vaddr_t e = a + n;
  vaddr_t s = a < g_lo ? g_lo : a, t = e > g_hi ? g_hi : e;
  // The parts outside the area are the host's.
  if (a < g_lo && vmrt::sys::munmap(addr, g_lo - a) != 0) return fail(out, errno);
  if (e > g_hi && vmrt::sys::munmap(reinterpret_cast<void*>(g_hi), e - g_hi) != 0) return fail(out, errno);
  vm_lock_guard g;
  remove_locked(s, t);
  vm_stat_inc(V_PROG_MUNMAPS);
  return answer(out, 0);
}

mm_route mm_mprotect(void* addr, std::size_t len, int prot, mm_answer* out) {
  vaddr_t a = va(addr);
  if (g_map == nullptr || !meets(a, len)) return mm_route::host;
  // Linux's order (mm/mprotect.c): the grow bits, alignment, length, the prot bits, then
  // the first mapping of the range.
  int grows = prot & (PROT_GROWSDOWN | PROT_GROWSUP);
  prot &= ~grows;
  if (grows == (PROT_GROWSDOWN | PROT_GROWSUP)) return fail(out, EINVAL);
  if (!aligned(a)) return fail(out, EINVAL);
  if (len == 0) return answer(out, 0);
  vsize_t n = round_len(len);
  if (n == 0 || a + n <= a) return fail(out, ENOMEM);
  if ((prot & ~(kProtRWX | PROT_SEM)) != 0) return fail(out, EINVAL);  // PROT_SEM: accepted, no effect
  if (!inside(a, n)) return mm_route::host;
  vm_lock_guard g;
  {
    vm_map_entry* ent;
    if (!vm_map_lookup_entry(g_map, a, &ent)) ent = ent->next;
    if (vm_map_is_end(g_map, ent) || ent->start >= a + n) return fail(out, ENOMEM);  // nothing in the range
    // PROT_GROWSDOWN needs a MAP_GROWSDOWN mapping (vmrt's never are); x86 has no
    // growing-up mappings: EINVAL, after the start's own check.
    if ((grows & PROT_GROWSDOWN) != 0) return fail(out, EINVAL);
    if (ent->start > a) return fail(out, ENOMEM);
    if ((grows & PROT_GROWSUP) != 0) return fail(out, EINVAL);
    // A change inside a mapping splits it (one more VMA per end): near vm.max_map_count the
    // kernel's ENOMEM, vmrt's headroom kept (rt_vma_budget.h).
    vm_map_entry* last;
    vm_map_lookup_entry(g_map, a + n - 1, &last);
    unsigned splits = (ent->start < a ? 1U : 0U) + (last->end > a + n ? 1U : 0U);
    if (splits != 0 && !vma_budget_allows(splits)) return fail(out, ENOMEM);
  }
  // Fault injection: mprotect(2)'s ENOMEM (kernel structures), after the argument checks and
  // before any piece changes.
  if (vm_fail_armed() && vm_fail_eval(FP_MPROTECT, n)) return fail(out, ENOMEM);
  int err = 0;
  vm_prot_t vp = vm_prot_of(prot);
  // Piece by piece, the host first, then the map (what was changed before a hole or a
  // refusal stays changed, as in Linux).
  bool whole = walk(a, a + n, [&](vaddr_t s, vaddr_t e, vm_map_entry* ent) VMRT_REQUIRES(g_vm_lock) {
    if (vm_backed(ent)) {
      // Made writable: charged now (Linux charges a private mapping when it becomes
      // writable, and keeps the charge when it stops being so).
      bool charge = (vp & VM_PROT_WRITE) != 0 && (ent->eflags & MAP_ENTRY_CHARGED) == 0;
      if (charge && vm_commit_charge(e - s) != KERN_SUCCESS) {
        err = ENOMEM;
        return false;
      }
      vm_map_clip_start(g_map, ent, s);
      vm_map_clip_end(g_map, ent, e);
      if (charge) ent->eflags |= MAP_ENTRY_CHARGED;
      vm_map_entry_protect(g_map, ent, vp);
      return true;
    }
    int r = pmap_linux_host_protect(s, e, vp);
    if (r != 0) {
      err = r;
      return false;
    }
    vm_map_clip_start(g_map, ent, s);
    vm_map_clip_end(g_map, ent, e);
    ent->protection = vp;
    return true;
  });
  simplify_locked(a, a + n);  // pieces of one mapping with one protection again are one entry
  vm_stat_inc(V_PROG_MPROTECTS);
  if (err != 0) return fail(out, err);
  return whole ? answer(out, 0) : fail(out, ENOMEM);
}

// Set the inheritance of each piece of [s, e), all mapped, to want(piece start, entry), then
// merge again.  mm_fork_child reads it in the host's child.  => VM lock held.
template <class F> static void set_inheritance(vaddr_t s, vaddr_t e, F&& want) VMRT_REQUIRES(g_vm_lock) {
  walk(s, e, [&](vaddr_t x, vaddr_t y, vm_map_entry* ent) VMRT_REQUIRES(g_vm_lock) {
    vm_inherit_t w = want(x, ent);
    if (ent->inheritance == w) return true;
    vm_map_clip_start(g_map, ent, x);
    vm_map_clip_end(g_map, ent, y);
    ent->inheritance = w;
    return true;
  });
  simplify_locked(s, e);
}

// Linux's advice on a piece of pageable private memory [s, e): 0 or an errno.  The advice
// the VM keeps or acts on goes to it (COLD deactivates, PAGEOUT reclaims now: EINVAL on
// locked memory, as Linux); DONTFORK/DOFORK are the entries' inheritance (the
// caller); WIPEONFORK/KEEPONFORK are the entries' inheritance too (VM_INHERIT_ZERO: the child
// gets zeros, mm_fork_child); MADV_REMOVE is refused as Linux refuses it on private memory;
// the rest (huge pages, KSM, dump...) are hints vmrt takes and ignores.
//  => VM lock held.
// A private file mapping (file) takes what Linux allows on one: MADV_FREE and
// MADV_WIPEONFORK are for anonymous memory only (EINVAL), MADV_REMOVE needs a shared
// writable mapping (EACCES), after refusing locked memory (EINVAL: madvise_remove tests
// VM_LOCKED first).
static int advise_paged(vaddr_t s, vaddr_t e, int advice, bool file) VMRT_REQUIRES(g_vm_lock) {
  if (file && (advice == MADV_FREE || advice == MADV_WIPEONFORK)) return EINVAL;
  if (advice == MADV_REMOVE) {
    bool locked = false;
    walk(s, e, [&](vaddr_t, vaddr_t, vm_map_entry* ent) VMRT_REQUIRES(g_vm_lock) {
      return !(locked = ent->wired_count != 0);
    });
    return file && !locked ? EACCES : EINVAL;
  }
  vm_advice_t va;
  switch (advice) {
    case MADV_NORMAL: va = VM_ADVICE_NORMAL; break;
    case MADV_RANDOM: va = VM_ADVICE_RANDOM; break;
    case MADV_SEQUENTIAL: va = VM_ADVICE_SEQUENTIAL; break;
    case MADV_WILLNEED:  // as Linux on anonymous memory: read back what is paged out
      (void)vm_map_willneed_locked(g_map, s, e);
      return 0;
    case MADV_DONTNEED: va = VM_ADVICE_DONTNEED; break;
    case MADV_FREE: va = VM_ADVICE_FREE; break;
    case MADV_COLD: va = VM_ADVICE_COLD; break;
    case MADV_PAGEOUT: va = VM_ADVICE_PAGEOUT; break;
#ifdef MADV_POPULATE_READ
    case MADV_POPULATE_READ:
    case MADV_POPULATE_WRITE: va = VM_ADVICE_WILLNEED; break;
#endif
    case MADV_WIPEONFORK:
    case MADV_KEEPONFORK: {
      vm_inherit_t want = advice == MADV_WIPEONFORK ? VM_INHERIT_ZERO : VM_INHERIT_COPY;
      set_inheritance(s, e, [want](vaddr_t, const vm_map_entry* ent) VMRT_REQUIRES(g_vm_lock) {
        return ent->inheritance == VM_INHERIT_NONE ? VM_INHERIT_NONE : want;  // DONTFORK stays
      });
      return 0;
    }
    default: return 0;
  }
  kern_return_t kr = vm_map_advise_locked(g_map, s, e, va);
  return kr == KERN_SUCCESS ? 0 : kr == KERN_INVALID_ARGUMENT ? EINVAL : ENOMEM;
}

// MADV_WILLNEED on pageable memory outside the area (the paged heap: kmem's windows): the
// VM reads back what it paged out; the host's madvise follows (a no-op on frames).
static void willneed_window(vaddr_t a, std::size_t len) {
  if (!aligned(a) || len == 0 || round_len(len) == 0 || !vm_pageout_enabled()) return;
  window* w = window_lookup(a);
  vmspace* vs = w != nullptr ? w->vs.load(std::memory_order_acquire) : nullptr;
  if (vs != nullptr) (void)vm_willneed_pageout(vs, a, round_len(len));
}

// MADV_COLD / MADV_PAGEOUT on pageable memory outside the area (the paged heap: kmem's
// windows): the VM deactivates or reclaims the pages it holds there.  Returns EINVAL when
// the VM refuses (locked memory, as Linux), else 0: then the host's madvise answers for the
// range (its own checks, and host memory there, the heap without paging, gets Linux's
// MADV_PAGEOUT; the frames vmrt reclaimed are no longer mapped there).
static int cold_window(vaddr_t a, std::size_t len, int advice) {
  if (!aligned(a) || len == 0 || round_len(len) == 0) return 0;
  window* w = window_lookup(a);
  vmspace* vs = w != nullptr && w->kind == WK_PROCESS ? w->vs.load(std::memory_order_acquire) : nullptr;
  if (vs == nullptr) return 0;
  kern_return_t kr = vm_madvise(vs, a, round_len(len), advice == MADV_COLD ? VM_ADVICE_COLD : VM_ADVICE_PAGEOUT);
  return kr == KERN_INVALID_ARGUMENT ? EINVAL : 0;
}

mm_route mm_madvise(void* addr, std::size_t len, int advice, mm_answer* out) {
  vaddr_t a = va(addr);
  if (advice == MADV_WILLNEED && (g_map == nullptr || !inside(a, round_len(len)))) willneed_window(a, len);
  if ((advice == MADV_COLD || advice == MADV_PAGEOUT) && (g_map == nullptr || !meets(a, len)))
    if (int e = cold_window(a, len, advice); e != 0) return fail(out, e);
  if (g_map == nullptr || !meets(a, len)) return mm_route::host;
  // The advice's validity first (the host's answer for a valid address and length 0).
  if (vmrt::sys::madvise(reinterpret_cast<void*>(a & ~static_cast<vaddr_t>(PAGE_MASK)), 0, advice) != 0)
    return fail(out, errno);
  if (!aligned(a)) return fail(out, EINVAL);
  vsize_t n = round_len(len);
  if (len != 0 && n == 0) return fail(out, EINVAL);
  if (n == 0) return answer(out, 0);
  if (a + n < a) return fail(out, EINVAL);
  if (!inside(a, n)) return mm_route::host;
  vm_lock_guard g;
  int err = 0;
  bool hole = false;
  // Linux applies the advice to every mapped piece and reports a hole at the end.
  walk_over_holes(a, a + n, &hole, [&](vaddr_t x, vaddr_t e) VMRT_REQUIRES(g_vm_lock) {
    vm_map_entry* ent;
    VMRT_ASSERT(vm_map_lookup_entry(g_map, x, &ent));
    if (vm_backed(ent)) {
      // Never the host's madvise here: the frames mapped in pageable memory are physmem
      // (MADV_REMOVE would punch holes in it).
      vm_object* fobj;
      vm_ooffset_t foff;
      err = advise_paged(x, e, advice, file_position(ent, x, &fobj, &foff));
      if (err != 0) return false;
    } else if (vmrt::sys::madvise(reinterpret_cast<void*>(x), e - x, advice) != 0) {
      err = errno;
      return false;
    }
    if (advice == MADV_DONTFORK || advice == MADV_DOFORK) {
      // NONE: a hole in the child; DOFORK: what the memory's kind gives (SHARE, COPY).
      bool dontfork = advice == MADV_DONTFORK;
      set_inheritance(x, e, [dontfork](vaddr_t p, const vm_map_entry*) {
        return dontfork ? VM_INHERIT_NONE : inherit_of(pmap_linux_host_shared(p));
      });
    }
    return true;
  });
  vm_stat_inc(V_PROG_MADVISES);
  if (err != 0) return fail(out, err);
  return hole ? fail(out, ENOMEM) : answer(out, 0);
}

VMRT_FORK_CHILD_TEXT void mm_fork_child() {
  if (!VMRT_ONLY_THREAD_READ(g_area_used)) return;  // nothing was ever mapped in the area
  vm_lock_guard g;
  // What the host did not give the child (MADV_DONTFORK memory, whoever mapped it) is a
  // hole in it: the map forgets it and the area reserves the hole again.
  // Pageable memory is the VM's: the child has it (physmem was copied) unless it was
  // MADV_DONTFORK (a hole) or MADV_WIPEONFORK (zeros).
  vm_map_entry* ent;
  if (!vm_map_lookup_entry(g_map, g_lo, &ent)) ent = ent->next;
  while (!vm_map_is_end(g_map, ent) && ent->start < g_hi) {
    vaddr_t s = ent->start, e = ent->end;
    if (!vm_backed(ent)) {
      resync_unmapped(s, e);
    } else if (ent->inheritance == VM_INHERIT_NONE) {
      delete_locked(s, e);
    } else if (ent->inheritance == VM_INHERIT_ZERO) {  // MADV_WIPEONFORK: fresh memory
      vm_prot_t prot = ent->protection;
      delete_locked(s, e);
      (void)insert_paged_locked(s, e, prot, VM_INHERIT_ZERO);
    } else if (ent->wired_count != 0) {
      // Memory locks are not inherited (Linux's dup_mmap clears VM_LOCKED): the child's
      // advice that Linux refuses on locked memory is taken (the paged differential, seeds
      // 39 and 47, failed MADV_FREE and MADV_COLD in a child with EINVAL).
      vm_map_unwire_locked(g_map, s, e);
    }
    if (!vm_map_lookup_entry(g_map, e, &ent)) ent = ent->next;
  }
}

// Copy n bytes to the program's buffer dst as the kernel would: 0, or EFAULT when dst is not
// writable memory (the kernel checks; a fault on a page that is not resident is served as
// any fault, so no VM lock may be held).
static int copy_out(unsigned char* dst, const unsigned char* src, std::size_t n) {
  iovec local{const_cast<unsigned char*>(src), n}, remote{dst, n};
  ssize_t w = ::process_vm_writev(::getpid(), &local, 1, &remote, 1, 0);
  if (w == static_cast<ssize_t>(n)) return 0;
  if (w < 0 && errno != EFAULT) {  // no process_vm_writev (seccomp, old kernel): write directly
    std::memcpy(dst, src, n);
    return 0;
  }
  return EFAULT;
}

// Is [a, a + n) inside the heap's entry, and the heap vmrt frames (VMRT_HEAP=paged or
// frames)?  Then mincore there is the VM's answer, as in the area: the host's would be the
// physmem file's page cache at the frame last mapped at each page, and a frame the pageout
// daemon or MADV_PAGEOUT freed stays in it while cached (a page in swap said "resident").
//  => takes the VM lock.
static bool heap_frames(vaddr_t a, vsize_t n) {
  if (!aligned(a) || n == 0 || a + n < a) return false;
  vm_lock_guard g;
  vm_map_entry* ent;
  return vm_heap_object() != nullptr && vm_map_lookup_entry(g_map, a, &ent) && ent->object == vm_heap_object() &&
         vm_backed(ent) && a + n <= ent->end;
}

// Linux's mincore answers at most a page's worth of the vector at a time, within one
// mapping: the mapping at the address is looked up (none: ENOMEM), its pages answered, then
// copied out (a bad vector: EFAULT), and on to the next.  The answers are made under the VM
// lock into a buffer of our own and copied out after it.
mm_route mm_mincore(void* addr, std::size_t len, unsigned char* vec, mm_answer* out) {
  vaddr_t a = va(addr);
  if (g_map == nullptr) return mm_route::host;
  const bool heap = !meets(a, len) && heap_frames(a, round_len(len));
  if (!heap && !meets(a, len)) return mm_route::host;
  if (!aligned(a)) return fail(out, EINVAL);
  vsize_t n = round_len(len);
  if (n == 0 || a + n < a) return fail(out, ENOMEM);
  if (!heap && !inside(a, n)) return mm_route::host;
  constexpr vsize_t kChunk = PAGE_SIZE << PAGE_SHIFT;  // the bytes one page of the vector answers
  unsigned char buf[PAGE_SIZE];
  for (vaddr_t x = a; x < a + n;) {
    vaddr_t y = a + n - x > kChunk ? x + kChunk : a + n;
    {
      vm_lock_guard g;
      vm_map_entry* ent;
      if (!vm_map_lookup_entry(g_map, x, &ent)) return fail(out, ENOMEM);
      if (ent->end < y) y = ent->end;
      if (vm_backed(ent)) {  // in core: the VM has the page, mapped or not (Linux's answer)
        vm_map_incore_locked(g_map, x, y, buf);
      } else if (vmrt::sys::mincore(reinterpret_cast<void*>(x), y - x, buf) != 0) {
        return fail(out, errno);
      }
    }
    if (int e = copy_out(vec + ((x - a) >> PAGE_SHIFT), buf, (y - x) >> PAGE_SHIFT); e != 0) return fail(out, e);
    x = y;
  }
  return answer(out, 0);
}

mm_route mm_msync(void* addr, std::size_t len, int flags, mm_answer* out) {
  vaddr_t a = va(addr);
  if (g_map == nullptr || !meets(a, len)) return mm_route::host;
  if ((flags & ~(MS_ASYNC | MS_INVALIDATE | MS_SYNC)) != 0) return fail(out, EINVAL);
  if (!aligned(a)) return fail(out, EINVAL);
  if ((flags & MS_ASYNC) != 0 && (flags & MS_SYNC) != 0) return fail(out, EINVAL);
  vsize_t n = round_len(len);
  if (len != 0 && (n == 0 || a + n < a)) return fail(out, ENOMEM);
  if (n == 0) return answer(out, 0);
  if (!inside(a, n)) return mm_route::host;
  vm_lock_guard g;
  // Linux walks the mappings in order: a hole is remembered (ENOMEM at the end), a locked
  // mapping with MS_INVALIDATE stops the walk (EBUSY); the host answers for each piece.
  bool hole = false, any_file = false;
  int err = 0;
  walk_over_holes(a, a + n, &hole, [&](vaddr_t x, vaddr_t e) VMRT_REQUIRES(g_vm_lock) {
    vm_map_entry* ent;
    VMRT_ASSERT(vm_map_lookup_entry(g_map, x, &ent));
    if (vm_backed(ent)) {  // anonymous memory (or a private file mapping's copies): nothing to write back
      if ((flags & MS_INVALIDATE) == 0 || ent->wired_count == 0) return true;
      err = EBUSY;
      return false;
    }
    if (ent->object != nullptr && ent->object->type == OBJT_VNODE) {
      any_file = true;
      if (ent->inheritance == VM_INHERIT_SHARE || pmap_linux_host_shared(x)) vm_stat_inc(V_FILE_MSYNC_WRITES);
    }
    if (vmrt::sys::msync(reinterpret_cast<void*>(x), e - x, flags) == 0 || errno == ENOMEM) return true;
    err = errno;
    return false;
  });
  if (any_file) vm_stat_inc(V_FILE_MSYNCS);
  if (err != 0) return fail(out, err);
  return hole ? fail(out, ENOMEM) : answer(out, 0);
}

mm_route mm_mlock(const void* addr, std::size_t len, bool lock, mm_answer* out) {
  vaddr_t a0 = va(addr);
  if (g_map == nullptr || !meets(a0, len)) return mm_route::host;
  // Linux rounds the start down and the length up to pages.
  vaddr_t a = a0 & ~static_cast<vaddr_t>(PAGE_MASK);
  vsize_t n = len > SIZE_MAX - (a0 - a) ? 0 : round_len(len + (a0 - a));
  if (n == 0 || a + n < a) return mm_route::host;  // 0 or EINVAL from the kernel, nothing locked
  if (!inside(a, n)) return mm_route::host;
  // Fault injection: mlock(2)'s EAGAIN (the range could not be locked), nothing locked;
  // munlock is never failed.
  if (lock && vm_fail_armed() && vm_fail_eval(FP_MLOCK, n)) return fail(out, EAGAIN);
  vm_lock_guard g;
  // Linux (mm/mlock.c) flags the mappings in order and stops at the first hole (ENOMEM:
  // what came before stays locked, and nothing is faulted in).  The host gives exactly
  // that answer when the first hole is a real one for the call.
  vaddr_t hole = 0, hole_end = 0;
  for_each_hole(a, a + n, [&](vaddr_t x, vaddr_t y) {
    if (hole_end == 0) {
      hole = x;
      hole_end = y;
    }
  });
  // Pageable memory in the range: piece by piece in order (the host's mlock would fault
  // it in through vmrt with the VM lock held here).  Linux stops at the first hole with
  // ENOMEM, and populating stops at the first PROT_NONE mapping with ENOMEM too (gup's
  // EFAULT: populate_vma_page_range forces access only on accessible mappings), what came
  // before it locked and faulted in.
  bool any_paged = false;
  walk(a, a + n,
       [&](vaddr_t, vaddr_t, vm_map_entry* ent) VMRT_REQUIRES(g_vm_lock) { return !(any_paged = vm_backed(ent)); });
  // The pageable pieces of [x, y) locked as Linux flags VM_LOCKED without populating.
  auto lock_lazily = [](vaddr_t x, vaddr_t y) VMRT_REQUIRES(g_vm_lock) {
    walk(x, y, [](vaddr_t s, vaddr_t e, vm_map_entry* ent) VMRT_REQUIRES(g_vm_lock) {
      if (vm_backed(ent)) vm_map_lock_lazy_locked(g_map, s, e);
      return true;
    });
  };
  if (any_paged && lock) {
    if (hole_end != 0) {  // Linux flags what precedes the hole and faults nothing in
      lock_lazily(a, hole);
      return fail(out, ENOMEM);
    }
    int err = 0;
    vaddr_t stop = a + n;  // where locking stopped (the rest is locked lazily)
    walk(a, a + n, [&](vaddr_t s, vaddr_t e, vm_map_entry* ent) VMRT_REQUIRES(g_vm_lock) {
      if (!vm_backed(ent)) {
        if (vmrt::sys::mlock(reinterpret_cast<void*>(s), e - s) != 0) err = errno;
        stop = e;
        return err == 0;
      }
      if (ent->protection == VM_PROT_NONE) {
        err = ENOMEM;
        stop = s;
        return false;
      }
      kern_return_t kr = vm_map_wire_locked(g_map, s, e);  // a failure leaves [s, e) locked lazily
      if (kr != KERN_SUCCESS) err = kr == KERN_RESOURCE_SHORTAGE ? EAGAIN : ENOMEM;
      stop = e;
      return err == 0;
    });
    // A populating failure leaves the rest flagged, as Linux's does; the wired-page bound
    // (EAGAIN, before anything of its piece is touched) is RLIMIT_MEMLOCK's kind of refusal.
    if (err == ENOMEM) lock_lazily(stop, a + n);
    return err != 0 ? fail(out, err) : answer(out, 0);
  }
  if (any_paged) {  // munlock: what precedes the first hole, then ENOMEM at it
    int err = 0;
    bool whole = walk(a, a + n, [&](vaddr_t s, vaddr_t e, vm_map_entry* ent) VMRT_REQUIRES(g_vm_lock) {
      if (!vm_backed(ent)) {
        if (vmrt::sys::munlock(reinterpret_cast<void*>(s), e - s) != 0) err = errno;
        return err == 0;
      }
      vm_map_unwire_locked(g_map, s, e);
      return true;
    });
    if (err != 0) return fail(out, err);
    return whole ? answer(out, 0) : fail(out, ENOMEM);
  }
  if (hole_end != 0 && pmap_linux_host_punch(hole, hole_end) != 0) return fail(out, ENOMEM);
  int r = lock ? vmrt::sys::mlock(reinterpret_cast<void*>(a), n) : vmrt::sys::munlock(reinterpret_cast<void*>(a), n);
  int err = errno;
  if (hole_end != 0) pmap_linux_host_unpunch(hole, hole_end);
  return r != 0 ? fail(out, err) : answer(out, 0);
}

bool mm_next_entry(vaddr_t from, mm_entry_view* out) {
  if (g_map == nullptr) return false;
  if (from < g_lo) from = g_lo;
  vm_lock_guard g;
  vm_map_entry* ent;
  if (!vm_map_lookup_entry(g_map, from, &ent)) ent = ent->next;
  if (vm_map_is_end(g_map, ent) || ent->start >= g_hi) return false;
  out->start = ent->start < from ? from : ent->start;
  out->end = ent->end > g_hi ? g_hi : ent->end;
  out->pageable = vm_backed(ent);
  out->prot_none = ent->protection == VM_PROT_NONE;
  return true;
}

}  // namespace vmrt::rt
