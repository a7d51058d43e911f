#!/usr/bin/env bash
# Memory touched with every signal blocked, under paging: libraries block all signals in
# threads that must not take them (liblzma's encoder threads inherit a full mask from
# pthread_create), and under the sigsegv backend each first touch or page-in of vmrt
# memory is a SIGSEGV that vmrt serves; Linux kills a thread that faults with SIGSEGV
# blocked.  `xz -T2` died with SIGSEGV at its first thread under `--physmem 64M --trap
# sigsegv`.  The shim's pthread_sigmask/sigprocmask never block SIGSEGV/SIGBUS for real
# once vmrt's handler is installed, and report the program's own view back
# (libc_shim/shim_signal.cpp, "Masks"); a handler installed with every signal in its
# sa_mask runs with those two unblocked (runtime/rt_signal.cpp, kernel_action).  Checksums and the masks the program reads back
# must equal the native run's; the vmstat counters prove the faults were served.
source "$(dirname "$0")/lib/scenario_lib.bash" "$1"
need cc xz md5sum
cc -O2 -pthread -o "$TMP/bf" "$(dirname "$0")/src/blocked_faults.c" || fail "cannot build blocked_faults.c"
"$TMP/bf" 32 >"$TMP/want" || fail "the native run failed"
for trap in sigsegv userfaultfd; do
  VMRT_STATS=1 "$VMRUN" --physmem 16M --trap "$trap" -- "$TMP/bf" 32 >"$TMP/got" 2>"$TMP/err" ||
    fail "$trap: status $? under vmrun: $(grep -v '^ ' "$TMP/err" | head -3)"
  diff -u "$TMP/want" "$TMP/got" >&2 || fail "$trap: sums or masks differ from the native run"
  faults=$(vmstat_value "$TMP/err" "$trap faults resolved")
  [ "${faults:-0}" -gt 1000 ] || fail "$trap: ${faults:-no} '$trap faults resolved': the heap did not fault, nothing was tested"
  note "ok: $trap: $(wc -l <"$TMP/want") lines as native, $faults faults served"
done
# The real program: liblzma's threads.
seq 1 400000 >"$TMP/in"
want=$(md5sum <"$TMP/in")
for trap in sigsegv userfaultfd; do
  "$VMRUN" --physmem 16M --trap "$trap" -- xz -T2 -3 -c "$TMP/in" >"$TMP/in.xz" 2>"$TMP/xz.err" ||
    fail "xz -T2 ($trap): status $?: $(head -c 300 "$TMP/xz.err")"
  [ "$(xz -dc "$TMP/in.xz" | md5sum)" = "$want" ] || fail "xz -T2 ($trap): the output does not decompress to the input"
  note "ok: xz -T2 under --physmem 16M ($trap)"
done
