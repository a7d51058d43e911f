#!/usr/bin/env bash
# A thread that sets a signal handler in a loop while another thread forks: every child
# sets handlers and must exit 0.  A fork taken while the looping thread held the shim's
# signal-table lock (or had its seqcount odd) left the child spinning in its first
# sigaction (runtime/rt_signal.cpp: rt_signal_fork_child resets both).
# And a handler set again as recorded costs no getpid (the shim's test for a vfork child,
# which only a change needs): src/sigaction_again.c denies getpid with seccomp after the
# first install; the same handler set again must leave the kernel with the shim's trampoline
# (it got the program's function, the vfork child's way, before), a changed one goes the
# vfork child's way, and both handlers run.
source "$(dirname "$0")/lib/scenario_lib.bash" "$1"
need cc
cc -O2 -pthread -o "$TMP/fs" "$(dirname "$0")/src/fork_sigaction.c"
got=$(watched 300 env LD_PRELOAD="$BUILD/lib/libvmrt_malloc.so" "$TMP/fs" 2>"$TMP/err") ||
  fail "status $?: $got $(head -3 "$TMP/err")"
[ "$got" = "ok 200" ] || fail "got '$got'"
note "ok: 200 forks while another thread sets handlers"
cc -O2 -o "$TMP/sa" "$(dirname "$0")/src/sigaction_again.c"
got=$(watched 60 env LD_PRELOAD="$BUILD/lib/libvmrt_malloc.so" "$TMP/sa" 2>"$TMP/err") ||
  fail "sigaction_again: status $?: $got $(head -3 "$TMP/err")"
[ "$got" = "same: trampoline kept; changed: direct; ran 2" ] || fail "sigaction_again: got '$got'"
note "ok: the same handler set again takes no getpid"
echo "fork sigaction: all passed"
