#!/usr/bin/env bash
# Stacks a program gives the kernel in memory it allocated itself, used while the heap is
# paged out: thread stacks (pthread_attr_setstack over malloc'd and mmap'd memory; joined and
# detached threads) and alternate signal stacks (sigaltstack over malloc'd memory, replaced,
# auto-disarmed, on a second thread, disabled).  The kernel writes these by itself (a
# signal frame, a thread's rseq area and tid), which under the sigsegv backend raises no
# signal vmrt could serve: a thread on a malloc'd stack died before its first instruction,
# and a malloc'd alternate stack (gdb's) killed the process with SIGSEGV si_code SI_KERNEL
# once paging began.  Under userfaultfd a thread whose descriptor was paged out at its exit
# left pthread_join asleep forever.  They are held now (runtime/rt_vslock_keep.h,
# libc_shim/shim_thread.cpp, libc_shim/shim_signal_stack.cpp).  And a thread on such a
# stack (or an alternate one, or a coroutine's) that took the VM lock faulted on a stack page
# under it, where no handler could serve it (runtime/rt_lock_stack.h; src/lock_stack.c).  Output as native under both
# backends; and gdb's own session under --physmem 64M --trap sigsegv.
source "$(dirname "$0")/lib/scenario_lib.bash" "$1"
need cc
cc -O2 -pthread -o "$TMP/ps" "$(dirname "$0")/src/program_stacks.c" || fail "cannot build program_stacks.c"
"$TMP/ps" 24 >"$TMP/want" || fail "the native run failed"
SHIM=$BUILD/lib/libvmrt_malloc.so
check() {  # check LABEL CMD...: the program's output as native
  local label=$1
  shift
  watched 300 "$@" "$TMP/ps" 24 >"$TMP/got" 2>"$TMP/err" || fail "$label: status $?: $(head -3 "$TMP/err")"
  diff -u "$TMP/want" "$TMP/got" >&2 || fail "$label: output differs from the native run"
  note "ok: $label: $(wc -l <"$TMP/want") lines as native"
}
check "paging (sigsegv)" "$VMRUN" --physmem 16M --trap sigsegv --
check "paging (userfaultfd)" "$VMRUN" --physmem 16M --trap userfaultfd --
check "heap of frames (sigsegv)" env VMRT_HEAP=frames VMRT_TRAP=sigsegv LD_PRELOAD="$SHIM"
check "no paging (sigsegv)" "$VMRUN" --trap sigsegv --
# Calls into vmrt from a thread stack and an alternate stack whose pages below the frame
# were just dropped, and from coroutines on fresh malloc'd stacks: the VM lock's holder
# makes its stack resident before it takes the lock (each trap backend).
cc -O2 -pthread -o "$TMP/lock_stack" "$(dirname "$0")/src/lock_stack.c" || fail "cannot build lock_stack.c"
"$TMP/lock_stack" >"$TMP/ls.want" || fail "lock_stack: the native run failed"
for trap in userfaultfd sigsegv; do
  watched 120 "$VMRUN" --physmem 64M --trap $trap -- "$TMP/lock_stack" >"$TMP/ls.got" 2>"$TMP/err" ||
    fail "lock_stack ($trap): status $?: $(head -3 "$TMP/err")"
  diff -u "$TMP/ls.want" "$TMP/ls.got" >&2 || fail "lock_stack ($trap): output differs from the native run"
  note "ok: lock_stack ($trap): $(tr '\n' ' ' <"$TMP/ls.got")"
done
# gdb allocates its 13.5 KB alternate stack with malloc.
if command -v gdb >/dev/null; then
  export TERM=xterm
  want_rc=0 rc=0
  gdb -batch -ex run -ex bt --args /bin/true >"$TMP/gdb.want" 2>&1 || want_rc=$?
  watched 300 "$VMRUN" --physmem 64M --trap sigsegv -- gdb -batch -ex run -ex bt --args /bin/true >"$TMP/gdb.got" 2>&1 ||
    rc=$?
  [ "$rc" = "$want_rc" ] || fail "gdb: status $rc, native $want_rc: $(tail -3 "$TMP/gdb.got")"
  sed -i 's/process [0-9]*/process N/' "$TMP/gdb.want" "$TMP/gdb.got"
  diff -u "$TMP/gdb.want" "$TMP/gdb.got" >&2 || fail "gdb: session differs from the native one"
  note "ok: gdb -batch under --physmem 64M --trap sigsegv, as native (status $rc)"
else
  note "gdb not installed: its case skipped"
fi
echo "program stacks: all passed"
