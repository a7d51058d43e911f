/* mm_family_fail.c — the program's own munmap / mprotect / mlock under fault injection
 * (scenario fail_mm_family).  Each call is made twice on the same range: under
 * VMRT_FAIL='munmap:nth=1;mprotect:nth=1;mlock:nth=1' the first fails with the errno the
 * man pages allow (munmap ENOMEM, mprotect ENOMEM, mlock EAGAIN) and must change nothing;
 * the second succeeds.  Natively every call succeeds; the lines that differ say "fail".
 * Every page is checked after each step: an injected failure must damage nothing. */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define PAGES 16
static long pg;
static unsigned char* base;
static sigjmp_buf jb;

static void on_segv(int sig) { siglongjmp(jb, sig); }

/* Can page i be written (and read back)?  1 yes, 0 it faults. */
static int writable(int i) {
  if (sigsetjmp(jb, 1) != 0) return 0;
  volatile unsigned char* p = base + i * pg;
  unsigned char v = p[1];
  p[1] = v;
  return 1;
}

/* Every page still mapped (except `gone`) holds its own pattern. */
static int intact(int gone) {
  for (int i = 0; i < PAGES; i++) {
    if (i == gone) continue;
    if (base[i * pg] != (unsigned char)(0x40 + i) || base[i * pg + pg - 1] != (unsigned char)(0x80 + i)) return 0;
  }
  return 1;
}

static void report(const char* what, int r) {
  if (r == 0) printf("%s: ok\n", what);
  else printf("%s: fail %s\n", what, errno == ENOMEM ? "ENOMEM" : errno == EAGAIN ? "EAGAIN" : errno == EPERM ? "EPERM" : strerror(errno));
}

int main(void) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  void* volatile boot = malloc(1); /* vmrt boots at the first allocation; mmap before it is the host's */
  free(boot);
  pg = sysconf(_SC_PAGESIZE);
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_segv;
  sigaction(SIGSEGV, &sa, NULL);
  base = mmap(NULL, PAGES * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (base == MAP_FAILED) return perror("mmap"), 1;
  for (int i = 0; i < PAGES; i++) {
    base[i * pg] = (unsigned char)(0x40 + i);
    base[i * pg + pg - 1] = (unsigned char)(0x80 + i);
  }
  /* mprotect page 3 read-only: a refused call leaves it writable. */
  for (int k = 1; k <= 2; k++) {
    char what[64];
    snprintf(what, sizeof what, "mprotect #%d", k);
    report(what, mprotect(base + 3 * pg, pg, PROT_READ));
    printf("  page 3 writable %d, pages intact %d\n", writable(3), intact(-1));
  }
  /* mlock two pages. */
  for (int k = 1; k <= 2; k++) {
    char what[64];
    snprintf(what, sizeof what, "mlock #%d", k);
    report(what, mlock(base + 6 * pg, 2 * pg));
    printf("  pages intact %d\n", intact(-1));
  }
  munlock(base + 6 * pg, 2 * pg);
  /* munmap page 9 (splits the mapping): a refused call leaves it mapped with its data. */
  for (int k = 1; k <= 2; k++) {
    char what[64];
    snprintf(what, sizeof what, "munmap #%d", k);
    report(what, munmap(base + 9 * pg, pg));
    unsigned char mv = 0;
    int mapped = mincore(base + 9 * pg, pg, &mv) == 0;
    printf("  page 9 mapped %d, pages intact %d\n", mapped, intact(mapped ? -1 : 9));
  }
  /* The rest of the mapping still works: new data in every remaining page, then it goes. */
  int bad = 0;
  for (int i = 0; i < PAGES; i++) {
    if (i == 9 || i == 3) continue;
    base[i * pg + 100] = (unsigned char)i;
    if (base[i * pg + 100] != (unsigned char)i) bad++;
  }
  printf("rewrite: %d bad\n", bad);
  printf("munmap rest: %d %d\n", munmap(base, 9 * pg), munmap(base + 10 * pg, (PAGES - 10) * pg));
  return 0;
}
