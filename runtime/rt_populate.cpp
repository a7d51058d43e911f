// rt_populate.cpp — pages populated in one call instead of faulted one by one.
#include "runtime/rt_populate.h"

#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <elf.h>
#include <link.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "runtime/region.h"
#include "runtime/rt_base.h"
#include "runtime/rt_stats.h"
#include "vm/vm_critical.h"
#include "vm/vm_sys.h"
#include "vm/vm_types.h"

// The fork data section's bounds (GNU ld defines them for a section named like a C
// identifier); weak, so a program linking the runtime without the section still links.
extern "C" __attribute__((weak, visibility("hidden"))) char __start_vmrt_fork_data[];
extern "C" __attribute__((weak, visibility("hidden"))) char __stop_vmrt_fork_data[];
// The end of the hot text (libc_shim/hot_text.ld): what a short-lived process runs, first in
// the text.  Weak: a link without the script populates all of the code.
extern "C" __attribute__((weak, visibility("hidden"))) char __vmrt_hot_text_end[];
extern "C" __attribute__((weak, visibility("hidden"))) char __vmrt_bss_end[];  // libc_shim/hot_data.ld
extern "C" __attribute__((weak, visibility("hidden"))) char __vmrt_boot_page[];  // libc_shim/hot_data.ld
extern "C" __attribute__((weak, visibility("hidden"))) char __vmrt_cold_rodata[];  // libc_shim/hot_data.ld

namespace vmrt::rt {
namespace {

// glibc's thread descriptor (struct pthread) at the thread pointer: 2304 bytes on x86-64
// glibc 2.36; the range below reaches past it by up to a page.
constexpr std::uintptr_t kThreadDescriptorBytes = 2304;
// The populated TLS range is at most this many pages (a layout that is not what the code
// expects populates nothing rather than something large).
constexpr std::uintptr_t kMaxTlsPages = 8;
// The writable data populated at load: .data and .bss, a few pages (a larger span means the
// linker put something else between them: populate nothing rather than all of it).
constexpr std::uintptr_t kMaxDataPages = 8;

VMRT_FORK_DATA std::uintptr_t g_tls_bytes;   // this object's PT_TLS memory size
VMRT_FORK_DATA std::uintptr_t g_ro_lo, g_ro_hi;  // its read-only data segment (page-aligned)
VMRT_FORK_DATA bool g_refused;               // the host refused the advice, or VMRT_POPULATE=0
// Thread pointer minus the address of this object's t_critical, the same in every thread
// (static TLS), taken at load: the fork handlers then find the block without reading the
// GOT's TLS offset, a page of relocations a fork would touch for nothing else.
VMRT_FORK_DATA std::intptr_t g_tls_off;

// The entry "VMRT_POPULATE=" as two words of eight characters (little-endian), compared
// byte by byte: immediates in the code, where getenv's argument was a string in this
// object's .rodata, read before the load-time populate maps it (a page fault in every
// process: perf record -e page-faults -d).
constexpr std::uint64_t chars8(const char (&s)[9]) {
  std::uint64_t w = 0;
  for (int i = 7; i >= 0; --i) w = w << 8 | static_cast<unsigned char>(s[i]);
  return w;
}
constexpr std::uint64_t kPopulateName[2] = {chars8("VMRT_POP"), chars8("ULATE=\0\0")};
constexpr unsigned kPopulateNameLen = 14;  // "VMRT_POPULATE=" (the second word's last two bytes unused)
static_assert((kPopulateName[1] >> 40 & 0xff) == '=');

// Does the environment entry e start with "VMRT_POPULATE="?  Stops at the first byte that
// differs, so never reads past e's terminating NUL.
bool is_populate_entry(const char* e) {
  for (unsigned i = 0; i < kPopulateNameLen; ++i)
    if (static_cast<unsigned char>(e[i]) != (kPopulateName[i / 8] >> (8 * (i % 8)) & 0xff)) return false;
  return true;
}

// VMRT_POPULATE=0: populate nothing.  The first such entry decides, as getenv(3) would.
bool turned_off() {
  for (char** e = environ; e != nullptr && *e != nullptr; ++e)
    if (is_populate_entry(*e)) return (*e)[kPopulateNameLen] == '0' && (*e)[kPopulateNameLen + 1] == '\0';
  return false;
}

inline std::uintptr_t page_down(std::uintptr_t a) { return a & ~(std::uintptr_t{PAGE_SIZE} - 1); }
inline std::uintptr_t page_up(std::uintptr_t a) { return page_down(a + PAGE_SIZE - 1); }

// Populate [lo, hi) (advice: MADV_POPULATE_WRITE or _READ) and count its pages unless told
// not to (counted already); false when the host refused the advice (EINVAL: too old).
VMRT_FORK_TEXT bool populate(std::uintptr_t lo, std::uintptr_t hi, int advice, bool count = true) {
  if (hi <= lo) return true;
  if (sys::inline_syscall(SYS_madvise, static_cast<long>(lo), static_cast<long>(hi - lo), advice) == 0) {
    if (count) rt_count(RC_FORK_POPULATED, (hi - lo) >> PAGE_SHIFT);
    return true;
  }
  return false;
}

// At load, before any other constructor of this object runs: one walk of its program
// headers records what the fork handlers populate (the TLS block's size, the read-only data)
// and where its code and read-only data end; the hot part of the code and the read-only
// data are then mapped in two calls (all of it in one, without the hot text's bounds).
__attribute__((constructor(101))) void populate_at_load() {
  const auto* eh = reinterpret_cast<const ElfW(Ehdr)*>(__ehdr_start);
  const auto* ph = reinterpret_cast<const ElfW(Phdr)*>(__ehdr_start + eh->e_phoff);
  const auto base = reinterpret_cast<std::uintptr_t>(__ehdr_start);  // this object's first PT_LOAD is at 0
  std::uintptr_t code_hi = 0;
  g_tls_off = static_cast<std::intptr_t>(reinterpret_cast<std::uintptr_t>(__builtin_thread_pointer()) -
                                         reinterpret_cast<std::uintptr_t>(&t_critical));
  std::uintptr_t unwind = 0;  // .eh_frame_hdr, then .eh_frame: after .rodata, in its segment
  std::uintptr_t data_lo = 0;  // the first page after RELRO: .data
  for (unsigned i = 0; i < eh->e_phnum; ++i) {
    if (ph[i].p_type == PT_TLS) g_tls_bytes = ph[i].p_memsz;
    if (ph[i].p_type == PT_GNU_RELRO) data_lo = page_up(base + ph[i].p_vaddr + ph[i].p_memsz);
    if (ph[i].p_type == PT_GNU_EH_FRAME) unwind = base + ph[i].p_vaddr;
    if (ph[i].p_type != PT_LOAD || (ph[i].p_flags & PF_W) != 0) continue;
    const std::uintptr_t end = page_up(base + ph[i].p_vaddr + ph[i].p_memsz);
    if (end > code_hi) code_hi = end;
    // The read-only data: the loadable segment that is neither writable nor executable and
    // does not start the file (the ELF header's own segment precedes the text).
    if (ph[i].p_flags == PF_R && ph[i].p_offset != 0) {
      g_ro_lo = page_down(base + ph[i].p_vaddr);
      g_ro_hi = end;
    }
  }
  // The unwind tables (16 of the segment's 26 pages) are read only by an unwinder, which
  // nothing on vmrt's paths runs: the read-only data populated, at load and in every fork
  // child, ends where they begin.
  if (unwind > g_ro_lo && unwind < g_ro_hi) g_ro_hi = page_up(unwind);
  // Nor the counter names (libc_shim/hot_data.ld), which only reports read.
  const auto cold = reinterpret_cast<std::uintptr_t>(__vmrt_cold_rodata);
  if (cold > g_ro_lo && cold < g_ro_hi) g_ro_hi = page_up(cold);
  if (turned_off()) {
    g_refused = true;
    return;
  }
  // The writable data every process's boot writes: .data (kmem's globals, the VM's zones,
  // the fork data page), .bss and the first page of the zones' first chunk (VMRT_BOOT_BSS,
  // right after .bss), in one call, where each of their 6 pages was a fault of its own (12-17
  // us here, against 4-5 a page populated).  .lbss, after that page, is left to fault: its
  // arrays are touched a page here and there.
  auto bss_hi = page_up(reinterpret_cast<std::uintptr_t>(__vmrt_bss_end));
  if (const auto boot = reinterpret_cast<std::uintptr_t>(__vmrt_boot_page); boot >= bss_hi - PAGE_SIZE && boot < bss_hi + PAGE_SIZE)
    bss_hi = page_down(boot) + PAGE_SIZE;
  if (data_lo != 0 && bss_hi > data_lo && bss_hi - data_lo <= kMaxDataPages * PAGE_SIZE)
    (void)sys::inline_syscall(SYS_madvise, static_cast<long>(data_lo), static_cast<long>(bss_hi - data_lo), MADV_POPULATE_WRITE);
  // The headers, the PLT and the hot text, then the read-only data: the cold text (paging,
  // guests, the C API, reports: 80 of the 94 pages) faults in when something runs it.
  const auto hot_hi = reinterpret_cast<std::uintptr_t>(__vmrt_hot_text_end);
  if (hot_hi > base && hot_hi < code_hi && g_ro_lo > hot_hi && g_ro_hi <= code_hi) {
    (void)sys::inline_syscall(SYS_madvise, static_cast<long>(base), static_cast<long>(hot_hi - base), MADV_POPULATE_READ);
    (void)sys::inline_syscall(SYS_madvise, static_cast<long>(g_ro_lo), static_cast<long>(g_ro_hi - g_ro_lo), MADV_POPULATE_READ);
    return;
  }
  (void)sys::inline_syscall(SYS_madvise, static_cast<long>(base), static_cast<long>(code_hi - base), MADV_POPULATE_READ);
}

}  // namespace

bool populate_heap(void* addr, std::size_t bytes) {
  if (g_refused) return false;
  const std::uintptr_t lo = page_down(reinterpret_cast<std::uintptr_t>(addr));
  const std::uintptr_t hi = page_up(reinterpret_cast<std::uintptr_t>(addr) + bytes);
  const int saved = errno;  // malloc leaves errno alone when it succeeds
  if (sys::inline_syscall(SYS_madvise, static_cast<long>(lo), static_cast<long>(hi - lo), MADV_POPULATE_WRITE) != 0) {
    if (errno == EINVAL) g_refused = true;  // a host before Linux 5.14: not asked again
    errno = saved;
    return false;
  }
  rt_count(RC_HEAP_POPULATED, static_cast<std::int64_t>((hi - lo) >> PAGE_SHIFT));
  return true;
}

// The calling thread's static TLS, page-rounded: false when it is not to be populated.
// x86-64: each module's block lies below the thread pointer, the thread descriptor at and
// above it.  t_critical is in this object's block, so the block lies within g_tls_bytes
// below it; libc's TLS and the descriptor follow up to the pointer.
VMRT_FORK_TEXT bool static_tls(std::uintptr_t* lo, std::uintptr_t* hi) {
  const std::uintptr_t tp = reinterpret_cast<std::uintptr_t>(__builtin_thread_pointer());
  const std::uintptr_t mine = tp - static_cast<std::uintptr_t>(g_tls_off);
  if (g_tls_bytes == 0 || g_tls_off <= 0) return false;
  *lo = page_down(mine > g_tls_bytes ? mine - g_tls_bytes : 0);
  *hi = page_up(tp + kThreadDescriptorBytes);
  // A thread whose stack (and so TLS) the program placed in vmrt's region is left alone:
  // populating there is a vmrt fault, which in the child no handler serves yet and in the
  // parent needs the VM lock this thread still holds.
  return *hi - *lo <= kMaxTlsPages * PAGE_SIZE && !region_contains(*lo) && !region_contains(*hi - 1);
}

VMRT_FORK_TEXT std::uint32_t fork_populate_quiet_pages() {
  std::uintptr_t lo, hi;
  return !g_refused && static_tls(&lo, &hi) ? static_cast<std::uint32_t>((hi - lo) >> PAGE_SHIFT) : 0;
}

VMRT_FORK_TEXT void fork_populate_written(fork_side side) {
  if (g_refused) return;
  if (side != fork_side::quiet_parent && __start_vmrt_fork_data != nullptr && __stop_vmrt_fork_data != nullptr &&
      !populate(page_down(reinterpret_cast<std::uintptr_t>(__start_vmrt_fork_data)),
                page_up(reinterpret_cast<std::uintptr_t>(__stop_vmrt_fork_data)), MADV_POPULATE_WRITE)) {
    g_refused = true;
    return;
  }
  if (side == fork_side::child) (void)populate(g_ro_lo, g_ro_hi, MADV_POPULATE_READ);
  std::uintptr_t lo, hi;
  // The quiet parent's pages were counted before the fork, in its TLS (rt_stats.h,
  // pending_forks): the counter is on the fork data page, which that parent does not write.
  if (static_tls(&lo, &hi)) (void)populate(lo, hi, MADV_POPULATE_WRITE, side != fork_side::quiet_parent);
}

}  // namespace vmrt::rt
