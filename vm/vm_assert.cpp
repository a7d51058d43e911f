// vm_assert.cpp — vm_panic.
#include "vm/vm_assert.h"

#include <cstdlib>
#include <cstring>
#include <unistd.h>

#include "vm/vm_out.h"

namespace vmrt {

void vm_panic(const char* msg, const char* file, int line) {
  vm_out o(2);
  o.str("vmrt: panic: ").str(msg).str(" (").str(file).str(":").i(line).str(")\n");
  o.flush();
  abort();
}

}  // namespace vmrt
