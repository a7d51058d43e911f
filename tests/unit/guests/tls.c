/* tls.c — a guest with thread-local storage (refused: PT_TLS). */
__thread int per_thread = 3;
int get(void) { return per_thread; }
