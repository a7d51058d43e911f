#!/usr/bin/env bash
# Issue 12: a program that lowers its own RLIMIT_AS after vmrt booted is held to it by
# its malloc, as natively: vmrt's heap lives inside vmrt's own reservation (which the
# shim keeps out of the program's limit), so the shim turns the room the limit leaves
# into kmem's limit for the program's types.  malloc/calloc/realloc past it return
# NULL/ENOMEM (realloc leaves the block intact), never crash; freeing makes room again;
# lifting the limit lifts it.  A C program (src/as_after_boot.c) and python3's
# MemoryError, native and under vmrun with both trap backends.
source "$(dirname "$0")/lib/scenario_lib.bash" "$1"
need cc python3
cc -O2 -o "$TMP/asb" "$(dirname "$0")/src/as_after_boot.c"
"$TMP/asb" >"$TMP/native" 2>&1 || fail "native run: status $? $(cat "$TMP/native")"
native_mib=$(sed -n 's/^mib //p' "$TMP/native")
[ "$native_mib" -lt 4096 ] || fail "natively the limit did not stop malloc?"
for trap in sigsegv userfaultfd; do
  "$VMRUN" --trap $trap -- "$TMP/asb" >"$TMP/$trap" 2>&1 || fail "vmrun --trap $trap: status $? $(cat "$TMP/$trap")"
  mib=$(sed -n 's/^mib //p' "$TMP/$trap")
  # The MiB obtained depend on what each allocator maps besides the blocks: within 8%.
  [ -n "$mib" ] && [ $((mib * 100)) -ge $((native_mib * 92)) ] && [ $((mib * 100)) -le $((native_mib * 108)) ] ||
    fail "--trap $trap: malloc stopped after ${mib:-?} MiB under a 256 MiB RLIMIT_AS; natively after $native_mib"
  diff <(grep -v '^mib ' "$TMP/native") <(grep -v '^mib ' "$TMP/$trap") >&2 ||
    fail "--trap $trap: output differs from native (above)"
done
# python3: MemoryError, as natively, and the interpreter carries on.
PY='
import resource
soft, hard = resource.getrlimit(resource.RLIMIT_AS)
resource.setrlimit(resource.RLIMIT_AS, (512 << 20, hard))
try:
    b = bytearray(1 << 30)
    print("allocated 1 GiB under a 512 MiB limit")
except MemoryError:
    print("MemoryError")
small = bytearray(16 << 20)
print("then 16 MiB:", len(small))
'
python3 -c "$PY" >"$TMP/py.native" 2>&1 || fail "python natively: $(cat "$TMP/py.native")"
"$VMRUN" -- python3 -c "$PY" >"$TMP/py.vmrt" 2>&1 || fail "python under vmrun: status $? $(cat "$TMP/py.vmrt")"
cmp -s "$TMP/py.native" "$TMP/py.vmrt" || fail "python: native '$(cat "$TMP/py.native")' vs vmrt '$(cat "$TMP/py.vmrt")'"
note "ok: RLIMIT_AS set after boot holds malloc to it ($native_mib MiB natively, $mib under vmrt), python MemoryError as natively"
