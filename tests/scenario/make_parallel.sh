#!/usr/bin/env bash
# make -j2 under vmrun: a generated project of several C files built in parallel
# (make, the shell, gcc and its children all under vmrt); run the result.
source "$(dirname "$0")/lib/scenario_lib.bash" "$1"
need make gcc

write_workflow <<'SH'
set -e
N=12
for i in $(seq 1 $N); do
  cat > f$i.c <<C
#include <stdlib.h>
long f$i(long x) { long* a = malloc(sizeof(long) * 1000); long s = 0;
  for (int k = 0; k < 1000; ++k) a[k] = (x + k) * $i % 1009; for (int k = 0; k < 1000; ++k) s += a[k];
  free(a); return s; }
C
done
{
  echo '#include <stdio.h>'
  for i in $(seq 1 $N); do echo "long f$i(long);"; done
  echo 'int main(void) { long s = 0;'
  for i in $(seq 1 $N); do echo "  s += f$i($i); printf(\"f$i %ld\\n\", f$i($i));"; done
  echo '  printf("sum %ld\n", s); return 0; }'
} > main.c
objs=$(for i in $(seq 1 $N); do printf 'f%d.o ' $i; done)
printf 'prog: main.o %s\n\t$(CC) -o $@ $^\n%%.o: %%.c\n\t$(CC) -O2 -c $< -o $@\n' "$objs" > Makefile
make -s -j2
./prog
make -s -j2   # nothing to do
ls *.o | wc -l
SH
compare_workflow
