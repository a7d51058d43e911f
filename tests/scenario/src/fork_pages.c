/* fork_pages.c — the pages a fork child touches, counted (not timed) from the kernel's
 * accessed bits: the parent reads the child's /proc/PID/smaps ("Referenced") while the
 * child waits after doing what a shell's command-substitution child does (its own SIGINT
 * handler, SIGCHLD's set again, a pipe's ends closed, one write).
 *
 * Why pages and not faults: on the hypervisors these tests run on, a page costs its first
 * access after a fork even when it faults in neither process (a shadow page table entry to
 * build); getrusage and perf's page-fault event see only the faults (fork_faults.c).
 *
 * A fork copies page tables with the accessed bits clear, so Referenced counts what the
 * child touched since the fork, plus the file pages the kernel mapped around each read
 * fault ("fault-around": 16 pages).  To count single pages in the shared objects that matter,
 * `fork_pages split` first gives each page of the shim's extent (the loaded object whose
 * name contains "vmrt", its .bss included) its own VMA, by alternating an extra protection
 * bit (execute on data, write on code) page by page: fault-around stops at a VMA's end, and
 * smaps reports each page apart.
 *
 *   fork_pages [split] [list]   prints "shim P", "anon A", "stack S", "total T" (pages);
 *                               `list` also prints each referenced mapping to stderr.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <link.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "shell_handler.h"

/* The shim's loaded extent, its .bss included: [g_shim_lo, g_shim_hi). */
static unsigned long g_shim_lo, g_shim_hi;

static int find_shim(struct dl_phdr_info* info, size_t size, void* arg) {
  (void)size, (void)arg;
  if (info->dlpi_name == NULL || strstr(info->dlpi_name, "vmrt") == NULL) return 0;
  for (int i = 0; i < info->dlpi_phnum; ++i) {
    const ElfW(Phdr)* ph = &info->dlpi_phdr[i];
    if (ph->p_type != PT_LOAD) continue;
    unsigned long lo = info->dlpi_addr + ph->p_vaddr, hi = (lo + ph->p_memsz + 4095) & ~4095ul;
    if (g_shim_lo == 0 || lo < g_shim_lo) g_shim_lo = lo & ~4095ul;
    if (hi > g_shim_hi) g_shim_hi = hi;
  }
  return 1;
}

static void on_int(int s) { (void)s; }
static void on_chld(int s) { (void)s; }

static int prot_of(const char* perms) {
  return (perms[0] == 'r' ? PROT_READ : 0) | (perms[1] == 'w' ? PROT_WRITE : 0) | (perms[2] == 'x' ? PROT_EXEC : 0);
}

/* One VMA per page of the shim's extent (its file mappings and its .bss): each page's
 * protection differs from the page before it (its own, or with PROT_EXEC and/or PROT_WRITE
 * added), so the host merges no two pages into one VMA and fault-around stays within a page.
 * (Alternating within each mapping was not enough: where a read-only segment had an odd
 * number of pages its last page became r-x and merged with the text after it.) */
static void split_pages(void) {
  FILE* m = fopen("/proc/self/maps", "r");
  if (m == NULL) { perror("maps"); exit(1); }
  static unsigned long lo[256], hi[256];
  static int prot[256];
  int n = 0;
  char line[512];
  while (n < 256 && fgets(line, sizeof line, m)) {
    unsigned long a, b;
    char perms[8];
    if (sscanf(line, "%lx-%lx %7s", &a, &b, perms) != 3 || a < g_shim_lo || b > g_shim_hi) continue;
    lo[n] = a, hi[n] = b, prot[n] = prot_of(perms), ++n;
  }
  fclose(m);
  int last = -1;
  unsigned long last_end = 0;
  for (int i = 0; i < n; ++i)
    for (unsigned long x = lo[i]; x < hi[i]; x += 4096) {
      const int choices[4] = {prot[i], prot[i] | PROT_EXEC, prot[i] | PROT_WRITE, prot[i] | PROT_EXEC | PROT_WRITE};
      int p = prot[i];
      for (int k = 0; k < 4; ++k)
        if (x != last_end || choices[k] != last) { p = choices[k]; break; }
      if (p != prot[i] && mprotect((void*)x, 4096, p) != 0) { perror("mprotect"); exit(1); }
      last = p, last_end = x + 4096;
    }
}

int main(int argc, char** argv) {
  int split = 0, list = 0;
  for (int i = 1; i < argc; ++i) {
    if (strcmp(argv[i], "split") == 0) split = 1;
    else if (strcmp(argv[i], "list") == 0) list = 1;
  }
  char* p = malloc(100); /* the shim boots */
  strcpy(p, "x");
  free(p);
  set_handler(SIGINT, on_int);
  set_handler(SIGCHLD, on_chld);
  dl_iterate_phdr(find_shim, NULL);
  if (split && g_shim_hi != 0) split_pages();
  long shim = 0, anon = 0, stack = 0, total = 0;
  /* A page's Referenced in smaps is its page-table accessed bit or its page's own
   * "referenced" flag.  The flag is the page's, so a child sees it set by whatever set it in
   * the parent: a read(2) through the page cache, or a populate call (MADV_POPULATE_WRITE
   * marks what it maps accessed).  Cleared in the parent just before each fork, so that the
   * child's count is what it touched itself (the accessed bits a fork copies are clear). */
  int refs = open("/proc/self/clear_refs", O_WRONLY);
  if (refs < 0) { perror("/proc/self/clear_refs"); return 1; }
  /* The first forks warm what every later one shares; the last one is counted. */
  for (int round = 0; round < 4; ++round) {
    int up[2], down[2], fds[2];
    if (pipe(up) || pipe(down) || pipe(fds)) { perror("pipe"); return 1; }
    if (write(refs, "1", 1) != 1) { perror("clear_refs"); return 1; }
    pid_t pid = fork();
    if (pid < 0) { perror("fork"); return 1; }
    if (pid == 0) {
      set_handler(SIGINT, on_int);
      set_handler(SIGCHLD, on_chld);
      close(fds[0]);
      close(fds[1]);
      char c = 'r';
      if (write(up[1], &c, 1) != 1 || read(down[0], &c, 1) != 1) _exit(2);
      _exit(0);
    }
    close(fds[0]);
    close(fds[1]);
    char c;
    if (read(up[0], &c, 1) != 1) { fprintf(stderr, "child died\n"); return 1; }
    char path[64], line[512], name[300] = "";
    snprintf(path, sizeof path, "/proc/%d/smaps", (int)pid);
    FILE* f = fopen(path, "r");
    if (f == NULL) { perror(path); return 1; }
    shim = anon = stack = total = 0;
    int is_shim = 0, is_anon = 0, is_stack = 0;
    unsigned long start = 0;
    while (fgets(line, sizeof line, f)) {
      unsigned long a, b;
      char perms[8];
      if (sscanf(line, "%lx-%lx %7s", &a, &b, perms) == 3 && strchr(line, '-') < strchr(line, ' ')) {
        const char* s = strrchr(line, ' ');
        snprintf(name, sizeof name, "%s", s != NULL ? s + 1 : "");
        name[strcspn(name, "\n")] = 0;
        is_shim = a >= g_shim_lo && b <= g_shim_hi;
        is_anon = strchr(line, '/') == NULL && strchr(line, '[') == NULL;
        is_stack = strstr(line, "[stack]") != NULL;
        start = a;
        continue;
      }
      long kb;
      if (sscanf(line, "Referenced: %ld kB", &kb) == 1 && kb > 0) {
        total += kb / 4;
        if (is_shim) shim += kb / 4;
        else if (is_anon) anon += kb / 4;
        else if (is_stack) stack += kb / 4;
        if (list && round == 3) fprintf(stderr, "%5ld pages %lx %s\n", kb / 4, start, is_anon ? "(anonymous)" : name);
      }
    }
    fclose(f);
    if (write(down[1], &c, 1) != 1) return 1;
    int st;
    if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0) { fprintf(stderr, "child failed\n"); return 1; }
    close(up[0]), close(up[1]), close(down[0]), close(down[1]);
  }
  printf("shim %ld\nanon %ld\nstack %ld\ntotal %ld\n", shim, anon, stack, total);
  return 0;
}
