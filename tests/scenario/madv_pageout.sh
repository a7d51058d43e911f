#!/usr/bin/env bash
# MADV_PAGEOUT, MADV_COLD and MADV_FREE in a real program under `vmrun --physmem 16M` (vm/vm_pageout.h,
# vm_pageout_range; README "Paging"):
#  - madv_pageout mallocs 8 MB (the paged heap) and mmaps 8 MB (a pageable program mmap),
#    fills both, MADV_PAGEOUTs each: 0, mincore says not resident, every byte comes back
#    (natively, without a host swap device, Linux pages nothing out: the page counts differ
#    from the native run, the answers and the bytes do not); MADV_COLD: 0, every byte kept;
#    an unaligned address is EINVAL, a range running into a hole ENOMEM; a private mapping
#    of an 8 MB file, read and every fourth page written, MADV_PAGEOUTed: the file's pages
#    freed clean, the written copies laundered, mincore 0, every byte back.  The counters prove
#    the pages went to swap;
#  - MADV_FREE of a 24 MB mmap at 16M, a word of half its pages written after, then 24 MB
#    more memory (src/madv_free.c): lazy (the daemon frees untouched pages without writing
#    them), and no written word lost, both backends (under sigsegv traps the mmap is host
#    memory);
#  - python's mmap.madvise with MADV_PAGEOUT / MADV_COLD (21 and 20: Debian's python3.11
#    does not name them) on 8 MB of a private anonymous mmap, at 32M (python, its 8 MB and
#    the copy it compares with fit: at 16M the daemon has paged part of them out already,
#    and MADV_PAGEOUT takes only what is resident): same.  (mmap.mmap(-1, n) alone
#    is MAP_SHARED: shared anonymous memory stays host memory under vmrt, and the host's
#    madvise without a swap device pages nothing out.)
source "$(dirname "$0")/lib/scenario_lib.bash" "$1"
need cc
cc -O2 -o "$TMP/mp" "$(dirname "$0")/src/madv_pageout.c"
stat_of() { vmstat_value "$TMP/err" "$1"; }

native=$("$TMP/mp" 8 "$TMP/native.dat") || fail "native run: status $?"
got=$(VMRT_STATS=1 watched 300 "$VMRUN" --physmem 16M -- "$TMP/mp" 8 "$TMP/vmrt.dat" 2>"$TMP/err") || fail "status $?: $got $(grep -v '^ ' "$TMP/err" | head -3)"
# Same answers and bytes as natively; only the resident counts may differ.
strip() { sed -e 's/ resident=[0-9]*\/[0-9]*//'; }
[ "$(echo "$got" | strip)" = "$(echo "$native" | strip)" ] || fail "answers differ from native: got
$got
native
$native"
for what in "malloc pageout" "mmap pageout" "file pageout"; do
  line=$(echo "$got" | grep "^$what ")
  res=$(echo "$line" | sed -n 's/.* resident=\([0-9]*\)\/.*/\1/p')
  [ "${res:-x}" = 0 ] || fail "$what: ${res:-no} pages resident after MADV_PAGEOUT: $line"
done
for what in "malloc cold" "mmap cold"; do
  line=$(echo "$got" | grep "^$what ")
  echo "$line" | grep -q "rc=0 .*intact=1" || fail "$what: $line"
done
advised=$(stat_of "pages paged out by MADV_PAGEOUT"); out=$(stat_of "swap pager pages paged out")
cooled=$(stat_of "pages deactivated by MADV_COLD")
# (PAGEOUT takes only what is resident: with 16 MB of data in 16M the daemon may have taken a
# few pages first — a clean-clone run counted 3975 of 4096 — so at least one region's worth;
# the resident=0 checks above are the exact ones.)
[ "${advised:-0}" -ge 2048 ] || fail "${advised:-no} pages paged out by MADV_PAGEOUT for 2 x 2048 pages"
[ "${out:-0}" -ge 2048 ] || fail "${out:-no} swap pager pages paged out: the pages did not go to swap"
# (COLD finds only what is resident: with 16 MB of data in 16M the daemon has taken part of
# the heap again by then.)
[ "${cooled:-0}" -ge 2048 ] || fail "${cooled:-no} pages deactivated by MADV_COLD for 2 x 2048 pages"
note "ok: 8 MB malloc'd + 8 MB mmapped at 16M: $advised pages paged out by MADV_PAGEOUT ($out written), $cooled deactivated by MADV_COLD; bytes and answers as native"

# MADV_FREE under pressure (src/madv_free.c): lazy under vmrt as on Linux; the pages written
# after it keep their data, the others their data or zeros, and the pageout daemon frees the
# untouched ones without writing them (it read zeros at once before: MADV_FREE was DONTNEED).
cc -O2 -o "$TMP/mf" "$(dirname "$0")/src/madv_free.c"
mf_native=$("$TMP/mf" 2>/dev/null) || fail "madv_free natively: status $?: $mf_native"
for trap in userfaultfd sigsegv; do
  got=$(VMRT_STATS=1 watched 300 "$VMRUN" --physmem 16M --trap $trap -- "$TMP/mf" 2>"$TMP/err") ||
    fail "madv_free --trap $trap: status $?: $got $(grep -v '^ ' "$TMP/err" | head -3)"
  [ "$got" = "$mf_native" ] || fail "madv_free --trap $trap: '$got', natively '$mf_native'"
  if [ $trap = sigsegv ]; then  # program mmaps stay host memory under sigsegv traps (README)
    note "ok: MADV_FREE of 24 MB at 16M (--trap sigsegv, host memory): answers and bytes as natively"
    continue
  fi
  marked=$(stat_of "pages freed lazily by MADV_FREE"); used=$(stat_of "lazily freed pages used again")
  reclaimed=$(stat_of "lazily freed pages reclaimed")
  [ "${marked:-0}" -ge 1 ] || fail "madv_free --trap $trap: no page freed lazily (MADV_FREE served eagerly?)"
  # (Pages the daemon had paged out during the fill were not resident to mark: MADV_FREE
  # dropped their swap copies, so the writes after it zero-filled them.)
  [ "${used:-0}" -ge 1 ] || fail "madv_free --trap $trap: no lazily freed page used again (3072 written)"
  [ "${reclaimed:-0}" -ge 1 ] || fail "madv_free --trap $trap: the daemon reclaimed no lazily freed page at 16M"
  note "ok: MADV_FREE of 24 MB at 16M (--trap $trap): $marked marked, $used used again, $reclaimed reclaimed without a write; $(grep -m1 '^zero pages' "$TMP/err")"
done

# Python's mmap module.
if command -v python3 >/dev/null; then
  cat >"$TMP/mp.py" <<'EOF'
import mmap
n = 8 << 20
m = mmap.mmap(-1, n, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)  # (-1 alone: MAP_SHARED, host memory)
m[:] = (bytes(range(1, 256)) * (n // 255 + 1))[:n]  # a period of 255: every page differs
want = m[:]
print("pageout", m.madvise(21))  # MADV_PAGEOUT
print("same", m[:] == want)
print("cold", m.madvise(20))  # MADV_COLD
print("same", m[:] == want)
EOF
  pn=$(python3 "$TMP/mp.py") || fail "python natively: status $?"
  pg=$(VMRT_STATS=1 watched 300 "$VMRUN" --physmem 32M -- python3 "$TMP/mp.py" 2>"$TMP/err") || fail "python: status $?: $pg"
  [ "$pg" = "$pn" ] || fail "python: '$pg', natively '$pn'"
  advised=$(stat_of "pages paged out by MADV_PAGEOUT")
  [ "${advised:-0}" -ge 2000 ] || fail "python: ${advised:-no} pages paged out by MADV_PAGEOUT for 2048"
  note "ok: python mmap.madvise(MADV_PAGEOUT / MADV_COLD) on 8 MB: $advised pages paged out, bytes as natively"
else
  note "SKIP python part: no python3"
fi
