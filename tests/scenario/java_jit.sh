#!/usr/bin/env bash
# A Java VM under vmrun (issue: "a JIT or interpreter that maps executable memory ... a Java VM
# if one is available as a Debian package").  HotSpot is a hostile tenant: it maps its code
# cache read-write-execute, catches its own SIGSEGVs (implicit null checks, stack banging into
# guard pages, safepoint polls) and chains them, runs a dozen threads, and reserves its heap
# up front.  src/JitWork.java exercises each (a HashMap churn, 6,667 caught null dereferences,
# a caught StackOverflowError, bounds checks, a thread pool) and then a live set touched in
# random order; every run must print what the native run prints:
#  - the default backend and `--trap sigsegv` (vmrt's handler sits in front of HotSpot's);
#  - `--physmem 128M` with a 192 MiB live set and `-XX:-UseCompressedOops`, so the heap is an
#    ordinary mapping in vmrt's area and pages through swap (with compressed oops HotSpot
#    places it by a hint below 32 GB, which is host memory: README, "A hint outside the area").
#    A JVM paging 600 MB through 256M used to end at the host's mapping limit (scenario
#    paging_map_limit).
source "$(dirname "$0")/lib/scenario_lib.bash" "$1"
need java javac
javac -encoding UTF-8 -d "$TMP" "$(dirname "$0")/src/JitWork.java" || fail "javac failed"
run() { watched 300 "$@" java -Xshare:auto -cp "$TMP" "${JAVA_OPTS[@]}" JitWork "$MIB"; }

JAVA_OPTS=() MIB=64
native=$(run) || fail "native run: status $?"
for opts in "" "--trap sigsegv"; do
  # shellcheck disable=SC2086
  got=$(run "$VMRUN" $opts -- 2>"$TMP/err") || fail "vmrun $opts: status $?: $(head -5 "$TMP/err")"
  [ "$got" = "$native" ] || fail "vmrun $opts: output differs from native:
$(diff <(echo "$native") <(echo "$got"))"
done
note "ok: HotSpot's JIT, null checks, stack overflow and threads under both trap backends"

JAVA_OPTS=(-XX:-UseCompressedOops -Xmx512m) MIB=192
native=$(run) || fail "native paged-heap run: status $?"
got=$(run "$VMRUN" --physmem 128M --stats -- 2>"$TMP/err") || fail "vmrun --physmem 128M: status $?: $(grep '^vmrt' "$TMP/err" | head -3)"
[ "$got" = "$native" ] || fail "vmrun --physmem 128M: output differs from native:
$(diff <(echo "$native") <(echo "$got"))"
expect_vmstat "$TMP/err" "swap pager pages paged out" -ge 20000 "--physmem 128M"
expect_vmstat "$TMP/err" "program mmaps served as pageable memory" -ge 1 "--physmem 128M"
note "ok: a 192 MiB Java heap paged through 128M: $(vmstat_value "$TMP/err" "swap pager pages paged out") pages paged out, output as native"
