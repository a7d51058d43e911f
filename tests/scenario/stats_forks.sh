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

# Under paging a fork child's mappings are its own memfd's, every page without a host PTE:
# its first touches of frames already copied are minor faults served by its handler thread.
# The pages around such a fault are mapped with it (pmap_linux continue_around): bash's
# `$(echo)` child took ~28 minor faults each before, ~12 with it.
"$build/bin/vmrun" --physmem 128M --stats --stats-fd 3 -- bash -c 'x=$(echo y); [ "$x" = y ]' 3>"$work/paged"
around=$(grep -E "pages a fork child's minor faults mapped around them$" "$work/paged" | awk '{print $1}' | sort -n | tail -1)
minor=$(grep -E '^[ 0-9]{9} userfaultfd minor faults continued$' "$work/paged" | awk '{print $1}' | sort -n | tail -1)
[ "${around:-0}" -gt 0 ] || { echo "FAIL: a paged fork child mapped no page around its minor faults (counter ${around:-missing})" >&2; exit 1; }
[ "${minor:-0}" -le 20 ] || { echo "FAIL: a paged fork child took $minor minor faults, want <= 20" >&2; exit 1; }
echo "paged fork child: $minor minor faults, $around pages mapped around them"
