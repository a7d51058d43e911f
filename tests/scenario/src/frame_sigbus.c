/* frame_sigbus.c — a page the program touches cannot be supplied: SIGBUS/BUS_ADRERR at the
   touched byte.  Natively: a shared mapping of an empty file.  Under vmrt (-DWITH_VMRT, the
   C API): a vmspace mapping whose frame allocation fails (VMRT_FAIL=frame).  With "handle"
   the handler prints what it got; without, the process dies of SIGBUS. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#ifdef WITH_VMRT
#include "runtime/vmrt.h"
#endif
static char* volatile target;
static void on_signal(int sig, siginfo_t* si, void* uc) {
  (void)uc;
  char buf[128];
  int n = snprintf(buf, sizeof buf, "%s code=%s addr=%s\n", sig == SIGBUS ? "SIGBUS" : sig == SIGSEGV ? "SIGSEGV" : "other",
                   si->si_code == BUS_ADRERR ? "BUS_ADRERR" : "other", si->si_addr == (void*)target ? "the-touched-byte" : "elsewhere");
  write(1, buf, n);
  _exit(3);
}
int main(int argc, char** argv) {
  int handle = argc > 1 && strcmp(argv[1], "handle") == 0;
  if (handle) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_signal;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGBUS, &sa, NULL);
    sigaction(SIGSEGV, &sa, NULL);
  }
  char* p;
#ifdef WITH_VMRT
  if (vmrt_init() != 0) return 10;
  vmrt_vmspace* vs = vmrt_vmspace_create(16u << 20);
  if (vs == NULL) return 11;
  p = vmrt_mmap(vs, NULL, 8 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == VMRT_MAP_FAILED || vmrt_madvise(vs, p, 8 << 20, MADV_RANDOM) != 0) return 12;
#else
  /* Natively: a shared mapping of an empty file; the kernel has no page to give: SIGBUS. */
  char path[] = "/tmp/vmrt-sigbus-XXXXXX";
  int fd = mkstemp(path);
  unlink(path);
  p = mmap(NULL, 8 << 20, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) return 12;
#endif
  target = p + (5 << 20) + 77;
  printf("touching\n");
  fflush(stdout);
  *target = 1;
  printf("survived\n");
  fflush(stdout);
  _exit(0);
}
