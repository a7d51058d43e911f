#!/usr/bin/env bash
# Host fork() under vmrun is copy-on-write: a program with a 256 MB touched heap forks 100
# children.  Each child checks that it got nothing copied at the fork (its private dirty
# memory, plus the host shared memory the fork added, stays far below the heap), then
# writes 1 MiB and sees that much copied; parent and children see each other's writes
# never (checked both ways, each child on a different block).  Before the heap was host
# memory, every fork copied all 256 MB of frames into the child's physmem.
# Run natively too: the same program must pass there (the check is the host's semantics).
source "$(dirname "$0")/lib/scenario_lib.bash" "$1"
need cc

cat >"$TMP/forks.c" <<'C'
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#define MB (1 << 20)
#define NBLK 256
static long proc_kb(const char* path, const char* fmt) {
  FILE* f = fopen(path, "r");
  char line[256];
  long kb = -1;
  if (!f) return -1;
  while (fgets(line, sizeof line, f)) if (sscanf(line, fmt, &kb) == 1) break;
  fclose(f);
  return kb;
}
static int block_is(unsigned char* b, unsigned char v) {
  for (size_t k = 0; k < MB; k += 4096) if (b[k] != v || b[k + 4095] != v) return 0;
  return 1;
}
int main(void) {
  static unsigned char* blk[NBLK];
  for (int i = 0; i < NBLK; ++i) {
    blk[i] = malloc(MB);
    if (!blk[i]) { puts("malloc failed"); return 1; }
    memset(blk[i], i, MB);
  }
  static long copies[100];
  for (int c = 0; c < 100; ++c) {
    int to_parent[2], to_child[2];
    if (pipe(to_parent) || pipe(to_child)) return 1;
    long shmem0 = proc_kb("/proc/meminfo", "Shmem: %ld kB");
    pid_t pid = fork();
    if (pid < 0) { puts("fork failed"); return 1; }
    if (pid == 0) {
      close(to_parent[0]); close(to_child[1]);
      /* Copied: the child's private memory, plus the host's shared memory the fork added
         (under --physmem the heap is frames of a memfd: a child's copies are shared memory). */
      long priv = proc_kb("/proc/self/smaps_rollup", "Private_Dirty: %ld kB");
      long copied = priv + (proc_kb("/proc/meminfo", "Shmem: %ld kB") - shmem0);
      long shm = proc_kb("/proc/self/status", "RssShmem: %ld kB");
      int mine = c % NBLK, theirs = (c + 1) % NBLK;
      if (!block_is(blk[mine], (unsigned char)mine)) _exit(10);
      memset(blk[mine], 0xEE, MB);  /* the child's write: copied now, invisible to the parent */
      long priv_after = proc_kb("/proc/self/smaps_rollup", "Private_Dirty: %ld kB");
      long shm_after = proc_kb("/proc/self/status", "RssShmem: %ld kB");
      char go;
      if (write(to_parent[1], "x", 1) != 1 || read(to_child[0], &go, 1) != 1) _exit(11);
      /* the parent wrote `theirs` after the fork: the child still sees the old bytes */
      if (!block_is(blk[theirs], (unsigned char)theirs)) _exit(12);
      /* writing 1 MiB copied 1 MiB: private memory natively, the child's own memfd pages
         (resident shared memory) with the heap in frames */
      if (priv_after - priv < 1000 && shm_after - shm < 1000) _exit(13);
      char msg[64];
      int n = snprintf(msg, sizeof msg, "%ld\n", copied);
      if (write(to_parent[1], msg, n) != n) _exit(14);
      _exit(0);
    }
    close(to_parent[1]); close(to_child[0]);
    char x;
    if (read(to_parent[0], &x, 1) != 1) { printf("child %d died early\n", c); return 1; }
    int theirs = (c + 1) % NBLK;
    memset(blk[theirs], 0xDD, MB);
    if (write(to_child[1], "y", 1) != 1) return 1;
    char msg[64] = {0};
    ssize_t n = read(to_parent[0], msg, sizeof msg - 1);
    int st = 0;
    waitpid(pid, &st, 0);
    close(to_parent[0]); close(to_child[1]);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) { printf("child %d failed: status %d\n", c, WIFEXITED(st) ? WEXITSTATUS(st) : -WTERMSIG(st)); return 1; }
    copies[c] = n > 0 ? atol(msg) : -1;
    /* the child's write never reached the parent; restore the parent's own write */
    if (!block_is(blk[c % NBLK], (unsigned char)(c % NBLK))) { printf("child %d's write reached the parent\n", c); return 1; }
    memset(blk[theirs], theirs, MB);
  }
  for (int i = 0; i < NBLK; ++i) if (!block_is(blk[i], (unsigned char)i)) { printf("block %d changed\n", i); return 1; }
  /* 256 MB touched: a fork that copies shows ~262144 KB every time.  The host's shared
     memory is machine-wide (other processes change it meanwhile): judge the median fork,
     with 16 MB of room for the runtime's own frames. */
  for (int i = 1; i < 100; ++i)
    for (int j = i; j > 0 && copies[j] < copies[j - 1]; --j) { long t = copies[j]; copies[j] = copies[j - 1]; copies[j - 1] = t; }
  long med = copies[50];
  if (med > 16384) { printf("the median child had %ld KB copied at its fork\n", med); return 1; }
  fprintf(stderr, "100 forks of a 256 MB heap: median %ld KB copied at a fork\n", med);
  puts("ok");
  return 0;
}
C
cc -O1 -o "$TMP/forks" "$TMP/forks.c"
out=$("$TMP/forks") || fail "natively: $out"
[ "$out" = ok ] || fail "natively: $out"
out=$("$VMRUN" -- "$TMP/forks") || fail "under vmrun: $out"
[ "$out" = ok ] || fail "under vmrun: $out"
note "ok: 100 copy-on-write forks of a 256 MB heap, independent both ways"

# The heap in frames (paging): the child's memfd starts empty and gets a frame when the
# child first uses it or the parent first changes it (runtime/physmem_cow.h).  That needs
# the userfaultfd backend with write protection on shmem; with the sigsegv backend (what an
# unprivileged user gets) a fork still copies every frame, so the case is skipped, said.
backend=$(trap_backend_of --physmem 64M)
if [ "$backend" = userfaultfd ]; then
  out=$("$VMRUN" --physmem 512M --stats --stats-fd 3 -- "$TMP/forks" 3>"$TMP/stats") || fail "under vmrun --physmem: $out"
  [ "$out" = ok ] || fail "under vmrun --physmem 512M: $out"
  forks=$(awk '/copy-on-write host forks$/ {print $1; exit}' "$TMP/stats")
  [ "${forks:-0}" -eq 100 ] || fail "--physmem 512M: ${forks:-no} copy-on-write host forks reported, not 100"
  note "ok: 100 copy-on-write forks of a 256 MB heap in frames (--physmem 512M), independent both ways"
else
  note "SKIPPED: the heap in frames (--physmem): the trap backend is '${backend:-unknown}', not userfaultfd, so forks copy frames"
fi
