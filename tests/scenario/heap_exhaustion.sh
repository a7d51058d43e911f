#!/usr/bin/env bash
# malloc until physmem runs out (vmrun --physmem 17M: not a whole number of 2 MiB windows,
# so the last window is short of frames): every block malloc returned before
# its first NULL must be whole — each of its pages can be written and read back.  A 2 MiB
# heap window populated only partly (frames ran out mid-window) once handed out blocks
# whose tail pages were not mapped: the program died of SIGSEGV touching them.  Both heap
# backings: host memory (charged to physmem by what is handed out) and vmrt frames.
set -euo pipefail
build=${1:?build dir}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cat >"$work/exhaust.c" <<'C'
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
int main(void) {
  static char* blocks[100000];
  size_t n = 0, sizes[] = {200000, 3000, 70000, 1 << 20};
  for (;;) {
    size_t sz = sizes[n % 4];
    char* p = malloc(sz);
    if (p == NULL) break;
    for (size_t i = 0; i < sz; i += 4096) p[i] = (char)n;
    p[sz - 1] = (char)n;
    blocks[n++] = p;
    if (n == 100000) { puts("never ran out"); return 1; }
  }
  for (size_t k = 0; k < n; ++k) {
    size_t sz = sizes[k % 4];
    for (size_t i = 0; i < sz; i += 4096) if (blocks[k][i] != (char)k) { printf("block %zu lost its bytes\n", k); return 1; }
  }
  for (size_t k = 0; k < n; ++k) free(blocks[k]);
  char* again = malloc(1 << 20);  /* memory is back after the frees */
  if (again == NULL) { puts("no memory after freeing everything"); return 1; }
  memset(again, 1, 1 << 20);
  printf("ran out after %zu blocks, all intact\n", n);
  return 0;
}
C
gcc -O1 -o "$work/exhaust" "$work/exhaust.c"
# The paged heap with no swap device (physmem a hard limit), host memory, vmrt frames.
for heap in paged host frames; do
  VMRT_HEAP=$heap "$build/bin/vmrun" --physmem 17M --swap 0 -- "$work/exhaust"
  VMRT_HEAP=$heap "$build/bin/vmrun" --physmem 17M --swap 0 --trap sigsegv -- "$work/exhaust"
done
# Paging with a small swap device: malloc fails (ENOMEM) when physmem + swap are committed,
# every block written before stays intact through pageout and page-in.
out=$("$build/bin/vmrun" --physmem 17M --swap 40M -- "$work/exhaust")
echo "$out"
n=$(echo "$out" | sed -n 's/^ran out after \([0-9]*\) blocks.*/\1/p')
[ -n "$n" ] && [ "$n" -gt 150 ] || { echo "FAIL: paging with 40M of swap ran out after '$n' blocks (expected well past physmem)"; exit 1; }
