/* threads_fork_signals: 100 threads allocate and free (checking their own data) while one
   thread forks in a loop (each child checks a pattern, allocates, exits) and another sends
   SIGUSR1 to the process every millisecond.  Prints "ok" and exits 0 when every child and
   every thread saw only its own data (at least 3 forks, at most 20, about 4 s). */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

enum { kThreads = 100, kForks = 20 };
static atomic_int stop, bad, signals;
static char* pattern;

static void on_usr1(int s) { (void)s; atomic_fetch_add(&signals, 1); }

static void* worker(void* arg) {
  unsigned seed = (unsigned)(size_t)arg;
  char* mine[16] = {0};
  size_t len[16] = {0};
  while (!atomic_load(&stop)) {
    int i = rand_r(&seed) % 16;
    if (mine[i]) {
      for (size_t k = 0; k < len[i]; k += 512)
        if (mine[i][k] != (char)(i + (size_t)arg)) atomic_store(&bad, 1);
      free(mine[i]);
    }
    len[i] = 16 + (size_t)(rand_r(&seed) % 20000);
    mine[i] = malloc(len[i]);
    if (!mine[i]) { atomic_store(&bad, 2); continue; }
    memset(mine[i], (char)(i + (size_t)arg), len[i]);
  }
  for (int i = 0; i < 16; ++i) free(mine[i]);
  return NULL;
}

static void* pester(void* arg) {
  (void)arg;
  struct timespec ms = {0, 1000000};
  while (!atomic_load(&stop)) { kill(getpid(), SIGUSR1); nanosleep(&ms, NULL); }
  return NULL;
}

int main(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_usr1;
  sa.sa_flags = SA_RESTART;
  sigaction(SIGUSR1, &sa, NULL);
  pattern = malloc(1 << 20);
  memset(pattern, 'p', 1 << 20);
  pthread_t t[kThreads], sig;
  for (long i = 0; i < kThreads; ++i) pthread_create(&t[i], NULL, worker, (void*)i);
  pthread_create(&sig, NULL, pester, NULL);
  int forks = 0, failed = 0;
  struct timespec t0, now;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  for (int n = 0; n < kForks; ++n) {
    clock_gettime(CLOCK_MONOTONIC, &now);
    if (n >= 3 && now.tv_sec - t0.tv_sec >= 4) break;  /* bounded time: at least 3 forks */
    pid_t pid = fork();
    if (pid == 0) {
      int ok = pattern[4096] == 'p' && pattern[(1 << 20) - 1] == 'p';
      memset(pattern, 'c', 1 << 20);
      char* x = malloc(1 << 21);
      if (x) memset(x, 1, 1 << 21);
      free(x);
      _exit(ok ? 0 : 3);
    }
    if (pid < 0) { ++failed; continue; }
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {}
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) { printf("child %d: status %d\n", n, st); atomic_store(&bad, 3); }
    if (pattern[4096] != 'p') { puts("parent saw a child's write"); atomic_store(&bad, 4); }
    ++forks;
  }
  atomic_store(&stop, 1);
  for (int i = 0; i < kThreads; ++i) pthread_join(t[i], NULL);
  pthread_join(sig, NULL);
  if (failed) printf("%d forks failed\n", failed);
  if (atomic_load(&bad)) { printf("bad %d\n", atomic_load(&bad)); return 1; }
  printf("ok: %s\n", forks >= 3 ? "forks done" : "too few forks");
  return 0;
}
