#!/usr/bin/env bash
# Probabilistic malloc-family failure in a real Debian program: sqlite3 builds and
# indexes a 20000-row table while VMRT_FAIL fails about one call in a thousand
# after the first 2000.  sqlite3 must end with its own out-of-memory error (exit 1,
# no signal, no vmrt message), the log must show the injected failures with
# backtraces into libsqlite3, and the same seed twice must give the same log
# (thread and process ids aside).  Then physical frames: failing every frame
# allocation reaches sqlite3 as malloc's NULL (its own error).
source "$(dirname "$0")/lib/scenario_lib.bash" "$1"
need sqlite3

cat >"$TMP/w.sql" <<'SQL'
CREATE TABLE t(a INTEGER PRIMARY KEY, b TEXT, c REAL);
WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM n WHERE x < 20000)
INSERT INTO t SELECT x, printf('row-%08d-%s', x, hex(randomblob(8))), x * 0.5 FROM n;
CREATE INDEX tb ON t(b);
SELECT count(*), sum(c), max(length(b)) FROM t;
SELECT b FROM t ORDER BY b DESC LIMIT 3;
SQL

# run SPEC NAME: sqlite3 under vmrun --fail SPEC; sets rc; log in $TMP/NAME.log.
run() {
  rm -f "$TMP/db.sqlite" "$TMP/$2.log"
  set +e
  (cd "$TMP" && "$VMRUN" --fail "$1" --fail-log "$TMP/$2.log" sqlite3 db.sqlite <w.sql >"$TMP/$2.out" 2>"$TMP/$2.err")
  rc=$?
  set -e
}

# The same workload without injection succeeds (the baseline the failures break).
run 'malloc:print,times=1' base
[ "$rc" = 0 ] || fail "baseline run failed ($rc): $(cat "$TMP/base.err")"
grep -q '^20000|100005000.0|' "$TMP/base.out" || fail "baseline output: $(cat "$TMP/base.out")"

spec='alloc:after=2000,prob=0.001,seed=3'
for r in 1 2; do
  run "$spec" "prob$r"
  [ "$rc" = 1 ] || fail "run $r: exit $rc, expected sqlite3's own 1 (>128 is a signal)"
  grep -q 'out of memory' "$TMP/prob$r.err" || fail "run $r: no out-of-memory error from sqlite3: $(cat "$TMP/prob$r.err")"
  ! grep -q '^vmrt' "$TMP/prob$r.err" || fail "run $r: vmrt complained: $(cat "$TMP/prob$r.err")"
  n=$(grep -c '^vmrt-fail: inject ' "$TMP/prob$r.log" || true)
  [ "$n" -ge 1 ] || fail "run $r: no injected failure logged"
  grep -q '^vmrt-fail:   at /usr/lib/x86_64-linux-gnu/libsqlite3' "$TMP/prob$r.log" ||
    fail "run $r: the backtraces do not reach libsqlite3"
  grep -Eq "^vmrt-fail:   malloc +[0-9]+ +[0-9]+\$" "$TMP/prob$r.log" || fail "run $r: no summary"
  sed -E 's/ (tid|pid)=[0-9]+//g' "$TMP/prob$r.log" >"$TMP/prob$r.norm"
done
diff "$TMP/prob1.norm" "$TMP/prob2.norm" >&2 || fail "the same seed gave different logs"
# Another seed fails other calls.
run 'alloc:after=2000,prob=0.001,seed=4' prob3
sed -E 's/ (tid|pid)=[0-9]+//g' "$TMP/prob3.log" >"$TMP/prob3.norm"
! cmp -s "$TMP/prob1.norm" "$TMP/prob3.norm" || fail "seeds 3 and 4 gave the same log"

# Frames: every frame allocation fails; the heap cannot get memory, malloc returns NULL,
# sqlite3 reports it.
run 'frame' frame
[ "$rc" = 1 ] || fail "frame failure: exit $rc, expected 1"
grep -q 'out of memory' "$TMP/frame.err" || fail "frame failure: no out-of-memory error: $(cat "$TMP/frame.err")"
! grep -q '^vmrt' "$TMP/frame.err" || fail "frame failure: vmrt complained: $(cat "$TMP/frame.err")"
grep -q '^vmrt-fail: inject frame #1 ' "$TMP/frame.log" || fail "frame failure: #1 not logged"
note "ok: $n injected malloc failures, same log twice; frame failures reach sqlite3 as ENOMEM"
