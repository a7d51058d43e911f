#!/usr/bin/env bash
# python3 under vmrun: json, regex and sorting work in 4 threads, a subprocess
# running another python (under vmrt too: the environment is inherited) and
# `sort`; output and status must match the native run (both trap backends).
source "$(dirname "$0")/lib/scenario_lib.bash" "$1"
need python3 sort

cat >"$TMP/work.py" <<'PY'
import hashlib, json, os, random, re, subprocess, sys, threading
from concurrent.futures import ThreadPoolExecutor

def job(seed):
    rng = random.Random(seed)
    docs = [{"id": i, "name": "".join(rng.choice("abcdefghij") for _ in range(rng.randint(3, 12))),
             "tags": [rng.randint(0, 50) for _ in range(rng.randint(0, 8))],
             "score": rng.random()} for i in range(4000)]
    text = json.dumps(docs, sort_keys=True)
    back = json.loads(text)
    words = re.findall(r"[a-j]{5,}", text)
    counts = {}
    for w in words:
        counts[w[:3]] = counts.get(w[:3], 0) + 1
    top = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:5]
    back.sort(key=lambda d: (len(d["tags"]), d["name"], d["id"]))
    big = [str(x) * (x % 7) for x in range(20000)]
    big.sort()
    return seed, hashlib.sha256(text.encode()).hexdigest()[:16], len(words), top, back[0]["id"], len("".join(big))

with ThreadPoolExecutor(max_workers=4) as ex:
    results = list(ex.map(job, range(8)))
for r in results:
    print(r)

lock = threading.Lock()
shared = []
def appender(k):
    for i in range(20000):
        with lock:
            shared.append((k, i, "x" * (i % 13)))
ts = [threading.Thread(target=appender, args=(k,)) for k in range(4)]
for t in ts: t.start()
for t in ts: t.join()
print("shared", len(shared), sum(len(s[2]) for s in shared))

child = subprocess.run([sys.executable, "-c",
    "import os, sys; print('child', sum(i*i for i in range(100000)), 'LD_PRELOAD' in os.environ and 'vmrt' in os.environ['LD_PRELOAD'])"],
    capture_output=True, text=True, check=True)
# Under vmrun the child must run under vmrt too; natively not.  Print the
# answer the run *should* have, so both runs print the same line when correct.
want = "vmrt" in os.environ.get("LD_PRELOAD", "")
print(child.stdout.strip().replace(str(want), "as-expected"))
lines = "\n".join(str((i * 7919) % 10007) for i in range(10007)) + "\n"
s = subprocess.run(["sort", "-n"], input=lines, capture_output=True, text=True, check=True)
out = s.stdout.split()
print("sorted", len(out), out[:3], out[-3:], out == [str(i) for i in range(10007)])
PY
write_workflow <<SH
python3 "$TMP/work.py"
SH
compare_both_traps
