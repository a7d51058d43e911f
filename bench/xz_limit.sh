#!/bin/bash
# xz_limit.sh — xz -9 of a 2 MB file natively, natively in a memory cgroup at LIMIT with a
# swap file (cgroup v1, as paging_bench's host side), and under vmrun --physmem LIMIT: what
# part of vmrt's time under a small limit is the workload's own paging and what is vmrt's.
# Root only (cgroup, swapon).  Usage: bench/xz_limit.sh BUILD_DIR [LIMIT=32M] [REPS=1]
# Prints one line per run and `metric xz_<side>_s` lines (medians).
set -u
build=${1:?usage: xz_limit.sh BUILD_DIR [LIMIT] [REPS]}
limit=${2:-32M}
reps=${3:-1}
vmrun=$build/bin/vmrun
[ -x "$vmrun" ] || { echo "no $vmrun" >&2; exit 2; }
work=$(mktemp -d /var/tmp/xz_limit.XXXXXX)
cg=/sys/fs/cgroup/memory/xz_limit.$$
swap=$work/swap
cleanup() {
  swapoff "$swap" 2>/dev/null
  [ -d "$cg" ] && rmdir "$cg" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
# 2 MB of text that compresses (as the scenario's input): python's random words.
python3 - "$work/in" <<'PY'
import random, sys
random.seed(7)
words = [''.join(random.choice('abcdefghijklmnopqrstuvwxyz') for _ in range(random.randint(2, 9))) for _ in range(5000)]
with open(sys.argv[1], 'w') as f:
    n = 0
    while n < 2 * 1024 * 1024:
        line = ' '.join(random.choice(words) for _ in range(12)) + '\n'
        f.write(line); n += len(line)
PY
want=$(xz -9 -c "$work/in" | sha256sum | cut -d' ' -f1)
host_cg=1
if [ "$(id -u)" != 0 ] || [ ! -d /sys/fs/cgroup/memory ]; then echo "SKIP host cgroup run: not root or no cgroup v1 memory"; host_cg=0; fi
if [ $host_cg = 1 ]; then
  fallocate -l 320M "$swap" && chmod 600 "$swap" && mkswap -q "$swap" >/dev/null || host_cg=0
fi
run() {  # side cmd...: prints seconds, checks the output (status 1: it differs)
  local side=$1; shift
  local t0 t1 sum
  t0=$(date +%s.%N)
  sum=$("$@" | sha256sum | cut -d' ' -f1)
  t1=$(date +%s.%N)
  local s; s=$(echo "$t1 - $t0" | bc)
  [ "$sum" = "$want" ] || { echo "$side: OUTPUT MISMATCH" >&2; return 1; }
  echo "$side $s"
}
oom_retries=0
declare -A all
for r in $(seq 1 "$reps"); do
  line=$(run native xz -9 -c "$work/in") || exit 1; echo "rep $r $line"; all[native]+="${line#* } "
  if [ $host_cg = 1 ]; then
    # cgroup v1 sometimes OOM-kills a process that swaps hard rather than wait: retried
    # (up to 4 times, counted), as paging_bench does.
    for try in 1 2 3 4 5; do
      mkdir "$cg" && echo "$limit" > "$cg/memory.limit_in_bytes" && swapon "$swap"
      line=$(run host_cg bash -c "echo \$\$ > $cg/cgroup.procs && exec xz -9 -c $work/in") && ok=1 || ok=0
      peak=$(( $(cat $cg/memory.max_usage_in_bytes) >> 20 ))
      swapoff "$swap"; rmdir "$cg"
      [ $ok = 1 ] && break
      oom_retries=$((oom_retries + 1))
    done
    [ $ok = 1 ] || { echo "host_cg: no run finished (OOM kills)" >&2; exit 1; }
    echo "rep $r $line  peak $peak MiB"
    all[host_cg]+="${line#* } "
  fi
  line=$(VMRT_STATS=1 VMRT_STATS_FD=3 run vmrt "$vmrun" --physmem "$limit" -- xz -9 -c "$work/in" 3>"$work/stats") || exit 1; echo "rep $r $line  $(grep -E 'swap pager pages paged in$|minor faults continued' "$work/stats" | tr -s ' ' | tr '\n' ';')"
  all[vmrt]+="${line#* } "
done
for side in native host_cg vmrt; do
  [ -n "${all[$side]:-}" ] || continue
  med=$(echo ${all[$side]} | tr ' ' '\n' | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
  echo "metric xz_${side}_s $med"
  eval "med_$side=$med"
done
echo "host OOM kills retried: $oom_retries"
# Ratios (> 1: vmrt slower than that side).
echo "metric xz_vmrt_over_native $(echo "scale=3; $med_vmrt / $med_native" | bc)"
[ -n "${med_host_cg:-}" ] && echo "metric xz_vmrt_over_host_cg $(echo "scale=3; $med_vmrt / $med_host_cg" | bc)"
exit 0
