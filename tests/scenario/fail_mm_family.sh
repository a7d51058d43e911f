#!/usr/bin/env bash
# Issue 8: the program's own munmap / mprotect / mlock (served by vmrt, runtime/rt_mmap)
# under fault injection.  A refused call returns -1 with the errno the man pages allow
# (munmap ENOMEM, mprotect ENOMEM, mlock EAGAIN) and changes nothing: the page meant to go
# read-only stays writable, the page meant to be unmapped stays mapped with its data, every
# other page keeps its contents, and the same call made again succeeds.  Filters apply as to
# any fail point (size=, times=).  Without a spec the run matches native.
source "$(dirname "$0")/lib/scenario_lib.bash" "$1"
need cc
cc -O1 -o "$TMP/mmf" "$(dirname "$0")/src/mm_family_fail.c"
"$TMP/mmf" >"$TMP/native.out" || fail "native run: status $?"
grep -q ': fail' "$TMP/native.out" && fail "natively a call failed: $(cat "$TMP/native.out")"
"$VMRUN" -- "$TMP/mmf" >"$TMP/plain.out" 2>"$TMP/plain.err" || fail "vmrun without a spec: status $?"
diff "$TMP/native.out" "$TMP/plain.out" >&2 || fail "vmrun without a spec differs from native"

# Each first call refused.
"$VMRUN" --fail 'munmap:nth=1;mprotect:nth=1;mlock:nth=1' --fail-log "$TMP/one.log" -- "$TMP/mmf" >"$TMP/one.out" ||
  fail "under injection: status $?: $(cat "$TMP/one.out")"
cat >"$TMP/one.want" <<'W'
mprotect #1: fail ENOMEM
  page 3 writable 1, pages intact 1
mprotect #2: ok
  page 3 writable 0, pages intact 1
mlock #1: fail EAGAIN
  pages intact 1
mlock #2: ok
  pages intact 1
munmap #1: fail ENOMEM
  page 9 mapped 1, pages intact 1
munmap #2: ok
  page 9 mapped 0, pages intact 1
rewrite: 0 bad
munmap rest: 0 0
W
diff "$TMP/one.want" "$TMP/one.out" >&2 || fail "what the program saw under munmap/mprotect/mlock:nth=1"
for p in munmap mprotect mlock; do
  grep -q "^vmrt-fail: inject $p #1 size=" "$TMP/one.log" || fail "no inject record for $p"
  grep -Eq "^vmrt-fail:   $p +[0-9]+ +1\$" "$TMP/one.log" || fail "the summary does not count one $p failure"
done
grep -q "^vmrt-fail:   at $TMP/mmf 0x" "$TMP/one.log" || fail "the backtrace does not name the program"

# A size filter: only the 8 KiB call (the mlock of two pages), once.
"$VMRUN" --fail 'munmap+mprotect+mlock:size=8K,times=1' --fail-log "$TMP/size.log" -- "$TMP/mmf" >"$TMP/size.out" ||
  fail "size filter: status $?"
[ "$(grep -c ': fail' "$TMP/size.out")" = 1 ] && grep -q '^mlock #1: fail EAGAIN$' "$TMP/size.out" ||
  fail "size=8K,times=1 should refuse mlock #1 only: $(grep ': ' "$TMP/size.out" | tr '\n' ';')"
sed 's/^mlock #1: fail EAGAIN$/mlock #1: ok/' "$TMP/size.out" | diff "$TMP/native.out" - >&2 ||
  fail "size filter: the rest of the run differs from native"
note "ok: munmap/mprotect/mlock refused with ENOMEM/ENOMEM/EAGAIN, nothing damaged; size filter"
