/* shell_handler.h — set a signal handler as a shell does (SA_RESTART, empty mask), for the
 * fork-cost programs that imitate a shell's command substitution (fork_faults.c,
 * fork_pages.c).  Exits with a message when sigaction fails. */
#pragma once
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void set_handler(int sig, void (*h)(int)) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = h;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  if (sigaction(sig, &sa, NULL) != 0) { perror("sigaction"); exit(1); }
}
