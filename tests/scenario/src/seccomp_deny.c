/* seccomp_deny SYSCALL[,SYSCALL...] MODE PROGRAM [ARGS...]
   Installs a seccomp filter that makes the listed system calls (memfd_create, userfaultfd,
   mremap) fail with EPERM, then either execs PROGRAM (MODE=exec: the filter is in place
   before the program's first malloc) or, MODE=inproc, keeps running itself: allocates,
   forks, allocates again and prints what happened (the filter arrives after vmrt booted). */
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

static int nr_of(const char* name) {
  if (strcmp(name, "memfd_create") == 0) return SYS_memfd_create;
  if (strcmp(name, "userfaultfd") == 0) return SYS_userfaultfd;
  if (strcmp(name, "mremap") == 0) return SYS_mremap;
  if (strcmp(name, "process_madvise") == 0) return SYS_process_madvise;
  return -1;
}

static int install(char* list) {
  struct sock_filter f[16];
  int n = 0;
  f[n++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr));
  int nrs[4], k = 0;
  for (char* tok = strtok(list, ","); tok && k < 4; tok = strtok(NULL, ",")) {
    nrs[k] = nr_of(tok);
    if (nrs[k] < 0) { fprintf(stderr, "unknown syscall %s\n", tok); return -1; }
    ++k;
  }
  for (int i = 0; i < k; ++i) {
    f[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, nrs[i], 0, 1);
    f[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM);
  }
  f[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
  struct sock_fprog prog = {(unsigned short)n, f};
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return -1;
  return prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog);
}

int main(int argc, char** argv) {
  if (argc < 3) return 2;
  char* keep = malloc(1 << 20);
  memset(keep, 'k', 1 << 20);
  if (install(argv[1]) != 0) { perror("seccomp"); return 2; }
  if (strcmp(argv[2], "exec") == 0) {
    execvp(argv[3], argv + 3);
    perror("exec");
    return 127;
  }
  /* inproc: the filter arrived after vmrt booted */
  size_t ok = 0;
  for (int i = 0; i < 2000; ++i) {
    char* p = malloc(64 << 10);
    if (p) { memset(p, i, 64 << 10); ++ok; }
  }
  printf("allocations %zu/2000\n", ok);
  fflush(stdout);
  pid_t pid = fork();
  if (pid == 0) { char* q = malloc(1 << 20); memset(q, 1, 1 << 20); _exit(keep[777] == 'k' ? 0 : 3); }
  if (pid < 0) printf("fork: -1 %s\n", errno == ENOMEM ? "ENOMEM" : errno == EAGAIN ? "EAGAIN" : strerror(errno));
  else { int st; waitpid(pid, &st, 0); printf("fork: child status %d\n", WEXITSTATUS(st)); }
  printf("parent %s\n", keep[777] == 'k' ? "intact" : "corrupt");
  return 0;
}
