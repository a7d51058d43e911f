// rt_mmap.cpp — the program's own anonymous mappings (see rt_mmap.h).
//
// The answers follow Linux's mm/mmap.c, mm/mprotect.c, mm/madvise.c, mm/mremap.c,
// mm/mincore.c and mm/msync.c: the order in which arguments are checked decides which
// errno a doubly-wrong call gets, and a walk that meets a hole after changing what came
// before it (mprotect, madvise, mincore, msync, mlock) keeps those changes and reports
// ENOMEM, as Linux does.
#include "runtime/rt_mmap.h"

#include <cerrno>
#include <climits>
#include <sys/mman.h>

#include "runtime/pmap_linux.h"
#include "runtime/rt_stats.h"
#include "vm/pmap.h"
#include "vm/vm_fail.h"
#include "vm/vm_lock.h"
#include "vm/vm_map.h"
#include "vm/vm_stats.h"
#include "vm/vm_sys.h"

#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif
#ifndef MREMAP_DONTUNMAP
#define MREMAP_DONTUNMAP 4
#endif

namespace vmrt::rt {
namespace {

vm_map* g_map;        // the process vmspace's map [constant after init]
vaddr_t g_lo, g_hi;   // the mmap area [constant after init]

constexpr int kProtRWX = PROT_READ | PROT_WRITE | PROT_EXEC;
// mmap flags vmrt serves; any other bit goes to the host.  (MAP_STACK, MAP_DENYWRITE and
// MAP_EXECUTABLE are accepted and ignored by Linux as well.)
constexpr int kServedFlags = MAP_SHARED | MAP_PRIVATE | MAP_FIXED | MAP_ANONYMOUS | MAP_NORESERVE | MAP_POPULATE |
                             MAP_STACK | MAP_FIXED_NOREPLACE | MAP_DENYWRITE | MAP_EXECUTABLE;
constexpr int kMapType = 0x0f;  // MAP_TYPE

inline vaddr_t va(const void* p) { return reinterpret_cast<vaddr_t>(p); }
inline bool aligned(vaddr_t a) { return (a & PAGE_MASK) == 0; }
// Page-rounded length; 0 when it overflows (a length of 0 stays 0: callers check it first).
inline vsize_t round_len(std::size_t len) { return len > SIZE_MAX - PAGE_MASK ? 0 : (len + PAGE_MASK) & ~PAGE_MASK; }

// [a, a + n) wholly inside the area?  Does it meet the area at all?
inline bool inside(vaddr_t a, vsize_t n) { return a >= g_lo && a < g_hi && n <= g_hi - a; }
inline bool meets(vaddr_t a, vsize_t n) { return n != 0 && a < g_hi && (a + n > g_lo || a + n < a); }

mm_route answer(mm_answer* out, long value, int err = 0) {
  out->value = value;
  out->err = err;
  return mm_route::handled;
}
mm_route fail(mm_answer* out, int err) { return answer(out, -1, err); }

inline vm_prot_t vm_prot_of(int prot) { return static_cast<vm_prot_t>(prot & kProtRWX); }

// Drop [s, e) of the area: entries and host memory.  => VM lock held.
void remove_locked(vaddr_t s, vaddr_t e) {
  if (s >= e) return;
  vm_map_delete(g_map, s, e);
  pmap_machine_ops()->host_unmap(g_map->pm, s, e);
}

// Call f(piece start, piece end, entry) for each entry piece of [s, e) in order; stops
// at the first hole (returns false: ENOMEM in Linux's walks) or when f returns false.
//  => VM lock held.
template <class F> bool walk(vaddr_t s, vaddr_t e, F&& f) {
  vm_map_entry* ent;
  if (!vm_map_lookup_entry(g_map, s, &ent)) return false;
  vaddr_t a = s;
  while (a < e) {
    if (vm_map_is_end(g_map, ent) || ent->start > a) return false;
    vaddr_t b = ent->end < e ? ent->end : e;
    if (!f(a, b, ent)) return true;
    a = b;
    ent = ent->next;
  }
  return true;
}

// A mapping's identity, kept in its entries' offset (vm_map merges host memory entries
// only when their offsets are contiguous): private memory is named by its address, so
// neighbours merge, as Linux merges anonymous private VMAs; each shared mapping gets its
// own range of names, so two shared mappings side by side stay two, as on Linux (two shmem
// objects), and a mapping moved by mremap keeps its name.
std::uint64_t g_shared_names;  // [VM lock]
constexpr unsigned kSharedNameShift = 40;  // 1 TiB per shared mapping: more than the area
vm_ooffset_t new_identity(vaddr_t s, bool shared) {
  return shared ? (++g_shared_names) << kSharedNameShift : s;
}

// Linux's walks that go on past holes (madvise, msync): f(piece start, piece end) for each
// entry piece of [s, e) in order until f returns false; *hole = [s, e) has one.
//  => VM lock held.
template <class F> void walk_over_holes(vaddr_t s, vaddr_t e, bool* hole, F&& f) {
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

// Insert the entry for new host memory [s, e) named `ident`.  => VM lock held.
kern_return_t insert_locked(vaddr_t s, vaddr_t e, int prot, bool shared, vm_ooffset_t ident) {
  return vm_map_insert(g_map, nullptr, ident, s, e, vm_prot_of(prot), VM_PROT_ALL, MAP_ENTRY_HOSTMEM,
                       shared ? VM_INHERIT_SHARE : VM_INHERIT_COPY);
}

unsigned host_flags(int flags) {
  return ((flags & kMapType) == MAP_SHARED ? PMAP_HOST_SHARED : 0u) | ((flags & MAP_NORESERVE) != 0 ? PMAP_HOST_NORESERVE : 0u) |
         ((flags & MAP_POPULATE) != 0 ? PMAP_HOST_POPULATE : 0u);
}

}  // namespace

void mm_area_init(vm_map* map, vaddr_t lo, vaddr_t hi) {
  if (lo >= hi) return;
  g_map = map;
  g_lo = lo;
  g_hi = hi;
}

bool mm_area_ready() { return g_map != nullptr; }

// A file mapping the program places (MAP_FIXED / MAP_FIXED_NOREPLACE) inside the area: the
// host maps the file there (the vnode pager is future work), and the map records it so
// nothing of vmrt's lands on it and the calls on it walk it like the rest.
static mm_route map_file_fixed(vaddr_t a, vsize_t n, int prot, int flags, int fd, off_t off, mm_answer* out) {
  vm_lock_guard g;
  if ((flags & MAP_FIXED) == 0 && !vm_map_range_free(g_map, a, a + n)) return fail(out, EEXIST);
  int hf = (flags & ~MAP_FIXED_NOREPLACE) | MAP_FIXED;
  void* r = vmrt::sys::mmap(reinterpret_cast<void*>(a), n, prot, hf, fd, off);
  if (r == MAP_FAILED) return fail(out, errno);
  bool shared = (flags & kMapType) != MAP_PRIVATE;
  vm_map_delete(g_map, a, a + n);
  pmap_linux_host_adopt(a, a + n, static_cast<vm_prot_t>(prot & kProtRWX), shared);
  if (vm_map_insert(g_map, nullptr, (++g_shared_names) << kSharedNameShift, a, a + n, vm_prot_of(prot), VM_PROT_ALL,
                    MAP_ENTRY_HOSTMEM, shared ? VM_INHERIT_SHARE : VM_INHERIT_COPY) != KERN_SUCCESS) {
    remove_locked(a, a + n);  // cannot record it: it goes (the program sees ENOMEM)
    return fail(out, ENOMEM);
  }
  vm_stat_inc(V_PROG_MMAPS);
  return answer(out, static_cast<long>(a));
}

mm_route mm_mmap(void* addr, std::size_t len, int prot, int flags, int fd, off_t off, mm_answer* out) {
  if (g_map == nullptr) return mm_route::host;
  if ((flags & MAP_ANONYMOUS) == 0) {
    vsize_t fn = round_len(len);
    vaddr_t fa = va(addr);
    if ((flags & (MAP_FIXED | MAP_FIXED_NOREPLACE)) == 0 || len == 0 || fn == 0 || !aligned(fa) || !inside(fa, fn))
      return mm_route::host;
    return map_file_fixed(fa, fn, prot, flags, fd, off, out);
  }
  int type = flags & kMapType;
  if ((type != MAP_PRIVATE && type != MAP_SHARED) || (flags & ~kServedFlags) != 0 || (prot & ~kProtRWX) != 0)
    return mm_route::host;
  vsize_t n = round_len(len);
  if (len == 0 || n == 0 || (off & static_cast<off_t>(PAGE_MASK)) != 0) return mm_route::host;  // EINVAL / ENOMEM
  bool fixed = (flags & (MAP_FIXED | MAP_FIXED_NOREPLACE)) != 0;
  vaddr_t a = va(addr);
  if (fixed && (!aligned(a) || !inside(a, n))) return mm_route::host;  // EINVAL, or not the area's
  bool shared = type == MAP_SHARED;
  if (vm_fail_armed() && vm_fail_eval(FP_MMAP, n)) return fail(out, ENOMEM);
  vm_lock_guard g;
  if (fixed) {
    if ((flags & MAP_FIXED) == 0 && !vm_map_range_free(g_map, a, a + n)) return fail(out, EEXIST);  // FIXED_NOREPLACE
    vm_map_delete(g_map, a, a + n);  // MAP_FIXED replaces; host_map below replaces the host side
  } else {
    // A hint inside the area is taken when free (Linux takes a free hint); else first fit.
    vaddr_t h = a & ~static_cast<vaddr_t>(PAGE_MASK);
    if (!(h != 0 && inside(h, n) && vm_map_range_free(g_map, h, h + n)) &&
        vm_map_findspace(g_map, g_lo, n, PAGE_SIZE, &h) != KERN_SUCCESS) {
      rt_count(RC_MMAP_TO_HOST);
      return mm_route::host;  // no room in the area: the host's address space serves it
    }
    a = h;
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
  if (!aligned(a)) return fail(out, EINVAL);
  if ((prot & ~kProtRWX) != 0) return mm_route::host;  // PROT_SEM, PROT_GROWS*, unknown bits: the host's answer
  vsize_t n = round_len(len);
  if (len != 0 && n == 0) return fail(out, ENOMEM);
  if (n == 0) return answer(out, 0);
  if (!inside(a, n)) return mm_route::host;
  vm_lock_guard g;
  int err = 0;
  vm_prot_t vp = vm_prot_of(prot);
  // Piece by piece, the host first, then the map (what was changed before a hole or a
  // refusal stays changed, as in Linux).
  bool whole = walk(a, a + n, [&](vaddr_t s, vaddr_t e, vm_map_entry* ent) {
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
  // Pieces of one mapping with one protection again are one entry (Linux merges the VMAs).
  vm_map_entry* ent;
  if (!vm_map_lookup_entry(g_map, a, &ent)) ent = ent->next;
  while (!vm_map_is_end(g_map, ent) && ent->start <= a + n) {
    ent = vm_map_simplify_entry(g_map, ent);
    ent = ent->next;
  }
  vm_stat_inc(V_PROG_MPROTECTS);
  if (err != 0) return fail(out, err);
  return whole ? answer(out, 0) : fail(out, ENOMEM);
}

mm_route mm_madvise(void* addr, std::size_t len, int advice, mm_answer* out) {
  vaddr_t a = va(addr);
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
  walk_over_holes(a, a + n, &hole, [&](vaddr_t x, vaddr_t e) {
    if (vmrt::sys::madvise(reinterpret_cast<void*>(x), e - x, advice) == 0) return true;
    err = errno;
    return false;
  });
  vm_stat_inc(V_PROG_MADVISES);
  if (err != 0) return fail(out, err);
  return hole ? fail(out, ENOMEM) : answer(out, 0);
}

// Linux's order (mm/mremap.c): flags, alignment, lengths, a mapping at old_address (EFAULT);
// MREMAP_FIXED / MREMAP_DONTUNMAP move (mremap_to: a shrink first, then the old range must
// be one mapping); a shrink without moving may span several; growth needs one.
mm_route mm_mremap(void* old_addr, std::size_t old_len, std::size_t new_len, int flags, void* new_addr, mm_answer* out) {
  vaddr_t o = va(old_addr), na = va(new_addr);
  if (g_map == nullptr || !meets(o, old_len == 0 ? 1 : old_len)) return mm_route::host;
  constexpr int kKnown = MREMAP_MAYMOVE | MREMAP_FIXED | MREMAP_DONTUNMAP;
  constexpr vsize_t kTaskSize = vsize_t{1} << 47;
  if ((flags & ~kKnown) != 0) return fail(out, EINVAL);
  if ((flags & MREMAP_FIXED) != 0 && (flags & MREMAP_MAYMOVE) == 0) return fail(out, EINVAL);
  if ((flags & MREMAP_DONTUNMAP) != 0 && ((flags & MREMAP_MAYMOVE) == 0 || old_len != new_len)) return fail(out, EINVAL);
  if (!aligned(o)) return fail(out, EINVAL);
  vsize_t on = round_len(old_len), nn = round_len(new_len);
  if (new_len == 0 || nn == 0 || nn > kTaskSize || on > kTaskSize) return mm_route::host;  // the kernel's own answer, nothing moves
  if (old_len == 0) return mm_route::host;  // a second mapping of shared memory: the host's
  if (!inside(o, on)) return mm_route::host;
  bool fixed = (flags & MREMAP_FIXED) != 0, dontunmap = (flags & MREMAP_DONTUNMAP) != 0;
  vm_lock_guard g;
  vm_map_entry* first;
  if (!vm_map_lookup_entry(g_map, o, &first)) return fail(out, EFAULT);  // Linux looks up addr first
  if (fixed) {
    if (!aligned(na)) return fail(out, EINVAL);
    if (na < o + on && o < na + nn) return fail(out, EINVAL);  // overlap
  }
  if (fixed || dontunmap) {
    if (nn < on) {  // mremap_to shrinks first
      remove_locked(o + nn, o + on);
      on = nn;
    }
  } else if (nn <= on) {
    if (nn < on) {
      remove_locked(o + nn, o + on);
      vm_stat_inc(V_MREMAP_IN_PLACE);
    }
    return answer(out, static_cast<long>(o));
  }
  vm_map_entry* ent;
  if (!vm_map_lookup_entry(g_map, o, &ent) || ent->end < o + on) return fail(out, EFAULT);  // not one mapping
  bool shared = ent->inheritance == VM_INHERIT_SHARE;
  vm_prot_t prot = ent->protection;
  vm_ooffset_t ident = ent->offset + (o - ent->start);  // the mapping's name at o
  if (fixed && !inside(na, nn)) {
    // Out of the area (over the program's own host mappings): the host moves the pages,
    // and the area keeps no trace of them.
    void* r = vmrt::sys::mremap(old_addr, on, nn, flags, new_addr);
    if (r == MAP_FAILED) return fail(out, errno);
    if (!dontunmap) remove_locked(o, o + on);
    vm_stat_inc(V_MREMAP_MOVES);
    return answer(out, static_cast<long>(na));
  }
  auto move_to = [&](vaddr_t dst) -> mm_route {
    // The destination's old contents go (MREMAP_FIXED unmaps them, as Linux does).
    remove_locked(dst, dst + nn);
    if (insert_locked(dst, dst + nn, static_cast<int>(prot), shared, shared ? ident : dst) != KERN_SUCCESS)
      return fail(out, ENOMEM);
    int r = pmap_linux_host_move(o, on, dst, nn, dontunmap);
    if (r != 0) {
      vm_map_delete(g_map, dst, dst + nn);
      return fail(out, r);
    }
    if (!dontunmap) vm_map_delete(g_map, o, o + on);
    vm_stat_inc(V_MREMAP_MOVES);
    return answer(out, static_cast<long>(dst));
  };
  if (fixed) return move_to(na);
  vaddr_t dst;
  if (dontunmap) {
    if (vm_map_findspace(g_map, g_lo, nn, PAGE_SIZE, &dst) != KERN_SUCCESS) return fail(out, ENOMEM);
    return move_to(dst);
  }
  // Grow: in place when the area is free after it, else move (MREMAP_MAYMOVE) or ENOMEM.
  if (inside(o, nn) && vm_map_range_free(g_map, o + on, o + nn)) {
    vm_map_delete(g_map, o, o + on);  // one entry for the whole mapping again
    if (insert_locked(o, o + nn, static_cast<int>(prot), shared, ident) != KERN_SUCCESS) {
      (void)insert_locked(o, o + on, static_cast<int>(prot), shared, ident);
      return fail(out, ENOMEM);
    }
    int r = pmap_linux_host_grow(o, on, nn);
    if (r == 0) {
      vm_stat_inc(V_MREMAP_IN_PLACE);
      return answer(out, static_cast<long>(o));
    }
    vm_map_delete(g_map, o + on, o + nn);
    if ((flags & MREMAP_MAYMOVE) == 0) return fail(out, r);
  }
  if ((flags & MREMAP_MAYMOVE) == 0) return fail(out, ENOMEM);
  if (vm_map_findspace(g_map, g_lo, nn, PAGE_SIZE, &dst) != KERN_SUCCESS) return fail(out, ENOMEM);
  return move_to(dst);
}

mm_route mm_mincore(void* addr, std::size_t len, unsigned char* vec, mm_answer* out) {
  vaddr_t a = va(addr);
  if (g_map == nullptr || !meets(a, len)) return mm_route::host;
  if (!aligned(a)) return fail(out, EINVAL);
  vsize_t n = round_len(len);
  if (n == 0 || a + n < a) return fail(out, ENOMEM);
  if (!inside(a, n)) return mm_route::host;
  vm_lock_guard g;
  int err = 0;
  bool whole = walk(a, a + n, [&](vaddr_t s, vaddr_t e, vm_map_entry*) {
    if (vmrt::sys::mincore(reinterpret_cast<void*>(s), e - s, vec + ((s - a) >> PAGE_SHIFT)) != 0) {
      err = errno;
      return false;
    }
    return true;
  });
  if (err != 0) return fail(out, err);
  return whole ? answer(out, 0) : fail(out, ENOMEM);
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
  bool hole = false;
  int err = 0;
  walk_over_holes(a, a + n, &hole, [&](vaddr_t x, vaddr_t e) {
    if (vmrt::sys::msync(reinterpret_cast<void*>(x), e - x, flags) == 0 || errno == ENOMEM) return true;
    err = errno;
    return false;
  });
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
  vm_lock_guard g;
  int err = 0;
  bool whole = walk(a, a + n, [](vaddr_t, vaddr_t, vm_map_entry*) { return true; });
  if (!whole) return fail(out, ENOMEM);
  walk(a, a + n, [&](vaddr_t s, vaddr_t e, vm_map_entry*) {
    int r = lock ? vmrt::sys::mlock(reinterpret_cast<void*>(s), e - s) : vmrt::sys::munlock(reinterpret_cast<void*>(s), e - s);
    if (r != 0) {
      err = errno;
      return false;
    }
    return true;
  });
  return err != 0 ? fail(out, err) : answer(out, 0);
}

}  // namespace vmrt::rt
