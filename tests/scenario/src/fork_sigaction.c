/* fork_sigaction.c — one thread sets a signal handler in a loop while another forks; each
 * child sets a handler itself and exits 0.  The shim records handlers in a table behind a
 * lock and a seqcount (runtime/rt_signal.cpp): a fork taken while the looping thread held
 * them left the child with a lock nobody would release, and its sigaction spun forever.
 * Prints "ok N" when all N children exited 0 within their time; "stuck" otherwise. */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void h1(int s) { (void)s; }
static void h2(int s) { (void)s; }
static void h3(int s) { (void)s; }
static atomic_int g_stop;

static void set(int sig, void (*h)(int)) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = h;
  sigemptyset(&sa.sa_mask);
  sigaction(sig, &sa, NULL);
}

static void* flipper(void* arg) {
  (void)arg;
  for (unsigned i = 0; !atomic_load(&g_stop); ++i) set(SIGUSR1, (i & 1) ? h1 : h2);
  return NULL;
}

int main(void) {
  pthread_t t;
  if (pthread_create(&t, NULL, flipper, NULL) != 0) return 1;
  const int n = 200;
  int ok = 0;
  for (int i = 0; i < n; ++i) {
    pid_t c = fork();
    if (c < 0) { perror("fork"); break; }
    if (c == 0) {
      alarm(5);  /* a child stuck in sigaction dies of SIGALRM */
      set(SIGUSR1, h3);
      set(SIGUSR2, h3);
      _exit(0);
    }
    int st;
    if (waitpid(c, &st, 0) == c && WIFEXITED(st) && WEXITSTATUS(st) == 0) ++ok;
  }
  atomic_store(&g_stop, 1);
  pthread_join(t, NULL);
  if (ok == n) printf("ok %d\n", n);
  else printf("stuck: %d of %d children did not finish\n", n - ok, n);
  return ok == n ? 0 : 1;
}
