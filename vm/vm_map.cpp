// vm_map.cpp — entries in a sorted list plus a gap-augmented AVL tree.
#include "vm/vm_map.h"

#include "vm/vm_lock.h"
#include "vm/vm_loan.h"
#include "vm/vm_object.h"
#include "vm/vm_out.h"
#include "vm/vm_page.h"
#include "vm/vm_radix.h"
#include "vm/vm_stats.h"
#include "vm/vm_zone.h"

namespace vmrt {
namespace {

vm_zone g_entry_zone = VM_ZONE_INIT("VM MAP ENTRY", sizeof(vm_map_entry), 0);
vm_zone g_map_zone = VM_ZONE_INIT("VM MAP", sizeof(vm_map), 0);
vm_map* g_all_maps VMRT_GUARDED_BY(g_vm_lock) = nullptr;

inline int h(const vm_map_entry* x) VMRT_REQUIRES(g_vm_lock) { return x != nullptr ? x->height : 0; }
inline vsize_t mf(const vm_map_entry* x) VMRT_REQUIRES(g_vm_lock) { return x != nullptr ? x->max_free : 0; }
inline vsize_t gap_before(const vm_map_entry* e) VMRT_REQUIRES(g_vm_lock) { return e->start - e->prev->end; }
template <class T>
inline T max2(T a, T b) { return a > b ? a : b; }

void update(vm_map_entry* x) VMRT_REQUIRES(g_vm_lock) {
  x->height = 1 + max2(h(x->left), h(x->right));
  x->max_free = max2(gap_before(x), max2(mf(x->left), mf(x->right)));
}

void replace_child(vm_map* map, vm_map_entry* p, vm_map_entry* old, vm_map_entry* nw) VMRT_REQUIRES(g_vm_lock) {
  if (p == nullptr) map->root = nw;
  else if (p->left == old) p->left = nw;
  else p->right = nw;
}

vm_map_entry* rotate_left(vm_map* map, vm_map_entry* x) VMRT_REQUIRES(g_vm_lock) {
  vm_map_entry* y = x->right;
  x->right = y->left;
  if (y->left != nullptr) y->left->parent = x;
  y->parent = x->parent;
  replace_child(map, x->parent, x, y);
  y->left = x;
  x->parent = y;
  update(x);
  update(y);
  return y;
}

vm_map_entry* rotate_right(vm_map* map, vm_map_entry* x) VMRT_REQUIRES(g_vm_lock) {
  vm_map_entry* y = x->left;
  x->left = y->right;
  if (y->right != nullptr) y->right->parent = x;
  y->parent = x->parent;
  replace_child(map, x->parent, x, y);
  y->right = x;
  x->parent = y;
  update(x);
  update(y);
  return y;
}

// Walk from x to the root, recomputing heights and gaps and rebalancing.
void fixup(vm_map* map, vm_map_entry* x) VMRT_REQUIRES(g_vm_lock) {
  while (x != nullptr) {
    update(x);
    int bf = h(x->left) - h(x->right);
    if (bf > 1) {
      if (h(x->left->left) < h(x->left->right)) rotate_left(map, x->left);
      x = rotate_right(map, x);
    } else if (bf < -1) {
      if (h(x->right->right) < h(x->right->left)) rotate_right(map, x->right);
      x = rotate_left(map, x);
    }
    x = x->parent;
  }
}

// Link e after prev in the list and into the tree.
void link_after(vm_map* map, vm_map_entry* prev, vm_map_entry* e) VMRT_REQUIRES(g_vm_lock) {
  e->prev = prev;
  e->next = prev->next;
  prev->next->prev = e;
  prev->next = e;
  e->left = e->right = e->parent = nullptr;
  e->height = 1;
  if (map->root == nullptr) {
    map->root = e;
  } else if (prev != &map->header && prev->right == nullptr) {
    prev->right = e;
    e->parent = prev;
  } else {
    vm_map_entry* n = e->next;
    VMRT_ASSERT(n != &map->header && n->left == nullptr);
    n->left = e;
    e->parent = n;
  }
  fixup(map, e);
  if (e->next != &map->header) fixup(map, e->next);
  map->nentries++;
  map->timestamp++;
  vm_stat_inc(V_MAP_ENTRIES);
}

void unlink(vm_map* map, vm_map_entry* e) VMRT_REQUIRES(g_vm_lock) {
  vm_map_entry* next = e->next;
  e->prev->next = e->next;
  e->next->prev = e->prev;
  if (e->left != nullptr && e->right != nullptr) {
    vm_map_entry* s = e->right;
    while (s->left != nullptr) s = s->left;
    vm_map_entry* fix_from;
    if (s->parent != e) {
      vm_map_entry* sp = s->parent;
      sp->left = s->right;
      if (s->right != nullptr) s->right->parent = sp;
      s->right = e->right;
      e->right->parent = s;
      fix_from = sp;
    } else {
      fix_from = s;
    }
    s->left = e->left;
    e->left->parent = s;
    s->parent = e->parent;
    replace_child(map, e->parent, e, s);
    s->height = e->height;
    fixup(map, fix_from);
  } else {
    vm_map_entry* c = e->left != nullptr ? e->left : e->right;
    vm_map_entry* p = e->parent;
    if (c != nullptr) c->parent = p;
    replace_child(map, p, e, c);
    fixup(map, p);
  }
  if (next != &map->header) fixup(map, next);
  if (map->hint == e) map->hint = &map->header;
  map->nentries--;
  map->timestamp++;
  vm_stat_add(V_MAP_ENTRIES, -1);
}

vm_map_entry* entry_alloc() { return vm_zone_new<vm_map_entry>(&g_entry_zone); }
void entry_free(vm_map_entry* e) { vm_zone_free(&g_entry_zone, e); }

bool mergeable(const vm_map_entry* a, const vm_map_entry* b) VMRT_REQUIRES(g_vm_lock) {
  if (a->end != b->start) return false;
  if (((a->eflags | b->eflags) & (MAP_ENTRY_IS_SUBMAP | MAP_ENTRY_NOCOALESCE)) != 0) return false;
  if (a->object != b->object) return false;
  // Host memory entries (no object) carry their identity in offset (rt_mmap): contiguous
  // offsets are one mapping's pieces.
  if ((a->object != nullptr || (a->eflags & MAP_ENTRY_HOSTMEM) != 0) && a->offset + (a->end - a->start) != b->offset)
    return false;
  return a->protection == b->protection && a->max_protection == b->max_protection &&
         a->inheritance == b->inheritance && a->advice == b->advice && a->eflags == b->eflags &&
         a->wired_count == b->wired_count;
}

// Leftmost entry with start > s whose gap_before >= len.
vm_map_entry* first_fit(vm_map_entry* x, vaddr_t s, vsize_t len) VMRT_REQUIRES(g_vm_lock) {
  if (x == nullptr || x->max_free < len) return nullptr;
  if (x->start > s) {
    vm_map_entry* r = first_fit(x->left, s, len);
    if (r != nullptr) return r;
    if (gap_before(x) >= len) return x;
  }
  return first_fit(x->right, s, len);
}

}  // namespace

void vm_map_init(vm_map* map, vaddr_t min, vaddr_t max, pmap* pm) {
  VM_LOCK_ASSERT();
  VMRT_ASSERT(page_aligned(min) && page_aligned(max) && min < max);
  map->header = vm_map_entry{};
  map->header.next = map->header.prev = &map->header;
  map->header.start = max;
  map->header.end = min;
  map->root = nullptr;
  map->min = min;
  map->max = max;
  map->nentries = 0;
  map->size = 0;
  map->hint = &map->header;
  map->pm = pm;
  map->timestamp = 0;
  map->all_prev = nullptr;
  map->all_next = g_all_maps;
  if (g_all_maps != nullptr) g_all_maps->all_prev = map;
  g_all_maps = map;
}

vm_map* vm_map_create(pmap* pm, vaddr_t min, vaddr_t max) {
  VM_LOCK_ASSERT();
  auto* map = vm_zone_new<vm_map>(&g_map_zone);
  if (map != nullptr) vm_map_init(map, min, max, pm);
  return map;
}

void vm_map_deinit(vm_map* map) {
  VM_LOCK_ASSERT();
  vm_map_delete(map, map->min, map->max);
  if (map->all_prev != nullptr) map->all_prev->all_next = map->all_next;
  else g_all_maps = map->all_next;
  if (map->all_next != nullptr) map->all_next->all_prev = map->all_prev;
  map->all_next = map->all_prev = nullptr;
}

void vm_map_free(vm_map* map) {
  vm_map_deinit(map);
  vm_zone_free(&g_map_zone, map);
}

vm_map* vm_map_first_map() { return g_all_maps; }

// Hot text: a fork child runs it too (mm_fork_child), and each text page it runs is a fault.
VMRT_FORK_CHILD_TEXT bool vm_map_lookup_entry(vm_map* map, vaddr_t addr, vm_map_entry** out) {
  vm_map_entry* hint = map->hint;
  if (hint != &map->header && hint->start <= addr && addr < hint->end) {
    *out = hint;
    return true;
  }
  vm_map_entry* best = &map->header;
  vm_map_entry* x = map->root;
  while (x != nullptr) {
    if (addr < x->start) {
      x = x->left;
    } else {
      best = x;
      if (addr < x->end) {
        map->hint = x;
        *out = x;
        return true;
      }
      x = x->right;
    }
  }
  *out = best;
  return false;
}

bool vm_map_range_free(vm_map* map, vaddr_t start, vaddr_t end) {
  vm_map_entry* e;
  if (vm_map_lookup_entry(map, start, &e)) return false;
  return e->next == &map->header || e->next->start >= end;
}

bool vm_map_range_covered(vm_map* map, vaddr_t start, vaddr_t end) {
  vm_map_entry* e;
  if (!vm_map_lookup_entry(map, start, &e)) return false;
  while (e->end < end) {
    vm_map_entry* n = e->next;
    if (n == &map->header || n->start != e->end) return false;
    e = n;
  }
  return true;
}

kern_return_t vm_map_insert(vm_map* map, vm_object* object, vm_ooffset_t offset, vaddr_t start, vaddr_t end,
                            vm_prot_t prot, vm_prot_t maxprot, std::uint16_t eflags, vm_inherit_t inherit,
                            vm_map_entry** out) {
  VM_LOCK_ASSERT();
  VMRT_ASSERT(page_aligned(start) && page_aligned(end) && page_aligned(offset));
  if (start < map->min || end > map->max || start >= end) return KERN_NO_SPACE;
  vm_map_entry* prev;
  if (vm_map_lookup_entry(map, start, &prev)) return KERN_NO_SPACE;
  if (prev->next != &map->header && prev->next->start < end) return KERN_NO_SPACE;
  // Extend the previous entry when it maps the same kind of memory right before us.
  if (prev != &map->header && prev->end == start && object == nullptr &&
      (prev->eflags & (MAP_ENTRY_IS_SUBMAP | MAP_ENTRY_NOCOALESCE | MAP_ENTRY_NEEDS_COPY)) == 0 &&
      prev->eflags == eflags && prev->protection == prot && prev->max_protection == maxprot &&
      prev->inheritance == inherit && prev->advice == VM_ADVICE_NORMAL && prev->wired_count == 0 &&
      ((eflags & MAP_ENTRY_HOSTMEM) == 0 || prev->offset + (prev->end - prev->start) == offset) &&
      (prev->object == nullptr ||
       vm_object_coalesce(prev->object, atop(prev->offset + (prev->end - prev->start)), atop(end - start)))) {
    prev->end = end;
    if (prev->next != &map->header) fixup(map, prev->next);
    map->size += end - start;
    map->timestamp++;
    vm_stat_inc(V_MAP_MERGES);
    vm_map_entry* r = vm_map_simplify_entry(map, prev);
    if (out != nullptr) *out = r;
    return KERN_SUCCESS;
  }
  vm_map_entry* e = entry_alloc();
  if (e == nullptr) return KERN_RESOURCE_SHORTAGE;
  e->start = start;
  e->end = end;
  e->object = object;
  e->offset = object != nullptr || (eflags & MAP_ENTRY_HOSTMEM) != 0 ? offset : 0;
  e->protection = prot;
  e->max_protection = maxprot;
  e->inheritance = inherit;
  e->advice = VM_ADVICE_NORMAL;
  e->eflags = eflags;
  e->wired_count = 0;
  link_after(map, prev, e);
  map->size += end - start;
  vm_map_entry* r = vm_map_simplify_entry(map, e);
  if (out != nullptr) *out = r;
  return KERN_SUCCESS;
}

kern_return_t vm_map_submap(vm_map* map, vaddr_t start, vaddr_t end, vm_map* submap) {
  VM_LOCK_ASSERT();
  if (!vm_map_range_free(map, start, end) || start < map->min || end > map->max) return KERN_NO_SPACE;
  vm_map_entry* prev;
  vm_map_lookup_entry(map, start, &prev);
  vm_map_entry* e = entry_alloc();
  if (e == nullptr) return KERN_RESOURCE_SHORTAGE;
  e->start = start;
  e->end = end;
  e->submap = submap;
  e->protection = VM_PROT_ALL;
  e->max_protection = VM_PROT_ALL;
  e->inheritance = VM_INHERIT_NONE;
  e->eflags = MAP_ENTRY_IS_SUBMAP | MAP_ENTRY_NOCOALESCE;
  link_after(map, prev, e);
  map->size += end - start;
  return KERN_SUCCESS;
}

kern_return_t vm_map_findspace(vm_map* map, vaddr_t hint, vsize_t len, vsize_t align, vaddr_t* out) {
  VM_LOCK_ASSERT();
  vm_stat_inc(V_MAP_FINDSPACE);
  if (align < PAGE_SIZE) align = PAGE_SIZE;
  VMRT_ASSERT((align & (align - 1)) == 0);
  if (len == 0 || len > map->max - map->min) return KERN_NO_SPACE;
  vaddr_t s = hint < map->min ? map->min : hint;
  for (int guard = 0; guard < 1 << 20; ++guard) {
    if (s >= map->max) return KERN_NO_SPACE;
    vm_map_entry* e;
    if (vm_map_lookup_entry(map, s, &e)) {
      s = e->end;
      continue;
    }
    // s lies in the gap [e->end, e->next->start).
    vaddr_t a = (s + align - 1) & ~(align - 1);
    vaddr_t gap_end = e->next == &map->header ? map->max : e->next->start;
    if (a >= s && a <= gap_end && gap_end - a >= len) {
      *out = a;
      return KERN_SUCCESS;
    }
    vm_map_entry* n = first_fit(map->root, s, len);
    if (n == nullptr) {
      // Only the tail gap can still fit.
      vm_map_entry* last = map->header.prev;
      vaddr_t from = last == &map->header ? map->min : last->end;
      if (from < s) from = s;
      a = (from + align - 1) & ~(align - 1);
      if (a >= from && a <= map->max && map->max - a >= len) {
        *out = a;
        return KERN_SUCCESS;
      }
      return KERN_NO_SPACE;
    }
    vaddr_t from = n->prev == &map->header ? map->min : n->prev->end;
    if (from < s) from = s;  // the gap holding the hint only counts from the hint up
    a = (from + align - 1) & ~(align - 1);
    if (a >= from && a <= n->start && n->start - a >= len) {
      *out = a;
      return KERN_SUCCESS;
    }
    s = n->start;  // alignment did not fit: continue past this gap
  }
  return KERN_NO_SPACE;
}

void vm_map_clip_start(vm_map* map, vm_map_entry* e, vaddr_t addr) {
  VM_LOCK_ASSERT();
  if (addr <= e->start || addr >= e->end) return;
  vm_map_entry* n = entry_alloc();
  VMRT_ASSERT(n != nullptr);  // TODO: reserve entries ahead of clips
  *n = *e;
  n->end = addr;
  e->offset += addr - e->start;  // (host memory entries: their identity, see mergeable)
  if (e->object != nullptr) vm_object_reference(e->object);
  e->start = addr;
  link_after(map, e->prev, n);
  vm_stat_inc(V_MAP_CLIPS);
}

void vm_map_clip_end(vm_map* map, vm_map_entry* e, vaddr_t addr) {
  VM_LOCK_ASSERT();
  if (addr <= e->start || addr >= e->end) return;
  vm_map_entry* n = entry_alloc();
  VMRT_ASSERT(n != nullptr);
  *n = *e;
  n->start = addr;
  n->offset += addr - e->start;
  if (e->object != nullptr) vm_object_reference(e->object);
  e->end = addr;
  link_after(map, e, n);
  vm_stat_inc(V_MAP_CLIPS);
}

vm_map_entry* vm_map_simplify_entry(vm_map* map, vm_map_entry* e) {
  VM_LOCK_ASSERT();
  vm_map_entry* p = e->prev;
  if (p != &map->header && mergeable(p, e)) {
    e->start = p->start;
    e->offset = p->offset;
    unlink(map, p);  // fixes e's gap
    if (p->object != nullptr) vm_object_deallocate(p->object);
    entry_free(p);
    vm_stat_inc(V_MAP_MERGES);
  }
  vm_map_entry* n = e->next;
  if (n != &map->header && mergeable(e, n)) {
    n->start = e->start;
    n->offset = e->offset;
    unlink(map, e);
    if (e->object != nullptr) vm_object_deallocate(e->object);
    entry_free(e);
    vm_stat_inc(V_MAP_MERGES);
    e = n;
  }
  return e;
}

namespace {

}  // namespace

void vm_map_entry_unwire(vm_map_entry* e) {
  if (e->object == nullptr || (e->eflags & MAP_ENTRY_LOCKED_LAZY) != 0) return;  // lazy: nothing wired
  vm_pindex_t first = atop(e->offset);
  vm_pindex_t n = atop(e->end - e->start);
  for (vm_pindex_t k = 0; k < n; ++k) {
    vm_page* m = vm_object_chain_lookup(e->object, first + k, nullptr);
    if (m != nullptr && m->wire_count > 0) vm_page_unwire(m);
  }
}

namespace {

void entry_delete(vm_map* map, vm_map_entry* e) VMRT_REQUIRES(g_vm_lock) {
  vsize_t len = e->end - e->start;
  if ((e->eflags & MAP_ENTRY_IS_SUBMAP) == 0) {
    if (e->object != nullptr && map->pm != nullptr) pmap_remove(map->pm, e->start, e->end);
    if (e->wired_count != 0) vm_map_entry_unwire(e);
    vm_object* obj = e->object;
    if (obj != nullptr) {
      vm_pindex_t s = atop(e->offset);
      vm_pindex_t t = s + atop(len);
      if ((obj->flags & OBJ_ANON) && obj->shadow_count == 0 &&
          (obj->ref_count == 1 || (obj->flags & OBJ_ONEMAPPING))) {
        // Nobody else can see these pages: free them now, and shrink a tail.
        vm_object_page_remove(obj, s, t, false);
        if (t >= obj->size && s < obj->size) obj->size = s;
      }
      vm_object_deallocate(obj);
    }
  }
  unlink(map, e);
  map->size -= len;
  entry_free(e);
}

}  // namespace

void vm_map_delete(vm_map* map, vaddr_t start, vaddr_t end) {
  VM_LOCK_ASSERT();
  if (start < map->min) start = map->min;
  if (end > map->max) end = map->max;
  if (start >= end) return;
  vm_map_entry* e;
  if (vm_map_lookup_entry(map, start, &e)) vm_map_clip_start(map, e, start);
  else e = e->next;
  while (e != &map->header && e->start < end) {
    vm_map_clip_end(map, e, end);
    vm_map_entry* next = e->next;
    if (e->eflags & kMapEntryLoanFlags) vm_loan_unmapped(map, e);  // before its pages can go
    entry_delete(map, e);
    e = next;
  }
  if (map->pm != nullptr) pmap_reserve(map->pm, start, end, VM_PROT_NONE);
}

kern_return_t vm_map_transfer(vm_map* from, vaddr_t src, vm_map* to, vaddr_t dst, vsize_t len) {
  VM_LOCK_ASSERT();
  VMRT_ASSERT(vm_map_range_covered(from, src, src + len) && vm_map_range_free(to, dst, dst + len));
  for (vaddr_t x = src; x < src + len;) {
    vm_map_entry* e;
    VMRT_ASSERT(vm_map_lookup_entry(from, x, &e) && (e->eflags & MAP_ENTRY_IS_SUBMAP) == 0);
    vaddr_t y = e->end < src + len ? e->end : src + len;
    vm_object* obj = e->object;
    vm_ooffset_t off = obj != nullptr ? e->offset + (x - e->start) : 0;
    if (obj != nullptr) {
      vm_object_reference(obj);
      // Two entries see it until the old one goes: its pages must not go with that one.
      obj->flags &= static_cast<std::uint16_t>(~OBJ_ONEMAPPING);
    }
    // A loan names its ranges by address: the moved piece is nobody's loan (the old
    // range's loans end when it is deleted below).
    auto fl = static_cast<std::uint16_t>(e->eflags & ~kMapEntryLoanFlags);
    kern_return_t kr = vm_map_insert(to, obj, off, dst + (x - src), dst + (y - src), e->protection, e->max_protection,
                                     fl, e->inheritance);
    if (kr != KERN_SUCCESS) {
      if (obj != nullptr) vm_object_deallocate(obj);
      vm_map_delete(to, dst, dst + (x - src));  // the pieces moved so far go back to nothing
      return kr;
    }
    vm_map_entry* moved;
    if (vm_map_lookup_entry(to, dst + (x - src), &moved)) moved->advice = e->advice;
    if (to->pm != nullptr) pmap_reserve(to->pm, dst + (x - src), dst + (y - src), e->protection);
    vm_stat_inc(V_TRANSFER_ENTRIES);
    x = y;
  }
  vm_map_delete(from, src, src + len);
  return KERN_SUCCESS;
}

kern_return_t vm_map_move(vm_map* map, vaddr_t src, vaddr_t dst, vsize_t len) {
  return vm_map_transfer(map, src, map, dst, len);
}

unsigned vm_map_entry_resident(vm_map_entry* e, unsigned* private_resident) {
  // O(resident pages x chain depth): walk each object's pages inside the entry's window
  // and count those no object above it shadows.
  unsigned res = 0, pres = 0;
  if (e->object != nullptr && (e->eflags & MAP_ENTRY_IS_SUBMAP) == 0) {
    vm_pindex_t lo = atop(e->offset);
    vm_pindex_t n = atop(e->end - e->start);
    vm_pindex_t shift = 0;  // pindex in o = pindex in first + shift
    for (vm_object* o = e->object; o != nullptr; shift += o->backing_offset, o = o->backing_object) {
      vm_pindex_t key = lo + shift;
      for (;;) {
        vm_page* m = vm_radix_lookup_ge(&o->rtree, key);
        if (m == nullptr || m->pindex >= lo + shift + n) break;
        key = m->pindex + 1;
        vm_pindex_t p = m->pindex - shift;  // pindex in the first object
        bool shadowed = false;
        vm_pindex_t q = p;
        for (vm_object* u = e->object; u != o && !shadowed; q += u->backing_offset, u = u->backing_object)
          shadowed = vm_radix_lookup(&u->rtree, q) != nullptr;
        if (shadowed) continue;
        ++res;
        if (o == e->object && o->ref_count == 1) ++pres;
      }
    }
  }
  if (private_resident != nullptr) *private_resident = pres;
  return res;
}

namespace {

struct check_ctx {
  vm_out* o;
  const char* failure = nullptr;
  const vm_map_entry* at = nullptr;
};

// Returns the subtree's height, or -1 on violation (ctx.failure set).
int check_tree(check_ctx& c, const vm_map* map, const vm_map_entry* x, const vm_map_entry* parent,
               const vm_map_entry** inorder_cursor, std::uint32_t* count) VMRT_REQUIRES(g_vm_lock) {
  if (x == nullptr) return 0;
  if (x->parent != parent) {
    c.failure = "tree parent pointer is wrong";
    c.at = x;
    return -1;
  }
  int hl = check_tree(c, map, x->left, x, inorder_cursor, count);
  if (hl < 0) return -1;
  // In-order position must match the list.
  const vm_map_entry* expect = (*inorder_cursor)->next;
  if (expect != x) {
    c.failure = "tree in-order does not match the list";
    c.at = x;
    return -1;
  }
  *inorder_cursor = x;
  ++*count;
  int hr = check_tree(c, map, x->right, x, inorder_cursor, count);
  if (hr < 0) return -1;
  int ht = 1 + (hl > hr ? hl : hr);
  if (x->height != ht) {
    c.failure = "AVL height field is wrong";
    c.at = x;
    return -1;
  }
  if (hl - hr > 1 || hr - hl > 1) {
    c.failure = "AVL tree out of balance";
    c.at = x;
    return -1;
  }
  vsize_t g = x->start - x->prev->end;
  vsize_t want = max2(g, max2(mf(x->left), mf(x->right)));
  if (x->max_free != want) {
    c.failure = "max_free gap augmentation is wrong";
    c.at = x;
    return -1;
  }
  return ht;
}

}  // namespace

bool vm_map_check(vm_map* map, int fd) {
  VM_LOCK_ASSERT();
  vm_fd_out<> o(fd);
  check_ctx c{&o};
  auto fail = [&](const char* what, const vm_map_entry* e) VMRT_REQUIRES(g_vm_lock) {
    o.str("vm_map_check: map ").hex(reinterpret_cast<std::uintptr_t>(map)).str(": ").str(what);
    if (e != nullptr && e != &map->header) o.str(" at entry [").hex(e->start).str(", ").hex(e->end).str(")");
    o.ch('\n');
    return false;
  };
  if (map->header.start != map->max || map->header.end != map->min) return fail("header sentinel corrupted", nullptr);
  std::uint32_t n = 0;
  vsize_t size = 0;
  vaddr_t last_end = map->min;
  for (vm_map_entry* e = map->header.next; e != &map->header; e = e->next) {
    if (++n > map->nentries + 1) return fail("list longer than nentries (cycle?)", e);
    if (e->next->prev != e) return fail("list back pointer is wrong", e);
    if (!page_aligned(e->start) || !page_aligned(e->end)) return fail("entry not page aligned", e);
    if (e->start >= e->end) return fail("empty or inverted entry", e);
    if (e->start < map->min || e->end > map->max) return fail("entry outside map bounds", e);
    if (e->start < last_end) return fail("entries overlap or are unsorted", e);
    last_end = e->end;
    size += e->end - e->start;
    if ((e->protection & ~e->max_protection) != 0) return fail("protection exceeds max_protection", e);
    if (e->eflags & MAP_ENTRY_IS_SUBMAP) {
      if (e->submap == nullptr || e->object != nullptr) return fail("submap entry without submap", e);
      continue;
    }
    if (e->object == nullptr) {
      if (e->eflags & MAP_ENTRY_NEEDS_COPY) return fail("needs-copy entry without object", e);
      continue;
    }
    vm_object* obj = e->object;
    if (!page_aligned(e->offset)) return fail("object offset not page aligned", e);
    if (atop(e->offset) + atop(e->end - e->start) > obj->size) return fail("entry maps beyond its object's size", e);
    if (obj->ref_count < 1 || (obj->flags & OBJ_DEAD)) return fail("entry maps a dead object", e);
    for (vm_object* x = obj; x != nullptr; x = x->backing_object) {
      if (!vm_object_check(x, fd)) return fail("object invariant violated (see above)", e);
      if (x->backing_object != nullptr && x->backing_object->ref_count < x->backing_object->shadow_count)
        return fail("backing object ref_count below its shadow_count", e);
      if (vm_object_chain_depth(obj) > 10000) return fail("shadow chain too deep", e);
    }
  }
  if (n != map->nentries) return fail("nentries does not match the list", nullptr);
  // Every object is referenced at least by this map's entries that map it plus its shadows.
  for (vm_map_entry* e = map->header.next; e != &map->header; e = e->next)
    if (e->object != nullptr && !(e->eflags & MAP_ENTRY_IS_SUBMAP)) e->object->check_refs = 0;
  for (vm_map_entry* e = map->header.next; e != &map->header; e = e->next)
    if (e->object != nullptr && !(e->eflags & MAP_ENTRY_IS_SUBMAP)) e->object->check_refs++;
  for (vm_map_entry* e = map->header.next; e != &map->header; e = e->next)
    if (e->object != nullptr && !(e->eflags & MAP_ENTRY_IS_SUBMAP) &&
        e->object->ref_count < e->object->check_refs + e->object->shadow_count)
      return fail("object ref_count below its entries + shadows", e);
  if (size != map->size) return fail("size does not match the entries", nullptr);
  const vm_map_entry* cursor = &map->header;
  std::uint32_t tn = 0;
  if (map->root != nullptr && map->root->parent != nullptr) return fail("tree root has a parent", map->root);
  if (check_tree(c, map, map->root, nullptr, &cursor, &tn) < 0) return fail(c.failure, c.at);
  if (tn != n) return fail("tree has a different number of entries than the list", nullptr);
  if (map->hint != &map->header) {
    bool found = false;
    for (vm_map_entry* e = map->header.next; e != &map->header; e = e->next) found |= e == map->hint;
    if (!found) return fail("hint points to an entry not in the map", nullptr);
  }
  return true;
}

}  // namespace vmrt
