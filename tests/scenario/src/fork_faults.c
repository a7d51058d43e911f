/* fork_faults.c — page faults a process takes per host fork and per exec, measured with
 * getrusage's ru_minflt (not timed).  scenario fork_faults runs it natively and under the
 * shim and bounds the difference.
 *   fork_faults fork N   N forks; each child mallocs and frees a little and _exits.
 *                        Prints "parent P" (the parent's faults per fork) and
 *                        "child C" (a child's faults, RUSAGE_CHILDREN / N).
 *   fork_faults exit N   the same, but each child returns through exit() (atexit handlers,
 *                        the libraries' destructors: a shell's subshell does); prints
 *                        "child_exit C".
 *   fork_faults exec N   N vfork+exec of this program as "leaf"; prints "exec E" (a
 *                        child's faults, from exec to exit, RUSAGE_CHILDREN / N).  vfork:
 *                        a fork's copy-on-write faults before the exec varied by one from
 *                        run to run with the parent's layout (the fork modes count them).
 *   fork_faults shell N  N forks done as bash does a command substitution: a pipe, the
 *                        child sets its own SIGINT handler, sets SIGCHLD's again, closes
 *                        the pipe's ends and exits; the parent closes its end and sets its
 *                        SIGINT handler again.  Prints "shell_parent P" and "shell_child C".
 *   fork_faults execmap N  the same with "mapleaf": prints "execmap E".
 *   fork_faults leaf     one malloc (the shim boots) and exit.
 *   fork_faults mapleaf  one malloc, then a program's first file mapping: a page of this
 *                        program's own file mapped, read and unmapped.
 *   fork_faults maps     the lines of /proc/self/maps before the first malloc (before the
 *                        shim boots), then one malloc; prints "maps M". */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <signal.h>
#include <unistd.h>

#include "shell_handler.h"

static long minflt(int who) {
  struct rusage ru;
  getrusage(who, &ru);
  return ru.ru_minflt;
}

static void on_int(int sig) { (void)sig; }
static void on_int_child(int sig) { (void)sig; }
static void on_chld(int sig) { (void)sig; }

static void touch(void) {
  char* volatile p = malloc(100);
  strcpy(p, "x");
  free(p);
}

int main(int argc, char** argv) {
  const char* mode = argc > 1 ? argv[1] : "leaf";
  int n = argc > 2 ? atoi(argv[2]) : 20;
  if (strcmp(mode, "maps") == 0) {
    char b[4096];
    long lines = 0;
    ssize_t r;
    int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
    if (fd < 0) { perror("open"); return 1; }
    while ((r = read(fd, b, sizeof b)) > 0)
      for (ssize_t i = 0; i < r; ++i) lines += b[i] == '\n';
    close(fd);
    touch();
    printf("maps %ld\n", lines);
    return 0;
  }
  touch();
  if (strcmp(mode, "leaf") == 0) return 0;
  if (strcmp(mode, "mapleaf") == 0) {
    int fd = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
    if (fd < 0) { perror("open"); return 1; }
    char* m = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (m == MAP_FAILED) { perror("mmap"); return 1; }
    volatile char c = m[0];
    (void)c;
    return munmap(m, 4096) == 0 ? 0 : 1;
  }
  const int execmap = strcmp(mode, "execmap") == 0;
  const int exec = execmap || strcmp(mode, "exec") == 0;
  const int shell = strcmp(mode, "shell") == 0;
  if (shell) {
    set_handler(SIGINT, on_int);
    set_handler(SIGCHLD, on_chld);
  }
  /* A few warm-up rounds: the first forks fault in what every later one shares. */
  for (int warm = 1; warm >= 0; --warm) {
    long self0 = minflt(RUSAGE_SELF), kids0 = minflt(RUSAGE_CHILDREN);
    for (int i = 0; i < n; ++i) {
      int fds[2] = {-1, -1};
      if (shell && pipe(fds) != 0) { perror("pipe"); return 1; }
      pid_t pid = exec ? vfork() : fork();
      if (pid < 0) { perror("fork"); return 1; }
      if (pid == 0) {
        if (shell) {
          set_handler(SIGINT, on_int_child);
          set_handler(SIGCHLD, on_chld);
          close(fds[0]);
          close(fds[1]);
          exit(0);
        }
        if (exec) {
          execl("/proc/self/exe", argv[0], execmap ? "mapleaf" : "leaf", (char*)0);
          _exit(127);
        }
        touch();
        if (strcmp(mode, "exit") == 0) exit(0);
        _exit(0);
      }
      if (shell) {
        close(fds[1]);
        close(fds[0]);
        set_handler(SIGINT, on_int);
      }
      int st;
      if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0) { fprintf(stderr, "child failed\n"); return 1; }
    }
    if (warm) continue;
    double self = (double)(minflt(RUSAGE_SELF) - self0) / n, kids = (double)(minflt(RUSAGE_CHILDREN) - kids0) / n;
    if (execmap) printf("execmap %.1f\n", kids);
    else if (exec) printf("exec %.1f\n", kids);
    else if (strcmp(mode, "exit") == 0) printf("child_exit %.1f\n", kids);
    else if (shell) printf("shell_parent %.1f\nshell_child %.1f\n", self, kids);
    else printf("parent %.1f\nchild %.1f\n", self, kids);
  }
  return 0;
}
