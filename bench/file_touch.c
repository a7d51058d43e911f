/* file_touch.c — first touch of a file mapping (bench/file_map_bench.sh runs it natively and
 * under vmrun, interleaved).  Maps FILE (MAP_SHARED or MAP_PRIVATE, read or write touch)
 * and touches one byte of every page once; prints the ns per page and a checksum.
 * Plain C, no vmrt library: the same binary natively and under the shim.
 *   file_touch FILE shared|private read|write */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static double now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e9 + t.tv_nsec;
}

int main(int argc, char** argv) {
  if (argc < 4) return 2;
  free(malloc(16)); /* the shim boots at the first malloc */
  int shared = strcmp(argv[2], "shared") == 0, write = strcmp(argv[3], "write") == 0;
  int fd = open(argv[1], shared && write ? O_RDWR : O_RDONLY);
  struct stat st;
  if (fd < 0 || fstat(fd, &st) != 0) return 3;
  size_t len = (size_t)st.st_size, pages = len / 4096;
  double t0 = now_ns();
  volatile unsigned char* p = mmap(0, len, PROT_READ | (write ? PROT_WRITE : 0), shared ? MAP_SHARED : MAP_PRIVATE, fd, 0);
  if (p == MAP_FAILED) return 4;
  unsigned long sum = 0;
  for (size_t i = 0; i < pages; ++i) {
    if (write) p[i * 4096] = (unsigned char)i;
    else sum += p[i * 4096];
  }
  double t1 = now_ns();
  munmap((void*)p, len);
  printf("%.1f %lu\n", (t1 - t0) / (double)pages, sum);
  return 0;
}
