#!/usr/bin/env bash
# A single-threaded process's fork is quiet (runtime/rt_fork.cpp, fork_can_be_quiet): no lock is
# taken, as glibc's own fork takes its malloc and stdio locks only in a process with threads,
# so the parent writes no page of the shim's data after the fork.  Each page it wrote there
# was a copy while the child lived: with the thread's static TLS, the fork data page (the
# lock words, the counter of populated pages) had been populated, i.e. copied, in every
# parent, a shell's command substitutions included.  Counted from the frame numbers in
# /proc/self/pagemap (tests/scenario/src/fork_quiet.c; counts, never times): before the
# change the parent copied 1 page per fork, now 0.  A rewritten byte after the fork is the
# method's own check (1).  A second fork while the first child lives copies nothing before
# it either (the fork counters' page was 1 a fork).
source "$(dirname "$0")/lib/scenario_lib.bash" "$1"
need cc
SHIM=$BUILD/lib/libvmrt_malloc.so
cc -O2 -pthread -o "$TMP/fq" "$(dirname "$0")/src/fork_quiet.c" -ldl
value() { awk '$1 == "copied" {print $2}' "$1"; }
LD_PRELOAD=$SHIM "$TMP/fq" control >"$TMP/control" || fail "control run: status $?"
if grep -q '^skip:' "$TMP/control"; then
  note "SKIP: $(cat "$TMP/control")"
  exit 0
fi
[ "$(value "$TMP/control")" -ge 1 ] ||
  fail "the method does not see a page the parent wrote after the fork: $(cat "$TMP/control")"
# Quiet: three runs, each must copy nothing.
for run in 1 2 3; do
  LD_PRELOAD=$SHIM "$TMP/fq" >"$TMP/quiet.$run" || fail "run $run: status $?"
  n=$(value "$TMP/quiet.$run")
  [ "$n" = 0 ] || {
    FORK_QUIET_LIST=1 LD_PRELOAD=$SHIM "$TMP/fq" >&2 || true
    fail "a single-threaded fork's parent copied $n page(s) of the shim's data after the fork (0 expected)"
  }
done
note "a single-threaded fork's parent copied no page of the shim's data (3 runs; control: $(value "$TMP/control"))"
# Nor before it: the prepare handler of a second fork, while the first fork's child lives,
# writes no page of the shim's data either (the counters of quiet forks are kept in the
# forking thread's TLS until a report: runtime/rt_stats.h, pending_forks).  They were on the
# fork data page: 1 page copied a fork.
for run in 1 2 3; do
  LD_PRELOAD=$SHIM "$TMP/fq" twice >"$TMP/twice.$run" || fail "twice, run $run: status $?"
  n=$(value "$TMP/twice.$run")
  [ "$n" = 0 ] || {
    FORK_QUIET_LIST=1 LD_PRELOAD=$SHIM "$TMP/fq" twice >&2 || true
    fail "a second quiet fork copied $n page(s) of the shim's data while the first child lived (0 expected)"
  }
done
note "a second quiet fork, the first child alive: no page copied (3 runs)"
# Not quiet: a process that has had a second thread takes the locks; the fork must still work
# (the copy count is a race between the two sides, not checked).
LD_PRELOAD=$SHIM "$TMP/fq" threads >"$TMP/threads" || fail "after a thread: status $?"
note "after a thread: $(cat "$TMP/threads") (the locks taken and released)"
