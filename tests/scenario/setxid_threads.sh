#!/usr/bin/env bash
# Privilege dropping with vmrt's machine threads present (paging: userfaultfd handlers and
# the pageout daemon).  glibc's set*id calls make every thread of the process repeat the
# call and abort when the results differ; capabilities are per thread and not repeated.
# `setpriv --reuid U --regid G --init-groups` (keep capabilities across setuid, raise
# CAP_SETGID, setresgid) aborted under --physmem: the machine threads had lost the
# capability (runtime/rt_creds.h).  Each way of dropping privileges must give the native
# results, and afterwards every thread (vmrt's too) must hold exactly the program's
# credentials: no machine thread may keep a capability the program gave up.
source "$(dirname "$0")/lib/scenario_lib.bash" "$1"
need cc setpriv
if [ "$(id -u)" != 0 ]; then
  note "SKIP: dropping privileges needs root (uid $(id -u))"
  exit 0
fi
cc -O2 -o "$TMP/sx" "$(dirname "$0")/src/setxid_threads.c" || fail "cannot build setxid_threads.c"
for trap in userfaultfd sigsegv; do
  for how in plain keepcaps dropped; do
    "$TMP/sx" "$how" >"$TMP/native" 3>/dev/null 2>&1 || fail "$how: the native run failed: $(cat "$TMP/native")"
    "$VMRUN" --physmem 64M --trap "$trap" -- "$TMP/sx" "$how" >"$TMP/vmrt" 3>"$TMP/threads" 2>&1 ||
      fail "$how ($trap): status $? under vmrun: $(cat "$TMP/vmrt")"
    diff -u "$TMP/native" "$TMP/vmrt" >&2 || fail "$how ($trap): results or credentials differ from the native run"
    [ "$(cat "$TMP/threads")" -gt 1 ] ||
      fail "$how ($trap): only $(cat "$TMP/threads") thread under vmrun: no machine thread took part, nothing was tested"
    note "ok: $how ($trap), $(cat "$TMP/threads") threads agree: $(grep -c '^threads hold' "$TMP/vmrt") credential set"
  done
  # The machine threads start late, as on a loaded machine (fail point thread_start): the
  # program's set*id calls must still find each of them marked as vmrt's.  Before start
  # returned only once the thread was marked, the pageout daemon took setresgid as a
  # program thread without the raised capability, and glibc aborted (two loaded CI runs).
  VMRT_FAIL='thread_start:sleep=300ms' VMRT_FAIL_LOG="$TMP/fail.log" \
    "$VMRUN" --physmem 64M --trap "$trap" -- "$TMP/sx" keepcaps >"$TMP/vmrt" 3>"$TMP/threads" 2>&1 ||
    fail "keepcaps ($trap), machine threads starting late: status $? under vmrun: $(cat "$TMP/vmrt")"
  "$TMP/sx" keepcaps >"$TMP/native" 3>/dev/null 2>&1
  diff -u "$TMP/native" "$TMP/vmrt" >&2 || fail "keepcaps ($trap), machine threads starting late: differs from the native run"
  grep -q "delay thread_start" "$TMP/fail.log" || fail "keepcaps ($trap): no machine thread start was delayed: nothing was tested"
  note "ok: keepcaps ($trap) with every machine thread starting 300 ms late"
  # The real program that showed it (the default backend: as nobody, the program it
  # execs may not have userfaultfd, which --trap userfaultfd would warn about).
  [ "$trap" = sigsegv ] && topt=(--trap sigsegv) || topt=()
  "$VMRUN" --physmem 64M "${topt[@]}" -- setpriv --reuid nobody --regid nogroup --init-groups -- id -u >"$TMP/out" 2>&1 ||
    fail "setpriv --init-groups ($trap): status $? under vmrun: $(cat "$TMP/out")"
  [ "$(cat "$TMP/out")" = "$(id -u nobody)" ] || fail "setpriv ($trap): $(cat "$TMP/out")"
done
note "ok: setpriv --reuid --regid --init-groups under --physmem, both backends"
# setgroups with its list paged out, and in a fork child that has not faulted the list's page
# in: every thread (vmrt's too) reads the list in its own call, and the process hung when
# the machine threads' reads faulted with no handler thread free (libc_shim/shim_creds.cpp).
cc -O2 -o "$TMP/sg" "$(dirname "$0")/src/setgroups_paged.c" || fail "cannot build setgroups_paged.c"
"$TMP/sg" >"$TMP/native" 2>&1 || fail "setgroups: the native run failed: $(cat "$TMP/native")"
for trap in userfaultfd sigsegv; do
  timeout 120 "$VMRUN" --physmem 64M --trap "$trap" -- "$TMP/sg" >"$TMP/vmrt" 2>&1 ||
    fail "setgroups with its list paged out ($trap): status $? (124: hung) under vmrun: $(cat "$TMP/vmrt")"
  diff -u "$TMP/native" "$TMP/vmrt" >&2 || fail "setgroups ($trap): differs from the native run"
  note "ok: setgroups with its list paged out and in a fork child ($trap)"
done
