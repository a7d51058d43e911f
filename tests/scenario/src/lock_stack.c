// lock_stack.c — a thread on a stack it was given (pthread_attr_setstack over mmap'd
// memory) calls into vmrt (mmap, munmap, malloc) with the stack below its frame dropped by
// another thread (MADV_DONTNEED: demand-zero again), its frame placed at every 128 bytes
// of two pages; a signal handler does the same on an alternate stack in mmap'd memory; and
// coroutines on fresh malloc'd stacks call malloc and mmap.
// Under vmrt the calls take the VM lock, and the VM's own frames then reach a page of that
// stack that is not resident: a fault no handler could serve while the lock is held (vmrt
// panicked "fault by the VM lock holder"; scenario program_stacks, in a loaded run).
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

enum { kStack = 1 << 20, kPage = 4096, kStep = 128 };

static unsigned char *g_stack, *g_alt;
// A request to drop a stack's pages from base up to below, and the dropper's answer; the
// caller spins in its own frame meanwhile (a call would have frames in the pages dropped).
static unsigned char *_Atomic g_drop_base;
static _Atomic uintptr_t g_drop_below;
static _Atomic int g_dropped, g_stop;

static void *dropper(void *arg) {
  (void)arg;
  while (!g_stop) {
    uintptr_t below = g_drop_below;
    if (below == 0) continue;
    g_drop_below = 0;
    unsigned char *base = g_drop_base;
    g_dropped = madvise(base, below - (uintptr_t)base, MADV_DONTNEED) == 0 ? 1 : -1;
  }
  return NULL;
}

// At a frame `pad` bytes lower on the stack at base: have every page of it below this
// frame's page dropped, then make calls that take the VM lock.
static __attribute__((noinline)) int calls_at(unsigned char *base, size_t pad) {
  volatile unsigned char *room = __builtin_alloca(pad + 1);
  room[0] = 1;
  g_dropped = 0;
  g_drop_base = base;
  g_drop_below = (uintptr_t)room & ~(uintptr_t)(kPage - 1);
  while (!g_dropped) {
  }
  if (g_dropped < 0) return -1;
  void *p = mmap(NULL, 3 * kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return -1;
  memset(p, 7, 3 * kPage);
  if (munmap(p, 3 * kPage) != 0) return -1;
  char *m = malloc(200000 + pad);
  if (m == NULL) return -1;
  m[0] = 1;
  free(m);
  return room[0];
}

static int every_offset(unsigned char *base) {
  int good = 0;
  for (size_t pad = kPage; pad < 3 * kPage; pad += kStep) good += calls_at(base, pad) == 1;
  return good;
}

static void *body(void *arg) {
  (void)arg;
  return (void *)(intptr_t)every_offset(g_stack);
}

// The same on an alternate signal stack in mmap'd memory (raised synchronously: the
// thread is in no libc call).
static volatile int g_alt_good;
static void on_usr1(int sig) {
  (void)sig;
  g_alt_good = every_offset(g_alt);
}

// Coroutines on fresh malloc'd stacks (ucontext), whose mallocs and mmaps reach the VM
// lock on stack pages never touched before: stacks vmrt does not see made.
enum { kCoroutines = 8, kCoStack = 256 * 1024, kCoSteps = 400 };
static ucontext_t g_main_uc, g_co_uc[kCoroutines];
static long g_co_sum[kCoroutines];

static void coroutine(int k) {
  long s = 0;
  for (int i = 0; i < kCoSteps; ++i) {
    char *p = malloc(1000 + (size_t)(i * 37 + k * 101) % 70000);
    if (p == NULL) return;
    p[0] = (char)i;
    s += p[0];
    if (i % 3 != 0) free(p);
    void *m = mmap(NULL, 2 * kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m != MAP_FAILED) s += munmap(m, 2 * kPage) == 0;
    swapcontext(&g_co_uc[k], &g_main_uc);
  }
  g_co_sum[k] = s;
}

static void coroutines(void) {
  for (int k = 0; k < kCoroutines; ++k) {
    getcontext(&g_co_uc[k]);
    g_co_uc[k].uc_stack.ss_sp = malloc(kCoStack);
    g_co_uc[k].uc_stack.ss_size = kCoStack;
    g_co_uc[k].uc_link = &g_main_uc;
    makecontext(&g_co_uc[k], (void (*)(void))coroutine, 1, k);
  }
  for (int step = 0; step <= kCoSteps; ++step)
    for (int k = 0; k < kCoroutines; ++k) swapcontext(&g_main_uc, &g_co_uc[k]);
  long total = 0;
  for (int k = 0; k < kCoroutines; ++k) total += g_co_sum[k];
  printf("coroutines on malloc'd stacks: sum %ld\n", total);
}

int main(void) {
  // vmrt serves a program's mmap once its machine is up: the first malloc the young
  // process's first chunk cannot serve boots it.
  char *volatile boot = malloc(300000);
  boot[0] = 1;
  free(boot);
  g_stack = mmap(NULL, kStack, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  g_alt = mmap(NULL, kStack, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (g_stack == MAP_FAILED || g_alt == MAP_FAILED) return 1;
  pthread_t d, t;
  if (pthread_create(&d, NULL, dropper, NULL) != 0) return 1;
  pthread_attr_t a;
  pthread_attr_init(&a);
  pthread_attr_setstack(&a, g_stack, kStack);
  void *good = NULL;
  if (pthread_create(&t, &a, body, NULL) != 0 || pthread_join(t, &good) != 0) return 1;
  printf("thread stack, with the stack below dropped: %ld of %d calls as expected\n", (long)(intptr_t)good, 2 * kPage / kStep);
  stack_t ss = {.ss_sp = g_alt, .ss_size = kStack, .ss_flags = 0};
  struct sigaction sa = {.sa_handler = on_usr1, .sa_flags = SA_ONSTACK};
  if (sigaltstack(&ss, NULL) != 0 || sigaction(SIGUSR1, &sa, NULL) != 0) return 1;
  raise(SIGUSR1);
  printf("alternate stack, likewise: %d of %d calls as expected\n", g_alt_good, 2 * kPage / kStep);
  g_stop = 1;
  pthread_join(d, NULL);
  coroutines();
  return 0;
}
