// kmem_assert.h — invariant checks for kmem that never allocate.
//
// KMEM_ASSERT(cond, msg): when cond is false, writes "kmem: assertion failed:
// <cond> (<msg>) at file:line" to fd 2 with write(2) and aborts.  Always on: use
// it for cheap checks only.
#pragma once

#include "vm/vm_assert.h"

#define KMEM_ASSERT(cond, msg)                                                     \
  do {                                                                             \
    if (__builtin_expect(!(cond), 0))                                              \
      ::vmrt::vm_assert_failed("kmem", #cond, (msg), __FILE__, __LINE__);          \
  } while (0)
