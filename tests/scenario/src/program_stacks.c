// program_stacks.c — stacks the program gives the kernel, in memory it allocated: thread
// stacks (pthread_attr_setstack over malloc'd and mmap'd memory) and alternate signal stacks
// (sigaltstack over malloc'd memory, replaced, disabled, auto-disarmed), used while the heap
// is paged out.  Prints what the program sees: the same lines natively and under vmrun.
//   program_stacks MB   (MB: the pressure heap walked between rounds, above --physmem)
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#ifndef SS_AUTODISARM
#define SS_AUTODISARM (1U << 31)
#endif

static char *g_pressure;
static size_t g_pressure_len;

// Write every page of the pressure heap: the rest of the heap is paged out meanwhile.
static unsigned long walk(unsigned salt) {
  unsigned long sum = 0;
  for (size_t o = 0; o < g_pressure_len; o += 4096) {
    g_pressure[o] = (char)(o / 4096 + salt);
    sum += (unsigned char)g_pressure[o];
  }
  return sum;
}

// A thread: a deep frame on its own stack, the pressure heap walked (its stack and
// descriptor are paged out meanwhile, and it is preempted: the kernel writes its rseq
// area), then the frame read back.
static void *body(void *arg) {
  unsigned id = (unsigned)(unsigned long)arg;
  volatile unsigned char frame[96 * 1024];
  for (size_t k = 0; k < sizeof frame; ++k) frame[k] = (unsigned char)(k * 7 + id);
  walk(id);
  sched_yield();
  unsigned long sum = 0;
  for (size_t k = 0; k < sizeof frame; ++k) sum += frame[k] ^ (unsigned char)(k * 7 + id);
  if (id == 8) pthread_exit((void *)(sum == 0 ? 1UL : 0UL));  // a detached one ends so
  return (void *)(sum == 0 ? 1UL : 0UL);
}

static void *stack_of(int use_mmap, size_t size) {
  if (!use_mmap) return malloc(size);
  void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  return p == MAP_FAILED ? NULL : p;
}

// Rounds of 3 concurrent threads on program stacks, joined; one detached thread per round
// (returning, or ending with pthread_exit).
static void thread_rounds(int use_mmap, int rounds) {
  const size_t size = 512 * 1024;
  int good = 0, detached_done = 0;
  for (int r = 0; r < rounds; ++r) {
    pthread_t t[3];
    void *stk[3];
    for (int k = 0; k < 3; ++k) {
      stk[k] = stack_of(use_mmap, size);
      pthread_attr_t a;
      pthread_attr_init(&a);
      pthread_attr_setstack(&a, stk[k], size);
      if (pthread_create(&t[k], &a, body, (void *)(unsigned long)(r * 3 + k)) != 0) {
        printf("pthread_create failed\n");
        exit(1);
      }
      pthread_attr_destroy(&a);
    }
    for (int k = 0; k < 3; ++k) {
      void *ret = NULL;
      pthread_join(t[k], &ret);
      good += ret == (void *)1UL;
      if (use_mmap) munmap(stk[k], size);
      else free(stk[k]);
    }
    // A detached thread on a program stack (the stack is left to the process's end).
    pthread_attr_t a;
    pthread_attr_init(&a);
    pthread_attr_setstack(&a, stack_of(use_mmap, size), size);
    pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
    pthread_t d;
    if (pthread_create(&d, &a, body, (void *)(r % 2 == 0 ? 7UL : 8UL)) == 0) ++detached_done;
    pthread_attr_destroy(&a);
    walk(r);
  }
  usleep(200 * 1000);
  printf("%s stacks: %d of %d threads kept their frames, %d detached started\n", use_mmap ? "mmap'd" : "malloc'd", good,
         rounds * 3, detached_done);
}

// Alternate signal stacks in the heap, as gdb's (13.5 KB from malloc): every fault the heap
// takes under the sigsegv backend is a signal delivered on it.
static volatile sig_atomic_t g_usr1;
static void on_usr1(int sig) {
  (void)sig;
  char here;
  stack_t cur;
  sigaltstack(NULL, &cur);
  g_usr1 = (cur.ss_flags & SS_ONSTACK) != 0 && &here >= (char *)cur.ss_sp && &here < (char *)cur.ss_sp + cur.ss_size ? 1 : 2;
  if ((cur.ss_flags & (int)SS_AUTODISARM) != 0) g_usr1 = 3;
}

static void report_stack(const char *what, const stack_t *want) {
  stack_t cur;
  sigaltstack(NULL, &cur);
  int same = cur.ss_sp == want->ss_sp && cur.ss_size == want->ss_size;
  printf("%s: %s, flags %#x\n", what, same ? "as installed" : "differs", (unsigned)cur.ss_flags & ~(unsigned)SS_ONSTACK);
}

static void *altstack_thread(void *arg) {
  (void)arg;
  stack_t ss = {.ss_sp = malloc(13504), .ss_size = 13504, .ss_flags = 0};
  sigaltstack(&ss, NULL);
  unsigned long sum = walk(3);
  stack_t off = {.ss_flags = SS_DISABLE};
  sigaltstack(&off, NULL);
  free(ss.ss_sp);
  return (void *)(sum != 0 ? 1UL : 0UL);
}

static void altstacks(void) {
  struct sigaction sa = {0};
  sa.sa_handler = on_usr1;
  sa.sa_flags = SA_ONSTACK;
  sigaction(SIGUSR1, &sa, NULL);
  stack_t ss = {.ss_sp = malloc(13504), .ss_size = 13504, .ss_flags = 0};
  if (sigaltstack(&ss, NULL) != 0) perror("sigaltstack");
  report_stack("malloc'd altstack", &ss);
  walk(1);
  raise(SIGUSR1);
  printf("handler on the altstack: %s\n", g_usr1 == 1 ? "yes" : "no");
  // Replaced by a bigger one; the first freed.
  stack_t big = {.ss_sp = malloc(256 * 1024), .ss_size = 256 * 1024, .ss_flags = 0};
  stack_t old;
  sigaltstack(&big, &old);
  printf("old stack reported: %s\n", old.ss_sp == ss.ss_sp && old.ss_size == ss.ss_size ? "yes" : "no");
  free(ss.ss_sp);
  walk(2);
  report_stack("replaced altstack", &big);
  // Auto-disarmed while a handler runs on it.
  stack_t ad = big;
  ad.ss_flags = SS_AUTODISARM;
  if (sigaltstack(&ad, NULL) != 0) perror("sigaltstack SS_AUTODISARM");
  walk(4);
  raise(SIGUSR1);
  printf("autodisarm handler: %d\n", g_usr1);
  // A thread with its own.
  pthread_t t;
  void *ret = NULL;
  pthread_create(&t, NULL, altstack_thread, NULL);
  pthread_join(t, &ret);
  printf("thread with a heap altstack: %s\n", ret == (void *)1UL ? "ran" : "failed");
  // Disabled: the memory is the program's to free and reuse.
  stack_t off = {.ss_flags = SS_DISABLE};
  sigaltstack(&off, NULL);
  stack_t cur;
  sigaltstack(NULL, &cur);
  printf("disabled: %s\n", (cur.ss_flags & SS_DISABLE) != 0 ? "yes" : "no");
  free(big.ss_sp);
  walk(5);
}

int main(int argc, char **argv) {
  g_pressure_len = (size_t)(argc > 1 ? atoi(argv[1]) : 48) << 20;
  g_pressure = malloc(g_pressure_len);
  setvbuf(stdout, NULL, _IOLBF, 0);
  altstacks();
  thread_rounds(0, 4);
  thread_rounds(1, 4);
  printf("done\n");
  return 0;
}
