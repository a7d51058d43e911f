#!/usr/bin/env bash
# A thread that sets a signal handler in a loop while another thread forks: every child
# sets handlers and must exit 0.  A fork taken while the looping thread held the shim's
# signal-table lock (or had its seqcount odd) left the child spinning in its first
# sigaction (runtime/rt_signal.cpp: rt_signal_fork_child resets both).
source "$(dirname "$0")/lib/scenario_lib.bash" "$1"
need cc
cc -O2 -pthread -o "$TMP/fs" "$(dirname "$0")/src/fork_sigaction.c"
got=$(watched 300 env LD_PRELOAD="$BUILD/lib/libvmrt_malloc.so" "$TMP/fs" 2>"$TMP/err") ||
  fail "status $?: $got $(head -3 "$TMP/err")"
[ "$got" = "ok 200" ] || fail "got '$got'"
note "ok: 200 forks while another thread sets handlers"
echo "fork sigaction: all passed"
