#!/usr/bin/env bash
# real_programs.sh — real Debian programs natively and under vmrun, interleaved, in the
# same run: median wall time and median peak RSS (GNU time's %M, the largest process of
# the run) of each, their ratios, and the geometric means.
#
#   bench/real_programs.sh [BUILD_DIR] [--reps N] [--floor]
# Last lines: `metric <workload>_time_ratio X`, `metric <workload>_rss_ratio X`,
# `metric geomean_time_ratio X`, `metric geomean_rss_ratio X` (vmrun / native).
# --floor: each workload also runs with an empty shared library preloaded (built here with
# cc), interleaved with the others: the time any LD_PRELOAD allocator pays before it does
# anything (one more object for the loader in every process: its link map in every symbol
# lookup and at exit).  Adds a floor column and `metric <workload>_floor_ratio X` and
# `metric geomean_floor_ratio X` (empty preload / native).
set -euo pipefail
build=$(cd "${1:-build}" && pwd)
reps=3
floor=0
shift || true
while [ $# -gt 0 ]; do
  case "$1" in
    --reps) reps=${2:?--reps needs a value}; shift 2 ;;
    --floor) floor=1; shift ;;
    *) echo "real_programs: unknown argument '$1' (usage: real_programs.sh [BUILD_DIR] [--reps N] [--floor])" >&2; exit 2 ;;
  esac
done
vmrun=$build/bin/vmrun
[ -x "$vmrun" ] || { echo "real_programs: $vmrun not built" >&2; exit 1; }
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LC_ALL=C
work=$(mktemp -d /tmp/vmrt-realprog.XXXXXX)
trap 'rm -rf "$work"' EXIT
cd "$work"

# Inputs made once.
python3 -c 'import random; random.seed(1); print("\n".join(" ".join(str(random.random()) for _ in range(8)) for _ in range(60000)))' >data.txt
cat >hello.c <<'C'
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
struct node { struct node* next; char name[24]; int v; };
int main(void) {
  struct node* h = NULL;
  for (int i = 0; i < 200000; i++) { struct node* n = malloc(sizeof *n); n->v = i; snprintf(n->name, sizeof n->name, "n%d", i); n->next = h; h = n; }
  long s = 0; for (struct node* n = h; n; n = n->next) s += n->v + (long)strlen(n->name);
  printf("%ld\n", s); return 0;
}
C

declare -A cmd=(
  [python]="python3 -c 'import json,collections; d=collections.Counter(); [d.update(l.split()) for l in open(\"data.txt\")]; print(len(d), len(json.dumps(dict(d))))'"
  [perl]="perl -ne '\$w{\$_}++ for split; END { print scalar(keys %w), qq(\n) }' data.txt"
  [sqlite]="rm -f t.db; sqlite3 t.db 'create table t(a,b); with recursive c(x) as (select 1 union all select x+1 from c where x<200000) insert into t select x, hex(randomblob(16)) from c; create index i on t(b); select count(*), sum(length(b)) from t;'"
  [gcc]="gcc -O2 -o hello hello.c && ./hello"
  [git]="rm -rf repo; git init -q repo && cd repo && for i in \$(seq 1 30); do echo \$i >> f; git add f; git -c user.name=a -c user.email=a@b commit -qm c\$i; done; git log --oneline | wc -l"
  [xz]="xz -T2 -3 -c data.txt | xz -dc | wc -c"
  [subst]="for i in \$(seq 1 400); do x=\$(echo \$i); done; echo \$x"
)
order=(python perl sqlite gcc git xz subst)
if [ "$floor" = 1 ]; then
  echo 'int vmrt_real_programs_empty_preload(void) { return 0; }' >empty.c
  cc -shared -fPIC -O2 -o "$work/empty.so" empty.c || { echo "real_programs: cc cannot build the empty preload" >&2; exit 1; }
fi

# run LABEL CMD: one run; prints "seconds maxrss_kb".
# The time is the shell's own microsecond clock around the run (GNU time's %e counts
# hundredths: a 90 ms gcc row moved by 0.11x a tick); GNU time gives the peak RSS.
run() {
  local t0=${EPOCHREALTIME/,/.}
  /usr/bin/time -o "$work/time.$1" -f '%M' bash -c "$2" >/dev/null 2>"$work/err.$1" ||
    { echo "real_programs: $1 run failed: $2" >&2; cat "$work/err.$1" >&2; exit 1; }
  local t1=${EPOCHREALTIME/,/.}
  echo "$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.6f", b - a }') $(tail -1 "$work/time.$1")"
}

declare -A tn rn tv rv te
for w in "${order[@]}"; do tn[$w]=""; rn[$w]=""; tv[$w]=""; rv[$w]=""; te[$w]=""; done
for ((r = 0; r < reps; r++)); do
  for w in "${order[@]}"; do
    read -r a b < <(run native "${cmd[$w]}")
    tn[$w]+="$a "; rn[$w]+="$b "
    read -r a b < <(run vmrt "$vmrun -- bash -c $(printf %q "${cmd[$w]}")")
    tv[$w]+="$a "; rv[$w]+="$b "
    if [ "$floor" = 1 ]; then
      read -r a b < <(run floor "LD_PRELOAD=$work/empty.so bash -c $(printf %q "${cmd[$w]}")")
      te[$w]+="$a "
    fi
  done
done

med() { tr ' ' '\n' <<<"$1" | grep -v '^$' | sort -g | awk '{v[NR]=$1} END {print (NR%2 ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2)}'; }
printf '%-8s %10s %10s %7s %12s %12s %7s' workload native_s vmrun_s ratio native_MB vmrun_MB ratio
[ "$floor" = 1 ] && printf ' %10s %7s' floor_s ratio
echo
lt=0; lr=0; lf=0; n=0; out=""
for w in "${order[@]}"; do
  a=$(med "${tn[$w]}"); b=$(med "${tv[$w]}"); c=$(med "${rn[$w]}"); d=$(med "${rv[$w]}")
  tr=$(awk "BEGIN{print ($a > 0 ? $b / $a : 1)}"); rr=$(awk "BEGIN{print $d / $c}")
  printf '%-8s %10.3f %10.3f %7.2f %12.1f %12.1f %7.2f' "$w" "$a" "$b" "$tr" "$(awk "BEGIN{print $c/1024}")" "$(awk "BEGIN{print $d/1024}")" "$rr"
  out+="metric ${w}_time_ratio $tr"$'\n'"metric ${w}_rss_ratio $rr"$'\n'
  if [ "$floor" = 1 ]; then
    e=$(med "${te[$w]}"); fr=$(awk "BEGIN{print ($a > 0 ? $e / $a : 1)}")
    printf ' %10.3f %7.2f' "$e" "$fr"
    out+="metric ${w}_floor_ratio $fr"$'\n'
    lf=$(awk "BEGIN{print $lf + log($fr)}")
  fi
  echo
  lt=$(awk "BEGIN{print $lt + log($tr)}"); lr=$(awk "BEGIN{print $lr + log($rr)}"); n=$((n + 1))
done
printf '%s' "$out"
echo "metric geomean_time_ratio $(awk "BEGIN{printf \"%.3f\", exp($lt / $n)}")"
echo "metric geomean_rss_ratio $(awk "BEGIN{printf \"%.3f\", exp($lr / $n)}")"
[ "$floor" = 1 ] && echo "metric geomean_floor_ratio $(awk "BEGIN{printf \"%.3f\", exp($lf / $n)}")"
exit 0
