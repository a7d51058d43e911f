#!/usr/bin/env bash
# Page faults per host fork and per exec under the shim against native, counted with
# getrusage's ru_minflt (tests/scenario/src/fork_faults.c; counts, never times).  Every page
# vmrt writes after a fork is a copy-on-write fault in the parent (while the child lives)
# and in the child, and every page its boot writes is a fault in every process: on these
# guests each costs tens of microseconds, which made fork- and exec-heavy programs (git, a
# shell's $(...)) the slow rows of bench/real_programs.sh.  The bounds hold what the lazy
# fork (no physmem memfd, copy or wait while no frame is in use), the one page of fork
# state and the lazy physmem at boot bought (before, 2026-12-01: +10 parent, +24 child,
# +82 exec; after: +6, +13, +66); most of what remains is kmem's (its fork-locked
# structures, per-class magazines and size classes, each on its own page).  2026-12-02
# (getrusage, this program, 3 runs): a child that returns through exit() (atexit, the
# libraries' destructors; bash's subshells do) +16 -> +12 (crtbegin's flag on a page of
# .bss of its own, _fini's page of text, a -1,-1 constant read from .rodata, ...), a
# _exiting child +14 -> +13, an exec'd process +70 -> +60 (boot read untouched pages of
# the pmap tables); the bounds below fail the earlier figures (exit +15-16, exec +70).
# 2026-12-02, later (3 runs each): the shell-like child (its own SIGINT handler, SIGCHLD's
# set again, the pipe's ends closed, exit) +6-7 -> +1-3, a plain child +7-8 -> +4-6, an
# exiting child +8-9 -> +4-6: the signal table and its lock moved to the fork data page, a
# handler set again to what is recorded writes nothing, and the code a child runs for
# close/sigaction/gettid (and libc's syscall() it called) joined the fork text.
# The fork handlers now also populate the pages every fork writes (the fork data page, the
# thread's static TLS; in the child the read-only data) in one MADV_POPULATE_WRITE/READ
# call each (runtime/rt_populate.h): faults no more, but getrusage counts each page
# populated as a minor fault, so the bounds are checked with VMRT_POPULATE=0 (the
# pages written, which is what they bound), and the populate itself is checked by its
# counter.
source "$(dirname "$0")/lib/scenario_lib.bash" "$1"
need cc
SHIM=$BUILD/lib/libvmrt_malloc.so
cc -O2 -o "$TMP/ff" "$(dirname "$0")/src/fork_faults.c"
# The mean of four runs, native and under the shim in turn: a child's count moves by up to
# three from run to run with the parent's layout (the exiting child natively 26-29), and a
# bound on one run's difference failed now and then (2026-12-03: 4 runs in 12).
value() { awk -v k="$1" '$1 == k { s += $2; n++ } END { if (n) printf "%.1f\n", s / n }' "$2"; }
for mode in fork exit shell exec; do
  for run in 1 2 3 4; do
    "$TMP/ff" $mode 30 >>"$TMP/native.$mode" || fail "$mode natively: status $?"
    VMRT_POPULATE=0 LD_PRELOAD=$SHIM "$TMP/ff" $mode 30 >>"$TMP/vmrt.$mode" || fail "$mode under the shim: status $?"
  done
done
check() {  # check KEY MODE MAX_EXTRA
  local n v
  n=$(value "$1" "$TMP/native.$2"); v=$(value "$1" "$TMP/vmrt.$2")
  [ -n "$n" ] && [ -n "$v" ] || fail "$1: no figure (native '$n', vmrt '$v')"
  awk -v n="$n" -v v="$v" -v m="$3" 'BEGIN { exit !(v - n <= m) }' ||
    fail "$1: $v page faults under the shim against $n natively (at most $3 more allowed)"
  note "$1: $v page faults under the shim, $n natively (bound: +$3)"
}
# Bounds a fault or two above the means of 10 such checks (2026-12-03): a plain child +7.0
# (6.0-8.2), an exiting one +6.9 (6.3-7.4); single runs had met the old bounds (8, 7) by
# chance.  The exec is vfork'd (from the exec on): +32, as scenario exec_boot bounds it.
check parent fork 5
check child fork 9
# child_exit +7.0..+8.3 -> +5.3..+6.3 (2026-12-03, 3 runs each): the exported malloc family,
# crtbeginS.o's __do_global_dtors_aux and the two exit destructors (the stats report,
# vm_fail's summary) moved into fault-around's first window of the text with the fork text
# (libc_shim/hot_text.ld): a child took three more faults on the shim's text than it does
# now (it has no page-table entries of it: a fork copies none for a file mapping): bound 7.
check child_exit exit 7
check shell_parent shell 4
check shell_child shell 4
check exec exec 36
# The populate: the parent's own count (its children _exit, without a report) over the 60
# forks (warm-up round included): at least the fork data page each.
VMRT_STATS=1 LD_PRELOAD=$SHIM "$TMP/ff" fork 30 2>"$TMP/stats" >/dev/null || fail "fork with stats: status $?"
pop=$(awk '/pages made writable in one call after a host fork/ {print $1}' "$TMP/stats" | tail -1)
[ -n "$pop" ] || fail "no 'pages made writable in one call after a host fork' counter in the stats"
if [ "$pop" -eq 0 ]; then
  note "SKIP populate check: the host refused MADV_POPULATE_WRITE (Linux before 5.14: $(uname -r))"
else
  [ "$pop" -ge 60 ] || fail "only $pop pages populated over 60 forks (at least the fork data page each expected)"
  note "pages populated after 60 forks (parent): $pop"
fi
note "ok: fork and exec page faults within bounds"
