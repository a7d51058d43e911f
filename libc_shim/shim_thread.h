// shim_thread.h — the program's threads: their start and their end (shim_thread.cpp).
#pragma once

namespace vmrt::shim {

// Before a host fork (the parent's atfork prepare handler): note where the locale data is,
// for the threads the child's set-up starts (it may not ask glibc then).
void thread_start_fork_prepare();

// In a fork child (its atfork handler): the forking thread is the child's only program thread.
void thread_fork_child();

}  // namespace vmrt::shim
