#!/usr/bin/env bash
# A fork child under paging whose parent dlopen'ed a module with TLS and then had its heap
# paged out: the child's first userfaultfd handler thread is made with pthread_create, which
# touches the old dtv and the module's link_map in the heap from the creating thread itself
# (a cached thread stack's TLS is initialised again).  Only a handler could serve those faults
# and the creating thread was the only one: the child hung for good (python's test_os under
# --physmem 64M hung so).  runtime/uffd_relay hands the creator its own events through a
# signal.  Output as native under both backends; under userfaultfd some child must have been
# relayed events (else this scenario did not reach its subject).
source "$(dirname "$0")/lib/scenario_lib.bash" "$1"
need cc
SRC=$(dirname "$0")/src
printf '__thread char tls_block[20000] = {1, 2, 3};\nint tls_get(int i) { return tls_block[i] + i; }\n' >"$TMP/tls.c"
cc -O2 -shared -fPIC -o "$TMP/libtlsmod.so" "$TMP/tls.c" || fail "cannot build the TLS module"
cc -O2 -pthread -o "$TMP/ftm" "$SRC/fork_tls_modules.c" -ldl || fail "cannot build fork_tls_modules.c"
"$TMP/ftm" "$TMP/libtlsmod.so" 24 6 >"$TMP/want" || fail "the native run failed"
check() {  # check LABEL VMRUN-OPTIONS...: the program's output as native; every process's vmstat -s in $TMP/stats
  local label=$1
  shift
  watched 240 "$VMRUN" --stats --stats-fd 3 "$@" -- "$TMP/ftm" "$TMP/libtlsmod.so" 24 6 >"$TMP/got" 2>"$TMP/err" \
    3>"$TMP/stats" || fail "$label: status $?: $(head -3 "$TMP/err")"
  diff -u "$TMP/want" "$TMP/got" >&2 || fail "$label: output differs from the native run"
  note "ok: $label: $(wc -l <"$TMP/want") lines as native"
}
check "paging (userfaultfd)" --physmem 16M --trap userfaultfd
# The children's reports: some child's creator must have been relayed its own events.
relayed=$(awk '/ userfaultfd events relayed to a handler thread.s creator$/ { if ($1 > 0) n++ } END { print n + 0 }' "$TMP/stats")
[ "$relayed" -gt 0 ] || fail "no child was relayed events: the case no longer reaches the creator's own faults"
note "$relayed of 6 children's handler thread creators were relayed events"
check "paging (sigsegv)" --physmem 16M --trap sigsegv

# A static TLS larger than the machine threads' stacks (1 MiB of __thread data): glibc
# refused to make them (EINVAL: the TLS goes at the stack's top), so under paging the
# process had no userfaultfd handler thread and no pageout daemon and hung at its first
# fault.  The stack now grows until the TLS fits.
cc -O2 -o "$TMP/big_tls" "$SRC/big_tls.c" || fail "cannot build big_tls.c"
"$TMP/big_tls" >"$TMP/want_big" || fail "big_tls: the native run failed"
for trapmode in userfaultfd sigsegv; do
  watched 120 "$VMRUN" --physmem 16M --trap "$trapmode" -- "$TMP/big_tls" >"$TMP/got_big" 2>"$TMP/err_big" ||
    fail "big_tls ($trapmode): status $?: $(head -3 "$TMP/err_big")"
  diff -u "$TMP/want_big" "$TMP/got_big" >&2 || fail "big_tls ($trapmode): output differs from the native run"
  ! grep -q "cannot start" "$TMP/err_big" || fail "big_tls ($trapmode): $(grep "cannot start" "$TMP/err_big" | head -2)"
  note "ok: a 1 MiB static TLS under paging ($trapmode): $(tr '\n' ' ' <"$TMP/got_big")"
done
echo "fork with TLS modules: all passed"
