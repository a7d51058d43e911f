// guest.h — one guest: an x86-64 ELF shared object placed in its own vmspace (issue 10).
//
// Window layout (all inside one vmspace, addresses are host addresses):
//
//   base                                            base + vm_size
//   | 64 KiB unmapped | image (PT_LOADs) | ... heap area, guest mmaps ... | guard | stack |
//
// - image: the PT_LOAD segments at load bias `bias` (text r-x, relro r-- after relocation,
//   data rw-, bss zero-fill).  The bytes are copied from the file into anonymous memory
//   (no vnode pager yet, so no copy-on-write over the file).
// - heap area: one anonymous mapping of memory_limit bytes, NORESERVE and PROT_NONE, made
//   writable 1 MiB at a time as the guest malloc (guest_libc.cpp) carves it.
// - stack: stack_size bytes of anonymous memory at the top of the window, filled by
//   demand-zero faults as it grows down; below it a guard range nothing maps: a fault
//   there is VMRT_GUEST_STACK_OVERFLOW.
//
// Nothing here calls malloc: guest records, prepared functions and the file image are
// host mmap(2) memory (runtime rule: the machine never allocates from the heap).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <elf.h>
#include <ffi.h>
#include <setjmp.h>
#include <signal.h>

#include "runtime/vmrt.h"
#include "vm/pmap.h"
#include "vm/vmspace_revert.h"

namespace vmrt::guest {

inline constexpr std::size_t kNullZone = 64 * 1024;    // accesses below: NULL_DEREF
inline constexpr std::size_t kImageOffset = 64 * 1024;  // nothing mapped below the image
inline constexpr std::size_t kStackGuard = 64 * 1024;   // unmapped below the stack
inline constexpr std::size_t kMaxImage = std::size_t{256} << 20;     // PT_LOAD span refused beyond
inline constexpr std::size_t kPopulateImage = std::size_t{1} << 20;  // images up to this are populated
inline constexpr std::size_t kMaxTls = std::size_t{1} << 20;          // PT_TLS memsz refused beyond
inline constexpr std::size_t kDefaultMemoryLimit = std::size_t{64} << 20;
inline constexpr std::size_t kDefaultStack = std::size_t{1} << 20;
inline constexpr std::size_t kStackPopulate = 16 * 1024;  // the stack's top, populated at load
inline constexpr std::size_t kMinStack = 64 * 1024;
static_assert(kMinStack > kStackPopulate && kDefaultStack >= kMinStack);
inline constexpr unsigned kMaxArgs = 16;
inline constexpr unsigned kMaxStructs = 4;       // struct types in one signature
inline constexpr unsigned kMaxStructFields = 8;  // scalar fields of one struct
inline constexpr unsigned kMaxSig = 80;          // signature string length
inline constexpr unsigned kHeapBuckets = 13;  // 16 B .. 64 KiB, powers of two
inline constexpr std::size_t kHeapMinBlock = 16;
inline constexpr std::size_t kHeapMaxSmall = kHeapMinBlock << (kHeapBuckets - 1);
inline constexpr std::size_t kHeapCommit = std::size_t{1} << 20;  // heap area made writable in these steps
static_assert(kHeapMaxSmall == 64 * 1024);

// The guest heap: power-of-two buckets (4.4BSD malloc's shape) bumped from the heap
// area, large blocks mapped on their own.  Block headers live in guest memory, so every
// pointer read back from them is checked against the heap area before use.
struct heap {
  std::uintptr_t lo, hi;  // the heap area
  std::uintptr_t brk;     // bump pointer
  std::uintptr_t committed;  // [lo, committed) is read-write, the rest PROT_NONE
  std::uintptr_t free_head[kHeapBuckets];
  std::size_t mmap_bytes;  // guest mmaps and large blocks
  std::uintptr_t malloc_top;  // the highest break malloc has carved: brk/sbrk shrink no lower
};

struct prepared;  // vmrt_guest_func
struct family;    // guest_fork.cpp

}  // namespace vmrt::guest

struct vmrt_guest {
  vmrt_vmspace* vs;
  std::uintptr_t win_lo, win_hi;  // the vmspace's window [base, base + size)
  std::uintptr_t bias;            // load bias: guest vaddr v is at bias + v
  std::uintptr_t img_lo, img_hi;  // the PT_LOAD span
  std::uintptr_t stack_lo, stack_hi, guard_lo;
  // The file, mapped read-only (symbols for traps and lookups point into it).
  const unsigned char* file;
  std::size_t file_len;
  const Elf64_Sym* dynsym;
  std::size_t ndynsym;
  const char* dynstr;
  std::size_t dynstr_len;  // every st_name is checked against it
  const Elf64_Sym* symtab;  // .symtab when present (static functions too), else dynsym
  std::size_t nsymtab;
  const char* strtab;
  std::size_t strtab_len;
  vmrt_guest_options opt;  // imports copied into `imports_mem`
  void* imports_mem;
  std::size_t imports_mem_len;
  char path[4096];
  vmrt::guest::heap hp;
  // Thread-local storage (PT_TLS): one block per guest, in its heap (a guest runs one
  // thread at a time); __tls_get_addr hands out addresses in it.  0: no PT_TLS.
  std::uintptr_t tls_block;
  std::size_t tls_size;
  std::atomic<long> owner;  // tid of the thread inside, 0: none
  int depth;                // nested calls of that thread
  vmrt::guest::prepared* funcs;  // chunks of prepared functions
  // The warm image (guest_snapshot.cpp): a copy-on-write copy of vs in another window,
  // never run, and the heap's state at the snapshot.
  vmrt_vmspace* snap;
  vmrt::guest::heap snap_hp;
  vmrt::vmspace_revert_stats last_restore;  // what the last restore did
  // Forks (guest_fork.cpp): the members of a family share one window and take turns in it.
  // Null fam: the guest is alone and its vmspace is the window's.
  vmrt::guest::family* fam;
  vmrt::vmspace* own;      // this member's vmspace (installed in the window when active)
  vmrt::pmap* pm;          // its pmap: the window's for the first member, else pm_store
  vmrt::pmap pm_store;     // (live ops while active, inert ones while parked)
};

namespace vmrt::guest {

// A prepared function: lookup and ffi_prep_cif done once.
struct prepared {
  vmrt_guest* g;
  void* fn;
  ffi_cif cif;
  ffi_type* atypes[kMaxArgs];
  ffi_type stypes[kMaxStructs];
  ffi_type* selems[kMaxStructs][kMaxStructFields + 1];
  unsigned nstructs;
  ffi_type* rtype_ffi;
  char rtype;              // 'S': a struct
  char argt[kMaxArgs];     // 'S': a struct (the value is a pointer to its bytes)
  unsigned nargs;
  bool ok;         // false after a reset that lost the function
  char name[128];  // looked up again by reset
  char sig[kMaxSig];
  prepared* next;
};

// The per-thread record of a guest call in progress (on the host stack of
// vmrt_guest_invoke); the signal handlers escape to `jb` with _longjmp.
struct call_ctx {
  jmp_buf jb;
  vmrt_guest* g;
  call_ctx* prev;
  vmrt_guest_trap* trap;
  sigset_t mask;      // the mask at the fault (restored after the escape)
  bool restore_mask;  // the escape came from a signal handler
  void* import_ra;    // the guest's return address into the guest libc import running
  void* caller;       // a fault in host code called by the guest: the guest's call site
  int access;         // a memory fault's access: PROT_READ, PROT_WRITE, PROT_EXEC; 0: none
  std::uintptr_t trap_sp;  // a trap on the guest stack: the stack pointer there; 0: none
  bool timed_out;     // the time limit passed while host code ran: trap at the next guest pc
  volatile bool active;
};

// The innermost guest call of this thread (nullptr: none).  initial-exec TLS: read in
// signal handlers.
call_ctx* current();

// End the current guest call now with `kind` (from host code running on its behalf:
// guest libc abort(), heap corruption).  Never returns.  Needs current() != nullptr.
[[noreturn]] void escape(vmrt_guest_status kind, const void* addr);

// Fill t's symbol/offset/message for kind at pc/addr (normal context); caller: the
// guest's call site when pc is host code the guest called (or nullptr); access: a memory
// fault's PROT_READ / PROT_WRITE / PROT_EXEC (0: not a memory fault, or unknown).
void describe(const vmrt_guest* g, vmrt_guest_trap* t, void* caller, int access);

// The symbol of g holding address a (nullptr when none); *off = a - symbol.
const char* symbolize(const vmrt_guest* g, std::uintptr_t a, std::size_t* off);

// The guest libc: the host function for an import name, nullptr when it has none.
void* libc_lookup(const char* name);
// Heap over g's heap area (guest_libc.cpp); usable from the host (vmrt_guest_malloc).
void* heap_malloc(vmrt_guest* g, std::size_t n);
void heap_free(vmrt_guest* g, void* p);
std::size_t memory_used(const vmrt_guest* g);

// memcpy with g's faults caught (as in a guest call): 0, or -1 + EFAULT.
int guarded_memcpy(vmrt_guest* g, void* dst, const void* src, std::size_t n);

// Install the guest signal handlers (SIGSEGV/SIGBUS through vmrt's chain, SIGILL,
// SIGFPE, the timer signal) while at least one guest exists.
bool signals_acquire();
void signals_release();

// Families of forked guests (guest_fork.cpp).  family_enter: this thread takes g's family
// (nested calls on the same thread allowed for the same member) and g's vmspace becomes the
// one installed in the window, switched in by vmspace_switch.  False when another thread is
// in the family, another member is mid-call on this thread, or the switch failed.  A guest
// without a family: always true.  family_leave undoes one family_enter.
bool family_enter(vmrt_guest* g);
void family_leave(vmrt_guest* g);
// Unload g's vmspace as a member (the window stays for the others; the last one frees it
// and the family).  Returns false when g has no family (the caller unloads as usual).
bool family_unload(vmrt_guest* g);
// The pmap g's vmspace translates through (its own when in a family).
vmrt::pmap* guest_pmap(vmrt_guest* g);

// Host memory for guest records (mmap; zeroed).
void* host_alloc(std::size_t n);
void host_free(void* p, std::size_t n);

}  // namespace vmrt::guest
