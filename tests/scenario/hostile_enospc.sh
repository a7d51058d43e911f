#!/usr/bin/env bash
# Issue 12: physmem's memfd cannot grow (ENOSPC from the host).  A memfd lives on the
# kernel's internal shmem mount, which has no size limit of its own: the host says ENOSPC
# for it when shmem accounting refuses (vm.overcommit_memory=2) or, as here, when a
# seccomp filter answers ENOSPC to ftruncate/fallocate/pwrite64 (src/enospc_memfd.c) — a
# machine-wide overcommit change would hit every other process, so the filter stands in.
# (A refusal at page-fault time is the host's SIGBUS: runtime/trap.cpp passes it to the
# program as SIGBUS/BUS_ADRERR, see fail_frame_sigbus.)
#  - before boot: with a heap of frames (VMRT_HEAP=frames: boot makes the memfd) vmrt cannot
#    size its physmem: stage 0 (kmem over host pages) with one message naming ENOSPC; with
#    the default host heap no memfd is made until a frame is needed, so nothing is refused;
#    output and status are the native ones either way;
#  - after boot: allocation carries on; a fork, whose child needs a new physmem memfd,
#    works or fails cleanly with -1/ENOMEM; the parent's memory stays intact.
source "$(dirname "$0")/lib/scenario_lib.bash" "$1"
need cc bash python3
SHIM=$BUILD/lib/libvmrt_malloc.so
cc -O2 -o "$TMP/en" "$(dirname "$0")/src/enospc_memfd.c"
"$TMP/en" exec true 2>/dev/null || { note "SKIP: seccomp filters are not available here"; exit 0; }

ALLOWED='^vmrt: (cannot create the physmem memfd: ENOSPC|VM boot failed \(see above\): malloc runs on kmem over [0-9]+ MiB of host pages \(stage 0; no vmspaces\))$'
for prog in python bash; do
  if [ $prog = python ]; then set -- python3 -c 'print(sum(range(10**6)))'; else set -- bash -c 'echo hi; (echo sub)'; fi
  a=$(timeout 60 "$TMP/en" exec "$@" 2>/dev/null; echo "status $?")
  b=$(VMRT_HEAP=frames LD_PRELOAD=$SHIM timeout 60 "$TMP/en" exec "$@" 2>"$TMP/err"; echo "status $?")
  [ "$a" = "$b" ] || fail "ENOSPC before boot, $prog: native '$a', vmrt '$b' $(cat "$TMP/err")"
  grep -q 'ENOSPC' "$TMP/err" || fail "ENOSPC before boot, $prog: no message naming ENOSPC: $(cat "$TMP/err")"
  if grep -Ev "$ALLOWED" "$TMP/err" | grep -q .; then fail "ENOSPC before boot, $prog: unexpected stderr: $(cat "$TMP/err")"; fi
  b=$(LD_PRELOAD=$SHIM timeout 60 "$TMP/en" exec "$@" 2>"$TMP/err"; echo "status $?")
  [ "$a" = "$b" ] || fail "ENOSPC before boot, host heap, $prog: native '$a', vmrt '$b' $(cat "$TMP/err")"
  if grep -Ev "$ALLOWED" "$TMP/err" | grep -q .; then fail "ENOSPC before boot, host heap, $prog: unexpected stderr: $(cat "$TMP/err")"; fi
done
"$TMP/en" inproc >"$TMP/n.out" 2>&1 || fail "inproc natively: status $?"
for trap in sigsegv userfaultfd; do
  st=0
  timeout 60 "$VMRUN" --trap $trap -- "$TMP/en" inproc >"$TMP/v.out" 2>"$TMP/v.err" || st=$?
  [ $st = 0 ] || fail "inproc --trap $trap: status $st $(cat "$TMP/v.err")"
  grep -qx 'allocations 2000/2000' "$TMP/v.out" && grep -Eqx 'fork: (child status 0|-1 ENOMEM)' "$TMP/v.out" &&
    grep -qx 'parent intact' "$TMP/v.out" || fail "inproc --trap $trap: $(cat "$TMP/v.out") $(cat "$TMP/v.err")"
  note "after boot, --trap $trap: $(tr '\n' ' ' <"$TMP/v.out")"
done
note "ok: a memfd that cannot grow gives stage 0 before boot and a clean fork failure after"
