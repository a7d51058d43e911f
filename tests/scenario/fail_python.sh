#!/usr/bin/env bash
# Probabilistic malloc-family failure in python3 (PYTHONHASHSEED fixed, so the
# interpreter's allocations are the same run after run): for three seeds python3 ends
# with its own MemoryError (exit 1, no signal, no vmrt message); the same seed twice
# gives the same log (thread and process ids aside).
source "$(dirname "$0")/lib/scenario_lib.bash" "$1"
need python3
export PYTHONHASHSEED=0
prog='import json; d=[{"k":i,"v":str(i)*10} for i in range(20000)]; print(len(json.dumps(d)))'

expected=$(python3 -c "$prog")
for seed in 1 2 3; do
  for r in 1 2; do
    log="$TMP/py$seed.$r.log"
    set +e
    "$VMRUN" --fail "alloc:after=500,prob=0.01,seed=$seed" --fail-log "$log" python3 -c "$prog" >"$TMP/out" 2>"$TMP/err"
    rc=$?
    set -e
    [ "$rc" = 1 ] || fail "seed $seed run $r: exit $rc, expected python's 1 (>128 is a signal): $(tail -3 "$TMP/err")"
    grep -q '^MemoryError' "$TMP/err" || fail "seed $seed run $r: no MemoryError: $(tail -3 "$TMP/err")"
    ! grep -q '^vmrt' "$TMP/err" || fail "seed $seed run $r: vmrt complained: $(grep '^vmrt' "$TMP/err")"
    grep -q '^vmrt-fail: inject ' "$log" || fail "seed $seed run $r: nothing injected"
    sed -E 's/ (tid|pid)=[0-9]+//g' "$log" >"$log.norm"
  done
  diff "$TMP/py$seed.1.log.norm" "$TMP/py$seed.2.log.norm" >&2 || fail "seed $seed: two runs, two logs"
done
# Without injection the program completes under vmrun.
[ "$("$VMRUN" python3 -c "$prog")" = "$expected" ] || fail "python3 without a spec"
note "ok: python3 ends with MemoryError under three seeds; same seed, same log"
