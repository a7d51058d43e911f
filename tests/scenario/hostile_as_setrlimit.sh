#!/usr/bin/env bash
# Issue 12: a program that lowers its own RLIMIT_AS or RLIMIT_DATA after vmrt booted is
# held to it by its malloc, as natively, with either heap backing.  vmrt's heap lives inside
# vmrt's own reservation, and vmrt's tables are private data: the shim keeps both out of
# the program's limits and turns the room a limit leaves into a budget of heap pages
# (RLIMIT_DATA with a host-memory heap: the kernel counts the heap windows itself).
# malloc/calloc/realloc past it return NULL/ENOMEM (realloc leaves the block intact), never
# crash; freeing makes room again; lifting the limit lifts it.  A C program
# (src/as_after_boot.c) and python3's MemoryError, native and under vmrun.
source "$(dirname "$0")/lib/scenario_lib.bash" "$1"
need cc python3
for res in AS DATA; do
  cc -O2 -DLIMIT_RES=RLIMIT_$res -o "$TMP/asb" "$(dirname "$0")/src/as_after_boot.c"
  "$TMP/asb" >"$TMP/native" 2>&1 || fail "RLIMIT_$res native run: status $? $(cat "$TMP/native")"
  native_mib=$(sed -n 's/^mib //p' "$TMP/native")
  [ "$native_mib" -lt 4096 ] || fail "natively RLIMIT_$res did not stop malloc?"
  for heap in host frames; do
    for trap in sigsegv userfaultfd; do
      [ $heap = frames ] && [ $trap = sigsegv ] && continue  # the backends matter little here
      label="RLIMIT_$res, VMRT_HEAP=$heap, --trap $trap"
      VMRT_HEAP=$heap "$VMRUN" --trap $trap -- "$TMP/asb" >"$TMP/v" 2>&1 || fail "$label: status $? $(cat "$TMP/v")"
      mib=$(sed -n 's/^mib //p' "$TMP/v")
      # The MiB obtained depend on what each allocator maps besides the blocks: within 8%.
      [ -n "$mib" ] && [ $((mib * 100)) -ge $((native_mib * 92)) ] && [ $((mib * 100)) -le $((native_mib * 108)) ] ||
        fail "$label: malloc stopped after ${mib:-?} MiB under a 256 MiB limit; natively after $native_mib"
      diff <(grep -v '^mib ' "$TMP/native") <(grep -v '^mib ' "$TMP/v") >&2 || fail "$label: output differs from native (above)"
      note "$label: $mib MiB (native $native_mib)"
    done
  done
done
# A shell's `ulimit -d` under vmrt, then fork and exec: vmrt's tables are not charged to
# the shell's limit (its fork failed with ENOMEM: the child could not even read
# /proc/self/maps), and the exec'd program sees the limit the shell set.
SH_D='ulimit -d 500000; python3 -c "print(sum(range(10**6)))"; ulimit -d; (echo sub)'
a=$(bash -c "$SH_D" 2>&1; echo "status $?")
b=$("$VMRUN" -- bash -c "$SH_D" 2>&1; echo "status $?")
[ "$a" = "$b" ] || fail "ulimit -d then fork/exec: native '$a', vmrt '$b'"
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
note "ok: RLIMIT_AS and RLIMIT_DATA set after boot hold malloc to them, python MemoryError as natively"
