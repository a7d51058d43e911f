// vm_radix.cpp — fixed-fanout radix trie of pages.
#include "vm/vm_radix.h"

#include "vm/vm_lock.h"
#include "vm/vm_zone.h"

namespace vmrt {
namespace {

vm_zone g_radix_zone = VM_ZONE_INIT("VM RADIX", sizeof(vm_radix_node), 0);

inline unsigned slot_of(vm_pindex_t key, unsigned level) {
  return static_cast<unsigned>((key >> (level * kRadixBits)) & (kRadixFanout - 1));
}

// Largest key representable with `height` levels, as "key fits" test.
inline bool fits(vm_pindex_t key, unsigned height) {
  if (height >= kRadixMaxHeight) return true;
  return (key >> (height * kRadixBits)) == 0;
}

vm_radix_node* node_alloc(unsigned level) {
  auto* n = vm_zone_new<vm_radix_node>(&g_radix_zone);
  if (n != nullptr) n->level = static_cast<std::uint8_t>(level);
  return n;
}

vm_page* ge(const vm_radix_node* n, vm_pindex_t key, bool exact_prefix) {
  unsigned i0 = exact_prefix ? slot_of(key, n->level) : 0;
  for (unsigned i = i0; i < kRadixFanout; ++i) {
    void* c = n->slot[i];
    if (c == nullptr) continue;
    if (n->level == 0) return static_cast<vm_page*>(c);
    vm_page* r = ge(static_cast<const vm_radix_node*>(c), key, exact_prefix && i == i0);
    if (r != nullptr) return r;
  }
  return nullptr;
}

// ge, also computing the key of the leaf found (`base`: the key bits above this node).
vm_page* ge_key(const vm_radix_node* n, vm_pindex_t key, bool exact_prefix, vm_pindex_t base, vm_pindex_t* out) {
  unsigned i0 = exact_prefix ? slot_of(key, n->level) : 0;
  for (unsigned i = i0; i < kRadixFanout; ++i) {
    void* c = n->slot[i];
    if (c == nullptr) continue;
    vm_pindex_t b = base | (static_cast<vm_pindex_t>(i) << (n->level * kRadixBits));
    if (n->level == 0) {
      *out = b;
      return static_cast<vm_page*>(c);
    }
    vm_page* r = ge_key(static_cast<const vm_radix_node*>(c), key, exact_prefix && i == i0, b, out);
    if (r != nullptr) return r;
  }
  return nullptr;
}

vm_page* le(const vm_radix_node* n, vm_pindex_t key, bool exact_prefix) {
  int i0 = exact_prefix ? static_cast<int>(slot_of(key, n->level)) : static_cast<int>(kRadixFanout - 1);
  for (int i = i0; i >= 0; --i) {
    void* c = n->slot[i];
    if (c == nullptr) continue;
    if (n->level == 0) return static_cast<vm_page*>(c);
    vm_page* r = le(static_cast<const vm_radix_node*>(c), key, exact_prefix && i == i0);
    if (r != nullptr) return r;
  }
  return nullptr;
}

std::uint64_t count(const vm_radix_node* n) {
  if (n->level == 0) return n->count;
  std::uint64_t t = 0;
  for (unsigned i = 0; i < kRadixFanout; ++i)
    if (n->slot[i] != nullptr) t += count(static_cast<const vm_radix_node*>(n->slot[i]));
  return t;
}

void reclaim(vm_radix_node* n) {
  if (n->level > 0)
    for (unsigned i = 0; i < kRadixFanout; ++i)
      if (n->slot[i] != nullptr) reclaim(static_cast<vm_radix_node*>(n->slot[i]));
  vm_zone_free(&g_radix_zone, n);
}

}  // namespace

kern_return_t vm_radix_insert(vm_radix* rt, vm_pindex_t key, vm_page* m) {
  VM_LOCK_ASSERT();
  VMRT_ASSERT(m != nullptr);
  if (rt->root == nullptr) {
    unsigned h = 1;
    while (!fits(key, h)) ++h;
    rt->root = node_alloc(h - 1);
    if (rt->root == nullptr) return KERN_RESOURCE_SHORTAGE;
    rt->height = static_cast<std::uint8_t>(h);
  }
  while (!fits(key, rt->height)) {
    vm_radix_node* r = node_alloc(rt->height);
    if (r == nullptr) return KERN_RESOURCE_SHORTAGE;
    r->slot[0] = rt->root;
    r->count = 1;
    rt->root = r;
    rt->height++;
  }
  vm_radix_node* n = rt->root;
  while (n->level > 0) {
    unsigned s = slot_of(key, n->level);
    auto* c = static_cast<vm_radix_node*>(n->slot[s]);
    if (c == nullptr) {
      c = node_alloc(n->level - 1u);
      if (c == nullptr) return KERN_RESOURCE_SHORTAGE;  // empty nodes left behind are harmless
      n->slot[s] = c;
      n->count++;
    }
    n = c;
  }
  unsigned s = slot_of(key, 0);
  VMRT_ASSERT(n->slot[s] == nullptr);
  n->slot[s] = m;
  n->count++;
  return KERN_SUCCESS;
}

vm_page* vm_radix_lookup(const vm_radix* rt, vm_pindex_t key) {
  const vm_radix_node* n = rt->root;
  if (n == nullptr || !fits(key, rt->height)) return nullptr;
  while (n->level > 0) {
    n = static_cast<const vm_radix_node*>(n->slot[slot_of(key, n->level)]);
    if (n == nullptr) return nullptr;
  }
  return static_cast<vm_page*>(n->slot[slot_of(key, 0)]);
}

vm_page* vm_radix_replace(vm_radix* rt, vm_pindex_t key, vm_page* m) {
  vm_radix_node* n = rt->root;
  VMRT_ASSERT(n != nullptr && fits(key, rt->height));
  while (n->level > 0) {
    n = static_cast<vm_radix_node*>(n->slot[slot_of(key, n->level)]);
    VMRT_ASSERT(n != nullptr);
  }
  unsigned s = slot_of(key, 0);
  auto* old = static_cast<vm_page*>(n->slot[s]);
  VMRT_ASSERT(old != nullptr);
  n->slot[s] = m;
  return old;
}

vm_page* vm_radix_remove(vm_radix* rt, vm_pindex_t key) {
  VM_LOCK_ASSERT();
  vm_radix_node* path[kRadixMaxHeight];
  vm_radix_node* n = rt->root;
  if (n == nullptr || !fits(key, rt->height)) return nullptr;
  unsigned depth = 0;
  for (;;) {
    path[depth++] = n;
    if (n->level == 0) break;
    n = static_cast<vm_radix_node*>(n->slot[slot_of(key, n->level)]);
    if (n == nullptr) return nullptr;
  }
  unsigned s = slot_of(key, 0);
  auto* m = static_cast<vm_page*>(n->slot[s]);
  if (m == nullptr) return nullptr;
  n->slot[s] = nullptr;
  n->count--;
  // Free empty nodes bottom-up.
  for (unsigned d = depth; d-- > 0;) {
    vm_radix_node* x = path[d];
    if (x->count != 0) break;
    vm_zone_free(&g_radix_zone, x);
    if (d == 0) {
      rt->root = nullptr;
      rt->height = 0;
    } else {
      vm_radix_node* p = path[d - 1];
      p->slot[slot_of(key, p->level)] = nullptr;
      p->count--;
    }
  }
  // Shrink the height while the root only uses slot 0.
  while (rt->root != nullptr && rt->root->level > 0 && rt->root->count == 1 && rt->root->slot[0] != nullptr) {
    vm_radix_node* old = rt->root;
    rt->root = static_cast<vm_radix_node*>(old->slot[0]);
    rt->height--;
    vm_zone_free(&g_radix_zone, old);
  }
  return m;
}

vm_page* vm_radix_lookup_ge(const vm_radix* rt, vm_pindex_t key) {
  if (rt->root == nullptr || !fits(key, rt->height)) return nullptr;
  return ge(rt->root, key, true);
}

bool vm_radix_next_key(const vm_radix* rt, vm_pindex_t key, vm_pindex_t* found) {
  if (rt->root == nullptr || !fits(key, rt->height)) return false;
  return ge_key(rt->root, key, true, 0, found) != nullptr;
}

vm_page* vm_radix_lookup_le(const vm_radix* rt, vm_pindex_t key) {
  if (rt->root == nullptr) return nullptr;
  if (!fits(key, rt->height)) return le(rt->root, 0, false);
  return le(rt->root, key, true);
}

std::uint64_t vm_radix_count(const vm_radix* rt) { return rt->root == nullptr ? 0 : count(rt->root); }

void vm_radix_reclaim_all(vm_radix* rt) {
  VM_LOCK_ASSERT();
  if (rt->root != nullptr) reclaim(rt->root);
  rt->root = nullptr;
  rt->height = 0;
}

}  // namespace vmrt
