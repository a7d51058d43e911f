#!/usr/bin/env bash
# gen_hot_text.sh — regenerate libc_shim/hot_text.ld: the shim's functions a short-lived
# process runs (boot, malloc and free, the first mmap, fork, the wrapped calls, exit), found by
# running real programs under the shim with callgrind, so the linker puts them first in the
# text and the load-time populate maps only them (runtime/rt_populate.cpp).
#
#   cmake -S . -B build-cold -DCMAKE_BUILD_TYPE=Release -DVMRT_HOT_TEXT=OFF
#   cmake --build build-cold --target vmrt_malloc -j2
#   libc_shim/gen_hot_text.sh build-cold     (needs valgrind, git, python3, sqlite3, perl, gcc, xz)
# The build profiled must not have the hot section: valgrind names no function in it.
#
# A function missing from the list still works: it sits in the cold text, which faults in
# on first use.  A stale name in the list matches nothing.  Run it again after changes that
# move work between functions on these paths, and commit the result.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=$(cd "${1:-$here/../build}" && pwd)
shim=$build/lib/libvmrt_malloc.so
[ -r "$shim" ] || { echo "gen_hot_text: $shim not built" >&2; exit 1; }
if readelf -SW "$shim" | grep -q '\.text\.vmrt_hot'; then
  echo "gen_hot_text: $shim has the hot section already: profile a build configured with -DVMRT_HOT_TEXT=OFF" >&2
  exit 1
fi
for t in valgrind git python3 sqlite3 perl gcc xz; do command -v "$t" >/dev/null || { echo "gen_hot_text: needs $t" >&2; exit 1; }; done
work=$(mktemp -d /tmp/vmrt-hot.XXXXXX)
trap '[ -n "${KEEP:-}" ] || rm -rf "$work"' EXIT
cd "$work"

# An 8 GiB region: valgrind's address space does not hold the default one and the physmem
# direct map, and the shim would fall back to stage 0, whose paths are not the VM's.
# A fork child's profile would start with its parent's counts (callgrind's state is copied
# by the fork): zeroed when the child enters the shim's atfork_child, it holds what the child
# ran.
run() {
  valgrind --tool=callgrind --trace-children=yes --demangle=no --callgrind-out-file="$work/cg.%p" \
    --zero-before=_ZN4vmrt4shim12_GLOBAL__N_112atfork_childEv \
    env LD_PRELOAD="$shim" VMRT_REGION_SIZE=8G "$@" >/dev/null 2>&1 || { echo "gen_hot_text: failed under callgrind: $*" >&2; exit 1; }
}
git init -q repo
(cd repo && for i in 1 2; do echo $i >>f; git add f; git -c user.name=a -c user.email=a@b commit -qm c$i; done)
echo 'int main(void) { return 0; }' >s.c
head -c 1000000 /dev/urandom | base64 >data.txt
run bash -c 'for i in 1 2 3; do x=$(echo $i); done; echo $x'
(cd repo && run git add f && run git status && run git log --oneline)
run python3 -c 'import json, collections; print(json.dumps(dict(collections.Counter("abcab"))))'
run python3 -c 'import threading; ts = [threading.Thread(target=lambda: sum(range(1000))) for _ in range(3)]; [t.start() for t in ts]; [t.join() for t in ts]'
run sqlite3 :memory: 'create table t(a); insert into t values(1); select * from t;'
run sed -n 1p /etc/passwd
run gcc -c s.c -o s.o
run perl -e 'my %h; $h{$_}++ for 1..1000; print scalar(keys %h)'
run xz -T2 -3 -c data.txt

nm --defined-only -S "$shim" >"$work/syms"
python3 - "$work" "$here/hot_text.ld" <<'PY'
import glob, re, sys
work, out = sys.argv[1], sys.argv[2]
# valgrind names functions in an output section it does not know (.text.vmrt_hot, this
# script's own product) by address: back to their symbols through the shim's symbol table.
syms = []
for line in open(work + '/syms'):
    f = line.split()
    if len(f) == 4 and f[2] in 'tTW':
        syms.append((int(f[0], 16), int(f[1], 16), f[3]))
def symbol_at(a):
    for lo, size, name in syms:
        if lo <= a < lo + size:
            return name
    return None
# Per profiled process (one callgrind file each, fork children included), the shim functions
# it ran.  A fork child is a file that ran the shim's atfork_child.
runs = []
for f in glob.glob(work + '/cg.*'):
    obs, fns, ob, ran = {}, {}, None, set()
    for line in open(f, errors='replace'):
        m = re.match(r'(c?)(ob|fn)=\((\d+)\)(?: (.*))?$', line.rstrip('\n'))
        if not m:
            continue
        call, kind, ident, name = m.groups()
        table = obs if kind == 'ob' else fns
        if name:
            table[ident] = name
        if call:
            continue
        if kind == 'ob':
            ob = obs.get(ident)
        elif ob is not None and 'libvmrt_malloc' in ob and ident in fns:
            name = fns[ident]
            if name.startswith('0x'):
                name = symbol_at(int(name, 16))
            if name is not None:
                ran.add(name)
    runs.append(ran)
CHILD_MARK = '_ZN4vmrt4shim12_GLOBAL__N_112atfork_childEv'
children = [r for r in runs if CHILD_MARK in r]
if not children:
    sys.exit('gen_hot_text: no fork child among the profiles (bash\'s $(...) loop): the child run would be empty')
hot = set().union(*runs)
# The exported fork returns in the child too (after the child handlers, where its profile starts).
for r in children:
    r.update(n for n in ('fork', 'vfork', '_Fork') if n in hot)
n_all = {n: sum(n in r for r in runs) for n in hot}
n_child = {n: sum(n in r for r in children) for n in hot}
# The order within the section.  On these guests every page a process touches costs its
# first access, a fork child's included (the hypervisor's shadow page tables), so the text
# is laid out by who runs it: after the fork child's own text (the sorted fork sections
# come first), everything a fork child runs (malloc and free, their slow paths, the wrapped
# calls, the exit), then the rest, each run most-used first (functions run by every process
# before those only some run), by name among equals.  A fork child of a shell spans a few
# contiguous pages instead of the whole section; an exec'd process's boot follows.
# The load-time populate itself runs before the text is populated: first, on the page of
# .init (which the loader's call of _init faults in just before), not on a page of its own.
FIRST = '_ZN4vmrt2rt12_GLOBAL__N_116populate_at_loadEv'
if FIRST not in hot:
    sys.exit('gen_hot_text: %s did not run (renamed? update FIRST)' % FIRST)
hot.discard(FIRST)
child_run = sorted((n for n in hot if n_child[n]), key=lambda n: (-n_child[n], -n_all[n], n))
rest = sorted((n for n in hot if not n_child[n]), key=lambda n: (-n_all[n], n))
names = child_run + rest
if not any('pmap_linux_init' in n for n in names):
    sys.exit('gen_hot_text: the VM did not boot under callgrind (no pmap_linux_init): the list would be stage 0\'s')
def emit(o, n):  # GCC puts constructors in .text.startup.*, functions it finds hot in .text.hot.*
    if n.endswith('.cold'):  # the cold part GCC split off a function, when it ran
        o.write('    *(.text.unlikely.%s)\n' % n[:-len('.cold')])
    else:
        o.write('    *(.text.%s .text.startup.%s .text.hot.%s)\n' % (n, n, n))
with open(out, 'w') as o:
    o.write('''/* hot_text.ld — GENERATED by libc_shim/gen_hot_text.sh; do not edit by hand.
   The shim's functions a short-lived process runs (boot, malloc and free, the first mmap,
   fork and its handlers, the wrapped calls, exit; %d functions, found with callgrind over
   bash, git, python, sqlite3, sed, gcc, perl and xz), first in the text: the load-time
   populate maps these pages only (runtime/rt_populate.cpp); every other function follows in
   .text and faults in on first use.  Laid out by who runs them, since every page a process
   touches costs its first access on these guests, a fork child's too: the load-time
   populate (it runs before the text is populated: on the page of .init, which the loader's
   call of _init has just faulted in), the fork text a child runs (its own, then what both
   sides run), crtbeginS.o's code (__do_global_dtors_aux runs the destructors at every exit)
   and libc_nonshared.a's (atexit, which boot calls), the %d functions a fork child of a
   shell ran (malloc and free first, their slow paths, the wrapped calls, the exit report),
   the forking parent's text, then the rest, most-used first.  Compiled with
   -ffunction-sections: each function is its own input section .text.<mangled name>; the
   cold part GCC splits off a function, .text.unlikely.<name>, is listed where it ran
   (callgrind's <name>.cold).  The section starts right after the PLT, on its page
   (crtbeginS.o's exit code calls __cxa_finalize through it: a page of its own was one more
   in every exiting process), and ends on a page boundary, where the cold text starts. */
SECTIONS
{
  .text.vmrt_hot :
  {
    __vmrt_hot_text_start = .;
    *(.text.%s .text.startup.%s)
    *(SORT(.text.sorted.vmrt_fork_1_*))
    *(SORT(.text.sorted.vmrt_fork_2_*))
    *crtbeginS.o(.text .text.*)
    *libc_nonshared.a:*(.text .text.*)
''' % (len(names) + 1, len(child_run), FIRST, FIRST))
    for n in child_run:
        emit(o, n)
    o.write('    *(SORT(.text.sorted.vmrt_fork_3_*))\n')
    for n in rest:
        emit(o, n)
    o.write('''    . = ALIGN(4096);
    __vmrt_hot_text_end = .;
  }
}
INSERT BEFORE .text;
''')
print('gen_hot_text: %d functions -> %s' % (len(names), out))
PY
