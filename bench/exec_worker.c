/* exec_worker — exec_cost's short program (plain C: libc only, as most programs a shell or a
 * build tool starts): the time after main starts, after the first malloc, and after a
 * one-page file mmap and 50 mallocs of growing sizes, and then its host page-table memory
 * (VmPTE, kB), written to descriptor 3. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

static unsigned long long now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (unsigned long long)t.tv_sec * 1000000000ull + (unsigned long long)t.tv_nsec;
}

/* The process's page-table memory in kB (/proc/self/status VmPTE), -1 when unreadable:
 * on these guests every page-table page a process fills costs tens of microseconds to
 * fill, copy at fork and tear down at exit, more than the pages it maps.  (Its own copy of
 * bench/workloads.cpp's status_kb: the worker stays plain C, linked with libc only.) */
static long vm_pte_kb(void) {
  char b[4096];
  int fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  ssize_t n = read(fd, b, sizeof b - 1);
  close(fd);
  if (n <= 0) return -1;
  b[n] = 0;
  const char* p = strstr(b, "VmPTE:");
  return p != NULL ? strtol(p + 6, NULL, 10) : -1;
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
  char b[128];
  int n = snprintf(b, sizeof b, "%llu %llu %llu %ld\n", t_main, t_first, t_work, vm_pte_kb());
  return write(3, b, (size_t)n) == n ? 0 : 4;
}
