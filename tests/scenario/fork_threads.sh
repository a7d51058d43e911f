#!/usr/bin/env bash
# fork under the shim: a program whose threads malloc/free continuously forks
# repeatedly; no deadlock (timeout), the child's malloc works, and parent and
# child memory are independent both ways.  Then a fork-heavy shell loop gives the
# same output as natively (timings printed for comparison).
source "$(dirname "$0")/lib/scenario_lib.bash" "$1"
need cc bash timeout seq

cat >"$TMP/forkmt.c" <<'C'
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
static atomic_int stop;
static void* churn(void* arg) {
  unsigned seed = (unsigned)(size_t)arg;
  void* slot[64] = {0};
  while (!atomic_load(&stop)) {
    int i = rand_r(&seed) % 64;
    free(slot[i]);
    size_t n = 16 + rand_r(&seed) % (i < 8 ? 100000 : 2000);
    slot[i] = malloc(n);
    memset(slot[i], i, n < 64 ? n : 64);
  }
  for (int i = 0; i < 64; ++i) free(slot[i]);
  return NULL;
}
int main(void) {
  pthread_t t[3];
  for (int i = 0; i < 3; ++i) pthread_create(&t[i], NULL, churn, (void*)(size_t)(i + 1));
  char* shared = malloc(1 << 16);
  for (int round = 0; round < 40; ++round) {
    memset(shared, 'P', 1 << 16);
    pid_t pid = fork();
    if (pid < 0) { perror("fork"); return 1; }
    if (pid == 0) {
      // Child: only this thread survives; its allocator must work.
      if (shared[0] != 'P' || shared[(1 << 16) - 1] != 'P') _exit(10);
      memset(shared, 'C', 1 << 16);  // must not show in the parent
      char* blocks[500];
      for (int i = 0; i < 500; ++i) {
        blocks[i] = malloc(32 + i * 97);
        if (blocks[i] == NULL) _exit(11);
        memset(blocks[i], i & 0xff, 32 + i * 97);
      }
      for (int i = 0; i < 500; ++i) {
        if ((unsigned char)blocks[i][31 + i * 97] != (i & 0xff)) _exit(12);
        free(blocks[i]);
      }
      pthread_t ct;  // threads work in the child too
      if (pthread_create(&ct, NULL, churn, (void*)7) != 0) _exit(13);
      usleep(2000);
      atomic_store(&stop, 1);
      pthread_join(ct, NULL);
      exit(0);  // runs atexit/destructors: the child's allocator at exit
    }
    memset(shared + 100, 'Q', 100);  // parent writes while the child runs
    int st = 0;
    if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
      printf("round %d: child status %d\n", round, st);
      return 1;
    }
    if (shared[0] != 'P' || shared[150] != 'Q') { printf("round %d: the child's writes reached the parent\n", round); return 1; }
  }
  atomic_store(&stop, 1);
  for (int i = 0; i < 3; ++i) pthread_join(t[i], NULL);
  free(shared);
  puts("forks ok");
  return 0;
}
C
cc -O1 -pthread -o "$TMP/forkmt" "$TMP/forkmt.c"
for trap in auto sigsegv; do
  st=0
  # 20-25 s at load 9-12 and more at 24 (a helper's run hit the old 60 s limit): the limit only
  # ends a deadlock, and `watched` leaves every thread's stack in the failure message.
  out=$(watched 300 "$VMRUN" --trap $trap -- "$TMP/forkmt" 2>&1) || st=$?
  [ $st -ne 124 ] || fail "--trap $trap: deadlock (timed out after 300 s)"
  [ $st -eq 0 ] && [ "$out" = "forks ok" ] || fail "--trap $trap: status $st: $out"
done

write_workflow <<'SH'
for i in $(seq 200); do x=$(echo $i); s=$((${s:-0} + x)); done
echo "$s"
SH
compare_workflow
note "ok: fork from a multithreaded program; fork-heavy shell loop"
