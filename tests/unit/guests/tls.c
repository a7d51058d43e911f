/* tls.c — a guest with thread-local storage: the dynamic models (general-dynamic for the
 * exported variable, local-dynamic for the static ones) through __tls_get_addr, with
 * initialised (.tdata) and zeroed (.tbss) variables. */
__thread int per_thread = 3;
static __thread long counter;
static __thread char name[16] = "tls";
int get(void) { return per_thread; }
long bump(void) { return ++counter; }
int set(int v) { per_thread = v; return per_thread; }
int name_char(int i) { return name[i & 15]; }
long* counter_addr(void) { return &counter; }
