/* paging_workload.c — the program bench/paging_bench runs under a memory limit, on the host
 * (in a memory cgroup) and under vmrun --physmem: one malloc'd working set, touched page by
 * page.  Plain C, no vmrt library: the same binary runs natively and under the shim.
 *
 *   paging_workload seq MB [PASSES]             PASSES scans in address order (default 3):
 *                                               each page read and checked (from the second
 *                                               scan on), then rewritten; a last scan checks
 *   paging_workload random MB [TOUCHES] [SEED]  one sequential fill, then TOUCHES (default
 *                                               2 x pages) touches of pages drawn by a fixed
 *                                               PCG-style generator from SEED (default 42):
 *                                               each reads and checks the page, every other
 *                                               one rewrites it; a last scan checks
 *
 * Prints one line:
 *   <mode> <MB> MB: checksum <hex> bad <N> fill_ms <t> access_ms <t> total_ms <t>
 * The checksum folds every word read back, so it is the same on every correct run of the
 * same arguments (host or vmrt); bad counts pages whose words were not what was last
 * written (exit 1 when any).  total_ms runs from before the malloc to after the last check
 * (the program's start-up and exit are not in it); fill_ms is the first scan (first touch
 * of every page), access_ms the rest. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { kPage = 4096, kWords = kPage / 8 };

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* What page i holds at version v: its first and last word. */
static uint64_t word(size_t i, uint32_t v) {
  return ((uint64_t)i * 0x9E3779B97F4A7C15ull) ^ ((uint64_t)v << 48) ^ 0x5a5a5a5a5a5aull;
}

static uint64_t mix(uint64_t h, uint64_t x) {
  h ^= x + 0x9E3779B97F4A7C15ull + (h << 6) + (h >> 2);
  return h;
}

static void put(unsigned char* p, size_t i, uint32_t v) {
  uint64_t* w = (uint64_t*)(p + i * kPage);
  w[0] = word(i, v);
  w[kWords - 1] = ~word(i, v);
}

/* Reads page i, folds both words into *sum; returns 1 when they are not version v's. */
static int get(const unsigned char* p, size_t i, uint32_t v, uint64_t* sum) {
  const volatile uint64_t* w = (const volatile uint64_t*)(p + i * kPage);
  uint64_t a = w[0], b = w[kWords - 1];
  *sum = mix(mix(*sum, a), b);
  return a != word(i, v) || b != ~word(i, v);
}

static uint64_t next(uint64_t* s) {
  *s = *s * 6364136223846793005ull + 1442695040888963407ull;
  return *s >> 33;
}

int main(int argc, char** argv) {
  /* stdout's buffer outside the heap (README, "Paging": under sigsegv traps a write(2) from
   * a paged-out heap page fails). */
  static char outbuf[4096];
  setvbuf(stdout, outbuf, _IOFBF, sizeof outbuf);
  if (argc < 3 || (strcmp(argv[1], "seq") != 0 && strcmp(argv[1], "random") != 0)) {
    fprintf(stderr, "usage: %s seq MB [PASSES] | random MB [TOUCHES] [SEED]\n", argv[0]);
    return 2;
  }
  int random = strcmp(argv[1], "random") == 0;
  size_t mb = strtoull(argv[2], NULL, 0), pages = (mb << 20) / kPage;
  if (pages == 0) return 2;
  double t0 = now_ms();
  unsigned char* p = malloc(pages * kPage);
  /* random mode: each page's current version (small next to the working set; paged too) */
  uint32_t* ver = random ? calloc(pages, sizeof *ver) : NULL;
  if (p == NULL || (random && ver == NULL)) {
    perror("malloc");
    return 1;
  }
  uint64_t sum = 0;
  size_t bad = 0;
  double t_fill = 0;
  if (!random) {
    unsigned long passes = argc > 3 ? strtoul(argv[3], NULL, 0) : 3;
    if (passes == 0) passes = 1;
    for (uint32_t pass = 0; pass < passes; pass++) {
      for (size_t i = 0; i < pages; i++) {
        if (pass > 0) bad += get(p, i, pass - 1, &sum);
        put(p, i, pass);
      }
      if (pass == 0) t_fill = now_ms();
    }
    for (size_t i = 0; i < pages; i++) bad += get(p, i, (uint32_t)passes - 1, &sum);
  } else {
    unsigned long long touches = argc > 3 ? strtoull(argv[3], NULL, 0) : 2ull * pages;
    uint64_t seed = argc > 4 ? strtoull(argv[4], NULL, 0) : 42;
    for (size_t i = 0; i < pages; i++) put(p, i, 0);
    t_fill = now_ms();
    for (unsigned long long k = 0; k < touches; k++) {
      uint64_t r = next(&seed);
      size_t i = (size_t)(r % pages);
      bad += get(p, i, ver[i], &sum);
      if (r & (1ull << 30)) put(p, i, ++ver[i]);
    }
    for (size_t i = 0; i < pages; i++) bad += get(p, i, ver[i], &sum);
  }
  double t1 = now_ms();
  printf("%s %zu MB: checksum %016llx bad %zu fill_ms %.1f access_ms %.1f total_ms %.1f\n", argv[1], mb,
         (unsigned long long)sum, bad, t_fill - t0, t1 - t_fill, t1 - t0);
  fflush(stdout);
  return bad != 0;
}
