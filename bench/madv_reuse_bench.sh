#!/usr/bin/env bash
# madv_reuse_bench.sh — memory given back with madvise and taken again (an allocator's purge
# and reuse), natively and under vmrun --physmem (vmrt's pageable program mmaps), interleaved
# in the same run: bench/madv_reuse.c writes a word in every page of a 64 MiB mapping, then
# madvise()s it all, ROUNDS times, with MADV_FREE and with MADV_DONTNEED.  Under vmrt
# MADV_FREE is lazy (vm_object_madvise_free): the pages stay and a reuse costs a fault that
# maps them again; MADV_DONTNEED (and MADV_FREE before 2026-12-04) gives them up, and a reuse
# zero-fills.  Medians of N runs.
#   bench/madv_reuse_bench.sh [BUILD_DIR] [--reps N]
# Last lines: `metric madv_<advice>_us_<config> X` (us a round), `metric
# madv_<advice>_vmrt_vs_native X`, `metric madv_free_vs_dontneed_vmrt X`.
set -euo pipefail
src=$(cd "$(dirname "$0")" && pwd)
build=$(cd "${1:-build}" && pwd)
reps=5
[ "${2:-}" = --reps ] && reps=${3:?--reps needs a value}
vmrun=$build/bin/vmrun
[ -x "$vmrun" ] || { echo "madv_reuse_bench: $vmrun not built" >&2; exit 1; }
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LC_ALL=C
work=$(mktemp -d /tmp/vmrt-madvreuse.XXXXXX)
trap 'rm -rf "$work"' EXIT
cc -O2 -o "$work/madv_reuse" "$src/madv_reuse.c"
mb=64 rounds=20
median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
field() { awk -v k="$1" '{ for (i = 1; i < NF; ++i) if ($i == k) print $(i + 1) }'; }
declare -A us faults kept
configs=(native vmrt)
for r in $(seq 1 "$reps"); do
  for advice in free dontneed; do
    for c in "${configs[@]}"; do
      case $c in
        native) out=$("$work/madv_reuse" $advice $mb $rounds) ;;
        vmrt) out=$(VMRT_MMAP=vmrt "$vmrun" --physmem 256M -- "$work/madv_reuse" $advice $mb $rounds) ;;
      esac
      us[$advice.$c]+="$(field us_per_round <<<"$out") "
      faults[$advice.$c]+="$(field faults_per_round <<<"$out") "
      kept[$advice.$c]+="$(field kept_per_round <<<"$out") "
    done
  done
done
med() { tr ' ' '\n' <<<"$1" | grep . | median; }
printf '%s MiB mapping, %s rounds of (write a word a page, madvise all), medians of %s\n' $mb $rounds "$reps"
printf '%-9s %-7s %12s %14s %14s\n' advice config us/round faults/round kept/round
for advice in free dontneed; do
  for c in "${configs[@]}"; do
    printf '%-9s %-7s %12.0f %14.0f %14.0f\n' $advice $c "$(med "${us[$advice.$c]}")" "$(med "${faults[$advice.$c]}")" "$(med "${kept[$advice.$c]}")"
  done
done
for advice in free dontneed; do
  for c in "${configs[@]}"; do echo "metric madv_${advice}_us_$c $(med "${us[$advice.$c]}")"; done
  awk -v v="$(med "${us[$advice.vmrt]}")" -v n="$(med "${us[$advice.native]}")" -v a=$advice \
    'BEGIN { printf "metric madv_%s_vmrt_vs_native %.3f\n", a, v / n }'
done
awk -v f="$(med "${us[free.vmrt]}")" -v d="$(med "${us[dontneed.vmrt]}")" 'BEGIN { printf "metric madv_free_vs_dontneed_vmrt %.3f\n", f / d }'
