// sigaction semantics a program can observe, printed: the same lines natively and under
// vmrun (scenario async_signals: program handlers run behind vmrt's trampoline, rt_signal.h).
#define _GNU_SOURCE
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
static volatile int got, value, code, nested, depth, maxdepth;
static void h_plain(int sig) { got = sig; }
static void h_info(int sig, siginfo_t* si, void* uc) {
  (void)uc; got = sig; value = si->si_value.sival_int; code = si->si_code;
}
static void h_nest(int sig) {
  if (++depth > maxdepth) maxdepth = depth;
  if (depth == 1) raise(sig);  /* with SA_NODEFER: runs nested, now */
  --depth;
}
static sigjmp_buf jb;
static void h_segv(int sig) { (void)sig; siglongjmp(jb, 1); }
static void h_mask(int sig) {
  (void)sig;
  sigset_t cur; sigprocmask(SIG_BLOCK, NULL, &cur);
  nested = sigismember(&cur, SIGUSR2) * 10 + sigismember(&cur, SIGUSR1);
}
int main(void) {
  struct sigaction sa, old;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = h_plain; sa.sa_flags = SA_RESTART;
  sigaction(SIGUSR1, &sa, NULL);
  sigaction(SIGUSR1, NULL, &old);
  printf("query: same handler %d, SA_RESTART %d, SA_SIGINFO %d\n", old.sa_handler == h_plain,
         !!(old.sa_flags & SA_RESTART), !!(old.sa_flags & SA_SIGINFO));
  raise(SIGUSR1); printf("plain: got %d\n", got == SIGUSR1);
  sa.sa_sigaction = h_info; sa.sa_flags = SA_SIGINFO;
  sigaction(SIGUSR1, &sa, &old);
  printf("old is plain %d\n", old.sa_handler == h_plain);
  union sigval v = {.sival_int = 4242};
  sigqueue(getpid(), SIGUSR1, v);
  printf("siginfo: value %d, SI_QUEUE %d\n", value, code == SI_QUEUE);
  int rt = SIGRTMIN + 3; got = 0;
  sigaction(rt, &sa, NULL); sigqueue(getpid(), rt, v);
  printf("realtime: %d value %d\n", got == rt, value);
  /* SA_RESETHAND: once, then the default action (SIGUSR2 kills). */
  sa.sa_handler = h_plain; sa.sa_flags = SA_RESETHAND;
  sigaction(SIGUSR2, &sa, NULL);
  got = 0; raise(SIGUSR2);
  sigaction(SIGUSR2, NULL, &old);
  printf("resethand: got %d, now SIG_DFL %d\n", got == SIGUSR2, old.sa_handler == SIG_DFL);
  pid_t pid = fork();
  if (pid == 0) { raise(SIGUSR2); _exit(0); }
  int st; waitpid(pid, &st, 0);
  printf("default action kills: %d\n", WIFSIGNALED(st) && WTERMSIG(st) == SIGUSR2);
  /* sa_mask and the signal itself blocked in the handler; SA_NODEFER nests. */
  sa.sa_handler = h_mask; sa.sa_flags = 0; sigemptyset(&sa.sa_mask); sigaddset(&sa.sa_mask, SIGUSR2);
  sigaction(SIGUSR1, &sa, NULL); raise(SIGUSR1);
  printf("mask in handler: usr2 %d usr1 %d\n", nested / 10, nested % 10);
  sa.sa_handler = h_nest; sa.sa_flags = SA_NODEFER; sigemptyset(&sa.sa_mask);
  sigaction(SIGUSR1, &sa, NULL); raise(SIGUSR1);
  printf("nodefer nests: %d\n", maxdepth);
  /* SIG_IGN, and signal() returning the previous handler. */
  signal(SIGUSR1, SIG_IGN); raise(SIGUSR1);
  printf("ignored, still here\n");
  printf("signal() returns SIG_IGN %d\n", signal(SIGUSR1, h_plain) == SIG_IGN);
  printf("signal() returns h_plain %d\n", signal(SIGUSR1, SIG_DFL) == h_plain);
  /* glibc's internal signals stay refused. */
  printf("sigaction(32) %d\n", sigaction(32, &sa, NULL));
  /* A child inherits the handler; exec resets it (sh reports a default SIGUSR1 death). */
  signal(SIGUSR1, h_plain); got = 0;
  pid = fork();
  if (pid == 0) { raise(SIGUSR1); _exit(got == SIGUSR1 ? 7 : 8); }
  waitpid(pid, &st, 0);
  printf("child handler: %d\n", WIFEXITED(st) ? WEXITSTATUS(st) : -1);
  pid = fork();
  if (pid == 0) { execl("/bin/sh", "sh", "-c", "kill -USR1 $$", (char*)0); _exit(9); }
  waitpid(pid, &st, 0);
  printf("after exec, default: %d\n", WIFSIGNALED(st) && WTERMSIG(st) == SIGUSR1);
  /* A vfork child (python's subprocess) resets handlers before it execs: memory is shared,
     the handlers are not — the parent keeps its own (vmrt's tables once took the child's). */
  signal(SIGUSR1, h_plain);
  struct sigaction segv; memset(&segv, 0, sizeof segv); segv.sa_handler = h_segv;
  sigaction(SIGSEGV, &segv, NULL);
  pid = vfork();
  if (pid == 0) {
    signal(SIGUSR1, SIG_DFL);
    signal(SIGSEGV, SIG_DFL);
    execl("/bin/true", "true", (char*)0);
    _exit(9);
  }
  waitpid(pid, &st, 0);
  got = 0; raise(SIGUSR1);
  printf("vfork child's reset leaves the parent's handler: %d\n", got == SIGUSR1);
  sigaction(SIGSEGV, NULL, &old);
  printf("vfork: parent's SIGSEGV handler reported: %d\n", old.sa_handler == h_segv);
  if (sigsetjmp(jb, 1) == 0) { *(volatile int*)8 = 1; printf("no fault?\n"); }
  else printf("vfork: parent's SIGSEGV handler caught a NULL write\n");
  return 0;
}
