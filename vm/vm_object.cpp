// vm_object.cpp — objects, shadow chains, collapse and bypass.
#include "vm/vm_object.h"

#include "vm/pmap.h"
#include "vm/vm_lock.h"
#include "vm/vm_out.h"
#include "vm/vm_page.h"
#include "vm/vm_pager.h"
#include "vm/vm_pdpolicy.h"
#include "vm/vm_stats.h"
#include "vm/vm_zone.h"

namespace vmrt {

vm_object_tunables g_vm_object_tunables;

namespace {

vm_zone g_object_zone = VM_ZONE_INIT("VM OBJECT", sizeof(vm_object), 0);
vm_object* g_all_objects VMRT_GUARDED_BY(g_vm_lock) = nullptr;
std::uint64_t g_next_id VMRT_GUARDED_BY(g_vm_lock) = 1;

void shadow_link(vm_object* backing, vm_object* shadow) VMRT_REQUIRES(g_vm_lock) {
  shadow->shadow_prev = nullptr;
  shadow->shadow_next = backing->shadow_head;
  if (backing->shadow_head != nullptr) backing->shadow_head->shadow_prev = shadow;
  backing->shadow_head = shadow;
  backing->shadow_count++;
}

void shadow_unlink(vm_object* backing, vm_object* shadow) VMRT_REQUIRES(g_vm_lock) {
  if (shadow->shadow_prev != nullptr) shadow->shadow_prev->shadow_next = shadow->shadow_next;
  else backing->shadow_head = shadow->shadow_next;
  if (shadow->shadow_next != nullptr) shadow->shadow_next->shadow_prev = shadow->shadow_prev;
  shadow->shadow_next = shadow->shadow_prev = nullptr;
  backing->shadow_count--;
  VMRT_ASSERT(backing->shadow_count >= 0);
}

void object_free(vm_object* obj) VMRT_REQUIRES(g_vm_lock) {
  VMRT_ASSERT(obj->resident_page_count == 0 && obj->shadow_count == 0);
  vm_radix_reclaim_all(&obj->rtree);
  if (obj->all_prev != nullptr) obj->all_prev->all_next = obj->all_next;
  else g_all_objects = obj->all_next;
  if (obj->all_next != nullptr) obj->all_next->all_prev = obj->all_prev;
  obj->type = OBJT_DEAD;
  obj->flags = OBJ_DEAD;
  vm_stat_add(V_OBJ_CURRENT, -1);
  vm_zone_free(&g_object_zone, obj);
}

// Free every page of obj (no mapping can remain: nobody references obj).
void object_terminate_pages(vm_object* obj) VMRT_REQUIRES(g_vm_lock) {
  for (;;) {
    vm_page* m = vm_radix_lookup_ge(&obj->rtree, 0);
    if (m == nullptr) break;
    VMRT_ASSERT((m->flags & PG_BUSY) == 0);  // pager I/O holds a reference on the object
    vm_page_free(m);
  }
  vm_page_free_flush();
}

// Move obj's backing object's pages up into obj and drop it.  => b->ref_count == 1.
void collapse_into(vm_object* obj, vm_object* b) VMRT_REQUIRES(g_vm_lock) {
  vm_pindex_t off = obj->backing_offset;
  vm_pindex_t key = 0;
  for (;;) {
    vm_page* m = vm_radix_lookup_ge(&b->rtree, key);
    if (m == nullptr) break;
    key = m->pindex + 1;
    vm_pindex_t p = m->pindex;
    if (p < off || p - off >= obj->size || vm_radix_lookup(&obj->rtree, p - off) != nullptr ||
        vm_pager_has_page(obj, p - off)) {
      vm_page_unmap_all(m);  // shadowed or outside obj's window: nobody may see it again
      vm_page_free(m);
      continue;
    }
    if (vm_page_rename(m, obj, p - off) != KERN_SUCCESS) {
      vm_page_unmap_all(m);  // out of radix nodes: the page is lost, nobody can see it anyway?
      VMRT_PANIC("radix node shortage during collapse");
    }
    vm_stat_inc(V_COLLAPSE_PAGES);
  }
  vm_page_free_flush();
  // b's stored copies move up where obj shows nothing (resident or stored) of its own.
  if (b->type != OBJT_DEFAULT) vm_pager_of(b)->collapse(obj, b, off);
  vm_object* bb = b->backing_object;
  shadow_unlink(b, obj);
  if (bb != nullptr) {
    shadow_unlink(bb, b);
    shadow_link(bb, obj);  // b's reference on bb becomes obj's
  }
  obj->backing_object = bb;
  obj->backing_offset = bb != nullptr ? off + b->backing_offset : 0;
  vm_pager_of(b)->dealloc(b);
  b->ref_count = 0;
  b->backing_object = nullptr;
  object_free(b);
  vm_stat_inc(V_COLLAPSES);
}

// Does obj show something of its own (resident or stored) at pindex?
bool shows(vm_object* obj, vm_pindex_t pindex) VMRT_REQUIRES(g_vm_lock) {
  return vm_radix_lookup(&obj->rtree, pindex) != nullptr || vm_pager_has_page(obj, pindex);
}

// Can obj skip b?  Every b page inside obj's window, resident or stored, must be shadowed
// by obj.
bool can_bypass(vm_object* obj, vm_object* b) VMRT_REQUIRES(g_vm_lock) {
  vm_pindex_t off = obj->backing_offset;
  vm_pindex_t key = off;
  for (;;) {
    vm_page* m = vm_radix_lookup_ge(&b->rtree, key);
    if (m == nullptr || m->pindex - off >= obj->size) break;
    if (!shows(obj, m->pindex - off)) return false;
    key = m->pindex + 1;
  }
  if (b->type == OBJT_DEFAULT) return true;
  vm_pindex_t p;
  key = off;
  while (vm_radix_next_key(&b->pager_meta, key, &p) && p - off < obj->size) {
    if (!shows(obj, p - off)) return false;
    key = p + 1;
  }
  return true;
}

}  // namespace

vm_object* vm_object_allocate(vm_object_type type, vm_pindex_t size) {
  VM_LOCK_ASSERT();
  VMRT_ASSERT(type < OBJT_DEAD);
  auto* obj = vm_zone_new<vm_object>(&g_object_zone);
  if (obj == nullptr) return nullptr;
  obj->size = size;
  obj->ref_count = 1;
  obj->type = type;
  obj->flags = (type == OBJT_DEFAULT || type == OBJT_SWAP) ? OBJ_ANON : 0;
  obj->id = g_next_id++;
  obj->all_prev = nullptr;
  obj->all_next = g_all_objects;
  if (g_all_objects != nullptr) g_all_objects->all_prev = obj;
  g_all_objects = obj;
  vm_stat_inc(V_OBJ_ALLOC);
  vm_stat_inc(V_OBJ_CURRENT);
  return obj;
}

void vm_object_reference(vm_object* obj) {
  VM_LOCK_ASSERT();
  VMRT_ASSERT(obj->ref_count > 0);
  obj->ref_count++;
}

void vm_object_deallocate(vm_object* obj) {
  VM_LOCK_ASSERT();
  while (obj != nullptr) {
    VMRT_ASSERT(obj->ref_count > 0 && (obj->flags & OBJ_DEAD) == 0);
    if (obj->ref_count > 1) {
      obj->ref_count--;
      // The one remaining reference is a single shadow's: fold this object into it.
      if (obj->ref_count == 1 && obj->shadow_count == 1 && (obj->flags & OBJ_ANON) &&
          g_vm_object_tunables.collapse_on_deallocate) {
        vm_object* s = obj->shadow_head;
        if ((s->flags & (OBJ_ANON | OBJ_COLLAPSING)) == OBJ_ANON) vm_object_collapse(s);
      }
      return;
    }
    // Last reference: terminate.
    VMRT_ASSERT(obj->shadow_count == 0);
    vm_object* b = obj->backing_object;
    object_terminate_pages(obj);
    vm_pager_of(obj)->dealloc(obj);
    if (b != nullptr) shadow_unlink(b, obj);
    obj->backing_object = nullptr;
    obj->ref_count = 0;
    object_free(obj);
    obj = b;  // drop the reference obj held on its backing object
  }
}

kern_return_t vm_object_shadow(vm_object** objp, vm_ooffset_t* offset, vsize_t length) {
  VM_LOCK_ASSERT();
  vm_object* src = *objp;
  vm_object* s = vm_object_allocate(OBJT_DEFAULT, atop(round_page(length)));
  if (s == nullptr) return KERN_RESOURCE_SHORTAGE;
  if (src != nullptr) {
    s->backing_object = src;
    s->backing_offset = atop(*offset);
    shadow_link(src, s);
  }
  *objp = s;
  *offset = 0;
  vm_stat_inc(V_OBJ_SHADOWS);
  return KERN_SUCCESS;
}

void vm_object_collapse(vm_object* obj) {
  VM_LOCK_ASSERT();
  if (obj->flags & OBJ_COLLAPSING) return;
  obj->flags |= OBJ_COLLAPSING;
  for (;;) {
    vm_object* b = obj->backing_object;
    if (b == nullptr || (obj->flags & OBJ_ANON) == 0 || (b->flags & OBJ_ANON) == 0 || (b->flags & OBJ_DEAD)) break;
    if (b->ref_count == 1) {
      VMRT_ASSERT(b->shadow_count == 1 && b->shadow_head == obj);
      collapse_into(obj, b);
      continue;
    }
    if (!can_bypass(obj, b)) break;
    vm_object* bb = b->backing_object;
    shadow_unlink(b, obj);
    if (bb != nullptr) {
      vm_object_reference(bb);
      shadow_link(bb, obj);
    }
    obj->backing_offset = bb != nullptr ? obj->backing_offset + b->backing_offset : 0;
    obj->backing_object = bb;
    vm_stat_inc(V_BYPASSES);
    vm_object_deallocate(b);  // may recurse into collapse of another shadow: guarded by OBJ_COLLAPSING
  }
  obj->flags &= static_cast<std::uint16_t>(~OBJ_COLLAPSING);
}

void vm_object_page_remove(vm_object* obj, vm_pindex_t start, vm_pindex_t end, bool unmap) {
  VM_LOCK_ASSERT();
  vm_pindex_t key = start;
  for (;;) {
    vm_page* m = vm_radix_lookup_ge(&obj->rtree, key);
    if (m == nullptr || m->pindex >= end) break;
    key = m->pindex + 1;
    if (unmap) vm_page_unmap_all(m);
    if (m->flags & PG_BUSY) {
      m->flags |= PG_RELEASED;  // its pager I/O is in flight: the I/O's owner frees it
      continue;
    }
    vm_page_free(m);
  }
  vm_page_free_flush();
  vm_pager_free_range(obj, start, end);
}

std::uint64_t vm_object_madvise_free(vm_object* obj, vm_pindex_t start, vm_pindex_t end) {
  VM_LOCK_ASSERT();
  std::uint64_t marked = 0;
  vm_pindex_t from = start;  // swap copies of [from, ...) not yet freed
  for (vm_page* m = vm_radix_lookup_ge(&obj->rtree, start); m != nullptr && m->pindex < end;
       m = vm_radix_lookup_ge(&obj->rtree, m->pindex + 1)) {
    // A page in pager I/O keeps its copy (the write in flight owns the slot); a wired or
    // loaned one is in use by definition.
    if ((m->flags & (PG_BUSY | PG_LOANED | PG_FICTITIOUS)) != 0 || m->wire_count != 0) {
      vm_pager_free_range(obj, from, m->pindex);
      from = m->pindex + 1;
      continue;
    }
    m->flags = static_cast<std::uint16_t>((m->flags & ~(PG_SWAPCOPY | PG_SWAPKEPT)) | PG_DIRTY | PG_FREEABLE);
    vm_pdpolicy_deactivate(m);
    ++marked;
  }
  vm_pager_free_range(obj, from, end);
  return marked;
}

vm_chain_state vm_object_chain_find(vm_object* obj, vm_pindex_t pindex, vm_chain_hit* hit) {
  while (obj != nullptr) {
    vm_page* m = vm_radix_lookup(&obj->rtree, pindex);
    if (m != nullptr || vm_pager_has_page(obj, pindex)) {
      hit->owner = obj;
      hit->pindex = pindex;
      hit->m = m;
      return m != nullptr ? CHAIN_RESIDENT : CHAIN_STORED;
    }
    pindex += obj->backing_offset;
    obj = obj->backing_object;
  }
  return CHAIN_ABSENT;
}

vm_page* vm_object_chain_lookup(vm_object* obj, vm_pindex_t pindex, vm_object** owner) {
  vm_chain_hit hit;
  if (vm_object_chain_find(obj, pindex, &hit) != CHAIN_RESIDENT) return nullptr;
  if (owner != nullptr) *owner = hit.owner;
  return hit.m;
}

unsigned vm_object_chain_depth(const vm_object* obj) {
  unsigned d = 0;
  for (; obj != nullptr && d < 100000; obj = obj->backing_object) ++d;
  return d;
}

bool vm_object_coalesce(vm_object* obj, vm_pindex_t end_used, vm_pindex_t extra) {
  VM_LOCK_ASSERT();
  if (obj == nullptr || obj->type != OBJT_DEFAULT || obj->ref_count != 1 || obj->shadow_count != 0 ||
      obj->backing_object != nullptr || end_used != obj->size)
    return false;
  obj->size += extra;
  return true;
}

vm_object* vm_object_first() { return g_all_objects; }

bool vm_object_check(const vm_object* obj, int fd) {
  vm_fd_out<> o(fd);
  auto bad = [&](const char* what) {
    o.str("vm_object_check: object ").u(obj->id).str(": ").str(what).ch('\n');
    return false;
  };
  if (obj->flags & OBJ_DEAD) return bad("dead object still referenced");
  if (obj->ref_count < 1) return bad("ref_count < 1");
  if (obj->ref_count < obj->shadow_count) return bad("ref_count < shadow_count");
  std::uint64_t n = 0;
  vm_pindex_t key = 0;
  for (;;) {
    vm_page* m = vm_radix_lookup_ge(&obj->rtree, key);
    if (m == nullptr) break;
    if (m->object != obj) return bad("page's object pointer is wrong");
    if (m->pindex < key) return bad("page's pindex does not match its radix key");
    if (vm_radix_lookup(&obj->rtree, m->pindex) != m) return bad("page's pindex does not match its radix key");
    if (m->queue == PQ_FREE) return bad("free page in object");
    if (m->pindex >= obj->size) return bad("resident page beyond object size");
    if ((m->flags & PG_FREEABLE) != 0 &&
        ((obj->flags & OBJ_ANON) == 0 || m->wire_count != 0 || (m->flags & (PG_SWAPCOPY | PG_SWAPKEPT)) != 0))
      return bad("lazily freed page that is wired, not anonymous, or has a swap copy");
    ++n;
    key = m->pindex + 1;
    if (key == 0) break;
  }
  if (n != obj->resident_page_count) return bad("resident_page_count does not match the radix tree");
  int shadows = 0;
  for (const vm_object* s = obj->shadow_head; s != nullptr; s = s->shadow_next) {
    if (s->backing_object != obj) return bad("shadow list holds an object that does not shadow us");
    if (++shadows > obj->shadow_count) break;
  }
  if (shadows != obj->shadow_count) return bad("shadow_count does not match the shadow list");
  // Acyclic chain (Floyd).
  const vm_object* slow = obj;
  const vm_object* fast = obj;
  while (fast != nullptr && fast->backing_object != nullptr) {
    slow = slow->backing_object;
    fast = fast->backing_object->backing_object;
    if (slow == fast) return bad("shadow chain has a cycle");
  }
  if (obj->backing_object != nullptr) {
    bool found = false;
    for (const vm_object* s = obj->backing_object->shadow_head; s != nullptr; s = s->shadow_next)
      if (s == obj) found = true;
    if (!found) return bad("not on its backing object's shadow list");
  }
  return true;
}

}  // namespace vmrt
