#!/usr/bin/env bash
# gcc under vmrun: compile and link a small multi-file C program (cc1, as, collect2
# and ld all run under vmrt), run the result, and compare with a native build.
source "$(dirname "$0")/lib/scenario_lib.bash" "$1"
need gcc

mkdir -p "$TMP/src"
cat >"$TMP/src/list.h" <<'C'
#include <stddef.h>
struct item { char* key; long value; struct item* next; };
struct item* push(struct item* head, const char* key, long value);
long total(const struct item* head);
size_t length(const struct item* head);
void release(struct item* head);
C
cat >"$TMP/src/list.c" <<'C'
#include <stdlib.h>
#include <string.h>
#include "list.h"
struct item* push(struct item* head, const char* key, long value) {
  struct item* it = malloc(sizeof *it);
  it->key = strdup(key); it->value = value; it->next = head;
  return it;
}
long total(const struct item* h) { long s = 0; for (; h; h = h->next) s += h->value; return s; }
size_t length(const struct item* h) { size_t n = 0; for (; h; h = h->next) ++n; return n; }
void release(struct item* h) { while (h) { struct item* n = h->next; free(h->key); free(h); h = n; } }
C
cat >"$TMP/src/fmt.c" <<'C'
#include <stdio.h>
void show(const char* what, long v) { printf("%-10s %12ld\n", what, v); }
C
cat >"$TMP/src/main.c" <<'C'
#include <stdio.h>
#include "list.h"
void show(const char* what, long v);
int main(void) {
  struct item* h = NULL;
  char key[32];
  for (long i = 0; i < 100000; ++i) { snprintf(key, sizeof key, "k%ld", i * 31 % 1000); h = push(h, key, i % 977); }
  show("items", (long)length(h));
  show("total", total(h));
  release(h);
  return 0;
}
C
write_workflow <<SH
cp "$TMP"/src/* .
gcc -O2 -Wall -c list.c -o list.o
gcc -O2 -Wall -c fmt.c -o fmt.o
gcc -O2 -Wall -c main.c -o main.o
gcc -o prog main.o list.o fmt.o
gcc -O1 -g -o prog2 main.c list.c fmt.c
./prog
./prog2
# The objects must be byte-identical to a native build's (same compiler, same input).
sha256sum list.o fmt.o main.o
SH
compare_workflow
