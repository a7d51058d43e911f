#!/usr/bin/env bash
# Programs that live on mmap (issue 6, "Tests"), natively and under vmrun with both trap
# backends, and under paging (--physmem 16M): output identical.
#  - sqlite3 in mmap mode (PRAGMA mmap_size) on a database larger than 64 MB: its reads go
#    through a MAP_SHARED mapping of the database, its writes through write(2), so every
#    answer depends on the mapping staying coherent with the file;
#  - python's mmap module: a file mapped shared (slices, find, resize = mremap, flush, the
#    file read back), private (copy-on-write: the file unchanged), and across a fork;
#  - a JIT that maps executable memory: luajit (Debian package luajit, scripts/setup.sh),
#    and node when present; each absent one is skipped with a SKIP line;
#  - a server that forks workers sharing a MAP_SHARED|MAP_ANONYMOUS mapping: each worker
#    serves requests from a pipe and counts them in its slot of the shared mapping.
# vmstat -s must show file mappings served by vmrt (not passed to the host).
source "$(dirname "$0")/lib/scenario_lib.bash" "$1"
need sqlite3 python3
SRC=$(cd "$(dirname "$0")/src" && pwd)


cat >"$TMP/pymmap.py" <<'PY'
import mmap, os
PG = mmap.PAGESIZE
with open("m.bin", "wb") as f:
    f.write(bytes(range(256)) * (3 * PG // 256))
with open("m.bin", "r+b") as f:
    m = mmap.mmap(f.fileno(), 0)
    print("len", len(m), "first", m[0], "find", m.find(bytes([10, 11, 12])))
    m[0:5] = b"hello"
    m.flush()
    f.seek(0); print("file sees", f.read(5))
    os.pwrite(f.fileno(), b"WORLD", 10)
    print("mapping sees", m[10:15])
    m.resize(5 * PG)
    print("resized", len(m), os.fstat(f.fileno()).st_size, m[4 * PG], m[3 * PG - 1])
    m[5 * PG - 1] = 7
    m.close()
    p = mmap.mmap(f.fileno(), 2 * PG, flags=mmap.MAP_PRIVATE)
    p[0:5] = b"xxxxx"
    print("private", p[0:5], "file", os.pread(f.fileno(), 5, 0))
    s = mmap.mmap(f.fileno(), PG)
    pid = os.fork()
    if pid == 0:
        s[100:104] = b"kid!"
        p[100:104] = b"kid!"
        os._exit(0)
    os.waitpid(pid, 0)
    print("after fork: shared", s[100:104], "private", p[100:104])
    a = mmap.mmap(-1, 4 * PG)
    a.write(b"anon" * 10)
    print("anon", a[0:8], a.find(b"nona"))
    try:
        mmap.mmap(f.fileno(), PG, offset=100)
    except (OSError, ValueError) as e:
        print("bad offset:", type(e).__name__)
    ro = os.open("m.bin", os.O_RDONLY)
    try:
        mmap.mmap(ro, PG, prot=mmap.PROT_READ | mmap.PROT_WRITE)
    except OSError as e:
        print("ro fd shared write:", e.errno)
    print("sum", sum(open("m.bin", "rb").read()))
PY

cat >"$TMP/workers.py" <<'PY'
import mmap, os, struct
N, REQ = 4, 3000
shm = mmap.mmap(-1, N * 8 * 2)  # MAP_SHARED|MAP_ANONYMOUS: each worker's (count, sum)
r, w = os.pipe()
kids = []
for k in range(N):
    pid = os.fork()
    if pid == 0:
        os.close(w)
        n = s = 0
        while True:
            b = os.read(r, 4)
            if len(b) < 4: break
            v = struct.unpack("i", b)[0]
            if v < 0: break
            n += 1; s += v
            shm[k * 16:k * 16 + 16] = struct.pack("qq", n, s)
        os._exit(0)
    kids.append(pid)
os.close(r)
for i in range(REQ):
    os.write(w, struct.pack("i", i))
for k in range(N):
    os.write(w, struct.pack("i", -1))
for pid in kids:
    os.waitpid(pid, 0)
tot = [struct.unpack("qq", shm[k * 16:k * 16 + 16]) for k in range(N)]
print("requests", sum(t[0] for t in tot), "sum", sum(t[1] for t in tot), "expected", REQ, REQ * (REQ - 1) // 2)
PY

cat >"$TMP/jit.lua" <<'LUA'
local s = 0
for i = 1, 20000000 do s = s + (i % 7) * (i % 3) end
local ok = jit and jit.status and jit.status()
print("luajit", s, "jit on:", ok)
local t = {}
for i = 1, 200000 do t[i] = string.format("%d", i * 3) end
print(#t, t[12345])
LUA
cat >"$TMP/jit.js" <<'JS'
let s = 0;
for (let i = 0; i < 30000000; i++) s = (s + (i % 7) * (i % 3)) | 0;
const a = [];
for (let i = 0; i < 200000; i++) a.push(String(i * 3));
console.log("node", s, a.length, a[12345]);
JS

write_workflow <<SH
set -e
sqlite3 big.db <"$SRC/sqlite_mmap.sql"
python3 "$TMP/pymmap.py"
python3 "$TMP/workers.py"
if command -v luajit >/dev/null; then luajit "$TMP/jit.lua"; else echo "SKIP luajit: not installed (scripts/setup.sh)"; fi
if command -v node >/dev/null; then node "$TMP/jit.js"; else echo "SKIP node: not installed"; fi
SH
command -v luajit >/dev/null || note "SKIP luajit part: luajit not installed (scripts/setup.sh installs it)"
command -v node >/dev/null || note "SKIP node part: node not installed"
compare_both_traps
compare_workflow --physmem 16M
# The counters of one more run: the file mappings were vmrt's.
rm -rf "$WORK" && mkdir -p "$WORK"
(cd "$WORK" && "$VMRUN" --stats --stats-fd 3 -- bash "$TMP/workflow.sh" >/dev/null 2>&1 3>"$TMP/stats") || fail "stats run failed"
# (Each process writes its report: the largest count is sqlite's or python's.)
made=$(awk '/ file mappings made$/ { if ($1 > m) m = $1 } END { print m + 0 }' "$TMP/stats")
[ "$made" -ge 1 ] || fail "no process counted a file mapping made by vmrt (passed to the host?)"
note "ok: at most $made file mappings made by vmrt in one process"
