#!/usr/bin/env bash
# Programs that handle SIGSEGV/SIGBUS themselves (JVMs, Python's faulthandler,
# doctest) keep working under vmrt: a program's own handler catches its own
# NULL dereference (siglongjmp) and malloc keeps working afterwards; sigaction()
# and signal() report back exactly what the program installed; an unhandled fault
# still kills with SIGSEGV; `python3 -X faulthandler` runs a threaded workload
# identically and still reports a real crash.  Also: vmrt starts no thread in a
# program that only mallocs (/proc/self/task has one entry), both trap backends.
source "$(dirname "$0")/lib/scenario_lib.bash" "$1"
need cc python3 ls

cat >"$TMP/segv.c" <<'C'
#define _GNU_SOURCE
#include <dirent.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
static sigjmp_buf env;
static volatile sig_atomic_t caught;
static void* volatile fault_addr;
static void on_segv(int sig, siginfo_t* si, void* uc) {
  (void)sig; (void)uc;
  caught++;
  fault_addr = si->si_addr;
  siglongjmp(env, 1);
}
static void on_segv_plain(int sig) { (void)sig; caught++; siglongjmp(env, 1); }
static int fail(const char* what) { printf("FAIL: %s\n", what); return 1; }
static int threads(void) {
  DIR* d = opendir("/proc/self/task");
  int n = 0;
  for (struct dirent* e; (e = readdir(d)) != NULL;) n += e->d_name[0] != '.';
  closedir(d);
  return n;
}
// Allocate, fill and verify a mix of sizes (small, page, large blocks).
static int heap_works(int round) {
  enum { N = 2000 };
  static char* p[N];
  for (int i = 0; i < N; ++i) {
    size_t n = (size_t)(i % 7 == 0 ? 70000 : i % 3 == 0 ? 4096 : 24 + i % 300);
    p[i] = malloc(n);
    if (p[i] == NULL) return 0;
    memset(p[i], (i + round) & 0xff, n);
  }
  int ok = 1;
  for (int i = 0; i < N; ++i) {
    ok &= (unsigned char)p[i][0] == ((i + round) & 0xff);
    free(p[i]);
  }
  return ok;
}
int main(void) {
  struct sigaction sa, old, now;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = on_segv;
  sa.sa_flags = SA_SIGINFO | SA_NODEFER;
  sigemptyset(&sa.sa_mask);
  if (!heap_works(0)) return fail("heap before the handler");
  if (sigaction(SIGSEGV, &sa, &old) != 0) return fail("sigaction");
  if (old.sa_handler != SIG_DFL) return fail("the old SIGSEGV action is not SIG_DFL");
  if (sigaction(SIGSEGV, NULL, &now) != 0 || now.sa_sigaction != on_segv || !(now.sa_flags & SA_SIGINFO))
    return fail("sigaction(SIGSEGV, NULL, &now) does not report the program's handler");
  for (int round = 1; round <= 3; ++round) {
    if (sigsetjmp(env, 1) == 0) {
      *(volatile int*)0 = round;  // a real NULL dereference
      return fail("the NULL store did not fault");
    }
    if (caught != round || fault_addr != NULL) return fail("the program's handler did not see the fault");
    if (!heap_works(round)) return fail("malloc after the caught fault");
  }
  // signal(): BSD semantics; returns the previous handler (ours, as a plain handler).
  void (*prev)(int) = signal(SIGSEGV, on_segv_plain);
  if (prev == SIG_ERR || (void*)prev != (void*)on_segv) return fail("signal() did not return the previous handler");
  if (sigsetjmp(env, 1) == 0) { *(volatile char*)16 = 1; return fail("no fault"); }
  if (caught != 4) return fail("the signal() handler did not run");
  if (signal(SIGSEGV, SIG_DFL) != on_segv_plain) return fail("signal(SIG_DFL) did not return the signal() handler");
  if (signal(0, SIG_DFL) != SIG_ERR || signal(SIGKILL, on_segv_plain) != SIG_ERR) return fail("signal() accepted a bad signal");
  if (signal(SIGBUS, SIG_IGN) != SIG_DFL || signal(SIGBUS, SIG_DFL) != SIG_IGN) return fail("SIGBUS round trip");
  // Other signals are untouched: SIGUSR1 through signal() and raise().
  if (signal(SIGUSR1, on_segv_plain) != SIG_DFL) return fail("SIGUSR1 install");
  if (sigsetjmp(env, 1) == 0) { raise(SIGUSR1); return fail("SIGUSR1 handler did not run"); }
  if (!heap_works(9)) return fail("malloc at the end");
  printf("ok caught=%d threads=%d\n", (int)caught, threads());
  fflush(stdout);
  if (getenv("CRASH") != NULL) *(volatile int*)8 = 1;  // SIG_DFL again: must die by SIGSEGV
  return 0;
}
C
cc -O1 -o "$TMP/segv" "$TMP/segv.c"

for trap in auto sigsegv userfaultfd; do
  out=$("$VMRUN" --trap $trap -- "$TMP/segv" 2>&1) || fail "--trap $trap: the program failed: $out"
  [ "$out" = "ok caught=5 threads=1" ] || fail "--trap $trap: unexpected output: $out"
  st=0; ( CRASH=1 "$VMRUN" --trap $trap -- "$TMP/segv" >/dev/null 2>&1; exit $? ) 2>/dev/null || st=$?
  [ $st -eq 139 ] || fail "--trap $trap: an unhandled NULL dereference ended with status $st, not 139 (SIGSEGV)"
done
[ "$("$TMP/segv")" = "ok caught=5 threads=1" ] || fail "the native run differs"

# No vmrt thread in a program that only mallocs.
for trap in auto userfaultfd sigsegv; do
  n=$("$VMRUN" --trap $trap -- ls /proc/self/task | wc -l)
  [ "$n" = 1 ] || fail "--trap $trap: ls /proc/self/task under vmrun shows $n threads (want 1)"
done

# A single-threaded process may enter a new user namespace (fails with EINVAL when
# the process is multithreaded).
if command -v unshare >/dev/null && unshare -U true 2>/dev/null; then
  "$VMRUN" -- unshare -U true || fail "unshare -U under vmrun failed (a vmrt thread in the process?)"
fi

# Python's faulthandler installs SIGSEGV/SIGBUS/SIGFPE/SIGABRT/SIGILL handlers at start.
cat >"$TMP/work.py" <<'PY'
import faulthandler, json, re, subprocess, sys, threading
assert faulthandler.is_enabled()
def job(k, out):
    docs = [{"k": k, "i": i, "s": "x" * (i % 17)} for i in range(20000)]
    out[k] = (len(json.dumps(docs)), len(re.findall(r"x{5,}", json.dumps(docs))))
out = {}
ts = [threading.Thread(target=job, args=(k, out)) for k in range(4)]
for t in ts: t.start()
for t in ts: t.join()
print(sorted(out.items()))
print(subprocess.run([sys.executable, "-X", "faulthandler", "-c", "print(sum(range(10**6)))"],
                     capture_output=True, text=True, check=True).stdout.strip())
PY
write_workflow <<SH
python3 -X faulthandler "$TMP/work.py"
SH
compare_both_traps
# A real crash is still reported by faulthandler and kills with SIGSEGV.
for trap in auto sigsegv; do
  st=0
  ( "$VMRUN" --trap $trap -- python3 -X faulthandler -c 'import ctypes; ctypes.string_at(0)' >/dev/null 2>"$TMP/fh.err"; exit $? ) 2>/dev/null || st=$?
  [ $st -eq 139 ] || fail "--trap $trap: python crash ended with status $st (want 139)"
  grep -q "Fatal Python error: Segmentation fault" "$TMP/fh.err" || fail "--trap $trap: faulthandler did not report: $(head -3 "$TMP/fh.err")"
done
note "ok: program handlers catch their faults, sigaction/signal consistent, one thread, faulthandler"
