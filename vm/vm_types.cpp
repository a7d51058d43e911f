// vm_types.cpp — names of statuses.
#include "vm/vm_types.h"

namespace vmrt {

namespace {
constexpr vm_name<24> kKernNames[] = {  // in place: never relocated
    "KERN_SUCCESS",        "KERN_INVALID_ADDRESS", "KERN_PROTECTION_FAILURE", "KERN_NO_SPACE",
    "KERN_INVALID_ARGUMENT", "KERN_RESOURCE_SHORTAGE", "KERN_NO_ACCESS",       "KERN_MEMORY_ERROR",
    "KERN_ALREADY_EXISTS", "KERN_NOT_SUPPORTED",   "KERN_FAILURE",         "KERN_RESTART",
    "KERN_PAGER_ABSENT",
};
static_assert(sizeof kKernNames / sizeof kKernNames[0] == KERN_RETURN_COUNT, "one name per kern_return_t");
}  // namespace

const char* kern_return_name(kern_return_t kr) {
  int k = static_cast<int>(kr);
  if (k < 0 || k >= KERN_RETURN_COUNT) return "KERN_?";
  return kKernNames[k];
}

}  // namespace vmrt
