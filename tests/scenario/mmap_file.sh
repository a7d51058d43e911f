#!/usr/bin/env bash
# File mappings served by vmrt (issue 6, "A vnode pager"): src/mmap_file.c maps a regular
# file shared and private and prints one line per step (values, errno, residency, the file's
# bytes, signals with their code and offset): coherence with read(2)/write(2) both ways,
# copy-on-write private mappings that never reach the file, SIGBUS BUS_ADRERR past the end
# of the file and after a truncation delivered to the program's handler, the mmap family on
# file ranges, fork inheritance, a ping-pong through a page that two processes map each on
# their own, and the errors of invalid calls.  The same lines natively and under vmrun with
# both trap backends and under paging (--physmem 16M, both backends); vmstat -s shows the
# file mappings were vmrt's (not passed to the host) and procstat -v names the file.
source "$(dirname "$0")/lib/scenario_lib.bash" "$1"
need cc

cc -O1 -o "$TMP/mf" "$(dirname "$0")/src/mmap_file.c" || fail "cannot compile mmap_file.c"
mkdir -p "$TMP/d"
runs=0
for opts in "--trap auto" "--trap sigsegv" "--trap auto --physmem 16M" "--trap sigsegv --physmem 16M"; do
  # Under paging a private mapping's pages are copies read at the first touch: the one step
  # whose answer POSIX leaves unspecified (a later write(2) seen through a private mapping)
  # is skipped on both sides, visibly (MMAP_FILE_POSIX, a line in the output).
  case $opts in *physmem*) export MMAP_FILE_POSIX=1 ;; *) unset MMAP_FILE_POSIX ;; esac
  "$TMP/mf" "$TMP/d" >"$TMP/native.out" 2>&1 || fail "native run failed: $(cat "$TMP/native.out")"
  # shellcheck disable=SC2086
  "$VMRUN" $opts --stats --stats-fd 3 -- "$TMP/mf" "$TMP/d" >"$TMP/vmrt.out" 2>&1 3>"$TMP/stats" ||
    fail "vmrun $opts failed: $(tail -5 "$TMP/vmrt.out")"
  diff -u "$TMP/native.out" "$TMP/vmrt.out" >&2 || fail "vmrun $opts: output differs from native (above)"
  expect_vmstat "$TMP/stats" "file mappings made" -ge 10 "vmrun $opts"
  # Counted by vmrt's trap handler, which is there when memory is pageable (--physmem);
  # without it the host delivers SIGBUS to the program's handler directly.
  case $opts in *physmem*) expect_vmstat "$TMP/stats" "SIGBUS past end of file" -ge 4 "vmrun $opts" ;; esac
  # Under paging with userfaultfd the private mappings are the vnode pager's: it read file
  # pages.  (Under sigsegv traps they stay host memory: a kernel-mode touch of a page not
  # resident would fail with EFAULT there, as for anonymous memory.)
  case $opts in *auto*physmem*) expect_vmstat "$TMP/stats" "vnode pager pages paged in" -ge 3 "vmrun $opts" ;; esac
  expect_vmstat "$TMP/stats" "msync calls on file mappings" -ge 3 "vmrun $opts"
  grep -q " vn .*/d/data.bin" "$TMP/stats" || {
    sed -n '/procstat -v (process vmspace)/,/procstat -v (kernel map)/p' "$TMP/stats" >&2
    fail "vmrun $opts: procstat -v does not name the mapped file"
  }
  runs=$((runs + 1))
done
note "ok: $(wc -l <"$TMP/native.out") lines identical to native in $runs configurations;" \
  "$(vmstat_value "$TMP/stats" "file mappings made") file mappings made by vmrt in the last"
