/* as_after_boot.c — a program lowers its own RLIMIT_AS (RLIMIT_DATA when built with
   -DLIMIT_RES=RLIMIT_DATA) after its allocator is up, then
   mallocs 1 MiB blocks until malloc fails: it must fail with NULL/ENOMEM near the limit
   (as glibc's does), never crash; after freeing, malloc works again; realloc past the
   limit fails leaving the block intact; lifting the soft limit lets a large malloc
   succeed again.  Prints the MiB obtained on one line for the scenario to compare. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#define LIMIT_MIB 256
#ifndef LIMIT_RES
#define LIMIT_RES RLIMIT_AS
#endif
static void* blocks[4096];

int main(void) {
  void* volatile warm = malloc(64); /* the allocator is up (under vmrt: booted) */
  free(warm);
  struct rlimit rl;
  if (getrlimit(LIMIT_RES, &rl) != 0) { perror("getrlimit"); return 2; }
  rl.rlim_cur = (rlim_t)LIMIT_MIB << 20;
  if (setrlimit(LIMIT_RES, &rl) != 0) { perror("setrlimit"); return 2; }
  int n = 0, err = 0;
  while (n < 4096) {
    errno = 0;
    char* p = malloc(1 << 20);
    if (p == NULL) { err = errno; break; }
    p[0] = 1; p[(1 << 20) - 1] = 2;
    blocks[n++] = p;
  }
  printf("mib %d\n", n);
  printf("malloc failed with %s\n", n == 4096 ? "nothing (no failure)" : err == ENOMEM ? "ENOMEM" : strerror(err));
  /* Past the limit: calloc and realloc fail too, realloc leaves the block intact. */
  errno = 0;
  void* c = calloc(64, 1 << 20);
  printf("calloc 64M: %s\n", c == NULL && errno == ENOMEM ? "NULL/ENOMEM" : "succeeded");
  free(c);
  if (n > 0) {
    char* first = blocks[0];
    void* r = realloc(first, (size_t)LIMIT_MIB << 21);
    printf("realloc past the limit: %s\n", r == NULL && first[0] == 1 && first[(1 << 20) - 1] == 2 ? "NULL, block intact" : "wrong");
    if (r != NULL) blocks[0] = r;
  }
  for (int i = 0; i < n; ++i) free(blocks[i]);
  char* again = malloc(64 << 20);
  printf("after free, malloc 64M: %s\n", again != NULL ? "ok" : "NULL");
  if (again != NULL) memset(again, 3, 64 << 20);
  free(again);
  /* Lifting the soft limit lifts the malloc limit. */
  rl.rlim_cur = rl.rlim_max;
  if (setrlimit(LIMIT_RES, &rl) != 0) { perror("setrlimit back"); return 2; }
  void* big = malloc((size_t)LIMIT_MIB << 21);
  printf("limit lifted, malloc %dM: %s\n", LIMIT_MIB * 2, big != NULL ? "ok" : "NULL");
  free(big);
  struct rlimit now;
  getrlimit(LIMIT_RES, &now);
  printf("getrlimit reports %s\n", now.rlim_cur == rl.rlim_cur ? "the program's value" : "something else");
  return 0;
}
