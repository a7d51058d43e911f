// shim_signal.h — what the signal wrappers (shim_signal.cpp) share with the rest of the shim.
#pragma once

namespace vmrt::shim {

// The fault signals (SIGSEGV, SIGBUS) the calling thread's program code believes blocked,
// which vmrt does not block for real once its handler is installed (shim_signal.cpp,
// "Masks").  pthread_create hands them to the new thread, which inherits its creator's
// mask.  An opaque value: pass back what faults_blocked returned.
unsigned faults_blocked();
void set_faults_blocked(unsigned bits);

}  // namespace vmrt::shim
