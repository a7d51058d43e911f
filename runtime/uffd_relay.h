// uffd_relay.h — the userfaultfd events of a thread that is itself waiting in a fault,
// handed to it through a signal.
//
// The first userfaultfd handler thread of a process is made with pthread_create, and
// pthread_create touches program memory in the creating thread: in a fork child it reuses a
// cached thread stack (the parent's handler thread's stack is in glibc's cache) and
// initialises its TLS, reading the old dtv in the heap and the link_map of every dlopen'ed
// module with TLS, also in the heap.  Under paging those pages have no host PTE in the child
// or are out on swap, so each touch is a fault that waits for a handler, and the only thread
// that could serve it is the one waiting (a child of python's test_os hung so).
//
// A relay is a raw thread (clone without TLS of its own: it makes system calls inline and
// touches nothing but its host stack and this file's static ring) that reads the events
// and signals the creating thread.  The host wakes a user-mode userfaultfd wait for a
// signal and retries the access once the handler returns, so the creating thread's signal
// handler serves the event it waited on, or those of the new thread.  The signal (SIGRTMAX)
// is borrowed while the relay runs: the program's action for it is put back after, and a
// signal of the program's that arrives meanwhile goes to the program's handler.
//
// Kernel-mode accesses of the creating thread (a system call's buffer) are not woken by a
// signal; pthread_create makes none on pages it has not touched first.
#pragma once

#include <linux/userfaultfd.h>

namespace vmrt::rt {

// Serves one event read from the userfaultfd (trap.cpp's serve_event; fh: its vm_fds handle).
using uffd_serve_fn = void (*)(int fh, const uffd_msg& msg);

// While one exists, the events of the non-blocking userfaultfd numbered `fd` are read by a
// relay thread and served by `serve(fh, ...)` in the constructing thread, from its signal
// handler: the constructing thread takes them wherever it runs or waits (its signal mask lets
// the relay's signal in).  Without a relay (the host refused the signal, the stack or the
// clone: ok() is false) the events stay queued, for the caller to read.  The relay reads the
// number it was given: a dup2 onto it meanwhile (vm_fds.h) is not followed (it runs for the
// few hundred microseconds of a pthread_create).
//  => one relay at a time (g_start_lock, or a fork child's only thread); may sleep.
class uffd_relay {
 public:
  uffd_relay(int fd, int fh, uffd_serve_fn serve);
  ~uffd_relay();  // stops the relay thread, serves what it read, puts the signal back
  uffd_relay(const uffd_relay&) = delete;
  uffd_relay& operator=(const uffd_relay&) = delete;

  bool ok() const { return running_; }

 private:
  bool running_ = false;
  bool handler_set_ = false;
  void* stack_ = nullptr;
  int wake_ = -1;  // vm_fds handle of the eventfd that wakes the relay to stop (-1: none)
};

}  // namespace vmrt::rt
