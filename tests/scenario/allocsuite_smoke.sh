#!/usr/bin/env bash
# allocsuite --tiny: the allocator comparison suite runs end to end in a few seconds
# and writes a sane results.csv (every workload has a row per allocator, glibc and
# vmrt rows succeeded with positive time and RSS, results identical to glibc's) and
# its metric lines; vmrt's vmstat -m summary comes from an extra run, not from the measured
# ones.  No timing assertions: this machine is shared and noisy.
source "$(dirname "$0")/lib/scenario_lib.bash" "$1"
need sqlite3

SUITE=$BUILD/bin/allocsuite
[ -x "$SUITE" ] || fail "allocsuite not built: $SUITE"
OUT=$TMP/out
# Two allocators and a subset of the workloads keep it to a few seconds; two real
# programs (sqlite3, and gcc building a generated program: both always installed by
# scripts/setup.sh) stand for the apps.
need gcc
WORKLOADS=small_churn,prodcons,mixed_server,larson,cache_scratch,xmalloc,symbolic,large_blocks,realloc_big,malloc64_probe,sqlite,gcc
"$SUITE" --tiny --allocators glibc,vmrt --baseline glibc --only "$WORKLOADS" --out "$OUT" >"$TMP/log" 2>&1 || {
  tail -40 "$TMP/log" >&2
  fail "allocsuite --tiny failed"
}

CSV=$OUT/results.csv
[ -s "$CSV" ] || fail "no results.csv"
[ -s "$OUT/runs.csv" ] || fail "no runs.csv"
head -1 "$CSV" | grep -q '^workload,allocator,status,reps,time_ms,time_vs_glibc,peak_rss_mib,rss_vs_glibc,frag.*,time_spread,time_verdict_vs_glibc$' ||
  fail "results.csv header wrong: $(head -1 "$CSV")"
# The spread needs 4 repetitions and the sign test's verdict 5: --tiny's one leaves both
# columns empty, and the table says what they are.
awk -F, 'NR > 1 && ($(NF - 1) != "" || $NF != "") { bad = 1 } END { exit bad }' "$CSV" ||
  fail "time_spread or a verdict given for a single repetition"
grep -q '^+-: the time' "$TMP/log" || fail "the table does not explain its +- column"
grep -q '^x base is followed by the rounds. verdict' "$TMP/log" || fail "the table does not explain its verdict marks"
# With 5 repetitions each row has a spread (a number, at least 0) and vmrt's a verdict
# against the baseline (none for the baseline itself), marked after its ratio in the table.
"$SUITE" --tiny --reps 5 --allocators glibc,vmrt --baseline glibc --only small_churn --out "$TMP/spread" >"$TMP/log5" 2>&1 ||
  fail "allocsuite --reps 5 failed"
awk -F, 'NR > 1 { if (!($(NF - 1) != "" && $(NF - 1) + 0 >= 0)) bad = 1 }
         $2 == "glibc" && $NF != "" { bad = 1 }
         $2 == "vmrt" && $NF !~ /^(slower|faster|tie)$/ { bad = 1 } END { exit bad }' "$TMP/spread/results.csv" ||
  fail "spread or verdict wrong with 5 repetitions: $(cat "$TMP/spread/results.csv")"
grep -Eq '^  vmrt +[0-9.]+ +[0-9]+% +[0-9.]+[<>~] ' "$TMP/log5" || fail "no verdict mark in vmrt's row: $(grep '^  vmrt' "$TMP/log5")"

# One row per (workload, allocator); every row ok, time and RSS positive; the baseline's
# own ratios are exactly 1.
n=0
IFS=, read -ra want <<<"$WORKLOADS"
for w in "${want[@]}"; do
  for a in glibc vmrt; do
    row=$(grep "^$w,$a," "$CSV" || true)
    [ -n "$row" ] || fail "no row for $w under $a"
    awk -F, -v w="$w" -v a="$a" '{
      if ($3 != "ok") { print "row " w "/" a " status " $3; exit 1 }
      if (!($5 > 0) || !($7 > 0)) { print "row " w "/" a " time/RSS not positive: " $5 " " $7; exit 1 }
      if (a == "glibc" && ($6 != "1.000" || $8 != "1.000")) { print "baseline ratios not 1: " $6 " " $8; exit 1 }
    }' <<<"$row" >&2 || fail "bad row: $row"
    n=$((n + 1))
  done
done
# vmrt rows carry a vmstat -m summary; workloads that track their requests a frag value.
grep '^small_churn,vmrt,' "$CSV" | grep -q 'HighUse' || fail "vmrt row has no vmstat -m summary"
awk -F, '$1 == "small_churn" && $2 == "glibc" { exit !($9 > 0.5 && $9 < 50) }' "$CSV" ||
  fail "small_churn frag not sane: $(grep '^small_churn,glibc,' "$CSV")"
ls "$OUT"/vmstat/small_churn.txt >/dev/null || fail "no vmrt report file"
# A build's summary is the report of its largest process, named, out of all it ran (the
# driver, cc1, as, collect2, ld: each appended one); the program it built ran and its
# result (output and the binary's hash) matched glibc's build (the mismatch check below).
grep '^gcc,vmrt,' "$CSV" | grep -Eq '[a-z0-9]+ of [0-9]+ processes: HighUse' ||
  fail "gcc row's vmstat summary names no process: $(grep '^gcc,vmrt,' "$CSV")"
n_reports=$(grep -c '^==== vmrt statistics' "$OUT"/vmstat/gcc.txt || true)
[ "$n_reports" -ge 5 ] || fail "gcc's statistics run left $n_reports reports (the driver, cc1, as, collect2 and ld each write one)"
grep '^gcc,glibc,' "$CSV" | grep -q ' #[0-9a-f]\{8\}' || fail "gcc row has no binary hash: $(grep '^gcc,glibc,' "$CSV")"
# ... taken from one more run, not measured: the measured runs carry no VMRT_STATS report
# (its work at exit added ~0.3 MiB to vmrt's peak RSS on the small rows).
grep '^[a-z_0-9]*,vmrt,[0-9]' "$OUT/runs.csv" | grep -q 'HighUse' &&
  fail "a measured vmrt run carried the statistics report: $(grep '^small_churn,vmrt,' "$OUT/runs.csv" | head -1)"
ls "$OUT"/vmstat/*.rep*.txt >/dev/null 2>&1 && fail "a measured vmrt run wrote a report: $(ls "$OUT"/vmstat/*.rep*.txt | head -3)"
# The probe reports the RSS an untouched malloc(64 MiB) added (a number, in kB).
grep -q '^metric malloc64_added_kb.glibc [0-9]' "$TMP/log" || fail "no malloc64_added_kb metric"
for m in geomean_time_vs_jemalloc geomean_rss_vs_jemalloc worst_time_vs_jemalloc worst_rss_vs_jemalloc; do
  grep -q "^metric $m " "$TMP/log" || fail "metric $m missing"
done
# Results were compared with glibc's: no mismatch line.
grep -q 'RESULT MISMATCH' "$TMP/log" && fail "a result differed from glibc's"
if command -v gnuplot >/dev/null 2>&1; then
  [ -s "$OUT/chart.svg" ] && [ -s "$OUT/chart.png" ] || fail "gnuplot installed but no chart"
else
  note "SKIP chart check: gnuplot not installed"
fi
note "ok: $n rows, CSV, metrics, vmstat summaries"
