/* sigaction_again — a handler set again, as recorded, asks nothing of the kernel but the
   sigaction itself.  The shim tells a vfork child (same memory, another process) from the
   table's owner with getpid; a program that sets the same handlers again and again (bash
   in every subshell, git around each child) paid that system call every time.  Here getpid
   fails (a seccomp filter: EPERM, so the shim would take the caller for a vfork child)
   after the first install; the same handler is then set again, and the kernel's action,
   asked with the raw system call, must still be the shim's trampoline (a "vfork child"
   would have installed the program's function itself).  A different handler set then goes
   the vfork child's way (the kernel gets the function), and both handlers run.
   Prints "same: trampoline kept; changed: direct; ran 2" under the shim. */
#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

static volatile sig_atomic_t ran;
static void on_usr1(int sig) { (void)sig; ran++; }
static void on_usr1_b(int sig) { (void)sig; ran++; }

struct kernel_sigaction {
  void* handler;
  unsigned long flags;
  void* restorer;
  unsigned long mask;
};

/* The handler the kernel holds for sig, asked without libc (or the shim). */
static void* kernel_handler(int sig) {
  struct kernel_sigaction k;
  memset(&k, 0, sizeof k);
  if (syscall(SYS_rt_sigaction, sig, NULL, &k, sizeof k.mask) != 0) return NULL;
  return k.handler;
}

static int deny_getpid(void) {
  struct sock_filter f[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_getpid, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  struct sock_fprog prog = {(unsigned short)(sizeof f / sizeof f[0]), f};
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return -1;
  return prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog);
}

int main(void) {
  struct sigaction a;
  memset(&a, 0, sizeof a);
  a.sa_handler = on_usr1;
  sigemptyset(&a.sa_mask);
  if (sigaction(SIGUSR1, &a, NULL) != 0) { perror("sigaction"); return 2; }
  const pid_t self = getpid();  /* raise() asks getpid: kill(self) instead */
  if (deny_getpid() != 0) { perror("seccomp"); return 2; }
  if (getpid() != -1) { printf("getpid not denied\n"); return 2; }
  if (sigaction(SIGUSR1, &a, NULL) != 0) { perror("sigaction again"); return 2; }
  void* k = kernel_handler(SIGUSR1);
  const char* same = k == (void*)on_usr1 ? "direct" : "trampoline kept";
  kill(self, SIGUSR1);
  a.sa_handler = on_usr1_b;
  if (sigaction(SIGUSR1, &a, NULL) != 0) { perror("sigaction changed"); return 2; }
  k = kernel_handler(SIGUSR1);
  const char* changed = k == (void*)on_usr1_b ? "direct" : "trampoline";
  kill(self, SIGUSR1);
  printf("same: %s; changed: %s; ran %d\n", same, changed, (int)ran);
  return 0;
}
