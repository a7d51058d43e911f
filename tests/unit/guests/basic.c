/* basic.c — a test guest: every supported relocation kind, init_array, bss/data,
 * int/double/pointer signatures, the guest libc, the embedder's import host_add. */
typedef unsigned long size_t;
void* malloc(size_t);
void free(void*);
void* memset(void*, int, size_t);
size_t strlen(const char*);
int host_add(int, int); /* the embedder's import: JUMP_SLOT (called through the PLT) */

int exported_counter = 5;                      /* data; GLOB_DAT (default visibility) */
static int bss_arr[1000];                      /* bss: zero-filled */
static const char* const names[] = {"zero", "one", "two"}; /* RELATIVE, in relro */
int (*const import_ptr)(int, int) = host_add;  /* R_X86_64_64 against host_add */
int* counter_ptr = &exported_counter;          /* R_X86_64_64 against exported_counter */
static int initialized;

__attribute__((constructor)) static void guest_init(void) { initialized = 42; }

int get_initialized(void) { return initialized; }
int add(int a, int b) { return a + b; }
long add_long(long a, long b) { return a + b; }
double hypot2(double a, double b) { return a * a + b * b; }
float half(float f) { return f / 2; }
int call_host(int a, int b) { return host_add(a, b) * 10; }
int call_host_ptr(int a, int b) { return import_ptr(a, b); }
int read_counter(void) { return *counter_ptr + exported_counter; }
int bump_counter(void) { return ++exported_counter; }
const char* name_of(int i) { return names[i % 3]; }
long name_len(int i) { return (long)strlen(names[i % 3]); }
long bss_sum(void) {
  long s = 0;
  for (int i = 0; i < 1000; ++i) s += bss_arr[i];
  bss_arr[3] = 1;
  return s;
}
long checksum(const unsigned char* p, long n) {
  unsigned long h = 1469598103934665603UL;
  for (long i = 0; i < n; ++i) h = (h ^ p[i]) * 1099511628211UL;
  return (long)(h & 0x7fffffffffffffffUL);
}
/* Sum of 16 arguments: the most a signature takes. */
long sum16(long a, long b, long c, long d, long e, long f, long g, long h, long i, long j, long k, long l, long m,
           long n, long o, long p) {
  return a + b + c + d + e + f + g + h + i + j + k + l + m + n + o + p;
}
double mix(int a, double b, long c, float d) { return a + b + (double)c + d; }
void* make_buffer(long n, int fill) {
  void* p = malloc((size_t)n);
  if (p) memset(p, fill, (size_t)n);
  return p;
}
void drop_buffer(void* p) { free(p); }
/* Allocate blocks of n bytes until malloc says no; returns how many it gave. */
long exhaust(long n) {
  long k = 0;
  while (malloc((size_t)n) != 0) ++k;
  return k;
}
int nothing(void) { return 0; }
/* Variadic: n longs, then their sum; and n doubles averaged. */
long vsum(int n, ...) {
  __builtin_va_list ap;
  __builtin_va_start(ap, n);
  long s = 0;
  for (int i = 0; i < n; ++i) s += __builtin_va_arg(ap, long);
  __builtin_va_end(ap);
  return s;
}
double vavg(int n, ...) {
  __builtin_va_list ap;
  __builtin_va_start(ap, n);
  double s = 0;
  for (int i = 0; i < n; ++i) s += __builtin_va_arg(ap, double);
  __builtin_va_end(ap);
  return n ? s / n : 0;
}
/* Structs by value: in two registers ({long, double}), and in memory (24 bytes). */
struct pt { long x; double y; };
struct big { long a, b, c; };
double pt_sum(struct pt p, int k) { return (double)p.x + p.y + k; }
struct pt pt_make(long x, double y) {
  struct pt p = {x * 2, y * 2};
  return p;
}
long big_sum(struct big b, int k) { return b.a + b.b + b.c + k; }
struct big big_make(long v) {
  struct big b = {v, v + 1, v + 2};
  return b;
}
/* sbrk: the break moves up, the memory is writable, malloc still works after it. */
void* sbrk(long);
long use_sbrk(long n) {
  char* a = sbrk(0);
  char* p = sbrk(n);
  if (p == (char*)-1) return -1;
  for (long i = 0; i < n; ++i) p[i] = (char)i;
  char* b = sbrk(0);
  char* m = malloc(32);
  return (p == a && b >= a + n && m != 0 && ((unsigned long)m & 15) == 0) ? b - a : -2;
}
/* Write byte v at every `stride` bytes of [p, p + n): the writes a request makes. */
long poke(unsigned char* p, long n, long stride, int v) {
  long k = 0;
  for (long i = 0; i < n; i += stride, ++k) p[i] = (unsigned char)v;
  return k;
}
