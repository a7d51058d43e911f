#!/usr/bin/env bash
# A process ends when its last thread ends, whatever thread that is: glibc calls exit(0)
# when a thread that returns or calls pthread_exit is the last one.  Under paging vmrt's
# machine threads (userfaultfd handlers, the pageout daemon) are threads of the process too,
# and the program's last thread ended alone: a fork child whose only thread returned from its
# start routine, and a main() that called pthread_exit before its worker, lived on, and their
# waiters waited forever (Python's test_threading under --physmem).  Output, atexit handlers
# and exit status must be the native run's, under both trap backends and without paging.
# (timeout -k: a process left with vmrt's machine threads alone, which block every signal,
# never takes the SIGTERM.)
source "$(dirname "$0")/lib/scenario_lib.bash" "$1"
need cc timeout python3
cc -O2 -pthread -o "$TMP/lte" "$(dirname "$0")/src/last_thread_exit.c" || fail "cannot build last_thread_exit.c"
# The second form: main() leaves while a C11 thread (made by glibc's internal call, which the
# shim's count does not see) still sleeps: the process must wait for it, as natively.  The
# third: a thread ended by pthread_cancel must count as ended (it did not: a hang).
for mode in "" c11 cancel; do
  "$TMP/lte" $mode >"$TMP/native" 2>&1 || fail "the native run ($mode) failed: $(cat "$TMP/native")"
  for opts in "--physmem 64M --trap userfaultfd" "--physmem 64M --trap sigsegv" ""; do
    # shellcheck disable=SC2086
    timeout -k 5 60 "$VMRUN" $opts -- "$TMP/lte" $mode >"$TMP/vmrt" 2>&1 ||
      fail "vmrun $opts ($mode): status $? (124: the process did not end): $(cat "$TMP/vmrt")"
    diff -u "$TMP/native" "$TMP/vmrt" >&2 || fail "vmrun $opts ($mode): differs from the native run"
    note "ok: vmrun $opts ${mode:-pthreads}"
  done
done
# The Python form of it (test_threading's test_main_thread_after_fork_from_nonmain_thread
# shape): a thread forks, the child's thread returns, the parent waits for the child.
cat >"$TMP/fork_thread.py" <<'PY'
import os, sys, threading
def worker():
    pid = os.fork()
    if pid == 0:
        print("child", flush=True)
        return
    print("parent saw", os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]), flush=True)
t = threading.Thread(target=worker)
t.start()
t.join()
PY
want=$(python3 "$TMP/fork_thread.py")
out=$(timeout -k 5 60 "$VMRUN" --physmem 64M -- python3 "$TMP/fork_thread.py") ||
  fail "python fork from a thread under --physmem: status $? (124: hung) output '$out'"
[ "$out" = "$want" ] || fail "python fork from a thread under --physmem: got '$out', native '$want'"
note "ok: python fork from a thread under --physmem"
