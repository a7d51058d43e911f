// vmrt_api.cpp — the public C API (runtime/vmrt.h): the one place where a
// kern_return_t becomes an errno.
//
// errno tables (Linux behaviour for the same arguments):
//   call        checked here first                          kern_return_t from the VM
//   ----------  ------------------------------------------  --------------------------------------
//   mmap        len 0, unknown prot bits, MAP_TYPE neither   INVALID_ARGUMENT EINVAL, NO_SPACE ENOMEM,
//               PRIVATE nor SHARED, FIXED/NOREPLACE with     INVALID_ADDRESS ENOMEM, ALREADY_EXISTS EEXIST,
//               unaligned addr, unaligned off: EINVAL;       NO_ACCESS/PROTECTION_FAILURE EACCES,
//               not MAP_ANONYMOUS: ENODEV; FIXED range       RESOURCE_SHORTAGE ENOMEM, NOT_SUPPORTED ENODEV,
//               outside the window / len overflow: ENOMEM    other EINVAL
//   munmap      unaligned, len 0, range outside: EINVAL      INVALID_ARGUMENT EINVAL, other EINVAL
//   mprotect    unaligned, unknown prot bits: EINVAL;        INVALID_ADDRESS ENOMEM, NO_ACCESS/PROTECTION
//               len 0: success; outside the window: ENOMEM   EACCES, RESOURCE_SHORTAGE ENOMEM, other EINVAL
//   madvise     unaligned, unknown advice: EINVAL; len 0: 0; INVALID_ADDRESS ENOMEM, RESOURCE_SHORTAGE EAGAIN,
//               outside: ENOMEM                              other EINVAL
//   mincore     unaligned: EINVAL; outside: ENOMEM           INVALID_ADDRESS ENOMEM, other EINVAL
//   minherit    unaligned, bad value: EINVAL; outside ENOMEM INVALID_ADDRESS ENOMEM, other EINVAL
//   mlock       (address rounded down, as Linux) outside:    INVALID_ADDRESS ENOMEM, RESOURCE_SHORTAGE EAGAIN,
//               ENOMEM; len 0: 0                             other ENOMEM
//   extract /   null vmspace, unaligned, len 0, bad mode:    INVALID_ARGUMENT EINVAL, INVALID_ADDRESS EFAULT,
//   transfer /  EINVAL; dst range outside the receiver's     PROTECTION_FAILURE EACCES, NO_SPACE ENOMEM,
//   loan        window: ENOMEM                               ALREADY_EXISTS EEXIST, RESOURCE_SHORTAGE ENOMEM
//   unloan      null vmspace, unaligned, len 0: EINVAL       INVALID_ADDRESS EINVAL (not a borrowed view)
// madvise(2) values vmrt keeps no state for (HUGEPAGE, MERGEABLE, DONTDUMP, COLD, ...)
// succeed without effect after the range is checked; DONTFORK/DOFORK/WIPEONFORK/
// KEEPONFORK are minherit NONE/COPY/ZERO/COPY.
#include "runtime/vmrt.h"

#include <cerrno>
#include <csignal>
#include <cstring>
#include <sys/mman.h>

#include "kmem/kmem.h"
#include "runtime/boot.h"
#include "runtime/pmap_linux.h"
#include "runtime/region.h"
#include "runtime/rt_maps.h"
#include "runtime/rt_stats.h"
#include "runtime/runtime_internal.h"
#include "runtime/trap.h"
#include "vm/vm_loan.h"
#include "vm/vm_lock.h"
#include "vm/vm_pageout.h"
#include "vm/vm_stats.h"
#include "vm/vm_share.h"
#include "vm/vm_swapout.h"
#include "vm/vmspace.h"

using namespace vmrt;

namespace {

// ---- errno tables -------------------------------------------------------------------------
constexpr int kErrnoCount = KERN_FAILURE + 1;
using errno_table = int[kErrnoCount];
//                                   SUCCESS INV_ADDR  PROT    NO_SPACE INV_ARG RESOURCE NO_ACCESS MEM_ERR EXISTS  NOT_SUP FAILURE
constexpr errno_table kMmapErrno     = {0, ENOMEM, EACCES, ENOMEM, EINVAL, ENOMEM, EACCES, EIO,   EEXIST, ENODEV, EINVAL};
constexpr errno_table kMunmapErrno   = {0, EINVAL, EINVAL, EINVAL, EINVAL, ENOMEM, EINVAL, EIO,   EINVAL, EINVAL, EINVAL};
constexpr errno_table kMprotectErrno = {0, ENOMEM, EACCES, ENOMEM, EINVAL, ENOMEM, EACCES, EIO,   EINVAL, EINVAL, EINVAL};
constexpr errno_table kMadviseErrno  = {0, ENOMEM, EACCES, ENOMEM, EINVAL, EAGAIN, EACCES, EIO,   EINVAL, EINVAL, EINVAL};
constexpr errno_table kMincoreErrno  = {0, ENOMEM, EINVAL, ENOMEM, EINVAL, EAGAIN, EINVAL, EIO,   EINVAL, EINVAL, EINVAL};
constexpr errno_table kMinheritErrno = {0, ENOMEM, EINVAL, ENOMEM, EINVAL, ENOMEM, EINVAL, EIO,   EINVAL, EINVAL, EINVAL};
constexpr errno_table kMlockErrno    = {0, ENOMEM, ENOMEM, ENOMEM, EINVAL, EAGAIN, ENOMEM, EIO,   ENOMEM, ENOMEM, ENOMEM};
constexpr errno_table kShareErrno    = {0, EFAULT, EACCES, ENOMEM, EINVAL, ENOMEM, EACCES, EIO,   EEXIST, ENOTSUP, EINVAL};
constexpr errno_table kUnloanErrno   = {0, EINVAL, EINVAL, EINVAL, EINVAL, ENOMEM, EINVAL, EIO,   EINVAL, EINVAL, EINVAL};
static_assert(KERN_SUCCESS == 0 && KERN_INVALID_ADDRESS == 1 && KERN_PROTECTION_FAILURE == 2 && KERN_NO_SPACE == 3 &&
                  KERN_INVALID_ARGUMENT == 4 && KERN_RESOURCE_SHORTAGE == 5 && KERN_NO_ACCESS == 6 &&
                  KERN_MEMORY_ERROR == 7 && KERN_ALREADY_EXISTS == 8 && KERN_NOT_SUPPORTED == 9 && KERN_FAILURE == 10,
              "the errno tables are indexed by kern_return_t");
static_assert(kMmapErrno[KERN_ALREADY_EXISTS] == EEXIST && kMprotectErrno[KERN_NO_ACCESS] == EACCES &&
              kMmapErrno[KERN_NOT_SUPPORTED] == ENODEV && kMprotectErrno[KERN_INVALID_ADDRESS] == ENOMEM);
static_assert(kShareErrno[KERN_INVALID_ADDRESS] == EFAULT && kShareErrno[KERN_ALREADY_EXISTS] == EEXIST &&
              kUnloanErrno[KERN_INVALID_ADDRESS] == EINVAL);

// kern_return_t -> 0 / -1 + errno, through one table.
int ret(kern_return_t kr, const errno_table& t) {
  if (kr == KERN_SUCCESS) return 0;
  int k = static_cast<int>(kr);
  errno = (k > 0 && k < kErrnoCount) ? t[k] : EINVAL;
  return -1;
}
int fail(int e) {
  errno = e;
  return -1;
}

rt::window* W(const vmrt_vmspace* v) { return reinterpret_cast<rt::window*>(const_cast<vmrt_vmspace*>(v)); }
vmrt_vmspace* H(rt::window* w) { return reinterpret_cast<vmrt_vmspace*>(w); }
vmspace* VS(const vmrt_vmspace* v) { return v != nullptr ? W(v)->vs.load(std::memory_order_acquire) : nullptr; }

// The VM is up (booting it if needed); no trap backend needed (reports, checks).
bool booted() { return runtime_boot() && runtime_vm_up(); }
// The VM is up and faults in vmspaces are handled: the first call starts the trap
// backend (handlers, userfaultfd, its thread).  Everything that creates or touches a
// vmspace goes through here.
bool up() { return booted() && runtime_trap_start(); }

constexpr int kProtBits = PROT_READ | PROT_WRITE | PROT_EXEC;

// [a, a + len) inside the vmspace's map; len already page-rounded and nonzero.
bool inside(const rt::window* w, vaddr_t a, vsize_t len) {
  return a >= w->base && len <= w->vm_size && a - w->base <= w->vm_size - len;
}

// Round len up to pages; false on overflow.
bool round_len(size_t len, vsize_t* out) {
  if (len > SIZE_MAX - PAGE_MASK) return false;
  *out = round_page(len);
  return true;
}

// The API trap hook, adapted from the runtime's.
std::atomic<vmrt_trap_hook> g_user_hook{nullptr};
std::atomic<void*> g_user_arg{nullptr};

void hook_adapter(const rt::trap_info* t, void*) {
  vmrt_trap_hook h = g_user_hook.load(std::memory_order_acquire);
  if (h == nullptr) return;
  vmrt_trap x;
  x.addr = reinterpret_cast<void*>(t->addr);
  x.access = t->access;
  x.reason = static_cast<vmrt_trap_reason>(t->reason);
  x.vmspace = (t->win != nullptr && t->win->kind == rt::WK_API) ? H(t->win) : nullptr;
  h(&x, g_user_arg.load(std::memory_order_acquire));
}

}  // namespace

extern "C" {

int vmrt_init(void) { return up() ? 0 : fail(ENOMEM); }

const char* vmrt_trap_backend(void) { return up() ? rt::trap_backend_name() : "none"; }

vmrt_vmspace* vmrt_vmspace_create(size_t size) {
  if (!up()) {
    errno = ENOMEM;
    return nullptr;
  }
  vsize_t len;
  if (size == 0) {
    errno = EINVAL;
    return nullptr;
  }
  if (!round_len(size, &len)) {
    errno = ENOMEM;
    return nullptr;
  }
  rt::window* w = rt::window_alloc(len, rt::WK_API);
  if (w == nullptr) {
    errno = ENOMEM;
    return nullptr;
  }
  w->vm_size = len;
  w->pm.ops = &rt::g_pmap_linux_ops;
  vmspace* vs = nullptr;
  if (vmspace_create(w->base, w->base + len, &w->pm, &vs) != KERN_SUCCESS) {
    rt::window_free(w);
    errno = ENOMEM;
    return nullptr;
  }
  w->vs.store(vs, std::memory_order_release);
  return H(w);
}

void vmrt_vmspace_destroy(vmrt_vmspace* v) {
  if (v == nullptr) return;
  rt::window* w = W(v);
  vmspace* vs = w->vs.exchange(nullptr, std::memory_order_acq_rel);
  if (vs != nullptr) vmspace_destroy(vs);
  rt::pmap_linux_reset(w->base, w->base + w->size);
  rt::window_free(w);
}

void* vmrt_vmspace_base(const vmrt_vmspace* v) { return v != nullptr ? reinterpret_cast<void*>(W(v)->base) : nullptr; }
size_t vmrt_vmspace_size(const vmrt_vmspace* v) { return v != nullptr ? W(v)->vm_size : 0; }

vmrt_vmspace* vmrt_vmspace_fork(vmrt_vmspace* parent) {
  if (parent == nullptr || VS(parent) == nullptr) {
    errno = EINVAL;
    return nullptr;
  }
  rt::window* pw = W(parent);
  rt::window* w = rt::window_alloc(pw->vm_size, rt::WK_API);
  if (w == nullptr) {
    errno = ENOMEM;
    return nullptr;
  }
  w->vm_size = pw->vm_size;
  w->pm.ops = &rt::g_pmap_linux_ops;
  w->pm.max = w->base + w->size;
  vmspace* vs = nullptr;
  kern_return_t kr = vmspace_fork(VS(parent), &w->pm, &vs);
  if (kr != KERN_SUCCESS) {
    rt::pmap_linux_reset(w->base, w->base + w->size);
    rt::window_free(w);
    errno = ENOMEM;
    return nullptr;
  }
  w->vs.store(vs, std::memory_order_release);
  return H(w);
}

void* vmrt_translate(const vmrt_vmspace* from, const vmrt_vmspace* to, const void* addr) {
  if (from == nullptr || to == nullptr) return nullptr;
  vaddr_t a = reinterpret_cast<vaddr_t>(addr);
  const rt::window* f = W(from);
  const rt::window* t = W(to);
  if (a < f->base || a - f->base >= f->vm_size || a - f->base >= t->vm_size) return nullptr;
  return reinterpret_cast<void*>(t->base + (a - f->base));
}

void* vmrt_mmap(vmrt_vmspace* v, void* addr, size_t len, int prot, int flags, int fd, off_t off) {
  (void)fd;
  vmspace* vs = VS(v);
  if (vs == nullptr) {
    errno = EINVAL;
    return VMRT_MAP_FAILED;
  }
  rt::window* w = W(v);
  vaddr_t a = reinterpret_cast<vaddr_t>(addr);
  bool fixed = (flags & (MAP_FIXED | MAP_FIXED_NOREPLACE)) != 0;
  int type = flags & MAP_TYPE;
  vsize_t rlen;
  if (len == 0 || (prot & ~kProtBits) != 0 || (type != MAP_PRIVATE && type != MAP_SHARED && type != MAP_SHARED_VALIDATE) ||
      (fixed && !page_aligned(a)) || (off & static_cast<off_t>(PAGE_MASK)) != 0) {
    errno = EINVAL;
    return VMRT_MAP_FAILED;
  }
  if (!round_len(len, &rlen)) {
    errno = ENOMEM;
    return VMRT_MAP_FAILED;
  }
  if ((flags & MAP_ANONYMOUS) == 0) {
    errno = ENODEV;  // file-backed mappings: the vnode pager is not in this build
    return VMRT_MAP_FAILED;
  }
  if (fixed && !inside(w, a, rlen)) {
    errno = ENOMEM;
    return VMRT_MAP_FAILED;
  }
  vm_mmap_request req{};
  req.addr = fixed || inside(w, trunc_page(a), rlen) ? trunc_page(a) : 0;
  req.len = rlen;
  req.prot = static_cast<vm_prot_t>(prot);
  req.maxprot = VM_PROT_ALL;
  std::uint32_t f = type == MAP_PRIVATE ? VM_MMAP_PRIVATE : VM_MMAP_SHARED;
  if ((flags & MAP_FIXED) != 0) f |= VM_MMAP_FIXED;
  if ((flags & MAP_FIXED_NOREPLACE) != 0) f |= VM_MMAP_NOREPLACE;
  if ((flags & MAP_POPULATE) != 0) f |= VM_MMAP_POPULATE;
  if ((flags & MAP_NORESERVE) != 0) f |= VM_MMAP_NORESERVE;
  if ((flags & MAP_GROWSDOWN) != 0) f |= VM_MMAP_GROWSDOWN;
  req.flags = f;
  req.object = nullptr;
  req.offset = static_cast<vm_ooffset_t>(off);
  vaddr_t out = 0;
  if (ret(vm_mmap(vs, req, &out), kMmapErrno) != 0) return VMRT_MAP_FAILED;
  return reinterpret_cast<void*>(out);
}

int vmrt_munmap(vmrt_vmspace* v, void* addr, size_t len) {
  vmspace* vs = VS(v);
  vaddr_t a = reinterpret_cast<vaddr_t>(addr);
  vsize_t rlen;
  if (vs == nullptr || len == 0 || !page_aligned(a) || !round_len(len, &rlen) || !inside(W(v), a, rlen))
    return fail(EINVAL);
  return ret(vm_munmap(vs, a, rlen), kMunmapErrno);
}

int vmrt_mprotect(vmrt_vmspace* v, void* addr, size_t len, int prot) {
  vmspace* vs = VS(v);
  vaddr_t a = reinterpret_cast<vaddr_t>(addr);
  if (vs == nullptr || !page_aligned(a) || (prot & ~kProtBits) != 0) return fail(EINVAL);
  vsize_t rlen;
  if (!round_len(len, &rlen)) return fail(ENOMEM);
  if (rlen == 0) return 0;
  if (!inside(W(v), a, rlen)) return fail(ENOMEM);
  return ret(vm_mprotect(vs, a, rlen, static_cast<vm_prot_t>(prot)), kMprotectErrno);
}

namespace {
// vm_mincore over [a, a + len) a chunk at a time, into vec (null: only whether it is all
// mapped).  The answers go through a buffer on this stack: vec may be vmspace memory (a
// guest's, or paged out), and the VM writes its vector under the VM lock, where a fault on
// it would wait for a handler that needs the lock.  Chunks before a failing one are answered.
kern_return_t incore(vmspace* vs, vaddr_t a, vsize_t len, unsigned char* vec) {
  unsigned char buf[512];
  for (vsize_t done = 0; done < len; done += sizeof buf * PAGE_SIZE) {
    vsize_t n = len - done < sizeof buf * PAGE_SIZE ? len - done : sizeof buf * PAGE_SIZE;
    if (kern_return_t kr = vm_mincore(vs, a + done, n, buf); kr != KERN_SUCCESS) return kr;
    if (vec != nullptr) std::memcpy(vec + atop(done), buf, atop(n));
  }
  return KERN_SUCCESS;
}
}  // namespace

int vmrt_madvise(vmrt_vmspace* v, void* addr, size_t len, int advice) {
  vmspace* vs = VS(v);
  vaddr_t a = reinterpret_cast<vaddr_t>(addr);
  if (vs == nullptr || !page_aligned(a)) return fail(EINVAL);
  vm_advice_t adv = VM_ADVICE_COUNT;
  int inherit = -1;
  bool noop = false;
  switch (advice) {
    case MADV_NORMAL: adv = VM_ADVICE_NORMAL; break;
    case MADV_RANDOM: adv = VM_ADVICE_RANDOM; break;
    case MADV_SEQUENTIAL: adv = VM_ADVICE_SEQUENTIAL; break;
    case MADV_WILLNEED: adv = VM_ADVICE_WILLNEED; break;
    case MADV_DONTNEED: adv = VM_ADVICE_DONTNEED; break;
    case MADV_FREE: adv = VM_ADVICE_FREE; break;
    case MADV_COLD: adv = VM_ADVICE_COLD; break;
    case MADV_PAGEOUT: adv = VM_ADVICE_PAGEOUT; break;
    case MADV_DONTFORK: inherit = VM_INHERIT_NONE; break;
    case MADV_DOFORK: inherit = VM_INHERIT_COPY; break;
    case MADV_WIPEONFORK: inherit = VM_INHERIT_ZERO; break;
    case MADV_KEEPONFORK: inherit = VM_INHERIT_COPY; break;
    case MADV_HUGEPAGE: case MADV_NOHUGEPAGE: case MADV_MERGEABLE: case MADV_UNMERGEABLE:
    case MADV_DONTDUMP: case MADV_DODUMP:
      noop = true;
      break;
    default: return fail(EINVAL);
  }
  vsize_t rlen;
  if (!round_len(len, &rlen)) return fail(ENOMEM);
  if (rlen == 0) return 0;
  if (!inside(W(v), a, rlen)) return fail(ENOMEM);
  if (inherit >= 0) return ret(vm_minherit(vs, a, rlen, static_cast<vm_inherit_t>(inherit)), kMadviseErrno);
  if (noop) return ret(incore(vs, a, rlen, nullptr), kMadviseErrno);  // the range is mapped, as Linux checks
  return ret(vm_madvise(vs, a, rlen, adv), kMadviseErrno);
}

int vmrt_mincore(vmrt_vmspace* v, void* addr, size_t len, unsigned char* vec) {
  vmspace* vs = VS(v);
  vaddr_t a = reinterpret_cast<vaddr_t>(addr);
  if (vs == nullptr || !page_aligned(a)) return fail(EINVAL);
  vsize_t rlen;
  if (!round_len(len, &rlen)) return fail(ENOMEM);
  if (rlen == 0) return 0;
  if (!inside(W(v), a, rlen)) return fail(ENOMEM);
  if (vec == nullptr) return fail(EFAULT);
  return ret(incore(vs, a, rlen, vec), kMincoreErrno);
}

int vmrt_minherit(vmrt_vmspace* v, void* addr, size_t len, int inherit) {
  vmspace* vs = VS(v);
  vaddr_t a = reinterpret_cast<vaddr_t>(addr);
  if (vs == nullptr || !page_aligned(a) || inherit < VMRT_INHERIT_SHARE || inherit > VMRT_INHERIT_ZERO)
    return fail(EINVAL);
  vsize_t rlen;
  if (!round_len(len, &rlen)) return fail(ENOMEM);
  if (rlen == 0) return 0;
  if (!inside(W(v), a, rlen)) return fail(ENOMEM);
  return ret(vm_minherit(vs, a, rlen, static_cast<vm_inherit_t>(inherit)), kMinheritErrno);
}

static int lock_common(vmrt_vmspace* v, const void* addr, size_t len, bool lock) {
  vmspace* vs = VS(v);
  if (vs == nullptr) return fail(EINVAL);
  vaddr_t a = reinterpret_cast<vaddr_t>(addr);
  vaddr_t start = trunc_page(a);
  if (len > SIZE_MAX - PAGE_MASK - (a - start)) return fail(ENOMEM);
  vsize_t rlen = round_page(len + (a - start));
  if (rlen == 0) return 0;
  if (!inside(W(v), start, rlen)) return fail(ENOMEM);
  kern_return_t kr = lock ? vm_mlock(vs, start, rlen) : vm_munlock(vs, start, rlen);
  if (kr == KERN_PAGER_ABSENT || kr == KERN_MEMORY_ERROR) return fail(ENOMEM);  // Linux: EFAULT -> ENOMEM
  return ret(kr, kMlockErrno);
}

int vmrt_mlock(vmrt_vmspace* v, const void* addr, size_t len) { return lock_common(v, addr, len, true); }
int vmrt_munlock(vmrt_vmspace* v, const void* addr, size_t len) { return lock_common(v, addr, len, false); }

vmrt_trap_hook vmrt_set_trap_hook(vmrt_trap_hook hook, void* arg) {
  up();
  g_user_arg.store(arg, std::memory_order_release);
  vmrt_trap_hook old = g_user_hook.exchange(hook, std::memory_order_acq_rel);
  rt::trap_set_hook(hook != nullptr ? hook_adapter : nullptr, nullptr, nullptr);
  return old;
}

void vmrt_report_procstat(const vmrt_vmspace* v, int fd) {
  if (!booted()) return;
  vmspace* vs = v != nullptr ? VS(v) : runtime_kernel_vmspace();
  if (vs != nullptr) vmspace_report_procstat(vs, fd);
}

void vmrt_report_vmstat(int fd) {
  if (!booted()) return;
  vm_stats_report(fd);
  rt::rt_report_counters(fd);
  runtime_report_host(fd);
}

size_t vmrt_trim(void) {
  if (!vmrt::runtime_boot()) return 0;
  return vmrt::runtime_trim();
}

void vmrt_report_malloc(int fd) {
  if (runtime_boot()) kmem::report_vmstat_m(fd);
}

long long vmrt_counter(const char* name) {
  if (name == nullptr) return -1;
  vm_counter c;
  if (vm_stat_find(name, &c)) return vm_stat_get(c);
  std::int64_t v;
  if (rt::rt_counter_by_name(name, &v)) return v;
  return -1;
}

}  // extern "C"

namespace {

// The three sharing calls' common edge: vmspaces, alignment, the destination window.
//  => false with errno set.
bool share_args(vmrt_vmspace* from, void* addr, size_t len, vmrt_vmspace* to, void* dst) {
  vaddr_t a = reinterpret_cast<vaddr_t>(addr), d = reinterpret_cast<vaddr_t>(dst);
  if (VS(from) == nullptr || VS(to) == nullptr || len == 0 || !page_aligned(a) || !page_aligned(d) ||
      !page_aligned(len)) {
    errno = EINVAL;
    return false;
  }
  if (d != 0 && !inside(W(to), d, len)) {
    errno = ENOMEM;
    return false;
  }
  return true;
}

void* share_ret(kern_return_t kr, vaddr_t out) {
  if (ret(kr, kShareErrno) != 0) return VMRT_MAP_FAILED;
  return reinterpret_cast<void*>(out);
}

}  // namespace

extern "C" {

void* vmrt_extract(vmrt_vmspace* from, void* addr, size_t len, vmrt_vmspace* to, void* dst, int mode) {
  if (!share_args(from, addr, len, to, dst)) return VMRT_MAP_FAILED;
  if (mode != VMRT_EXTRACT_SHARE && mode != VMRT_EXTRACT_COPY) {
    errno = EINVAL;
    return VMRT_MAP_FAILED;
  }
  vaddr_t out = 0;
  kern_return_t kr = vm_extract(VS(from), reinterpret_cast<vaddr_t>(addr), len, VS(to), reinterpret_cast<vaddr_t>(dst),
                                mode == VMRT_EXTRACT_SHARE ? VM_EXTRACT_SHARE : VM_EXTRACT_COW, &out);
  return share_ret(kr, out);
}

void* vmrt_transfer(vmrt_vmspace* from, void* addr, size_t len, vmrt_vmspace* to, void* dst, int mode) {
  if (!share_args(from, addr, len, to, dst)) return VMRT_MAP_FAILED;
  if (mode != VMRT_TRANSFER_UNMAP && mode != VMRT_TRANSFER_ZERO) {
    errno = EINVAL;
    return VMRT_MAP_FAILED;
  }
  vaddr_t out = 0;
  kern_return_t kr = vm_transfer(VS(from), reinterpret_cast<vaddr_t>(addr), len, VS(to), reinterpret_cast<vaddr_t>(dst),
                                 mode == VMRT_TRANSFER_ZERO ? VM_TRANSFER_ZERO : VM_TRANSFER_UNMAP, &out);
  return share_ret(kr, out);
}

void* vmrt_loan(vmrt_vmspace* from, void* addr, size_t len, vmrt_vmspace* to, void* dst) {
  if (!share_args(from, addr, len, to, dst)) return VMRT_MAP_FAILED;
  vaddr_t out = 0;
  kern_return_t kr =
      vm_loan(VS(from), reinterpret_cast<vaddr_t>(addr), len, VS(to), reinterpret_cast<vaddr_t>(dst), &out);
  return share_ret(kr, out);
}

int vmrt_unloan(vmrt_vmspace* to, void* view, size_t len) {
  vaddr_t a = reinterpret_cast<vaddr_t>(view);
  if (VS(to) == nullptr || len == 0 || !page_aligned(a) || !page_aligned(len)) return fail(EINVAL);
  return ret(vm_unloan(VS(to), a, len), kUnloanErrno);
}

int vmrt_check(const vmrt_vmspace* v, int fd) {
  if (!booted()) return fail(ENOMEM);
  vmspace* vs = v != nullptr ? VS(v) : runtime_kernel_vmspace();
  if (vs == nullptr) return fail(EINVAL);
  if (vmspace_check(vs, fd) == KERN_SUCCESS) return 0;
  errno = EINVAL;
  return -1;
}

// Before the trap backend starts (or without a VM) this is plain sigaction(2): the
// kernel keeps the program's handler and trap_start() takes it over as the chained one.
int vmrt_sigaction(int sig, const struct sigaction* act, struct sigaction* old) {
  return rt::trap_sigaction(sig, act, old);
}

void vmrt_thread_attach(void) {
  if (up()) rt::trap_thread_attach();
}

size_t vmrt_resident(const vmrt_vmspace* v, const void* addr, size_t len) {
  if (v == nullptr) return 0;
  const rt::window* w = W(v);
  vaddr_t a = trunc_page(reinterpret_cast<vaddr_t>(addr));
  vaddr_t e = round_page(reinterpret_cast<vaddr_t>(addr) + len);
  if (a < w->base) a = w->base;
  if (e > w->base + w->vm_size) e = w->base + w->vm_size;
  if (a >= e) return 0;
  return rt::pmap_linux_resident(a, e);
}

long vmrt_vmspace_swapout(vmrt_vmspace* v) {
  vmspace* vs = VS(v);
  if (vs == nullptr) {
    errno = EINVAL;
    return -1;
  }
  if (!vm_pageout_enabled()) {
    errno = ENOTSUP;  // no paging: nothing to swap to (vmrun --physmem / VMRT_PHYSMEM)
    return -1;
  }
  vm_lock_guard g;
  return static_cast<long>(vm_swapout_vmspace(vs, true));
}

int vmrt_vmspace_swapped(const vmrt_vmspace* v) {
  vmspace* vs = VS(v);
  if (vs == nullptr) return -1;
  vm_swapout_info si{};
  vm_lock_guard g;
  vm_swapout_get_info(vs, &si);
  return si.swapped ? 1 : 0;
}

void vmrt_vmspace_note_run(vmrt_vmspace* v) {
  if (vmspace* vs = VS(v)) vm_swapout_note_run(vs);
}

void vmrt_host_vmas(size_t* in_region, size_t* total) {
  rt::vma_count c = rt::maps_count(rt::region_base(), rt::region_base() + rt::region_size());
  if (in_region != nullptr) *in_region = c.in_range;
  if (total != nullptr) *total = c.total;
}

}  // extern "C"
