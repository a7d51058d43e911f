#!/usr/bin/env bash
# Paging at the host's mapping limit (runtime/pmap_linux_vmas.cpp).  A page paged in at random
# gets whatever frame is free, and a run of frames is one host VMA only when its neighbours map
# the next frames: a process whose pages come back in random order makes a VMA or two a page.
# 480 MB touched at random through `--physmem 256M` makes more than Linux's default
# vm.max_map_count (65,530) allows: a JVM whose heap was paged, and this program, ended with
# an assertion ("cannot restore a reservation in the region") or a silent SIGBUS when the host
# refused the next mapping (both modes below, before the fix: SIGBUS after ~8 s; at 400 MB
# the peak stayed just under the limit, 64,995-65,085).  Now frame mappings give VMAs back near the limit (stale runs, then
# resident pages that are not wired) and the program ends as natively, with the same output:
# src/scatter_pages.c on a pageable mmap (written pages too) and on the paged heap.
source "$(dirname "$0")/lib/scenario_lib.bash" "$1"
need cc
limit=$(cat /proc/sys/vm/max_map_count)
# The workload is sized for the default limit: 480 MB makes ~120,000 random page-ins.  A
# host with a much higher limit (some distributions set 1,048,576) would need gigabytes.
if [ "$limit" -gt 70000 ]; then
  note "SKIPPED: vm.max_map_count is $limit on this host; this scenario is sized for Linux's default 65530"
  exit 77
fi
[ "$(trap_backend_of --physmem 64M)" = userfaultfd ] || fail "the userfaultfd backend is not available: paged mmaps need it"
cc -O2 -o "$TMP/scatter" "$(dirname "$0")/src/scatter_pages.c"
for mode in "mmap write" "heap"; do
  # shellcheck disable=SC2086
  native=$("$TMP/scatter" 480 $mode) || fail "native $mode: status $?"
  # shellcheck disable=SC2086
  got=$(watched 300 "$VMRUN" --physmem 256M --stats -- "$TMP/scatter" 480 $mode 2>"$TMP/err") ||
    fail "$mode: status $? (natively 0): $(grep '^vmrt' "$TMP/err" | head -3)"
  [ "$got" = "$native" ] || fail "$mode: output '$got', natively '$native'"
  expect_vmstat "$TMP/err" "swap pager pages paged out" -ge 30000 "$mode"
  expect_vmstat "$TMP/err" "sweeps giving host VMAs back near the mapping limit" -ge 1 "$mode"
  expect_vmstat "$TMP/err" "host VMAs given back by them" -ge 1000 "$mode"
  expect_vmstat "$TMP/err" "host VMAs peak" -lt "$limit" "$mode"
  note "ok: $mode: $(vmstat_value "$TMP/err" "host VMAs peak") host VMAs at the peak (limit $limit), $(vmstat_value "$TMP/err" "host VMAs given back by them") given back by $(vmstat_value "$TMP/err" "sweeps giving host VMAs back near the mapping limit") sweeps; output as native"
done
