// vm_fail.h — fault injection: named fail points that make memory fail on purpose.
//
// The lowest layer of the machine, so that every layer can call it: the shim's
// malloc family (by function), kmem (by malloc type), physical frames, the
// vmspace mmap family and the program's own munmap/mprotect/mlock, swap pager
// reads/writes, swap-slot corruption, and the pageout daemon's passes.  A spec (grammar in README.md, "Fault injection"; in the spirit of
// FreeBSD fail(9) and Linux fault-injection's failslab/fail_page_alloc knobs)
// arms a list of clauses; each evaluation of a fail point walks the clauses that
// name it and answers "fail this call".
//
// Cost when no spec is active: vm_fail_armed(), one relaxed load of a hidden
// global flag, inlined at the call site.  A hook reads
//     if (vm_fail_armed() && vm_fail_eval(FP_MALLOC, size)) { ...fail... }
//
// No malloc, no locks, no exceptions.  Evaluation (counters, triggers, the PRNG)
// is lock-free and async-signal-safe; logging an injected failure and the caller
// filter walk the stack (_Unwind_Backtrace) and name frames (dladdr), which take
// the dynamic loader's recursive lock but never allocate.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "vm/vm_types.h"

namespace vmrt {

enum vm_fail_point : std::uint8_t {
  FP_MALLOC = 0,     // shim malloc (and __libc_malloc)
  FP_CALLOC,         // shim calloc
  FP_REALLOC,        // shim realloc / reallocarray (not realloc(p, 0), which frees)
  FP_MEMALIGN,       // shim memalign / aligned_alloc / posix_memalign / valloc / pvalloc
  FP_NEW,            // shim operator new / new[] (all forms)
  FP_KMEM,           // kmem::malloc / kmem::malloc_aligned, filterable by malloc type
  FP_FRAME,          // physical memory: frame allocation (vm_page_alloc_run, vm_page_alloc_contig), host heap windows
  FP_MMAP,           // vm_mmap
  FP_MUNMAP,         // vm_munmap
  FP_MPROTECT,       // vm_mprotect
  FP_MLOCK,          // vm_mlock
  FP_PAGER_READ,     // swap pager page-in: an I/O error (the slot becomes a bad block)
  FP_PAGER_WRITE,    // swap pager page-out (laundering): an I/O error, the pages stay dirty
  FP_SWAP_CORRUPT,   // swap-slot bit flip, caught by the checksum on page-in
  FP_PAGEOUT,        // a pageout daemon pass: refused (frees nothing) or delayed (sleep=)
  FP_THREAD_START,   // a machine thread's start (runtime/rt_base): delayed (sleep=); a failure is a delay of 20 ms
  FP_COUNT
};

inline constexpr vm_name<16> kVmFailPointNames[] = {
    "malloc", "calloc", "realloc", "memalign", "new", "kmem", "frame",
    "mmap", "munmap", "mprotect", "mlock", "pager_read", "pager_write", "swap_corrupt", "pageout", "thread_start"};
static_assert(sizeof(kVmFailPointNames) / sizeof(kVmFailPointNames[0]) == FP_COUNT);

// The malloc-family group "alloc" = every shim entry point.
inline constexpr std::uint32_t kVmFailAllocGroup =
    (1u << FP_MALLOC) | (1u << FP_CALLOC) | (1u << FP_REALLOC) | (1u << FP_MEMALIGN) | (1u << FP_NEW);

// kmem malloc type names as the spec spells them in kmem[...] (kmem/kmem.h order;
// kmem_malloc.cpp pins the count against M_LAST).
inline constexpr vm_name<8> kVmFailKmemTypes[] = {"free", "temp", "devbuf", "vmmap", "vmobj", "libc", "cxx", "test"};
inline constexpr unsigned kVmFailKmemTypeCount = sizeof(kVmFailKmemTypes) / sizeof(kVmFailKmemTypes[0]);
static_assert(kVmFailKmemTypeCount == 8);

inline constexpr unsigned kVmFailMaxClauses = 16;
inline constexpr unsigned kVmFailMaxTids = 8;
inline constexpr unsigned kVmFailNameLen = 64;

// One parsed clause (plain data; the run-time counters live in vm_fail.cpp).
struct vm_fail_clause {
  std::uint32_t points;       // bit per vm_fail_point
  std::uint32_t kmem_types;   // bit per kmem type; 0: every type
  bool print_only;            // "print": log the call, let it succeed (fail(9)'s print)
  std::uint64_t sleep_ns;     // "sleep=": delay the call this long instead of failing it (0: fail)
  bool has_prob;
  std::uint64_t prob_threshold;  // fail when mix(seed, n) < threshold (prob * 2^64)
  std::uint64_t seed;
  std::uint64_t every, nth, after;  // 0: unset
  bool has_bytes;
  std::uint64_t bytes;        // budget: calls pass while the bytes passed stay <= this
  std::uint64_t times;        // at most this many failures; 0: unlimited
  std::uint64_t size_lo, size_hi;  // inclusive
  bool main_thread;           // thread=main
  unsigned ntids;
  std::int32_t tids[kVmFailMaxTids];
  char caller[kVmFailNameLen];  // function name on the stack ("" none)
  char object[kVmFailNameLen];  // shared-object name prefix on the stack ("" none)
};

struct vm_fail_spec {
  unsigned nclauses;
  vm_fail_clause clauses[kVmFailMaxClauses];
};

// Why a spec was refused: byte offset and length of the bad token, and a message.
struct vm_fail_error {
  std::size_t offset;
  std::size_t length;
  char message[160];
};

// Parse `text` into *out.  Returns false (and fills *err) on the first error;
// *out is then unspecified.  Pure: no global state, usable by vmrun.
bool vm_fail_parse(const char* text, vm_fail_spec* out, vm_fail_error* err);

// Format "<message>\n  <spec>\n  <caret under the token>" into buf (NUL-terminated).
void vm_fail_format_error(const char* text, const vm_fail_error& err, char* buf, std::size_t cap);

// Arm a parsed spec: counters reset, then the "any spec active" flag is set.
// Not concurrent with evaluation (boot, or single-threaded tests).
void vm_fail_arm(const vm_fail_spec& spec);
// Clear the flag (evaluations already running finish on the old spec).
void vm_fail_disarm();

// Read VMRT_FAIL (and VMRT_FAIL_LOG) and arm; a malformed spec prints one
// message on fd 2 and leaves injection off.  Idempotent.  Runs as a constructor
// in every program that links the machine; callable again (tests).
void vm_fail_init_from_env();

// Told of every change of the armed state (vm_fail_arm, vm_fail_disarm), and at once when
// set while armed: a layer above whose fast paths skip the vm_fail_armed() test (the
// shim's malloc family holds kmem's fast paths while armed, so that every call reaches
// the points) follows it here.  One hook; null removes it.  => no lock; not from a
// signal handler.
using vm_fail_arm_fn = void (*)(bool armed);
void vm_fail_set_arm_hook(vm_fail_arm_fn fn);

// Where injected failures and the exit summary are written (default 2).
void vm_fail_set_log_fd(int fd);
// Whether log records carry a backtrace (default true).
void vm_fail_set_backtrace(bool on);

namespace detail {
extern std::atomic<bool> g_vm_fail_armed __attribute__((visibility("hidden")));
}

// The fast-path check (one relaxed load; a constant false in a build with the points
// compiled out, cmake -DVMRT_FAILPOINTS=OFF, which exists to measure that load).
inline bool vm_fail_armed() {
#ifdef VMRT_NO_FAILPOINTS
  return false;
#else
  return __builtin_expect(detail::g_vm_fail_armed.load(std::memory_order_relaxed), 0);
#endif
}

// Evaluate fail point fp for a call of `size` bytes (frames: bytes of the run;
// kmem: `sub` is the malloc type).  Returns true: fail this call.  Call only
// after vm_fail_armed() (it re-checks).  Lock-free; see the header comment.
// A clause with sleep= that fires delays the call instead of failing it: the
// engine sleeps before returning, or, when `delay_ns` is given (a caller holding
// the VM lock), adds the delay there for the caller to sleep with
// vm_fail_delay() once the lock is dropped.
bool vm_fail_eval(vm_fail_point fp, std::size_t size, unsigned sub = 0, std::uint64_t* delay_ns = nullptr);

// Sleep `ns` nanoseconds (0: return at once); EINTR resumes the sleep.  May sleep.
void vm_fail_delay(std::uint64_t ns);

// Per-fail-point counters since arming: calls seen while armed, failures injected.
struct vm_fail_counts {
  std::uint64_t calls;
  std::uint64_t failures;
  std::uint64_t delays;   // calls delayed by sleep=
};
vm_fail_counts vm_fail_get_counts(vm_fail_point fp);

// Write the per-fail-point summary to the log fd (also run at exit when armed).
void vm_fail_summary();

}  // namespace vmrt
