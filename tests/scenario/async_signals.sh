#!/usr/bin/env bash
# A program's asynchronous signal handlers run as natively while vmrt holds its locks in the
# same thread (vm/vm_critical.h, runtime/rt_signal.h).  bash's SIGCHLD handler, run while
# bash grew a 12 MB string under --physmem 8M, touched paged-out heap inside the VM lock's
# critical section: a CI run panicked ("faulted ... while holding the VM lock", scenario
# fd_games) and lost a command substitution's output (scenario paging, "bash forks").
#   1. A 1 ms timer whose handler reads paged-out heap, while the program maps and mallocs
#      under --physmem 8M, both trap backends: every byte read right, and signals were
#      really owed (the counter says the case met its subject).
#   2. What a program sees of sigaction, signal(), SA_SIGINFO, SA_RESETHAND, SA_NODEFER,
#      masks, SIG_IGN, fork and exec: the same lines as natively.
source "$(dirname "$0")/lib/scenario_lib.bash" "$1"
need cc

src=$(dirname "$0")/src
cc -O2 -o "$TMP/signal_in_vm" "$src/signal_in_vm.c"
cc -O2 -o "$TMP/signal_semantics" "$src/signal_semantics.c"

for trap in auto sigsegv; do
  got=$(VMRT_STATS=1 watched 300 "$VMRUN" --physmem 8M --trap "$trap" -- "$TMP/signal_in_vm" 2>"$TMP/err") ||
    fail "timer handler on paged-out heap ($trap): status $? $(grep -v '^ ' "$TMP/err" | head -3)"
  [ "$got" = "ok 1" ] || fail "timer handler on paged-out heap ($trap): got '$got'"
  expect_vmstat "$TMP/err" "signals deferred out of vmrt locks" -gt 0 "timer handler ($trap)"
  expect_vmstat "$TMP/err" "swap pager pages paged in" -gt 100 "timer handler ($trap): the heap did not page"
  note "ok: timer handler reading paged-out heap ($trap): $(vmstat_value "$TMP/err" "signals deferred out of vmrt locks") signals owed and delivered"
done

want=$("$TMP/signal_semantics")
for trap in auto sigsegv; do
  got=$("$VMRUN" --trap "$trap" -- "$TMP/signal_semantics") || fail "sigaction semantics ($trap): status $?"
  [ "$got" = "$want" ] || fail "sigaction semantics ($trap) differ from native: $(diff <(echo "$want") <(echo "$got"))"
done
got=$("$VMRUN" --physmem 8M -- "$TMP/signal_semantics") || fail "sigaction semantics (physmem 8M): status $?"
[ "$got" = "$want" ] || fail "sigaction semantics (physmem 8M) differ from native: $(diff <(echo "$want") <(echo "$got"))"
note "ok: sigaction/signal semantics match native ($(echo "$want" | wc -l) checks)"
