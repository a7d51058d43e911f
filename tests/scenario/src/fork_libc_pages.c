// A fork child of a paged program forks again before touching anything of libc's own
// heap data (scenario fork_libc_pages).  glibc's fork takes the NSS state's lock and
// copies it, and resets every FILE's lock in the child, after vmrt's atfork prepare
// handler took the VM lock; in a fork child none of those pages has its host PTE yet, so
// the grandchild's fork faulted on the NSS state while holding the VM lock (userfaultfd:
// the handler needed that lock; a panic after 5 s).  Prints "child 0" when every process
// ran and saw its memory intact (else the first failing status: 134 was the panic).
#define _GNU_SOURCE
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

enum { kBlocks = 64, kBlock = 1 << 20, kGrandchildren = 3 };

static int wait_status(pid_t p) {
  int st;
  if (waitpid(p, &st, 0) != p) return -1;
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static int blocks_intact(char* const* blocks) {
  for (int i = 0; i < kBlocks; i++)
    if (blocks[i][i * 4099 % kBlock] != (char)i) return 0;
  return 1;
}

int main(void) {
  if (getpwuid(getuid()) == NULL) return 2;  // the NSS state, malloc'd by libc
  FILE* f = fopen("/dev/null", "w");         // a FILE and its lock, malloc'd by libc
  if (f == NULL) return 2;
  static char* blocks[kBlocks];               // 64 MB: the early heap pages out
  for (int i = 0; i < kBlocks; i++) {
    blocks[i] = malloc(kBlock);
    if (blocks[i] == NULL) return 2;
    memset(blocks[i], i, kBlock);
  }
  pid_t c = fork();
  if (c < 0) return 3;
  if (c == 0) {
    int worst = 0;
    for (int k = 0; k < kGrandchildren; k++) {
      pid_t g = fork();  // the first one touches the NSS state first
      if (g < 0) _exit(3);
      if (g == 0) _exit(blocks_intact(blocks) ? 0 : 9);
      int s = wait_status(g);
      if (s != 0) worst = s;
    }
    if (fputs("x", f) < 0 || fclose(f) != 0) _exit(8);
    _exit(worst != 0 ? worst : blocks_intact(blocks) ? 0 : 9);
  }
  printf("child %d\n", wait_status(c));
  return blocks_intact(blocks) ? 0 : 9;
}
