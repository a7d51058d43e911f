/* exec_worker — exec_cost's short program (plain C: libc only, as most programs a shell or a
 * build tool starts): the time after main starts, after the first malloc, and after a
 * one-page file mmap and 50 mallocs of growing sizes, written to descriptor 3. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

static unsigned long long now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (unsigned long long)t.tv_sec * 1000000000ull + (unsigned long long)t.tv_nsec;
}

int main(int argc, char** argv) {
  if (argc < 2) return 1;
  unsigned long long t_main = now_ns();
  char* volatile p = malloc(100);
  p[0] = 1;
  unsigned long long t_first = now_ns();
  int fd = open(argv[1], O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 2;
  char* m = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, fd, 0);
  close(fd);
  if (m == MAP_FAILED) return 3;
  volatile char c = m[0];
  (void)c;
  munmap(m, 4096);
  for (int i = 0; i < 50; ++i) {
    char* volatile q = malloc(16 + (size_t)i * 40);
    q[0] = 1;
  }
  unsigned long long t_work = now_ns();
  char b[96];
  int n = snprintf(b, sizeof b, "%llu %llu %llu\n", t_main, t_first, t_work);
  return write(3, b, (size_t)n) == n ? 0 : 4;
}
