// vm_pager.cpp — the pager table and the pagers that hold nothing (see vm_pager.h).
#include "vm/vm_pager.h"

#include "vm/vm_object.h"
#include "vm/vnode_pager.h"

namespace vmrt {
namespace {

// The default pager (anonymous zero-fill) and the stubs hold nothing: every page they are
// asked for is absent, and writes are refused (the device pager is not built; the vnode
// pager is vnode_pager.cpp).
bool none_has_page(vm_object*, vm_pindex_t, unsigned*, unsigned*) { return false; }
vm_pager_result none_get(vm_object*, vm_page* const*, unsigned n, bool, vm_pager_result* rtvals) {
  for (unsigned k = 0; k < n; ++k) rtvals[k] = VM_PAGER_ABSENT;
  return VM_PAGER_ABSENT;
}
void none_put(vm_object*, vm_page* const*, unsigned n, unsigned, bool, vm_pager_result* rtvals) {
  for (unsigned k = 0; k < n; ++k) rtvals[k] = VM_PAGER_ERROR;
}
void none_free_range(vm_object*, vm_pindex_t, vm_pindex_t) {}
void none_collapse(vm_object*, vm_object*, vm_pindex_t) {}
void none_move(vm_object*, vm_pindex_t, vm_pindex_t, vm_pindex_t) {}
bool none_has_any(vm_object*, vm_pindex_t, vm_pindex_t) { return false; }
void none_dealloc(vm_object*) {}

constexpr vm_pager_ops none_pager(const char* name, const char* tag) {
  return vm_pager_ops{name,          tag,           none_has_page, none_get,     none_put,
                      none_free_range, none_collapse, none_move,     none_has_any, none_dealloc};
}
constexpr vm_pager_ops kDefaultPager = none_pager("default", "df");
constexpr vm_pager_ops kDevicePager = none_pager("device", "dv");
constexpr vm_pager_ops kDeadPager = none_pager("dead", "--");

}  // namespace

const vm_pager_ops* const kPagerOps[] = {&kDefaultPager, &kSwapPagerOps, &kVnodePagerOps, &kDevicePager, &kDeadPager};
static_assert(sizeof kPagerOps / sizeof kPagerOps[0] == OBJT_COUNT);

const vm_pager_ops* vm_pager_of(const vm_object* obj) VMRT_REQUIRES(g_vm_lock) { return kPagerOps[obj->type]; }

const vm_pager_ops* vm_pager_for_put(const vm_object* obj) VMRT_REQUIRES(g_vm_lock) {
  return obj->type == OBJT_DEFAULT && (obj->flags & OBJ_ANON) ? &kSwapPagerOps : vm_pager_of(obj);
}

bool vm_pager_has_page(vm_object* obj, vm_pindex_t pindex, unsigned* before, unsigned* after) VMRT_REQUIRES(g_vm_lock) {
  return obj->type == OBJT_DEFAULT ? false : vm_pager_of(obj)->has_page(obj, pindex, before, after);
}

void vm_pager_free_range(vm_object* obj, vm_pindex_t start, vm_pindex_t end) VMRT_REQUIRES(g_vm_lock) {
  if (obj->type != OBJT_DEFAULT) vm_pager_of(obj)->free_range(obj, start, end);
}

void vm_pager_move(vm_object* obj, vm_pindex_t from, vm_pindex_t to, vm_pindex_t n) VMRT_REQUIRES(g_vm_lock) {
  if (obj->type != OBJT_DEFAULT) vm_pager_of(obj)->move(obj, from, to, n);
}

bool vm_pager_has_any(vm_object* obj, vm_pindex_t start, vm_pindex_t end) VMRT_REQUIRES(g_vm_lock) {
  return obj->type != OBJT_DEFAULT && vm_pager_of(obj)->has_any(obj, start, end);
}

}  // namespace vmrt
