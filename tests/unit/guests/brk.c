/* brk.c — a guest moving its break with brk and sbrk, up and down, around malloc. */
typedef unsigned long size_t;
void* sbrk(long);
int brk(void*);
void* malloc(size_t);

/* Grow the break by n bytes, write them, give them back; returns the break's net move (0). */
long grow_and_shrink(long n) {
  char* a = sbrk(0);
  char* p = sbrk(n);
  if (p == (char*)-1) return -1;
  for (long i = 0; i < n; i += 4096) p[i] = 7;
  if (sbrk(-n) != a + n) return -2;
  return (char*)sbrk(0) - a;
}
/* brk to an absolute address: up n bytes, then back to where it was.  0, or where it failed. */
long brk_up_down(long n) {
  char* a = sbrk(0);
  if (brk(a + n) != 0) return -1;
  if ((char*)sbrk(0) != a + n) return -2;
  a[n - 1] = 1;
  if (brk(a) != 0) return -3;
  return (char*)sbrk(0) - a;
}
/* The break cannot go below a block malloc carved after it: -1 expected from brk. */
long below_malloc(void) {
  char* a = sbrk(0);
  void* m = malloc(100);
  if (m == 0) return -5;
  return brk(a);
}
/* Read a byte n bytes above the present break after growing over it again (zeros). */
int reread(long n) {
  char* a = sbrk(0);
  char* p = sbrk(n);
  if (p == (char*)-1) return -1;
  int v = p[n - 1];
  sbrk(-n);
  return v;
}
long brk_now(void) { return (long)sbrk(0); }
