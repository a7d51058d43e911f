#!/usr/bin/env bash
# Fault injection, the sweep and the grammar's edges (README "Fault injection"):
#  - `vmrun --fail-sweep` over a C program with one unchecked malloc among checked
#    ones (malloc, calloc, realloc, strdup, stdio's buffer) names that call site
#    (file:line) as the only crash, with the crash site on the next line;
#  - a malformed spec is refused by vmrun before the program runs (exit 2, a caret
#    under the bad token) and by the shim at boot when set directly (one message,
#    the program runs without injection);
#  - an injected failure reaches the program as NULL + ENOMEM and is logged with
#    its call number, size and a backtrace naming the program; the summary counts it.
source "$(dirname "$0")/lib/scenario_lib.bash" "$1"
need cc addr2line

cat >"$TMP/unchecked.c" <<'C'
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void die(const char* what) {
  fprintf(stderr, "unchecked: out of memory (%s, errno %d)\n", what, errno);
  exit(3);
}

int main(void) {
  char* a = malloc(64);
  if (a == NULL) die("a");
  int* b = calloc(16, sizeof(int));
  if (b == NULL) die("b");
  char* c = strdup("hello");
  if (c == NULL) die("c");
  char* d = realloc(a, 4096);
  if (d == NULL) die("d");
  char* e = malloc(256); /* UNCHECKED */
  memset(e, 'x', 256);   /* CRASH */
  char* f = malloc(1000);
  if (f == NULL) die("f");
  printf("%s %d %c %c\n", c, b[3], e[10], d[0] = 'y');
  free(b); free(c); free(d); free(e); free(f);
  return 0;
}
C
cc -g -O0 -o "$TMP/unchecked" "$TMP/unchecked.c" || fail "cannot compile unchecked.c"
unchecked_line=$(grep -n 'UNCHECKED' "$TMP/unchecked.c" | cut -d: -f1)
crash_line=$(grep -n '/\* CRASH' "$TMP/unchecked.c" | cut -d: -f1)

# --- the sweep ---
set +e
"$VMRUN" --fail-sweep -j 2 -- "$TMP/unchecked" >"$TMP/sweep.out" 2>"$TMP/sweep.err"
rc=$?
set -e
cat "$TMP/sweep.out" >&2
[ "$rc" = 1 ] || fail "sweep exit status $rc, expected 1 (a crash found)"
crashes=$(grep -cE ' crash (SIG|\()' "$TMP/sweep.out" || true)
[ "$crashes" = 1 ] || fail "expected exactly one crashing call site, got $crashes"
# The crash site: the program's line, "in" the innermost frame (memset, in libc).
grep -E " crash SIGSEGV +unchecked\.c:$unchecked_line \(main\) +unchecked\.c:$crash_line \(main\)( in .*memset.*)?\$" "$TMP/sweep.out" >/dev/null ||
  fail "the crash row does not name unchecked.c:$unchecked_line (failed call) and unchecked.c:$crash_line (crash)"
# Every other call site of main was failed and exited cleanly with the program's message.
for l in $(grep -n 'if (. == NULL) die' "$TMP/unchecked.c" | cut -d: -f1); do
  grep -E "error exit 3 +unchecked\.c:$((l - 1)) \(main\)" "$TMP/sweep.out" >/dev/null ||
    fail "call site unchecked.c:$((l - 1)) missing or not a clean error exit"
done
grep -q 'fail-sweep: 7 call sites: 1 crashed, 0 hung, 5 error exits, 1 exited 0' "$TMP/sweep.out" ||
  fail "unexpected sweep summary"
grep -q 'runs done' "$TMP/sweep.err" || fail "no progress on stderr"

# --- the table follows the source: line 9 before line 12 (not "12" < "9" as text) ---
cat >"$TMP/order.c" <<'C'
#include <stdio.h>
#include <stdlib.h>
static void* need(void* p) { if (p == NULL) { fputs("order: out of memory\n", stderr); exit(3); } return p; }
int main(void) {
  char* x = need(malloc(10)); /* L5 */
  char* y = need(malloc(20)); /* L6 */
  char* z = need(malloc(30)); /* L7 */
  char* w = need(malloc(40)); /* L8 */
  char* v = need(malloc(50)); /* L9 */
  char* u = need(malloc(60)); /* L10 */
  char* t = need(malloc(70)); /* L11 */
  char* s = need(malloc(80)); /* L12 */
  free(x); free(y); free(z); free(w); free(v); free(u); free(t); free(s);
  return 0;
}
C
cc -g -O0 -o "$TMP/order" "$TMP/order.c" || fail "cannot compile order.c"
"$VMRUN" --fail-sweep -j 2 -- "$TMP/order" >"$TMP/order.out" 2>/dev/null || fail "sweep of order.c found a crash"
lines=$(grep -oE 'order\.c:[0-9]+ \(main\)' "$TMP/order.out" | sed -E 's/order\.c:([0-9]+).*/\1/' | tr '\n' ' ')
[ "$lines" = "5 6 7 8 9 10 11 12 " ] || fail "sweep table not sorted by call site (line order): '$lines'"

# --- a wild jump (a function pointer from the failed allocation): the crash record survives
# the stack walk faulting (the faulting instruction is recorded first, from the signal
# context); before, the crash site was '?' ---
cat >"$TMP/wild.c" <<'C'
#include <stdio.h>
#include <stdlib.h>
int main(void) {
  void* o = malloc(16); /* UNCHECKED */
  void (*wild)(void) = (void (*)(void))(o == NULL ? (void*)0xffff : (void*)0);
  if (wild) wild();     /* CRASH */
  free(o);
  puts("ok");
  return 0;
}
C
cc -g -O0 -o "$TMP/wild" "$TMP/wild.c" || fail "cannot compile wild.c"
"$VMRUN" --fail-sweep -j 2 -- "$TMP/wild" >"$TMP/wild.out" 2>/dev/null && fail "wild jump: no crash found"
grep -Eq ' crash SIGSEGV +wild\.c:4 \(main\) +wild\.c:6 \(main\) in \?\+0x10000$' "$TMP/wild.out" ||
  fail "wild jump: the crash row does not name wild.c:6: $(cat "$TMP/wild.out")"

# --- a program with its own crash handler printing glibc's backtrace (as zstd does): the
# crash site comes from that printout (before: '?') ---
cat >"$TMP/bt.c" <<'C'
#include <execinfo.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
static void on_segv(int sig) {
  void* f[32];
  int n = backtrace(f, 32);
  write(2, "Caught SIGSEGV, printing stack:\n", 32);
  backtrace_symbols_fd(f, n, 2);
  signal(sig, SIG_DFL);
  raise(sig);
}
static __attribute__((noinline)) void fill(char* p) { memset(p, 'x', 64); } /* CRASH */
int main(void) {
  signal(SIGSEGV, on_segv);
  char* p = malloc(64); /* UNCHECKED */
  fill(p);
  free(p);
  return 0;
}
C
cc -g -O0 -rdynamic -o "$TMP/bt" "$TMP/bt.c" || fail "cannot compile bt.c"
"$VMRUN" --fail-sweep -j 2 -- "$TMP/bt" >"$TMP/bt.out" 2>/dev/null && fail "own handler: no crash found"
grep -Eq ' crash SIGSEGV +bt\.c:17 \(main\) +bt\.c:(6|8|14) \((on_segv|fill)\)' "$TMP/bt.out" ||
  fail "own crash handler: the crash row does not come from the printed backtrace: $(cat "$TMP/bt.out")"

# --- --site-depth: calls through a wrapper (strdup) from two places are one call site at
# depth 1 (the return address into strdup), two at depth 2: the unchecked second is found ---
cat >"$TMP/wrap.c" <<'C'
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
int main(void) {
  char* a = strdup("first");
  if (a == NULL) { fputs("wrap: out of memory\n", stderr); return 3; }
  char* b = strdup("second"); /* UNCHECKED */
  printf("%s %zu\n", a, strlen(b));
  return 0;
}
C
cc -g -O0 -o "$TMP/wrap" "$TMP/wrap.c" || fail "cannot compile wrap.c"
"$VMRUN" --fail-sweep -j 2 -- "$TMP/wrap" >"$TMP/wrap1.out" 2>/dev/null || fail "depth 1: a crash found (the strdup calls should be one site)"
grep -q 'wrap\.c:7 (main)' "$TMP/wrap1.out" && fail "depth 1: the second strdup was a site of its own: $(cat "$TMP/wrap1.out")"
"$VMRUN" --fail-sweep -j 2 --site-depth 2 -- "$TMP/wrap" >"$TMP/wrap2.out" 2>/dev/null && fail "depth 2: no crash found"
grep -Eq ' crash SIGSEGV +wrap\.c:7 \(main\) via strdup' "$TMP/wrap2.out" ||
  fail "depth 2: the unchecked strdup at wrap.c:7 is not the crash: $(cat "$TMP/wrap2.out")"

# --- sanitizer builds: the crash site from the sanitizer's report ---
cat >"$TMP/san.c" <<'C'
#include <stdio.h>
#include <stdlib.h>
struct s { int a, b; };
int main(void) {
  struct s* p = malloc(sizeof *p); /* UNCHECKED */
  p->b = 3;                        /* CRASH */
  char* q = malloc(10);
  if (!q) return 3;
  printf("%d\n", p->b);
  free(q);
  free(p);
  return 0;
}
C
if cc -g -O0 -fsanitize=undefined -fno-sanitize-recover=all -o "$TMP/san_ubsan" "$TMP/san.c" 2>/dev/null; then
  # UBSan stops at the null member access (exit 1, no signal): the site comes from its report.
  "$VMRUN" --fail-sweep -j 2 -- "$TMP/san_ubsan" >"$TMP/ubsan.out" 2>/dev/null && fail "UBSan sweep: no crash found"
  grep -Eq ' crash \(sanitizer report\) +san\.c:5 \(main\) +san\.c:6 \(runtime error\)$' "$TMP/ubsan.out" ||
    fail "UBSan build: the crash row does not name san.c:5 and san.c:6: $(cat "$TMP/ubsan.out")"
  note "ok: UBSan build: $(grep 'sanitizer report' "$TMP/ubsan.out" | tr -s ' ')"
else
  note "SKIP (UBSan part): cc -fsanitize=undefined does not link here (libubsan missing)"
fi
if cc -g -O0 -fsanitize=address -o "$TMP/san_asan" "$TMP/san.c" 2>/dev/null; then
  # ASan brings its own allocator and refuses to run behind the shim: said, exit 1.
  st=0
  "$VMRUN" --fail-sweep -j 2 -- "$TMP/san_asan" >/dev/null 2>"$TMP/asan.err" || st=$?
  [ $st = 1 ] || fail "ASan build: sweep exit $st, want 1"
  grep -q 'the census run failed (exit 1) before any malloc-family call reached vmrt: .*ASan runtime does not come first' "$TMP/asan.err" &&
    grep -q 'AddressSanitizer has its own allocator' "$TMP/asan.err" || fail "ASan build: no message saying why: $(cat "$TMP/asan.err")"
else
  note "SKIP (ASan part): cc -fsanitize=address does not link here (libasan missing)"
fi

# --- one injected failure, logged ---
set +e
"$VMRUN" --fail 'malloc:size=1000' --fail-log "$TMP/one.log" "$TMP/unchecked" >/dev/null 2>"$TMP/one.err"
rc=$?
set -e
[ "$rc" = 3 ] || fail "malloc:size=1000: exit $rc, expected the program's own 3"
grep -q 'unchecked: out of memory (f, errno 12)' "$TMP/one.err" || fail "no NULL + ENOMEM seen by the program"
grep -q '^vmrt-fail: inject malloc #1 size=1000 clause=1 tid=[0-9]* pid=[0-9]*$' "$TMP/one.log" || fail "no inject record"
grep -q "^vmrt-fail:   at $TMP/unchecked 0x" "$TMP/one.log" || fail "the backtrace does not name the program"
grep -Eq '^vmrt-fail:   malloc +[0-9]+ +1$' "$TMP/one.log" || fail "summary does not count one injected malloc failure"
# Symbolised after the fact: the failed call is the malloc(1000) line.
"$VMRUN" --fail-symbolize "$TMP/one.log" >"$TMP/one.sym"
grep -q "^vmrt-fail:   at $TMP/unchecked 0x[0-9a-f]*  unchecked\.c:$((unchecked_line + 2)) (main)\$" "$TMP/one.sym" ||
  fail "--fail-symbolize does not name unchecked.c:$((unchecked_line + 2)): $(cat "$TMP/one.sym")"

# --- malformed specs ---
set +e
"$VMRUN" --fail 'malloc:nth=2;frame:evry=3' "$TMP/unchecked" >"$TMP/bad.out" 2>"$TMP/bad.err"
rc=$?
set -e
[ "$rc" = 2 ] || fail "a malformed --fail spec: exit $rc, expected 2"
[ ! -s "$TMP/bad.out" ] || fail "the program ran despite a malformed spec"
cat >"$TMP/bad.expected" <<'E'
vmrun: --fail: unknown trigger term (prob=, seed=, every=, nth=, after=, bytes=, times=, size=, thread=, caller=, object=, print, sleep=)
  malloc:nth=2;frame:evry=3
                     ^^^^
E
diff "$TMP/bad.expected" "$TMP/bad.err" >&2 || fail "vmrun's message for a malformed spec"
set +e
VMRT_FAIL='kmem[nope]' "$VMRUN" "$TMP/unchecked" >/dev/null 2>"$TMP/bad2.err"
rc=$?
set -e
[ "$rc" = 2 ] && grep -q 'vmrun: VMRT_FAIL: unknown kmem malloc type' "$TMP/bad2.err" || fail "VMRT_FAIL not validated by vmrun"
# Sweep options are checked too.
set +e
"$VMRUN" --max 3 "$TMP/unchecked" >/dev/null 2>"$TMP/bad4.err"; rc1=$?
"$VMRUN" --fail-sweep -j 0 "$TMP/unchecked" >/dev/null 2>"$TMP/bad5.err"; rc2=$?
"$VMRUN" --fail-sweep --fail malloc "$TMP/unchecked" >/dev/null 2>"$TMP/bad6.err"; rc3=$?
set -e
[ "$rc1$rc2$rc3" = 222 ] || fail "sweep option errors: exits $rc1 $rc2 $rc3, expected 2 2 2"
grep -q 'go with --fail-sweep' "$TMP/bad4.err" && grep -q "^vmrun: -j: not a count >= 1: '0'" "$TMP/bad5.err" &&
  grep -q 'do not combine it with --fail' "$TMP/bad6.err" || fail "sweep option messages"
# Set directly (no vmrun): the shim says so once and runs without injection.
out=$(VMRT_FAIL='malloc:prob=2' LD_PRELOAD="$BUILD/lib/libvmrt_malloc.so" "$TMP/unchecked" 2>"$TMP/bad3.err")
[ "$out" = "hello 0 x y" ] || fail "the program did not run normally after a rejected VMRT_FAIL"
[ "$(grep -c 'VMRT_FAIL rejected, running without fault injection: prob: not a probability' "$TMP/bad3.err")" = 1 ] ||
  fail "the shim's message for a malformed VMRT_FAIL"
note "ok: the sweep names unchecked.c:$unchecked_line only; specs validated"
