// big_tls.c — a program whose static TLS (1 MiB of __thread data) is larger than the stack
// vmrt gives its machine threads: they must still start (scenario fork_tls_modules).  The
// parent and a fork child write their TLS and the heap and print what they read back.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static __thread char big[1 << 20];

int main(void) {
  memset(big, 1, sizeof big);
  char* p = malloc(1 << 20);
  if (p == NULL) return 1;
  memset(p, 2, 1 << 20);
  fflush(stdout);
  pid_t c = fork();
  if (c < 0) return 1;
  if (c == 0) {
    big[5] = 3;
    p[7] = 4;
    char* q = malloc(100000);
    if (q == NULL) _exit(1);
    memset(q, 5, 100000);
    printf("child %d %d %d %d\n", big[5], big[6], p[7], q[99]);
    fflush(stdout);
    _exit(0);
  }
  int st = 0;
  if (waitpid(c, &st, 0) != c) return 1;
  printf("parent %d %d %d status %d\n", big[5], p[7], p[8], st);
  return 0;
}
