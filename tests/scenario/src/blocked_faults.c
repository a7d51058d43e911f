// blocked_faults: program code that touches memory with every signal blocked, as libraries
// do in threads that must not take signals (liblzma's encoder threads inherit a full mask
// from pthread_create).  Under vmrun with paging, each first touch or page-in of the heap
// is a fault vmrt serves, which the sigsegv backend receives as SIGSEGV: Linux kills a
// thread that faults with SIGSEGV blocked (scenario blocked_faults).  Prints checksums and
// what the program's own mask reads back, which must equal the native run's.
//   blocked_faults MB
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static size_t bytes;

static uint64_t fill_and_sum(unsigned salt) {
  unsigned char* p = malloc(bytes);  // fresh heap: every page a first touch
  if (p == NULL) exit(1);
  for (size_t i = 0; i < bytes; i += 64) p[i] = (unsigned char)(i * 31 + salt);
  uint64_t s = 0;
  for (size_t i = 0; i < bytes; i += 64) s = s * 1099511628211ull + p[i];
  free(p);
  return s;
}

// A handler that blocks every signal while it runs (sa_mask full, the common idiom) and
// touches heap memory never touched before.
static unsigned char* handler_buf;
static volatile uint64_t handler_sum;
static void on_usr1(int sig) {
  (void)sig;
  uint64_t s = 0;
  for (size_t i = 0; i < bytes; i += 64) handler_buf[i] = (unsigned char)(i * 7 + 1);
  for (size_t i = 0; i < bytes; i += 64) s = s * 1099511628211ull + handler_buf[i];
  handler_sum = s;
}

static void* worker(void* arg) {
  sigset_t cur;
  pthread_sigmask(SIG_SETMASK, NULL, &cur);
  uint64_t s = fill_and_sum((unsigned)(uintptr_t)arg);
  printf("worker %u: sum %llx, SIGSEGV blocked %d, SIGBUS blocked %d\n", (unsigned)(uintptr_t)arg, (unsigned long long)s,
         sigismember(&cur, SIGSEGV), sigismember(&cur, SIGBUS));
  return NULL;
}

int main(int argc, char** argv) {
  bytes = (size_t)(argc > 1 ? atoi(argv[1]) : 32) << 20;
  setvbuf(stdout, NULL, _IOLBF, 0);
  printf("main, nothing blocked: sum %llx\n", (unsigned long long)fill_and_sum(1));
  sigset_t all, old, cur;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  pthread_sigmask(SIG_SETMASK, NULL, &cur);
  printf("main, all blocked: SIGSEGV blocked %d, SIGBUS blocked %d, SIGINT blocked %d\n", sigismember(&cur, SIGSEGV),
         sigismember(&cur, SIGBUS), sigismember(&cur, SIGINT));
  printf("main, all blocked: sum %llx\n", (unsigned long long)fill_and_sum(2));
  // Threads created with the full mask inherit it, as liblzma's do.
  for (uintptr_t i = 0; i < 2; ++i) {
    pthread_t t;
    if (pthread_create(&t, NULL, worker, (void*)(i + 3)) != 0) return 1;
    pthread_join(t, NULL);
  }
  sigprocmask(SIG_UNBLOCK, &all, NULL);
  sigprocmask(SIG_BLOCK, NULL, &cur);
  printf("main, unblocked: SIGSEGV blocked %d, SIGBUS blocked %d\n", sigismember(&cur, SIGSEGV), sigismember(&cur, SIGBUS));
  sigset_t one;
  sigemptyset(&one);
  sigaddset(&one, SIGBUS);
  sigprocmask(SIG_BLOCK, &one, NULL);
  sigprocmask(SIG_SETMASK, NULL, &cur);
  printf("main, SIGBUS blocked: SIGSEGV blocked %d, SIGBUS blocked %d, sum %llx\n", sigismember(&cur, SIGSEGV),
         sigismember(&cur, SIGBUS), (unsigned long long)fill_and_sum(5));
  sigprocmask(SIG_UNBLOCK, &one, NULL);
  handler_buf = malloc(bytes);  // untouched until the handler runs
  if (handler_buf == NULL) return 1;
  struct sigaction sa, q;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_usr1;
  sigfillset(&sa.sa_mask);
  sigaction(SIGUSR1, &sa, NULL);
  sigaction(SIGUSR1, NULL, &q);
  raise(SIGUSR1);
  printf("handler with every signal blocked: sum %llx; its mask reads SIGSEGV %d, SIGBUS %d\n",
         (unsigned long long)handler_sum, sigismember(&q.sa_mask, SIGSEGV), sigismember(&q.sa_mask, SIGBUS));
  return 0;
}
