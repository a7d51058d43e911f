/* initfault.c — a guest whose constructor dereferences NULL (through a pointer the
 * compiler cannot see is null). */
int* volatile bad_ptr = 0;
__attribute__((constructor)) static void bad_init(void) { *bad_ptr = 1; }
int f(void) { return 1; }
