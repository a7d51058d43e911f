// vmspace_revert.cpp — revert a vmspace to its image, switch a range between siblings
// (vmspace_revert.h).
#include "vm/vmspace_revert.h"

#include <cstring>

#include "vm/pmap.h"
#include "vm/vm_lock.h"
#include "vm/vm_map.h"
#include "vm/vm_object.h"
#include "vm/vm_page.h"
#include "vm/vm_radix.h"
#include "vmspace_impl.h"

namespace vmrt {

vmspace_revert_tunables g_revert_tunables;

namespace {

// Chains deeper than this are not walked: the entry is rebuilt instead.
constexpr unsigned kMaxChain = 16;

// Flags that do not make two entries different in shape.
constexpr std::uint16_t kShapeIgnored = MAP_ENTRY_NEEDS_COPY | MAP_ENTRY_NOCOALESCE;
constexpr std::uint16_t kUnsupported = MAP_ENTRY_IS_SUBMAP | MAP_ENTRY_HOSTMEM;

// One object of an entry's shadow chain and the index of the entry's first page in it.
struct chain_link {
  vm_object* o;
  vm_pindex_t p;
};

// e's chain, top first, into out[kMaxChain].  Returns the number of links (0: no object),
// or kMaxChain + 1 when deeper.
unsigned chain_of(const vm_map_entry* e, chain_link* out) VMRT_REQUIRES(g_vm_lock) {
  unsigned n = 0;
  vm_pindex_t p = atop(e->offset);
  for (vm_object* o = e->object; o != nullptr; o = o->backing_object) {
    if (n == kMaxChain) return kMaxChain + 1;
    out[n++] = {o, p};
    p += o->backing_offset;
  }
  return n;
}

// Remove pm's translations of o's resident pages in [p, p + npages), the entry's first
// page being at va.  Consecutive pages go in one pmap_remove.  Returns the pages seen.
//  => VM lock held.
std::uint64_t unmap_resident(pmap* pm, vm_object* o, vm_pindex_t p, vm_pindex_t npages, vaddr_t va)
    VMRT_REQUIRES(g_vm_lock) {
  std::uint64_t seen = 0;
  vaddr_t rs = 0, re = 0;  // the pending run
  for (vm_page* m = vm_radix_lookup_ge(&o->rtree, p); m != nullptr && m->pindex < p + npages;
       m = vm_radix_lookup_ge(&o->rtree, m->pindex + 1)) {
    vaddr_t a = va + ptoa(m->pindex - p);
    if (a != re) {
      if (re != rs) pmap_remove(pm, rs, re);
      rs = a;
    }
    re = a + PAGE_SIZE;
    ++seen;
  }
  if (re != rs) pmap_remove(pm, rs, re);
  return seen;
}

// Remove the translations of every page the links [0, k) hold for the entry at [va, va + len).
std::uint64_t unmap_private(pmap* pm, const chain_link* links, unsigned k, vaddr_t va, vsize_t len)
    VMRT_REQUIRES(g_vm_lock) {
  std::uint64_t n = 0;
  for (unsigned i = 0; i < k; ++i) n += unmap_resident(pm, links[i].o, links[i].p, atop(len), va);
  return n;
}

// The first link of a that b holds too (same object, same place): *i in a, *j in b.
bool common_link(const chain_link* a, unsigned na, const chain_link* b, unsigned nb, unsigned* i, unsigned* j) {
  if (na > kMaxChain || nb > kMaxChain) return false;
  for (unsigned x = 0; x < na; ++x)
    for (unsigned y = 0; y < nb; ++y)
      if (a[x].o == b[y].o && a[x].p == b[y].p) {
        *i = x;
        *j = y;
        return true;
      }
  return false;
}

// Do a (in one map) and b (in another, delta below) cover the same pages the same way?
bool same_shape(const vm_map_entry* a, const vm_map_entry* b, vaddr_t delta) VMRT_REQUIRES(g_vm_lock) {
  return a->start == b->start + delta && a->end == b->end + delta && a->protection == b->protection &&
         a->max_protection == b->max_protection && a->inheritance == b->inheritance &&
         (a->eflags & ~kShapeIgnored) == (b->eflags & ~kShapeIgnored) && a->wired_count == 0 &&
         b->wired_count == 0;
}

// The entry of m at addr with b's shape (delta: m's addresses minus b's), or null.
vm_map_entry* twin(vm_map* m, const vm_map_entry* b, vaddr_t delta) VMRT_REQUIRES(g_vm_lock) {
  vm_map_entry* a;
  if (!vm_map_lookup_entry(m, b->start + delta, &a)) return nullptr;
  return same_shape(a, b, delta) ? a : nullptr;
}

bool plain(vm_map* m) VMRT_REQUIRES(g_vm_lock) {
  for (vm_map_entry* e = vm_map_first(m); !vm_map_is_end(m, e); e = e->next)
    if (e->eflags & kUnsupported) return false;
  return true;
}

// Copy back: write into each resident page of priv (e's one private object, the entry's
// first page at index p0 there) what the image shows at that place (base at index b0, or
// zeros when base is null or holds nothing there), through the direct map.  The pages stay
// mapped as they are, writable, and the guest's next writes take no fault.  False, with
// some pages already copied (harmless: they hold the image's bytes), when a page cannot be
// served this way: busy, or the image's page is only on swap; the caller drops instead.
//  => VM lock held; priv has no pager copies (its pages are its only contents).
bool copy_back(vm_object* priv, vm_pindex_t p0, vm_pindex_t npages, vm_object* base, vm_pindex_t b0,
               std::uint64_t* copied) VMRT_REQUIRES(g_vm_lock) {
  const pmap_ops* ops = pmap_machine_ops();
  for (vm_page* m = vm_radix_lookup_ge(&priv->rtree, p0); m != nullptr && m->pindex < p0 + npages;
       m = vm_radix_lookup_ge(&priv->rtree, m->pindex + 1)) {
    if (m->flags & (PG_BUSY | PG_FICTITIOUS)) return false;
    vm_chain_hit hit{nullptr, 0, nullptr};
    vm_chain_state cs = base != nullptr ? vm_object_chain_find(base, b0 + (m->pindex - p0), &hit) : CHAIN_ABSENT;
    if (cs == CHAIN_STORED || (cs == CHAIN_RESIDENT && (hit.m->flags & PG_BUSY))) return false;
    void* dst = ops->page_address(m);
    if (cs == CHAIN_RESIDENT) std::memcpy(dst, ops->page_address(hit.m), PAGE_SIZE);
    else std::memset(dst, 0, PAGE_SIZE);
    m->flags = static_cast<std::uint16_t>((m->flags | PG_DIRTY) & ~(PG_ZERO | PG_SWAPCOPY));
    ++*copied;
  }
  return true;
}

// Revert e in place to show what s (same shape) shows.  A single private object in front
// of s's object with few pages gets the image's bytes copied back into its pages (no host
// call: removing a translation costs the host a TLB shootdown, tens of microseconds here
// when the process has other threads); otherwise the objects e's chain holds in front of
// s's object are dropped with the translations of their pages.  False when s's object is
// not in e's chain at the same place (e is rebuilt instead); nothing changed then.
//  => VM lock held.
bool revert_entry(vm_map* m, vm_map_entry* e, vm_map_entry* s, vmspace_revert_stats* st) VMRT_REQUIRES(g_vm_lock) {
  const bool cow = (s->eflags & MAP_ENTRY_COW) != 0 && s->object != nullptr;
  if (cow && (s->eflags & MAP_ENTRY_NEEDS_COPY) == 0) return false;  // the image writes its object itself
  if (e->object == s->object) {
    // Nothing written through e since (or memory both share): all translations are right.
    if (cow && (e->eflags & MAP_ENTRY_NEEDS_COPY) == 0) return false;
    ++st->entries_kept;
    return true;
  }
  chain_link links[kMaxChain];
  unsigned n = chain_of(e, links);
  if (n > kMaxChain) return false;
  unsigned k = n;  // links [0, k) are e's own
  if (s->object != nullptr) {
    for (k = 0; k < n && links[k].o != s->object; ++k) {
    }
    if (k == n || links[k].p != atop(s->offset)) return false;
  }
  const vm_pindex_t npages = atop(e->end - e->start);
  vm_object* priv = links[0].o;  // written only through e when nothing else holds it (no fork since)
  if (k == 1 && priv->type == OBJT_DEFAULT && priv->ref_count == 1 && priv->shadow_count == 0 &&
      priv->resident_page_count <= g_revert_tunables.copy_back_max &&
      copy_back(links[0].o, links[0].p, npages, s->object, atop(s->offset), &st->pages_copied)) {
    ++st->entries_kept;
    return true;
  }
  st->pages_unmapped += unmap_private(m->pm, links, k, e->start, e->end - e->start);
  vm_object* old = e->object;
  if (s->object != nullptr) vm_object_reference(s->object);  // before old's reference goes
  e->object = s->object;
  e->offset = s->object != nullptr ? s->offset : 0;
  e->eflags = static_cast<std::uint16_t>((e->eflags & ~MAP_ENTRY_NEEDS_COPY) | (s->eflags & MAP_ENTRY_NEEDS_COPY));
  e->next_pindex = 0;
  e->ra_pages = 0;
  if (old != nullptr) vm_object_deallocate(old);
  ++st->entries_kept;
  return true;
}

// Copy img's entry s into m at s + delta (a free range): the same object, copy-on-write
// for private memory, as vmspace_fork's VM_INHERIT_COPY does.
//  => VM lock held.  KERN_SUCCESS or the insert's status (nothing inserted then).
kern_return_t copy_entry(vm_map* m, vm_map* im, vm_map_entry* s, vaddr_t delta) VMRT_REQUIRES(g_vm_lock) {
  vm_object* obj = s->object;
  std::uint16_t fl = s->eflags;
  if (obj != nullptr) {
    if ((s->eflags & (MAP_ENTRY_COW | MAP_ENTRY_NEEDS_COPY)) == MAP_ENTRY_COW) {
      // The image still writes its object in place: it copies before its next write too.
      s->eflags |= MAP_ENTRY_NEEDS_COPY;
      if (im->pm != nullptr && (s->protection & VM_PROT_WRITE))
        pmap_protect(im->pm, s->start, s->end, static_cast<vm_prot_t>(s->protection & ~VM_PROT_WRITE));
    }
    fl = s->eflags;
    vm_object_reference(obj);
    obj->flags &= static_cast<std::uint16_t>(~OBJ_ONEMAPPING);
  }
  vm_map_entry* ne = nullptr;
  kern_return_t kr = vm_map_insert(m, obj, obj != nullptr ? s->offset : 0, s->start + delta, s->end + delta,
                                   s->protection, s->max_protection,
                                   static_cast<std::uint16_t>(fl | MAP_ENTRY_NOCOALESCE), s->inheritance, &ne);
  if (kr != KERN_SUCCESS) {
    if (obj != nullptr) vm_object_deallocate(obj);
    return kr;
  }
  ne->eflags = static_cast<std::uint16_t>((ne->eflags & ~MAP_ENTRY_NOCOALESCE) | (s->eflags & MAP_ENTRY_NOCOALESCE));
  ne->advice = s->advice;
  if (m->pm != nullptr) pmap_reserve(m->pm, ne->start, ne->end, ne->protection);
  return KERN_SUCCESS;
}

}  // namespace

kern_return_t vmspace_revert(vmspace* vs, vmspace* img, vmspace_revert_stats* st) {
  vmspace_revert_stats local{};
  if (st == nullptr) st = &local;
  *st = {};
  vm_lock_guard g;
  vm_map* m = &vs->map;
  vm_map* im = &img->map;
  if (m->max - m->min != im->max - im->min || vs == img) return KERN_INVALID_ARGUMENT;
  if (!plain(m) || !plain(im)) return KERN_NOT_SUPPORTED;
  const vaddr_t delta = m->min - im->min;  // modular
  // Every entry of vs either reverts in place or goes.  A kept entry has exactly one twin
  // in img, and img's entries do not overlap, so afterwards every img entry without a twin
  // finds its range free.
  for (vm_map_entry* e = vm_map_first(m); !vm_map_is_end(m, e);) {
    vm_map_entry* next = e->next;
    vm_map_entry* s;
    bool kept = vm_map_lookup_entry(im, e->start - delta, &s) && same_shape(e, s, delta) && revert_entry(m, e, s, st);
    if (!kept) {
      vm_map_delete(m, e->start, e->end);
      ++st->entries_rebuilt;
    }
    e = next;
  }
  kern_return_t kr = KERN_SUCCESS;
  for (vm_map_entry* s = vm_map_first(im); !vm_map_is_end(im, s) && kr == KERN_SUCCESS; s = s->next) {
    if (!vm_map_range_free(m, s->start + delta, s->end + delta)) continue;
    kr = copy_entry(m, im, s, delta);
    ++st->entries_rebuilt;
  }
  m->timestamp++;
  return kr;
}

kern_return_t vmspace_switch(vmspace* out, vmspace* in, vmspace_revert_stats* st) {
  vmspace_revert_stats local{};
  if (st == nullptr) st = &local;
  *st = {};
  vm_lock_guard g;
  vm_map* im = &in->map;
  if (out == nullptr) {  // nothing installed: in's reservations only
    if (im->pm == nullptr) return KERN_INVALID_ARGUMENT;
    if (!plain(im)) return KERN_NOT_SUPPORTED;
    for (vm_map_entry* f = vm_map_first(im); !vm_map_is_end(im, f); f = f->next) {
      pmap_reserve(im->pm, f->start, f->end, f->protection);
      ++st->entries_rebuilt;
    }
    return KERN_SUCCESS;
  }
  vm_map* om = &out->map;
  if (om->min != im->min || om->max != im->max || out == in || om->pm == nullptr) return KERN_INVALID_ARGUMENT;
  if (!plain(om) || !plain(im)) return KERN_NOT_SUPPORTED;
  pmap* pm = om->pm;
  chain_link a[kMaxChain], b[kMaxChain];
  for (vm_map_entry* e = vm_map_first(om); !vm_map_is_end(om, e); e = e->next) {
    vm_map_entry* f = twin(im, e, 0);
    if (f == nullptr) {  // in has something else here
      pmap_remove(pm, e->start, e->end);
      pmap_reserve(pm, e->start, e->end, VM_PROT_NONE);
      ++st->entries_rebuilt;
      continue;
    }
    ++st->entries_kept;
    if (e->object == f->object) continue;  // the same pages (memory both share)
    // The first object both chains hold at the same place: what is above it on either side
    // is private to that side.  out's private pages are mapped; in's private pages hide
    // common pages out may have mapped at the same addresses.
    unsigned na = chain_of(e, a), nb = chain_of(f, b), i = 0, j = 0;
    if (!common_link(a, na, b, nb, &i, &j)) {
      pmap_remove(pm, e->start, e->end);
      continue;
    }
    st->pages_unmapped += unmap_private(pm, a, i, e->start, e->end - e->start);
    st->pages_unmapped += unmap_private(pm, b, j, e->start, e->end - e->start);
  }
  for (vm_map_entry* f = vm_map_first(im); !vm_map_is_end(im, f); f = f->next)
    if (twin(om, f, 0) == nullptr) pmap_reserve(pm, f->start, f->end, f->protection);
  return KERN_SUCCESS;
}

}  // namespace vmrt
