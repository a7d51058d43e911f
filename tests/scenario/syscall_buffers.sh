#!/usr/bin/env bash
# System calls and stdio on heap memory that was paged out, under the sigsegv trap backend
# (vmrun --physmem 16M --trap sigsegv), against the native run: one write(2) of a paged-out
# buffer to a pipe read(2) by a child into paged-out memory; write/pread and pwritev/preadv
# on a file; send/recv and sendmsg/recvmsg (MSG_WAITALL) on a socketpair; printf lines
# through stdout's own small buffer while the heap pages; printf lines into a paged-out
# stdio buffer (setvbuf in the heap) flushed by fflush and by exit; fwrite of a paged-out
# buffer to stdout and fread back from a file; the same through the _unlocked forms
# (coreutils' sort: "read failed: Bad address"), into never-touched memory too.  Before the shim held syscall
# buffers (libc_shim/shim_vslock.cpp) each got EFAULT (exit 3) or lost output.  The same
# cases under the default backend (userfaultfd) keep passing.  The counters prove the
# buffers went to swap and were held ("syscall buffers held").
source "$(dirname "$0")/lib/scenario_lib.bash" "$1"
need cc cmp
cc -O2 -o "$TMP/bufs" "$(dirname "$0")/src/syscall_buffers.c"

run_case() {  # run_case TRAP MODE MB
  local trap=$1 mode=$2 mb=$3 st=0
  "$TMP/bufs" "$mode" "$mb" >"$TMP/want" 2>"$TMP/want.err" || fail "$mode natively: status $?"
  VMRT_STATS=1 timeout 300 "$VMRUN" --physmem 16M --trap "$trap" -- "$TMP/bufs" "$mode" "$mb" >"$TMP/got" 2>"$TMP/err" || st=$?
  [ $st -eq 0 ] || fail "$mode ($trap): status $st: $(head -c 300 "$TMP/got") $(grep -v '^ ' "$TMP/err" | head -3)"
  cmp -s "$TMP/want" "$TMP/got" || fail "$mode ($trap): stdout differs from native ($(wc -c <"$TMP/got") bytes, want $(wc -c <"$TMP/want")): $(cmp "$TMP/want" "$TMP/got" 2>&1 | head -1)"
  [ "$(grep '^fread' "$TMP/want.err" || true)" = "$(grep '^fread' "$TMP/err" || true)" ] || fail "$mode ($trap): fread's sums differ"
  local out held
  out=$(vmstat_value "$TMP/err" "swap pager pages paged out")
  [ "${out:-0}" -gt 1024 ] || fail "$mode ($trap): ${out:-no} pages paged out: the buffers did not go to swap"
  held=$(vmstat_value "$TMP/err" "syscall buffers held")
  if [ "$trap" = sigsegv ]; then
    [ "${held:-0}" -gt 0 ] || fail "$mode ($trap): no syscall buffer was held"
  fi
  note "ok: $mode $mb MB ($trap): $(wc -c <"$TMP/got") bytes as native; $out pages out, ${held:-0} buffers held"
}

for trap in sigsegv auto; do
  run_case $trap pipe 24
  run_case $trap file 24
  run_case $trap recv 24
  run_case $trap stdio 8
  run_case $trap lines 16
  run_case $trap fwrite 24
  run_case $trap unlocked 24
done

# The real program: coreutils' sort reads its input with fread_unlocked into a buffer it
# has just allocated ("sort: read failed: Bad address" under sigsegv traps before).
need sort shuf md5sum
seq 1 2000000 | shuf --random-source=<(yes) >"$TMP/nums"
want=$(sort -n "$TMP/nums" | md5sum)
for trap in sigsegv auto; do
  got=$("$VMRUN" --physmem 16M --trap "$trap" -- sort -n -S 8M "$TMP/nums" 2>"$TMP/sort.err" | md5sum)
  [ "$got" = "$want" ] || fail "sort -n of 2M lines ($trap): output differs: $(head -c 300 "$TMP/sort.err")"
  note "ok: sort -n of 2M lines under --physmem 16M ($trap) as native"
done
