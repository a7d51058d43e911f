// fork_tls_modules.c — a fork child's first handler thread under paging, in a process that
// dlopen'ed a module with TLS and whose heap was then paged out.
//
// A fork child under --physmem starts its userfaultfd handler thread with pthread_create,
// which in the child reuses the parent's handler thread's cached stack and initialises its
// TLS: it reads the old dtv and the dlopen'ed module's link_map, both in the heap, both
// faults only a handler can serve.  The child hung there before runtime/uffd_relay.
//
// Usage: fork_tls_modules MODULE.so MB FORKS.  Prints what the children saw.  The children
// end with exit(), so under `vmrun --stats` each writes its own report.
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static void* worker(void* arg) {
  char* p = malloc(4096);
  memset(p, (int)(size_t)arg, 4096);
  int sum = p[17];
  free(p);
  return (void*)(size_t)sum;
}

int main(int argc, char** argv) {
  if (argc != 4) return 2;
  size_t mb = strtoul(argv[2], NULL, 10) << 20;
  int forks = atoi(argv[3]);
  void* module = dlopen(argv[1], RTLD_NOW);
  if (module == NULL) { fprintf(stderr, "dlopen: %s\n", dlerror()); return 1; }
  int (*tls_get)(int) = (int (*)(int))dlsym(module, "tls_get");
  char* keep = malloc(mb);
  memset(keep, 7, mb);
  for (int round = 0; round < forks; ++round) {
    pthread_t t;  // a thread of the program that ran and exited: its stack is cached too
    pthread_create(&t, NULL, worker, (void*)(size_t)(round + 1));
    void* got;
    pthread_join(t, &got);
    char* sweep = malloc(mb);  // the rest of the process goes out to swap
    for (size_t o = 0; o < mb; o += 4096) sweep[o] = (char)(o >> 12);
    free(sweep);
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0) { perror("fork"); return 1; }
    if (pid == 0) {
      char line[128];
      int n = snprintf(line, sizeof line, "child %d: tls %d keep %d worker %d\n", round, tls_get(round % 100),
                       keep[mb / 2], (int)(size_t)got);
      if (write(1, line, (size_t)n) != n) _exit(3);
      exit(0);
    }
    int st;
    if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
      printf("child %d failed: status %d\n", round, st);
      return 1;
    }
  }
  printf("done\n");
  return 0;
}
