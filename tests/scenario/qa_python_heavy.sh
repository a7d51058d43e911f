#!/usr/bin/env bash
# python3 under vmrun, heavier: 1e6 small objects allocated and freed with gc,
# a multiprocessing Pool of 4 (forked workers under vmrt), ThreadPoolExecutor with
# 16 workers, a large dict with deletions (both trap backends, compared with the
# native run).  Then memory limits: with --physmem 256M and no swap (--swap 0: physical
# memory is a hard limit) a 512 MiB bytearray must be a clean MemoryError, and the program
# must fill memory, get MemoryError, free it and allocate again.  With paging (--physmem
# 64M and the default swap) a 256 MiB bytearray written page by page reads back whole.
source "$(dirname "$0")/lib/scenario_lib.bash" "$1"
need python3
cat >"$TMP/heavy.py" <<'PY'
import gc, hashlib
from concurrent.futures import ThreadPoolExecutor
from multiprocessing import Pool
def churn(rounds):
    tot = 0
    for r in range(rounds):
        objs = [(i, str(i), [i] * (i % 5), {"k": i}) for i in range(200_000)]
        tot += sum(len(o[1]) + len(o[2]) for o in objs)
        del objs[::2]
        objs += [bytes(i % 300) for i in range(100_000)]
        tot += len(objs)
        del objs
        gc.collect()
    return tot
def sq(n):
    h = hashlib.sha256()
    for i in range(n):
        h.update(str(i * i).encode())
    return n, h.hexdigest()[:12], len([str(j) * 3 for j in range(n)])
if __name__ == "__main__":
    print("churn", churn(5))
    with Pool(4) as p:
        print("pool", p.map(sq, [20000 + 1000 * k for k in range(12)]))
    with ThreadPoolExecutor(max_workers=16) as ex:
        print("threads", list(ex.map(sq, [5000 + 100 * k for k in range(48)])))
    d = {}
    for i in range(300_000): d[i] = "v" * (i % 40)
    for i in range(0, 300_000, 3): del d[i]
    print("dict", len(d), sum(map(len, d.values())))
    big = [bytearray(1 << 20) for _ in range(64)]      # 64 MiB of large blocks
    for b in big[::2]: b[-1] = 1
    print("big", sum(b[-1] for b in big))
PY
write_workflow <<SH
python3 "$TMP/heavy.py"
SH
compare_both_traps
# Memory limits: physmem smaller than the request.
for trap in auto sigsegv; do
  st=0
  "$VMRUN" --physmem 256M --swap 0 --trap $trap -- python3 -c 'x = bytearray(512*1024*1024)' >"$TMP/lim.out" 2>"$TMP/lim.err" || st=$?
  [ $st -eq 1 ] || fail "512 MiB bytearray under --physmem 256M ($trap): status $st, want 1 (MemoryError)"
  grep -q '^MemoryError' "$TMP/lim.err" || fail "no MemoryError traceback ($trap): $(tail -3 "$TMP/lim.err")"
  "$VMRUN" --physmem 256M --swap 0 --trap $trap -- python3 -c '
l = []
try:
    while True: l.append(bytes(100000))
except MemoryError:
    n = len(l)
del l
small = []
try:
    while True: small.append(str(len(small)) * 8)
except MemoryError:
    m = len(small)
del small
y = bytearray(100 * 1024 * 1024)
print(n > 1000, m > 100000, len(y))' >"$TMP/fill.out" 2>"$TMP/fill.err" || fail "fill/free/refill under --physmem 256M ($trap) failed: $(tail -3 "$TMP/fill.err")"
  [ "$(cat "$TMP/fill.out")" = "True True 104857600" ] || fail "fill/free/refill ($trap): $(cat "$TMP/fill.out")"
done
note "ok: MemoryError at the physmem limit, memory reusable after it"
for trap in auto sigsegv; do
  out=$("$VMRUN" --physmem 64M --trap $trap -- python3 -c '
x = bytearray(256 * 1024 * 1024)
n = len(x) // 4096
for i in range(n): x[i * 4096] = i % 251 + 1
print(all(x[i * 4096] == i % 251 + 1 for i in range(n)), sum(x[::4096]))' 2>"$TMP/pg.err") || fail "256 MiB under --physmem 64M ($trap) failed: $(tail -3 "$TMP/pg.err")"
  want=$(python3 -c 'print(True, sum(i % 251 + 1 for i in range(65536)))')
  [ "$out" = "$want" ] || fail "256 MiB under --physmem 64M ($trap): '$out', want '$want'"
done
note "ok: 256 MiB written and read back through 64M of physical memory (paging)"
