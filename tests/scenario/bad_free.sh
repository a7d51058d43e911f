#!/usr/bin/env bash
# Misuse must never corrupt silently: a free of a pointer vmrt did not allocate,
# a double free, an interior pointer and a realloc of a foreign, interior, freed or
# wild pointer each
# print the address and abort (SIGABRT), like glibc; a clean run exits 0.
source "$(dirname "$0")/lib/scenario_lib.bash" "$1"
need cc

cat >"$TMP/bad.c" <<'C'
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
static char not_heap[64];
int main(int argc, char** argv) {
  const char* what = argc > 1 ? argv[1] : "ok";
  char* volatile p = malloc(40);
  char* volatile q = malloc(40);
  if (strcmp(what, "foreign") == 0) free(not_heap + 16);
  if (strcmp(what, "stack") == 0) { char local[32]; char* volatile l = local; free(l); }
  if (strcmp(what, "double") == 0) { free(p); free(q); free(p); }
  if (strcmp(what, "interior") == 0) free(p + 8);
  if (strcmp(what, "realloc") == 0) { void* volatile r = realloc(not_heap, 100); (void)r; }
  if (strcmp(what, "realloc_interior") == 0) { void* volatile r = realloc(p + 16, 100); (void)r; }
  if (strcmp(what, "realloc_freed") == 0) { free(q); void* volatile r = realloc(q, 100); (void)r; }
  if (strcmp(what, "realloc_wild") == 0) { void* volatile r = realloc((char*)p + (1 << 20) + 8, 10); (void)r; }
  free(p);
  free(q);
  puts("clean exit");
  return 0;
}
C
cc -O0 -o "$TMP/bad" "$TMP/bad.c" 2>/dev/null || cc -O0 -w -o "$TMP/bad" "$TMP/bad.c"

st=0
"$VMRUN" -- "$TMP/bad" ok >"$TMP/ok.out" 2>&1 || st=$?
[ $st -eq 0 ] && grep -q 'clean exit' "$TMP/ok.out" || fail "the clean run failed (status $st): $(cat "$TMP/ok.out")"

expect_abort() {  # expect_abort CASE MESSAGE
  local st=0
  # (in a subshell whose own stderr is dropped: no "Aborted" job message)
  ( "$VMRUN" -- "$TMP/bad" "$1" >"$TMP/$1.out" 2>"$TMP/$1.err"; exit $? ) 2>/dev/null || st=$?
  [ $st -eq 134 ] || fail "$1: expected SIGABRT (status 134), got $st; stderr: $(cat "$TMP/$1.err")"
  grep -q "$2" "$TMP/$1.err" || fail "$1: message '$2' missing; stderr: $(cat "$TMP/$1.err")"
  grep -Eq '0x[0-9a-f]+' "$TMP/$1.err" || fail "$1: no address in the message"
  grep -q 'clean exit' "$TMP/$1.out" && fail "$1: the program went on after the misuse"
  note "$1: $(head -1 "$TMP/$1.err")"
}
expect_abort foreign 'free(): invalid pointer'
expect_abort stack 'free(): invalid pointer'
expect_abort double 'free(): double free detected'
expect_abort interior 'free(): invalid pointer'
expect_abort realloc 'realloc(): invalid pointer'
expect_abort realloc_interior 'realloc(): invalid pointer'
expect_abort realloc_freed 'realloc(): .*\(double free\|invalid pointer\)'
expect_abort realloc_wild 'realloc(): invalid pointer'
# With kmem diagnostics on as well.
st=0
( "$VMRUN" --kmem-diag -- "$TMP/bad" double >/dev/null 2>"$TMP/diag.err"; exit $? ) 2>/dev/null || st=$?
[ $st -eq 134 ] && grep -q 'double free' "$TMP/diag.err" || fail "double free with --kmem-diag: status $st: $(cat "$TMP/diag.err")"
