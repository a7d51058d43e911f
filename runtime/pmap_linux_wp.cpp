// pmap_linux_wp.cpp — write protection through the userfaultfd: copy-on-write pages of the
// API's vmspaces, and the frames a host fork shares (pmap_linux_impl.h lists the pmap's
// other files).
#include "runtime/pmap_linux_impl.h"

#include <cerrno>
#include <cstring>
#include <linux/userfaultfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>

#include "vm/vm_fds.h"
#include "vm/vm_tables.h"

namespace vmrt::rt::pml {

// A resident page of the API's vmspaces (WK_API windows) that its entry lets be written but
// the VM maps read-only (copy-on-write after vmrt_vmspace_fork, a clean page whose writes are
// tracked) is, under userfaultfd with write protection on shmem, mapped writable on the host
// with its PTE write-protected through the userfaultfd instead of mprotect'ed read-only: a
// write then waits in the handler thread, which runs vm_fault (the copy) and maps the result,
// so a kernel-mode write (read(2) into the page) completes where mprotect gave EFAULT.  The
// cost is on user-mode writes to such pages: a handler round trip (~50 us here, DESIGN.md)
// instead of an in-thread SIGSEGV (~3 us).  The process's own vmspace keeps mprotect: its
// libc calls are not where vmspace_fork's copy-on-write happens.
//   g_wp[p] = 1: the page's VMA is registered for write protection and its PTE may carry the
//   uffd-wp bit.  Cleared when the VMA is replaced (enter of other frames, a reservation,
//   a window reset) or the protection is removed (wp_clear).
std::uint8_t* g_wp VMRT_GUARDED_BY(g_lock);
bool g_uffd_wp VMRT_GUARDED_BY(g_lock);
std::size_t g_wp_marks VMRT_GUARDED_BY(g_lock);
std::size_t g_wp_lo VMRT_GUARDED_BY(g_lock) = SIZE_MAX, g_wp_hi VMRT_GUARDED_BY(g_lock);

namespace {

void wp_mark(std::size_t p) VMRT_REQUIRES(g_lock) {
  g_wp_marks += g_wp[p] == 0;
  g_wp[p] = 1;
  if (p < g_wp_lo) g_wp_lo = p;
  if (p + 1 > g_wp_hi) g_wp_hi = p + 1;
}

}  // namespace

bool wp_wanted(std::size_t i, std::size_t n, vm_prot_t prot) VMRT_REQUIRES(g_lock) {
  if (!g_uffd_wp || g_wp == nullptr || prot == VM_PROT_NONE || (prot & VM_PROT_WRITE) != 0) return false;
  window* w = window_lookup(va_of(i));
  if (w == nullptr || w->kind != WK_API) return false;
  for (std::size_t p = i; p < i + n; ++p)
    if ((g_bits[p] & B_RESV & VM_PROT_WRITE) == 0) return false;
  return true;
}

int wp_ioctl(std::size_t i, std::size_t n, bool protect) {
  uffdio_writeprotect wp{};
  wp.range.start = va_of(i);
  wp.range.len = n << PAGE_SHIFT;
  // Clearing never wakes a writer waiting on the range: the handler wakes it once the page
  // has its new host protection (a wake here let a write refused by the VM through before
  // pmap_linux_wp_refuse's mprotect: cow_demo's write to a read-only page succeeded in 8
  // runs of 20).
  wp.mode = protect ? UFFDIO_WRITEPROTECT_MODE_WP : UFFDIO_WRITEPROTECT_MODE_DONTWAKE;
  return vm_fd_ioctl(g_uffd.load(std::memory_order_relaxed), UFFDIO_WRITEPROTECT, &wp);
}

bool wp_register_protect(std::size_t i, std::size_t n) VMRT_REQUIRES(g_lock) {
  uffdio_register reg{};
  reg.range.start = va_of(i);
  reg.range.len = n << PAGE_SHIFT;
  reg.mode = UFFDIO_REGISTER_MODE_WP | (tracking() ? UFFDIO_REGISTER_MODE_MISSING | UFFDIO_REGISTER_MODE_MINOR : 0);
  if (vm_fd_ioctl(g_uffd.load(std::memory_order_relaxed), UFFDIO_REGISTER, &reg) != 0) return false;
  if (wp_ioctl(i, n, true) != 0) return false;
  for (std::size_t p = i; p < i + n; ++p) wp_mark(p);
  rt_count(RC_UFFD_WP_PAGES, static_cast<std::int64_t>(n));
  return true;
}

// Map resident pages [i, i + n) as `prot` (read-only) with writes caught by the userfaultfd:
// registered for write protection (keeping missing and minor faults under tracking), PTEs
// write-protected, then the VMA opened for writing (the host keeps a write-protected PTE
// read-only through mprotect).  False, nothing marked, when the host refused: the caller
// mprotects as before.  => pmap lock held.
bool wp_apply(std::size_t i, std::size_t n, vm_prot_t prot) VMRT_REQUIRES(g_lock) {
  if (!wp_register_protect(i, n)) return false;
  int rc = vmrt::sys::mprotect(reinterpret_cast<void*>(va_of(i)), n << PAGE_SHIFT, prot | VM_PROT_WRITE);
  rt_count(RC_HOST_MPROTECT);
  return rc == 0;
}

namespace {

// Pages [i, i + n) keep their VMA and lose any write protection through the userfaultfd.
//  => pmap lock held.
void wp_clear(std::size_t i, std::size_t n) VMRT_REQUIRES(g_lock) {
  if (g_wp_marks == 0) return;
  for (std::size_t p = i; p < i + n;) {
    if (g_wp[p] == 0) {
      ++p;
      continue;
    }
    std::size_t q = p;
    while (q < i + n && g_wp[q] != 0) g_wp[q++] = 0;
    (void)wp_ioctl(p, q - p, false);
    p = q;
  }
}

}  // namespace

void wp_forget(std::size_t i, std::size_t n) VMRT_REQUIRES(g_lock) {
  if (g_wp_marks != 0) std::memset(g_wp + i, 0, n);
}

// Give resident pages [i, i + n) the host protection `prot`: write-protected through the
// userfaultfd where wanted, else mprotect (a write-protected PTE stays so through mprotect:
// raising to writable clears the write protection first).  0, or mprotect's errno.
//  => pmap lock held.
int protect_resident(std::size_t i, std::size_t n, vm_prot_t prot) VMRT_REQUIRES(g_lock) {
  if (wp_wanted(i, n, prot) && wp_apply(i, n, prot)) return 0;
  if ((prot & VM_PROT_WRITE) != 0) wp_clear(i, n);
  int rc = vmrt::sys::mprotect(reinterpret_cast<void*>(va_of(i)), n << PAGE_SHIFT, prot);
  rt_count(RC_HOST_MPROTECT);
  return rc == 0 ? 0 : errno;
}

}  // namespace vmrt::rt::pml

namespace vmrt::rt {

using namespace pml;

void pmap_linux_set_uffd_wp(bool wp) {
  spin_guard g(g_lock);
  if (wp && g_wp == nullptr) {
    void* m = vmrt::sys::table_map(g_npages);
    if (m == nullptr) return;  // no write protection: mprotect as before
    g_wp = static_cast<std::uint8_t*>(m);
  }
  g_uffd_wp = wp && g_wp != nullptr;
}

void pmap_linux_wp_refuse(vaddr_t va) {
  if (!region_contains(va)) return;
  spin_guard g(g_lock);
  std::size_t p = idx_of(va);
  if (g_wp == nullptr || g_wp[p] == 0) return;
  wp_clear(p, 1);
  (void)vmrt::sys::mprotect(reinterpret_cast<void*>(va_of(p)), PAGE_SIZE, mprot(g_bits[p]));
  rt_count(RC_HOST_MPROTECT);
}

}  // namespace vmrt::rt
