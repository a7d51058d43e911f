/* env_workload.c — a small deterministic allocation workload for hostile_env_random: a
   few thousand malloc/realloc/free of mixed sizes (live set ~ 20 MiB), a fork whose child
   checks the parent's memory, two threads allocating, then a checksum of everything. */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define SLOTS 512
static unsigned char* slot[SLOTS];
static size_t len[SLOTS];
static uint64_t rng = 88172645463325252ull;
static uint64_t next(void) { rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17; return rng; }

static uint64_t sum_all(void) {
  uint64_t h = 1469598103934665603ull;
  for (int i = 0; i < SLOTS; ++i)
    for (size_t k = 0; k < len[i]; k += 61) h = (h ^ slot[i][k]) * 1099511628211ull;
  return h;
}

static void* worker(void* arg) {
  uintptr_t s = (uintptr_t)arg, acc = 0;
  for (int i = 0; i < 2000; ++i) {
    size_t n = 16 + (s * 2654435761u + i * 40503u) % 4000;
    char* p = malloc(n);
    if (p == NULL) return (void*)1;
    memset(p, (int)(i & 0xff), n);
    acc += (unsigned char)p[n / 2];
    free(p);
  }
  return (void*)(acc == 0 ? (uintptr_t)2 : 0);
}

int main(void) {
  for (int round = 0; round < 6000; ++round) {
    int i = (int)(next() % SLOTS);
    size_t n = (next() % 4 == 0) ? 16384 + next() % 200000 : 1 + next() % 2048;
    if (slot[i] != NULL && next() % 3 == 0) {
      unsigned char* r = realloc(slot[i], n);
      if (r == NULL) { puts("realloc failed"); return 1; }
      if (n > len[i]) memset(r + len[i], (int)(round & 0xff), n - len[i]);
      slot[i] = r;
    } else {
      free(slot[i]);
      slot[i] = malloc(n);
      if (slot[i] == NULL) { puts("malloc failed"); return 1; }
      memset(slot[i], (int)(round & 0xff), n);
    }
    len[i] = n;
  }
  uint64_t before = sum_all();
  pid_t pid = fork();
  if (pid == 0) {
    void* volatile extra = malloc(1 << 20);
    if (extra == NULL) _exit(8);
    memset(extra, 7, 1 << 20);
    _exit(sum_all() == before ? 0 : 9);
  }
  int st = 0;
  waitpid(pid, &st, 0);
  pthread_t t[2];
  for (uintptr_t k = 0; k < 2; ++k) pthread_create(&t[k], NULL, worker, (void*)(k + 1));
  uintptr_t bad = 0;
  for (int k = 0; k < 2; ++k) { void* r; pthread_join(t[k], &r); bad |= (uintptr_t)r; }
  printf("checksum %016llx child %d threads %s\n", (unsigned long long)sum_all(),
         WIFEXITED(st) ? WEXITSTATUS(st) : -1, bad ? "failed" : "ok");
  return 0;
}
