/* madv_reuse.c — the loop an allocator runs over memory it gives back and takes again:
 * an anonymous mapping of MB megabytes, ROUNDS times: write a word in every page, then
 * madvise(ADVICE) the whole range (free: MADV_FREE, dontneed: MADV_DONTNEED).  Plain C, no
 * vmrt library: bench/madv_reuse_bench.sh runs it natively and under vmrun --physmem, where
 * the mapping is vmrt's pageable memory.
 *
 *   madv_reuse free|dontneed MB ROUNDS
 * Prints: <advice> <MB> MB x <ROUNDS>: us_per_round <t> faults_per_round <f> kept_per_round <k>
 * (faults: the process's minor + major faults over the rounds, from getrusage; kept: pages
 * that still held the last round's word when read, not zeros: all of them after a lazy
 * MADV_FREE that nothing reclaimed, none after MADV_DONTNEED).  The first round (first
 * touch) is not timed. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <time.h>

static double now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static long faults(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_minflt + ru.ru_majflt;
}

int main(int argc, char** argv) {
  if (argc != 4 || (strcmp(argv[1], "free") != 0 && strcmp(argv[1], "dontneed") != 0)) {
    fprintf(stderr, "usage: madv_reuse free|dontneed MB ROUNDS\n");
    return 2;
  }
  const int advice = strcmp(argv[1], "free") == 0 ? MADV_FREE : MADV_DONTNEED;
  const size_t pages = (size_t)atol(argv[2]) << 8;
  const int rounds = atoi(argv[3]);
  if (pages == 0 || rounds < 1) return 2;
  /* A malloc first, as nearly every program makes one before its own mmaps: under the shim
     it boots vmrt, and an mmap before that goes to the host (libc_shim/shim_mmap.cpp). */
  void* volatile first = malloc(1); /* volatile: the compiler may not drop the pair */
  free(first);
  unsigned char* p = mmap(NULL, pages << 12, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) {
    perror("mmap");
    return 1;
  }
  uint64_t kept = 0;
  double t0 = 0;
  long f0 = 0;
  for (int r = 0; r <= rounds; ++r) {
    if (r == 1) {
      t0 = now_us();
      f0 = faults();
    }
    for (size_t i = 0; i < pages; ++i) {
      uint64_t* w = (uint64_t*)(p + (i << 12));
      kept += r > 0 && *w != 0; /* the last round's value, or zero once given back */
      *w = (uint64_t)r * pages + i + 1;
    }
    if (madvise(p, pages << 12, advice) != 0) {
      perror("madvise");
      return 1;
    }
  }
  const double us = (now_us() - t0) / rounds;
  printf("%s %s MB x %d: us_per_round %.1f faults_per_round %.1f kept_per_round %.1f\n", argv[1], argv[2], rounds, us,
         (double)(faults() - f0) / rounds, (double)kept / rounds);
  return 0;
}
