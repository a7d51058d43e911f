#!/usr/bin/env bash
# Big blocks touched sparsely do not pile up resident pages (allocsuite's large_blocks: four
# live blocks of 5-25 MB, each written in 4 pages, freed and replaced, 400 times at scale 4).
# kmem keeps freed large blocks in its cache and cuts the next ones from the same runs; the
# pages each block touched stayed resident there until the decay time: 1.4 MB more peak RSS
# per 100 blocks (1.24x jemalloc's at allocsuite's scale 1).  The sweep of sparse cached runs
# bounds it: vmrt's peak above its own empty run stays within 1.5 MB of glibc's (glibc maps
# and unmaps each block).  Peaks are the worker's own VmHWM, medians of three.
source "$(dirname "$0")/lib/scenario_lib.bash" "$1"
SUITE=$BUILD/bin/allocsuite
[ -x "$SUITE" ] || fail "allocsuite not built: $SUITE"
SHIM=$BUILD/lib/libvmrt_malloc.so

# hwm PRELOAD WORKLOAD: the worker's peak RSS in kB (RESULT's fourth field), median of 3.
hwm() {
  local i v=()
  for i in 1 2 3; do
    v+=("$(LD_PRELOAD=$1 "$SUITE" --worker "$2" --scale 4 | awk '/^RESULT/ {print $4}')")
  done
  printf '%s\n' "${v[@]}" | sort -n | sed -n 2p
}
g=$(hwm "" large_blocks); g0=$(hwm "" noop)
v=$(hwm "$SHIM" large_blocks); v0=$(hwm "$SHIM" noop)
[[ $g =~ ^[0-9]+$ && $g0 =~ ^[0-9]+$ && $v =~ ^[0-9]+$ && $v0 =~ ^[0-9]+$ ]] || fail "no RESULT peak: glibc $g/$g0, vmrt $v/$v0"
note "peak RSS kB: glibc $g (empty run $g0), vmrt $v (empty run $v0)"
[ $((v - v0)) -le $((g - g0 + 1536)) ] ||
  fail "vmrt's large_blocks peak is $((v - v0)) kB above its empty run, glibc's $((g - g0)) kB: freed blocks' pages pile up"

# The sweep is what bounds it: it ran and gave pages back (vmstat -m's large cache line).
"$VMRUN" --stats --stats-fd 3 -- "$SUITE" --worker large_blocks --scale 4 3>"$TMP/stats" >/dev/null
line=$(grep '^kmem: large cache' "$TMP/stats") || fail "vmstat -m has no large cache line"
note "$line"
read -r sweeps given < <(sed -E 's/.*; ([0-9]+) sweeps gave back ([0-9]+) resident pages.*/\1 \2/' <<<"$line")
[ "${sweeps:-0}" -gt 0 ] && [ "${given:-0}" -gt 0 ] || fail "the large cache was never swept or gave nothing back: $line"
echo "PASS [$SCENARIO]"
