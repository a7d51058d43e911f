#!/usr/bin/env bash
# Issue 12: no value of any VMRT_* variable makes a program crash or misbehave silently.
# Seeded and reproducible (SEED=n RUNS=n to replay or widen; the failing run prints its
# environment): each run draws, for every variable, unset, a valid value or an invalid one
# (garbage, out of range, empty, overflow, a kmem that does not fit the region), then
#  - under vmrun: a run with any invalid value is refused before the program starts (exit 2,
#    one 'vmrun: VAR=...' line naming a refused variable, nothing on stdout); a run with only
#    valid values prints exactly what the native run prints, with the native status, and
#    no 'vmrt:' warning;
#  - with the runtime alone (LD_PRELOAD, no launcher): every run prints the native output
#    with the native status (a refused value means the default) and each refused variable
#    gets its own 'vmrt: VAR=' warning.
# Valid sizes are ones the workload fits in (physmem is the machine's RAM: a valid but tiny
# one legitimately makes malloc return NULL, see malloc_errors).
source "$(dirname "$0")/lib/scenario_lib.bash" "$1"
need cc
SEED=${SEED:-20261130}
RUNS=${RUNS:-24}
SHIM=$BUILD/lib/libvmrt_malloc.so
cc -O2 -pthread -o "$TMP/work" "$(dirname "$0")/src/env_workload.c"
"$TMP/work" >"$TMP/native.out" 2>"$TMP/native.err" || fail "native workload failed: $(cat "$TMP/native.out")"
grep -q 'child 0 threads ok' "$TMP/native.out" || fail "native workload: $(cat "$TMP/native.out")"

# Pools: valid|invalid values per variable ("<empty>" stands for the empty string).
declare -A VALID INVALID
VALID[VMRT_PHYSMEM]="256M 512M 1G 4G 1073741824 1gb"
INVALID[VMRT_PHYSMEM]="512K 0 <empty> abc 1.5G -1G 17T 99999999999999999999 1GiB G 4_G"
VALID[VMRT_REGION_SIZE]="1G 4G 64G 256G 1t"
INVALID[VMRT_REGION_SIZE]="32M 100M 20T <empty> x 64Q"
VALID[VMRT_KMEM_SIZE]="256M 512M 1G 8G"
INVALID[VMRT_KMEM_SIZE]="1M 15M 9T <empty> kmem 0x100000"
VALID[VMRT_FRAME_CACHE]="0 4M 64M 1G"
INVALID[VMRT_FRAME_CACHE]="-1 17T <empty> lots"
VALID[VMRT_TRAP]="auto sigsegv userfaultfd uffd"
INVALID[VMRT_TRAP]="<empty> SIGSEGV none uffd2"
VALID[VMRT_HEAP]="host frames"
INVALID[VMRT_HEAP]="<empty> Host none"
VALID[VMRT_STATS_FD]="2 9 1048575"
INVALID[VMRT_STATS_FD]="<empty> -1 x 99999999 1e3"
VALID[VMRT_STATS]="0 1 <empty>"
VALID[VMRT_KMEM_DIAG]="0 1 yes"
VALID[VMRT_FAIL]="<empty> malloc:print"
INVALID[VMRT_FAIL]="malloc:evry=3 nosuchpoint malloc:prob=2"
VARS="VMRT_PHYSMEM VMRT_REGION_SIZE VMRT_KMEM_SIZE VMRT_FRAME_CACHE VMRT_TRAP VMRT_HEAP VMRT_STATS_FD VMRT_STATS VMRT_KMEM_DIAG VMRT_FAIL"

pick() { local -a a; read -r -a a <<<"$1"; local v=${a[RANDOM % ${#a[@]}]}; [ "$v" = "<empty>" ] && v=""; printf '%s' "$v"; }
mib() {  # a valid size in MiB
  local v=${1,,}; v=${v%b}
  case $v in *t) echo $(( ${v%t} << 20 ));; *g) echo $(( ${v%g} << 10 ));; *m) echo "${v%m}";;
             *k) echo $(( ${v%k} >> 10 ));; *) echo $(( v >> 20 ));; esac
}

RANDOM=$SEED
refused_runs=0 clean_runs=0
for run in $(seq 1 "$RUNS"); do
  envs=() bad=()
  declare -A val=()
  for v in $VARS; do
    r=$((RANDOM % 8))  # 0-1: unset, 2-6: valid, 7: invalid (when the variable can be invalid)
    if [ $r -le 1 ]; then continue; fi
    if [ $r = 7 ] && [ -n "${INVALID[$v]:-}" ]; then
      x=$(pick "${INVALID[$v]}"); bad+=("$v")
    else
      x=$(pick "${VALID[$v]}")
    fi
    val[$v]=$x
    envs+=("$v=$x")
  done
  [ "${val[VMRT_FAIL]:-}" = malloc:print ] && envs+=("VMRT_FAIL_LOG=/dev/null")
  # A valid kmem that does not fit the (valid or default) region is refused too.
  combo=""
  if [ -n "${val[VMRT_KMEM_SIZE]+x}" ] && [[ " ${bad[*]} " != *" VMRT_KMEM_SIZE "* ]]; then
    region=64G
    [ -n "${val[VMRT_REGION_SIZE]+x}" ] && [[ " ${bad[*]} " != *" VMRT_REGION_SIZE "* ]] && region=${val[VMRT_REGION_SIZE]}
    [ $(( $(mib "${val[VMRT_KMEM_SIZE]}") * 2 )) -gt "$(mib "$region")" ] && combo=VMRT_KMEM_SIZE
  fi
  what="run $run (SEED=$SEED): env ${envs[*]}"
  st=0
  env "${envs[@]}" "$VMRUN" -- "$TMP/work" >"$TMP/v.out" 2>"$TMP/v.err" || st=$?
  if [ ${#bad[@]} -gt 0 ] || [ -n "$combo" ]; then
    refused_runs=$((refused_runs + 1))
    [ $st = 2 ] || fail "$what: invalid ${bad[*]} $combo but vmrun status $st: $(head -3 "$TMP/v.err")"
    [ ! -s "$TMP/v.out" ] || fail "$what: the program ran although refused"
    line=$(head -1 "$TMP/v.err")
    named=0
    for b in "${bad[@]}" $combo; do [[ $line == "vmrun: $b="* || $line == "vmrun: $b:"* ]] && named=1; done
    [ $named = 1 ] || fail "$what: the message does not name a refused variable: $line"
  else
    clean_runs=$((clean_runs + 1))
    [ $st = 0 ] && cmp -s "$TMP/native.out" "$TMP/v.out" ||
      fail "$what: status $st, output '$(cat "$TMP/v.out")' (native '$(cat "$TMP/native.out")'): $(head -5 "$TMP/v.err")"
    ! grep -q '^vmrt: ' "$TMP/v.err" || fail "$what: the runtime warned: $(grep '^vmrt: ' "$TMP/v.err" | head -3)"
  fi
  # The runtime alone: defaults for refused values, one warning each, the native output.
  st=0
  env "${envs[@]}" LD_PRELOAD="$SHIM" "$TMP/work" >"$TMP/r.out" 2>"$TMP/r.err" || st=$?
  [ $st = 0 ] && cmp -s "$TMP/native.out" "$TMP/r.out" ||
    fail "$what: runtime alone: status $st, output '$(cat "$TMP/r.out")': $(head -5 "$TMP/r.err")"
  for b in "${bad[@]}"; do
    case $b in
      VMRT_FAIL) grep -q '^vmrt: VMRT_FAIL rejected' "$TMP/r.err" ;;
      *) grep -q "^vmrt: $b=" "$TMP/r.err" ;;
    esac || fail "$what: runtime alone: no warning for $b: $(head -5 "$TMP/r.err")"
  done
  unset val
done
[ $refused_runs -gt 0 ] && [ $clean_runs -gt 0 ] || fail "SEED=$SEED RUNS=$RUNS drew only one kind of run ($refused_runs refused, $clean_runs clean)"
note "ok: $RUNS random VMRT_* environments (SEED=$SEED): $refused_runs refused by vmrun with the variable named, $clean_runs matched native; the runtime alone always matched native"
