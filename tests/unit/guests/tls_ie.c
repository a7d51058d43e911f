/* tls_ie.c — thread-local storage in the initial-exec model (R_X86_64_TPOFF64 against the
 * host thread's pointer): refused, naming the relocation. */
__attribute__((tls_model("initial-exec"))) __thread int ie_var = 3;
int get(void) { return ie_var; }
