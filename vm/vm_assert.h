// vm_assert.h — invariant checks for the machine-independent VM.
//
// VMRT_ASSERT(cond) is always on (the checks in vm/ are cheap); on failure it writes
// "vmrt: assertion failed: <cond> at <file>:<line>" with write(2) and aborts.
// VMRT_DASSERT is for expensive checks, compiled only without NDEBUG.
#pragma once

namespace vmrt {

// Write "vmrt: panic: <msg> (<file>:<line>)" to fd 2 and abort().  Async-signal-safe.
[[noreturn]] void vm_panic(const char* msg, const char* file, int line);

// Write "<who>: assertion failed: <what> (<msg>) at <file>:<line>" to fd 2 and
// abort().  The failure path of kmem's and the runtime's assertion macros.
// Async-signal-safe.
[[noreturn]] void vm_assert_failed(const char* who, const char* what, const char* msg, const char* file,
                                   int line);

}  // namespace vmrt

#define VMRT_ASSERT(cond)                                              \
  do {                                                                 \
    if (__builtin_expect(!(cond), 0)) ::vmrt::vm_panic("assertion failed: " #cond, __FILE__, __LINE__); \
  } while (0)

#define VMRT_PANIC(msg) ::vmrt::vm_panic(msg, __FILE__, __LINE__)

#ifdef NDEBUG
#define VMRT_DASSERT(cond) ((void)0)
#else
#define VMRT_DASSERT(cond) VMRT_ASSERT(cond)
#endif
