/* enospc_memfd MODE PROGRAM [ARGS...]  /  enospc_memfd inproc
   The host refuses to grow files: a seccomp filter makes ftruncate, fallocate and pwrite64
   fail with ENOSPC (what a full tmpfs, or shmem under strict overcommit accounting,
   answers), for vmrt's physmem memfd and the program's own files alike.  MODE=exec: the
   filter is in place before the program's first malloc (vmrt cannot size its physmem).
   MODE=inproc: it arrives after vmrt booted; this program then allocates, forks (the
   child's physmem memfd must be sized and filled) and checks its memory. */
#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static int install(void) {
  static const int nrs[] = {SYS_ftruncate, SYS_fallocate, SYS_pwrite64};
  struct sock_filter f[16];
  int n = 0;
  f[n++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr));
  for (unsigned i = 0; i < sizeof nrs / sizeof nrs[0]; ++i) {
    f[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, nrs[i], 0, 1);
    f[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSPC);
  }
  f[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
  struct sock_fprog prog = {(unsigned short)n, f};
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return -1;
  return prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog);
}

int main(int argc, char** argv) {
  if (argc < 2) return 2;
  char* keep = malloc(1 << 20);
  memset(keep, 'k', 1 << 20);
  if (install() != 0) { perror("seccomp"); return 2; }
  if (strcmp(argv[1], "exec") == 0) {
    execvp(argv[2], argv + 2);
    perror("exec");
    return 127;
  }
  size_t ok = 0;
  for (int i = 0; i < 2000; ++i) {
    char* p = malloc(64 << 10);
    if (p) { memset(p, i, 64 << 10); ++ok; }
  }
  printf("allocations %zu/2000\n", ok);
  fflush(stdout);
  pid_t pid = fork();
  if (pid == 0) {
    char* q = malloc(1 << 20);
    if (q == NULL) _exit(4);
    memset(q, 1, 1 << 20);
    _exit(keep[777] == 'k' ? 0 : 3);
  }
  if (pid < 0) printf("fork: -1 %s\n", errno == ENOMEM ? "ENOMEM" : errno == EAGAIN ? "EAGAIN" : strerror(errno));
  else { int st; waitpid(pid, &st, 0); printf("fork: child %s %d\n", WIFEXITED(st) ? "status" : "signal", WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st)); }
  printf("parent %s\n", keep[777] == 'k' ? "intact" : "corrupt");
  return 0;
}
