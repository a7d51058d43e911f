#!/usr/bin/env bash
# The malloc shim boots vmrt from the first malloc call, which often comes from ld.so before
# any constructor has run.  A dynamic initializer in the machine would run afterwards and
# reset state the boot already set up (it once nulled the kmem page source's resize op and
# the kernel window's vmspace).  So libvmrt_malloc.so must have none: GCC names them
# _GLOBAL__sub_I_<file>.  Globals of the machine are constant-initialized (constinit).
set -euo pipefail
build=${1:?build dir}
lib="$build/lib/libvmrt_malloc.so"
[ -f "$lib" ] || { echo "missing $lib" >&2; exit 1; }
inits=$(nm "$lib" | grep -E '_GLOBAL__sub_I|_GLOBAL__I_' || true)
if [ -n "$inits" ]; then
  echo "dynamic initializers in $lib:" >&2
  echo "$inits" >&2
  exit 1
fi
echo "no dynamic initializers in libvmrt_malloc.so"
