/* mmap_touch — the program side of fault_bench's "program mmap" rows: plain C, no vmrt
 * library, run natively and under the shim (LD_PRELOAD=libvmrt_malloc.so), so its mmap is
 * the shim's when preloaded.  Maps N MiB of private anonymous memory and times the first
 * touch of every page (one write each), in address order and then — on a fresh mapping — in
 * a random permutation, checking every page afterwards.
 *   mmap_touch MIB [nothp]  ->  "RESULT seq_touch NS PAGES OK" and "RESULT rand_touch NS PAGES OK"
 * nothp: prctl(PR_SET_THP_DISABLE) first, so residency is page by page (Linux's; vmrt then
 * fills no dense blocks: vm_fault.h, kZeroBlock).
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <time.h>

static uint64_t now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

static void one(const char* name, size_t pages, const size_t* order) {
  char* p = mmap(NULL, pages << 12, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) { perror("mmap"); exit(1); }
  uint64_t t0 = now_ns();
  for (size_t k = 0; k < pages; k++) {
    size_t i = order != NULL ? order[k] : k;
    p[i << 12] = (char)(i * 7 + 1);
  }
  uint64_t ns = now_ns() - t0;
  int ok = 1;
  for (size_t i = 0; i < pages; i++) ok &= p[i << 12] == (char)(i * 7 + 1) && p[(i << 12) + 100] == 0;
  munmap(p, pages << 12);
  printf("RESULT %s %llu %zu %d\n", name, (unsigned long long)ns, pages, ok);
}

int main(int argc, char** argv) {
  size_t pages = (argc > 1 ? strtoull(argv[1], NULL, 10) : 256) << 8;
  if (argc > 2 && strcmp(argv[2], "nothp") == 0 && prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0) != 0) {
    perror("prctl");
    return 1;
  }
  /* Under the shim vmrt boots at the first malloc; mmaps before it are the host's. */
  size_t* order = malloc(pages * sizeof *order);
  if (order == NULL) return 1;
  for (size_t i = 0; i < pages; i++) order[i] = i;
  uint64_t s = 88172645463325252ull;
  for (size_t i = pages; i > 1; i--) {
    s ^= s << 13, s ^= s >> 7, s ^= s << 17;
    size_t j = (size_t)(s % i), t = order[i - 1];
    order[i - 1] = order[j], order[j] = t;
  }
  one("seq_touch", pages, NULL);
  one("rand_touch", pages, order);
  free(order);
  return 0;
}
