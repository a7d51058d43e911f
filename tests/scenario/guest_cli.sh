#!/usr/bin/env bash
# vmrun --guest: load an x86-64 shared object as a guest and call one function.  The
# result is printed with exit status 0; a trap is printed (kind, address, symbol+offset)
# with exit status 1, never death by a signal; a refused object is 126.  The guest is
# the example library examples/guests/records.c (build/guests/records.so); the example host
# program examples/guest_records.c runs too.
source "$(dirname "$0")/lib/scenario_lib.bash" "$1"
G=$BUILD/guests/records.so
[ -r "$G" ] || fail "example guest not built: $G (target exampleguest_records)"
[ -x "$BUILD/bin/vmrun-guest" ] || fail "vmrun-guest not built"

"$VMRUN" --help | grep -q -- "--guest" || fail "--help does not mention --guest"

# expect STATUS STDOUT STDERR-PATTERN -- vmrun args...
expect() {
  local want_st=$1 want_out=$2 want_err=$3
  shift 4
  local st=0
  "$VMRUN" "$@" >"$TMP/out" 2>"$TMP/err" || st=$?
  [ "$st" -eq "$want_st" ] || fail "vmrun $*: status $st, want $want_st (stderr: $(cat "$TMP/err"))"
  [ "$(cat "$TMP/out")" = "$want_out" ] || fail "vmrun $*: stdout '$(cat "$TMP/out")', want '$want_out'"
  [ -z "$want_err" ] || grep -q -- "$want_err" "$TMP/err" || fail "vmrun $*: stderr '$(cat "$TMP/err")' lacks '$want_err'"
}

# Integers, strings (copied into the guest), explicit types, return types.
expect 0 25 "" -- --guest "$G" parse_record apples:4:100
expect 0 -7 "" -- --guest --ret i "$G" trivial i:-7
expect 0 APPLES "" -- --guest --ret s "$G" record_name apples:4:100
expect 0 "$(printf '%s' abc | python3 -c 'import sys
h=1469598103934665603
for b in sys.stdin.buffer.read(): h=((h^b)*1099511628211)%(1<<64)
print(h>>1)')" "" -- --guest "$G" checksum abc 3
# Traps: status 1 and the trap named, with the faulting guest function.
expect 1 "" "guest trap: division by zero .*(parse_record+0x" -- --guest "$G" parse_record plums:0:10
expect 1 "" "guest trap: null dereference .*parse_record+0x" -- --guest "$G" parse_record "no colon"
# Options and refusals.
expect 2 "" "no such function: nope" -- --guest "$G" nope
expect 126 "" "not an ELF file" -- --guest /etc/hostname f
expect 126 "" "not position independent: ET_EXEC\|a program (PT_INTERP)" -- --guest /bin/true main
expect 2 "" "need lib.so and FUNC" -- --guest "$G"
expect 2 "" "--ret: one of" -- --guest --ret q "$G" trivial 1
# vmrun's own options still apply before --guest.
expect 0 25 "" -- --trap sigsegv --guest "$G" parse_record apples:4:100
# The example host program survives its guest's two crashes and resets it.
[ -x "$BUILD/bin/guest_records" ] || fail "examples/guest_records not built"
out=$("$BUILD/bin/guest_records" 2>&1) || fail "guest_records failed: $out"
grep -q "records the guest saw: 4, traps: 2" <<<"$out" || fail "guest_records: $out"
grep -q "after reset: 0" <<<"$out" || fail "guest_records did not reset: $out"
grep -q "warm forks: parent saw 1, fork 1 3, fork 2 2" <<<"$out" || fail "guest_records: forks not independent: $out"
grep -q "null dereference.*parse_record" <<<"$out" || fail "guest_records: no null dereference named: $out"
note "ok"
