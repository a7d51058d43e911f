// vm_fds.h — the descriptors vmrt keeps open in the program's own table.
//
// Under paging a process holds vmrt's swap devices (swap_pager) and its userfaultfd
// (runtime/trap, runtime/pmap_linux) in the descriptor table it shares with the program.
// Programs number their descriptors as they like: a shell's `exec 3>file` replaced the swap
// device (pageouts went to the file) and `exec 4>&-` closed the userfaultfd (the next fault
// waited forever), and daemons close every descriptor above 2.  So each such descriptor is
// moved to the top of the table (below the soft RLIMIT_NOFILE, or below 4096 when it is
// higher: every fork copies the table up to its highest number; where programs' own numbering
// rarely reaches) and recorded here, and the shim (libc_shim/shim_fds.cpp) answers as if
// they were not there: close() says EBADF, close_range()/closefrom() skip them, and a
// dup2()/dup3() onto one first moves vmrt's descriptor to another free number
// (vm_fd_move), then lets the program's call replace the old number.
//
// One source of truth: a user holds a handle (an entry of this table), never a number, and
// turns it into the current number only inside a vm_fd_use, which a move waits for.  So no
// thread can read a number, lose the processor while a program's dup2 puts its own file
// there, and then write pages to that file or read the program's data.
//
// Lock-free for users (a fixed table of atomics, two counters); moves are serialised.  Safe
// from any thread, from a signal handler, and from a fork child (vm_fd_fork_child).
#pragma once

namespace vmrt {

// Most descriptors recorded at once: swap devices (16, one more while a fork merges them)
// + the userfaultfd (one more while its handshake is retried) + room.
inline constexpr unsigned kVmFdMax = 32;

// Move fd to the top of the table (close-on-exec) and record it; returns its handle
// (>= 0), or -1 when fd < 0 or the table is full (fd is then closed, errno EMFILE).  fd stays
// where it is when the host refuses a move (a tiny RLIMIT_NOFILE): recorded, only lower.
int vm_fd_keep(int fd);
// Forget the descriptor of handle h and close it; h < 0 is ignored.  => no vm_fd_use of h
// runs (the owner's own locking says so).
void vm_fd_close(int h);
// The number of handle h now, -1 for none.  Unguarded: a program's dup2 may move it right
// after.  For what is harmless on a stale number (poll, a message) and for a thread that no
// move can run beside (a fork child's only thread).
int vm_fd_number(int h);

// A use of a kept descriptor: fd() is its number for the guard's lifetime; a move of it waits
// for the guard to end.  Keep it short (no sleep that waits for another thread to act: a
// blocking read waits in poll outside the guard).  Nests.  May be taken in a signal handler.
class vm_fd_use {
 public:
  explicit vm_fd_use(int h);
  ~vm_fd_use();
  vm_fd_use(const vm_fd_use&) = delete;
  vm_fd_use& operator=(const vm_fd_use&) = delete;
  int fd() const { return fd_; }

 private:
  int fd_;
  unsigned parity_;
};

// A use whose only system call on fd() is one read(2) that may sleep until another thread
// acts (the userfaultfd handler waiting for a fault).  A move cannot wait for it to end, so
// it waits until the thread is asleep inside that read (/proc/self/task/TID/syscall: the
// read already holds the file, whatever the number becomes) or has left the use.  At most
// kVmFdWaitersMax at once (the constructor yields for a free entry).  Not nested in a
// vm_fd_use of the same thread.
inline constexpr unsigned kVmFdWaitersMax = 8;
class vm_fd_wait_use {
 public:
  explicit vm_fd_wait_use(int h);
  ~vm_fd_wait_use();
  vm_fd_wait_use(const vm_fd_wait_use&) = delete;
  vm_fd_wait_use& operator=(const vm_fd_wait_use&) = delete;
  int fd() const { return fd_; }

 private:
  int fd_;
  unsigned slot_;
};

// ioctl on handle h's descriptor inside a vm_fd_use; the ioctl's result and errno.
int vm_fd_ioctl(int h, unsigned long request, void* arg);
// fcntl(F_GETFL / F_SETFL and other integer commands) on handle h's descriptor inside a
// vm_fd_use, as the system call (the shim's fcntl answers EBADF for a kept descriptor).
int vm_fd_fcntl(int h, int cmd, long arg);

// Is fd (a number) one of vmrt's?
bool vm_fd_is_kept(int fd);
// The recorded descriptors in [first, last], ascending, at most max of them; their count.
unsigned vm_fd_kept_in(unsigned first, unsigned last, int* out, unsigned max);

// fd is one of vmrt's and the program is about to put a descriptor of its own there (dup2,
// dup3): duplicate vmrt's to another free number (at the top of the table when one is free,
// else the lowest free), record that number for its handle, and wait until no vm_fd_use can
// still be using the old one.  fd itself stays open, no longer kept: the caller's dup3
// replaces it, or the caller closes it.  0; -1 with errno EBADF when fd is not (or no longer)
// kept, EMFILE when the table has no free number.  => may sleep (yields while uses of the old
// number finish; without /proc, a waiting use holds it up until its read returns); the caller
// holds no vm_fd_use and no VM lock.
int vm_fd_move(int fd);

// Is the descriptor table the one vmrt's numbers are recorded for?  False in a vfork child
// (python's subprocess, posix_spawn): it shares vmrt's memory but has a copy of the table,
// where the program may do as it likes before its exec.
bool vm_fd_table_ours();

// Fork child: uses in flight were other threads', which did not survive; a move in flight
// likewise.  => the child's only thread.
void vm_fd_fork_child();

}  // namespace vmrt
