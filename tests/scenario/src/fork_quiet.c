/* fork_quiet.c — the pages of the shim's data its fork path copies in the parent, from the
 * frame numbers in /proc/self/pagemap (counts, never times).  After a fork both processes
 * map the parent's private pages copy-on-write: the side that writes a page first gets a
 * copy on a new frame, so a frame of the parent's that changed across the fork, while the
 * child waits on a pipe, is a page the parent wrote (or populated: runtime/rt_populate.h)
 * after the fork.  A single-threaded process's fork is quiet (runtime/boot.cpp,
 * fork_can_be_quiet): its parent writes nothing of the shim's after the fork.
 *   fork_quiet           prints "copied N": the shim's data pages the parent copied
 *   fork_quiet control   the same, the parent rewriting a byte of the shim's data after the
 *                        fork (the method's check: at least 1)
 *   fork_quiet threads   the same after a second thread was started and joined (a fork that
 *                        takes the locks: not quiet; whether the parent or the child copies
 *                        the fork data page first is a race)
 *   fork_quiet twice     the pages copied across a second fork while the first fork's child
 *                        still lives: the second fork's prepare handler writes before it,
 *                        so a page it writes there is copied from the first child's share
 *                        (the fork counters were, one page a fork; now in the thread's TLS)
 * Prints "skip: ..." where pagemap hides frame numbers (no CAP_SYS_ADMIN).
 * The shim's data: the writable segments (its data and .bss, less RELRO) of the object that
 * defines malloc. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <link.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

struct range {
  uintptr_t lo, hi;
};
#define MAX_PAGES 4096
static struct range g_ranges[16];
static int g_nranges;

/* The writable PT_LOAD segments (data and .bss, page-rounded) of the object whose base
 * dladdr(malloc) gave. */
static uintptr_t g_shim_base;
static int segment(struct dl_phdr_info* info, size_t size, void* unused) {
  (void)size;
  (void)unused;
  if (info->dlpi_addr != g_shim_base) return 0;
  /* Less the part ld.so made read-only after relocation (PT_GNU_RELRO: from the page of its
   * start to the page of its end), which nobody writes. */
  uintptr_t ro_lo = 0, ro_hi = 0;
  for (int i = 0; i < info->dlpi_phnum; ++i)
    if (info->dlpi_phdr[i].p_type == PT_GNU_RELRO) {
      ro_lo = (info->dlpi_addr + info->dlpi_phdr[i].p_vaddr) & ~(uintptr_t)4095;
      ro_hi = (info->dlpi_addr + info->dlpi_phdr[i].p_vaddr + info->dlpi_phdr[i].p_memsz) & ~(uintptr_t)4095;
    }
  for (int i = 0; i < info->dlpi_phnum && g_nranges < 16; ++i) {
    const ElfW(Phdr)* ph = &info->dlpi_phdr[i];
    if (ph->p_type != PT_LOAD || !(ph->p_flags & PF_W)) continue;
    uintptr_t lo = (info->dlpi_addr + ph->p_vaddr) & ~(uintptr_t)4095;
    uintptr_t hi = (info->dlpi_addr + ph->p_vaddr + ph->p_memsz + 4095) & ~(uintptr_t)4095;
    if (lo >= ro_lo && lo < ro_hi) lo = ro_hi;
    if (lo >= hi) continue;
    g_ranges[g_nranges].lo = lo;
    g_ranges[g_nranges].hi = hi;
    ++g_nranges;
  }
  return 1;
}

/* Every present page of the shim's data rewritten with its own first byte: each is then this
 * process's own (copied now if the last fork left it shared), so that what the shim's
 * prepare handler writes before the next fork copies nothing, and a frame that changes
 * across the fork is one the fork path copied after it.  One thread: nothing races it. */
static void own_all(const uint64_t* frames_now) {
  int k = 0;
  for (int r = 0; r < g_nranges; ++r)
    for (uintptr_t a = g_ranges[r].lo; a < g_ranges[r].hi && k < MAX_PAGES; a += 4096, ++k)
      if (frames_now[k] != 0) {
        volatile unsigned char* b = (volatile unsigned char*)a;
        *b = *b;
      }
}

static void find_shim_data(void) {
  Dl_info info;
  if (dladdr((void*)malloc, &info) == 0 || info.dli_fname == NULL) { fprintf(stderr, "fork_quiet: dladdr(malloc) failed\n"); exit(1); }
  g_shim_base = (uintptr_t)info.dli_fbase;
  dl_iterate_phdr(segment, NULL);
}

/* The frame numbers of the shim's data pages (0: not present), from pagemap descriptor fd
 * with pread alone (opened before the fork: the shim interposes open and close, which may
 * write its descriptor table).  False when the host hides them (no CAP_SYS_ADMIN). */
static uint64_t g_before[MAX_PAGES], g_after[MAX_PAGES];
static int frames(int fd, uint64_t* out) {
  int k = 0, any = 0;
  for (int r = 0; r < g_nranges; ++r)
    for (uintptr_t a = g_ranges[r].lo; a < g_ranges[r].hi && k < MAX_PAGES; a += 4096, ++k) {
      uint64_t e;
      if (pread(fd, &e, sizeof e, (off_t)(a / 4096) * 8) != (ssize_t)sizeof e) { perror("pread"); exit(1); }
      out[k] = (e >> 63) & 1 ? e & ((1ull << 55) - 1) : 0;
      any |= out[k] != 0;
    }
  return any;
}

/* Pages present before the fork whose frame changed: copied by this process since. */
static long copied(void) {
  long n = 0;
  int k = 0;
  for (int r = 0; r < g_nranges; ++r)
    for (uintptr_t a = g_ranges[r].lo; a < g_ranges[r].hi && k < MAX_PAGES; a += 4096, ++k)
      if (g_before[k] != 0 && g_after[k] != g_before[k]) {
        ++n;
        if (getenv("FORK_QUIET_LIST")) fprintf(stderr, "copied %#lx\n", (unsigned long)a);
      }
  return n;
}

static void* nothing(void* a) { return a; }

int main(int argc, char** argv) {
  char* volatile p = malloc(100); /* the shim boots */
  p[0] = 1;
  const int control = argc > 1 && strcmp(argv[1], "control") == 0;
  if (argc > 1 && strcmp(argv[1], "threads") == 0) {
    pthread_t t;
    if (pthread_create(&t, NULL, nothing, NULL) != 0 || pthread_join(t, NULL) != 0) { fprintf(stderr, "thread\n"); return 1; }
  }
  find_shim_data();
  if (g_nranges == 0) { fprintf(stderr, "fork_quiet: the object defining malloc has no writable segment\n"); return 1; }
  /* A first fork, so that what a process does once at its first fork is done. */
  pid_t c = fork();
  if (c < 0) { perror("fork"); return 1; }
  if (c == 0) _exit(0);
  waitpid(c, NULL, 0);
  free(malloc(200));
  int pm = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
  if (pm < 0) { perror("pagemap"); return 1; }
  if (!frames(pm, g_before)) {
    printf("skip: /proc/self/pagemap shows no frame numbers here (CAP_SYS_ADMIN)\n");
    return 0;
  }
  own_all(g_before);
  frames(pm, g_before);
  int fds[2], first[2] = {-1, -1};
  pid_t c1 = -1;
  if (pipe(fds) != 0) { perror("pipe"); return 1; }
  if (argc > 1 && strcmp(argv[1], "twice") == 0) {
    /* A first fork whose child waits: every page of the shim's data is then shared with it,
     * and the frames are taken after this fork, before the measured one. */
    if (pipe(first) != 0) { perror("pipe"); return 1; }
    c1 = fork();
    if (c1 < 0) { perror("fork"); return 1; }
    if (c1 == 0) {
      char b;
      close(fds[0]); /* the measured fork's pipe: its child sees EOF when the parent closes */
      close(fds[1]);
      close(first[1]);
      (void)!read(first[0], &b, 1);
      _exit(0);
    }
    frames(pm, g_before);
  }
  c = fork();
  if (c < 0) { perror("fork"); return 1; }
  if (c == 0) {
    char b;
    close(fds[1]);
    (void)!read(fds[0], &b, 1); /* until the parent has counted */
    _exit(0);
  }
  if (control) { /* the method's check: a page the parent writes after the fork is counted */
    volatile unsigned char* b = (volatile unsigned char*)g_ranges[g_nranges - 1].lo;
    *b = *b;
  }
  frames(pm, g_after);
  close(fds[0]);
  close(fds[1]);
  int st;
  waitpid(c, &st, 0);
  if (c1 > 0) {
    int st1;
    close(first[0]);
    close(first[1]);
    waitpid(c1, &st1, 0);
    if (!WIFEXITED(st1) || WEXITSTATUS(st1) != 0) return 1;
  }
  printf("copied %ld\n", copied());
  return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : 1;
}
