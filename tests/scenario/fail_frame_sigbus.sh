#!/usr/bin/env bash
# Issue 8: a page the program touches that cannot be supplied (the frame allocator fails,
# VMRT_FAIL=frame) reaches the program as SIGBUS with BUS_ADRERR at the touched byte, the
# way Linux reports a page it cannot supply (here natively: a shared mapping of an empty
# file); with no handler the program dies of SIGBUS (status 135), never of SIGSEGV.
# Both trap backends; the program uses the vmspace C API (libvmrt.so).
source "$(dirname "$0")/lib/scenario_lib.bash" "$1"
need cc
SRC=$(dirname "$0")/src/frame_sigbus.c
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cc -O1 -o "$TMP/native" "$SRC"
cc -O1 -DWITH_VMRT -I"$ROOT" -o "$TMP/vmrt" "$SRC" -L"$BUILD/lib" -lvmrt -Wl,-rpath,"$BUILD/lib"

run() {  # run LABEL PROG MODE [ENV...]
  local label=$1 prog=$2 mode=$3; shift 3
  local st=0
  # (a subshell that outlives the program: the shell's "Bus error" report goes to /dev/null)
  (env "$@" "$prog" "$mode" >"$TMP/$label.out" 2>"$TMP/$label.err" </dev/null; exit $?) 2>/dev/null || st=$?
  echo "$st" >"$TMP/$label.status"
}
for mode in handle die; do
  run "native-$mode" "$TMP/native" "$mode"
  grep -q touching "$TMP/native-$mode.out" || fail "native $mode run did not get to the touch"
  for trap in sigsegv userfaultfd; do
    run "$trap-$mode" "$TMP/vmrt" "$mode" VMRT_TRAP=$trap VMRT_FAIL=frame VMRT_FAIL_LOG="$TMP/$trap-$mode.log"
    for f in out status; do
      cmp -s "$TMP/native-$mode.$f" "$TMP/$trap-$mode.$f" ||
        fail "VMRT_TRAP=$trap $mode: $f differs from native: '$(cat "$TMP/$trap-$mode.$f")' vs '$(cat "$TMP/native-$mode.$f")' ($(cat "$TMP/$trap-$mode.err"))"
    done
    grep -q '^vmrt-fail: inject frame #1 ' "$TMP/$trap-$mode.log" || fail "VMRT_TRAP=$trap $mode: no frame failure injected"
  done
done
[ "$(cat "$TMP/native-die.status")" = 135 ] || fail "native die: status $(cat "$TMP/native-die.status") (want 135)"
grep -qx 'SIGBUS code=BUS_ADRERR addr=the-touched-byte' "$TMP/native-handle.out" || fail "native handler output: $(cat "$TMP/native-handle.out")"
# Without the failure the same touch succeeds.
run plain "$TMP/vmrt" die
grep -q survived "$TMP/plain.out" || fail "the touch fails without fault injection: $(cat "$TMP/plain.err")"
note "ok: a refused frame is SIGBUS/BUS_ADRERR at the touched byte (handler) or death by SIGBUS, both backends, as natively"
