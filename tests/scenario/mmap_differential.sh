#!/usr/bin/env bash
# Differential test of the mmap family (issue 6, "Tests"): mmap_diff (src/mmap_diff.cpp) runs a
# seeded random sequence of mmap / munmap / mprotect / madvise / mremap / msync / mincore /
# mlock / sbrk calls, valid and invalid, anonymous and file, shared and private, content
# writes and reads and forks, and prints one normalised line per step (result, errno,
# mincore residency, content hashes, the test files' bytes).  The same seeds run natively and
# under vmrun (both trap backends) must print identical lines.  On a mismatch: the seed, the
# first differing step with both lines, and the command that reproduces it.
#   MMAP_DIFF_SEEDS=N MMAP_DIFF_STEPS=K override the defaults (40 seeds x 500 steps);
#   MMAP_DIFF_OPS=LIST restricts the operations (mmap_diff --ops; `mmap_diff --help` lists them).
#   MMAP_DIFF_TRACE=1 (on the reproduce command) prints raw addresses on stderr.
# Two services are compared with native, on every seed:
#   VMRT_MMAP=host (the kernel serves the mmap family behind the shim): a difference there is
#     the harness's own (a nondeterminism it failed to normalise) or the shim's interference;
#   VMRT_MMAP=vmrt (runtime/rt_mmap): results, errno, contents and residency as Linux's.
#     (2026-12-01: 240 seeds x 500 steps, 10 x 2000, identical with both trap backends.)
#   MMAP_DIFF_VMRT_SEEDS="1 2 3" restricts the vmrt seeds.
source "$(dirname "$0")/lib/scenario_lib.bash" "$1"
SEEDS=${MMAP_DIFF_SEEDS:-40}
STEPS=${MMAP_DIFF_STEPS:-500}
ARGS="--steps $STEPS${MMAP_DIFF_OPS:+ --ops $MMAP_DIFF_OPS}"

PROG=$BUILD/bin/mmap_diff
if [ ! -x "$PROG" ]; then  # built by tests/CMakeLists.txt; compile here if it is missing
  need c++
  PROG=$TMP/mmap_diff
  c++ -std=c++20 -O2 -o "$PROG" "$(dirname "$0")/src/mmap_diff.cpp"
fi

# first_diff A B: the number of the first line where A and B differ (one may be shorter).
first_diff() {
  awk 'NR == FNR { a[FNR] = $0; na = FNR; next }
       { if (!(FNR in a) || a[FNR] != $0) { print FNR; found = 1; exit } nb = FNR }
       END { if (!found && na != nb) print (na < nb ? na : nb) + 1 }' "$1" "$2"
}

VMRT_SEEDS=${MMAP_DIFF_VMRT_SEEDS:-$(seq 1 "$SEEDS")}
t0=$(date +%s.%N)
bad=0
lines=0
for job in $(for s in $(seq 1 "$SEEDS"); do echo "host:$s"; done; for s in $VMRT_SEEDS; do echo "vmrt:$s"; done); do
  service=${job%%:*} seed=${job#*:}
  st=0
  (cd "$TMP" && "$PROG" --seed "$seed" $ARGS) >"$TMP/native.$seed" 2>"$TMP/native.$seed.err" || st=$?
  [ $st -eq 0 ] || fail "seed $seed: the native run itself failed (status $st): $(tail -3 "$TMP/native.$seed") $(cat "$TMP/native.$seed.err")"
  lines=$((lines + $(wc -l <"$TMP/native.$seed")))
  for trap in auto sigsegv; do
    st=0
    (cd "$TMP" && VMRT_MMAP=$service timeout 120 "$VMRUN" --trap $trap -- "$PROG" --seed "$seed" $ARGS) \
      >"$TMP/vmrt.$seed" 2>"$TMP/vmrt.$seed.err" || st=$?
    if cmp -s "$TMP/native.$seed" "$TMP/vmrt.$seed" && cmp -s "$TMP/native.$seed.err" "$TMP/vmrt.$seed.err" &&
      [ $st -eq 0 ]; then continue; fi
    bad=$((bad + 1))
    n=$(first_diff "$TMP/native.$seed" "$TMP/vmrt.$seed" | head -1)
    {
      echo "---- seed $seed, VMRT_MMAP=$service vmrun --trap $trap: status $st"
      if [ -n "$n" ]; then
        echo "first difference at output line $n:"
        echo "  native: $(sed -n "${n}p" "$TMP/native.$seed" | cut -c1-600)"
        echo "  vmrun:  $(sed -n "${n}p" "$TMP/vmrt.$seed" | cut -c1-600)"
        if [ "$n" -gt 1 ]; then
          echo "  (previous line, identical: $(sed -n "$((n - 1))p" "$TMP/native.$seed" | cut -c1-300))"
        fi
      fi
      cmp -s "$TMP/native.$seed.err" "$TMP/vmrt.$seed.err" ||
        echo "  stderr differs: native '$(head -5 "$TMP/native.$seed.err")', vmrun '$(head -5 "$TMP/vmrt.$seed.err")'"
      echo "  reproduce: $PROG --seed $seed $ARGS > native.txt"
      echo "             VMRT_MMAP=$service $VMRUN --trap $trap -- $PROG --seed $seed $ARGS > vmrt.txt; diff native.txt vmrt.txt"
    } >&2
    [ $bad -lt 6 ] || break 2  # enough to start with
  done
done
t1=$(date +%s.%N)
[ $bad -eq 0 ] || fail "$bad run(s) under vmrun differ from the native run (see above)"
note "ok: $SEEDS seeds (VMRT_MMAP=host) and $(echo $VMRT_SEEDS | wc -w) seeds (VMRT_MMAP=vmrt) x $ARGS identical" \
  "natively and under vmrun (--trap auto and sigsegv); $(awk "BEGIN{printf \"%.1f\", $t1 - $t0}")s"
