/* vmrt.h — the public C API over vmrt's address spaces (vmspaces).
 *
 * A vmspace is a window of vmrt's reserved host region managed by the 4.4BSD VM:
 * its memory is real memory at real addresses of this process, every fault in
 * it is caught and resolved by vmrt, and the usual mmap family works on it.
 * Calls follow the Linux system calls they are named after: they return 0 (or
 * a pointer) on success, and -1 (or VMRT_MAP_FAILED) with errno set exactly as
 * Linux would set it.  All calls are thread-safe.  Usable from C and C++.
 */
#ifndef VMRT_H
#define VMRT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct vmrt_vmspace vmrt_vmspace;

#define VMRT_MAP_FAILED ((void*)-1)

/* minherit(2) values (FreeBSD's). */
#define VMRT_INHERIT_SHARE 0
#define VMRT_INHERIT_COPY 1
#define VMRT_INHERIT_NONE 2
#define VMRT_INHERIT_ZERO 3

/* Boot the machine with the VMRT_* environment (optional: every call boots on
 * first use).  Returns 0, or -1 with errno. */
int vmrt_init(void);

/* Which trap backend is active: "sigsegv" or "userfaultfd". */
const char* vmrt_trap_backend(void);

/* Create an empty address space of `size` bytes (rounded up to pages) inside the
 * region.  NULL + ENOMEM when the region has no room. */
vmrt_vmspace* vmrt_vmspace_create(size_t size);
/* Destroy: unmap everything, drop object references.  The window is reusable. */
void vmrt_vmspace_destroy(vmrt_vmspace* vs);
/* The window [base, base + size) of the vmspace in this process. */
void* vmrt_vmspace_base(const vmrt_vmspace* vs);
size_t vmrt_vmspace_size(const vmrt_vmspace* vs);

/* Fork: a new vmspace whose private memory is copy-on-write shared with the
 * parent, following minherit.  The child lives in its own window: the byte at
 * parent address p is at vmrt_translate(parent, child, p) in the child. */
vmrt_vmspace* vmrt_vmspace_fork(vmrt_vmspace* parent);
void* vmrt_translate(const vmrt_vmspace* from, const vmrt_vmspace* to, const void* addr);

/* The mmap family, on a vmspace.  prot/flags/advice take the host's PROT_*, MAP_*,
 * MADV_* values.  Supported: MAP_PRIVATE|MAP_SHARED with MAP_ANONYMOUS, MAP_FIXED,
 * MAP_FIXED_NOREPLACE, MAP_NORESERVE, MAP_POPULATE, hinted addresses. */
void* vmrt_mmap(vmrt_vmspace* vs, void* addr, size_t len, int prot, int flags, int fd, off_t off);
int vmrt_munmap(vmrt_vmspace* vs, void* addr, size_t len);
int vmrt_mprotect(vmrt_vmspace* vs, void* addr, size_t len, int prot);
int vmrt_madvise(vmrt_vmspace* vs, void* addr, size_t len, int advice);
int vmrt_mincore(vmrt_vmspace* vs, void* addr, size_t len, unsigned char* vec);
int vmrt_minherit(vmrt_vmspace* vs, void* addr, size_t len, int inherit);
int vmrt_mlock(vmrt_vmspace* vs, const void* addr, size_t len);
int vmrt_munlock(vmrt_vmspace* vs, const void* addr, size_t len);

/* A trap: an access to a vmspace that no map entry allows.  Delivered to the
 * trap hook when one is set (in the faulting thread, in signal context: the hook
 * may siglongjmp), else as SIGSEGV with si_code SEGV_MAPERR / SEGV_ACCERR to the
 * program's own handler, else the default action (core dump). */
typedef enum { VMRT_TRAP_NO_ENTRY = 1, VMRT_TRAP_PROTECTION = 2, VMRT_TRAP_RESOURCE = 3 } vmrt_trap_reason;
typedef struct {
  void* addr;              /* faulting address */
  int access;              /* PROT_READ, PROT_WRITE or PROT_EXEC */
  vmrt_trap_reason reason; /* why it was refused */
  vmrt_vmspace* vmspace;   /* the vmspace whose window holds addr */
} vmrt_trap;
typedef void (*vmrt_trap_hook)(const vmrt_trap* trap, void* arg);
/* Set (or clear with NULL) the process-wide trap hook; returns the previous one.
 * A hook that returns (instead of siglongjmp-ing) lets the trap continue as if no
 * hook were set: the program's handler, else death by the signal.  A trap is never
 * resolved silently. */
vmrt_trap_hook vmrt_set_trap_hook(vmrt_trap_hook hook, void* arg);

/* Reports, written with write(2) to fd. */
void vmrt_report_procstat(const vmrt_vmspace* vs, int fd); /* procstat -v */
void vmrt_report_vmstat(int fd);                            /* vmstat -s  */
void vmrt_report_malloc(int fd);                            /* vmstat -m  */

/* Give memory back to the host: free kmem pages go back to the VM and every cached free
 * frame (freed frames are kept host-resident for reuse, up to VMRT_FRAME_CACHE) is
 * released.  Returns the bytes released to the host. */
size_t vmrt_trim(void);

/* Counters, by name as printed by vmstat -s ("zero-fill faults" ...); -1 if unknown. */
long long vmrt_counter(const char* name);

/* Run the map/object consistency checker on a vmspace.  0 when consistent; else
 * -1 with a description of the first violation written to fd. */
int vmrt_check(const vmrt_vmspace* vs, int fd);

/* ---- extensions ---------------------------------------------------------- */

struct sigaction;
/* sigaction(2) for a program that handles SIGSEGV/SIGBUS itself while vmrt is up:
 * vmrt's handler stays installed and passes the program's handler every fault that
 * is not vmrt's (outside the region), and every trap the trap hook did not take
 * (si_code SEGV_MAPERR / SEGV_ACCERR).  Other signals: plain sigaction(2). */
int vmrt_sigaction(int sig, const struct sigaction* act, struct sigaction* old);

/* Give the calling thread an alternate signal stack for vmrt's trap handler (threads
 * that do not call it get one lazily at their first fault in a vmspace). */
void vmrt_thread_attach(void);

/* Pages of [addr, addr+len) currently mapped on the host (resident and entered). */
size_t vmrt_resident(const vmrt_vmspace* vs, const void* addr, size_t len);

/* Whole-vmspace swapping (McKusick et al., "Swapping"; vm/vm_swapout.h).  With paging on
 * (vmrun --physmem, VMRT_PHYSMEM), the pageout daemon swaps out the vmspace that ran least
 * recently when paging alone does not relieve a shortage; its pages come back as it faults.
 * swapout: do it now to vs (every pageable page it alone maps: freed if clean, written to
 *   swap if dirty); returns the pages freed, or -1 with errno EINVAL (no such vmspace) or
 *   ENOTSUP (paging is off).
 * swapped: 1 when vs was swapped out and has not faulted since, 0 if not, -1 for a null vs.
 * note_run: tell the swapper vs is running (a guest call, a switch to it) without a fault. */
long vmrt_vmspace_swapout(vmrt_vmspace* vs);
int vmrt_vmspace_swapped(const vmrt_vmspace* vs);
void vmrt_vmspace_note_run(vmrt_vmspace* vs);

/* Host VMAs: in vmrt's region and in the whole process (exact, from /proc/self/maps). */
void vmrt_host_vmas(size_t* in_region, size_t* total);

/* ---- sharing between address spaces (README "Sharing between address spaces") ------
 * Three ways to give memory of one vmspace to another (or to another place of the same
 * one) without copying bytes (Cranor's UVM: map entry passing, page transfer, page
 * loanout).  Each takes a page-aligned source range [addr, addr + len) of `from`, fully
 * mapped, and a destination `dst` in `to`: NULL for the first free range there, else a
 * page-aligned address whose range must be free (never replaced).  They return the
 * destination address, or VMRT_MAP_FAILED with errno:
 *   EINVAL  a null vmspace, addr / dst / len not page aligned, len 0, an unknown mode;
 *   ENOMEM  dst's range outside `to`'s window, or no free range of len in `to`, or out
 *           of VM records;
 *   EFAULT  the source range is outside `from`'s window or not fully mapped;
 *   EEXIST  something is mapped in dst's range;
 *   EACCES  (vmrt_loan) part of the source range is not readable.
 * Fully mapped source ranges of a vmspace's own memory only: host memory (the program's
 * heap) is refused with EFAULT.
 *
 * vmrt_extract: `to` maps the same memory (VMRT_EXTRACT_SHARE: writes seen both ways, as
 *   MAP_SHARED; the source range becomes shared memory) or a copy-on-write copy of it
 *   (VMRT_EXTRACT_COPY: as a fork).  Costs one map entry per source mapping, whatever
 *   the size.
 * vmrt_transfer: the pages move to `to` (same frames, nothing copied); the source range is
 *   unmapped (VMRT_TRANSFER_UNMAP) or reads zeros (VMRT_TRANSFER_ZERO).
 * vmrt_loan: `to` gets a read-only view of the pages (same frames) while the lender's
 *   pages become copy-on-write for it; a write on either side (the borrower after
 *   mprotect) copies that page for the writer.  Loaned pages are not paged out.  The loan
 *   ends page by page when either side unmaps, writes or exits; vmrt_unloan(to, view,
 *   len) unmaps the borrower's view (EINVAL when [view, view + len) is not all a
 *   borrowed view).  vmstat -s counts loans; procstat shows pages loaned and borrowed. */
#define VMRT_EXTRACT_SHARE 0
#define VMRT_EXTRACT_COPY 1
#define VMRT_TRANSFER_UNMAP 0
#define VMRT_TRANSFER_ZERO 1
void* vmrt_extract(vmrt_vmspace* from, void* addr, size_t len, vmrt_vmspace* to, void* dst, int mode);
void* vmrt_transfer(vmrt_vmspace* from, void* addr, size_t len, vmrt_vmspace* to, void* dst, int mode);
void* vmrt_loan(vmrt_vmspace* from, void* addr, size_t len, vmrt_vmspace* to, void* dst);
int vmrt_unloan(vmrt_vmspace* to, void* view, size_t len);


/* ---- guests (guest.h; library vmrt_guest, linked with libffi) ------------------
 * A guest is an x86-64 ELF shared object (ET_DYN) placed in a fresh vmspace and called
 * through libffi on a stack inside that vmspace.  Its imports resolve against the
 * embedder's table, then vmrt's guest libc subset (malloc family and mmap/munmap served
 * from the guest's own vmspace, bounded by memory_limit; mem*, str*, ...).  A fault in a
 * guest call (null dereference, write to its text, access outside its mappings, stack
 * overflow, illegal instruction, division by zero, time limit) ends the call with a
 * status and a vmrt_guest_trap; the host keeps running.  Guests contain faults and
 * resource use, not malice: guest native code can still write host memory.  One thread
 * at a time per guest (a second thread gets VMRT_GUEST_BUSY). */
typedef struct vmrt_guest vmrt_guest;
typedef struct {
  const char* name; /* the guest's undefined symbol */
  void* fn;         /* host function (or data) it binds to */
} vmrt_guest_import;
typedef struct {
  size_t memory_limit;        /* guest malloc + mmap bytes; 0: 64 MiB */
  size_t stack_size;          /* guest stack limit (a 64 KiB guard below); 0: 1 MiB; at least 64 KiB */
  unsigned time_limit_ms;     /* per call, wall clock; 0: none */
  const vmrt_guest_import* imports;
  size_t nimports;
} vmrt_guest_options;

typedef enum {
  VMRT_GUEST_OK = 0,
  VMRT_GUEST_NULL_DEREF = 1,       /* access below 64 KiB */
  VMRT_GUEST_WRITE_PROTECTED = 2,  /* write (or exec) refused by a mapping's protection: text, relro */
  VMRT_GUEST_BAD_ACCESS = 3,       /* an address of the guest's vmspace that nothing maps */
  VMRT_GUEST_WILD_ACCESS = 4,      /* an address outside the guest's vmspace (as far as vmrt sees) */
  VMRT_GUEST_STACK_OVERFLOW = 5,   /* the guard page below the stack limit */
  VMRT_GUEST_OUT_OF_MEMORY = 6,    /* no frame for a page (SIGBUS) */
  VMRT_GUEST_ILLEGAL_INSTRUCTION = 7,
  VMRT_GUEST_DIVIDE_BY_ZERO = 8,
  VMRT_GUEST_ARITHMETIC = 9,       /* other SIGFPE */
  VMRT_GUEST_TIMEOUT = 10,
  VMRT_GUEST_ABORT = 11,           /* the guest called abort() */
  VMRT_GUEST_HEAP_CORRUPTED = 12,  /* guest free/realloc of a bad pointer, broken heap */
  VMRT_GUEST_NO_SUCH_FUNCTION = 13,
  VMRT_GUEST_BAD_SIGNATURE = 14,
  VMRT_GUEST_BUSY = 15,            /* another thread is in this guest */
  VMRT_GUEST_BAD_ARGUMENT = 16
} vmrt_guest_status;
/* "ok", "null dereference", ... */
const char* vmrt_guest_status_name(vmrt_guest_status s);

typedef struct {
  vmrt_guest_status kind;
  void* addr;         /* faulting data address (faults), else NULL */
  void* pc;           /* faulting instruction (NULL if unknown) */
  char symbol[64];    /* guest symbol holding pc ("" if none / not in the guest) */
  size_t offset;      /* pc - symbol */
  char message[192];  /* one line: kind, address, symbol+offset */
} vmrt_guest_trap;

typedef union {
  int64_t i; /* 'i' (int32, sign-extended on return) and 'l' (int64) */
  double d;  /* 'd' */
  float f;   /* 'f' */
  void* p;   /* 'p' (a guest address) */
} vmrt_guest_value;

/* Load: 0, or -1 with a one-line reason in err (not ELF, wrong class/machine, not ET_DYN,
 * unknown relocation NAME, missing import NAME, TLS...).  init functions run here. */
int vmrt_guest_load(const char* path, const vmrt_guest_options* opt, vmrt_guest** out, char* err, size_t errlen);
void vmrt_guest_destroy(vmrt_guest* g);
/* Back to the loaded state (loaded afresh in a new window: guest addresses change). */
int vmrt_guest_reset(vmrt_guest* g, char* err, size_t errlen);
vmrt_vmspace* vmrt_guest_vmspace(const vmrt_guest* g);
/* A defined symbol's address in the guest, NULL if none. */
void* vmrt_guest_symbol(const vmrt_guest* g, const char* name);

/* Call.  sig: "R(ARGS)" with R in v i l f d p and ARGS a string of i l f d p (at most
 * 16), e.g. "i(ip)", "d(dd)", "v()"; a '.' starts the variadic arguments: "i(i.ld)" calls
 * int f(int, ...) with a long and a double (variadic floats: pass 'd'); "{...}" is a struct
 * by value of those scalars, laid out by the C rules (at most 4 structs of 8 fields): its
 * argument value .p points to the struct's bytes, and for a struct result ret->p must point
 * to a buffer of its size, written in place ("d({ld}i)", "{lll}(l)").  Returns VMRT_GUEST_OK with *ret set, or the
 * status (and *trap, when trap != NULL, filled for every non-OK status). */
vmrt_guest_status vmrt_guest_call(vmrt_guest* g, const char* name, const char* sig, const vmrt_guest_value* args,
                                  vmrt_guest_value* ret, vmrt_guest_trap* trap);
/* The same with the lookup and libffi preparation done once (freed with the guest). */
typedef struct vmrt_guest_func vmrt_guest_func;
vmrt_guest_func* vmrt_guest_prepare(vmrt_guest* g, const char* name, const char* sig);
vmrt_guest_status vmrt_guest_invoke(vmrt_guest_func* f, const vmrt_guest_value* args, vmrt_guest_value* ret,
                                    vmrt_guest_trap* trap);

/* Warm images (the wasmtime / Firecracker pattern, one live instance per guest): snapshot
 * keeps g's present memory and heap as a copy-on-write copy of its vmspace (in another
 * window of the region, never run); restore makes g's memory a fresh copy-on-write copy
 * of that image at g's own addresses (what the guest wrote since is dropped).  A second
 * snapshot replaces the first.  Not a simultaneous fork: guest code holds absolute
 * addresses, so two live copies cannot share one address range in one process.
 * 0, or -1 + errno (EINVAL: no snapshot / call in progress; ENOMEM). */
int vmrt_guest_snapshot(vmrt_guest* g);
int vmrt_guest_restore(vmrt_guest* g);
/* What g's last restore did: a restore reverts the guest's vmspace in place, touching
 * only the guest's private pages (those it wrote since the snapshot: given the snapshot's
 * bytes again while few, else dropped with their translations) and rebuilding only the
 * mappings added, removed or reshaped since; its cost follows those, not the guest's
 * size.  entries_rebuilt is UINT64_MAX when the whole vmspace was replaced. */
typedef struct {
  uint64_t entries_kept;    /* mappings left in place */
  uint64_t entries_rebuilt; /* mappings removed or copied again from the snapshot */
  uint64_t pages_dropped;   /* private pages dropped (translations removed) */
  uint64_t pages_copied;    /* private pages given the snapshot's bytes again, kept mapped */
} vmrt_guest_restore_info;
int vmrt_guest_restore_info_get(const vmrt_guest* g, vmrt_guest_restore_info* out);

/* Fork: a copy-on-write child of g (its segments, heap, stack and globals as they are now),
 * called, snapshotted, restored and destroyed on its own, in any order with its parent.
 * Guest code holds absolute addresses, so a guest and its forks (a family) share one
 * address range and take turns in it: calling a member makes its vmspace the one mapped
 * there, removing only the translations the two members' writes since the fork made
 * different (a host TLB shootdown per run of such pages: 0.1-1.6 ms per switch measured;
 * nothing when the same member is called again).  One thread at a time per family: another thread's call gets VMRT_GUEST_BUSY,
 * its malloc/copy calls EBUSY.  A reset takes the member out of its family (reloaded in a
 * window of its own).  NULL + errno (EINVAL: call in progress; ENOMEM). */
vmrt_guest* vmrt_guest_fork(vmrt_guest* g);

/* Guest memory: malloc/free on the guest's heap (NULL when past its limit), and copies in
 * and out that check [addr, addr + n) lies in the guest's mappings (0, or -1 + EFAULT). */
void* vmrt_guest_malloc(vmrt_guest* g, size_t n);
void vmrt_guest_free(vmrt_guest* g, void* p);
int vmrt_guest_copy_in(vmrt_guest* g, void* guest_dst, const void* src, size_t n);
int vmrt_guest_copy_out(vmrt_guest* g, void* dst, const void* guest_src, size_t n);
/* Bytes the guest's malloc and mmap hold (its memory limit's measure). */
size_t vmrt_guest_memory_used(const vmrt_guest* g);

#ifdef __cplusplus
}
#endif

#endif /* VMRT_H */
