// rt_creds.h — vmrt's machine threads follow the program's credentials.
//
// Linux keeps credentials per thread; glibc makes setuid(), setgid(), setgroups() and the
// rest process-wide by signalling every thread (its internal SIGSETXID) to make the same
// system call, and aborts the process when the threads' results differ.  vmrt's machine
// threads (the userfaultfd handlers, the pageout daemon) are threads of the program, so
// they take part.  Capabilities and PR_SET_KEEPCAPS are per thread and glibc does not
// spread them: a program that keeps its capabilities across setuid (prctl(PR_SET_KEEPCAPS),
// setresuid, capset) and then calls setresgid — `setpriv --reuid U --regid G
// --init-groups`, privilege-dropping daemons — found the machine threads without the
// capability it had raised, their setresgid failed where its own succeeded, and glibc
// aborted it (scenario qa_postgres; natively single-threaded, it never could).
//
// So a machine thread keeps its permitted capabilities across uid changes (PR_SET_KEEPCAPS)
// and, in a relay in front of glibc's SIGSETXID handler, first takes the capabilities of
// the program's main thread (capget on the thread-group leader; lowering or raising within
// what it kept), lets glibc's handler make the call, then follows the leader once more
// after the leader's own call, so it never holds a capability the program gave up.
#pragma once

namespace vmrt::rt {

// In a new machine thread, before anything else: keep permitted capabilities across uid
// changes, and mark the thread as vmrt's.  No malloc; never fails (a refused prctl only
// leaves the thread as the host made it).
void creds_machine_thread_start();
// After a machine thread was created (glibc's SIGSETXID handler exists once any thread
// was): put the relay in front of it, once per process.  Idempotent; no malloc.
void creds_install_relay();

}  // namespace vmrt::rt
