// vm_fds.h — the descriptors vmrt keeps open in the program's own table.
//
// Under paging a process holds vmrt's swap devices (swap_pager) and its userfaultfd
// (runtime/trap) in the descriptor table it shares with the program.  Programs number their
// descriptors as they like: a shell's `exec 3>file` replaced the swap device (pageouts went
// to the file) and `exec 4>&-` closed the userfaultfd (the next fault waited forever), and
// daemons close every descriptor above 2.  So each such descriptor is moved to the top of the
// table (below the soft RLIMIT_NOFILE, where programs' own numbering rarely reaches) and
// recorded here, and the shim's close family (libc_shim/shim_fds.cpp) leaves recorded ones
// open, as if they were not there: close() says EBADF, close_range()/closefrom() skip them.
//
// Lock-free: a fixed table of atomics, safe from any thread and from a fork child.
#pragma once

namespace vmrt {

// Most descriptors recorded at once: swap devices (16) + the userfaultfd + room.
inline constexpr unsigned kVmFdMax = 32;

// Move fd to the top of the table (close-on-exec) and record it; returns the descriptor to
// use (fd itself when the host refuses a move or the table is full: it stays usable, only
// unprotected).  fd < 0 is returned as is.
int vm_fd_keep(int fd);
// Forget fd and close it.  => fd came from vm_fd_keep.
void vm_fd_close(int fd);
// Is fd one of vmrt's?
bool vm_fd_is_kept(int fd);
// The recorded descriptors in [first, last], ascending, at most max of them; their count.
unsigned vm_fd_kept_in(unsigned first, unsigned last, int* out, unsigned max);

}  // namespace vmrt
