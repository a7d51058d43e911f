/* exit_no_config — a program that never calls malloc and exits, with a seccomp filter that
   kills it at any sysinfo or prlimit64 call: the system calls vmrt's configuration reads
   (host RAM, the resource limits).  Under the shim its exit report learns whether VMRT_STATS
   is set without reading the rest of the configuration; exit status 0.  Killed (SIGSYS) when
   the exit path reads it all (before 2026-12-05: sysinfo and three prlimit64 calls at the
   exit of every process that never malloc'd).  Uses no stdio (its buffer is a malloc). */
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(void) {
  struct sock_filter f[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_sysinfo, 2, 0),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_prlimit64, 1, 0),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
  };
  struct sock_fprog prog = {(unsigned short)(sizeof f / sizeof f[0]), f};
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return 2;
  if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0) return 3;
  return 0;
}
