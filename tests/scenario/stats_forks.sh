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
# A fork child does not count the fork that made it: the first child's report says 0 (a
# quiet fork counts itself before the fork, and its child took that count along).
least=$(grep -E '^[ 0-9]{9} host forks$' "$work/stats" | awk '{print $1}' | sort -n | head -1)
[ "${least:-x}" = 0 ] || { echo "FAIL: the first fork child's vmstat -s counts ${least:-none} host forks, want 0" >&2; cat "$work/stats" >&2; exit 1; }

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

# The first handler thread of a (fork child's) userfaultfd starts while the descriptor is
# non-blocking (its creator and a relay read it meanwhile): it sleeps until that is over.
# It used to read again at once, ~260 empty reads a fork child, and kept a vCPU busy that
# the relay thread its creator waits for needed (a paged fork ~1 ms slower).
empty=$(grep -E '^[ 0-9]{9} userfaultfd handler reads that found no event$' "$work/paged" | awk '{print $1}' | sort -n | tail -1)
[ -n "$empty" ] || { echo "FAIL: no 'userfaultfd handler reads that found no event' line in the paged run's vmstat -s" >&2; exit 1; }
[ "$empty" -le 8 ] || { echo "FAIL: a handler thread read its userfaultfd $empty times and found nothing, want <= 8" >&2; exit 1; }
echo "paged fork: at most $empty empty userfaultfd reads a process"

# A paged fork child starts its own machine threads (on its parent's thread stacks, named by
# the threads themselves): /proc shows them by name, as in the parent.
names=$("$build/bin/vmrun" --physmem 64M -- bash -c '( for t in /proc/$BASHPID/task/*; do read -r n < "$t/comm"; echo "$n"; done )' | sort | uniq -c | awk '{printf "%s=%s ", $2, $1}')
case "$names" in
  *vmrt-pagedaemon=1*vmrt-uffd=*) ;;
  *) echo "FAIL: a paged fork child's threads are named: $names (want vmrt-pagedaemon and vmrt-uffd)" >&2; exit 1 ;;
esac
echo "paged fork child's threads: $names"
