# scenario_lib.bash — shared helpers for tests/scenario/*.sh (sourced, not run).
#
# A scenario runs a real program natively and under `$BUILD/bin/vmrun --`, in a
# fresh working directory at the same path both times, and fails with a diff
# when stdout, stderr or the exit status differ.  Usage in a scenario:
#   source "$(dirname "$0")/lib/scenario_lib.bash" "$1"
#   need python3 sort
#   write_workflow <<'SH' ... SH          # the workflow, a bash script
#   compare_workflow [vmrun options...]   # native vs vmrun, fails on mismatch
set -euo pipefail

BUILD=$(cd "${1:?usage: $0 BUILD_DIR}" && pwd)
VMRUN=$BUILD/bin/vmrun
SCENARIO=$(basename "$0" .sh)
TMP=$(mktemp -d "/tmp/vmrt-$SCENARIO.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
WORK=$TMP/work
# Debian's programs, not wrappers (pyenv shims and the like) that change between runs.
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export LC_ALL=C TZ=UTC
unset VMRT_STATS VMRT_TRAP VMRT_KMEM_DIAG VMRT_STATS_FD VMRT_HEAP VMRT_PHYSMEM VMRT_REGION_SIZE VMRT_KMEM_SIZE \
  VMRT_FRAME_CACHE VMRT_FAIL VMRT_FAIL_LOG VMRT_SWAP_SIZE VMRT_SWAP_FILE VMRT_PDPOLICY VMRT_MMAP LD_PRELOAD

fail() {
  echo "FAIL [$SCENARIO]: $*" >&2
  if [ -s "$TMP/hang-report" ]; then
    echo "[$SCENARIO] what the processes were doing when the watchdog stopped them:" >&2
    head -c 60000 "$TMP/hang-report" >&2
  fi
  exit 1
}
note() { echo "[$SCENARIO] $*" >&2; }

[ -x "$VMRUN" ] || fail "vmrun not built: $VMRUN"
[ -r "$BUILD/lib/libvmrt_malloc.so" ] || fail "shim not built: $BUILD/lib/libvmrt_malloc.so"

# need PROG...: the programs must exist (scripts/setup.sh installs them).
need() {
  local p
  for p in "$@"; do
    command -v "$p" >/dev/null 2>&1 || fail "$p not installed (run scripts/setup.sh)"
  done
}

# vmstat_value FILE NAME: the last value of the vmstat -s line NAME (exact name) in FILE;
# empty when there is none.
vmstat_value() {
  awk -v n="$2" '{ v = $1; $1 = ""; sub(/^ /, ""); if ($0 == n) last = v } END { if (last != "") print last }' "$1"
}

# expect_vmstat FILE NAME OP VALUE LABEL: fail unless the counter NAME in FILE satisfies
# `test VALUE_IN_FILE OP VALUE` (OP: -eq -ge -gt -le -lt); a missing counter fails too.
expect_vmstat() {
  local v
  v=$(vmstat_value "$1" "$2")
  [ -n "$v" ] || fail "$5: no '$2' line in vmstat -s"
  [ "$v" "$3" "$4" ] || fail "$5: '$2' is $v, expected $3 $4"
}

# trap_backend_of [VMRUN-OPTIONS...]: the trap backend vmrun picks with those options, as its
# vmstat -s names it ("userfaultfd", "sigsegv"); empty when it prints none.  awk reads the whole
# report: stopping early would make vmrun's next write a SIGPIPE, which pipefail turns into a
# failed assignment and set -e into a silent exit.
trap_backend_of() {
  "$VMRUN" "$@" --stats -- true 2>&1 | awk '/ trap backend$/ && b == "" { b = $1 } END { print b }'
}

# descendants PID: the pids of PID's descendants, children first.
descendants() {
  local c
  for c in $(pgrep -P "$1" 2>/dev/null); do
    echo "$c"
    descendants "$c"
  done
}

# hang_report PID: what PID and its descendants are doing, into $TMP/hang-report: each
# process's command line, then per thread its name, state (R: running, S: sleeping), the
# system call it is in and its kernel stack where /proc shows them, then every thread's
# stack from gdb (scripts/setup.sh installs it).
hang_report() {
  local p t
  for p in "$1" $(descendants "$1"); do
    [ -r "/proc/$p/cmdline" ] || continue
    {
      echo "=== pid $p: $(tr '\0' ' ' <"/proc/$p/cmdline" | head -c 200)"
      for t in /proc/"$p"/task/*; do
        echo "-- thread ${t##*/} $(cat "$t/comm" 2>/dev/null): state $(awk '{ print $3 }' "$t/stat" 2>/dev/null), syscall $(cut -d' ' -f1 "$t/syscall" 2>/dev/null), wchan $(cat "$t/wchan" 2>/dev/null)"
        head -12 "$t/stack" 2>/dev/null
      done
      if command -v gdb >/dev/null 2>&1; then
        timeout 90 gdb -p "$p" -batch -nx -ex "set pagination off" -ex "thread apply all bt 30" 2>&1 |
          grep -vE '^\[(New|Thread debugging)|^Using host|^warning: (Unable|Could not)|^$' | head -250
      fi
    } >>"$TMP/hang-report" 2>&1
  done
}

# watched SECS CMD...: CMD, stopped after SECS seconds with status 124 as timeout(1) does,
# but first the stacks of every process it started go into $TMP/hang-report, which fail()
# prints: a case that hangs on a CI machine says where.
watched() {
  local secs=$1 pid waited=0
  shift
  "$@" 0<&0 &
  pid=$!
  while kill -0 "$pid" 2>/dev/null; do
    if [ "$waited" -ge "$secs" ]; then
      hang_report "$pid"
      kill -9 $(descendants "$pid") "$pid" 2>/dev/null
      wait "$pid" 2>/dev/null
      return 124
    fi
    sleep 1
    waited=$((waited + 1))
  done
  wait "$pid"
}

# write_workflow: the workflow script from stdin, run with bash in $WORK.
write_workflow() { cat >"$TMP/workflow.sh"; }

# run_in_fresh_work LABEL CMD...: run in an empty $WORK; keep out/err/status.
run_in_fresh_work() {
  local label=$1
  shift
  rm -rf "$WORK"
  mkdir -p "$WORK"
  local st=0
  (cd "$WORK" && "$@") >"$TMP/$label.out" 2>"$TMP/$label.err" </dev/null || st=$?
  echo "$st" >"$TMP/$label.status"
}

# compare_outputs A B: fail with a diff if the two runs differ.
compare_outputs() {
  local a=$1 b=$2 f bad=0
  for f in out err status; do
    if ! cmp -s "$TMP/$a.$f" "$TMP/$b.$f"; then
      echo "---- $f differs ($a vs $b):" >&2
      diff -u "$TMP/$a.$f" "$TMP/$b.$f" | head -60 >&2 || true
      bad=1
    fi
  done
  [ $bad -eq 0 ] || fail "output of the run under vmrun differs from the native run"
}

# compare_workflow [vmrun options...]: the workflow natively, then under vmrun
# with the given options; fails on any difference.
compare_workflow() {
  local t0 t1 t2
  t0=$(date +%s.%N)
  run_in_fresh_work native bash "$TMP/workflow.sh"
  t1=$(date +%s.%N)
  [ "$(cat "$TMP/native.status")" = 0 ] || {
    cat "$TMP/native.err" >&2
    fail "the native run itself failed (status $(cat "$TMP/native.status"))"
  }
  run_in_fresh_work vmrt "$VMRUN" "$@" -- bash "$TMP/workflow.sh"
  t2=$(date +%s.%N)
  compare_outputs native vmrt
  note "ok: $(wc -l <"$TMP/native.out") lines of output identical;" \
    "native $(awk "BEGIN{printf \"%.2f\", $t1 - $t0}")s, vmrun $* $(awk "BEGIN{printf \"%.2f\", $t2 - $t1}")s"
}

# compare_both_traps: compare_workflow with the default backend and with sigsegv.
compare_both_traps() {
  compare_workflow "$@"
  compare_workflow --trap sigsegv "$@"
}
