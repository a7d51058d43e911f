#!/usr/bin/env bash
# What each shim fail point looks like to a program (README "Fault injection"):
# malloc/calloc/realloc/aligned_alloc/memalign: NULL + ENOMEM; posix_memalign: ENOMEM
# returned, errno untouched; realloc(p, 0) is never failed (it frees); operator new with
# no new-handler throws std::bad_alloc, with a handler calls it; nothrow new: nullptr.
# Each case runs in its own process under its own spec.
source "$(dirname "$0")/lib/scenario_lib.bash" "$1"
need c++

cat >"$TMP/points.cpp" <<'CPP'
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <malloc.h>
#include <new>
static int handler_calls = 0;
static void handler() { ++handler_calls; std::set_new_handler(nullptr); }
int main(int argc, char** argv) {
  if (argc < 2) return 2;
  const char* c = argv[1];
  void* p = nullptr;
  errno = 0;
  if (!strcmp(c, "malloc")) p = malloc(10);
  else if (!strcmp(c, "calloc")) p = calloc(3, 7);
  else if (!strcmp(c, "realloc")) { void* q = malloc(5); p = realloc(q, 100); if (!p) free(q); }
  else if (!strcmp(c, "realloc0")) { void* q = malloc(5); errno = 0; p = realloc(q, 0); printf("realloc0 %s errno=%d\n", p ? "ptr" : "null", errno); return 0; }
  else if (!strcmp(c, "aligned_alloc")) p = aligned_alloc(64, 128);
  else if (!strcmp(c, "memalign")) p = memalign(64, 128);
  else if (!strcmp(c, "posix_memalign")) { errno = 7; int r = posix_memalign(&p, 64, 128); printf("posix_memalign %d errno=%d\n", r, errno); return 0; }
  else if (!strcmp(c, "new")) {
    try { int* x = new int[4]; printf("new ok %p\n", (void*)x); } catch (const std::bad_alloc&) { printf("new bad_alloc\n"); }
    return 0;
  } else if (!strcmp(c, "new_handler")) {
    std::set_new_handler(handler);
    int* x = new int[4];
    printf("new_handler calls=%d %s\n", handler_calls, x ? "ok" : "null");
    return 0;
  } else if (!strcmp(c, "new_nothrow")) { p = new (std::nothrow) int[4]; printf("nothrow %s\n", p ? "ptr" : "null"); return 0; }
  printf("%s %s errno=%d\n", c, p ? "ptr" : "null", errno);
  return 0;
}
CPP
c++ -O1 -o "$TMP/points" "$TMP/points.cpp" || fail "cannot compile points.cpp"

# check CASE SPEC EXPECTED: the program's line under --fail SPEC.
check() {
  local got
  got=$(VMRT_FAIL_BACKTRACE=0 "$VMRUN" --fail "$2" --fail-log /dev/null "$TMP/points" "$1") || fail "$1: exit $?"
  [ "$got" = "$3" ] || fail "$1 under '$2': got '$got', expected '$3'"
}
# The program's own first call of the kind is the one failed (size filters keep the
# runtime's and libstdc++'s start-up allocations out).
check malloc 'malloc:size=10' 'malloc null errno=12'
check calloc 'calloc:size=21' 'calloc null errno=12'
check realloc 'realloc:size=100' 'realloc null errno=12'
check realloc0 'realloc' 'realloc0 null errno=0'
check aligned_alloc 'memalign:size=128' 'aligned_alloc null errno=12'
check memalign 'memalign:size=128' 'memalign null errno=12'
check posix_memalign 'memalign:size=128' 'posix_memalign 12 errno=7'
check new 'new:size=16' 'new bad_alloc'
check new_handler 'new:size=16,times=1' 'new_handler calls=1 ok'
check new_nothrow 'new:size=16' 'nothrow null'
# One layer down: kmem by malloc type (the shim's malloc family is M_LIBC).
check malloc 'kmem[M_LIBC]:size=10' 'malloc null errno=12'
check calloc 'kmem[cxx]:size=21' 'calloc ptr errno=0'
# Without a spec nothing fails.
[ "$("$VMRUN" "$TMP/points" malloc)" = "malloc ptr errno=0" ] || fail "malloc failed without a spec"
note "ok: every shim fail point fails the way its function reports exhaustion"
