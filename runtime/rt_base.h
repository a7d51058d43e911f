// rt_base.h — what every runtime/ file needs: assertions, messages and a clock that
// never allocate (usable inside malloc, in signal handlers, after a fork).
// Formatting is vm/vm_out.h's vm_out (included here for runtime files).
#pragma once

#include <cstddef>
#include <cstdint>

#include "vm/vm_out.h"

// This object's ELF header, which the linker defines: its load address (the loaded
// objects' list names an object by it, rt_dynsym.h; the load-time populate reads the
// program headers after it, rt_populate.cpp).
extern "C" __attribute__((visibility("hidden"))) const char __ehdr_start[];

namespace vmrt::rt {

// Write "vmrt: assertion failed: <what> (<msg>) at file:line" to fd 2 and abort.
[[noreturn]] void rt_panic(const char* what, const char* msg, const char* file, int line);

// Message on stderr: the three pieces, written through a small buffer (not cut).
void say(const char* a, const char* b = "", const char* c = "");
// errno as its symbolic name for such messages ("an error" for one not listed): strerror may
// take glibc's locale lock (dcgettext), which a setlocale() that reached the first malloc
// already holds.
const char* errno_name(int e);

// The host's memory as sysinfo(2) tells it, asked once per process: its RAM in bytes (4 GiB
// when the host will not say) and whether it has swap (assumed so when it will not say).
// Boot needs both (the physmem default, the pmap's choice of how to take pages): one call,
// where two cost ~5 us each (sysinfo sums the block devices' page counts).  Lock-free.
struct host_memory {
  std::size_t ram;
  bool swap;
};
host_memory host_memory_info();

// Start a detached machine thread (the userfaultfd handler, the pageout daemon) running
// fn(arg) with every signal blocked, named `name`.  False when the host refuses.  Returns
// once the thread is marked as vmrt's (rt_creds.h), unless `wait_marked` is false (the
// first userfaultfd handler, whose start may fault on pages only its creator can serve:
// trap.cpp waits for it its own way).
//  => may call malloc (pthread_create): never inside malloc or a signal handler.
bool start_machine_thread(void* (*fn)(void*), void* arg, std::size_t stack, const char* name, bool wait_marked = true);

// Machine threads started in this process and not known to have ended (a fork child has
// none until it starts its own: machine_threads_fork_child).  glibc counts them among the
// process's threads, so the program's last thread ending does not end the process by
// itself (libc_shim/shim_thread.cpp watches for it).  Lock-free.
unsigned machine_thread_count();
void machine_threads_fork_child();

// True on a thread inside start_machine_thread's pthread_create: the shim's pthread_create
// (which the runtime's own call reaches) passes such a creation straight through.
bool creating_machine_thread();

// /proc/self/task/TID/LEAF into buf (NUL-terminated, a trailing newline dropped): its
// length, or -1 (no such thread, no /proc).  => may sleep; never mallocs; not for a signal
// handler (libc's open and read, which the shim wraps).
long read_task_file(int tid, const char* leaf, char* buf, std::size_t size);

// Thread tid's state letter from /proc/self/task/TID/stat ('R', 'S', 'D', 'Z', ...), or
// '\0' when it cannot be read (the thread is gone, or no /proc).  As read_task_file.
char task_state(int tid);

// Monotonic clock in nanoseconds (vDSO; async-signal-safe).
std::uint64_t now_ns();

}  // namespace vmrt::rt

#define RT_ASSERT(cond, msg)                                                        \
  do {                                                                              \
    if (__builtin_expect(!(cond), 0)) ::vmrt::rt::rt_panic(#cond, (msg), __FILE__, __LINE__); \
  } while (0)
