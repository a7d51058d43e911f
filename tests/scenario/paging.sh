#!/usr/bin/env bash
# Paging (vmrun --physmem far below the program's footprint; the default swap device):
#  - a working set 4x physical memory, sequential and random, every byte checked, under
#    both trap backends; 16 MB through the floor (1M) in every mode;
#  - four threads faulting, paging in and out at once over 64 MB (several userfaultfd
#    handler threads, zapped and stale pages), every page checked, under both backends;
#  - write(2) of paged-out memory and read(2) into it give the native bytes (userfaultfd
#    backend: the kernel's own touches are served).  The pageout daemon takes pages by
#    dropping PTEs and keeping the VMAs (minor faults on shmem): a kernel touch never meets
#    a missing mapping, so EFAULT or a short count is a failure.  Only on a host without
#    minor faults (no "pmap PTE runs zapped") is EFAULT the KNOWN LIMIT of the older scheme
#    (the reservation is PROT_NONE for an instant while the daemon unmaps), reported visibly;
#  - read(2) into a page the program had only read since it came back from swap (a clean
#    paged-in page): native bytes, no EFAULT (such pages were mapped read-only to catch the
#    first write, and the kernel's write failed).  userfaultfd backend only: under sigsegv
#    traps every kernel touch of a paged-out page gets EFAULT (README, "Paging");
#  - MADV_WILLNEED on paged-out heap and program mmap memory reads it back (it was a no-op);
#  - a host fork under pressure: parent and child each keep their own copy (the child gets
#    its own copy of the swap device);
#  - fork children of a paged program start threads (every new thread reads the LC_CTYPE
#    data, which lives in the heap and was paged out); a bash whose heap pages out runs
#    command substitutions (forks).  Both hung before: a child's handler threads faulted
#    on such pages before any handler could serve them (now the starting thread serves);
#    the timeouts turn a hang into a failure;
#  - a bit flipped in a swap slot (fail point swap_corrupt) is caught on page-in: SIGBUS
#    (BUS_MCEERR_AR) with a message naming the page, never wrong data;
#  - real programs (perl at 16M, tclsh, python and xz at 32M) with footprints well above physical memory
#    match native.
# The pageout counters prove the pages really went out and came back, and that the daemon
# reclaims in batches (pages freed per wakeup).
source "$(dirname "$0")/lib/scenario_lib.bash" "$1"
need cc perl
cc -O2 -pthread -o "$TMP/work" "$(dirname "$0")/src/paging_work.c"
stats() { grep -E "^ +[0-9]+ $1\$" "$TMP/err" | awk '{print $1}' | tail -1; }

for trap in auto sigsegv; do
  for mode in seq random; do
    want=$("$TMP/work" $mode 64)
    got=$(VMRT_STATS=1 "$VMRUN" --physmem 16M --trap $trap -- "$TMP/work" $mode 64 2>"$TMP/err") || fail "$mode ($trap): status $?: $(tail -3 "$TMP/err")"
    [ "$got" = "$want" ] || fail "$mode ($trap): '$got', want '$want'"
    out=$(stats "swap pager pages paged out"); inn=$(stats "swap pager pages paged in")
    [ "${out:-0}" -gt 8192 ] && [ "${inn:-0}" -gt 8192 ] || fail "$mode ($trap): paged out ${out:-?}, in ${inn:-?}: the working set did not go through swap"
    # The daemon reclaims in batches: woken halfway between its free minimum (64 frames
    # here) and its target (256), each wakeup frees about the 96 between.  Woken at the
    # target itself it ran a pass for every few frames a fault took (8-63 a wakeup).
    woke=$(stats "pageout daemon wakeups"); freed=$(stats "pages freed by pageout")
    [ "${woke:-0}" -gt 0 ] && [ $(( ${freed:-0} / woke )) -ge 80 ] ||
      fail "$mode ($trap): ${freed:-?} pages freed in ${woke:-?} daemon wakeups: fewer than 80 a wakeup"
    note "ok: $mode 64 MB through 16M ($trap): $got; $out pages out, $inn in; $freed freed in $woke daemon wakeups"
  done
done

for mode in seq random threads fork; do
  want=$("$TMP/work" $mode 16)
  got=$(watched 600 "$VMRUN" --physmem 1M -- "$TMP/work" $mode 16 2>"$TMP/err") || fail "$mode at 1M: status $?: $(tail -3 "$TMP/err")"
  [ "$got" = "$want" ] || fail "$mode at 1M: '$got', want '$want'"
done
note "ok: seq, random, threads, fork of 16 MB through the 1M floor"

for trap in auto sigsegv; do
  want=$("$TMP/work" threads 64)
  got=$(VMRT_STATS=1 "$VMRUN" --physmem 16M --trap $trap -- "$TMP/work" threads 64 2>"$TMP/err") || fail "threads ($trap): status $?: $got"
  [ "$got" = "$want" ] || fail "threads ($trap): '$got', want '$want'"
  note "ok: four threads through 16M ($trap): $got; $(stats "swap pager pages paged in") pages in"
done

# Freed memory kmem keeps for reuse (its large cache: the tables a growing hash table left
# behind) goes back when the heap runs short, not to swap: 16 MB of live table and 8 MB of
# small blocks through 32M, after 15 MB of old tables were freed.  Before, the daemon wrote
# the cached tables out (1.9-2.0 K pages out; now ~290, what its first pass takes before
# kmem's next allocation sees the shortage).
want=$("$TMP/work" grow 32)
got=$(VMRT_STATS=1 "$VMRUN" --physmem 32M -- "$TMP/work" grow 32 2>"$TMP/err") || fail "grow: status $?: $(tail -3 "$TMP/err")"
[ "$got" = "$want" ] || fail "grow: '$got', want '$want'"
out=$(stats "swap pager pages paged out")
given=$(grep -E "^kmem: memory shortages" "$TMP/err" | tail -1)
seen=$(echo "$given" | awk '{print $8}'); back=$(echo "$given" | awk '{print $10}')
[ "${seen:-0}" -ge 1 ] && [ "${back:-0}" -ge 3000 ] || fail "grow: kmem did not give its cached blocks back at the shortage: '$given'"
[ "${out:-0}" -lt 1000 ] || fail "grow: ${out} pages out (the freed tables went to swap)"
note "ok: freed memory kept for reuse given back at a shortage: $given; ${out:-0} pages out"

want=$("$TMP/work" syscalls 48)
st=0
got=$(VMRT_STATS=1 "$VMRUN" --physmem 16M -- "$TMP/work" syscalls 48 2>"$TMP/err") || st=$?
zapped=$(stats "pmap PTE runs zapped")
if [ $st -eq 3 ] && [ "${zapped:-0}" -eq 0 ]; then
  note "KNOWN LIMIT (not a pass): $got on paged memory during a pageout unmap (host without userfaultfd minor faults)"
else
  [ $st -eq 0 ] || fail "syscalls: status $st: $got $(grep -v "^ " "$TMP/err" | head -3)"
  [ "$got" = "$want" ] || fail "syscalls: '$got', want '$want'"
  note "ok: write(2)/read(2) on paged-out memory: $got ($zapped PTE runs zapped)"
fi

want=$("$TMP/work" reread 48)
got=$(VMRT_STATS=1 "$VMRUN" --physmem 16M -- "$TMP/work" reread 48 2>"$TMP/err") || fail "reread: status $?: $got $(grep -v "^ " "$TMP/err" | head -5)"
[ "$got" = "$want" ] || fail "reread: '$got', want '$want'"
# A paged-in page mapped writable by a read fault keeps its swap copy (compared at pageout),
# a write fault's drops it: either way the page came back from swap.
dropped=$(stats "swap copies dropped by writable mappings")
kept=$(stats "swap copies kept under writable mappings")
[ $(( ${dropped:-0} + ${kept:-0} )) -gt 4096 ] || fail "reread: ${dropped:-no} swap copies dropped, ${kept:-no} kept: the pages did not come back from swap"
note "ok: read(2) into clean paged-in pages: $got; $dropped swap copies dropped, $kept kept"

for trap in auto sigsegv; do
  want=$("$TMP/work" willneed 12)
  got=$(VMRT_STATS=1 "$VMRUN" --physmem 16M --trap $trap -- "$TMP/work" willneed 12 2>"$TMP/err") || fail "willneed ($trap): status $?: $got"
  [ "$got" = "$want" ] || fail "willneed ($trap): '$got', want '$want'"
  started=$(stats "page-ins started by MADV_WILLNEED")
  [ "${started:-0}" -gt 0 ] || fail "willneed ($trap): ${started:-no} page-ins started by MADV_WILLNEED (it was a no-op)"
  note "ok: MADV_WILLNEED reads paged-out heap and mmap pages back ($trap): $got; $started page-ins started"
done

want=$("$TMP/work" fork 48)
got=$(VMRT_STATS=1 "$VMRUN" --physmem 16M -- "$TMP/work" fork 48 2>"$TMP/err") || fail "fork: status $?: $(tail -3 "$TMP/err")"
[ "$got" = "$want" ] || fail "fork: '$got', want '$want'"
# The parent's swap device is shared with the child, frozen, not copied (swap_pager.h).
shared=$(grep -E "^ +[0-9]+ swap devices shared at host fork$" "$TMP/err" | awk '{s+=$1} END {print s+0}')
copies=$(grep -E "^ +[0-9]+ swap slots copied at host fork$" "$TMP/err" | awk '{s+=$1} END {print s+0}')
[ "$shared" -gt 0 ] || fail "fork: no swap device was shared with the child (the parent had not paged out?)"
[ "$copies" -eq 0 ] || fail "fork: $copies swap slots copied at the fork (the device is shared, not copied)"
note "ok: fork under pressure: $(echo "$got" | tr '\n' ';') swap device shared, no slot copied"

# 20 forks, each after a round of pageouts: a fork that finds pages on the own device freezes
# it, and past 16 open devices the frozen ones are merged into one file (the only copy a
# fork makes).  Every byte is checked in the parent and in each child.  Whether devices
# still hold pages when the 16th is frozen depends on when the daemon laundered (one loaded
# run merged none): the merge count is reported, the freezes are required.
want=$("$TMP/work" forkchain 48 20)
got=$(VMRT_STATS=1 watched 600 "$VMRUN" --physmem 16M -- "$TMP/work" forkchain 48 20 2>"$TMP/err") || fail "forkchain: status $?: $(tail -3 "$TMP/err")"
[ "$got" = "$want" ] || fail "forkchain: '$got', want '$want'"
shared=$(grep -E "^ +[0-9]+ swap devices shared at host fork$" "$TMP/err" | awk '{s+=$1} END {print s+0}')
copies=$(grep -E "^ +[0-9]+ swap slots copied at host fork$" "$TMP/err" | awk '{s+=$1} END {print s+0}')
[ "$shared" -ge 10 ] || fail "forkchain: only $shared of 20 forks froze a swap device (no pageouts between forks?)"
note "ok: 20 forks with pageouts between: $got; $shared devices frozen, $copies slots copied by merges"

# (watched: the timeouts here only end hangs, with every thread's stack in the report; a loaded
# CI-like run took 150 s for the sigsegv forks case, which had a 120 s limit.)
for trap in auto sigsegv; do
  want=$(LANG=C.UTF-8 "$TMP/work" forks 48 8)
  got=$(LANG=C.UTF-8 VMRT_STATS=1 watched 600 "$VMRUN" --physmem 16M --trap $trap -- "$TMP/work" forks 48 8 2>"$TMP/err") || fail "forks ($trap): status $? (124: hung): $got $(grep -v "^ " "$TMP/err" | head -3)"
  [ "$got" = "$want" ] || fail "forks ($trap): '$got', want '$want'"
  note "ok: 8 fork children starting threads, locale paged out ($trap): $got; $(stats "swap pager pages paged in") pages in"
done
want='40000000 30'
# 600 s: ~28 s on an idle machine, but 118-129 s with two runs beside the helpers' builds (a
# CI run timed out at 120 s on slowness, not a hang); the timeout is only there to end a hang.
got=$(LANG=C.UTF-8 VMRT_STATS=1 watched 600 "$VMRUN" --physmem 16M -- bash -c 'a=$(head -c 40000000 /dev/zero | tr "\0" x); for i in $(seq 30); do x=$(echo $i); done; echo ${#a} $x' 2>"$TMP/err") || fail "bash forks: status $? (124: hung): $got $(grep -v "^ " "$TMP/err" | head -3)"
[ "$got" = "$want" ] || fail "bash forks: '$got', want '$want' $(grep -v "^ " "$TMP/err" | grep -v "^=\|^---" | head -3)"
out=$(stats "swap pager pages paged out")
[ "${out:-0}" -gt 1024 ] || fail "bash forks: ${out:-no} pages paged out: bash's heap did not page"
note "ok: bash with a 40 MB string through 16M, 31 command substitutions: $got; $out pages out"

st=0
"$VMRUN" --physmem 16M --fail swap_corrupt:nth=5 -- "$TMP/work" seq 64 >"$TMP/out" 2>"$TMP/err" || st=$?
[ $st -eq 135 ] || fail "swap_corrupt: status $st, want 135 (SIGBUS): $(grep -v vmrt-fail "$TMP/err" | tail -3)"
grep -q "could not be read back from swap intact" "$TMP/err" || fail "swap_corrupt: no message naming the page"
grep -q "bad pages" "$TMP/out" && fail "swap_corrupt: the program went on with wrong data: $(cat "$TMP/out")"
note "ok: corrupt slot caught: $(grep "could not be read back" "$TMP/err")"

perl_prog='my @a; for my $i (1..400000) { push @a, "line $i " . ("x" x ($i % 97)) } my $s = 0; $s += length for @a; my %h; $h{$_ % 1000}++ for 1..300000; print scalar(@a), " $s ", scalar(keys %h), "\n"'
want=$(perl -e "$perl_prog")
got=$(VMRT_STATS=1 "$VMRUN" --physmem 16M -- perl -e "$perl_prog" 2>"$TMP/err") || fail "perl: status $?"
[ "$got" = "$want" ] || fail "perl: '$got', want '$want'"
out=$(stats "swap pager pages paged out")
[ "${out:-0}" -gt 0 ] || fail "perl: nothing was paged out (footprint below physmem?)"
note "ok: perl under --physmem 16M: $got; $out pages paged out"

# at_32m NAME WHAT PROG ARGS...: the program natively and under vmrun --physmem 32M prints
# the same, and more than 1024 pages went out (its footprint is above physical memory).
at_32m() {
  local name=$1 what=$2 want got out
  shift 2
  want=$("$@")
  got=$(VMRT_STATS=1 watched 300 "$VMRUN" --physmem 32M -- "$@" 2>"$TMP/err") || fail "$name: status $?"
  [ "$got" = "$want" ] || fail "$name: '$got', want '$want'"
  out=$(stats "swap pager pages paged out")
  [ "${out:-0}" -gt 1024 ] || fail "$name: ${out:-no} pages paged out (footprint below physmem?)"
  note "ok: $what under --physmem 32M: $got; $out pages paged out"
}

# Tcl: a dict of 300k entries (~110 MB natively) at 32M.  Under the two-queue CLOCK this took
# 33 s (a million emulated reference faults); the default one-handed CLOCK ~8 s.
if command -v tclsh >/dev/null; then
  cat > "$TMP/d.tcl" <<'TCL'
set d [dict create]
for {set i 0} {$i < 300000} {incr i} { dict set d k$i [string repeat x[expr {$i % 97}] 3] }
set n 0
dict for {k v} $d { incr n [string length $v] }
puts "[dict size $d] $n"
TCL
  at_32m tclsh "tclsh dict of 300k" tclsh "$TMP/d.tcl"
else
  note "SKIP tclsh case: no tclsh"
fi

# Python: 450k strings, a sum over all of them and a dict of their prefixes (~46 MB natively)
# at 32M (the issue's "python at 32 MB"; ~18 k pages in, 9 s on a loaded machine).
if command -v python3 >/dev/null; then
  py=$(command -v python3)
  [ -x /usr/bin/python3 ] && py=/usr/bin/python3  # not a version manager's shell wrapper
  cat > "$TMP/p.py" <<'PY'
a = [str(i) * 3 for i in range(450000)]
s = sum(len(x) for x in a)
d = {}
for x in a[::7]:
    d[x[:4]] = d.get(x[:4], 0) + 1
print(len(a), s, len(d), sum(d.values()))
PY
  at_32m python "python 450k strings" "$py" "$TMP/p.py"
else
  note "SKIP python case: no python3"
fi

# xz (the issue's "xz at 32 MB"): xz -9 (a 64 MiB dictionary) compresses 1 MB of generated
# text: its match finder's hash table and binary tree, touched at random, take ~36 MB
# natively (max RSS) and page ~4 k pages out under vmrt at 32M (~15-20 s; 2 MB takes ~200 s:
# random access to a table far larger than memory, each reference clear a minor fault).
# Fault-around made it worse: it filled 128 zero pages around each first touch of the
# sparse hash table (xz -9 of 600 KB: 13 s before, 1.8 s after, 0.8 s natively).  Output
# compared with native, and decompressed.
if command -v xz >/dev/null; then
  perl -e 'srand(7); my @w = map { join "", map { chr(97 + int rand 26) } 1 .. 2 + int rand 8 } 1 .. 5000;
           my $n = 0; while ($n < '"${XZ_KB:-1000}"' * 1000) { my $l = join(" ", map { $w[int rand @w] } 1 .. 4 + int rand 11) . "\n"; print $l; $n += length $l }' > "$TMP/xz.in"
  want=$(xz -9 -T1 < "$TMP/xz.in" | cksum)
  got=$(VMRT_STATS=1 watched 300 "$VMRUN" --physmem 32M -- xz -9 -T1 < "$TMP/xz.in" 2>"$TMP/err" | tee "$TMP/xz.out" | cksum) || fail "xz: status $?"
  [ "$got" = "$want" ] || fail "xz: '$got', want '$want'"
  xz -d < "$TMP/xz.out" | cmp -s - "$TMP/xz.in" || fail "xz: the output does not decompress to the input"
  out=$(stats "swap pager pages paged out")
  [ "${out:-0}" -gt 2048 ] || fail "xz: ${out:-no} pages paged out (footprint below physmem?)"
  note "ok: xz -9 of $(($(wc -c < "$TMP/xz.in") / 1000)) KB under --physmem 32M: output matches native; $out pages paged out"
else
  note "SKIP xz case: no xz"
fi
