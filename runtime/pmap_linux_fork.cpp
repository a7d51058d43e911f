// pmap_linux_fork.cpp — a host fork of a process whose frames the pmap maps: frames shared
// copy-on-write with the child, the child's registrations and its first faults
// (pmap_linux_impl.h).
#include "runtime/pmap_linux_impl.h"

#include <cerrno>
#include <linux/userfaultfd.h>
#include <sys/ioctl.h>

#include "runtime/physmem.h"
#include "runtime/physmem_cow.h"
#include "runtime/rt_maps.h"
#include "vm/vm_fds.h"
#include "vm/vm_fork_store.h"
#include "vm/vm_lock.h"

namespace vmrt::rt::pml {

// A fork child whose frame mappings were replaced (pmap_linux_fork_child): every mapped page
// starts without a host PTE, and a first touch of one whose frame is already in the child's
// memfd (copied at the fork, or pulled) is a minor fault served by the handler thread, a
// wake-up of another thread for every page (bash's `$(echo)` child took ~30, for pages of
// the heap's first megabyte, and each cost more than the rest of its work).
bool g_replaced;

namespace {

// Pages a fault in a copy-on-write fork child pulls at once.
constexpr std::size_t kCowPullAround = 16;
// Pages on each side of a fork child's minor fault mapped with it.
constexpr std::size_t kContinueAround = 32;

// May page q, mapped in the fork child, get its host PTE now?  Its frame is in the child's
// memfd (not pending), ts_referenced has not taken it (Z_NONE), and it is mapped.
bool continue_ok(std::size_t q) VMRT_REQUIRES(g_lock) {
  return (g_bits[q] & B_MAPPED) != 0 && g_zap[q] == Z_NONE && !physmem_cow_pending(g_pte[q].frame1 - 1);
}

// Map [i, j) from the page cache in one call, all with write-protection mode `wp`; a page
// already mapped (EEXIST) is stepped over.  Best effort: a refusal leaves the rest to faults.
void continue_run(std::size_t i, std::size_t j, bool wp) {
  while (i < j) {
    uffdio_continue c{};
    c.range.start = va_of(i);
    c.range.len = (j - i) << PAGE_SHIFT;
    c.mode = wp ? UFFDIO_CONTINUE_MODE_WP : 0;
    if (vm_fd_ioctl(g_uffd.load(std::memory_order_relaxed), UFFDIO_CONTINUE, &c) == 0) return;
    if (errno != EEXIST || c.mapped < 0) return;
    i += (static_cast<std::size_t>(c.mapped) >> PAGE_SHIFT) + 1;
  }
}

}  // namespace

// Fork child, a fault at page p whose frame is pending: pull it and the pages after it in its
// frame run (resident, not zapped), and map those neighbours' PTEs at once under tracking
// (their first access would otherwise be a minor fault each).  => pmap lock held.
void cow_pull_around(std::size_t p) VMRT_REQUIRES(g_lock) {
  std::size_t q = p + 1;
  while (q < g_npages && q - p < kCowPullAround && (g_bits[q] & B_MAPPED) != 0 && g_zap[q] == Z_NONE &&
         g_pte[q].frame1 == g_pte[q - 1].frame1 + 1 && physmem_cow_pending(g_pte[q].frame1 - 1))
    ++q;
  physmem_cow_touch(g_pte[p].frame1 - 1, q - p, false);
  if (q > p + 1 && tracking()) {
    uffdio_continue c{};
    c.range.start = va_of(p + 1);
    c.range.len = (q - p - 1) << PAGE_SHIFT;
    c.mode = 0;
    (void)vm_fd_ioctl(g_uffd.load(std::memory_order_relaxed), UFFDIO_CONTINUE, &c);  // EEXIST: mapped already
  }
}

// After the fault at p: the fork child's neighbours of p that continue_ok allows, mapped in
// runs (the program touches its heap's first pages together).  => pmap lock held.
void continue_around(std::size_t p) VMRT_REQUIRES(g_lock) {
  const std::size_t lo = p > kContinueAround ? p - kContinueAround : 0;
  const std::size_t hi = p + kContinueAround + 1 < g_npages ? p + kContinueAround + 1 : g_npages;
  std::size_t i = lo;
  while (i < hi) {
    if (i == p || !continue_ok(i)) {
      ++i;
      continue;
    }
    const bool wp = wp_marked(i);
    std::size_t j = i + 1;
    while (j < hi && j != p && continue_ok(j) && wp_marked(j) == wp) ++j;
    continue_run(i, j, wp);
    rt_count(RC_UFFD_CONTINUED_AROUND, j - i);
    i = j;
  }
}

namespace {

void uffd_register(int uffd, vaddr_t lo, vaddr_t hi) {
  uffdio_register reg{};
  reg.range.start = lo;
  reg.range.len = hi - lo;
  reg.mode = UFFDIO_REGISTER_MODE_MISSING;
  if (vm_fd_ioctl(uffd, UFFDIO_REGISTER, &reg) != 0) say("vmrt: fork child: UFFDIO_REGISTER failed\n");
}

// A fork child's private anonymous region mapping: registered again, except host memory.
// Under tracking, frame mappings too (the parent's physmem mappings were replaced by the
// child's, unregistered): they may be zapped or stale.  Reads the tables without the pmap
// lock: the fork child's only thread, before it starts any.
void rereg_line(const maps_line& l, void* arg) VMRT_NO_THREAD_SAFETY_ANALYSIS {
  int uffd = *static_cast<int*>(arg);
  if (!region_contains(l.lo)) return;
  if (l.shared && l.inode != 0 && (tracking() || g_cow_live.load(std::memory_order_acquire))) {
    std::size_t p = idx_of(l.lo), e = idx_of(l.hi);
    bool frames = true;
    for (std::size_t q = p; q < e && frames; ++q) frames = hostmem_of(q) == 0;
    if (!frames) return;
    if (tracking()) {
      register_frames(p, e - p);
    } else {
      // Frames a copy-on-write fork left in the parent's memfd are holes here: a first touch
      // is a missing page the handler pulls (pmap_linux_uffd_resolve).
      uffd_register(uffd, l.lo, l.hi);
    }
    return;
  }
  if (l.inode != 0 || l.shared || l.prot == PROT_NONE) return;
  // One registration per run of pages that are not host memory.
  std::size_t p = idx_of(l.lo), e = idx_of(l.hi);
  while (p < e) {
    std::size_t q = p + 1;
    bool host = hostmem_of(p) != 0;
    while (q < e && (hostmem_of(q) != 0) == host) ++q;
    if (!host) uffd_register(uffd, va_of(p), va_of(q));
    p = q;
  }
}

}  // namespace

}  // namespace vmrt::rt::pml

namespace vmrt::rt {

using namespace pml;

void pmap_linux_reregister() {
  physmem_cow_child_handover();  // its registrations go with it; the new userfaultfd's follow
  int uffd = g_uffd.load(std::memory_order_acquire);
  if (uffd < 0) return;
  maps_scan(rereg_line, &uffd);
  // The child's mappings came back writable (physmem_fork_child maps the new memfd with the
  // host's protection) and without the parent's write protection: protect again.
  spin_guard g(g_lock);
  if (g_wp_marks == 0) return;
  for (std::size_t p = g_wp_lo; p < g_wp_hi;) {
    if (g_wp[p] == 0) {
      ++p;
      continue;
    }
    std::size_t q = p;
    while (q < g_wp_hi && g_wp[q] != 0 && (g_bits[q] & B_MAPPED) != 0) g_wp[q++] = 0;
    if (q == p) {  // stale or zapped: its next enter maps it again
      g_wp[p++] = 0;
      continue;
    }
    (void)protect_resident(p, q - p, mprot(g_bits[p]));
    p = q;
  }
}

// ---- copy-on-write host fork of frames ---------------------------------------------------

namespace {

// Around the forking thread's pointer: its static TLS below (glibc's and every module's
// initial-exec blocks), its descriptor above.
constexpr vaddr_t kCowTlsBelow = vaddr_t{256} << 10;
constexpr vaddr_t kCowTlsAbove = vaddr_t{16} << 10;

// Pages a write-protect fault pushes at once: the faulting page and those after it in its
// frame run (a program writing a buffer after a fork meets its pages in order).
constexpr std::size_t kCowBatch = 16;

struct boot_arg {
  int fd;
  bool ok;
};
// A frame mapping of the fork child's region, for pmap_linux_cow_register_boot.  Reads the
// tables without the pmap lock: the child's only thread, in its set-up.
void boot_line(const maps_line& l, void* arg) VMRT_NO_THREAD_SAFETY_ANALYSIS {
  boot_arg* a = static_cast<boot_arg*>(arg);
  if (!l.shared || l.inode == 0 || !region_contains(l.lo)) return;
  std::size_t p = idx_of(l.lo), e = idx_of(l.hi);
  for (std::size_t q = p; q < e; ++q)
    if (hostmem_of(q) != 0) return;
  uffdio_register reg{};
  reg.range.start = l.lo;
  reg.range.len = l.hi - l.lo;
  reg.mode = UFFDIO_REGISTER_MODE_MISSING;
  if (vm_fd_ioctl(a->fd, UFFDIO_REGISTER, &reg) != 0) a->ok = false;
}

}  // namespace

// Set once at trap start, read without the lock (fork set-up holds it; the values never
// change after): not for the analysis.
bool pmap_linux_cow_capable() VMRT_NO_THREAD_SAFETY_ANALYSIS {
  return g_uffd_wp && g_wp != nullptr && g_uffd.load(std::memory_order_relaxed) >= 0;
}

bool pmap_linux_cow_protect(vaddr_t heap_lo, vaddr_t heap_hi) VMRT_REQUIRES(g_vm_lock) {
  pmap_lock_held_by_fork();
  bool ok = true;
  // The forking thread's static TLS and descriptor, when the program placed its stack in
  // vmrt's memory: written by this very code (errno) and by the kernel (rseq) until the fork
  // is done, so given to the child now and never write-protected.
  const vaddr_t tp = trunc_page(reinterpret_cast<vaddr_t>(__builtin_thread_pointer()));
  const vaddr_t tls_lo = tp > kCowTlsBelow ? tp - kCowTlsBelow : 0, tls_hi = tp + kCowTlsAbove;
  // Shared copy-on-write: writable heap pages that are not wired.  Everything else resident
  // goes to the child now (pushed): the VM's own memory; wired pages (the kernel may write
  // them with no fault to wait in: an alternate stack or thread descriptor kept held,
  // rt_vslock_keep.h); and the program's own mappings, among them glibc's thread stacks, whose
  // descriptor the kernel clears at the thread's exit, when no userfaultfd handler is waited
  // for (a write-protected one would leave pthread_join asleep).
  auto shared = [heap_lo, heap_hi, tls_lo, tls_hi](std::size_t q) VMRT_REQUIRES(g_vm_lock, g_lock) {
    vaddr_t va = va_of(q);
    return va >= heap_lo && va < heap_hi && (va < tls_lo || va >= tls_hi) &&
           (mprot(g_bits[q]) & VM_PROT_WRITE) != 0 && vm_page_from_frame(g_pte[q].frame1 - 1)->wire_count == 0;
  };
  for_each_resident_run(0, g_npages, [&ok, &shared](std::size_t i, std::size_t j) VMRT_REQUIRES(g_lock) {
    VM_LOCK_ASSERT();  // the caller's, which the walk's lambda cannot inherit
    std::size_t p = i;
    while (p < j && ok) {
      if (!shared(p)) {
        physmem_cow_touch(g_pte[p].frame1 - 1, 1, true);
        ++p;
        continue;
      }
      std::size_t q = p + 1;
      while (q < j && shared(q)) ++q;
      ok = wp_register_protect(p, q - p);  // the child pulls, the parent pushes on a write
      p = q;
    }
  });
  return ok;
}

void pmap_linux_cow_release(const vaddr_t* pages, std::size_t n) {
  pmap_lock_held_by_fork();
  for (std::size_t k = 0; k < n; ++k) {
    if (!region_contains(pages[k])) continue;
    std::size_t p = idx_of(pages[k]);
    if ((g_bits[p] & B_MAPPED) == 0) continue;
    physmem_cow_touch(g_pte[p].frame1 - 1, 1, true);
    if (g_wp != nullptr && g_wp[p] != 0 && (mprot(g_bits[p]) & VM_PROT_WRITE) != 0) {
      g_wp[p] = 0;
      (void)wp_ioctl(p, 1, false);
    }
  }
}

bool pmap_linux_cow_write(vaddr_t va) {
  if (!region_contains(va)) return false;
  spin_guard g(g_lock);
  std::size_t p = idx_of(va);
  std::uint8_t b = g_bits[p];
  if ((b & B_MAPPED) == 0) return false;
  vm_prot_t prot = mprot(b);
  bool vm_allows = (prot & VM_PROT_WRITE) != 0;
  if (!vm_allows) {
    // The VM's own copy-on-write (a read-only entry of a writable map entry): vm_fault
    // decides; a pending frame is pushed before the VM copies or reuses it.
    if (physmem_cow_pending(g_pte[p].frame1 - 1)) physmem_cow_touch(g_pte[p].frame1 - 1, 1, true);
    return false;
  }
  if (g_wp == nullptr || g_wp[p] == 0) return false;
  // The faulting page and the following pages of its frame run that are write-protected
  // for the fork alone: pushed and opened together.
  std::size_t q = p + 1;
  while (q < g_npages && q - p < kCowBatch && (g_bits[q] & B_MAPPED) != 0 && mprot(g_bits[q]) == prot &&
         g_pte[q].frame1 == g_pte[q - 1].frame1 + 1 && g_wp[q] != 0)
    ++q;
  physmem_cow_touch(g_pte[p].frame1 - 1, q - p, true);
  for (std::size_t k = p; k < q; ++k) g_wp[k] = 0;
  (void)wp_ioctl(p, q - p, false);
  rt_count(RC_COW_WP_FAULTS);
  return true;
}

// Lock-free: the fork child's only thread, in a SIGBUS handler (pmap_linux.h).
bool pmap_linux_cow_fault(vaddr_t va) VMRT_NO_THREAD_SAFETY_ANALYSIS {
  if (!region_contains(va)) return false;
  std::size_t p = idx_of(va);
  std::uint32_t f1 = g_pte[p].frame1;  // resident or stale: the frame its VMA maps
  if (f1 == 0) return false;
  physmem_cow_touch(f1 - 1, 1, false);
  // A frame the child already owned (claimed, or released) may be a hole: give it a page.
  __atomic_fetch_or(reinterpret_cast<volatile char*>(physmem_frame(f1 - 1)), 0, __ATOMIC_RELAXED);
  return true;
}

bool pmap_linux_cow_register_boot(int fd) {
  boot_arg a{fd, true};
  return maps_scan(boot_line, &a) && a.ok;
}

// The pmap lock across a host fork: taken before, let go in the parent, reset in the child
// (taken in one function and let go in another: not for the analysis to follow).
VMRT_FORK_PARENT_TEXT void pmap_linux_fork_prepare() VMRT_NO_THREAD_SAFETY_ANALYSIS { g_lock.lock(); }
VMRT_FORK_PARENT_TEXT void pmap_linux_fork_parent() VMRT_NO_THREAD_SAFETY_ANALYSIS { g_lock.unlock(); }
VMRT_FORK_CHILD_TEXT void pmap_linux_fork_child(bool replaced) {
  g_lock.reset();
  fork_store(g_replaced, replaced);
}

}  // namespace vmrt::rt
