#!/usr/bin/env bash
# vmrun --stats: a program's own report counts the host forks it made (the runtime once
# counted them only in the children, so the parent's vmstat -s said 0 while the shim's
# counters said 3).
set -euo pipefail
build=${1:?build dir}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# The last report written is the parent's (it exits after its children).
"$build/bin/vmrun" --stats --stats-fd 3 -- bash -c '(true); (true); x=$(echo y)' 3>"$work/stats"
# vmstat -s lines have a 9-wide number column (the shim's own counters are indented by 2).
runtime=$(grep -E '^[ 0-9]{9} host forks$' "$work/stats" | tail -1 | awk '{print $1}')
[ "${runtime:-0}" -ge 3 ] || { echo "FAIL: the parent's vmstat -s counts ${runtime:-none} host forks, want >= 3" >&2; cat "$work/stats" >&2; exit 1; }
echo "parent counted $runtime host forks"
