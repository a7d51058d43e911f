#!/usr/bin/env bash
# brk/sbrk: the data segment grows and shrinks (McKusick et al., 4.4BSD ch. 5).  Under the
# shim the segment is vmrt's (runtime/rt_brk.h): entries of the process vmspace at the
# bottom of the mmap area.  The same program natively and under vmrun prints the same
# results — break arithmetic relative to the start, contents kept and zeros after a
# shrink and regrow, a shrink below the start that glibc reports as success with the break
# unchanged, a wrapping decrement (ENOMEM), growth refused within a page of a mapping
# (Linux's guard), copy-on-write in a fork child, 64 MiB grown and touched sparsely — and
# vmrun's report shows that vmrt served the calls (the check cannot pass by falling back
# to the host's break).  The same under --physmem 16M with 48 MiB of the segment written:
# it pages out and every byte comes back.
source "$(dirname "$0")/lib/scenario_lib.bash" "$1"
need cc

cat >"$TMP/brk.c" <<'C'
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>
#define PG 4096L
static void say(const char* what, long r) { printf("%-36s %ld %s\n", what, r, r == -1 ? strerrorname_np(errno) : ""); errno = 0; }
static long off(char* p, char* b0) { return p == (char*)-1 ? -1 : (long)(p - b0); }
static long sum(const unsigned char* p, long n) { long s = 0; for (long i = 0; i < n; i++) s += p[i] * (i % 7 + 1); return s; }
int main(int argc, char** argv) {
  long big = argc > 1 ? atol(argv[1]) : 0;
  void* volatile boot = malloc(16);  /* vmrt boots at the first malloc */
  free(boot);
  char* b0 = sbrk(0);
  say("sbrk(0) valid", b0 != (char*)-1);
  /* Start from a page boundary, so what follows does not depend on where the break began. */
  long pad = (PG - ((uintptr_t)b0 & (PG - 1))) & (PG - 1);
  say("sbrk(pad)", off(sbrk(pad), b0));
  char* b = sbrk(0);
  say("sbrk(1 MiB) returns the old break", off(sbrk(1 << 20), b));
  say("break moved by 1 MiB", off(sbrk(0), b));
  for (long i = 0; i < (1 << 20); i++) b[i] = (char)(i * 31 + 7);
  long s_half = sum((unsigned char*)b, 1 << 19);
  say("sbrk(-512 KiB) returns the old break", off(sbrk(-(1 << 19)), b));
  say("break at 512 KiB", off(sbrk(0), b));
  say("first half intact", sum((unsigned char*)b, 1 << 19) == s_half);
  say("regrow 512 KiB", off(sbrk(1 << 19), b));
  long z = 0; for (long i = 1 << 19; i < (1 << 20); i++) z |= b[i];
  say("regrown half reads zeros", z);
  say("sbrk(3) byte step", off(sbrk(3), b));
  say("sbrk(-3) back", off(sbrk(-3), b));
  say("brk below the start (glibc: 0)", brk((void*)PG));  /* (not b0 - PG: natively glibc malloc has grown the break past its start) */
  say("break unchanged", off(sbrk(0), b));
  say("sbrk wrapping decrement", off(sbrk(-(intptr_t)((uintptr_t)sbrk(0) + 1)), b));
  say("brk to the same break", brk(sbrk(0)));
  /* A mapping three pages above the break: growth stops a page short of it. */
  char* top = sbrk(0);
  char* m = mmap(top + 3 * PG, PG, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
  say("mapping above the break", m == top + 3 * PG);
  say("sbrk(2 pages) fits", off(sbrk(2 * PG), top));
  say("sbrk(1) within a page refused", off(sbrk(1), top));
  say("brk within a page refused", brk(top + 2 * PG + 1));
  say("break unchanged after refusals", off(sbrk(0), top));
  munmap(m, PG);
  say("sbrk(1) after the mapping went", off(sbrk(1), top));
  sbrk(-1);
  /* Copy-on-write in a fork child. */
  b[0] = 11;
  pid_t pid = fork();
  if (pid == 0) { b[0] = 22; _exit(b[0] == 22 && sbrk(0) == top + 2 * PG ? 0 : 1); }
  int st = 0;
  waitpid(pid, &st, 0);
  say("child saw its own write and break", WIFEXITED(st) ? WEXITSTATUS(st) : -1);
  say("parent keeps its byte", b[0]);
  /* 64 MiB grown, a byte every 1 MiB touched. */
  char* g = sbrk(64L << 20);
  say("sbrk(64 MiB)", g == top + 2 * PG);
  for (long i = 0; i < (64L << 20); i += 1 << 20) g[i] = (char)i;
  long ok = 1; for (long i = 0; i < (64L << 20); i += 1 << 20) ok &= g[i] == (char)i;
  say("sparse bytes kept", ok);
  say("shrink 64 MiB", off(sbrk(-(64L << 20)), top));
  if (big > 0) {
    /* Written whole: under --physmem it pages out, and every byte must come back. */
    unsigned char* w = sbrk(big << 20);
    say("sbrk(big)", w != (void*)-1);
    for (long i = 0; i < (big << 20); i++) w[i] = (unsigned char)(i * 131 + (i >> 12));
    long bad = 0; for (long i = 0; i < (big << 20); i++) bad += w[i] != (unsigned char)(i * 131 + (i >> 12));
    say("big segment bytes wrong", bad);
    say("shrink big", sbrk(-(big << 20)) == (void*)w + (big << 20));
  }
  return 0;
}
C
cc -O1 -o "$TMP/brk" "$TMP/brk.c"
"$TMP/brk" >"$TMP/native.out" 2>&1 || fail "native run failed: $(cat "$TMP/native.out")"
for trap in auto sigsegv; do
  "$VMRUN" --trap "$trap" --stats --stats-fd 3 -- "$TMP/brk" >"$TMP/vmrt.out" 2>&1 3>"$TMP/stats" ||
    fail "vmrun --trap $trap failed: $(cat "$TMP/vmrt.out")"
  diff -u "$TMP/native.out" "$TMP/vmrt.out" >&2 || fail "--trap $trap: output differs from native (above)"
  expect_vmstat "$TMP/stats" "data segment grows (brk)" -ge 6 "--trap $trap: segment grows served by vmrt"
  expect_vmstat "$TMP/stats" "data segment shrinks (brk)" -ge 3 "--trap $trap: segment shrinks served by vmrt"
  expect_vmstat "$TMP/stats" "data segment changes refused (brk)" -ge 2 "--trap $trap: refusals counted"
done
note "ok: $(wc -l <"$TMP/native.out") results identical to native under both traps; segment served by vmrt"

# Paging: 48 MiB of the segment written through 16M of physical memory.
"$TMP/brk" 48 >"$TMP/native48.out" 2>&1 || fail "native run (48 MiB) failed: $(cat "$TMP/native48.out")"
"$VMRUN" --physmem 16M --stats --stats-fd 3 -- "$TMP/brk" 48 >"$TMP/vmrt48.out" 2>&1 3>"$TMP/stats48" ||
  fail "vmrun --physmem 16M failed: $(cat "$TMP/vmrt48.out")"
diff -u "$TMP/native48.out" "$TMP/vmrt48.out" >&2 || fail "--physmem 16M: output differs from native (above)"
out=$(vmstat_value "$TMP/stats48" "swap pager pages paged out")
[ "${out:-0}" -gt 1000 ] || fail "--physmem 16M: ${out:-no} pages paged out (the segment was not pageable?)"
note "ok: 48 MiB segment through --physmem 16M identical to native; $out pages paged out"
