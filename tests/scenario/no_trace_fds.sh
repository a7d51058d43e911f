#!/usr/bin/env bash
# vmrt leaves no descriptor a program can see (issue 14).  A Python program lists
# /proc/self/fd (and fstat-probes every number, like CPython's fd_status.py) at start,
# after heavy malloc, in a fork child and after it, after exec, and with RLIMIT_NOFILE
# lowered below the default; it also reruns the two test_subprocess cases that failed
# under vmrun (test_pass_fds_redirected, test_close_fds_when_max_fd_is_lowered).  The
# output must be identical to the native run, under both trap backends and under a high
# descriptor limit (the physmem memfd used to sit at the top of the table).
source "$(dirname "$0")/lib/scenario_lib.bash" "$1"
need python3
cp "$(dirname "$0")/src/fd_view.py" "$TMP/fd_view.py"
write_workflow <<SH
python3 "$TMP/fd_view.py"
(ulimit -n 20000 2>/dev/null || ulimit -n 4096; python3 "$TMP/fd_view.py" | sed 's/^/high limit: /')
SH
compare_both_traps
grep -q 'pass_fds_redirected extra: \[\]' "$TMP/vmrt.out" || fail "test_pass_fds_redirected: $(grep pass_fds "$TMP/vmrt.out")"
grep -q 'close_fds_when_max_fd_is_lowered left open: \[\] lines 2' "$TMP/vmrt.out" ||
  fail "test_close_fds_when_max_fd_is_lowered: $(grep close_fds "$TMP/vmrt.out")"
