/* cow_demo.c — vmrt's public API in one page: an address space, vmspace_fork with
 * copy-on-write, a trap caught with the trap hook, and the procstat / vmstat reports.
 *
 *   <build>/bin/cow_demo            (VMRT_TRAP=sigsegv|userfaultfd to pick the backend)
 */
#include <setjmp.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <vmrt/vmrt.h>

static sigjmp_buf trap_env;
static vmrt_trap last_trap;

static void on_trap(const vmrt_trap* t, void* arg) {
  (void)arg;
  last_trap = *t;
  siglongjmp(trap_env, 1);
}

static const char* reason_name(vmrt_trap_reason r) {
  return r == VMRT_TRAP_NO_ENTRY ? "no entry" : r == VMRT_TRAP_PROTECTION ? "protection" : "resource";
}

int main(void) {
  if (vmrt_init() != 0) {
    perror("vmrt_init");
    return 1;
  }
  printf("vmrt up, trap backend: %s\n", vmrt_trap_backend());

  /* 1. An address space and some private memory in it. */
  vmrt_vmspace* parent = vmrt_vmspace_create(64 << 20);
  char* p = vmrt_mmap(parent, NULL, 16 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (parent == NULL || p == VMRT_MAP_FAILED) {
    perror("vmspace/mmap");
    return 1;
  }
  strcpy(p, "written by the parent");
  strcpy(p + 4096, "page two");
  printf("parent window %p, mapping at %p: \"%s\"\n", vmrt_vmspace_base(parent), (void*)p, p);

  /* 2. Fork it: the child shares every page copy-on-write. */
  long long cow0 = vmrt_counter("copy-on-write faults") + vmrt_counter("copy-on-write optimized faults");
  vmrt_vmspace* child = vmrt_vmspace_fork(parent);
  char* c = vmrt_translate(parent, child, p);
  printf("child  window %p, same mapping at %p: \"%s\"\n", vmrt_vmspace_base(child), (void*)c, c);
  strcpy(c, "the child's own copy");
  strcpy(p + 4096, "parent changed page two");
  printf("after writes: parent \"%s\" / \"%s\"; child \"%s\" / \"%s\"\n", p, p + 4096, c, c + 4096);
  printf("copy-on-write faults: %lld\n",
         vmrt_counter("copy-on-write faults") + vmrt_counter("copy-on-write optimized faults") - cow0);

  /* 3. A trap: make the parent's page read-only and write to it. */
  vmrt_mprotect(parent, p, 16 * 4096, PROT_READ);
  vmrt_set_trap_hook(on_trap, NULL);
  if (sigsetjmp(trap_env, 1) == 0) {
    p[10] = 'X';
    printf("the write went through?!\n");
  } else {
    printf("trap caught: %s access at %p refused (%s), vmspace %s\n",
           last_trap.access == PROT_WRITE ? "write" : "read", last_trap.addr, reason_name(last_trap.reason),
           last_trap.vmspace == parent ? "parent" : "?");
  }
  if (sigsetjmp(trap_env, 1) == 0) {
    volatile char x = *((char*)vmrt_vmspace_base(parent) + (32 << 20));
    (void)x;
  } else {
    printf("trap caught: read of a hole at %p (%s)\n", last_trap.addr, reason_name(last_trap.reason));
  }
  vmrt_set_trap_hook(NULL, NULL);
  printf("page still reads \"%s\"\n", p);

  /* 4. Reports. */
  fflush(stdout);
  printf("\n--- procstat -v (parent) ---\n");
  fflush(stdout);
  vmrt_report_procstat(parent, 1);
  printf("--- procstat -v (child) ---\n");
  fflush(stdout);
  vmrt_report_procstat(child, 1);
  printf("--- vmstat -s ---\n");
  fflush(stdout);
  vmrt_report_vmstat(1);
  printf("--- vmstat -m ---\n");
  fflush(stdout);
  vmrt_report_malloc(1);
  printf("consistency: parent %s, child %s\n", vmrt_check(parent, 2) == 0 ? "ok" : "BROKEN",
         vmrt_check(child, 2) == 0 ? "ok" : "BROKEN");
  vmrt_vmspace_destroy(child);
  vmrt_vmspace_destroy(parent);
  return 0;
}
