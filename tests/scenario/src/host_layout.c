/* host_layout — where the host puts a mapping made after vmrt has booted, and what the
 * process's page tables cost (scenario exec_boot).
 *
 * After its first malloc (under the shim: boot, which reserves tens of GiB of address
 * space) the program makes a 4 MiB mapping the shim never sees (a raw mmap system call, as
 * libc does for itself: setlocale's locale files, thread stacks; too large for the gaps
 * between the libraries) and checks it lies above every address-space reservation of 1 GiB
 * or more: next to the shared libraries, as natively, not below vmrt's reservations in a GiB
 * and 2 MiB block of its own (vm/vm_host_layout.h).  Prints "ok" or what is wrong, then
 * "pte <kB>" (VmPTE: host page-table memory).  Natively there is no such reservation: ok. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(void) {
  char* volatile first = malloc(100);
  if (first == NULL) return 1;
  first[0] = 1;
  void* raw = (void*)syscall(SYS_mmap, NULL, 4u << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (raw == MAP_FAILED) return 2;
  ((char*)raw)[0] = 1;
  unsigned long top_reserved = 0;
  char line[512];
  FILE* m = fopen("/proc/self/maps", "r");
  if (m == NULL) return 3;
  while (fgets(line, sizeof line, m) != NULL) {
    unsigned long lo, hi;
    char perm[8];
    if (sscanf(line, "%lx-%lx %7s", &lo, &hi, perm) != 3) continue;
    if (strcmp(perm, "---p") == 0 && hi - lo >= (1ul << 30) && hi > top_reserved) top_reserved = hi;
  }
  fclose(m);
  if ((unsigned long)raw < top_reserved)
    printf("a mapping made after boot at %p lies below a reservation ending at %#lx\n", raw, top_reserved);
  else
    puts("ok");
  long pte = -1;
  FILE* s = fopen("/proc/self/status", "r");
  if (s == NULL) return 4;
  while (fgets(line, sizeof line, s) != NULL)
    if (strncmp(line, "VmPTE:", 6) == 0) pte = strtol(line + 6, NULL, 10);
  fclose(s);
  printf("pte %ld\n", pte);
  return 0;
}
