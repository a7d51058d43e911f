/* forktight MODE: fork under a tight limit; prints what fork did and checks that the
   parent's memory and allocator are intact afterwards.  Exit 0 when all is well. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

static char* blocks[64];

static int check(char tag) {
  for (int i = 0; i < 64; ++i)
    for (int k = 0; k < (1 << 20); k += 4096)
      if (blocks[i][k] != (char)(tag + i)) return 0;
  return 1;
}

static void try_fork(const char* label) {
  fflush(stdout);
  pid_t pid = fork();
  if (pid == 0) {
    /* the child: its own copy, writes stay its own */
    int ok = check('a');
    for (int i = 0; i < 64; ++i) memset(blocks[i], 'z', 1 << 20);
    char* x = malloc(1 << 22);
    if (x) memset(x, 1, 1 << 22);
    free(x);
    _exit(ok ? 0 : 3);
  }
  if (pid < 0) {
    printf("%s: fork failed: %s\n", label, errno == EAGAIN ? "EAGAIN" : errno == ENOMEM ? "ENOMEM" : strerror(errno));
    return;
  }
  int st = 0;
  while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {}
  printf("%s: fork ok, child status %d\n", label, WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
}

int main(int argc, char** argv) {
  const char* mode = argc > 1 ? argv[1] : "plain";
  for (int i = 0; i < 64; ++i) {
    blocks[i] = malloc(1 << 20);
    memset(blocks[i], 'a' + i, 1 << 20);
  }
  if (strcmp(mode, "nofile-hard") == 0 || strcmp(mode, "nofile-soft") == 0) {
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = 64;
    if (strcmp(mode, "nofile-hard") == 0) rl.rlim_max = 64;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0) { perror("setrlimit"); return 2; }
    int n = 0;
    while (open("/dev/null", O_RDONLY) >= 0) ++n;   /* fill the table up to the limit */
    try_fork(mode);
    for (int fd = 3; fd < 64; ++fd) close(fd);
    try_fork("after closing");
  } else if (strcmp(mode, "as") == 0) {
    struct rlimit rl = {256UL << 20, 256UL << 20};   /* far below what vmrt holds */
    if (setrlimit(RLIMIT_AS, &rl) != 0) { perror("setrlimit"); return 2; }
    try_fork(mode);
    void* big = malloc(512UL << 20);                 /* over the program's limit: NULL natively */
    printf("malloc 512M under a 256M limit: %s\n", big ? "non-null" : "null");
    free(big);
  } else {
    try_fork(mode);
  }
  if (!check('a')) { puts("parent memory changed"); return 4; }
  for (int i = 0; i < 64; ++i) free(blocks[i]);
  char* again = malloc(1 << 20);
  memset(again, 0, 1 << 20);
  free(again);
  puts("parent intact");
  return 0;
}
