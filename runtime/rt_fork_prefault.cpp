// rt_fork_prefault.cpp — the pages glibc's fork touches, resident before vmrt's locks
// (see rt_fork_prefault.h).
#include "runtime/rt_fork_prefault.h"

#include <cstdint>
#include <cstdio>
#include <elf.h>
#include <link.h>

#include "runtime/pmap_linux.h"
#include "runtime/rt_stats.h"

// libc's list of FILEs (struct _IO_FILE_plus*, whose first member is the FILE), guarded by
// _IO_list_lock; all three are exported by glibc, not declared in its headers.
extern "C" FILE* _IO_list_all;
extern "C" void _IO_list_lock();
extern "C" void _IO_list_unlock();

namespace vmrt::rt {
namespace {

// libc's writable data after relocation (.data and .bss, RELRO excluded), found once.
struct data_range {
  std::uintptr_t lo, hi;
};
constexpr std::size_t kMaxRanges = 4;
data_range g_libc_data[kMaxRanges];
std::size_t g_libc_ranges;
bool g_libc_found;

int find_libc(dl_phdr_info* info, std::size_t, void*) {
  const auto marker = reinterpret_cast<std::uintptr_t>(&_IO_list_all);
  bool ours = false;
  std::uintptr_t relro_lo = 0, relro_hi = 0;
  for (int i = 0; i < info->dlpi_phnum; ++i) {
    const ElfW(Phdr)& ph = info->dlpi_phdr[i];
    std::uintptr_t lo = info->dlpi_addr + ph.p_vaddr, hi = lo + ph.p_memsz;
    if (ph.p_type == PT_LOAD && lo <= marker && marker < hi) ours = true;
    if (ph.p_type == PT_GNU_RELRO) relro_lo = lo, relro_hi = hi;
  }
  if (!ours) return 0;
  for (int i = 0; i < info->dlpi_phnum && g_libc_ranges < kMaxRanges; ++i) {
    const ElfW(Phdr)& ph = info->dlpi_phdr[i];
    if (ph.p_type != PT_LOAD || (ph.p_flags & PF_W) == 0) continue;
    std::uintptr_t lo = info->dlpi_addr + ph.p_vaddr, hi = lo + ph.p_memsz;
    if (relro_lo <= lo && lo < relro_hi) lo = relro_hi;  // read-only after relocation
    lo = (lo + sizeof(void*) - 1) & ~(sizeof(void*) - 1);
    if (lo < hi) g_libc_data[g_libc_ranges++] = {lo, hi};
  }
  return 1;
}

// Make the page of va resident and writable as a program store would (the trap backend
// serves the fault), and remember it.  Only pages whose map entry allows writes: anything
// else is no object of libc's (a stale pointer into freed memory given back, say).  The
// store is made even where the pmap says the page is mapped: in a fork child its host PTE
// is missing until the first access (the child's frame mappings are new VMAs).
void touch(vaddr_t va, fork_pages* out, std::size_t* faults) {
  if (va < out->lo || va >= out->hi || (pmap_linux_reservation(va) & VM_PROT_WRITE) == 0) return;
  vaddr_t page = trunc_page(va);
  for (std::size_t i = 0; i < out->n; ++i)
    if (out->page[i] == page) return;
  if (!pmap_linux_ready(page, VM_PROT_WRITE)) ++*faults;
  // A locked RMW of 0: a store that cannot lose another thread's concurrent store.
  __atomic_fetch_or(reinterpret_cast<volatile char*>(va), 0, __ATOMIC_RELAXED);
  if (out->n < fork_pages::kMax) out->page[out->n++] = page;
}

// The span of an object whose size is not known (the NSS state is a few hundred bytes):
// its first bytes and these many more, in case it crosses a page.
constexpr std::size_t kObjectSpan = 512;

}  // namespace

void fork_prefault(vaddr_t lo, vaddr_t hi, fork_pages* out) {
  out->lo = lo;
  out->hi = hi;
  out->n = 0;
  if (!g_libc_found) {
    g_libc_found = true;
    dl_iterate_phdr(find_libc, nullptr);
  }
  std::size_t faults = 0;
  // Everything libc's own data points at in vmrt's memory: the NSS state among it.
  for (std::size_t r = 0; r < g_libc_ranges; ++r)
    for (std::uintptr_t w = g_libc_data[r].lo; w + sizeof(void*) <= g_libc_data[r].hi; w += sizeof(void*)) {
      vaddr_t v = *reinterpret_cast<const vaddr_t*>(w);
      if (v < lo || v >= hi) continue;
      touch(v, out, &faults);
      touch(v + kObjectSpan - 1, out, &faults);
    }
  // Each FILE and its lock (the child's glibc resets every lock on the list).
  _IO_list_lock();
  for (FILE* f = _IO_list_all; f != nullptr; f = f->_chain) {
    touch(reinterpret_cast<vaddr_t>(f), out, &faults);
    touch(reinterpret_cast<vaddr_t>(f) + sizeof(FILE) - 1, out, &faults);
    touch(reinterpret_cast<vaddr_t>(f->_lock), out, &faults);
  }
  _IO_list_unlock();
  if (faults != 0) rt_count(RC_FORK_PREFAULTS, static_cast<std::int64_t>(faults));
}

bool fork_prefault_holds(const fork_pages& pages) {
  for (std::size_t i = 0; i < pages.n; ++i)
    if (!pmap_linux_ready(pages.page[i], VM_PROT_WRITE)) return false;
  return true;
}

}  // namespace vmrt::rt
