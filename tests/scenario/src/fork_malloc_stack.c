/* fork_malloc_stack.c — a thread whose stack (and so its TLS) the program malloc'd forks.
 * Under paging the heap is vmrt's demand-paged memory: vmrt's fork handlers must not touch
 * that thread's TLS as if it were host memory (runtime/rt_fork_populate.h: in the child no
 * trap handler serves a fault yet, and in the parent the forking thread holds the VM lock).
 * Prints "ok N" after N forks whose children wrote their thread's TLS and exited 0. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static __thread int t_counter;

static void* worker(void* arg) {
  int forks = *(int*)arg, ok = 0;
  for (int i = 0; i < forks; ++i) {
    t_counter = i;
    pid_t pid = fork();
    if (pid < 0) { perror("fork"); return NULL; }
    if (pid == 0) {
      t_counter += 1000;  /* a write to this thread's TLS in the child */
      char* p = malloc(100);
      strcpy(p, "child");
      _exit(t_counter == i + 1000 ? 0 : 1);
    }
    int st;
    if (waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0) ++ok;
  }
  *(int*)arg = ok;
  return NULL;
}

int main(void) {
  const size_t stack = 1 << 20;
  void* mem = malloc(stack);
  memset(mem, 0, stack);  /* resident, then paged out by the small physmem below */
  /* 32 MB of heap churn so a small physmem pages the stack's pages out */
  for (int i = 0; i < 32; ++i) {
    char* b = malloc(1 << 20);
    memset(b, i, 1 << 20);
    free(b);
  }
  pthread_attr_t a;
  pthread_attr_init(&a);
  if (pthread_attr_setstack(&a, mem, stack) != 0) { fprintf(stderr, "setstack failed\n"); return 1; }
  int n = 20;
  pthread_t t;
  if (pthread_create(&t, &a, worker, &n) != 0) { fprintf(stderr, "pthread_create failed\n"); return 1; }
  pthread_join(t, NULL);
  printf("ok %d\n", n);
  return 0;
}
