/* mmap_paged.c — the program's own anonymous mmaps under paging (scenario mmap_paged).
 * One line of results, the same natively and under vmrun --physmem far below MB:
 *   MB of MAP_PRIVATE|MAP_ANONYMOUS memory filled with a pattern and checked twice (the
 *   pages go to swap and come back); read(2) from a file into pages that are paged out
 *   (the kernel's touch is served); mremap growth that must move (a mapping sits right
 *   after it) keeps every byte; MADV_DONTNEED reads zeros; a fork child sees the parent's
 *   bytes and its writes stay its own; MADV_WIPEONFORK memory is zero in the child. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#define PAGE 4096ul

static uint64_t word(size_t i, unsigned salt) { return (i * 2654435761u) ^ ((uint64_t)salt << 40) ^ 0x5a5a5a5aull; }

static void fill(unsigned char* p, size_t pages, unsigned salt) {
  for (size_t i = 0; i < pages; i++) {
    uint64_t* w = (uint64_t*)(p + i * PAGE);
    w[0] = word(i, salt);
    w[511] = ~word(i, salt);
  }
}

static size_t check(const unsigned char* p, size_t pages, unsigned salt) {
  size_t bad = 0;
  for (size_t i = 0; i < pages; i++) {
    const uint64_t* w = (const uint64_t*)(p + i * PAGE);
    bad += w[0] != word(i, salt) || w[511] != ~word(i, salt);
  }
  return bad;
}

int main(int argc, char** argv) {
  static char outbuf[4096];
  setvbuf(stdout, outbuf, _IOFBF, sizeof outbuf);
  if (argc < 3) return 2;
  void* volatile boot = malloc(16); /* vmrt boots at the first malloc (an mmap before it is the host's) */
  free(boot);
  size_t pages = ((size_t)atol(argv[1]) << 20) / PAGE;
  const char* file = argv[2];
  unsigned char* p = mmap(NULL, pages * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) { perror("mmap"); return 1; }
  fill(p, pages, 1);
  size_t bad = check(p, pages, 1) + check(p, pages, 1);
  printf("fill: %zu bad;", bad);

  /* read(2) into the first quarter, paged out by now: the file holds pattern 2. */
  size_t q = pages / 4;
  unsigned char* src = mmap(NULL, q * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (src == MAP_FAILED) { perror("mmap"); return 1; }
  fill(src, q, 2);
  int fd = open(file, O_RDWR | O_CREAT | O_TRUNC, 0600);
  if (fd < 0 || write(fd, src, q * PAGE) != (ssize_t)(q * PAGE)) { perror("write"); return 1; }
  munmap(src, q * PAGE);
  fill(p + q * PAGE, pages - q, 1); /* push the first quarter out again */
  ssize_t r = pread(fd, p, q * PAGE, 0);
  close(fd);
  printf(" read: %zd bytes, %zu bad;", r, check(p, q, 2));

  /* mremap growth that must move: a mapping sits right after the range. */
  size_t g = 256;
  unsigned char* m = mmap(NULL, (g + 1) * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (m == MAP_FAILED) { perror("mmap"); return 1; }
  munmap(m + g * PAGE, PAGE);
  void* guard = mmap(m + g * PAGE, PAGE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
  fill(m, g, 3);
  unsigned char* m2 = mremap(m, g * PAGE, 2 * g * PAGE, MREMAP_MAYMOVE);
  if (m2 == MAP_FAILED || guard == MAP_FAILED) { perror("mremap"); return 1; }
  size_t zeros = 0;
  for (size_t i = g; i < 2 * g; i++) zeros += ((uint64_t*)(m2 + i * PAGE))[0] == 0;
  printf(" mremap: %s, %zu bad, %zu/%zu new pages zero;", m2 == m ? "in place" : "moved", check(m2, g, 3), zeros, g);

  /* MADV_DONTNEED on private memory: zeros on the next touch. */
  madvise(m2, 16 * PAGE, MADV_DONTNEED);
  zeros = 0;
  for (size_t i = 0; i < 16; i++) zeros += ((uint64_t*)(m2 + i * PAGE))[0] == 0;
  printf(" dontneed: %zu/16 zero;", zeros);

  /* fork: the child sees the parent's bytes; its writes stay its own; WIPEONFORK is zero. */
  unsigned char* w = mmap(NULL, 8 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  fill(w, 8, 4);
  madvise(w, 8 * PAGE, MADV_WIPEONFORK);
  fflush(stdout);
  pid_t c = fork();
  if (c == 0) {
    size_t cb = check(p + q * PAGE, pages - q, 1), wz = 0;
    for (size_t i = 0; i < 8; i++) wz += ((uint64_t*)(w + i * PAGE))[0] == 0;
    fill(p + q * PAGE, pages - q, 5);
    printf(" child: %zu bad, wiped %zu/8;", cb + check(p + q * PAGE, pages - q, 5), wz);
    fflush(stdout);
    _exit(0);
  }
  int st = 0;
  waitpid(c, &st, 0);
  printf(" parent after child: %zu bad, status %d\n", check(p + q * PAGE, pages - q, 1) + check(w, 8, 4),
         WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
  return 0;
}
