// scatter_pages.c — MB megabytes of memory (a private anonymous mmap, or malloc with
// "heap"), every page written in order, then as many touches of pages chosen at random
// (xorshift, fixed seed) as there are pages: reads, and with "write" every other touch an
// increment.  Prints the sum of one byte of every touch and of every page at the end, so that
// a lost or misplaced page changes the output.
//   scatter_pages MB mmap|heap [write]
// Under `vmrun --physmem` smaller than MB, each random touch of a page not resident pages
// it in (and another out) into whatever frame is free: the page mappings fragment.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

int main(int argc, char** argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: scatter_pages MB mmap|heap [write]\n");
    return 2;
  }
  size_t n = (size_t)atol(argv[1]) << 8;  // pages
  int heap = strcmp(argv[2], "heap") == 0, write = argc > 3 && strcmp(argv[3], "write") == 0;
  void* volatile boot = malloc(16);  // vmrt boots at the first malloc: the mmap is then its own
  free(boot);
  unsigned char* p = heap ? malloc(n << 12) : mmap(NULL, n << 12, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == NULL || p == MAP_FAILED) {
    perror("allocation");
    return 1;
  }
  for (size_t i = 0; i < n; i++) p[i << 12] = (unsigned char)(i * 7);
  unsigned long long x = 88172645463325252ull, sum = 0;
  for (size_t k = 0; k < n; k++) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    size_t i = x % n;
    if (write && (k & 1)) p[i << 12] += 1;
    else sum += p[i << 12];
  }
  for (size_t i = 0; i < n; i++) sum += p[i << 12];
  printf("%zu pages, sum %llu\n", n, sum);
  return 0;
}
