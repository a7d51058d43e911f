// rt_lock_stack.h — the VM lock holder's own stack, when the program placed it in memory
// the VM pages.
//
// A thread may run on a stack the program made itself (pthread_attr_setstack over malloc'd
// or mmap'd memory, an alternate signal stack from malloc): vmrt memory, demand-zero on
// first touch and taken by pageout like any other.  The VM touches it only by calling
// functions, but it does so while holding the VM lock, and a fault then is one no handler
// can serve (it needs the lock).  So before such a thread takes the lock, the next
// kLockStackBytes below its stack pointer are written (faulted in, with no lock held), and
// with the lock held they are checked to be still in place (vm_lock.h, stack hooks); as
// pageout runs only under the lock, they stay so until it is released.  Threads on host
// stacks (main's, glibc's own thread stacks) pay one thread-local compare.
//
// Stacks the shim does not see made (a coroutine's, switched to with swapcontext) are not
// covered.
#pragma once

#include <cstddef>
#include <cstdint>

namespace vmrt::rt {

// How much stack below the caller is made resident: the deepest the VM's own calls go
// under the lock, several times over.  Measured on a patterned program stack: a thread's
// mmap, munmap, mprotect, madvise, mremap, a file mapping and a 5 MB malloc and free, with
// a paged heap under either backend, wrote less than 5 KB below the calling frame (a
// vslock hold's page array alone is 2 KiB).
inline constexpr std::size_t kLockStackBytes = 32 * 1024;

// Which of the calling thread's stacks.
enum class lock_stack_kind : unsigned { thread = 0, altstack = 1 };

// The calling thread runs on [lo, hi) (kind thread), or has the alternate signal stack
// [lo, hi) installed (kind altstack); [0, 0) forgets it.  The first use sets the VM lock's
// stack hooks.  => no lock; thread-local only.
void lock_stack_set(lock_stack_kind kind, std::uintptr_t lo, std::uintptr_t hi);

}  // namespace vmrt::rt
