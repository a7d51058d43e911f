#!/usr/bin/env bash
# CPython's own test suite as a judge of "vmrt leaves no trace" (issue 14): Debian's
# libpython3.11-testsuite runs a fixed list of modules (memory, mmap, threads, subprocess,
# signals, fork, os, posix, resource, gc, faulthandler, ctypes, pickle, json, re, zlib,
# lzma, hashlib, array, weakref, containers) natively and under vmrun, -j2 each, and the
# outcome of every test case must be the same.  Cases that differ are run once more, alone
# and verbosely, both ways (timing-sensitive tests on a loaded 2-core machine); only a
# difference that repeats fails the scenario.
#   cpython_suite.sh BUILD_DIR          the default list (about 2 min native + 2-3 min vmrun)
#   cpython_suite.sh BUILD_DIR --full   adds multiprocessing and concurrent.futures (~15 min)
source "$(dirname "$0")/lib/scenario_lib.bash" "$1"
PY=/usr/bin/python3.11
[ -x "$PY" ] && [ -d /usr/lib/python3.11/test/libregrtest ] ||
  fail "libpython3.11-testsuite not installed (run scripts/setup.sh)"
MODS=(test_array test_bytes test_collections test_dict test_faulthandler test_fork1 test_gc
  test_hashlib test_json test_list test_lzma test_memoryview test_mmap test_os test_pickle
  test_posix test_re test_resource test_set test_signal test_subprocess test_thread
  test_threading test_wait4 test_weakref test_zlib test_ctypes)
if [ "${2:-}" = --full ]; then
  MODS+=(test_multiprocessing_fork test_concurrent_futures test_threading_local test_sys)
fi
COMPARE=$(cd "$(dirname "$0")" && pwd)/src/regrtest_compare.py

# run LABEL ARGS...: the test modules, natively or under vmrun; log in $TMP/LABEL.log.
run() {
  local label=$1 t0 t1
  shift
  rm -rf "$WORK" && mkdir -p "$WORK"
  t0=$(date +%s)
  (cd "$WORK" && TIMEFORMAT="%R s real, %U s user, %S s sys" && time "$@") >"$TMP/$label.log" 2>&1 </dev/null || true
  t1=$(date +%s)
  note "$label: $((t1 - t0)) s, $(tail -1 "$TMP/$label.log")"
}
run native "$PY" -m test -j2 -v "${MODS[@]}"
run vmrt "$VMRUN" -- "$PY" -m test -j2 -v "${MODS[@]}"
if python3 "$COMPARE" "$TMP/native.log" "$TMP/vmrt.log" >"$TMP/cmp" 2>&1; then
  note "$(head -1 "$TMP/cmp")"
  exit 0
fi
cat "$TMP/cmp" >&2
# Once more, only the modules that differed, one at a time both ways.
mapfile -t again < <(sed -n 's/^  test\.\(test_[a-z0-9_]*\)\..*/\1/p' "$TMP/cmp" | sort -u)
note "re-running ${again[*]}"
run native2 "$PY" -m test -v "${again[@]}"
run vmrt2 "$VMRUN" -- "$PY" -m test -v "${again[@]}"
python3 "$COMPARE" "$TMP/native2.log" "$TMP/vmrt2.log" >"$TMP/cmp2" 2>&1 || {
  cat "$TMP/cmp2" >&2
  fail "CPython test cases pass natively and fail under vmrun (or the reverse), twice"
}
note "differences did not repeat: $(head -1 "$TMP/cmp2")"
