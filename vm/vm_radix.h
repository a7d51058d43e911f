// vm_radix.h — per-object page lookup: a radix trie keyed by page index.
//
// Fixed fanout 64 (6 bits per level), height grown on demand (like Linux's xarray;
// FreeBSD's vm_radix is the path-compressed cousin).  A tree of height h holds keys
// < 64^h; height 0 is empty.  Interior nodes come from a zone.  Leaves are vm_page
// pointers (or, in a pager's record tree, the pager's own non-null tagged words).  All
// operations O(height) <= 11 levels for 64-bit keys.
//
// Locking: the VM lock (the owning object's pages are guarded by it).
#pragma once

#include <cstdint>

#include "vm/vm_types.h"

namespace vmrt {

struct vm_page;

inline constexpr unsigned kRadixBits = 6;
inline constexpr unsigned kRadixFanout = 1u << kRadixBits;
inline constexpr unsigned kRadixMaxHeight = (64 + kRadixBits - 1) / kRadixBits;
static_assert(kRadixFanout == 64 && kRadixMaxHeight == 11);

struct vm_radix_node {
  void* slot[kRadixFanout];  // children (level > 0) or vm_page* (level 0)
  std::uint16_t count;       // non-null slots
  std::uint8_t level;        // 0 = leaves
};

struct vm_radix {
  vm_radix_node* root = nullptr;
  std::uint8_t height = 0;
};

// Insert m at key.  => key not present.  KERN_RESOURCE_SHORTAGE when out of nodes.
kern_return_t vm_radix_insert(vm_radix* rt, vm_pindex_t key, vm_page* m);
// Remove and return the page at key (null if none).  Frees empty nodes.
vm_page* vm_radix_remove(vm_radix* rt, vm_pindex_t key);
vm_page* vm_radix_lookup(const vm_radix* rt, vm_pindex_t key);
// The page with the smallest key >= key (null if none); its key is the page's pindex.
vm_page* vm_radix_lookup_ge(const vm_radix* rt, vm_pindex_t key);
// The smallest key >= key that holds a leaf, in *found; false when none.  For trees whose
// leaves are not pages (a pager's records), which cannot tell their own key.
bool vm_radix_next_key(const vm_radix* rt, vm_pindex_t key, vm_pindex_t* found);
// The page with the largest key <= key (null if none).
vm_page* vm_radix_lookup_le(const vm_radix* rt, vm_pindex_t key);
// Replace the page at key (which must exist) with m; returns the old page.
vm_page* vm_radix_replace(vm_radix* rt, vm_pindex_t key, vm_page* m);
// True when empty.
inline bool vm_radix_is_empty(const vm_radix* rt) { return rt->root == nullptr; }
// Count leaves (checker; O(n)).
std::uint64_t vm_radix_count(const vm_radix* rt);
// Free every node (pages untouched).  => used when the pages were all removed otherwise.
void vm_radix_reclaim_all(vm_radix* rt);

}  // namespace vmrt
