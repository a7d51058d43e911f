#!/usr/bin/env bash
# The launcher itself: --help documents every option and variable; exit status,
# signals and stdio pass through; LD_PRELOAD is prepended; children inherit
# vmrt; a missing program is 127; a static program is refused with 126.
source "$(dirname "$0")/lib/scenario_lib.bash" "$1"
need cc bash

"$VMRUN" --help >"$TMP/help" || fail "--help failed"
for word in --physmem --trap --stats --stats-fd --kmem-diag --region --kmem-size \
            VMRT_PHYSMEM VMRT_TRAP VMRT_STATS VMRT_STATS_FD VMRT_KMEM_DIAG VMRT_REGION_SIZE VMRT_KMEM_SIZE VMRT_FRAME_CACHE VMRT_HEAP \
            LD_PRELOAD auto sigsegv userfaultfd 126 127; do
  grep -q -- "$word" "$TMP/help" || fail "--help does not mention $word"
done

# Exit status and signals are the program's own.
st=0; "$VMRUN" -- bash -c 'exit 42' || st=$?
[ $st -eq 42 ] || fail "exit status 42 came back as $st"
st=0; ( "$VMRUN" -- bash -c 'kill -TERM $$'; exit $? ) 2>/dev/null || st=$?
[ $st -eq 143 ] || fail "SIGTERM came back as status $st (want 143)"
st=0; ( "$VMRUN" -- bash -c 'kill -SEGV $$'; exit $? ) 2>/dev/null || st=$?
[ $st -eq 139 ] || fail "SIGSEGV came back as status $st (want 139)"

# stdin/stdout/stderr pass through.
out=$(printf 'b\na\n' | "$VMRUN" -- sort 2>/dev/null | tr '\n' ,)
[ "$out" = "a,b," ] || fail "stdin/stdout through vmrun: got '$out'"
err=$("$VMRUN" -- bash -c 'echo to-stderr >&2' 2>&1 >/dev/null)
[ "$err" = to-stderr ] || fail "stderr through vmrun: got '$err'"

# LD_PRELOAD: shim first, an existing value kept; the program and its children run under vmrt.
cat >"$TMP/which.c" <<'C'
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>
int main(void) {
  Dl_info i;
  void* m = dlsym(RTLD_DEFAULT, "malloc");
  printf("%s\n", dladdr(m, &i) && strstr(i.dli_fname, "libvmrt_malloc.so") ? "vmrt" : "other");
  return 0;
}
C
cc -o "$TMP/which" "$TMP/which.c" -ldl
[ "$("$TMP/which")" = other ] || fail "the native run already has vmrt's malloc?"
[ "$("$VMRUN" -- "$TMP/which")" = vmrt ] || fail "the program does not get vmrt's malloc"
[ "$("$VMRUN" -- bash -c "'$TMP/which'")" = vmrt ] || fail "a child of the program does not run under vmrt"
pre=$(LD_PRELOAD=/lib/x86_64-linux-gnu/libm.so.6 "$VMRUN" -- bash -c 'echo "$LD_PRELOAD"')
case "$pre" in
  */libvmrt_malloc.so:/lib/x86_64-linux-gnu/libm.so.6) ;;
  *) fail "LD_PRELOAD not prepended: '$pre'" ;;
esac
pre2=$("$VMRUN" -- "$VMRUN" -- bash -c 'echo "$LD_PRELOAD"')
[ "$(echo "$pre2" | grep -o libvmrt_malloc.so | wc -l)" = 1 ] || fail "nested vmrun duplicated the shim: '$pre2'"
[ "$("$VMRUN" --trap sigsegv --physmem 1G -- bash -c 'echo $VMRT_TRAP $VMRT_PHYSMEM')" = "sigsegv 1G" ] ||
  fail "options do not reach the environment"

# Errors: missing program 127, static program 126, bad option 2.
st=0; "$VMRUN" -- no-such-program-xyz 2>"$TMP/e1" || st=$?
[ $st -eq 127 ] && grep -q 'not found' "$TMP/e1" || fail "missing program: status $st, '$(cat "$TMP/e1")'"
echo 'int main(void) { return 0; }' >"$TMP/s.c"
if cc -static -o "$TMP/static" "$TMP/s.c" 2>/dev/null; then
  st=0; "$VMRUN" -- "$TMP/static" 2>"$TMP/e2" || st=$?
  [ $st -eq 126 ] && grep -q 'statically linked' "$TMP/e2" || fail "static program: status $st, '$(cat "$TMP/e2")'"
else
  note "no static libc: static-program check skipped"
fi
printf '#!/bin/sh\necho script-ok\n' >"$TMP/script"; chmod +x "$TMP/script"
[ "$("$VMRUN" -- "$TMP/script")" = script-ok ] || fail "a #! script does not run"
chmod -x "$TMP/script"
st=0; "$VMRUN" -- "$TMP/script" 2>/dev/null || st=$?
[ $st -eq 126 ] || fail "non-executable file: status $st (want 126)"
st=0; "$VMRUN" --trap bogus -- true 2>/dev/null || st=$?
[ $st -eq 2 ] || fail "bad --trap value: status $st (want 2)"
st=0; "$VMRUN" --physmem lots -- true 2>/dev/null || st=$?
[ $st -eq 2 ] || fail "bad --physmem value: status $st (want 2)"
st=0; "$VMRUN" 2>/dev/null || st=$?
[ $st -eq 2 ] || fail "no program: status $st (want 2)"
# A program with its own malloc runs, with a warning that vmrt's is bypassed.
cat >"$TMP/own.c" <<'C'
#include <stddef.h>
#include <stdio.h>
static char heap[1 << 20];
static size_t off;
void* malloc(size_t n) { void* p = heap + off; off += (n + 15) & ~(size_t)15; return p; }
void free(void* p) { (void)p; }
void* calloc(size_t a, size_t b) { char* p = malloc(a * b); for (size_t i = 0; i < a * b; ++i) p[i] = 0; return p; }
void* realloc(void* p, size_t n) { (void)p; return malloc(n); }
int main(void) { puts("own-malloc"); return 0; }
C
cc -O1 -rdynamic -o "$TMP/own" "$TMP/own.c"
[ "$("$VMRUN" -- "$TMP/own" 2>"$TMP/own.err")" = own-malloc ] || fail "program with its own malloc did not run"
grep -q 'defines its own malloc' "$TMP/own.err" || fail "no warning for a program with its own malloc"
"$VMRUN" -- sort </dev/null 2>"$TMP/sort.err"
grep -q 'own malloc' "$TMP/sort.err" && fail "spurious own-malloc warning for sort"

# Every VMRT_* value the runtime would refuse is refused by vmrun (exit 2, the accepted
# range named, nothing run), whether it comes from an option or the inherited environment;
# the runtime and vmrun share one parser and table (runtime/rt_config.h).
refused() {  # refused EXPECTED-TEXT ENV... -- VMRUN-OPTIONS...
  local want=$1; shift
  local envs=()
  while [ "$1" != -- ]; do envs+=("$1"); shift; done
  shift
  rm -f "$TMP/ran"
  local st=0
  env "${envs[@]}" "$VMRUN" "$@" -- touch "$TMP/ran" 2>"$TMP/refused.err" || st=$?
  [ $st -eq 2 ] || fail "${envs[*]} $*: status $st (want 2): $(cat "$TMP/refused.err")"
  [ ! -e "$TMP/ran" ] || fail "${envs[*]} $*: the program ran although the value was refused"
  grep -qF -- "$want" "$TMP/refused.err" || fail "${envs[*]} $*: message lacks '$want': $(cat "$TMP/refused.err")"
}
refused '--physmem=512K: out of range (accepted: 1M .. 16T)' -- --physmem 512K
refused 'VMRT_PHYSMEM=512K: out of range (accepted: 1M .. 16T)' VMRT_PHYSMEM=512K --
refused 'accepted: 1M .. 16T' VMRT_PHYSMEM=1048575 --
refused 'VMRT_PHYSMEM=: not a size' VMRT_PHYSMEM= --
refused 'VMRT_REGION_SIZE=32M: out of range (accepted: 112M .. 16T)' VMRT_REGION_SIZE=32M --
refused 'VMRT_REGION_SIZE=64M: out of range (accepted: 112M .. 16T)' VMRT_REGION_SIZE=64M --
refused 'VMRT_KMEM_SIZE=9T: out of range (accepted: 16M .. 8T)' VMRT_KMEM_SIZE=9T --
refused 'VMRT_FRAME_CACHE=lots: not a size' VMRT_FRAME_CACHE=lots --
refused 'VMRT_FRAME_CACHE=17T: out of range (accepted: 0 .. 16T)' VMRT_FRAME_CACHE=17T --
refused 'VMRT_TRAP=bogus: not a trap backend (accepted: auto, sigsegv, userfaultfd)' VMRT_TRAP=bogus --
refused 'VMRT_HEAP=Host: not a heap backing (accepted: host, frames, paged)' VMRT_HEAP=Host --
refused 'VMRT_STATS_FD=99999999: descriptor out of range (accepted: 0 .. 1048575)' VMRT_STATS_FD=99999999 --
refused '--stats-fd=99999999: descriptor out of range' -- --stats-fd 99999999
refused 'VMRT_STATS_FD=-1: not a file descriptor number' VMRT_STATS_FD=-1 --
refused '--kmem-size=40G: does not fit the region (64G, the default: kmem may use 32G of it); give a region of at least 80G' -- --kmem-size 40G
refused 'does not fit the region (1G: kmem may use 512M of it); give a region of at least 2G' -- --kmem-size 1G --region 1G
# The kernel window takes 80M of the region: a 48M kmem does not fit 128M (the VM fell back to stage 0).
refused 'does not fit the region (128M: kmem may use 32M of it); give a region of at least 144M' -- --kmem-size 48M --region 128M
refused 'VMRT_FAIL_LOG=/nonexistent-dir/log: cannot open: No such file or directory' -- --fail malloc:nth=1000000 --fail-log /nonexistent-dir/log
refused 'VMRT_FAIL_LOG=/nonexistent-dir/log: cannot open' VMRT_FAIL=frame:print VMRT_FAIL_LOG=/nonexistent-dir/log --
# An option overrides the inherited variable, and is what is checked.
VMRT_PHYSMEM=8M "$VMRUN" --physmem 1G -- true || fail "--physmem 1G over VMRT_PHYSMEM=8M was refused"
# Accepted values still run, at the boundaries too, with no warning from the runtime.
# An explicit region alone sizes the default kmem to fit it (it used to be clamped with a
# warning, or not fit at all: stage 0).
for ok in "--physmem 1M" "--physmem 16M" "--physmem 1G --kmem-size 32G" "--kmem-size 40G --region 80G" "--trap uffd" \
          "--stats-fd 1048575" "--region 112M" "--region 1G" "--region 128M --kmem-size 32M" "--region 160M"; do
  # shellcheck disable=SC2086
  "$VMRUN" $ok -- bash -c 'echo ran' >"$TMP/ok.out" 2>"$TMP/ok.err" || fail "vmrun $ok: status $?: $(cat "$TMP/ok.err")"
  [ "$(cat "$TMP/ok.out")" = ran ] || fail "vmrun $ok did not run the program"
  ! grep -q '^vmrt:' "$TMP/ok.err" || fail "vmrun $ok: the runtime complained: $(cat "$TMP/ok.err")"
done
# An accepted size is the size the machine gets: physmem below 16M was raised to 16M without a
# word (2026-12-05: `--physmem 1M` ran with 16384 KiB, and the paging scenario's "1M floor"
# runs with 16M of frames), where the table's floor is 1M.
for mib in 1 2 8 16; do
  got=$("$VMRUN" --physmem ${mib}M --stats -- true 2>&1 | awk '$2 == "KiB" && $3 == "physmem" { print $1 }')
  [ "$got" = $((mib * 1024)) ] || fail "vmrun --physmem ${mib}M ran with ${got:-?} KiB of physmem (want $((mib * 1024)))"
done
note "ok: --physmem 1M, 2M, 8M, 16M give that much physmem"
# The runtime refuses (message, default) exactly what vmrun refuses: the same table.
shim=$BUILD/lib/libvmrt_malloc.so
for kv in VMRT_PHYSMEM=512K VMRT_PHYSMEM=8M VMRT_PHYSMEM=16M VMRT_PHYSMEM=1g VMRT_PHYSMEM=1GB VMRT_PHYSMEM=1GiB VMRT_REGION_SIZE=63M VMRT_REGION_SIZE=100M \
          VMRT_KMEM_SIZE=0 VMRT_FRAME_CACHE=0 VMRT_TRAP=uffd VMRT_TRAP=SIGSEGV VMRT_HEAP=frames VMRT_HEAP= VMRT_STATS_FD=1048576 VMRT_STATS_FD=7; do
  vst=0; env "$kv" "$VMRUN" -- true 2>/dev/null || vst=$?
  env "$kv" LD_PRELOAD="$shim" bash -c 'echo x' 2>"$TMP/rt.err" >/dev/null
  if grep -q "^vmrt: ${kv%%=*}=" "$TMP/rt.err"; then rt=refused; else rt=accepted; fi
  if [ $vst -eq 2 ]; then vm=refused; else vm=accepted; fi
  [ "$rt" = "$vm" ] || fail "$kv: the runtime $rt it, vmrun $vm it: $(cat "$TMP/rt.err")"
done

note "ok: help, status, signals, stdio, LD_PRELOAD, children, errors, every refused VMRT_* value"
