/* map_count.c — a program with tens of thousands of small mappings reaches the host's
   vm.max_map_count (mmap fails with ENOMEM), then mallocs: every malloc must return a
   usable block or NULL with ENOMEM, never crash; then it unmaps 2000 mappings and mallocs
   again.  With "early", it mallocs (and frees half of 64 x 1 MiB) before exhausting the
   mappings, so the allocator is already up when the limit is reached.  With "raw", it
   mallocs, makes 1000 mappings through libc, then fills the limit with raw system calls
   (which no interposer sees, as glibc's own mappings), and unmaps 500 of the libc ones:
   each munmap must succeed and leave the page unmapped (mincore: ENOMEM). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
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
  if (argc > 1 && strcmp(argv[1], "raw") == 0) {
    if (!try_malloc(1 << 20)) return 1;
    static char* mine[1000];
    for (int i = 0; i < 1000; ++i) {
      mine[i] = mmap(NULL, pg, (i & 1) ? PROT_READ : PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      if (mine[i] == MAP_FAILED) { puts("libc mmap failed early"); return 1; }
    }
    int r = 0;
    for (; r < MAXM; ++r) {
      long p = syscall(SYS_mmap, 0L, pg, (r & 1) ? PROT_READ : PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1L, 0L);
      if (p < 0 && p > -4096) break;
      maps[r] = (char*)p;
    }
    printf("raw mmap failed after %s mappings\n", r > 50000 ? "tens of thousands of" : "few");
    int bad = 0;
    for (int i = 0; i < 1000; i += 2) {
      unsigned char v;
      if (munmap(mine[i], pg) != 0) { printf("munmap %d: %s\n", i, strerror(errno)); ++bad; continue; }
      if (mincore(mine[i], pg, &v) == 0 || errno != ENOMEM) { printf("page %d still mapped after munmap\n", i); ++bad; }
    }
    printf("500 munmaps at the limit: %s\n", bad == 0 ? "all unmapped" : "FAILED");
    for (int i = 0; i < 2000; ++i) syscall(SYS_munmap, maps[--r], pg);
    printf("after unmapping 2000 raw:\n");
    try_malloc(16); try_malloc(100000); try_malloc(8 << 20);
    for (int i = 1; i < 1000; i += 2) if (mine[i][0] != 0) { puts("a kept page changed"); return 1; }
    puts("done");
    return 0;
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
