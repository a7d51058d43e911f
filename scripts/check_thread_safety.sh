#!/usr/bin/env bash
# check_thread_safety.sh BUILD_DIR — clang's thread safety analysis over vmrt's own sources
# (vm/vm_thread_safety.h says what is annotated).  Every translation unit of vm/, kmem/,
# runtime/ and libc_shim/ that BUILD_DIR compiles (its compile_commands.json) goes through
# clang++ -fsyntax-only with -Werror=thread-safety; the first violations are printed and the
# exit status is 1 when there is any.  Needs clang (scripts/setup.sh installs it); without
# it the check fails, it does not pass quietly.
set -euo pipefail
build=$(cd "${1:?usage: check_thread_safety.sh BUILD_DIR}" && pwd)
src=$(cd "$(dirname "$0")/.." && pwd)
db=$build/compile_commands.json
[ -r "$db" ] || { echo "check_thread_safety: $db missing (configure with CMAKE_EXPORT_COMPILE_COMMANDS=ON)" >&2; exit 2; }
CLANG=${CLANG:-clang++}
command -v "$CLANG" >/dev/null || { echo "check_thread_safety: $CLANG not found (scripts/setup.sh installs clang)" >&2; exit 2; }
exec python3 - "$db" "$src" "$CLANG" <<'PY'
import json, os, shlex, subprocess, sys
from concurrent.futures import ThreadPoolExecutor
db, src, clang = sys.argv[1], sys.argv[2], sys.argv[3]
dirs = tuple(os.path.join(src, d) + os.sep for d in ("vm", "kmem", "runtime", "libc_shim"))
units, seen = [], set()
for e in json.load(open(db)):
    f = os.path.realpath(os.path.join(e["directory"], e["file"]))
    if not f.startswith(dirs) or f in seen:
        continue
    seen.add(f)
    args = shlex.split(e["command"])[1:] if "command" in e else e["arguments"][1:]
    keep, skip = [], False
    for a in args:
        if skip:
            skip = False
        elif a in ("-o", "-c"):
            skip = a == "-o"
        elif not a.startswith(("-O", "-f")) or a.startswith(("-fno-exceptions", "-fno-rtti")):
            keep.append(a)
    units.append((e["directory"], keep))
flags = ["-fsyntax-only", "-Wno-everything", "-Wthread-safety", "-Werror=thread-safety", "-fconstexpr-steps=100000000", "-ferror-limit=0"]
def check(u):
    d, args = u
    r = subprocess.run([clang] + args + flags, cwd=d, capture_output=True, text=True)
    return r.returncode, r.stderr
# First a probe the analysis must refuse (a map lookup and a read of a map's field, both
# without the VM lock; a read of the pmap's page tables without the pmap lock): a clang, or a
# set of flags, that lets them through would pass every unit and prove nothing.
probe = ("#include \"vm/vm_map.h\"\n"
         "#include \"runtime/pmap_linux_impl.h\"\n"
         "void probe(vmrt::vm_map* m) { vmrt::vm_map_entry* e; (void)vmrt::vm_map_lookup_entry(m, 0, &e); }\n"
         "unsigned probe_field(const vmrt::vm_map* m) { return m->nentries; }\n"
         "unsigned probe_pmap(std::size_t p) { return vmrt::rt::pml::g_bits[p]; }\n")
d0, a0 = units[0]
a0 = [a for a in a0 if not a.endswith((".cpp", ".cc"))] + ["-x", "c++", "-"]
r = subprocess.run([clang] + a0 + flags, cwd=d0, input=probe, capture_output=True, text=True)
if (r.returncode == 0 or "calling function 'vm_map_lookup_entry' requires holding mutex 'g_vm_lock'" not in r.stderr
        or "reading variable 'nentries' requires holding mutex 'g_vm_lock'" not in r.stderr
        or "calling function 'operator[]' requires holding mutex 'g_lock'" not in r.stderr):
    sys.stderr.write("check_thread_safety: the analysis let a lookup or a field read without the VM lock, "
                     "or a page-table read without the pmap lock, through:\n" + r.stderr)
    sys.exit(1)
bad = 0
with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as ex:
    for rc, err in ex.map(check, units):
        if rc != 0:
            bad += 1
            sys.stderr.write(err)
print(f"check_thread_safety: {len(units)} translation units, {bad} with violations or errors")
sys.exit(1 if bad else 0)
PY
