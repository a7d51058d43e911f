#!/usr/bin/env bash
# Node.js under vmrun: V8's JIT and generational heap (its pages are the program's own mmaps,
# its Buffers malloc'd), four worker threads with isolates of their own writing one
# SharedArrayBuffer under Atomics, zlib, and a WebAssembly memory (V8 reserves its guard
# region up front).  src/node_work.js prints only deterministic results; every run must
# print what the native run prints:
#  - the default backend and `--trap sigsegv`, with 64 MiB of Buffers touched at random;
#  - `--physmem 64M` with 96 MiB of them: the heap and V8's mappings page through swap.
source "$(dirname "$0")/lib/scenario_lib.bash" "$1"
need node
# By its absolute path: the workflow runs in an empty $WORK.
JS=$(cd "$(dirname "$0")/src" && pwd)/node_work.js
run() { watched 300 "$@" node "$JS" "$MIB"; }

write_workflow <<EOF2
node "$JS" 64
EOF2
compare_both_traps
grep -q '^wasm 8355840$' "$TMP/native.out" || fail "native run: no WebAssembly result: $(cat "$TMP/native.out")"
note "ok: V8's JIT, workers, a SharedArrayBuffer, zlib and WebAssembly under both trap backends"

MIB=96
native=$(run) || fail "native 96 MiB run: status $?"
got=$(run "$VMRUN" --physmem 64M --stats -- 2>"$TMP/err") || fail "vmrun --physmem 64M: status $?: $(grep '^vmrt' "$TMP/err" | head -3)"
[ "$got" = "$native" ] || fail "vmrun --physmem 64M: output differs from native:
$(diff <(echo "$native") <(echo "$got"))"
expect_vmstat "$TMP/err" "swap pager pages paged out" -ge 8000 "--physmem 64M"
expect_vmstat "$TMP/err" "program mmaps served as pageable memory" -ge 1 "--physmem 64M"
note "ok: 96 MiB of Buffers and V8's heap paged through 64M: $(vmstat_value "$TMP/err" "swap pager pages paged out") pages paged out, output as native"
