// rt_mremap.cpp — the program's mremap over the mmap area (rt_mmap.h; Linux's mm/mremap.c).
//
// Pageable memory moves with its objects (no copy, no page-in); host memory moves with the
// host's own mremap, asked with the area's holes made real for the call, so that its answer
// is Linux's, and the map then follows what the host did.
#include <cerrno>
#include <cstring>
#include <sys/mman.h>

#include "runtime/pmap_linux.h"
#include "runtime/region.h"
#include "runtime/rt_mmap.h"
#include "runtime/rt_mmap_area.h"
#include "runtime/rt_stats.h"
#include "vm/pmap.h"
#include "vm/vm_assert.h"
#include "vm/vm_fault.h"
#include "vm/vm_lock.h"
#include "vm/vm_map.h"
#include "vm/vm_object.h"
#include "vm/vm_stats.h"
#include "vm/vm_sys.h"
#include "vm/vm_tables.h"
#include "vm/vnode_pager.h"

#ifndef MREMAP_DONTUNMAP
#define MREMAP_DONTUNMAP 4
#endif

namespace vmrt::rt {

using namespace mma;

// A piece of a moved range: its offset in the range and its entry's attributes.
struct move_piece {
  vsize_t off, len;
  vm_prot_t prot;
  vm_inherit_t inh;
  vm_ooffset_t ident;
  bool shared;
  vm_object* obj;  // a file mapping's vnode object (not referenced: the old entries hold it until the move)
};
constexpr unsigned kMaxMovePieces = 256;
VMRT_LARGE_BSS static move_piece g_pieces[kMaxMovePieces] VMRT_GUARDED_BY(g_vm_lock);

// The host moves [o, o + on) to [dst, dst + nn) (MREMAP_FIXED in hflags; dst inside the
// area) with the area's holes in the old range made real holes for the call, so the host
// answers exactly as Linux (6.x moves several mappings and holes at once when the length
// does not change, refuses a resize that spans mappings, unmaps the destination first);
// then the map follows what the host did: the destination holds the moved pieces (a
// growth's tail continues the last one), the old range what the host left there.
//  => VM lock held; [o, o + on) inside the area and starting in an entry.
static mm_route host_move_in_area(vaddr_t o, vsize_t on, vaddr_t dst, vsize_t nn, int hflags, mm_answer* out)
    VMRT_REQUIRES(g_vm_lock) {
  bool dontunmap = (hflags & MREMAP_DONTUNMAP) != 0;
  unsigned np = 0;
  vsize_t moved = nn < on ? nn : on;
  {
    vaddr_t x = o;
    while (x < o + moved) {
      vm_map_entry* ent;
      if (!vm_map_lookup_entry(g_map, x, &ent)) {
        vm_map_entry* nx = ent->next;
        x = vm_map_is_end(g_map, nx) || nx->start > o + moved ? o + moved : nx->start;
        continue;
      }
      vaddr_t y = ent->end < o + moved ? ent->end : o + moved;
      bool shared = ent->inheritance == VM_INHERIT_SHARE || (ent->inheritance == VM_INHERIT_NONE && pmap_linux_host_shared(x));
      move_piece pc{x - o, y - x, ent->protection, ent->inheritance, ent->offset + (x - ent->start), shared, ent->object};
      if (np > 0 && g_pieces[np - 1].off + g_pieces[np - 1].len == pc.off && g_pieces[np - 1].prot == pc.prot &&
          g_pieces[np - 1].inh == pc.inh && g_pieces[np - 1].shared == pc.shared && g_pieces[np - 1].obj == pc.obj &&
          (pc.obj == nullptr || g_pieces[np - 1].ident + g_pieces[np - 1].len == pc.ident)) {
        g_pieces[np - 1].len += pc.len;
      } else if (np < kMaxMovePieces) {
        g_pieces[np++] = pc;
      } else {
        g_pieces[np - 1].len = pc.off + pc.len - g_pieces[np - 1].off;  // out of room: the last piece's attributes
      }
      x = y;
    }
  }
  remove_paged_locked(dst, dst + nn);  // the host unmaps the destination first, too
  for_each_hole(o, o + on, [](vaddr_t x, vaddr_t y) { (void)pmap_linux_host_punch(x, y); });
  void* r = vmrt::sys::mremap(reinterpret_cast<void*>(o), on, nn, hflags, reinterpret_cast<void*>(dst));
  int err = errno;
  for_each_hole(o, o + on, [](vaddr_t x, vaddr_t y) { pmap_linux_host_unpunch(x, y); });
  if (r == MAP_FAILED) {
    resync_unmapped(o, o + on);      // a resize may have shrunk the old range first
    resync_unmapped(dst, dst + nn);  // the destination may be gone
    return fail(out, err);
  }
  // The destination: the pieces arrive (what was under them is gone); what lay under the
  // old range's holes stays unless the host unmapped it (a resize unmaps the whole
  // destination; a move of several mappings replaces only where each one lands).
  if (np > 0 && nn > on) g_pieces[np - 1].len += nn - on;  // growth continues the last piece
  // The old range's entries hold the file mappings' objects until they go below.
  for (unsigned k = 0; k < np; ++k) {
    const move_piece& pc = g_pieces[k];
    vaddr_t s = dst + pc.off, e = s + pc.len;
    vm_map_delete(g_map, s, e);
    pmap_linux_host_adopt(s, e, pc.prot, pc.shared);
    vm_ooffset_t ident = pc.shared || pc.obj != nullptr ? pc.ident : s;
    if (insert_locked(s, e, static_cast<int>(pc.prot), pc.inh, ident, pc.obj) != KERN_SUCCESS) {
      remove_locked(s, e);  // cannot record it: it goes
    }
  }
  resync_unmapped(dst, dst + nn);
  // The old range: unmapped by the host (or kept, MREMAP_DONTUNMAP).
  if (!dontunmap) {
    vm_map_delete(g_map, o, o + on);
    pmap_machine_ops()->host_unmap(g_map->pm, o, o + on);
  } else {
    resync_unmapped(o, o + on);
  }
  vm_stat_inc(V_MREMAP_MOVES);
  return answer(out, static_cast<long>(dst));
}

// The program's mremap that the host performs, with a destination inside the area
// (MREMAP_FIXED from outside it, or a second mapping of shared memory, old length 0).  The
// destination's holes are made real for the call; afterwards every page of it the host
// maps and the map does not hold is adopted (what arrived), every page the host does not
// map leaves the map and is reserved again (what the host unmapped, and the holes a move
// of several mappings brings along).  => VM lock held.
static mm_route host_mremap_into_area(void* old_addr, std::size_t old_len, std::size_t new_len, int flags, vaddr_t na,
                                      vsize_t nn, mm_answer* out) VMRT_REQUIRES(g_vm_lock) {
  if ((flags & MREMAP_FIXED) != 0) {
    // The host checks the source before it unmaps the destination: no mapping at old_addr
    // (mincore: ENOMEM) leaves the destination's pageable memory alone.
    unsigned char probe;
    if (vmrt::sys::mincore(reinterpret_cast<void*>(reinterpret_cast<vaddr_t>(old_addr) & ~static_cast<vaddr_t>(PAGE_MASK)),
                           PAGE_SIZE, &probe) != 0 && errno == ENOMEM)
      return fail(out, EFAULT);
    remove_paged_locked(na, na + nn);
  }
  for_each_hole(na, na + nn, [](vaddr_t x, vaddr_t y) { (void)pmap_linux_host_punch(x, y); });
  void* r = vmrt::sys::mremap(old_addr, old_len, new_len, flags, reinterpret_cast<void*>(na));
  int err = errno;
  unsigned char v;
  vaddr_t run = 0;
  int run_kind = 0;  // 0 none, 1 to adopt, 2 to remove
  for (vaddr_t x = na; x <= na + nn; x += PAGE_SIZE) {
    int kind = 0;
    if (x < na + nn) {
      vm_map_entry* ent;
      bool mapped = vmrt::sys::mincore(reinterpret_cast<void*>(x), PAGE_SIZE, &v) == 0;
      kind = !mapped ? 2 : !vm_map_lookup_entry(g_map, x, &ent) ? 1 : 0;
    }
    if (kind == run_kind) continue;
    if (run_kind == 2) remove_locked(run, x);
    if (run_kind == 1) {
      pmap_linux_host_adopt(run, x, VM_PROT_ALL, false);
      if (vm_map_insert(g_map, nullptr, new_identity(0, true), run, x, VM_PROT_ALL, VM_PROT_ALL,
                        MAP_ENTRY_HOSTMEM, VM_INHERIT_COPY) != KERN_SUCCESS)
        remove_locked(run, x);
    }
    run = x;
    run_kind = kind;
  }
  if (r == MAP_FAILED) return fail(out, err);
  vm_stat_inc(V_MREMAP_MOVES);
  return answer(out, static_cast<long>(na));
}

// Does [o, o + on) start in pageable memory?  Is it one pageable mapping as Linux would
// see it (entries of one protection and inheritance without a gap: Linux merges such
// VMAs)?  => VM lock held.
static bool starts_paged(vaddr_t o) VMRT_REQUIRES(g_vm_lock) {
  vm_map_entry* ent;
  return vm_map_lookup_entry(g_map, o, &ent) && vm_backed(ent);
}
static bool one_paged_mapping(vaddr_t o, vsize_t on) VMRT_REQUIRES(g_vm_lock) {
  vm_map_entry* first;
  if (!vm_map_lookup_entry(g_map, o, &first)) return false;
  bool one = true;
  bool whole = walk(o, o + on, [&](vaddr_t, vaddr_t, vm_map_entry* ent) VMRT_REQUIRES(g_vm_lock) {
    one = vm_backed(ent) && ent->protection == first->protection && ent->inheritance == first->inheritance;
    return one;
  });
  return whole && one;
}

// Move pageable memory [o, o + on) to [dst, dst + nn) (inside the area; what was there
// goes).  The objects go along: the pages, resident or in swap, stay where they are and
// only their addresses change (Mach's objects do not know where they are mapped), so a
// move costs no copy and no page-in.  A growth's tail is new zero-fill memory; with
// MREMAP_DONTUNMAP the old range stays mapped and reads zeros, as Linux leaves a private
// anonymous range.  => VM lock held; [o, o + on) covered by pageable entries.
// What MREMAP_DONTUNMAP leaves at the old range: each mapping as it was, emptied (Linux keeps
// the old VMAs): anonymous memory reads zeros, a private file mapping the file's pages again.
// How a moved range is locked (mlock): its pages wired, locked lazily (flagged, nothing
// populated: MAP_ENTRY_LOCKED_LAZY), or not.  The destination gets the same after the move.
enum class move_lock { none, lazy, wired };
static move_lock move_lock_of(vaddr_t s, vaddr_t e) VMRT_REQUIRES(g_vm_lock) {
  move_lock l = move_lock::none;
  walk(s, e, [&](vaddr_t, vaddr_t, vm_map_entry* ent) VMRT_REQUIRES(g_vm_lock) {
    if (ent->wired_count != 0) l = (ent->eflags & MAP_ENTRY_LOCKED_LAZY) != 0 ? move_lock::lazy : move_lock::wired;
    return l != move_lock::wired;
  });
  return l;
}
static void move_lock_apply(vaddr_t s, vaddr_t e, move_lock l) VMRT_REQUIRES(g_vm_lock) {
  if (l == move_lock::wired) (void)vm_map_wire_locked(g_map, s, e);  // mlocked memory stays locked
  else if (l == move_lock::lazy) vm_map_lock_lazy_locked(g_map, s, e);
}

struct old_piece {
  vaddr_t s, e;
  vm_prot_t prot;
  vm_inherit_t inh;
  vm_object* file;  // the vnode object of a private file mapping (held by the moved entries), else null
  vm_ooffset_t off;
};
VMRT_LARGE_BSS static old_piece g_old[kMaxMovePieces] VMRT_GUARDED_BY(g_vm_lock);

static mm_route paged_move(vaddr_t o, vsize_t on, vaddr_t dst, vsize_t nn, bool dontunmap, mm_answer* out)
    VMRT_REQUIRES(g_vm_lock) {
  remove_locked(dst, dst + nn);
  if (nn < on) {  // what does not move goes first, while its pages are this range's alone
    remove_locked(o + nn, o + on);
    on = nn;
  }
  vm_map_entry* last;
  VMRT_ASSERT(vm_map_lookup_entry(g_map, o + on - PAGE_SIZE, &last));
  vm_prot_t last_prot = last->protection;
  vm_inherit_t last_inh = last->inheritance;
  const move_lock locked = move_lock_of(o, o + on);
  unsigned nold = 0;
  if (dontunmap)
    walk(o, o + on, [&](vaddr_t s, vaddr_t e, vm_map_entry* ent) VMRT_REQUIRES(g_vm_lock) {
      if (nold == kMaxMovePieces) return false;  // the rest: anonymous, as the last piece
      old_piece& p = g_old[nold++];
      p = {s, e, ent->protection, ent->inheritance, nullptr, 0};
      if (!file_position(ent, s, &p.file, &p.off)) p.file = nullptr;
      return true;
    });
  if (nn > on && insert_tail_locked(last, o + on, dst + on, dst + nn) != KERN_SUCCESS) return fail(out, ENOMEM);
  if (noted(vm_map_move(g_map, o, dst, on)) != KERN_SUCCESS) {
    delete_locked(dst + on, dst + nn);
    return fail(out, ENOMEM);
  }
  if (dontunmap) {
    vaddr_t done = o;
    for (unsigned k = 0; k < nold; ++k) {
      const old_piece& p = g_old[k];
      if (p.file != nullptr) (void)insert_paged_file_locked(p.s, p.e, p.prot, p.inh, p.file, p.off);
      else (void)insert_paged_locked(p.s, p.e, p.prot, p.inh);
      done = p.e;
    }
    if (done < o + on) (void)insert_paged_locked(done, o + on, last_prot, last_inh);
  }
  move_lock_apply(dst, dst + nn, locked);
  vm_stat_inc(V_MREMAP_MOVES);
  rt_count(RC_MREMAP_PAGED_MOVES);
  return answer(out, static_cast<long>(dst));
}

// Pageable private memory moved to a fixed address outside vmrt's area (over the program's
// own host mappings: a low mmap hint, a mapping the host made): its frames cannot be mapped
// there, so the destination becomes host memory holding the same bytes.  Each page resident
// in the VM is copied, a page in swap is read back and copied; a page never touched stays
// untouched at the destination (zeros, not resident, as the moved page would be), or holds
// the file's page for a private file mapping, as does a growth of one (of anonymous memory:
// zeros).  The old range goes (MREMAP_DONTUNMAP: stays, emptied); a locked range is locked
// there.  What differs from Linux, which moves the pages themselves: a private file page
// there is a copy (a later change to the file does not show through it: POSIX leaves that
// unspecified), and a page past the file's end reads zeros instead of raising SIGBUS.  (The
// paged differential's last differences, 2026-12-04: vmrt refused every such move, ENOMEM.)
//  => VM lock held (dropped while a page is read back from swap); [o, o + on) one pageable
//     mapping; [dst, dst + nn) outside the area, not overlapping it.
static mm_route paged_move_out(vaddr_t o, vsize_t on, vaddr_t dst, vsize_t nn, bool dontunmap, mm_answer* out)
    VMRT_REQUIRES(g_vm_lock) {
  // Never over vmrt's own memory (its region: the heap, kmem; its table arena): the copy is
  // written with the VM lock held.
  if ((dst < region_base() + region_size() && dst + nn > region_base()) ||
      sys::table_in_arena(reinterpret_cast<const void*>(dst), nn))
    return fail(out, ENOMEM);
  vm_map_entry* ent;
  // The page of va in the VM: resident (returned), in swap (*paged), or neither (a file's
  // page is read from the file below, without a fault: the mapping may be PROT_NONE).
  auto page_of = [](vaddr_t va, bool* paged) VMRT_REQUIRES(g_vm_lock) -> vm_page* {
    *paged = false;
    vm_map_entry* e;
    if (!vm_map_lookup_entry(g_map, va, &e) || e->object == nullptr) return nullptr;
    vm_pindex_t pi = atop(e->offset + (va - e->start));
    if (vm_page* m = vm_object_chain_lookup(e->object, pi, nullptr)) return m;
    for (vm_object* q = e->object; q != nullptr && q->type != OBJT_VNODE; pi += q->backing_offset, q = q->backing_object)
      if (vm_pager_has_page(q, pi)) {
        *paged = true;
        break;
      }
    return nullptr;
  };
  // Pages in swap come back first, while the source is mapped (the fault may drop the lock).
  for (vaddr_t va = o; va < o + on; va += PAGE_SIZE) {
    bool paged = false;
    if (page_of(va, &paged) != nullptr || !paged) continue;
    vm_fault_result r{};
    if (vm_fault_locked(g_map, va, VM_FAULT_READ, VM_FAULT_POPULATE, va + PAGE_SIZE, &r) != KERN_SUCCESS)
      return fail(out, ENOMEM);
  }
  if (!one_paged_mapping(o, on)) return fail(out, EFAULT);  // changed while a page was read
  VMRT_ASSERT(vm_map_lookup_entry(g_map, o, &ent));
  const vm_prot_t prot = ent->protection;
  const vm_inherit_t inh = ent->inheritance;
  const bool locked = ent->wired_count != 0;
  void* d = vmrt::sys::mmap(reinterpret_cast<void*>(dst), nn, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
  if (d == MAP_FAILED) return fail(out, ENOMEM);
  rt_count(RC_HOST_MMAP);
  const pmap_ops* ops = pmap_machine_ops();
  const vsize_t n = nn < on ? nn : on;
  for (vaddr_t va = o; va < o + n; va += PAGE_SIZE) {
    void* to = reinterpret_cast<void*>(dst + (va - o));
    bool paged = false;
    if (vm_page* m = page_of(va, &paged)) {
      std::memcpy(to, ops->page_address(m), PAGE_SIZE);
      continue;
    }
    vm_map_entry* e;
    vm_object* f;
    vm_ooffset_t off;
    if (vm_map_lookup_entry(g_map, va, &e) && file_position(e, va, &f, &off)) (void)vnode_object_read_page(f, atop(off), to);
  }
  // A private file mapping's growth: the file's next pages.
  vm_map_entry* last;
  vm_object* f;
  vm_ooffset_t off;
  if (nn > on && vm_map_lookup_entry(g_map, o + on - PAGE_SIZE, &last) && file_position(last, o + on, &f, &off))
    for (vaddr_t k = on; k < nn; k += PAGE_SIZE)
      (void)vnode_object_read_page(f, atop(off + (k - on)), reinterpret_cast<void*>(dst + k));
  (void)vmrt::sys::mprotect(reinterpret_cast<void*>(dst), nn, static_cast<int>(prot));
  if (locked) (void)vmrt::sys::mlock(reinterpret_cast<void*>(dst), nn);
  remove_locked(o, o + on);
  if (dontunmap) (void)insert_paged_locked(o, o + on, prot, inh);
  vm_stat_inc(V_MREMAP_MOVES);
  rt_count(RC_MREMAP_PAGED_MOVES);
  return answer(out, static_cast<long>(dst));
}

// MREMAP_FIXED of pageable memory spanning several mappings, or holes, at the same length
// (Linux 6.17+ moves them together): each piece goes to its place in [dst, dst + on) over
// what was there, and the destination under a hole keeps what it had (scenario
// mmap_linux_rules, case 2).  False when a piece is not pageable or there are too many
// (the caller says EFAULT, as an older kernel).  => VM lock held; [o, o + on) starts in an
// entry and does not overlap the destination.
static bool paged_move_pieces(vaddr_t o, vsize_t on, vaddr_t dst, mm_answer* out) VMRT_REQUIRES(g_vm_lock) {
  unsigned n = 0;
  bool ok = true;
  for (vaddr_t x = o; x < o + on;) {
    vm_map_entry* ent;
    if (!vm_map_lookup_entry(g_map, x, &ent)) {  // a hole: up to the next entry
      vm_map_entry* nx = ent->next;
      x = vm_map_is_end(g_map, nx) || nx->start > o + on ? o + on : nx->start;
      continue;
    }
    vaddr_t e = ent->end < o + on ? ent->end : o + on;
    if (!vm_backed(ent) || n == kMaxMovePieces) {
      ok = false;
      break;
    }
    g_old[n++] = {x, e, ent->protection, ent->inheritance, nullptr, 0};
    x = e;
  }
  if (!ok) return false;
  for (unsigned k = 0; k < n; ++k) {
    const vaddr_t s = g_old[k].s, e = g_old[k].e, d = dst + (s - o);
    const move_lock locked = move_lock_of(s, e);
    remove_locked(d, d + (e - s));
    if (noted(vm_map_move(g_map, s, d, e - s)) != KERN_SUCCESS) {
      (void)fail(out, ENOMEM);
      return true;  // answered (what moved before stays moved, as a partial move on Linux)
    }
    move_lock_apply(d, d + (e - s), locked);
  }
  vm_stat_inc(V_MREMAP_MOVES);
  rt_count(RC_MREMAP_PAGED_MOVES);
  (void)answer(out, static_cast<long>(dst));
  return true;
}

// Linux's order (mm/mremap.c): flags, alignment, lengths, MREMAP_FIXED's destination
// (alignment, range, overlap), a mapping at old_address (EFAULT).  A shrink in place may
// span several mappings and holes; a growth or an unfixed MREMAP_DONTUNMAP needs the old
// range inside one mapping (the host's VMAs decide: host_one_vma); a move to a fixed
// address is the host's own (host_move_in_area).
mm_route mm_mremap(void* old_addr, std::size_t old_len, std::size_t new_len, int flags, void* new_addr, mm_answer* out) {
  vaddr_t o = va(old_addr), na = va(new_addr);
  if (g_map == nullptr) return mm_route::host;
  bool fixed = (flags & MREMAP_FIXED) != 0, dontunmap = (flags & MREMAP_DONTUNMAP) != 0;
  bool src_in = meets(o, old_len == 0 ? 1 : old_len);
  bool dst_in = fixed && meets(na, new_len == 0 ? 1 : new_len);
  if (!src_in && !dst_in) return mm_route::host;
  constexpr int kKnown = MREMAP_MAYMOVE | MREMAP_FIXED | MREMAP_DONTUNMAP;
  constexpr vsize_t kTaskSize = (vsize_t{1} << 47) - PAGE_SIZE;
  if ((flags & ~kKnown) != 0) return fail(out, EINVAL);
  if (fixed && (flags & MREMAP_MAYMOVE) == 0) return fail(out, EINVAL);
  if (dontunmap && ((flags & MREMAP_MAYMOVE) == 0 || old_len != new_len)) return fail(out, EINVAL);
  if (!aligned(o)) return fail(out, EINVAL);
  vsize_t on = round_len(old_len), nn = round_len(new_len);
  if (new_len == 0 || nn == 0 || nn > kTaskSize || on > kTaskSize) return mm_route::host;  // the kernel's own answer, nothing moves
  if (fixed || dontunmap) {  // new_address: MREMAP_FIXED's target, MREMAP_DONTUNMAP's hint
    if (!aligned(na) || na > kTaskSize - nn) return fail(out, EINVAL);
    if (na < o + on && o < na + nn) return fail(out, EINVAL);  // overlap
  }
  if (dst_in && !inside(na, nn)) return mm_route::host;  // straddles the area's edge: rare, the host's
  if (!src_in || old_len == 0) {
    if (src_in) {
      // A second mapping of the same memory (old length 0) is for shared mappings only
      // (and the host must never map the frames of pageable memory twice).
      vm_lock_guard g;
      if (starts_paged(o)) return fail(out, EINVAL);
    }
    if (!dst_in) return mm_route::host;
    vm_lock_guard g;
    return host_mremap_into_area(old_addr, old_len, new_len, flags, na, nn, out);
  }
  if (!inside(o, on)) return mm_route::host;
  vm_lock_guard g;
  vm_map_entry* first;
  if (!vm_map_lookup_entry(g_map, o, &first)) return fail(out, EFAULT);  // no mapping at old_address
  bool paged = starts_paged(o);
  if (fixed && !dst_in) {
    // Pageable memory leaving the area: copied into host memory there (paged_move_out).
    if (paged) return one_paged_mapping(o, on) ? paged_move_out(o, on, na, nn, dontunmap, out) : fail(out, EFAULT);
    // Out of the area (over the program's own host mappings): the host moves the pages
    // (the old range's holes made real for the call); the area keeps what the host left.
    for_each_hole(o, o + on, [](vaddr_t x, vaddr_t y) { (void)pmap_linux_host_punch(x, y); });
    void* r = vmrt::sys::mremap(old_addr, on, nn, flags, new_addr);
    int err = errno;
    for_each_hole(o, o + on, [](vaddr_t x, vaddr_t y) { pmap_linux_host_unpunch(x, y); });
    resync_unmapped(o, o + on);
    if (r == MAP_FAILED) return fail(out, err);
    vm_stat_inc(V_MREMAP_MOVES);
    return answer(out, static_cast<long>(na));
  }
  if (fixed) {
    if (paged) {
      if (one_paged_mapping(o, on)) return paged_move(o, on, na, nn, dontunmap, out);
      if (!dontunmap && nn == on && paged_move_pieces(o, on, na, out)) return mm_route::handled;
      return fail(out, EFAULT);
    }
    return host_move_in_area(o, on, na, nn, flags, out);
  }
  if (!dontunmap && nn <= on) {  // shrink (or the same length) in place: holes allowed
    if (nn < on) {
      remove_locked(o + nn, o + on);
      vm_stat_inc(V_MREMAP_IN_PLACE);
    }
    return answer(out, static_cast<long>(o));
  }
  // A growth, or an unfixed MREMAP_DONTUNMAP: the old range must be one mapping.
  if (paged ? !one_paged_mapping(o, on) : !vm_map_range_covered(g_map, o, o + on) || !host_one_vma(o, on))
    return fail(out, EFAULT);
  vaddr_t dst;
  if (dontunmap) {
    // new_address is a hint, taken when free (as Linux's get_unmapped_area takes one).
    dst = na;
    if (!(na != 0 && inside(na, nn) && vm_map_range_free(g_map, na, na + nn)) && !findspace_topdown(nn, &dst))
      return fail(out, ENOMEM);
    if (paged) return paged_move(o, on, dst, nn, true, out);
    return host_move_in_area(o, on, dst, nn, flags | MREMAP_FIXED, out);
  }
  // Grow: in place when the area is free after it, else move (MREMAP_MAYMOVE) or ENOMEM.
  if (inside(o, nn) && vm_map_range_free(g_map, o + on, o + nn)) {
    vm_map_entry* last;
    VMRT_ASSERT(vm_map_lookup_entry(g_map, o + on - PAGE_SIZE, &last));
    vm_inherit_t inh = last->inheritance;
    vm_ooffset_t ident = last->offset + (o + on - last->start);
    if (paged) {
      if (insert_tail_locked(last, o + on, o + on, o + nn) != KERN_SUCCESS) return fail(out, ENOMEM);
      vm_stat_inc(V_MREMAP_IN_PLACE);
      return answer(out, static_cast<long>(o));
    }
    if (insert_locked(o + on, o + nn, static_cast<int>(last->protection), inh, ident, last->object) != KERN_SUCCESS)
      return fail(out, ENOMEM);
    int r = pmap_linux_host_grow(o, on, nn);
    if (r == 0) {
      vm_stat_inc(V_MREMAP_IN_PLACE);
      return answer(out, static_cast<long>(o));
    }
    vm_map_delete(g_map, o + on, o + nn);
    if ((flags & MREMAP_MAYMOVE) == 0) return fail(out, r);
  }
  if ((flags & MREMAP_MAYMOVE) == 0) return fail(out, ENOMEM);
  if (!findspace_topdown(nn, &dst)) return fail(out, ENOMEM);
  if (paged) return paged_move(o, on, dst, nn, false, out);
  return host_move_in_area(o, on, dst, nn, flags | MREMAP_FIXED, out);
}

}  // namespace vmrt::rt
