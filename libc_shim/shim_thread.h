// shim_thread.h — pthread_create under sigsegv traps with a paged heap (shim_thread.cpp).
#pragma once

namespace vmrt::shim {

// Before a host fork (the parent's atfork prepare handler): note where the locale data is,
// for the threads the child's set-up starts (it may not ask glibc then).
void thread_start_fork_prepare();

}  // namespace vmrt::shim
