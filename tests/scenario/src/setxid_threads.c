// setxid_threads: a root program drops its privileges in one of three ways, then prints what
// every thread of the process holds.  Natively it is single-threaded; under vmrun with
// paging it has vmrt's machine threads, which glibc's set*id calls reach as well (scenario
// setxid_threads).  Output: the calls' results, then one line per distinct (uids, gids,
// CapPrm, CapEff) among the process's threads — a single line when they all agree — and,
// on fd 3 when open, the number of threads.
//   plain     setgroups, setresgid, setresuid (no capabilities kept)
//   keepcaps  prctl(PR_SET_KEEPCAPS), setresuid, capset (raise the permitted set again),
//             setresgid, setgroups: what `setpriv --init-groups` does
//   dropped   capset (drop everything, uid still 0), then setresuid, which must fail EPERM
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <grp.h>
#include <linux/capability.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

static int set_caps(unsigned eff, unsigned prm) {
  struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
  struct __user_cap_data_struct d[2] = {{eff, prm, 0}, {0, 0, 0}};
  return (int)syscall(SYS_capset, &h, d);
}

static unsigned own_permitted(void) {
  struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
  struct __user_cap_data_struct d[2];
  return syscall(SYS_capget, &h, d) == 0 ? d[0].permitted : 0;
}

static void result(const char* what, int rc) { printf("%s: %s\n", what, rc == 0 ? "ok" : strerror(errno)); }

// The lines of /proc/self/task/T/status that credentials show, joined.
static void creds_of(const char* tid, char* out, size_t n) {
  char path[64], line[256];
  snprintf(path, sizeof path, "/proc/self/task/%s/status", tid);
  FILE* f = fopen(path, "r");
  out[0] = 0;
  if (!f) return;
  while (fgets(line, sizeof line, f))
    if (!strncmp(line, "Uid:", 4) || !strncmp(line, "Gid:", 4) || !strncmp(line, "Groups:", 7) ||
        !strncmp(line, "CapPrm:", 7) || !strncmp(line, "CapEff:", 7)) {
      line[strcspn(line, "\n")] = ' ';
      strncat(out, line, n - strlen(out) - 1);
    }
  fclose(f);
}

int main(int argc, char** argv) {
  const char* how = argc > 1 ? argv[1] : "plain";
  uid_t u = 65534;
  gid_t g = 65534;
  if (!strcmp(how, "plain")) {
    result("setgroups", setgroups(0, NULL));
    result("setresgid", setresgid(g, g, g));
    result("setresuid", setresuid(u, u, u));
  } else if (!strcmp(how, "keepcaps")) {
    unsigned prm = own_permitted();
    result("keepcaps", prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0));
    result("setresuid", setresuid(u, u, u));
    result("capset raise", set_caps(prm, prm));
    result("setresgid", setresgid(g, g, g));
    result("setgroups", setgroups(0, NULL));
  } else if (!strcmp(how, "dropped")) {
    result("capset drop", set_caps(0, 0));
    result("setresuid", setresuid(u, u, u));
    result("setresgid", setresgid(g, g, g));
  } else {
    fprintf(stderr, "usage: setxid_threads plain|keepcaps|dropped\n");
    return 2;
  }
  // vmrt's machine threads follow the program's call a moment after it returned
  // (runtime/rt_creds.h): look again for up to a second until every thread agrees.
  char seen[8][1024];
  int nseen = 0, nthreads = 0;
  for (int attempt = 0; attempt < 1000; ++attempt) {
    DIR* d = opendir("/proc/self/task");
    if (!d) return 1;
    nseen = nthreads = 0;
    struct dirent* e;
    while ((e = readdir(d))) {
      if (e->d_name[0] == '.') continue;
      ++nthreads;
      char c[1024];
      creds_of(e->d_name, c, sizeof c);
      int k;
      for (k = 0; k < nseen && strcmp(seen[k], c); ++k) {
      }
      if (k == nseen && nseen < 8) strcpy(seen[nseen++], c);
    }
    closedir(d);
    if (nseen == 1) break;
    usleep(1000);
  }
  for (int k = 0; k < nseen; ++k) printf("threads hold: %s\n", seen[k]);
  dprintf(3, "%d\n", nthreads);
  return 0;
}
