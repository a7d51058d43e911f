#!/usr/bin/env bash
# A program under a seccomp filter that denies memfd_create, userfaultfd or mremap (issue 12),
# compared with the same program natively:
#  - filter installed before the first malloc (then exec): vmrt cannot build the VM and
#    runs malloc on kmem over host pages (stage 0) with one message; the program's output
#    and status are the native ones.  bash's first malloc happens inside setlocale(): the
#    message must not call strerror (it takes the locale lock: the shell hung forever).
#  - filter installed after vmrt booted: malloc and fork either work as natively or fail
#    cleanly (NULL/ENOMEM, fork -1/ENOMEM) and the parent's memory stays intact.
source "$(dirname "$0")/lib/scenario_lib.bash" "$1"
need cc bash python3
SHIM=$BUILD/lib/libvmrt_malloc.so
cc -O2 -o "$TMP/sd" "$(dirname "$0")/src/seccomp_deny.c"
"$TMP/sd" memfd_create exec true 2>/dev/null || { note "SKIP: seccomp filters are not available here"; exit 0; }

STAGE0='^vmrt: (cannot create the physmem memfd: EPERM|cannot duplicate direct-map pages \(mremap: EPERM\)|VM boot failed \(see above\): malloc runs on kmem over [0-9]+ MiB of host pages \(stage 0; no vmspaces\))$'
for sc in memfd_create userfaultfd mremap; do
  for prog in python bash; do
    if [ $prog = python ]; then set -- /usr/bin/python3 -c 'print(sum(range(10**6)))'; else set -- bash -c 'echo hi; (echo sub)'; fi
    a=$(LANG=C.UTF-8 timeout 60 "$TMP/sd" $sc exec "$@" 2>/dev/null; echo "status $?")
    b=$(LANG=C.UTF-8 LD_PRELOAD=$SHIM timeout 60 "$TMP/sd" $sc exec "$@" 2>"$TMP/err"; echo "status $?")
    [ "$a" = "$b" ] || fail "$sc denied before boot, $prog: native '$a', vmrt '$b' $(cat "$TMP/err")"
    if grep -Ev "$STAGE0" "$TMP/err" | grep -q .; then fail "$sc, $prog: unexpected stderr: $(cat "$TMP/err")"; fi
  done
  "$TMP/sd" $sc inproc >"$TMP/n.out" 2>&1 || fail "$sc inproc natively: status $?"
  st=0
  timeout 60 "$VMRUN" -- "$TMP/sd" $sc inproc >"$TMP/v.out" 2>"$TMP/v.err" || st=$?
  [ $st = 0 ] || fail "$sc inproc under vmrt: status $st $(cat "$TMP/v.err")"
  grep -qx 'parent intact' "$TMP/v.out" || fail "$sc inproc: $(cat "$TMP/v.out")"
  case $sc in
    userfaultfd) cmp -s "$TMP/n.out" "$TMP/v.out" || fail "$sc inproc: $(diff "$TMP/n.out" "$TMP/v.out")" ;;
    memfd_create)  # the child's memfd cannot be made: a clean fork failure
      grep -qx 'allocations 2000/2000' "$TMP/v.out" && grep -Eqx 'fork: (child status 0|-1 ENOMEM)' "$TMP/v.out" ||
        fail "$sc inproc: $(cat "$TMP/v.out")" ;;
    mremap)  # frames cannot be mapped any more: malloc returns NULL (documented), no crash
      grep -Eqx 'allocations [0-9]+/2000' "$TMP/v.out" && grep -Eqx 'fork: (child status 0|-1 ENOMEM)' "$TMP/v.out" ||
        fail "$sc inproc: $(cat "$TMP/v.out")" ;;
  esac
  note "$sc: $(tr '\n' ' ' <"$TMP/v.out")"
done
# process_madvise denied: vmrt's batched discards of freed heap ranges fall back to one
# madvise per range (the first refusal turns batching off); the program sees nothing.
bench=$BUILD/bin/medium_bench
st=0; timeout 120 env LD_PRELOAD="$SHIM" VMRT_STATS=1 "$TMP/sd" process_madvise exec "$bench" --worker many --scale 2 >"$TMP/pm.out" 2>"$TMP/pm.err" || st=$?
[ $st = 0 ] || fail "process_madvise denied: status $st $(grep vmrt "$TMP/pm.err" | head -3)"
read -r _ _ nulls _ < <(grep '^RESULT' "$TMP/pm.out") || fail "process_madvise denied: no result: $(cat "$TMP/pm.out")"
[ "$nulls" = 0 ] || fail "process_madvise denied: $nulls NULLs or lost blocks"
ranges=$(vmstat_value "$TMP/pm.err" "host memory discards"); calls=$(vmstat_value "$TMP/pm.err" "host memory discard calls (batched)")
[ "${ranges:-0}" -ge 100 ] && [ "$calls" -ge "$ranges" ] || fail "process_madvise denied: ${calls:-no} calls for ${ranges:-no} ranges (no fallback to madvise?): $(grep -c . "$TMP/pm.err") lines of stderr"
note "process_madvise denied: $ranges ranges discarded by $calls calls (madvise each), the program unaffected"
note "ok: seccomp denials before and after boot"
