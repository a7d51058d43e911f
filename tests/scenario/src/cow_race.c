// cow_race.c — a copy-on-write fork child reads pages while its parent is pushing them.
//
// The parent fills a 32 MB heap block with its round number, forks, and at once two of its
// threads overwrite every page (one upwards, one downwards): each first write after the
// fork makes the parent push the page's fork-time bytes to the child.  The child meanwhile
// reads every page upwards and checks that each word still holds the fork-time round.  A
// push that makes the child's page visible before all its bytes are in (the page appears
// in the child's memfd at the push's first store, and a touch of a page already present
// does not fault) lets the child read zeros or a half-copied page.  Prints "ok" when every
// child of every round saw exactly its snapshot; else what a child saw, and exits 1.
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

enum { kPage = 4096, kPages = 8192, kRounds = 12, kWords = kPage / sizeof(uint64_t) };

static uint64_t* g_heap;
static atomic_int g_go;    // round the writers may overwrite; 0: wait
static atomic_int g_done;  // writers finished with the round

static void fill(size_t page, uint64_t v) {
  uint64_t* w = g_heap + page * kWords;
  for (size_t k = 0; k < kWords; ++k) w[k] = v;
}

static void* writer(void* arg) {
  int down = arg != NULL;
  for (int r = 1; r <= kRounds; ++r) {
    while (atomic_load(&g_go) != r) sched_yield();
    for (size_t i = 0; i < kPages; ++i) fill(down ? kPages - 1 - i : i, 1000u + (unsigned)r);
    atomic_fetch_add(&g_done, 1);
  }
  return NULL;
}

static int child_check(uint64_t want) {
  for (size_t p = 0; p < kPages; ++p) {
    const uint64_t* w = g_heap + p * kWords;
    for (size_t k = 0; k < kWords; ++k)
      if (w[k] != want) {
        fprintf(stderr, "child: page %zu word %zu is %llu, the fork left %llu\n", p, k, (unsigned long long)w[k],
               (unsigned long long)want);
        return 1;
      }
  }
  return 0;
}

int main(void) {
  g_heap = malloc((size_t)kPages * kPage);
  if (g_heap == NULL) return 2;
  pthread_t t[2];
  pthread_create(&t[0], NULL, writer, NULL);
  pthread_create(&t[1], NULL, writer, (void*)1);
  int bad = 0;
  for (int r = 1; r <= kRounds; ++r) {
    for (size_t p = 0; p < kPages; ++p) fill(p, (uint64_t)r);
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) _exit(child_check((uint64_t)r));
    atomic_store(&g_go, r);
    int st = 0;
    waitpid(pid, &st, 0);
    while (atomic_load(&g_done) != 2 * r) sched_yield();
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) bad = 1;
  }
  for (int k = 0; k < 2; ++k) pthread_join(t[k], NULL);
  puts(bad ? "a child saw pages that were not its snapshot" : "ok");
  return bad;
}
