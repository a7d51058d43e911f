// pmap.cpp — the machine's default pmap operations (set once at boot by runtime/).
#include "vm/pmap.h"

#include <atomic>

namespace vmrt {
namespace {
constinit std::atomic<const pmap_ops*> g_machine_ops{nullptr};
}

void pmap_set_machine_ops(const pmap_ops* ops) { g_machine_ops.store(ops, std::memory_order_release); }
const pmap_ops* pmap_machine_ops() { return g_machine_ops.load(std::memory_order_acquire); }

}  // namespace vmrt
