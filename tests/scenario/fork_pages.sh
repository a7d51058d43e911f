#!/usr/bin/env bash
# Pages a shell-like fork child touches under the shim against native, counted from the
# kernel's accessed bits (tests/scenario/src/fork_pages.c; counts, never times).  On these
# guests every page a child touches costs its first access, fault or not (bench/fault_cost,
# "fork read": tens of microseconds a page under load, several times that for a page in a
# page table of its own), so the fork path keeps what it runs and reads together: the
# fork data page holds what the handlers and a shell child's calls read (the trap, pageout,
# swap, descriptor and wrapper state, the boot flags), and the fork text is one run for the
# child, one both sides share and one for the parent (vm/vm_types.h).  2026-12-02: the
# shim's pages in such a child 16 -> 7 (its .bss pages 5 -> 0, .data 2 -> 0, text 7 -> 5),
# all pages +19 -> +8 over native (80 / 69 against 61).  The bounds fail the earlier code.
# Counted with VMRT_POPULATE=0: the fork handlers' populate calls mark what they map as
# accessed whether or not the child touches it.  For the same reason fork_pages.c clears the
# parent's referenced bits (/proc/self/clear_refs) before each fork: a page's "referenced"
# flag is shared by both sides, and boot's populated tables counted as the child's (CI of
# 224e427: 74 against 59, the table arena's 5 pages none of which the child touches).
source "$(dirname "$0")/lib/scenario_lib.bash" "$1"
need cc
SHIM=$BUILD/lib/libvmrt_malloc.so
cc -O2 -o "$TMP/fp" "$(dirname "$0")/src/fork_pages.c"
# The fewest of three runs each: a run may count a few more file pages than the last (what
# the kernel maps around a read fault depends on the page cache).
for i in 1 2 3; do
  "$TMP/fp" split >"$TMP/native.$i" || fail "natively: status $?"
  VMRT_POPULATE=0 LD_PRELOAD=$SHIM "$TMP/fp" split list >"$TMP/vmrt.$i" 2>"$TMP/list.$i" || fail "under the shim: status $?"
done
least() { awk -v k="$1" '$1 == k {print $2}' "${@:2}" | sort -n | head -1; }
shim=$(least shim "$TMP"/vmrt.?)
nat=$(least total "$TMP"/native.?)
tot=$(least total "$TMP"/vmrt.?)
[ -n "$shim" ] && [ -n "$nat" ] && [ -n "$tot" ] || fail "no figures (native '$nat', vmrt '$tot', shim '$shim')"
[ "$nat" -gt 20 ] || fail "natively the child referenced only $nat pages: the accessed bits are not reported here"
note "a shell-like fork child references $tot pages under the shim ($shim of the shim's own), $nat natively"
# The shim's own pages are the figure the fork path decides; the total moves with the
# environment and the run (59-61 natively, 67-70 under the shim, in a shell and in CI's
# clean environment), hence its wider margin: +8 measured with the referenced bits cleared
# before the fork (+8 to +15 without), +19 to +20 before the fork path was laid out.
# The shim's own: 7 (5 of text, the GOT's page, the fork data page), 8 since kmem's
# constants are in its .data image (a page of kmem's g); 16 before the fork path was laid
# out.  A clean-clone build once counted 9: its read-only segment had an odd number of
# pages, the split made the last one r-x and the host merged it with the text after it
# (fault-around then reached it).  fork_pages.c now gives every page a protection unlike
# its neighbour's; the bound keeps a page of margin, as it had at 7.
if [ "$shim" -gt 9 ] || [ "$tot" -gt $((nat + 12)) ]; then
  cat "$TMP/list.1" >&2
  fail "the child touched $shim pages of the shim (at most 9 allowed) and $tot in all against $nat natively (at most +12)"
fi
note "ok: fork child pages within bounds"
