#!/usr/bin/env bash
# Issue 12: vm.max_map_count reached.  Rather than lowering the machine-wide sysctl (it
# would hit every other process on the host while the test runs), the program itself
# fills its map count with tens of thousands of one-page mappings (src/map_count.c) until
# mmap fails with ENOMEM, then mallocs.  Natively glibc's malloc returns NULL/ENOMEM where it
# needs a new mapping.  Under vmrt:
#  - limit reached before the first malloc: vmrt cannot boot (no region, no stage 0
#    reservation): one clear message, then malloc is served by the bootstrap arena (64 KiB
#    in the shim's bss, then a 1 MiB extension if the host still maps it) and returns
#    NULL/ENOMEM beyond it; the program is not aborted (it used to be);
#  - limit reached after boot ("early"): vmrt keeps a headroom below the limit for its own
#    splits (runtime/rt_vma_budget.h): the program's mmap gets ENOMEM a little earlier than
#    natively and every later malloc/munmap works (before, vmrt stopped with an assertion
#    naming the host VMA limit when it put a reservation back after munmap);
#  - the limit filled behind vmrt's back ("raw": raw system calls, as glibc's own mappings):
#    the program's munmaps must still unmap (the host refuses the reservation vmrt puts
#    back; vmrt makes the range inaccessible in place instead) — an assertion before.
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
# The limit reached after boot, by the program's own mmaps.
"$TMP/maps" early >"$TMP/early-native.out" 2>&1 || fail "native early run failed"
check_clean early-native
for trap in sigsegv userfaultfd; do
  st=0; "$VMRUN" --trap $trap --stats -- "$TMP/maps" early >"$TMP/early.out" 2>"$TMP/early.err" || st=$?
  [ $st = 0 ] || fail "early --trap $trap: status $st (the native run exits 0): $(grep -m3 vmrt "$TMP/early.err")"
  check_clean early
  expect_vmstat "$TMP/early.err" "program mappings refused near the host's mapping limit" -ge 1 "early --trap $trap"
  grep -q 'host mapping limit (vm.max_map_count)' "$TMP/early.err" || fail "early: vmstat -s does not say the limit"
done
# The limit filled by mappings vmrt never sees.
"$TMP/maps" raw >"$TMP/raw-native.out" 2>&1 || fail "native raw run failed: $(tail -3 "$TMP/raw-native.out")"
for trap in sigsegv userfaultfd; do
  st=0; "$VMRUN" --trap $trap --stats -- "$TMP/maps" raw >"$TMP/raw.out" 2>"$TMP/raw.err" || st=$?
  [ $st = 0 ] || fail "raw --trap $trap: status $st (the native run exits 0): $(grep -m3 vmrt "$TMP/raw.err")"
  diff "$TMP/raw-native.out" "$TMP/raw.out" >/dev/null || fail "raw --trap $trap: output differs from native: $(diff "$TMP/raw-native.out" "$TMP/raw.out" | head -5)"
  grep -qx '500 munmaps at the limit: all unmapped' "$TMP/raw.out" || fail "raw: munmaps at the limit failed"
  expect_vmstat "$TMP/raw.err" "unmaps done in place at the host's mapping limit" -ge 1 "raw --trap $trap"
done
note "ok: the map limit reached after boot (by the program, or behind vmrt's back) never stops the program"
note "ok: the map limit reached before boot gives NULL/ENOMEM and one clear message, never an abort"
