/* paging_work.c — workloads for scenario paging (a working set larger than physical
 * memory under vmrun --physmem).  Every mode prints one line that must be the same
 * natively and under vmrt.
 *   seq MB / random MB   write a pattern into MB of malloc'd memory, check it twice, in
 *                        order or in a pseudo-random order
 *   syscalls MB          write(2) the buffer to a file, read(2) it back into a second
 *                        buffer (the kernel touches paged-out pages), compare, print a sum
 *   reread MB            after the working set was paged out: per page, read it (a read
 *                        fault pages it in), then pread(2) new contents into it (the kernel
 *                        writes a page the program only read), check the new contents
 *   threads MB           four threads each rewrite their quarter with their own salt and
 *                        check pages all over the buffer in a random order, meanwhile
 *                        (concurrent faults, page-ins and pageouts), then everything is checked
 *   fork MB              fill, fork: the child checks everything and rewrites half, the
 *                        parent checks its own copy is unchanged, both report
 *   forks MB N           the locale is set from the environment first (its LC_CTYPE data
 *                        lives in the heap, and pages out with it); after the fill, N
 *                        children one after another each start a thread that uses ctype
 *                        (every new thread reads the locale data) and checks pages all
 *                        over the buffer; the parent counts bad pages and failed children
 *   forkchain MB N       N rounds of: rewrite one 24th of the buffer with a new salt (pageouts
 *                        between forks land on a new swap device each round), fork: the child
 *                        checks every part and rewrites one, the parent waits; then the parent
 *                        checks everything (more rounds than vmrt keeps swap devices: merged)
 *   sigbus MB            fill, then read every page twice with a SIGBUS handler: each SIGBUS
 *                        (a page that could not be read back, under a pager_read or
 *                        swap_corrupt fail point) is counted with its si_code and whether
 *                        si_addr is in the touched page, and the page is read once more: it
 *                        must come back intact (a transient read error) or raise SIGBUS again
 *                        (a bad slot), never read as other data (zeros).  Natively: 0 SIGBUS
 *   willneed MB          the malloc'd buffer and an mmap'd one of MB/2 are filled, pushed
 *                        out by filling a third of MB, then madvise(MADV_WILLNEED)'d (the
 *                        paged-out pages are read back then) and checked
 *   grow MB              (instead of the common buffer) a table doubled from 1 MiB up to
 *                        MB/2 as a hash table grows (calloc twice the size, copy, fill the
 *                        rest, free the old one: MB/2 freed in all), then MB/4 of 512-byte
 *                        blocks filled, and everything checked */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ctype.h>
#include <locale.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

static uint64_t word(size_t i, unsigned salt) { return (i * 2654435761u) ^ ((uint64_t)salt << 40) ^ 0x5a5a5a5a5aull; }

/* Pages [from, to) of p get the pattern of their index. */
static void fill_range(unsigned char* p, size_t from, size_t to, unsigned salt) {
  for (size_t i = from; i < to; i++) {
    uint64_t* w = (uint64_t*)(p + i * 4096);
    w[0] = word(i, salt);
    w[511] = ~word(i, salt);
  }
}

static void fill(unsigned char* p, size_t pages, unsigned salt) { fill_range(p, 0, pages, salt); }

static size_t check(const unsigned char* p, size_t pages, unsigned salt, int random) {
  size_t bad = 0;
  uint64_t seed = 42;
  for (size_t k = 0; k < pages; k++) {
    size_t i = k;
    if (random) {
      seed = seed * 6364136223846793005ull + 1442695040888963407ull;
      i = (size_t)(seed >> 33) % pages;
    }
    const uint64_t* w = (const uint64_t*)(p + i * 4096);
    if (w[0] != word(i, salt) || w[511] != ~word(i, salt) || w[7] != 0) bad++;
  }
  return bad;
}

#ifndef BUS_MCEERR_AR
#define BUS_MCEERR_AR 4
#endif
static sigjmp_buf bus_jb;
static volatile int bus_code;
static void* volatile bus_addr;
static void on_bus(int sig, siginfo_t* si, void* uc) {
  (void)sig, (void)uc;
  bus_code = si->si_code;
  bus_addr = si->si_addr;
  siglongjmp(bus_jb, 1);
}
/* Read page i: 0 intact, 1 other data, 2 SIGBUS (*code, *in_page: si_addr inside page i). */
static int read_page(const unsigned char* p, size_t i, int* code, int* in_page) {
  if (sigsetjmp(bus_jb, 1) != 0) {
    *code = bus_code;
    *in_page = (const unsigned char*)bus_addr >= p + i * 4096 && (const unsigned char*)bus_addr < p + (i + 1) * 4096;
    return 2;
  }
  const volatile uint64_t* w = (const volatile uint64_t*)(p + i * 4096);
  return w[0] == word(i, 1) && w[511] == ~word(i, 1) && w[7] == 0 ? 0 : 1;
}

struct quarter {
  unsigned char* p;
  size_t pages, first, count;
  unsigned id;
  size_t bad;
};

/* Page i holds salt 1 until its owner rewrites it with salt 10+owner; either is right. */
static void* quarter_main(void* arg) {
  struct quarter* q = arg;
  uint64_t seed = 7 + q->id;
  for (size_t k = 0; k < q->count; k++) {
    size_t i = q->first + k;
    uint64_t* w = (uint64_t*)(q->p + i * 4096);
    w[0] = word(i, 10 + q->id);
    w[511] = ~word(i, 10 + q->id);
    seed = seed * 6364136223846793005ull + 1442695040888963407ull;
    size_t j = (size_t)(seed >> 33) % q->pages;
    const uint64_t* v = (const uint64_t*)(q->p + j * 4096);
    uint64_t a = v[0];
    unsigned owner = (unsigned)(j / q->count);
    if (a != word(j, 1) && a != word(j, 10 + owner)) q->bad++;
  }
  return NULL;
}

/* A new thread reads the LC_CTYPE data at start (glibc's start_thread); ctype uses it. */
static void* ctype_thread(void* arg) {
  (void)arg;
  return toupper('a') == 'A' && isalpha('z') && !isdigit('x') ? (void*)1 : NULL;
}

int main(int argc, char** argv) {
  /* stdout's buffer out of the heap: under sigsegv traps a write(2) from a paged-out heap
   * page fails with EFAULT (README, "Paging"); the checks themselves are the test. */
  static char outbuf[4096];
  setvbuf(stdout, outbuf, _IOFBF, sizeof outbuf);
  if (argc < 3) return 2;
  size_t bytes = (size_t)atol(argv[2]) << 20, pages = bytes / 4096;
  if (!strcmp(argv[1], "forks") && setlocale(LC_ALL, "") == NULL) { fprintf(stderr, "setlocale failed\n"); return 1; }
  if (!strcmp(argv[1], "grow")) {
    size_t n = 256; /* pages */
    unsigned char* t = calloc(n, 4096);
    if (t == NULL) { perror("calloc"); return 1; }
    fill(t, n, 3);
    while (2 * n <= pages / 2) {
      unsigned char* u = calloc(2 * n, 4096);
      if (u == NULL) { perror("calloc"); return 1; }
      memcpy(u, t, n * 4096);
      fill_range(u, n, 2 * n, 3);
      free(t);
      t = u;
      n *= 2;
    }
    size_t nb = bytes / 4 / 512;
    unsigned char** b = malloc(nb * sizeof *b);
    if (b == NULL) { perror("malloc"); return 1; }
    for (size_t i = 0; i < nb; ++i) {
      if ((b[i] = malloc(512)) == NULL) { perror("malloc"); return 1; }
      memset(b[i], (int)(i % 251), 512);
    }
    size_t bad = check(t, n, 3, 0);
    for (size_t i = 0; i < nb; ++i) bad += b[i][0] != (unsigned char)(i % 251) || b[i][511] != (unsigned char)(i % 251);
    printf("grow %zu MB: table of %zu pages, %zu blocks: %zu bad\n", bytes >> 20, n, nb, bad);
    return bad != 0;
  }
  unsigned char* p = calloc(1, bytes);
  if (p == NULL) { perror("calloc"); return 1; }
  fill(p, pages, 1);
  if (!strcmp(argv[1], "seq") || !strcmp(argv[1], "random")) {
    int r = !strcmp(argv[1], "random");
    size_t bad = check(p, pages, 1, r) + check(p, pages, 1, r);
    printf("%s %zu MB: %zu bad pages\n", argv[1], bytes >> 20, bad);
    return bad != 0;
  }
  if (!strcmp(argv[1], "willneed")) {
    size_t mpages = pages / 2;
    unsigned char* q = mmap(NULL, mpages * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    unsigned char* r = malloc(bytes);
    if (q == MAP_FAILED || r == NULL) { perror("willneed"); return 1; }
    fill(q, mpages, 2);
    fill(r, pages, 3);
    /* the page-aligned part of the malloc'd buffer */
    unsigned char* pa = (unsigned char*)(((uintptr_t)p + 4095) & ~(uintptr_t)4095);
    int rc = madvise(pa, (size_t)(p + bytes - pa) & ~(size_t)4095, MADV_WILLNEED) |
             madvise(q, mpages * 4096, MADV_WILLNEED);
    size_t bad = check(p, pages, 1, 0) + check(q, mpages, 2, 0);
    printf("willneed %zu MB: madvise %d, %zu bad pages\n", bytes >> 20, rc, bad);
    return bad != 0;
  }
  if (!strcmp(argv[1], "syscalls")) {
    char path[] = "/tmp/vmrt-paging-XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0) return 1;
    unlink(path);
    for (size_t off = 0; off < bytes;) {
      ssize_t n = write(fd, p + off, bytes - off > (8u << 20) ? (8u << 20) : bytes - off);
      if (n < 0 && errno == EFAULT) { puts("write: EFAULT"); return 3; }
      if (n <= 0) { perror("write"); return 1; }
      off += (size_t)n;
    }
    unsigned char* q = malloc(bytes);
    if (q == NULL) return 1;
    for (size_t off = 0; off < bytes;) {
      ssize_t n = pread(fd, q + off, bytes - off > (8u << 20) ? (8u << 20) : bytes - off, (off_t)off);
      if (n < 0 && errno == EFAULT) { puts("read: EFAULT"); return 3; }
      if (n <= 0) { perror("read"); return 1; }
      off += (size_t)n;
    }
    uint64_t sum = 0;
    for (size_t i = 0; i < bytes / 8; i += 509) sum += ((uint64_t*)q)[i];
    printf("syscalls %zu MB: %s, sum %llx, %zu bad pages\n", bytes >> 20, memcmp(p, q, bytes) ? "differ" : "same",
           (unsigned long long)sum, check(q, pages, 1, 0));
    return 0;
  }
  if (!strcmp(argv[1], "reread")) {
    char path[] = "/tmp/vmrt-paging-XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0) return 1;
    unlink(path);
    static unsigned char page[4096];
    size_t bad = 0, efault = 0;
    uint64_t sum = 0;
    for (size_t i = 0; i < pages; i++) {
      const volatile uint64_t* w = (const volatile uint64_t*)(p + i * 4096);
      if (w[0] != word(i, 1)) bad++;  /* a read: the page comes back for reading */
      ((uint64_t*)page)[0] = word(i, 3);
      ((uint64_t*)page)[511] = ~word(i, 3);
      if (pwrite(fd, page, 4096, 0) != 4096) { perror("pwrite"); return 1; }
      ssize_t n = pread(fd, p + i * 4096, 4096, 0);
      if (n < 0 && errno == EFAULT) { efault++; continue; }
      if (n != 4096) { perror("pread"); return 1; }
    }
    bad += check(p, pages, 3, 1);
    for (size_t i = 0; i < bytes / 8; i += 509) sum += ((uint64_t*)p)[i];
    printf("reread %zu MB: %zu EFAULT, sum %llx, %zu bad pages\n", bytes >> 20, efault, (unsigned long long)sum, bad);
    return bad != 0 || efault != 0;
  }
  if (!strcmp(argv[1], "threads")) {
    struct quarter q[4];
    pthread_t t[4];
    size_t bad = 0;
    for (unsigned k = 0; k < 4; k++) {
      q[k] = (struct quarter){p, pages, k * (pages / 4), pages / 4, k, 0};
      if (pthread_create(&t[k], NULL, quarter_main, &q[k]) != 0) return 1;
    }
    for (unsigned k = 0; k < 4; k++) {
      pthread_join(t[k], NULL);
      bad += q[k].bad;
    }
    for (size_t i = 0; i < pages; i++) {
      const uint64_t* w = (const uint64_t*)(p + i * 4096);
      unsigned owner = (unsigned)(i / (pages / 4));
      if (w[0] != word(i, 10 + owner) || w[511] != ~word(i, 10 + owner) || w[7] != 0) bad++;
    }
    printf("threads %zu MB: %zu bad pages\n", bytes >> 20, bad);
    return bad != 0;
  }
  if (!strcmp(argv[1], "forks")) {
    int n = argc > 3 ? atoi(argv[3]) : 8, failed = 0;
    for (int k = 0; k < n; k++) {
      fflush(stdout);
      pid_t c = fork();
      if (c < 0) { perror("fork"); return 1; }
      if (c == 0) {
        pthread_t t;
        if (pthread_create(&t, NULL, ctype_thread, NULL) != 0) _exit(3);
        void* r = NULL;
        pthread_join(t, &r);
        size_t bad = (r == NULL) + check(p, pages, 1, 1);
        _exit(bad != 0);
      }
      int st = 0;
      waitpid(c, &st, 0);
      failed += !WIFEXITED(st) || WEXITSTATUS(st) != 0;
    }
    size_t bad = check(p, pages, 1, 1);
    printf("forks %d: %d children failed, %zu bad pages in the parent\n", n, failed, bad);
    return bad != 0 || failed != 0;
  }
  if (!strcmp(argv[1], "forkchain")) {
    enum { kParts = 24 };
    int n = argc > 3 ? atoi(argv[3]) : 20, failed = 0;
    size_t part = pages / kParts;
    unsigned salt[kParts];
    for (int j = 0; j < kParts; j++) {  /* per part: word() counts pages from its start */
      salt[j] = 1;
      fill(p + (size_t)j * part * 4096, part, 1);
    }
    for (int k = 0; k < n; k++) {
      int j = k % kParts;
      salt[j] = 100 + (unsigned)k;
      fill(p + (size_t)j * part * 4096, part, salt[j]);
      fflush(stdout);
      pid_t c = fork();
      if (c < 0) { perror("fork"); return 1; }
      if (c == 0) {
        size_t bad = 0;
        for (int q = 0; q < kParts; q++) bad += check(p + (size_t)q * part * 4096, part, salt[q], 1);
        fill(p + (size_t)((j + kParts / 2) % kParts) * part * 4096, part, 999);  /* the child's own writes */
        _exit(bad != 0);
      }
      int st = 0;
      waitpid(c, &st, 0);
      failed += !WIFEXITED(st) || WEXITSTATUS(st) != 0;
    }
    size_t bad = 0;
    for (int q = 0; q < kParts; q++) bad += check(p + (size_t)q * part * 4096, part, salt[q], 1);
    printf("forkchain %d: %d children failed, %zu bad pages in the parent\n", n, failed, bad);
    return bad != 0 || failed != 0;
  }
  if (!strcmp(argv[1], "sigbus")) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_bus;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGBUS, &sa, NULL);
    size_t bus = 0, mce = 0, in_page = 0, again_ok = 0, again_bus = 0, again_wrong = 0, bad = 0;
    for (int pass = 0; pass < 2; pass++) {
      for (size_t i = 0; i < pages; i++) {
        int code = 0, inp = 0;
        int r = read_page(p, i, &code, &inp);
        if (r == 1) bad++;
        if (r != 2) continue;
        bus++;
        mce += code == BUS_MCEERR_AR;
        in_page += inp;
        r = read_page(p, i, &code, &inp);
        if (r == 0) again_ok++;
        else if (r == 2) again_bus++;
        else again_wrong++;
      }
    }
    printf("sigbus %zu MB: %zu SIGBUS (%zu BUS_MCEERR_AR, %zu in the touched page); read again: %zu intact, %zu SIGBUS, "
           "%zu other data; %zu bad pages\n", bytes >> 20, bus, mce, in_page, again_ok, again_bus, again_wrong, bad);
    return again_wrong != 0 || bad != 0;
  }
  if (!strcmp(argv[1], "fork")) {
    fflush(stdout);
    pid_t c = fork();
    if (c < 0) { perror("fork"); return 1; }
    if (c == 0) {
      size_t bad = check(p, pages, 1, 0);
      fill(p, pages / 2, 2);
      bad += check(p, pages / 2, 2, 1);
      printf("child: %zu bad pages\n", bad);
      return bad != 0;
    }
    int st = 0;
    waitpid(c, &st, 0);
    size_t bad = check(p, pages, 1, 1);
    printf("parent: %zu bad pages, child status %d\n", bad, WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
    return bad != 0;
  }
  return 2;
}
