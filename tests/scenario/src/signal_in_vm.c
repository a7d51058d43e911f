// A signal handler that touches paged-out heap, run by a timer every millisecond while the
// program maps, unmaps, mallocs and frees: many signals arrive while the thread is inside
// vmrt holding the VM lock or a kmem lock (scenario async_signals).  Before vm_critical the
// handler's fault needed the lock its own thread held: a panic under userfaultfd ("faulted
// while holding the VM lock"), SIGBUS under sigsegv traps.  Prints "ok 1" when every byte
// the handler read was the one the program wrote.
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/time.h>
static volatile unsigned char* big;
static size_t bigsz = 48u << 20;
static volatile unsigned long sum, hits;
static unsigned long rnd = 88172645463325252ul;
static void on_alarm(int sig) {
  (void)sig;
  for (int k = 0; k < 1; ++k) {
    rnd ^= rnd << 13; rnd ^= rnd >> 7; rnd ^= rnd << 17;
    sum += big[(rnd % (bigsz / 4096)) * 4096];
  }
  hits++;
}
int main(void) {
  big = malloc(bigsz);
  memset((void*)big, 1, bigsz);
  struct sigaction sa; memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_alarm; sa.sa_flags = SA_RESTART;
  sigaction(SIGALRM, &sa, 0);
  struct itimerval it = {{0, 1000}, {0, 1000}};
  setitimer(ITIMER_REAL, &it, 0);
  for (int i = 0; i < 6000; ++i) {
    void* p = mmap(0, 1 << 16, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    ((char*)p)[0] = 1;
    munmap(p, 1 << 16);
    char* q = malloc(300000 + (i % 7) * 4096); q[0] = 2; free(q);
  }
  struct itimerval z = {{0, 0}, {0, 0}};
  setitimer(ITIMER_REAL, &z, 0);
  printf("ok %lu\n", sum == hits ? 1ul : 0ul);
  return 0;
}
