#include <pthread.h>
#include <threads.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/wait.h>
/* The last thread of a process ends by returning from its start routine: glibc then ends the
   process with exit(0) (atexit handlers run, stdio is flushed).  Once in a fork child whose
   only thread is the forking one, once after main() called pthread_exit.  vmrt's machine
   threads (paging) are threads of the process too: the process lived on with them alone, and
   waitpid in the parent (or whoever waited) never returned (libc_shim/shim_thread.cpp). */
static void bye(void) { printf("atexit ran\n"); }
static void* worker(void* a) {
  usleep(100000);
  char* x = malloc(1 << 20);
  memset(x, 3, 1 << 20);
  printf("worker done %d\n", x[7]);
  return a;
}
static void* forker(void* a) {
  pid_t pid = fork();
  if (pid == 0) {           /* the child's only thread: returning ends the child */
    printf("child thread returns\n");
    return a;
  }
  int st = 0;
  waitpid(pid, &st, 0);
  printf("child exited %d\n", WIFEXITED(st) ? WEXITSTATUS(st) : -1);
  fflush(stdout);
  return a;
}
/* A thread that never returns: cancelled and joined.  It ends in glibc's unwinding, past
   the shim's trampoline and pthread_exit; the count missed it, and the worker's return
   below then left the process running with vmrt's machine threads. */
static void* sleeper(void* a) {
  for (;;) pause();
  return a;
}
/* A C11 thread: glibc makes it by an internal call, which the shim's count does not see; the
   process must live on until it ends, as natively. */
static int c11_worker(void* a) {
  (void)a;
  struct timespec ts = {0, 150 * 1000 * 1000};
  thrd_sleep(&ts, NULL);
  printf("c11 thread done\n");
  return 0;
}
int main(int argc, char** argv) {
  atexit(bye);
  setvbuf(stdout, NULL, _IOFBF, 0);   /* fully buffered: only exit's flush prints */
  if (argc > 1 && strcmp(argv[1], "cancel") == 0) {
    pthread_t s, w;
    pthread_create(&s, NULL, sleeper, NULL);
    pthread_cancel(s);
    void* r = NULL;
    pthread_join(s, &r);
    printf("sleeper cancelled %d\n", r == PTHREAD_CANCELED);
    pthread_create(&w, NULL, worker, NULL);
    pthread_exit(NULL);               /* the worker's return ends the process */
  }
  if (argc > 1) {                     /* "c11": main leaves while a C11 thread sleeps */
    thrd_t c;
    if (thrd_create(&c, c11_worker, NULL) != thrd_success) return 2;
    pthread_exit(NULL);
  }
  pthread_t t;
  pthread_create(&t, NULL, forker, NULL);
  pthread_join(t, NULL);
  fflush(stdout);
  pthread_create(&t, NULL, worker, NULL);
  pthread_exit(NULL);       /* main leaves first; the worker's return ends the process */
}
