// vm_thread_safety.h — locking contracts the compiler checks: clang's thread safety analysis
// (-Wthread-safety; Zircon annotates its kernel/vm the same way).  A contract the comments
// state as "=> VM lock held" is VMRT_REQUIRES(g_vm_lock) on the declaration, and clang then
// proves every call site holds the lock: a guard in scope (vm_lock_guard), the caller's own
// VMRT_REQUIRES, or a VM_LOCK_ASSERT() before the call.  Under gcc the macros are empty; the
// check runs as the test lint.thread_safety (scripts/check_thread_safety.sh: every source of
// vm/, kmem/, runtime/ and libc_shim/ through clang -fsyntax-only -Werror=thread-safety).
//
// What is annotated so far: the VM lock (vm_lock.h); the map (vm_map.h), objects (vm_object.h),
// vm_fault_locked, the pageout entry points (vm_pageout.h), the mmap area's helpers
// (runtime/rt_mmap_area.h), vm_page_busy_sleep, and every function and lambda that calls them;
// every file-scope variable and file-local record field marked "[VM lock]" is
// VMRT_GUARDED_BY(g_vm_lock) (the heap's ranges and bitmap, the buddy lists, reservations,
// the frame cache, the page queues, swap slots, vnodes, loans, zones, fault read-ahead
// state, the fork's physmem state), and so is every such field of the map's entries, maps,
// objects, pages, reservations, zones and vmspaces; every function that touches one says
// VMRT_REQUIRES(g_vm_lock) or takes the lock.
// The pmap's own spinlock (runtime/pmap_linux_impl.h, g_lock) is a capability as well
// (runtime/spinlock.h): its tables' accessors and the functions that use them say
// VMRT_REQUIRES(g_lock).
#pragma once

#if defined(__clang__)
#define VMRT_TSA(x) __attribute__((x))
#else
#define VMRT_TSA(x)
#endif

#define VMRT_CAPABILITY(name) VMRT_TSA(capability(name))
#define VMRT_SCOPED_CAPABILITY VMRT_TSA(scoped_lockable)
#define VMRT_GUARDED_BY(x) VMRT_TSA(guarded_by(x))
#define VMRT_REQUIRES(...) VMRT_TSA(requires_capability(__VA_ARGS__))
#define VMRT_EXCLUDES(...) VMRT_TSA(locks_excluded(__VA_ARGS__))
#define VMRT_ACQUIRE(...) VMRT_TSA(acquire_capability(__VA_ARGS__))
#define VMRT_RELEASE(...) VMRT_TSA(release_capability(__VA_ARGS__))
#define VMRT_TRY_ACQUIRE(...) VMRT_TSA(try_acquire_capability(__VA_ARGS__))
#define VMRT_ASSERT_CAPABILITY(x) VMRT_TSA(assert_capability(x))
// For the few functions whose locking the analysis cannot follow (a lock taken in one
// function and let go in another: the fork handlers); each says why where it is used.
#define VMRT_NO_THREAD_SAFETY_ANALYSIS VMRT_TSA(no_thread_safety_analysis)
// Read guarded variable v without its lock where no other thread can exist: a fork child's
// only thread before it starts any, which must not take the lock just to look (the lock's
// page would be written in every child).  The analysis cannot know that; the caller says so.
#define VMRT_ONLY_THREAD_READ(v) ([&]() VMRT_NO_THREAD_SAFETY_ANALYSIS { return (v); }())

namespace vmrt {
// The VM lock (vm_lock.h) as the analysis names it: contracts say VMRT_REQUIRES(g_vm_lock).
// Only named in attributes, never defined: the lock's state is in vm_lock.cpp.
struct VMRT_CAPABILITY("mutex") vm_lock_capability {};
extern vm_lock_capability g_vm_lock;
}  // namespace vmrt
