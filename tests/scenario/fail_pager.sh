#!/usr/bin/env bash
# Issue 8: pager fail points under memory pressure (vmrun --physmem 16M, 64 MB touched),
# under both trap backends:
#  - pager_read (an I/O error reading a slot back) reaches the program as SIGBUS with
#    BUS_MCEERR_AR at the touched page and vmrt's message naming it, like an I/O error on a
#    mapped file; the slot is a bad block from then on: touched again the page raises SIGBUS
#    again (both backends alike: the userfaultfd backend retries a refused fault through
#    SIGSEGV, and a one-shot error used to vanish in that retry, the program reading on as
#    if nothing happened), never other data (zeros); every other page reads back intact.
#    Without a handler the program dies of SIGBUS (status 135).
#  - swap_corrupt: the same through the checksum (a bit flipped on the device).
#  - pager_write (laundering writes fail): the pages stay dirty and resident and are written
#    again later; the program's data is intact, the I/O errors counted.
source "$(dirname "$0")/lib/scenario_lib.bash" "$1"
need cc
cc -O2 -pthread -o "$TMP/work" "$(dirname "$0")/src/paging_work.c"
"$TMP/work" sigbus 64 | grep -q ': 0 SIGBUS ' || fail "natively the sigbus mode saw a SIGBUS"

# "sigbus 64 MB: B SIGBUS (M BUS_MCEERR_AR, P in the touched page); read again: I intact, S SIGBUS, O other data; X bad pages"
check_line() {  # LABEL LINE
  local label=$1 line=$2
  [[ $line =~ ^sigbus\ 64\ MB:\ ([0-9]+)\ SIGBUS\ \(([0-9]+)\ BUS_MCEERR_AR,\ ([0-9]+)\ in\ the\ touched\ page\)\;\ read\ again:\ ([0-9]+)\ intact,\ ([0-9]+)\ SIGBUS,\ ([0-9]+)\ other\ data\;\ ([0-9]+)\ bad\ pages$ ]] ||
    fail "$label: unexpected output '$line'"
  local b=${BASH_REMATCH[1]} m=${BASH_REMATCH[2]} p=${BASH_REMATCH[3]} i=${BASH_REMATCH[4]} s=${BASH_REMATCH[5]}
  local o=${BASH_REMATCH[6]} x=${BASH_REMATCH[7]}
  [ "$b" -ge 1 ] || fail "$label: no SIGBUS reached the program: $line"
  [ "$m" = "$b" ] && [ "$p" = "$b" ] || fail "$label: a SIGBUS without BUS_MCEERR_AR or away from the touched page: $line"
  [ "$i" = 0 ] && [ "$s" = "$b" ] || fail "$label: the failed page did not stay unreadable: $line"
  [ "$o" = 0 ] && [ "$x" = 0 ] || fail "$label: the program read other data (zeros?): $line"
}

for trap in userfaultfd sigsegv; do
  for point in pager_read swap_corrupt; do
    label="$point ($trap)"
    st=0
    line=$("$VMRUN" --physmem 16M --trap $trap --fail "$point:nth=5" --fail-log "$TMP/log" -- "$TMP/work" sigbus 64 2>"$TMP/err") || st=$?
    [ $st = 0 ] || fail "$label: status $st: $line $(tail -3 "$TMP/err")"
    check_line "$label" "$line"
    grep -q "^vmrt: the page at 0x[0-9a-f]* could not be read back from swap intact" "$TMP/err" || fail "$label: no message naming the page"
    grep -q "^vmrt-fail: inject $point #5 " "$TMP/log" || fail "$label: no inject record"
    rm -f "$TMP/log"
    note "ok: $label: $line"
    # No handler: death by SIGBUS.
    st=0
    (exec "$VMRUN" --physmem 16M --trap $trap --fail "$point:nth=5" -- "$TMP/work" seq 64 >"$TMP/out" 2>"$TMP/err") 2>/dev/null || st=$?
    [ $st = 135 ] || fail "$label, no handler: status $st, want 135 (SIGBUS): $(grep -v '^vmrt-fail' "$TMP/err" | tail -3)"
    grep -q "bad pages" "$TMP/out" && fail "$label, no handler: the program went on: $(cat "$TMP/out")"
  done
done

want=$("$TMP/work" seq 64)
got=$(VMRT_STATS=1 "$VMRUN" --physmem 16M --fail pager_write:every=3 --fail-log "$TMP/wlog" -- "$TMP/work" seq 64 2>"$TMP/err") ||
  fail "pager_write: status $?: $(grep -v '^ ' "$TMP/err" | tail -3)"
[ "$got" = "$want" ] || fail "pager_write: '$got', want '$want'"
errs=$(vmstat_value "$TMP/err" "swap I/O errors")
[ "${errs:-0}" -gt 0 ] || fail "pager_write: no swap I/O errors counted"
grep -Eq '^vmrt-fail:   pager_write +[0-9]+ +[1-9][0-9]*$' "$TMP/wlog" || fail "pager_write: the summary counts no failure"
note "ok: pager_write:every=3: $got; $errs swap I/O errors, pages written again later"

# pageout: every pass of the pageout daemon refused (it frees nothing: faults reclaim for
# themselves, direct reclaim), then every pass delayed 20 ms (sleep=): the data is intact.
for spec in pageout pageout:sleep=20ms; do
  got=$(VMRT_STATS=1 "$VMRUN" --physmem 16M --fail "$spec" --fail-log "$TMP/plog" -- "$TMP/work" seq 64 2>"$TMP/err") ||
    fail "$spec: status $?: $(grep -v '^ ' "$TMP/err" | tail -3)"
  [ "$got" = "$want" ] || fail "$spec: '$got', want '$want'"
  direct=$(vmstat_value "$TMP/err" "direct reclaims")
  [ "${direct:-0}" -gt 0 ] || fail "$spec: no direct reclaim (did the daemon free the pages after all?)"
  case $spec in
    *sleep*)
      grep -q '^vmrt-fail: delay pageout #1 size=0 clause=1 .* sleep_us=20000$' "$TMP/plog" || fail "$spec: no delay record"
      grep -Eq '^vmrt-fail:   pageout +([0-9]+) +0 +\1$' "$TMP/plog" || fail "$spec: the summary does not count every pass delayed: $(tail -2 "$TMP/plog")" ;;
    *)
      grep -Eq '^vmrt-fail:   pageout +([0-9]+) +\1$' "$TMP/plog" || fail "$spec: the summary does not count every pass refused" ;;
  esac
  note "ok: $spec: $got; $direct direct reclaims; $(tail -1 "$TMP/plog" | tr -s ' ')"
  rm -f "$TMP/plog"
done
