#!/usr/bin/env bash
# VMRT_STATS=1 / vmrun --stats: at exit each process prints the vmstat -m tables
# (4.4BSD kern_malloc statistics), vmstat -s and the shim's counters, to stderr or
# to VMRT_STATS_FD; without it nothing is printed.
source "$(dirname "$0")/lib/scenario_lib.bash" "$1"
need sort

# The tables of 4.4BSD vmstat -m, and the malloc types the shim charges.
check_report() {  # check_report FILE [no-libc]
  local f=$1
  grep -q 'vmrt statistics: pid' "$f" || fail "no report header in $f"
  grep -qi 'Memory statistics by bucket size' "$f" || fail "no 'by bucket size' table in $f"
  grep -qi 'Memory statistics by type' "$f" || fail "no 'by type' table in $f"
  [ "${2:-}" = no-libc ] || grep -qi 'libc' "$f" || fail "the libc malloc type is missing from $f"
  grep -q 'vmrt malloc shim' "$f" || fail "no shim counters in $f"
}

seq 1 20000 | "$VMRUN" --stats -- sort -rn >"$TMP/out" 2>"$TMP/err"
[ "$(head -1 "$TMP/out")" = 20000 ] || fail "sort output wrong under --stats"
check_report "$TMP/err"

# VMRT_STATS=1 set directly, report on fd 3.
VMRT_STATS=1 VMRT_STATS_FD=3 "$VMRUN" -- sort -n <"$TMP/out" >"$TMP/out2" 2>"$TMP/err2" 3>"$TMP/fd3"
[ "$(head -1 "$TMP/out2")" = 1 ] || fail "sort output wrong with VMRT_STATS_FD"
check_report "$TMP/fd3"
grep -q 'vmrt statistics' "$TMP/err2" && fail "report went to stderr despite VMRT_STATS_FD=3"
"$VMRUN" --stats --stats-fd 3 -- true 3>"$TMP/fd3b" 2>/dev/null  # (true may never call malloc)
check_report "$TMP/fd3b" no-libc

# Children report too (environment inherited): one report per process.
"$VMRUN" --stats -- bash -c 'sort </dev/null; sort </dev/null; true' 2>"$TMP/err3"
n=$(grep -c 'vmrt statistics: pid' "$TMP/err3")
[ "$n" -ge 3 ] || fail "expected reports from bash and two sorts, got $n"

# Off by default.
"$VMRUN" -- sort </dev/null 2>"$TMP/err4"
[ -s "$TMP/err4" ] && fail "a report was printed without --stats"
note "ok: report tables present, fd redirection and children work"
