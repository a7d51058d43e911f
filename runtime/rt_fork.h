// rt_fork.h — a host fork() of a process under the shim: what the runtime does before it,
// in the parent after it and in the child (rt_fork.cpp).  The shim's fork() and its
// pthread_atfork handlers call these in order: reserve, prepare, then parent or child, then
// (in the parent) error and returned.
#pragma once

#include <sys/types.h>

namespace vmrt {

// Host fork(): call prepare in the parent before fork, then parent or child after.
// A process that has handed out no frame (the usual case: the heap is host memory) forks
// lazily: nothing is reserved, copied or waited for; the child makes its own physmem at
// its first frame (runtime/physmem.h).
// The child gets its own physmem (a copy of every in-use frame) and its own trap
// backend threads; afterwards parent and child memory are independent.
// Everything the child needs (its memfd with host memory for every frame in use, the
// sign-in pipe) is obtained in the parent before the host fork: runtime_fork_reserve()
// (the shim's fork() calls it first, so a shortage makes fork() return -1 without a
// child) and again, under the locks, in runtime_fork_prepare().  When the set-up fails
// anyway, the child exits at once in runtime_fork_child() (status kForkSetupFailedStatus,
// before any program code runs) and runtime_fork_error() tells the parent's fork() to
// reap it and return -1.
inline constexpr int kForkSetupFailedStatus = 127;
// 0, or the errno fork() should fail with (EAGAIN: no descriptor; ENOMEM: no memory).
// Takes the VM lock: not with a VM/kmem lock held.
int runtime_fork_reserve();
void runtime_fork_prepare();
void runtime_fork_parent();
void runtime_fork_child();
// The last fork of this thread was quiet (rt_fork.cpp, fork_can_be_quiet): one thread,
// nothing handed to the child, no lock taken, nothing of vmrt's written after it.  Valid
// from runtime_fork_prepare to the fork's return, on both sides.
bool runtime_fork_quiet();
// After fork() returned a pid in the parent: 0, or the errno the fork must fail with
// (the child could not be set up and has exited).  Per thread.
int runtime_fork_error();
// After fork() returned in the parent (pid > 0, or -1 when it failed): counts a lazy fork
// (no frame was in use, so the parent did not wait for the child to sign in) as a host fork;
// a quiet fork was counted before it, and is taken back when it failed.  Per thread.
void runtime_fork_returned(pid_t pid);

}  // namespace vmrt
