// cow_frames.c — host forks of a program whose heap changes on every side while children
// read it: the shapes a copy-on-write fork of frames must get right (scenario fork_cow_frames).
//
//   - several children at once (more than a parent's four records), each reading its
//     snapshot only after the parent changed blocks, writing its own block, and receiving
//     read(2) data into a block it never touched (a kernel-mode write into a frame still in
//     its parent's memfd);
//   - the parent's read(2) into a block right after the fork (a kernel-mode write into a
//     write-protected frame);
//   - a thread of the parent writing its own blocks all the while;
//   - a grandchild (a child that forks before it has everything);
//   - a child that execs;
//   - a child that outlives its parent and reads everything afterwards.
// Prints "ok", then the orphan's "orphan ok"; the first mismatch instead.  The same program
// passes natively.
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define MB (1u << 20)
#define NBLK 48     // blocks of 1 MiB
#define NSTATIC 40  // blocks 0..39: changed by the main thread only, between forks
#define NCHILD 6    // children at once (a parent keeps four records)
#define ROUNDS 6

static uint64_t* blk[NBLK];
static unsigned gen[NBLK];  // the generation each static block holds

static uint64_t word(int b, size_t i, unsigned g) {
  return ((uint64_t)b << 48) ^ ((uint64_t)g << 32) ^ (i * 2654435761u);
}
static void fill(int b, unsigned g) {
  for (size_t i = 0; i < MB / 8; ++i) blk[b][i] = word(b, i, g);
}
static int check(int b, unsigned g) {
  for (size_t i = 0; i < MB / 8; i += 61)
    if (blk[b][i] != word(b, i, g)) return 0;
  return blk[b][MB / 8 - 1] == word(b, MB / 8 - 1, g);
}

static volatile int stop;
static void* writer(void* arg) {
  (void)arg;
  unsigned g = 1000;
  while (!stop) {
    for (int b = NSTATIC; b < NBLK; ++b) fill(b, g);
    for (int b = NSTATIC; b < NBLK; ++b)
      if (!check(b, g)) {
        printf("parent thread: block %d lost its own write\n", b);
        fflush(stdout);
        _exit(1);
      }
    ++g;
  }
  return NULL;
}

// Child k of round r: waits until the parent changed blocks, then checks its snapshot.
static int child(int r, int k, const unsigned* snap, int go_fd, int data_fd) {
  char c;
  if (read(go_fd, &c, 1) != 1) return 20;
  for (int b = 0; b < NSTATIC; ++b)
    if (!check(b, snap[b])) {
      printf("child %d.%d: block %d is not generation %u\n", r, k, b, snap[b]);
      return 21;
    }
  // read(2) into a block this child has not written: the kernel writes a frame that may
  // still be in the parent's memfd only.
  int other = (r * NCHILD + k + 7) % NSTATIC;
  char* dst = (char*)blk[other] + 4096 * 5 + 100;
  char expect[32];
  if (read(data_fd, dst, sizeof expect) != (ssize_t)sizeof expect) return 22;
  // 32 bytes of one letter: which child gets which of the parent's chunks is the pipe's choice
  memset(expect, dst[0], sizeof expect);
  if (dst[0] < 'a' || dst[0] >= 'a' + NCHILD || memcmp(dst, expect, sizeof expect) != 0) return 23;
  int mine = (r * NCHILD + k) % NSTATIC;
  fill(mine, 5000 + k);
  if (!check(mine, 5000 + k)) return 24;
  if (k == 0) {  // a grandchild: forked before this child has all its frames
    pid_t g = fork();
    if (g < 0) return 25;
    if (g == 0) {
      for (int x = 0; x < NSTATIC; ++x)
        if (x != mine && x != other && !check(x, snap[x])) _exit(26);
      if (!check(mine, 5000 + k) || memcmp(dst, expect, sizeof expect) != 0) _exit(27);
      fill(mine, 7);  // the grandchild's write: its parent must not see it
      _exit(0);
    }
    int st;
    if (waitpid(g, &st, 0) != g || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
      printf("grandchild of %d.%d: status %d\n", r, k, WIFEXITED(st) ? WEXITSTATUS(st) : -1);
      return 28;
    }
    if (!check(mine, 5000 + k)) return 29;
  }
  if (k == 1) {  // a child that execs: its parent keeps its record until it exits
    execl("/bin/true", "true", (char*)NULL);
    return 30;
  }
  return 0;
}

// A thread that exits while the round's children still share the parent's frames: the kernel
// clears its thread id at exit (in its descriptor, at the top of its stack) without waiting
// for a userfaultfd handler, so a write-protected descriptor page left pthread_join asleep.
static void* short_lived(void* arg) {
  int fd = (int)(long)arg;
  char c;
  return read(fd, &c, 1) == 1 ? NULL : (void*)1;
}

int main(void) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  for (int b = 0; b < NBLK; ++b) {
    blk[b] = malloc(MB);
    if (blk[b] == NULL) {
      puts("malloc failed");
      return 1;
    }
    fill(b, gen[b] = 1);
  }
  pthread_t t;
  if (pthread_create(&t, NULL, writer, NULL) != 0) return 1;
  for (int r = 0; r < ROUNDS; ++r) {
    int go[2], data[2];
    if (pipe(go) != 0 || pipe(data) != 0) return 1;
    pid_t pid[NCHILD];
    unsigned snap[NSTATIC];
    memcpy(snap, gen, sizeof snap);
    int bye[2];
    pthread_t quick;
    if (pipe(bye) != 0 || pthread_create(&quick, NULL, short_lived, (void*)(long)bye[0]) != 0) return 1;
    for (int k = 0; k < NCHILD; ++k) {
      pid[k] = fork();
      if (pid[k] < 0) {
        puts("fork failed");
        return 1;
      }
      if (pid[k] == 0) {
        close(go[1]);
        close(data[1]);
        fflush(stdout);
        _exit(child(r, k, snap, go[0], data[0]));
      }
      // The parent's kernel-mode write right after the fork, into a write-protected block
      // (the children must not see it: their snapshot is checked against gen).
      int b = (r + k) % NSTATIC;
      int kp[2];
      char* at = (char*)blk[b] + 4096 * 9 + 40;
      if (pipe(kp) != 0 || write(kp[1], "kernel-mode write", 17) != 17 || read(kp[0], at, 17) != 17 ||
          memcmp(at, "kernel-mode write", 17) != 0) {
        printf("round %d: the parent's read(2) into block %d failed\n", r, b);
        return 1;
      }
      close(kp[0]);
      close(kp[1]);
      fill(b, gen[b]);
    }
    close(go[0]);
    close(data[0]);
    // The short-lived thread exits and is joined while the children wait.
    void* quick_rc;
    if (write(bye[1], "x", 1) != 1 || pthread_join(quick, &quick_rc) != 0 || quick_rc != NULL) {
      printf("round %d: the short-lived thread's join failed\n", r);
      return 1;
    }
    close(bye[0]);
    close(bye[1]);
    // The parent changes half the static blocks while the children wait.
    for (int b = r % 2; b < NSTATIC; b += 2) fill(b, ++gen[b]);
    for (int k = 0; k < NCHILD; ++k) {
      char d[32];
      memset(d, 'a' + k, sizeof d);
      if (write(data[1], d, sizeof d) != (ssize_t)sizeof d) return 1;
    }
    if (write(go[1], "gggggggg", NCHILD) != NCHILD) return 1;
    for (int k = 0; k < NCHILD; ++k) {
      int st;
      if (waitpid(pid[k], &st, 0) != pid[k] || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        printf("child %d.%d: status %d\n", r, k, WIFEXITED(st) ? WEXITSTATUS(st) : -WTERMSIG(st));
        return 1;
      }
    }
    close(go[1]);
    close(data[1]);
    for (int b = 0; b < NSTATIC; ++b)
      if (!check(b, gen[b])) {
        printf("round %d: the parent's block %d changed under it\n", r, b);
        return 1;
      }
  }
  stop = 1;
  pthread_join(t, NULL);
  puts("ok");
  // An orphan: the parent exits at once, the child reads everything afterwards.
  pid_t o = fork();
  if (o < 0) return 1;
  if (o == 0) {
    usleep(200 * 1000);
    for (int b = 0; b < NSTATIC; ++b)
      if (!check(b, gen[b])) {
        printf("orphan: block %d is not generation %u\n", b, gen[b]);
        _exit(1);
      }
    puts("orphan ok");
    _exit(0);
  }
  for (int b = 0; b < NSTATIC; ++b) fill(b, ++gen[b]);  // the parent's last writes
  return 0;
}
