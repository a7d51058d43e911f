// vm_phys.cpp — buddy allocator with a lazily carved never-used region.
#include "vm/vm_phys.h"

#include <cstring>

#include "vm/vm_lock.h"
#include "vm/vm_stats.h"

namespace vmrt {
namespace {

struct free_list {
  vm_page* head VMRT_GUARDED_BY(g_vm_lock);  // doubly linked through q_next / q_prev
  frame_t count VMRT_GUARDED_BY(g_vm_lock);  // blocks
};

free_list g_free[VM_NFREEORDER] VMRT_GUARDED_BY(g_vm_lock);
frame_t g_nframes = 0;            // [constant after init]
VMRT_FORK_DATA frame_t g_bump VMRT_GUARDED_BY(g_vm_lock) = 0;  // first never-used frame; read by every fork
frame_t g_free_frames VMRT_GUARDED_BY(g_vm_lock) = 0;          // frames in the lists
bool (*g_first_use)() = nullptr;  // vm_phys_set_first_use_hook [set at boot]

void list_push(unsigned order, vm_page* m) VMRT_REQUIRES(g_vm_lock) {
  free_list& fl = g_free[order];
  m->q_prev = nullptr;
  m->q_next = fl.head;
  if (fl.head != nullptr) fl.head->q_prev = m;
  fl.head = m;
  fl.count++;
  m->queue = PQ_FREE;
  m->order = static_cast<std::uint8_t>(order);
  g_free_frames += frame_t{1} << order;
}

void list_unlink(unsigned order, vm_page* m) VMRT_REQUIRES(g_vm_lock) {
  free_list& fl = g_free[order];
  if (m->q_prev != nullptr) m->q_prev->q_next = m->q_next;
  else fl.head = m->q_next;
  if (m->q_next != nullptr) m->q_next->q_prev = m->q_prev;
  m->q_next = m->q_prev = nullptr;
  fl.count--;
  m->queue = PQ_NONE;
  g_free_frames -= frame_t{1} << order;
}

// Initialise never-used records [f, f + n): zeroed frames, PQ_NONE.
void init_records(frame_t f, frame_t n) VMRT_REQUIRES(g_vm_lock) {
  std::memset(&vm_page_array[f], 0, sizeof(vm_page) * n);
  for (frame_t k = 0; k < n; ++k) vm_page_array[f + k].flags = PG_ZERO;
}

// Carve [g_bump, g_bump + n) from the never-used region, aligned to `align` frames; the
// skipped prefix goes to the buddy lists.
vm_page* bump_carve(frame_t n, frame_t align) VMRT_REQUIRES(g_vm_lock) {
  frame_t start = (g_bump + align - 1) & ~(align - 1);
  if (start < g_bump || start > g_nframes || g_nframes - start < n) return nullptr;
  if (g_bump == 0 && g_first_use != nullptr && !g_first_use()) return nullptr;
  if (start > g_bump) {
    frame_t pre = g_bump;
    init_records(pre, start - pre);
    g_bump = start;
    vm_phys_free_run(pre, start - pre);
  }
  init_records(start, n);
  g_bump = start + n;
  return &vm_page_array[start];
}

unsigned ceil_order(frame_t n) {
  unsigned o = 0;
  while ((frame_t{1} << o) < n) ++o;
  return o;
}

}  // namespace

void vm_phys_init(frame_t nframes) VMRT_REQUIRES(g_vm_lock) {
  std::memset(g_free, 0, sizeof g_free);
  g_nframes = nframes;
  g_bump = 0;
  g_free_frames = 0;
}

vm_page* vm_phys_alloc(unsigned order) {
  VM_LOCK_ASSERT();
  VMRT_ASSERT(order < VM_NFREEORDER);
  for (unsigned o = order; o < VM_NFREEORDER; ++o) {
    vm_page* m = g_free[o].head;
    if (m == nullptr) continue;
    list_unlink(o, m);
    frame_t f = vm_page_frame(m);
    while (o > order) {  // split, keeping the lower half
      --o;
      list_push(o, &vm_page_array[f + (frame_t{1} << o)]);
    }
    return m;
  }
  return bump_carve(frame_t{1} << order, frame_t{1} << order);
}

vm_page* vm_phys_alloc_contig(frame_t n) {
  VM_LOCK_ASSERT();
  VMRT_ASSERT(n >= 1);
  unsigned order = ceil_order(n);
  if (order >= VM_NFREEORDER) {
    // Larger than any block: only the never-used region can serve it.
    return bump_carve(n, frame_t{1} << (VM_NFREEORDER - 1));
  }
  vm_page* m = vm_phys_alloc(order);
  if (m == nullptr) return nullptr;
  frame_t f = vm_page_frame(m);
  frame_t sz = frame_t{1} << order;
  if (sz > n) vm_phys_free_run(f + n, sz - n);
  return m;
}

void vm_phys_free(vm_page* m, unsigned order) {
  VM_LOCK_ASSERT();
  frame_t f = vm_page_frame(m);
  VMRT_ASSERT((f & ((frame_t{1} << order) - 1)) == 0);
  VMRT_ASSERT(m->queue != PQ_FREE);
  while (order + 1 < VM_NFREEORDER) {
    frame_t b = f ^ (frame_t{1} << order);
    if (b >= g_bump) break;
    vm_page* bm = &vm_page_array[b];
    if (bm->queue != PQ_FREE || bm->order != order) break;
    list_unlink(order, bm);
    f = f < b ? f : b;
    ++order;
  }
  list_push(order, &vm_page_array[f]);
}

void vm_phys_free_run(frame_t f, frame_t n) {
  while (n > 0) {
    unsigned o = 0;
    while (o + 1 < VM_NFREEORDER && (f & ((frame_t{1} << (o + 1)) - 1)) == 0 && (frame_t{1} << (o + 1)) <= n) ++o;
    vm_phys_free(&vm_page_array[f], o);
    f += frame_t{1} << o;
    n -= frame_t{1} << o;
  }
}

frame_t vm_phys_free_count() VMRT_REQUIRES(g_vm_lock) { return g_free_frames + (g_nframes - g_bump); }
VMRT_FORK_PARENT_TEXT frame_t vm_phys_bump() VMRT_REQUIRES(g_vm_lock) { return g_bump; }
VMRT_FORK_PARENT_TEXT frame_t vm_phys_bump_unlocked() VMRT_NO_THREAD_SAFETY_ANALYSIS {
  return __atomic_load_n(&g_bump, __ATOMIC_RELAXED);
}
void vm_phys_set_first_use_hook(bool (*hook)()) { g_first_use = hook; }

bool vm_phys_frame_in_free_block(frame_t f) VMRT_REQUIRES(g_vm_lock) {
  if (f >= g_bump) return true;
  for (unsigned o = 0; o < VM_NFREEORDER; ++o) {
    frame_t h = f & ~((frame_t{1} << o) - 1);
    const vm_page* m = &vm_page_array[h];
    if (m->queue == PQ_FREE && m->order == o) return true;
  }
  return false;
}

void vm_phys_foreach_free_block(void (*fn)(frame_t first, frame_t n, void* arg), void* arg) VMRT_REQUIRES(g_vm_lock) {
  for (unsigned o = 0; o < VM_NFREEORDER; ++o)
    for (vm_page* m = g_free[o].head; m != nullptr; m = m->q_next) fn(vm_page_frame(m), frame_t{1} << o, arg);
}

bool vm_phys_frame_is_free(frame_t f) VMRT_REQUIRES(g_vm_lock) {
  if (f >= g_bump) return true;
  return vm_page_array[f].queue == PQ_FREE;
}

}  // namespace vmrt
