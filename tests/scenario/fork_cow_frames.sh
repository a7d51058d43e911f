#!/usr/bin/env bash
# Copy-on-write host forks of a heap in frames (runtime/physmem_cow.h) in the shapes that
# stress the push/pull protocol: six children at once (a parent keeps four records), each
# checking its snapshot after the parent changed half the heap, receiving read(2) data into
# a block it never wrote (a kernel-mode write into a frame still in the parent's memfd);
# the parent's read(2) into a write-protected block right after each fork; a thread of the
# parent writing its own blocks throughout; a grandchild forked before its parent had
# pulled everything; a child that execs; an orphan that reads the whole heap after its
# parent exited.  src/cow_frames.c must print the same natively and under vmrun, at
# --physmem 512M (everything resident) and 24M (the 48 MB heap pages meanwhile: pushes and
# pulls meet pageouts and page-ins), and the counters must show frames shared, pushed and
# pulled with none copied at a fork.  Needs the userfaultfd backend (write protection on
# shmem); with the sigsegv backend forks copy frames and the case is skipped, said.  Last,
# src/cow_race.c: children read their pages while the parent pushes them.
source "$(dirname "$0")/lib/scenario_lib.bash" "$1"
need cc
cc -O2 -pthread -o "$TMP/cf" "$(dirname "$0")/src/cow_frames.c" || fail "cannot build cow_frames.c"
want=$("$TMP/cf") || fail "natively: $want"
[ "$want" = "ok
orphan ok" ] || fail "natively: $want"
backend=$(trap_backend_of --physmem 64M)
if [ "$backend" != userfaultfd ]; then
  note "SKIPPED: the trap backend is '${backend:-unknown}', not userfaultfd: forks copy frames"
  exit 0
fi
for pm in 512M 24M; do
  got=$(watched 600 "$VMRUN" --physmem $pm --stats --stats-fd 3 -- "$TMP/cf" 3>"$TMP/stats.$pm") ||
    fail "--physmem $pm: status $?: $got"
  [ "$got" = "$want" ] || fail "--physmem $pm: got '$got', natively '$want'"
  # The parent's report is the one with forks in it (children exec /bin/true or _exit).
  forks=$(awk '/ copy-on-write host forks$/ && $1 > 0 {print $1; exit}' "$TMP/stats.$pm")
  copied=$(awk '/ fork frames copied$/ && $1 > 0 {print $1; exit}' "$TMP/stats.$pm")
  pushed=$(awk '/ frames pushed to fork children/ && $1 > 0 {print $1; exit}' "$TMP/stats.$pm")
  [ "${forks:-0}" -ge 37 ] || fail "--physmem $pm: ${forks:-no} copy-on-write host forks (36 children, 1 orphan)"
  [ -z "$copied" ] || fail "--physmem $pm: $copied frames copied at a fork"
  [ "${pushed:-0}" -gt 0 ] || fail "--physmem $pm: no frame pushed: the parent's writes did not reach its children first"
  note "ok: --physmem $pm: $forks copy-on-write forks, $pushed frames pushed, none copied at a fork"
done
# A child reading pages while its parent pushes them (src/cow_race.c): a push or pull that
# stored through a mapping let the child see a page half filled (zeros), under the heap of
# frames most rounds, and kmem's free lists "modified after free" in shim_edge_test.
cc -O2 -pthread -o "$TMP/race" "$(dirname "$0")/src/cow_race.c" || fail "cannot build cow_race.c"
got=$("$TMP/race" 2>&1) || fail "cow_race natively: $got"
for how in "env VMRT_HEAP=frames $VMRUN" "$VMRUN --physmem 512M"; do
  for run in 1 2; do
    got=$(watched 300 $how -- "$TMP/race" 2>&1) || fail "cow_race under '$how' (run $run): $got"
    [ "$got" = ok ] || fail "cow_race under '$how' (run $run): $got"
  done
done
note "ok: cow_race: every child saw its snapshot (2 runs each, heap of frames and --physmem 512M)"
