/* show_limits: prints the limits and descriptors the kernel gave this process, with no
   libc allocation (built -static: nothing of vmrt can be loaded into it). */
#include <dirent.h>
#include <stdio.h>
#include <sys/resource.h>

static void show(const char* name, int res) {
  struct rlimit rl;
  getrlimit(res, &rl);
  if (rl.rlim_cur == RLIM_INFINITY) printf("%s soft unlimited", name);
  else printf("%s soft %llu", name, (unsigned long long)rl.rlim_cur);
  if (rl.rlim_max == RLIM_INFINITY) printf(" hard unlimited\n");
  else printf(" hard %llu\n", (unsigned long long)rl.rlim_max);
}

int main(void) {
  show("AS", RLIMIT_AS);
  show("FSIZE", RLIMIT_FSIZE);
  show("DATA", RLIMIT_DATA);
  show("NOFILE", RLIMIT_NOFILE);
  int n = 0;
  DIR* d = opendir("/proc/self/fd");
  if (d) {
    for (struct dirent* e; (e = readdir(d)) != NULL;) n += e->d_name[0] != '.';
    closedir(d);
  }
  printf("descriptors %d\n", n);
  return 0;
}
