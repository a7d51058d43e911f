// vm_assert.cpp — vm_panic.
#include "vm/vm_assert.h"

#include <cstdlib>

#include "vm/vm_out.h"

namespace vmrt {

void vm_panic(const char* msg, const char* file, int line) {
  vm_fd_out<> o(2);
  o.str("vmrt: panic: ").str(msg).str(" (").str(file).str(":").i(line).str(")\n");
  o.flush();
  abort();
}

void vm_assert_failed(const char* who, const char* what, const char* msg, const char* file, int line) {
  vm_fd_out<512> o(2);
  o.str(who).str(": assertion failed: ").str(what).str(" (").str(msg).str(") at ").str(file).ch(':').i(line).ch('\n');
  o.flush();
  abort();
}

}  // namespace vmrt
