#!/usr/bin/env bash
# The program's own anonymous mmaps as pageable vmrt memory (vmrun --physmem: paging on,
# userfaultfd backend):
#  - 64 MB of MAP_PRIVATE|MAP_ANONYMOUS memory through 16M of physical memory: every byte
#    checked after it went to swap and came back; read(2) into paged-out pages; an mremap
#    growth that must move keeps every byte (the objects move, counted, no copy); DONTNEED
#    reads zeros; a fork child sees the parent's bytes, writes its own, and finds
#    MADV_WIPEONFORK memory zero.  Output as native; counters prove the mmaps were pageable
#    and paged (a fallback to host memory fails the test);
#  - under sigsegv traps (no kernel touches served) and VMRT_MMAP=unpaged the same program
#    gets host memory: same output, no pageable mmaps;
#  - the differential test's calls on pageable memory answer as Linux; mlock and mremap
#    joined them 2026-12-04 (with them 20 of seeds 1-24 differed: ENOMEM at PROT_NONE and
#    past a file's end, locks left on what a failed mlock flagged, locks in fork children,
#    a grown move's file position (SIGBUS), DONTUNMAP of file mappings, fixed moves of
#    several mappings or out of the area; none of seeds 1-48 now: README, Paging);
#  - python's pymalloc arenas (its own mmaps) page: a dict of 300k entries at 32M;
#  - first touch: 16 MiB of a pageable mmap written front to back takes a trap per window
#    (fault-around once the run passed kZeroStreamMin pages), not one per page as before;
#    written in random order, one per page while THP is disabled (residency as Linux's),
#    else a fill per dense block (vm_fault.h, kZeroBlock).
source "$(dirname "$0")/lib/scenario_lib.bash" "$1"
need cc
cc -O2 -o "$TMP/mp" "$(dirname "$0")/src/mmap_paged.c"
stat_of() { vmstat_value "$TMP/err" "$1"; }

want=$("$TMP/mp" 64 "$TMP/native.dat")
got=$(VMRT_STATS=1 watched 300 "$VMRUN" --physmem 16M -- "$TMP/mp" 64 "$TMP/vmrt.dat" 2>"$TMP/err") || fail "status $?: $got $(grep -v '^ ' "$TMP/err" | head -3)"
[ "$got" = "$want" ] || fail "output '$got', want '$want'"
paged=$(stat_of "program mmaps served as pageable memory"); out=$(stat_of "swap pager pages paged out")
moves=$(stat_of "program mremaps moving pageable memory")
[ "${paged:-0}" -ge 4 ] || fail "${paged:-no} pageable program mmaps: the mmaps were not vmrt's pageable memory"
[ "${out:-0}" -gt 8192 ] || fail "${out:-no} pages paged out: the mmaps did not go through swap"
[ "${moves:-0}" -ge 1 ] || fail "the mremap growth did not move pageable memory (${moves:-no} moves)"
note "ok: 64 MB of mmaps through 16M: $paged pageable mmaps, $out pages out, $moves mremap moves; $got"

# mmap_touch (bench/): 4096 pages in address order on one mapping, 4096 in a random order on
# another, each page checked afterwards ("... 1" = every page right).
touch=$BUILD/bin/mmap_touch
[ -x "$touch" ] || fail "$touch not built"
# With THP disabled (nothp: PR_SET_THP_DISABLE) residency is Linux's, page by page: one
# zero-fill fault per random page.  Without, a block of 64 pages the random order has
# proven in use (16 of its pages touched) is filled at the next touch ("zero fills of dense
# blocks"): well under a fault per page.
got=$(VMRT_STATS=1 watched 300 "$VMRUN" --physmem 256M -- "$touch" 16 nothp 2>"$TMP/err") || fail "mmap_touch: status $?"
[ "$(echo "$got" | awk '{print $5}' | tr -d '\n')" = 11 ] || fail "mmap_touch nothp: wrong data: $got"
zf=$(stat_of "zero-fill faults"); dense=$(stat_of "zero fills of dense blocks")
[ "${zf:-0}" -ge 4096 ] || fail "mmap_touch nothp: ${zf:-no} zero-fill faults: the mmaps were not pageable, or pages were filled around with THP disabled"
[ "$zf" -lt 4800 ] || fail "mmap_touch nothp: $zf zero-fill faults for 4096 pages in order and 4096 at random: the sequential run was not filled ahead"
[ "${dense:-x}" = 0 ] || fail "mmap_touch nothp: ${dense:-no count of} dense-block fills with THP disabled"
note "ok: first touch of 2 x 16 MiB pageable mmaps (in order, at random), THP disabled: $zf zero-fill faults"
got=$(VMRT_STATS=1 watched 300 "$VMRUN" --physmem 256M -- "$touch" 16 2>"$TMP/err") || fail "mmap_touch: status $?"
[ "$(echo "$got" | awk '{print $5}' | tr -d '\n')" = 11 ] || fail "mmap_touch: wrong data: $got"
zf=$(stat_of "zero-fill faults"); dense=$(stat_of "zero fills of dense blocks")
[ "${dense:-0}" -gt 0 ] || fail "mmap_touch: ${dense:-no} dense-block fills"
[ "${zf:-0}" -ge 64 ] && [ "$zf" -lt 2048 ] || fail "mmap_touch: ${zf:-no} zero-fill faults for 4096 pages in order and 4096 at random: the random order was not filled in dense blocks"
note "ok: first touch of 2 x 16 MiB pageable mmaps (in order, at random): $zf zero-fill faults, $dense dense-block fills"

for how in "--trap sigsegv" "unpaged"; do
  if [ "$how" = unpaged ]; then
    got=$(VMRT_MMAP=unpaged VMRT_STATS=1 watched 300 "$VMRUN" --physmem 16M -- "$TMP/mp" 64 "$TMP/vmrt.dat" 2>"$TMP/err") || fail "$how: status $?"
  else
    got=$(VMRT_STATS=1 watched 300 "$VMRUN" --physmem 16M $how -- "$TMP/mp" 64 "$TMP/vmrt.dat" 2>"$TMP/err") || fail "$how: status $?"
  fi
  [ "$got" = "$want" ] || fail "$how: output '$got', want '$want'"
  [ "$(stat_of "program mmaps served as pageable memory")" = 0 ] || fail "$how: pageable mmaps where host memory was expected"
  note "ok: $how: host memory, same output"
done

PROG=$BUILD/bin/mmap_diff
OPS=mmap,fixed,noreplace,munmap,mprotect,madvise,msync,mincore,mlock,mremap,brk,write,read,fork,invalid
# --posix-private (both sides): private file mappings are the vnode pager's here, whose pages
# are copies read at the first touch; whether a later change to the file shows through them
# POSIX leaves unspecified (Linux shows it), so their contents are not compared.
bad=0
for seed in 1 2 3 4 5 6 7 8; do
  "$PROG" --seed $seed --steps 400 --posix-private --ops $OPS > "$TMP/n.$seed" 2>/dev/null || true
  (cd "$TMP" && VMRT_STATS=1 watched 120 "$VMRUN" --physmem 256M -- "$PROG" --seed $seed --steps 400 --posix-private --ops $OPS) > "$TMP/v.$seed" 2>"$TMP/err" || true
  if ! cmp -s "$TMP/n.$seed" "$TMP/v.$seed"; then
    bad=$((bad + 1))
    echo "---- seed $seed differs:"; diff "$TMP/n.$seed" "$TMP/v.$seed" | head -4 | cut -c1-300
  fi
  [ "${paged_seen:-0}" -gt 0 ] || paged_seen=$(stat_of "program mmaps served as pageable memory")
done
[ $bad -eq 0 ] || fail "$bad seed(s) of mmap_diff differ on pageable memory"
[ "${paged_seen:-0}" -gt 0 ] || fail "mmap_diff ran without pageable mmaps"
note "ok: mmap_diff 8 seeds x 400 steps ($OPS) identical on pageable memory"

if PY=$(command -v python3); then
  code='import gc; gc.disable(); d = {i: (i, str(i) * 3) for i in range(300000)}; print(len(d), sum(v[0] + len(v[1]) for v in d.values()))'
  want=$("$PY" -c "$code")
  got=$(VMRT_STATS=1 watched 300 "$VMRUN" --physmem 32M -- "$PY" -c "$code" 2>"$TMP/err") || fail "python: status $?"
  [ "$got" = "$want" ] || fail "python: '$got', want '$want'"
  paged=$(stat_of "program mmaps served as pageable memory"); out=$(stat_of "swap pager pages paged out")
  [ "${paged:-0}" -gt 8 ] && [ "${out:-0}" -gt 2048 ] || fail "python: ${paged:-no} pageable mmaps, ${out:-no} pages out: its arenas did not page"
  note "ok: python dict of 300k at 32M: $got; $paged pageable mmaps (arenas), $out pages out"
else
  note "SKIP python case: no python3"
fi
