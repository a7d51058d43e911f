#!/usr/bin/env bash
# mlockall/munlockall under the shim lock the program's memory and not vmrt's: the host's
# mlockall(MCL_CURRENT | MCL_FUTURE) populated vmrt's reserved tables and the direct map of
# physical memory — the process grew by gigabytes and never returned (found when tried).
# The program natively and under vmrun prints the same results: argument errors (EINVAL),
# memory the program malloc'd and mmapped before MCL_CURRENT resident afterwards, a mapping
# made under MCL_FUTURE resident before any touch, one made under MCL_FUTURE | MCL_ONFAULT
# resident only where touched, munlockall, and the lock not inherited by a fork child.
# The run must end within a bound and with a small RSS (the hang's check).
# Also: memory the program mlocked and then freed used to abort vmrt when the heap gave it
# back (madvise(MADV_DONTNEED) refuses locked memory; vmrt now discards with
# MADV_DONTNEED_LOCKED): calloc afterwards must read zeros.
source "$(dirname "$0")/lib/scenario_lib.bash" "$1"
need cc

cat >"$TMP/ml.c" <<'C'
#define _GNU_SOURCE
#include <errno.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>
#define MB (1L << 20)
static void say(const char* what, long r) { printf("%-40s %ld %s\n", what, r, r == -1 ? strerrorname_np(errno) : ""); errno = 0; }
static long resident(void* p, long n) {
  static unsigned char v[65536];
  char* a = (char*)((unsigned long)p & ~4095UL);
  long len = (char*)p + n - a;
  if (mincore(a, len, v)) return -1;
  long c = 0; for (long i = 0; i < (len + 4095) / 4096; i++) c += v[i] & 1;
  return c;
}
static long rss_kb(void) { FILE* f = fopen("/proc/self/status", "r"); char l[256]; long kb = -1; while (fgets(l, sizeof l, f)) if (!strncmp(l, "VmRSS:", 6)) kb = atol(l + 6); fclose(f); return kb; }
int main(int argc, char** argv) {
  if (argc > 1) {  /* mlock malloc'd memory, free it, calloc again: zeros */
    static char* a[20000];
    for (int i = 0; i < 20000; i++) { a[i] = malloc(2000); memset(a[i], 7, 2000); }
    say("mlock of malloc'd memory", mlock(a[0], 2000 * 10000));
    for (int i = 0; i < 20000; i++) free(a[i]);
    malloc_trim(0);
    long bad = 0;
    for (int i = 0; i < 20000; i++) { a[i] = calloc(1, 2000); for (int j = 0; j < 2000; j++) bad += a[i][j] != 0; }
    say("nonzero calloc bytes", bad);
    return 0;
  }
  say("mlockall(0)", mlockall(0));
  say("mlockall(MCL_ONFAULT) alone", mlockall(MCL_ONFAULT));
  say("mlockall(unknown bit)", mlockall(MCL_CURRENT | 0x100));
  char* h = malloc(8 * MB);
  char* m = mmap(0, 16 * MB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  say("heap block resident before", resident((char*)(((unsigned long)h + MB) & ~4095UL), 4 * MB) == 1024);
  say("mapping resident before", resident(m, 16 * MB));
  say("mlockall(MCL_CURRENT)", mlockall(MCL_CURRENT));
  say("heap block resident after", resident((char*)(((unsigned long)h + MB) & ~4095UL), 4 * MB));
  say("mapping resident after", resident(m, 16 * MB));
  char* n = mmap(0, 16 * MB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  say("new mapping without MCL_FUTURE", resident(n, 16 * MB));
  say("mlockall(MCL_CURRENT | MCL_FUTURE)", mlockall(MCL_CURRENT | MCL_FUTURE));
  char* f = mmap(0, 16 * MB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  say("new mapping under MCL_FUTURE", resident(f, 16 * MB));
  pid_t pid = fork();
  if (pid == 0) {
    char* c = mmap(0, 4 * MB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    _exit(resident(c, 4 * MB) == 0 ? 0 : 1);  /* MCL_FUTURE is not inherited */
  }
  int st = 0; waitpid(pid, &st, 0);
  say("child's new mapping not locked", WIFEXITED(st) ? WEXITSTATUS(st) : -1);
  say("mlockall(MCL_FUTURE | MCL_ONFAULT)", mlockall(MCL_FUTURE | MCL_ONFAULT));
  char* o = mmap(0, 16 * MB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  say("onfault mapping before touch", resident(o, 16 * MB));
  memset(o, 1, 2 * MB);
  say("onfault mapping after touching 2 MiB", resident(o, 16 * MB));
  say("munlockall", munlockall());
  char* u = mmap(0, 16 * MB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  say("mapping after munlockall", resident(u, 16 * MB));
  say("munlock of a locked range", munlock(f, MB));
  say("MADV_DONTNEED after munlockall", madvise(f, MB, MADV_DONTNEED));
  long kb = rss_kb();
  say("RSS under 400 MB", kb > 0 && kb < 400 * 1024);
  return 0;
}
C
cc -O1 -o "$TMP/ml" "$TMP/ml.c"
"$TMP/ml" >"$TMP/native.out" 2>&1 || fail "native run failed: $(cat "$TMP/native.out")"
"$TMP/ml" free >"$TMP/native_free.out" 2>&1 || fail "native run (free) failed: $(cat "$TMP/native_free.out")"
for trap in auto sigsegv; do
  timeout 120 "$VMRUN" --trap "$trap" -- "$TMP/ml" >"$TMP/vmrt.out" 2>&1 ||
    fail "vmrun --trap $trap: status $? (124: the mlockall hang): $(tail -5 "$TMP/vmrt.out")"
  diff -u "$TMP/native.out" "$TMP/vmrt.out" >&2 || fail "--trap $trap: output differs from native (above)"
  timeout 120 "$VMRUN" --trap "$trap" -- "$TMP/ml" free >"$TMP/vmrt_free.out" 2>&1 ||
    fail "vmrun --trap $trap (mlock then free): status $?: $(tail -5 "$TMP/vmrt_free.out")"
  diff -u "$TMP/native_free.out" "$TMP/vmrt_free.out" >&2 || fail "--trap $trap (mlock then free): output differs (above)"
done
note "ok: mlockall/munlockall identical to native under both traps ($(wc -l <"$TMP/native.out") results); mlock then free keeps calloc's zeros"

# Under --physmem 64M the same program mlocks 48 MiB of pageable memory: wiring stops at a
# third of physical memory (mlock's EAGAIN; mlockall ignores it, as it ignores a failed
# populate) instead of wiring every frame — which left the next fault of the program's
# paged heap without a frame: SIGBUS in printf (found when tried).  What differs from
# native there is said in the README (the paged heap is not wired; refused wirings leave
# memory unlocked): the check is that the program finishes with its last line.
timeout 120 "$VMRUN" --physmem 64M --stats --stats-fd 3 -- "$TMP/ml" >"$TMP/paged.out" 2>&1 3>"$TMP/stats" ||
  fail "vmrun --physmem 64M: status $?: $(tail -3 "$TMP/paged.out")"
tail -1 "$TMP/paged.out" | grep -q "RSS under 400 MB *1" || fail "--physmem 64M: last line '$(tail -1 "$TMP/paged.out")'"
expect_vmstat "$TMP/stats" "wirings refused (a third of memory wired)" -ge 1 "--physmem 64M: wiring bound"
note "ok: under --physmem 64M wiring stopped at a third of memory and the program finished"
