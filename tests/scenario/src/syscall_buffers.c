/* syscall_buffers.c — system calls and stdio on heap memory that was paged out
 * (scenario syscall_buffers).  Each mode fills a malloc'd buffer of MB megabytes, then
 * fills a second buffer of 3*MB (under vmrun --physmem far below it, the first buffer goes
 * to swap), then hands the first buffer to the kernel in one call and prints what a native
 * run prints.  A call failing with EFAULT prints "<call>: EFAULT" and exits 3.
 *   pipe MB     one write(2) of the whole buffer to a pipe; a child reads it (read(2) into
 *               a paged-out heap buffer of its own) and prints its sum
 *   file MB     write(2) to a file, pread(2) back into a paged-out buffer, writev(2) and
 *               readv(2) of two halves the same way; sums
 *   recv MB     socketpair: a child send(2)s the buffer, the parent recv(2)s MSG_WAITALL
 *               into a paged-out buffer; recvmsg and sendmsg the same; sums
 *   stdio MB    stdout fully buffered in a heap buffer of MB (setvbuf), filled with printf
 *               lines to just below its size, then paged out; an explicit fflush
 *               after a second round, then exit's flush after a third: every line reaches
 *               the pipe
 *   lines MB    printf lines through stdout's own (small, malloc'd) buffer, 3*MB of other
 *               heap memory touched between rounds: the buffer's page pages out with the
 *               rest unless it is held (the output was lost or garbled before)
 *   fwrite MB   fwrite(3) of the whole paged-out buffer to stdout (glibc writes it straight
 *               from the caller's memory), and fread(3) back from a file
 *   unlocked MB the same through fwrite_unlocked/fflush_unlocked/fread_unlocked (coreutils'
 *               sort reads so: "read failed: Bad address" before the shim wrapped them),
 *               fread_unlocked into a buffer never touched since malloc, and lines through
 *               fputs_unlocked/fgets_unlocked into paged-out memory */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

static size_t bytes;

static uint64_t sum(const unsigned char* p, size_t n) {
  uint64_t s = 1469598103934665603ull;
  for (size_t i = 0; i < n; i += 8) s = (s ^ *(const uint64_t*)(p + i)) * 1099511628211ull;
  return s;
}

static unsigned char* filled(unsigned salt) {
  unsigned char* p = malloc(bytes);
  if (p == NULL) exit(1);
  for (size_t i = 0; i < bytes; i += 8) *(uint64_t*)(p + i) = (i * 2654435761u) ^ ((uint64_t)salt << 40);
  return p;
}

/* Touch 3*MB of other heap memory: the earlier buffers go to swap under --physmem. */
static void push_out(void) {
  size_t n = 3 * bytes;
  volatile unsigned char* q = malloc(n);
  if (q == NULL) exit(1);
  for (size_t i = 0; i < n; i += 4096) q[i] = (unsigned char)((i >> 12) | 1);  /* not zero: written to swap */
  free((void*)q);
}

static void check(ssize_t r, size_t want, const char* what) {
  if (r < 0 && errno == EFAULT) {
    printf("%s: EFAULT\n", what);
    exit(3);
  }
  if (r < 0 || (size_t)r != want) {
    printf("%s: %zd of %zu (%s)\n", what, r, want, r < 0 ? strerror(errno) : "short");
    exit(1);
  }
}

/* Receive `want` bytes into p, as many calls as the kernel takes. */
static void read_all(int fd, unsigned char* p, size_t want, const char* what) {
  size_t got = 0;
  while (got < want) {
    ssize_t r = read(fd, p + got, want - got);
    if (r <= 0) check(r, want - got, what);
    got += (size_t)r;
  }
}

static void wait_child(void) {
  int st;
  fflush(stdout);
  wait(&st);
  if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) exit(WIFEXITED(st) ? WEXITSTATUS(st) : 1);
}

int main(int argc, char** argv) {
  if (argc < 3) return 2;
  bytes = (size_t)atoi(argv[2]) << 20;
  const char* mode = argv[1];
  if (!strcmp(mode, "pipe")) {
    int fds[2];
    if (pipe(fds) != 0) return 1;
    unsigned char* p = filled(1);
    printf("pipe sent %llx\n", (unsigned long long)sum(p, bytes));
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
      close(fds[1]);
      unsigned char* in = filled(9);
      push_out();
      read_all(fds[0], in, bytes, "read (pipe)");
      printf("pipe read %llx\n", (unsigned long long)sum(in, bytes));
      return 0;
    }
    close(fds[0]);
    push_out();
    check(write(fds[1], p, bytes), bytes, "write (pipe)");
    close(fds[1]);
    wait_child();
    return 0;
  }
  if (!strcmp(mode, "file")) {
    FILE* t = tmpfile();
    if (t == NULL) return 1;
    int fd = fileno(t);
    unsigned char* p = filled(2);
    unsigned char* q = filled(3);
    printf("file sent %llx\n", (unsigned long long)sum(p, bytes));
    push_out();
    check(write(fd, p, bytes), bytes, "write (file)");
    check(pread(fd, q, bytes, 0), bytes, "pread (file)");
    printf("file read %llx\n", (unsigned long long)sum(q, bytes));
    memset(q, 0, bytes);
    push_out();
    struct iovec v[2] = {{p, bytes / 2}, {p + bytes / 2, bytes - bytes / 2}};
    check(pwritev(fd, v, 2, (off_t)bytes), bytes, "pwritev (file)");
    struct iovec w[2] = {{q, bytes / 2}, {q + bytes / 2, bytes - bytes / 2}};
    push_out();
    check(preadv(fd, w, 2, (off_t)bytes), bytes, "preadv (file)");
    printf("file readv %llx\n", (unsigned long long)sum(q, bytes));
    return 0;
  }
  if (!strcmp(mode, "recv")) {
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0) return 1;
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
      close(sv[0]);
      unsigned char* p = filled(4);
      push_out();
      check(send(sv[1], p, bytes, 0), bytes, "send");
      struct iovec v = {p, bytes};
      struct msghdr m = {0};
      m.msg_iov = &v;
      m.msg_iovlen = 1;
      push_out();
      check(sendmsg(sv[1], &m, 0), bytes, "sendmsg");
      return 0;
    }
    close(sv[1]);
    unsigned char* q = filled(5);
    push_out();
    check(recv(sv[0], q, bytes, MSG_WAITALL), bytes, "recv");
    printf("recv %llx\n", (unsigned long long)sum(q, bytes));
    push_out();
    struct iovec v = {q, bytes};
    struct msghdr m = {0};
    m.msg_iov = &v;
    m.msg_iovlen = 1;
    check(recvmsg(sv[0], &m, MSG_WAITALL), bytes, "recvmsg");
    printf("recvmsg %llx\n", (unsigned long long)sum(q, bytes));
    wait_child();
    return 0;
  }
  if (!strcmp(mode, "stdio")) {
    char* buf = malloc(bytes);
    if (buf == NULL || setvbuf(stdout, buf, _IOFBF, bytes) != 0) return 1;
    size_t line = 64, n = 0;
    for (int round = 0; round < 3; ++round) {
      for (size_t k = 0; k + line < bytes - 128; k += line) printf("round %d line %09zu %40s\n", round, n++, "x");
      push_out();
      if (round == 1) fflush(stdout);
    }
    return 0;  /* exit flushes the third round */
  }
  if (!strcmp(mode, "lines")) {
    for (int round = 0; round < 4; ++round) {
      for (int i = 0; i < 20000; ++i) printf("round %d line %d\n", round, i);
      push_out();
    }
    return 0;
  }
  if (!strcmp(mode, "fwrite")) {
    unsigned char* p = filled(6);
    push_out();
    if (fwrite(p, 1, bytes, stdout) != bytes) return 4;
    fflush(stdout);
    FILE* t = tmpfile();
    if (t == NULL) return 1;
    unsigned char* q = filled(7);
    if (fwrite(p, 1, bytes, t) != bytes || fflush(t) != 0) return 5;
    rewind(t);
    push_out();
    if (fread(q, 1, bytes, t) != bytes) {
      fprintf(stderr, "fread: short (%s)\n", strerror(errno));
      return errno == EFAULT ? 3 : 1;
    }
    fprintf(stderr, "fread %llx %llx\n", (unsigned long long)sum(q, bytes), (unsigned long long)sum(p, bytes));
    return sum(q, bytes) == sum(p, bytes) ? 0 : 6;
  }
  if (!strcmp(mode, "unlocked")) {
    unsigned char* p = filled(8);
    push_out();
    if (fwrite_unlocked(p, 1, bytes, stdout) != bytes) return 4;
    fflush_unlocked(stdout);
    FILE* t = tmpfile();
    if (t == NULL) return 1;
    if (fwrite_unlocked(p, 1, bytes, t) != bytes || fflush_unlocked(t) != 0) return 5;
    rewind(t);
    unsigned char* q = malloc(bytes);  // never touched: every page is a first touch
    if (q == NULL) return 1;
    if (fread_unlocked(q, 1, bytes, t) != bytes) {
      fprintf(stderr, "fread_unlocked: short (%s)\n", strerror(errno));
      return errno == EFAULT ? 3 : 1;
    }
    fprintf(stderr, "fread %llx %llx\n", (unsigned long long)sum(q, bytes), (unsigned long long)sum(p, bytes));
    if (sum(q, bytes) != sum(p, bytes)) return 6;
    // Lines: out of paged-out memory with fputs_unlocked, back into paged-out memory.
    rewind(t);
    char* lines = (char*)filled(9);
    size_t nlines = bytes / 64;
    for (size_t i = 0; i < nlines; ++i) snprintf(lines + i * 64, 64, "line %zu of the unlocked case\n", i);
    push_out();
    for (size_t i = 0; i < nlines; ++i)
      if (fputs_unlocked(lines + i * 64, t) == EOF) return 7;
    // Checked: a failed flush leaves the file short, and fgets below would meet its end
    // with the flush's errno (seen once in CI: "fgets_unlocked: Resource temporarily
    // unavailable", auto backend).
    if (fflush_unlocked(t) != 0) {
      fprintf(stderr, "fflush_unlocked: %s\n", strerror(errno));
      return errno == EFAULT ? 3 : 8;
    }
    rewind(t);
    push_out();
    for (size_t i = 0; i < nlines; ++i)
      if (fgets_unlocked(lines + i * 64, 64, t) == NULL) {
        fprintf(stderr, "fgets_unlocked: %s at line %zu of %zu (%s)\n", strerror(errno), i, nlines,
                feof(t) ? "end of file" : "error");
        return errno == EFAULT ? 3 : 1;
      }
    fputs_unlocked(lines + (nlines - 1) * 64, stdout);
    return 0;
  }
  return 2;
}
