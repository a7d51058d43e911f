#!/usr/bin/env bash
# Issue 12: vm.max_map_count reached.  Rather than lowering the machine-wide sysctl (it
# would hit every other process on the host while the test runs), the program itself
# fills its map count with tens of thousands of one-page mappings (src/map_count.c) until
# mmap fails with ENOMEM, then mallocs.  Natively glibc's malloc returns NULL/ENOMEM where it
# needs a new mapping.  Under vmrt:
#  - limit reached before the first malloc: vmrt cannot boot (no region, no stage 0
#    reservation): one clear message, then malloc is served by the 1 MiB bootstrap arena
#    and returns NULL/ENOMEM beyond it; the program is not aborted (it used to be);
#  - limit reached after boot ("early"): vmrt's pmap needs host VMAs to unmap pages
#    (runtime/pmap_linux.cpp); today it stops with a clear assertion naming the host VMA
#    limit rather than corrupting memory.  That outcome is reported as KNOWN (not fixed
#    here: pmap_linux.cpp is another helper's); a clean run is checked like the first case.
source "$(dirname "$0")/lib/scenario_lib.bash" "$1"
need cc
cc -O1 -o "$TMP/maps" "$(dirname "$0")/src/map_count.c"

# check_clean LABEL: every malloc line is a usable block or NULL/ENOMEM; the program finished.
check_clean() {
  local f=$TMP/$1.out
  grep -qx 'mmap failed after tens of thousands of mappings: Cannot allocate memory' "$f" ||
    fail "$1: the program did not reach the map limit: $(head -2 "$f")"
  ! grep '^  malloc' "$f" | grep -Ev ': (ok|NULL ENOMEM)$' || fail "$1: a malloc neither worked nor failed with ENOMEM"
  grep -qx done "$f" || fail "$1: the program did not finish: $(tail -3 "$f")"
}
st=0; "$TMP/maps" >"$TMP/native.out" 2>&1 || st=$?
[ $st = 0 ] || fail "native run: status $st"
check_clean native
for trap in sigsegv userfaultfd; do
  st=0; "$VMRUN" --trap $trap -- "$TMP/maps" >"$TMP/$trap.out" 2>"$TMP/$trap.err" || st=$?
  [ $st = 0 ] || fail "--trap $trap: status $st (the native run exits 0): $(cat "$TMP/$trap.err")"
  check_clean "$trap"
  grep -q '^vmrt: libvmrt_malloc.so: the vmrt runtime failed to boot (see above): malloc returns NULL (ENOMEM)' "$TMP/$trap.err" ||
    fail "--trap $trap: no clear message: $(cat "$TMP/$trap.err")"
  grep -q '^vmrt: cannot reserve the guest region' "$TMP/$trap.err" || fail "--trap $trap: the cause is not named: $(cat "$TMP/$trap.err")"
  grep -q 'NULL ENOMEM' "$TMP/$trap.out" || fail "--trap $trap: no malloc failed (the limit had no effect?)"
done
# The limit reached after boot.
"$TMP/maps" early >"$TMP/early-native.out" 2>&1 || fail "native early run failed"
st=0; (  "$VMRUN" -- "$TMP/maps" early >"$TMP/early.out" 2>"$TMP/early.err"; exit $? ) 2>/dev/null || st=$?
if [ $st = 0 ]; then
  check_clean early
elif grep -q 'host VMA limit' "$TMP/early.err"; then
  note "KNOWN (not fixed here): after boot, the map limit stops the program in runtime/pmap_linux.cpp with: $(grep -m1 'host VMA limit' "$TMP/early.err")"
else
  fail "early: status $st without the clear message: $(tail -3 "$TMP/early.err")"
fi
note "ok: the map limit reached before boot gives NULL/ENOMEM and one clear message, never an abort"
