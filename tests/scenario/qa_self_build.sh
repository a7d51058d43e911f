#!/usr/bin/env bash
# cmake + make + g++ under vmrun on a real C++ project: a snapshot of vmrt's own
# sources is configured and its VM and kernel malloc (vmrt_vm, vmrt_kmem: template-
# heavy C++20) built with -j2, natively and under vmrun.  Every object file must be
# byte-identical, and the archives must hold the same members.
source "$(dirname "$0")/lib/scenario_lib.bash" "$1"
need cmake make g++ ar sha256sum
SRC=$(cd "$(dirname "$0")/../.." && pwd)
# A snapshot, so that edits in the tree during the test cannot make the two builds differ.
mkdir -p "$TMP/src"
tar -C "$SRC" --exclude='./build*' --exclude=./.git -cf - . | tar -C "$TMP/src" -xf -
write_workflow <<SH
set -e
cmake -S "$TMP/src" -B b -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build b -j2 --target vmrt_vm vmrt_kmem >/dev/null
cd b
find . -name '*.o' | sort | xargs sha256sum
find . -name '*.o' | wc -l
ar t lib/libvmrt_vm.a | sort | sha256sum
ar t lib/libvmrt_kmem.a | wc -l
SH
compare_workflow
n=$(tail -3 "$TMP/vmrt.out" | head -1)
[ "$n" -ge 15 ] || fail "expected the machine's objects, got $n"
