/* map_count.c — a program with tens of thousands of small mappings reaches the host's
   vm.max_map_count (mmap fails with ENOMEM), then mallocs: every malloc must return a
   usable block or NULL with ENOMEM, never crash; then it unmaps 2000 mappings and mallocs
   again.  With "early", it mallocs (and frees half of 64 x 1 MiB) before exhausting the
   mappings, so the allocator is already up when the limit is reached. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#define MAXM 200000
static char* maps[MAXM];
static int try_malloc(size_t n) {
  errno = 0;
  char* p = malloc(n);
  if (p == NULL) { printf("  malloc(%zu): NULL %s\n", n, errno == ENOMEM ? "ENOMEM" : strerror(errno)); return 0; }
  memset(p, 1, n);
  printf("  malloc(%zu): ok\n", n);
  return 1;
}
int main(int argc, char** argv) {
  long pg = sysconf(_SC_PAGESIZE);
  if (argc > 1 && strcmp(argv[1], "early") == 0) {
    char* keep[64];
    for (int i = 0; i < 64; ++i) {
      keep[i] = malloc(1 << 20);
      if (keep[i] == NULL) { puts("early malloc failed"); return 1; }
      memset(keep[i], 2, 1 << 20);
    }
    for (int i = 0; i < 64; i += 2) free(keep[i]);
  }
  /* one page each, alternating protections so that neighbours never merge: one VMA each */
  int n = 0;
  for (; n < MAXM; ++n) {
    char* p = mmap(NULL, pg, (n & 1) ? PROT_READ : PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) break;
    maps[n] = p;
  }
  printf("mmap failed after %s mappings: %s\n", n > 60000 ? "tens of thousands of" : "few", strerror(errno));
  try_malloc(16); try_malloc(4000); try_malloc(100000); try_malloc(8 << 20); try_malloc(64 << 20);
  for (int i = 0; i < 2000; ++i) munmap(maps[--n], pg);
  printf("after unmapping 2000:\n");
  try_malloc(16); try_malloc(100000); try_malloc(8 << 20); try_malloc(64 << 20);
  puts("done");
  return 0;
}
