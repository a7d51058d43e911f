#!/usr/bin/env bash
# Error paths of the malloc family under vmrun: exhaustion (a small physmem, a small
# kmem submap) is NULL + ENOMEM for every block size class, and after freeing
# everything the same amount fits again with contents intact; bad VMRT_* values
# give a message naming the variable and the default, and the program still runs.
# (calloc/reallocarray overflow, posix_memalign EINVAL, misuse aborts: shim_edge_test
# and bad_free.sh.)
source "$(dirname "$0")/lib/scenario_lib.bash" "$1"
need cc bash

cat >"$TMP/exhaust.c" <<'C'
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#define MAXB 1000000
static void* blk[MAXB];
// Allocate `each`-byte blocks until malloc fails (must be NULL + ENOMEM), verify them.
static int fill(size_t each, int* n_out) {
  int n = 0;
  for (; n < MAXB; ++n) {
    errno = 0;
    void* p = malloc(each);
    if (p == NULL) {
      if (errno != ENOMEM) { printf("malloc failed with errno %d, not ENOMEM\n", errno); return 1; }
      break;
    }
    memset(p, n & 0xff, each);
    blk[n] = p;
  }
  if (n == MAXB) { printf("never ran out (%zu-byte blocks)\n", each); return 1; }
  for (int i = 0; i < n; ++i) {
    const unsigned char* c = blk[i];
    if (c[0] != (unsigned char)(i & 0xff) || c[each - 1] != (unsigned char)(i & 0xff)) { printf("block %d corrupted\n", i); return 1; }
  }
  *n_out = n;
  return 0;
}
int main(void) {
  size_t sizes[] = {1 << 20, 4096, 200};  // large blocks, page clusters, small buckets
  for (int k = 0; k < 3; ++k) {
    int n1 = 0, n2 = 0;
    if (fill(sizes[k], &n1)) return 1;
    errno = 0;
    void* r = realloc(blk[0], sizes[k] * 64);  // cannot grow while full: p untouched
    if (r != NULL) blk[0] = r;
    else if (errno != ENOMEM || ((unsigned char*)blk[0])[0] != 0) { printf("failed realloc: errno %d\n", errno); return 1; }
    for (int i = 0; i < n1; ++i) free(blk[i]);
    if (fill(sizes[k], &n2)) return 1;
    for (int i = 0; i < n2; ++i) free(blk[i]);
    if (n1 < 4 || n2 < n1 * 9 / 10) { printf("%zu-byte blocks: %d then only %d\n", sizes[k], n1, n2); return 1; }
    fprintf(stderr, "%zu-byte blocks: out of memory after %d, again after %d\n", sizes[k], n1, n2);
  }
  char* s = strdup("still works");
  puts(s);
  free(s);
  return 0;
}
C
cc -O1 -o "$TMP/exhaust" "$TMP/exhaust.c"
# --swap 0: physical memory is a hard limit (no paging device), as it is for kmem_size.
for opts in "--physmem 64M --swap 0" "--kmem-size 32M" "--physmem 64M --swap 0 --trap sigsegv"; do
  # shellcheck disable=SC2086
  out=$("$VMRUN" $opts -- "$TMP/exhaust" 2>"$TMP/ex.err") || fail "$opts: $out $(cat "$TMP/ex.err")"
  [ "$out" = "still works" ] || fail "$opts: unexpected output: $out"
  note "$opts: $(tr '\n' ';' <"$TMP/ex.err")"
done

# Bad VMRT_* values: a clear message naming the variable and the default; the program runs.
shim=$BUILD/lib/libvmrt_malloc.so
check_bad() {  # check_bad VAR=VALUE MESSAGE-REGEX
  local out err
  out=$(env "$1" LD_PRELOAD="$shim" bash -c 'x=$(printf "%s" ok); echo $x' 2>"$TMP/bad.err") || fail "$1: the program failed"
  [ "$out" = ok ] || fail "$1: output '$out'"
  err=$(head -1 "$TMP/bad.err")
  echo "$err" | grep -Eq "$2" || fail "$1: message '$err' does not match '$2'"
}
check_bad VMRT_PHYSMEM=lots 'VMRT_PHYSMEM=lots: not a size.*using the default'
check_bad VMRT_PHYSMEM=512K 'VMRT_PHYSMEM=512K: out of range \(accepted: 1M \.\. .*using the default'
check_bad VMRT_KMEM_SIZE=0 'VMRT_KMEM_SIZE=0: out of range.*using the default 16G'
check_bad VMRT_REGION_SIZE=99999T 'VMRT_REGION_SIZE=99999T: out of range \(accepted: 112M \.\. 16T\); using the default 64G'
check_bad VMRT_TRAP=bogus 'VMRT_TRAP=bogus: not a trap backend \(accepted: auto, sigsegv, userfaultfd\); using the default \(auto\)'
check_bad VMRT_STATS_FD=abc 'VMRT_STATS_FD=abc: not a file descriptor number \(accepted: 0 \.\. 1048575\); using the default \(2\)'
note "ok: exhaustion is ENOMEM and recoverable; bad VMRT_* values explained"
