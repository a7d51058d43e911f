/* setgroups with its list in heap memory that is not mapped when glibc makes every thread
   repeat the call (SIGSETXID): paged out (more heap than --physmem), and in a fork child,
   whose first access to each heap page faults.  vmrt's machine threads take part in the
   call; their reads of the list faulted, and with every handler thread inside the call
   nothing served the faults: the process hung (libc_shim/shim_creds.cpp).  Prints each
   side's result and groups; the output is the same natively. */
#define _GNU_SOURCE
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static void show(const char* who, int r) {
  gid_t got[16];
  int k = getgroups(16, got);
  printf("%s: setgroups %d, %d groups:", who, r, k);
  for (int i = 0; i < k; ++i) printf(" %u", (unsigned)got[i]);
  printf("\n");
  fflush(stdout);
}

int main(void) {
  const int n = 3;
  gid_t* list = malloc(sizeof(gid_t) * n);
  if (list == NULL) return 2;
  list[0] = 7;
  list[1] = 8;
  list[2] = 9;
  size_t big = (size_t)96 << 20; /* pushes the list out under --physmem 64M */
  char* x = malloc(big);
  if (x == NULL) return 2;
  memset(x, 1, big);
  pid_t pid = fork();
  if (pid < 0) return 2;
  if (pid == 0) {
    show("child", setgroups(n, list));
    _exit(0);
  }
  int st = 0;
  waitpid(pid, &st, 0);
  if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) return 3;
  memset(x, 2, big); /* and out again in the parent */
  list[2] = 10;
  show("parent", setgroups(n, list));
  return x[12345] == 2 ? 0 : 4;
}
