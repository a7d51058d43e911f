# regrtest_compare.py NATIVE_LOG VMRT_LOG — compare two `python -m test -v` logs test case
# by test case.  Prints every test whose outcome differs and exits 1 if any does.
# Outcomes: ok, FAIL, ERROR, skipped, expected failure, unexpected success; a test seen in
# one log and not the other counts as "missing".
import re, sys

CASE = re.compile(r"^(\w+) \((test\.[\w.]+)\)(?: \.\.\. (.*))?$")
VERDICT = re.compile(r"^(ok|FAIL|ERROR|skipped.*|expected failure|unexpected success)$")
SUMMARY = re.compile(r"^(FAIL|ERROR): (\w+) \((test\.[\w.]+)\)")


def outcomes(path):
    res, pending = {}, None
    with open(path, errors="replace") as f:
        for line in f:
            line = line.rstrip("\n")
            m = CASE.match(line)
            if m:
                key, tail = m.group(2), m.group(3)
                if tail is None:
                    pending = None
                    continue
                v = tail.split(" ")[0] if tail.startswith(("ok", "FAIL", "ERROR")) else tail
                if VERDICT.match(v) or v in ("ok", "FAIL", "ERROR"):
                    res[key] = "skipped" if v.startswith("skipped") else v
                    pending = None
                else:
                    pending = key  # output between "..." and the verdict
                continue
            if pending and VERDICT.match(line.strip()):
                v = line.strip()
                res[pending] = "skipped" if v.startswith("skipped") else v
                pending = None
                continue
            m = SUMMARY.match(line)
            if m:
                res[m.group(3)] = m.group(1)
    return res


a, b = outcomes(sys.argv[1]), outcomes(sys.argv[2])
diff = sorted(k for k in set(a) | set(b) if a.get(k, "missing") != b.get(k, "missing"))
passed_a = sum(1 for v in a.values() if v == "ok")
passed_b = sum(1 for v in b.values() if v == "ok")
print(f"test cases: native {len(a)} ({passed_a} ok), vmrt {len(b)} ({passed_b} ok), differing {len(diff)}")
for k in diff:
    print(f"  {k}: native {a.get(k, 'missing')}, vmrt {b.get(k, 'missing')}")
sys.exit(1 if diff else 0)
