#!/usr/bin/env bash
# Many medium blocks (issue: malloc failed at the host's mapping limit).  200,000 blocks of
# 68-164 KB with random frees, first and last byte of each touched, natively and under
# vmrun: no NULL and no lost data under vmrt, and host mappings bounded by the heap in use
# (at most two per 2 MiB window: the window and the gap after it), read from the program's
# own /proc/self/maps and from vmstat -s.  Before the process heap every medium block was
# its own host mapping: ~100,000 mappings here, past vm.max_map_count (65,530).
set -euo pipefail
build=${1:?build dir}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
bench=$build/bin/medium_bench
[ -x "$bench" ] || { echo "FAIL: $bench not built" >&2; exit 1; }
fail() { echo "FAIL [medium_blocks]: $*" >&2; exit 1; }

# The other two shapes at full scale: 45,000 live 68-164 KB blocks (first and last
# byte touched, every other one freed as it goes) and four rounds of 60,000 blocks of
# 4-160 KB: no NULL, no lost byte, mappings bounded (time and RSS against glibc and jemalloc:
# bench/medium_bench).
for w in live frag; do
  read -r _ _ v_nulls v_maps _ _ < <("$build/bin/vmrun" -- "$bench" --worker $w --scale 10 | grep '^RESULT')
  echo "$w under vmrun: NULLs $v_nulls, peak maps $v_maps"
  [ "$v_nulls" = 0 ] || fail "$w: malloc returned NULL (or a block lost its bytes) $v_nulls times"
  [ "$v_maps" -lt 2000 ] || fail "$w: peak /proc/self/maps lines $v_maps: mappings grow with the number of blocks"
done

read -r _ _ n_nulls n_maps _ _ < <("$bench" --worker many --scale 10 | grep '^RESULT')
"$build/bin/vmrun" --stats --stats-fd 3 -- "$bench" --worker many --scale 10 3>"$work/stats" >"$work/out"
read -r _ _ v_nulls v_maps _ _ < <(grep '^RESULT' "$work/out")
echo "native: NULLs $n_nulls, peak maps $n_maps; vmrun: NULLs $v_nulls, peak maps $v_maps"
[ "$v_nulls" = 0 ] || fail "malloc returned NULL (or a block lost its bytes) $v_nulls times under vmrun"
stat() { grep -E "^ *[0-9]+ $1\$" "$work/stats" | tail -1 | awk '{print $1}'; }
windows=$(stat 'heap windows populated')
peak=$(stat 'host VMAs peak')
[ -n "$windows" ] && [ -n "$peak" ] || { cat "$work/stats" >&2; fail "vmstat -s lacks the heap or VMA counters"; }
# The heap at exit is empty but still populated; the bound is on the peak.
echo "heap windows populated $windows, host VMAs peak $peak"
[ "$v_maps" -le $((n_maps + 2 * windows + 64)) ] || fail "peak /proc/self/maps lines $v_maps > native $n_maps + 2 x $windows windows + 64"
[ "$peak" -le $((2 * windows + 64)) ] || fail "host VMAs peak $peak > 2 x $windows windows + 64"
[ "$v_maps" -lt 2000 ] || fail "peak /proc/self/maps lines $v_maps: mappings grow with the number of blocks"
# Freed memory goes back to the host in batches: one process_madvise for many ranges (Linux
# 6.15's PIDFD_SELF) where a madvise each cost a TLB shootdown each.  Unbatched, every range
# is its own call; on an older kernel vmrt falls back to that: said, not failed.
ranges=$(stat 'host memory discards'); calls=$(stat 'host memory discard calls \(batched\)')
[ -n "$ranges" ] && [ -n "$calls" ] || fail "vmstat -s lacks the discard counters"
echo "host memory: $ranges ranges discarded in $calls calls"
[ "$ranges" -ge 100 ] || fail "only $ranges ranges discarded: the workload no longer gives memory back?"
kv=$(uname -r | awk -F. '{print $1 * 1000 + $2}')
if [ "$calls" -ge "$ranges" ]; then
  [ "$kv" -lt 6015 ] || fail "discards not batched on Linux $(uname -r): $calls calls for $ranges ranges"
  echo "NOTE: Linux $(uname -r) has no process_madvise for the calling process: discards not batched ($calls calls)"
fi
