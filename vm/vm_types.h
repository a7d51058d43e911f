// vm_types.h — the vocabulary of the machine-independent VM.
//
// Everything here is plain data: address and index types, page arithmetic, the
// status enum every VM call returns (Mach's kern_return_t), protections,
// inheritance and advice.  Errors are values: nothing in vm/, kmem/, runtime/ or
// libc_shim/ throws; a kern_return_t is turned into an errno exactly once, at the
// API edge (runtime/vmrt_api.cpp, vmrt_errno()).
#pragma once

#include <cstddef>
#include <cstdint>

namespace vmrt {

using vaddr_t = std::uintptr_t;     // an address in the reserved guest region
using vsize_t = std::size_t;        // a length in bytes
using vm_pindex_t = std::uint64_t;  // a page index inside a vm_object
using vm_ooffset_t = std::uint64_t; // a byte offset inside a vm_object
using frame_t = std::uint32_t;      // a physical frame number inside physmem

inline constexpr unsigned PAGE_SHIFT = 12;
inline constexpr vsize_t PAGE_SIZE = vsize_t{1} << PAGE_SHIFT;
inline constexpr vsize_t PAGE_MASK = PAGE_SIZE - 1;

constexpr vaddr_t trunc_page(vaddr_t a) { return a & ~static_cast<vaddr_t>(PAGE_MASK); }
constexpr vaddr_t round_page(vaddr_t a) { return (a + PAGE_MASK) & ~static_cast<vaddr_t>(PAGE_MASK); }
constexpr vm_pindex_t atop(vaddr_t a) { return a >> PAGE_SHIFT; }
constexpr vaddr_t ptoa(vm_pindex_t p) { return static_cast<vaddr_t>(p) << PAGE_SHIFT; }
constexpr bool page_aligned(vaddr_t a) { return (a & PAGE_MASK) == 0; }

// Host fork: every page of private memory a process writes after fork() is a copy-on-write
// fault (in the parent while the child lives, and in the child), and on these guests even a
// page that faults in neither process costs its first access after a fork (the hypervisor's
// shadow page tables: bench/fault_cost, "fork read").  So what the fork handlers write
// (locks taken in prepare and released or reset after, fork bookkeeping, the counters they
// bump) and what they and a shell child's calls read is placed in one output section, the
// fork data page (libc_shim/fork_data.ld); and the code is three runs the hot text script
// (libc_shim/hot_text.ld) lays out in this order: what only a child runs, what both sides
// and a shell child's calls run (close, sigaction, read, write, the exit path), then the
// rest of what a shell's fork child was seen to run (malloc, free, their slow paths), then
// what only the forking parent runs.  Measured
// with `perf record` (page-faults -d, cpu-clock) on bash's $(echo) loop and counted by the
// scenarios fork_faults and fork_pages (README, "Faults per fork and exec").
#define VMRT_FORK_DATA __attribute__((section("vmrt_fork_data")))
#define VMRT_FORK_CHILD_TEXT __attribute__((section(".text.sorted.vmrt_fork_1_child")))
#define VMRT_FORK_TEXT __attribute__((section(".text.sorted.vmrt_fork_2_both")))
#define VMRT_FORK_PARENT_TEXT __attribute__((section(".text.sorted.vmrt_fork_3_parent")))

// Exec: every page of this object's writable data that boot writes is a page fault in
// every process (~14 us here).  Zero-filled arrays of a page or more (buffers, tables sized
// for the worst case) go to .lbss, which the linker places after .bss, so that the small
// variables boot writes pack into a few pages of .bss instead of lying between the arrays
// (13 pages written at boot, 4 after: perf record -e page-faults -d of a one-malloc
// program).  Zero-initialised variables only; the section is no larger in the file.
#define VMRT_LARGE_BSS __attribute__((section(".lbss.vmrt")))
// Small zero-initialised variables a process's boot never writes (fault-injection state,
// the program's SIGSEGV handlers), out of .bss so that the ones boot does write fit in its
// first two pages: each page of .bss written is a fault in every process (scenario
// exec_boot).
#define VMRT_COLD_BSS VMRT_LARGE_BSS
// The one zero-filled array whose first page every process's boot writes (the VM zones'
// first chunk, vm/vm_zone.cpp): the linker places it first after .bss, and the load-time
// populate makes that page the process's own together with .data and .bss (libc_shim/
// hot_data.ld, runtime/rt_populate.cpp), where it was a fault of its own.  One object: only
// the section's first page is populated.
#define VMRT_BOOT_BSS __attribute__((section(".lbss.vmrt_boot")))

// A name held in place in a constexpr table (counter names, option names, choices).  A
// table of pointers to string literals is relocated by the loader in every process: each of
// its pages is a copy-on-write fault of the shim's RELRO segment before main runs (three
// pages of names and the GOT, where the GOT alone fits one).  A table of vm_name is plain
// read-only data the loader never writes.  A literal of N or more characters does not
// compile; an empty name is the table's "none".
template <std::size_t N>
struct vm_name {
  char s[N];
  constexpr operator const char*() const { return s; }
  constexpr bool empty() const { return s[0] == '\0'; }
};

static_assert(PAGE_SIZE == 4096, "vmrt assumes the x86-64 base page size");
static_assert(trunc_page(4097) == 4096 && round_page(4097) == 8192 && atop(8192) == 2);

// Status of every VM operation (Mach's KERN_* codes, plus the few vmrt needs).
enum kern_return_t : int {
  KERN_SUCCESS = 0,
  KERN_INVALID_ADDRESS,     // no map entry covers the address / range outside the map
  KERN_PROTECTION_FAILURE,  // entry exists, access not allowed by its protection
  KERN_NO_SPACE,            // no free range of the requested size in the map
  KERN_INVALID_ARGUMENT,    // unaligned address, zero length, bad flag combination
  KERN_RESOURCE_SHORTAGE,   // out of frames, zone items, host VMAs, or a limit hit
  KERN_NO_ACCESS,           // request exceeds max_protection
  KERN_MEMORY_ERROR,        // pager I/O failed, checksum mismatch
  KERN_ALREADY_EXISTS,      // MAP_FIXED_NOREPLACE over an existing mapping
  KERN_NOT_SUPPORTED,       // valid request that this build cannot serve
  KERN_FAILURE,             // anything else; always with a message in the trace
  KERN_RESTART,             // inside the VM only: the operation slept and must look again
  KERN_PAGER_ABSENT,        // the object's pager has no such page: a file page past the file's end
                            // (the program gets SIGBUS with BUS_ADRERR, as from Linux)
  KERN_RETURN_COUNT
};

// Name of a status, for messages ("KERN_PROTECTION_FAILURE").
const char* kern_return_name(kern_return_t kr);

// Protections use the host's PROT_* bit values so the pmap can pass them through.
using vm_prot_t = std::uint8_t;
inline constexpr vm_prot_t VM_PROT_NONE = 0;
inline constexpr vm_prot_t VM_PROT_READ = 1;
inline constexpr vm_prot_t VM_PROT_WRITE = 2;
inline constexpr vm_prot_t VM_PROT_EXECUTE = 4;
inline constexpr vm_prot_t VM_PROT_DEFAULT = VM_PROT_READ | VM_PROT_WRITE;
inline constexpr vm_prot_t VM_PROT_ALL = VM_PROT_READ | VM_PROT_WRITE | VM_PROT_EXECUTE;

// What a child vmspace receives for an entry at vmspace_fork (minherit(2)).
enum vm_inherit_t : std::uint8_t {
  VM_INHERIT_SHARE = 0,  // child shares the object; writes visible to both
  VM_INHERIT_COPY = 1,   // copy-on-write copy (the default for private memory)
  VM_INHERIT_NONE = 2,   // child has a hole there
  VM_INHERIT_ZERO = 3,   // child gets fresh zero-fill memory (FreeBSD INHERIT_ZERO)
};

// madvise(2) advice kept on an entry, and its fault-around window.
enum vm_advice_t : std::uint8_t {
  VM_ADVICE_NORMAL = 0,
  VM_ADVICE_RANDOM = 1,
  VM_ADVICE_SEQUENTIAL = 2,
  VM_ADVICE_WILLNEED = 3,  // an action, not kept: prefault now
  VM_ADVICE_DONTNEED = 4,  // an action: drop pages, next touch reads zeros/backing
  VM_ADVICE_FREE = 5,      // an action: pages may be reclaimed lazily
  VM_ADVICE_COLD = 6,      // an action (Linux MADV_COLD): pages lose their reference and go to
                           // the inactive queue, taken first under pressure; contents kept
  VM_ADVICE_PAGEOUT = 7,   // an action (Linux MADV_PAGEOUT): pages reclaimed now (clean freed,
                           // dirty laundered to swap); contents kept, a touch pages them back
  VM_ADVICE_COUNT
};

// Fault-around window per advice, in pages: how many pages behind and ahead of a
// faulting address one fault may make resident (FreeBSD's vm_fault read-ahead).  A fault
// that continues a sequential stream doubles `ahead` up to kSeqAheadMax (vm_fault.h).
// NORMAL was {15, 48}; measured with bench/fault_bench (random first touch of 256 MiB,
// userfaultfd handler thread ~50 us a round trip on a loaded 2-vCPU machine): {15, 48}
// 2.0 us/page, {31, 96} 1.25 us/page (host 1.4).  Cost: an isolated touch in a large
// mapping makes up to 128 pages (512 KiB) resident instead of 64.
struct fault_window {
  std::uint16_t behind;
  std::uint16_t ahead;
};
inline constexpr fault_window kFaultWindow[VM_ADVICE_COUNT] = {
    /* NORMAL     */ {31, 96},
    /* RANDOM     */ {0, 0},
    /* SEQUENTIAL */ {0, 255},
    /* WILLNEED   */ {15, 48},
    /* DONTNEED   */ {0, 0},
    /* FREE       */ {0, 0},
    /* COLD       */ {0, 0},
    /* PAGEOUT    */ {0, 0},
};
static_assert(kFaultWindow[VM_ADVICE_RANDOM].behind == 0 && kFaultWindow[VM_ADVICE_RANDOM].ahead == 0,
              "random advice must never fault around");
static_assert(kFaultWindow[VM_ADVICE_SEQUENTIAL].ahead >= kFaultWindow[VM_ADVICE_NORMAL].ahead,
              "sequential advice reads further ahead than normal");

// May the advice be given on wired (mlocked) memory?  Linux refuses DONTNEED, FREE, COLD and
// PAGEOUT on VM_LOCKED ranges with EINVAL (mm/madvise.c; can_madv_lru_vma for COLD and
// PAGEOUT); vm_map_advise_locked refuses them with KERN_INVALID_ARGUMENT.
inline constexpr bool kAdviceRefusedOnWired[VM_ADVICE_COUNT] = {
    /* NORMAL     */ false,
    /* RANDOM     */ false,
    /* SEQUENTIAL */ false,
    /* WILLNEED   */ false,
    /* DONTNEED   */ true,
    /* FREE       */ true,
    /* COLD       */ true,
    /* PAGEOUT    */ true,
};
static_assert(kAdviceRefusedOnWired[VM_ADVICE_COLD] && kAdviceRefusedOnWired[VM_ADVICE_PAGEOUT],
              "COLD and PAGEOUT never act on locked memory (Linux: EINVAL)");
static_assert(!kAdviceRefusedOnWired[VM_ADVICE_NORMAL] && !kAdviceRefusedOnWired[VM_ADVICE_WILLNEED],
              "keeping advice and WILLNEED are accepted on locked memory");

// The access that caused a fault.
enum vm_fault_type : std::uint8_t {
  VM_FAULT_READ = VM_PROT_READ,
  VM_FAULT_WRITE = VM_PROT_WRITE,
  VM_FAULT_EXECUTE = VM_PROT_EXECUTE,
};

}  // namespace vmrt
