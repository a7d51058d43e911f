#!/usr/bin/env bash
# A thread running on a stack the program malloc'd (pthread_attr_setstack) forks, with the
# heap in vmrt's frames (paging, and VMRT_HEAP=frames) and with the default host heap.
# Until the child has copied the frames in use both processes map the same frames: the
# parent's fork handlers and the child's glibc fork code wrote below the same stack pointer
# into them, and one of them crashed (status 139).  fork() now runs on a stack of host
# memory when its own is in frames (libc_shim/shim_fork.cpp).  Every child must run and
# exit 0.  Under the sigsegv trap backend too, since such a thread no longer dies before its
# first instruction there (libc_shim/shim_thread.cpp; scenario program_stacks).
source "$(dirname "$0")/lib/scenario_lib.bash" "$1"
need cc
cc -O2 -pthread -o "$TMP/fms" "$(dirname "$0")/src/fork_malloc_stack.c"
SHIM=$BUILD/lib/libvmrt_malloc.so
run() {  # run LABEL CMD...: expects "ok 20"
  local label=$1 got
  shift
  got=$(watched 120 "$@" "$TMP/fms" 2>"$TMP/err") || fail "$label: status $?: $got $(head -3 "$TMP/err")"
  [ "$got" = "ok 20" ] || fail "$label: got '$got' $(head -3 "$TMP/err")"
  note "ok: $label: 20 forks from a thread on a malloc'd stack"
}
run "paging (userfaultfd)" "$VMRUN" --physmem 8M --
run "paging (sigsegv)" "$VMRUN" --physmem 8M --trap sigsegv --
run "heap of frames (sigsegv)" env VMRT_HEAP=frames VMRT_TRAP=sigsegv LD_PRELOAD="$SHIM"
run "heap of frames" env VMRT_HEAP=frames LD_PRELOAD="$SHIM"
run "default heap" env LD_PRELOAD="$SHIM"
echo "fork malloc stack: all passed"
