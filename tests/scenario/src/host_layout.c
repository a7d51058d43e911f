/* host_layout — where the host puts a mapping made after vmrt has booted, and what the
 * process's page tables cost (scenario exec_boot).
 *
 * After its first malloc (under the shim: boot, which reserves tens of GiB of address
 * space) the program makes a 4 MiB mapping the shim never sees (a raw mmap system call, as
 * libc does for itself: setlocale's locale files, thread stacks; too large for the gaps
 * between the libraries) and checks it lies above every address-space reservation of 1 GiB
 * or more: next to the shared libraries, as natively, not below vmrt's reservations in a GiB
 * and 2 MiB block of its own (vm/vm_host_layout.h).  Prints "ok" or what is wrong, then
 * "near 1" when a file mapping made through libc lies in the 2 MiB block of the first
 * malloc'd block (under the shim: the heap's first page, with the program's first mappings
 * right below it, runtime/boot.cpp), else "near 0", and "pte <kB>" (VmPTE: host page-table
 * memory).  Natively there is no such reservation (ok) and the heap is elsewhere (near 0). */
#define _GNU_SOURCE
#include <fcntl.h>
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
  int fd = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 5;
  const char* fm = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, fd, 0);
  close(fd);
  if (fm == MAP_FAILED || fm[0] != 0x7f) return 6;
  printf("near %d\n", ((unsigned long)fm >> 21) == ((unsigned long)first >> 21));
  long pte = -1;
  FILE* s = fopen("/proc/self/status", "r");
  if (s == NULL) return 4;
  while (fgets(line, sizeof line, s) != NULL)
    if (strncmp(line, "VmPTE:", 6) == 0) pte = strtol(line + 6, NULL, 10);
  fclose(s);
  printf("pte %ld\n", pte);
  return 0;
}
