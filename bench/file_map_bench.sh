#!/usr/bin/env bash
# file_map_bench.sh — file mappings under vmrun against native, interleaved in the same run
# (issue 6, "Performance"): first touch of every page of a 64 MiB file mapped shared / private,
# read / written (bench/file_touch.c; the file is in the page cache), natively, under vmrun,
# and under vmrun --physmem 256M (private mappings are then the vnode pager's pageable
# memory); and the sqlite3 mmap-mode workload of scenario mmap_programs (a 77 MB database,
# PRAGMA mmap_size) natively and under vmrun.  Medians of N runs.
#   bench/file_map_bench.sh [BUILD_DIR] [--reps N]
# Last lines: `metric touch_<kind>_<config>_ratio X` (ns/page vmrun / native) and
# `metric sqlite_mmap_time_ratio X`.
set -euo pipefail
src=$(cd "$(dirname "$0")" && pwd)
build=$(cd "${1:-build}" && pwd)
reps=5
[ "${2:-}" = --reps ] && reps=${3:?--reps needs a value}
vmrun=$build/bin/vmrun
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LC_ALL=C
work=$(mktemp -d /tmp/vmrt-filemap.XXXXXX)
trap 'rm -rf "$work"' EXIT
cd "$work"
cc -O2 -o file_touch "$src/file_touch.c"
head -c $((64 << 20)) /dev/urandom >f.bin
cat f.bin >/dev/null  # in the page cache

median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
declare -A res
configs=(native vmrun physmem)
for kind in shared_read shared_write private_read private_write; do
  for r in $(seq 1 "$reps"); do
    for c in "${configs[@]}"; do
      case $c in
        native) v=$(./file_touch f.bin ${kind%_*} ${kind#*_} | cut -d' ' -f1) ;;
        vmrun) v=$("$vmrun" -- ./file_touch f.bin ${kind%_*} ${kind#*_} | cut -d' ' -f1) ;;
        physmem) v=$("$vmrun" --physmem 256M -- ./file_touch f.bin ${kind%_*} ${kind#*_} | cut -d' ' -f1) ;;
      esac
      res[$kind.$c]+="$v "
    done
  done
done
printf '%-14s %10s %10s %10s   (ns per page, median of %d)\n' kind native vmrun physmem "$reps"
for kind in shared_read shared_write private_read private_write; do
  n=$(echo ${res[$kind.native]} | tr ' ' '\n' | median)
  v=$(echo ${res[$kind.vmrun]} | tr ' ' '\n' | median)
  p=$(echo ${res[$kind.physmem]} | tr ' ' '\n' | median)
  printf '%-14s %10s %10s %10s\n' "$kind" "$n" "$v" "$p"
  echo "metric touch_${kind}_vmrun_ratio $(awk "BEGIN{printf \"%.2f\", $v / $n}")" >>metrics
  echo "metric touch_${kind}_physmem_ratio $(awk "BEGIN{printf \"%.2f\", $p / $n}")" >>metrics
done

# sqlite3 in mmap mode on a database larger than 64 MB.
sql=$src/../tests/scenario/src/sqlite_mmap.sql  # (scenario mmap_programs runs it too)
tn="" tv=""
for r in $(seq 1 "$reps"); do
  rm -f t.db*; s=$(date +%s.%N); sqlite3 t.db <"$sql" >/dev/null; e=$(date +%s.%N); tn+="$(awk "BEGIN{print $e - $s}") "
  rm -f t.db*; s=$(date +%s.%N); "$vmrun" -- sqlite3 t.db <"$sql" >/dev/null; e=$(date +%s.%N); tv+="$(awk "BEGIN{print $e - $s}") "
done
n=$(echo $tn | tr ' ' '\n' | median) v=$(echo $tv | tr ' ' '\n' | median)
printf 'sqlite mmap workload: native %.2f s, vmrun %.2f s (median of %d)\n' "$n" "$v" "$reps"
echo "metric sqlite_mmap_time_ratio $(awk "BEGIN{printf \"%.2f\", $v / $n}")" >>metrics
cat metrics
