/* guest_records.c — a host program that loads a guest library (examples/guests/records.c)
 * into its own vmspace, feeds it records (some bad), and survives the guest's crashes:
 * each fault ends one call with an error naming the faulting function; the host resets
 * the guest and goes on, then forks warm copies of it (vmrt_guest_fork).
 *
 *   guest_records [records.so]
 */
#include <stdio.h>
#include <string.h>

#include "runtime/vmrt.h"

#ifndef VMRT_EXAMPLE_GUEST
#define VMRT_EXAMPLE_GUEST "records.so"
#endif

/* Copy a C string into the guest's heap; returns its guest address (NULL: no room). */
static void* guest_string(vmrt_guest* g, const char* s) {
  void* p = vmrt_guest_malloc(g, strlen(s) + 1);
  if (p != NULL && vmrt_guest_copy_in(g, p, s, strlen(s) + 1) != 0) p = NULL;
  return p;
}

int main(int argc, char** argv) {
  const char* path = argc > 1 ? argv[1] : VMRT_EXAMPLE_GUEST;
  vmrt_guest_options opt = {0};
  opt.memory_limit = 8u << 20;
  opt.time_limit_ms = 1000;
  vmrt_guest* g = NULL;
  char err[512];
  if (vmrt_guest_load(path, &opt, &g, err, sizeof err) != 0) {
    fprintf(stderr, "guest_records: %s\n", err);
    return 1;
  }
  const char* records[] = {"apples:4:100", "pears:2:30", "no colon here", "plums:0:10", "figs:5:55"};
  int traps = 0;
  for (size_t i = 0; i < sizeof records / sizeof records[0]; ++i) {
    vmrt_guest_value arg, ret, name;
    vmrt_guest_trap t;
    arg.p = guest_string(g, records[i]);
    if (vmrt_guest_call(g, "record_name", "p(p)", &arg, &name, &t) != VMRT_GUEST_OK) {
      printf("%-16s record_name: %s\n", records[i], t.message);
      continue;
    }
    char upper[64] = "?";
    vmrt_guest_copy_out(g, upper, name.p, 1);  /* first byte, then the rest up to 63 */
    for (size_t k = 1; k < sizeof upper - 1 && upper[k - 1] != '\0'; ++k) vmrt_guest_copy_out(g, upper + k, (char*)name.p + k, 1);
    upper[sizeof upper - 1] = '\0';
    vmrt_guest_status s = vmrt_guest_call(g, "parse_record", "l(p)", &arg, &ret, &t);
    if (s == VMRT_GUEST_OK) {
      printf("%-16s %-8s average %ld\n", records[i], upper, (long)ret.i);
    } else {
      ++traps;
      printf("%-16s %-8s guest trap: %s\n", records[i], upper, t.message);
    }
    vmrt_guest_free(g, arg.p);
  }
  vmrt_guest_value ret;
  vmrt_guest_call(g, "seen", "l()", NULL, &ret, NULL);
  printf("records the guest saw: %ld, traps: %d\n", (long)ret.i, traps);
  /* Back to the freshly loaded state. */
  if (vmrt_guest_reset(g, err, sizeof err) != 0) {
    fprintf(stderr, "guest_records: reset: %s\n", err);
    return 1;
  }
  vmrt_guest_call(g, "seen", "l()", NULL, &ret, NULL);
  printf("after reset: %ld\n", (long)ret.i);
  /* Warm copies: one record parsed, then two copy-on-write forks each parse their own; the
   * parent and each fork count only what they saw. */
  vmrt_guest_value arg;
  arg.p = guest_string(g, "limes:3:9");
  vmrt_guest_call(g, "parse_record", "l(p)", &arg, &ret, NULL);
  vmrt_guest* fork1 = vmrt_guest_fork(g);
  vmrt_guest* fork2 = vmrt_guest_fork(g);
  if (fork1 == NULL || fork2 == NULL) {
    fprintf(stderr, "guest_records: fork failed\n");
    return 1;
  }
  vmrt_guest_call(fork1, "parse_record", "l(p)", &arg, &ret, NULL);
  vmrt_guest_call(fork1, "parse_record", "l(p)", &arg, &ret, NULL);
  vmrt_guest_call(fork2, "parse_record", "l(p)", &arg, &ret, NULL);
  long seen[3];
  vmrt_guest* who[3] = {g, fork1, fork2};
  for (int i = 0; i < 3; ++i) {
    vmrt_guest_call(who[i], "seen", "l()", NULL, &ret, NULL);
    seen[i] = (long)ret.i;
  }
  printf("warm forks: parent saw %ld, fork 1 %ld, fork 2 %ld\n", seen[0], seen[1], seen[2]);
  vmrt_guest_destroy(fork1);
  vmrt_guest_destroy(fork2);
  vmrt_guest_destroy(g);
  return traps == 2 ? 0 : 1;
}
