#!/usr/bin/env bash
# With VMRT_MMAP=vmrt a program's own anonymous mappings are vmrt's: the same program natively and under
# vmrun prints the same results (values, errno, contents, residency), and vmrun's report
# shows that vmrt served the calls (not the host: the check cannot pass by falling back).
# Covered: private and shared anonymous mmap (shared stays shared with a fork child,
# private is copy-on-write), MAP_FIXED over part of a mapping, MAP_FIXED_NOREPLACE (EEXIST),
# mprotect (and ENOMEM over a hole, the pieces before it changed), mremap grow in place /
# moved / shrunk / MREMAP_FIXED / MREMAP_DONTUNMAP, madvise DONTNEED (zeros) and FREE,
# invalid advice (EINVAL), mincore (and ENOMEM after munmap), msync flags, mlock/munlock,
# munmap of unaligned addresses (EINVAL), length 0 (EINVAL).
source "$(dirname "$0")/lib/scenario_lib.bash" "$1"
need cc

cat >"$TMP/mm.c" <<'C'
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>
#define PG 4096
static void say(const char* what, long r) { printf("%-34s %ld %s\n", what, r, r == -1 ? strerrorname_np(errno) : ""); errno = 0; }
static void sayp(const char* what, void* p) { printf("%-34s %s %s\n", what, p == MAP_FAILED ? "MAP_FAILED" : "ok", p == MAP_FAILED ? strerrorname_np(errno) : ""); errno = 0; }
static int resident(char* p, size_t n) { unsigned char v[256]; if (mincore(p, n * PG, v)) return -1; int r = 0; for (size_t i = 0; i < n; ++i) r += v[i] & 1; return r; }
int main(void) {
  void* volatile boot = malloc(16);  /* vmrt boots at the first malloc; mmaps before it are the host's */
  free(boot);
  /* A guard: 64 pages reserved, parts unmapped, so holes are ours whatever the layout. */
  char* g = mmap(0, 64 * PG, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  sayp("mmap guard", g);
  char* p = mmap(g + 8 * PG, 16 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
  sayp("mmap fixed private", p);
  say("munmap guard gap", munmap(g + 24 * PG, 8 * PG));  /* [g+32, g+64) stays: a blocker */
  memset(p, 1, 16 * PG);
  say("resident after touch", resident(p, 16));
  sayp("fixed_noreplace over p", mmap(p, PG, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0));
  sayp("fixed over p+4", mmap(p + 4 * PG, 2 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0));
  say("p[4*PG] zero after fixed", p[4 * PG]);
  say("p[6*PG] kept", p[6 * PG]);
  say("mprotect p+2 ro", mprotect(p + 2 * PG, PG, PROT_READ));
  say("mprotect over hole", mprotect(p + 15 * PG, 2 * PG, PROT_READ));
  say("mprotect p all rw", mprotect(p, 16 * PG, PROT_READ | PROT_WRITE));
  say("mprotect unaligned", mprotect(p + 1, PG, PROT_READ));
  say("mprotect len 0", mprotect(p, 0, PROT_READ));
  say("madvise dontneed p+8", madvise(p + 8 * PG, 2 * PG, MADV_DONTNEED));
  say("p[8*PG] zero", p[8 * PG]);
  say("madvise free p+10", madvise(p + 10 * PG, 2 * PG, MADV_FREE));
  say("p[10*PG] after free (kept until reclaimed)", p[10 * PG]);
  p[11 * PG] = 7;
  say("p[11*PG] written after free", p[11 * PG]);
  say("madvise bad advice", madvise(p, PG, 12345));
  say("madvise over hole", madvise(p + 15 * PG, 2 * PG, MADV_NORMAL));
  say("madvise unaligned", madvise(p + 1, PG, MADV_NORMAL));
  say("msync sync", msync(p, PG, MS_SYNC));
  say("msync both flags", msync(p, PG, MS_SYNC | MS_ASYNC));
  say("msync over hole", msync(p + 15 * PG, 2 * PG, MS_ASYNC));
  say("mlock", mlock(p, PG));
  say("munlock", munlock(p, PG));
  say("mlock over hole", mlock(p + 15 * PG, 2 * PG));
  /* mremap: shrink, grow in place (the tail is ours), move, fixed, dontunmap */
  char* q = mremap(p, 16 * PG, 12 * PG, 0);
  say("mremap shrink same addr", q == p);
  say("mincore freed tail", resident(p + 12 * PG, 1));
  q = mremap(p, 12 * PG, 16 * PG, 0);
  say("mremap grow in place same addr", q == p);
  say("p[15*PG] zero", p[15 * PG]);
  say("p[0] kept", p[0]);
  char* r = mremap(p, 16 * PG, 64 * PG, 0);
  sayp("mremap grow no room no move", r);
  r = mremap(p, 16 * PG, 64 * PG, MREMAP_MAYMOVE);
  sayp("mremap grow maymove", r);
  say("moved contents kept", r[0] + r[6 * PG]);
  say("old place gone (mincore)", mincore(p, PG, (unsigned char[1]){0}));
  char* f = mmap(0, 8 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  sayp("mmap for fixed target", f);
  char* s = mremap(r, 4 * PG, 4 * PG, MREMAP_MAYMOVE | MREMAP_FIXED, f + 2 * PG);
  say("mremap fixed lands there", s == f + 2 * PG);
  say("fixed contents", s[0]);
  char* d = mremap(r + 4 * PG, 4 * PG, 4 * PG, MREMAP_MAYMOVE | MREMAP_DONTUNMAP);
  sayp("mremap dontunmap", d);
  say("dontunmap old reads zero", r[4 * PG]);
  say("dontunmap new has data", d[2 * PG]);
  sayp("mremap bad flags", mremap(f, PG, PG, 0x40));
  sayp("mremap fixed without maymove", mremap(f, PG, PG, MREMAP_FIXED, g));
  sayp("mremap unaligned", mremap(f + 1, PG, 2 * PG, MREMAP_MAYMOVE));
  /* shared anonymous memory is shared with a fork child; private is copy-on-write */
  char* sh = mmap(0, 4 * PG, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  sayp("mmap shared", sh);
  sh[0] = 1; f[0] = 1;
  pid_t pid = fork();
  if (pid == 0) { sh[0] = 2; f[0] = 2; _exit(0); }
  waitpid(pid, 0, 0);
  say("shared sees child write", sh[0]);
  say("private keeps own", f[0]);
  char* sh2 = mremap(sh, 4 * PG, 32 * PG, MREMAP_MAYMOVE);
  sayp("mremap shared grow", sh2);
  say("shared contents moved", sh2[0]);
  pid = fork();
  if (pid == 0) { sh2[3 * PG] = 7; _exit(0); }  /* (past the first 4 pages: SIGBUS, the object did not grow) */
  waitpid(pid, 0, 0);
  say("moved shared still shared", sh2[3 * PG]);
  say("munmap unaligned", munmap(f + 1, PG));
  say("munmap len 0", munmap(f, 0));
  say("munmap f", munmap(f, 8 * PG));
  say("munmap again (no mapping)", munmap(f, 8 * PG));
  say("mincore unmapped", mincore(f, PG, (unsigned char[1]){0}));
  say("mmap len 0", (long)mmap(0, 0, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  say("mmap no type", (long)mmap(0, PG, PROT_READ, MAP_ANONYMOUS, -1, 0));
  return 0;
}
C
cc -O1 -o "$TMP/mm" "$TMP/mm.c"
"$TMP/mm" >"$TMP/native.out" 2>&1 || fail "native run failed: $(cat "$TMP/native.out")"
for trap in auto sigsegv; do
  VMRT_MMAP=vmrt "$VMRUN" --trap "$trap" --stats --stats-fd 3 -- "$TMP/mm" >"$TMP/vmrt.out" 2>&1 3>"$TMP/stats" ||
    fail "vmrun --trap $trap failed: $(cat "$TMP/vmrt.out")"
  diff -u "$TMP/native.out" "$TMP/vmrt.out" >&2 || fail "--trap $trap: output differs from native (above)"
  served=$(vmstat_value "$TMP/stats" "program mmaps served")
  moves=$(vmstat_value "$TMP/stats" "mremap moves")
  [ "${served:-0}" -ge 5 ] || fail "--trap $trap: vmrt served ${served:-no} mmaps (the calls went to the host?)"
  # The area's top-down placement finds room for every plain mmap(NULL) (a layout with the
  # heap above the area once sent them all to the host, which answers the same).
  expect_vmstat "$TMP/stats" "program mmaps passed to the host (no room)" -eq 0 "--trap $trap"
  [ "${moves:-0}" -ge 3 ] || fail "--trap $trap: ${moves:-no} mremap moves counted"
done
# Pageable program mmaps (paging): the same answers.  MADV_FREE there is vmrt's lazy free:
# the data stays until the pageout daemon takes a page (was served as DONTNEED: zeros).
for trap in userfaultfd sigsegv; do
  VMRT_MMAP=vmrt "$VMRUN" --physmem 64M --trap "$trap" -- "$TMP/mm" >"$TMP/vmrt.out" 2>&1 ||
    fail "vmrun --physmem 64M --trap $trap failed: $(cat "$TMP/vmrt.out")"
  diff -u "$TMP/native.out" "$TMP/vmrt.out" >&2 || fail "--physmem 64M --trap $trap: output differs from native (above)"
done
note "ok: $(wc -l <"$TMP/native.out") results identical to native (also paged); $served mmaps and $moves mremap moves served by vmrt"
