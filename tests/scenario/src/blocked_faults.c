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
  return 0;
}
