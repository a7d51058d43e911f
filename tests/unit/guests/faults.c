/* faults.c — a test guest whose functions fault in every way a guest call can end. */
typedef unsigned long size_t;
void* malloc(size_t);
void free(void*);
void* memcpy(void*, const void*, size_t);
void abort(void);

static const int table[4] = {1, 2, 3, 4};
volatile int sink;
/* In .data.rel.ro (a RELATIVE relocation): read-only once relocated (PT_GNU_RELRO). */
volatile int* const relro_ptr = &sink;

int null_read(void) { return *(volatile int*)0; }
void null_write(void) { *(volatile int*)16 = 1; }
void write_text(void) { *(volatile unsigned char*)(void*)&write_text = 0xcc; }
int recurse(int n) {
  volatile char buf[1024];
  buf[0] = (char)n;
  buf[1023] = (char)n;
  return recurse(n + 1) + buf[0] + buf[1023];
}
int overflow(void) { return recurse(0); }
void illegal(void) { __builtin_trap(); }
int divide(int a, int b) { return a / b; }
void spin(void) {
  for (;;) sink++;
}
int read_at(const int* p) { return *(volatile const int*)p; }
void write_at(int* p) { *(volatile int*)p = 1; }
void call_abort(void) { abort(); }
/* Reads a large block after freeing it (it was unmapped). */
int use_after_unmap(void) {
  char* p = malloc(1 << 20);
  p[100] = 7;
  free(p);
  return ((volatile char*)p)[100];
}
void bad_free(void) { free((void*)table); }
void memcpy_wild(void* host_dst) { memcpy(host_dst, table, sizeof table); }
int ok(int x) { return x + 1; }
size_t strlen(const char*);
/* A fault inside host code the guest called (the guest libc's strlen). */
long strlen_of(const char* p) { return (long)strlen(p) + 1; }
