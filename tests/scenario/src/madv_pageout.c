// madv_pageout.c — MADV_PAGEOUT and MADV_COLD as a program uses them (scenario madv_pageout).
// For malloc'd memory and for an anonymous mmap of MB megabytes each: fill every page,
// MADV_PAGEOUT the page-aligned part, count what mincore says is resident, read every byte
// back; then MADV_COLD and read again; then the errno cases (unaligned: EINVAL, a hole:
// ENOMEM).  With FILE, a private mapping of an MB file of its own making, read and partly
// written, MADV_PAGEOUTed too.  Prints one line per step: "<what> rc=<rc>
// resident=<pages>/<pages> intact=<0|1>".
// Usage: madv_pageout MB [FILE]
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#ifndef MADV_COLD
#define MADV_COLD 20
#endif
#ifndef MADV_PAGEOUT
#define MADV_PAGEOUT 21
#endif

static const size_t kPage = 4096;

static unsigned char byte_at(size_t i, unsigned salt) { return (unsigned char)((i * 131u + (i >> 12) * 7u + salt) | 1u); }

static void fill(unsigned char* p, size_t n, unsigned salt) {
  for (size_t i = 0; i < n; ++i) p[i] = byte_at(i, salt);
}

static int intact(const unsigned char* p, size_t n, unsigned salt) {
  for (size_t i = 0; i < n; ++i)
    if (p[i] != byte_at(i, salt)) return 0;
  return 1;
}

static size_t resident(unsigned char* a, size_t len) {
  size_t pages = len / kPage, n = 0;
  unsigned char* v = malloc(pages);
  if (v == NULL || mincore(a, len, v) != 0) {
    perror("mincore");
    exit(2);
  }
  for (size_t i = 0; i < pages; ++i) n += v[i] & 1;
  free(v);
  return n;
}

// The page-aligned part of [p, p + n): *len bytes from the returned address.
static unsigned char* aligned_part(unsigned char* p, size_t n, size_t* len) {
  uintptr_t a = ((uintptr_t)p + kPage - 1) & ~(uintptr_t)(kPage - 1);
  uintptr_t e = ((uintptr_t)p + n) & ~(uintptr_t)(kPage - 1);
  *len = e - a;
  return (unsigned char*)a;
}

static void step(const char* what, unsigned char* p, size_t n, unsigned salt, int advice) {
  size_t len;
  unsigned char* a = aligned_part(p, n, &len);
  int rc = madvise(a, len, advice);
  int err = rc != 0 ? errno : 0;
  size_t r = resident(a, len);
  int ok = intact(p, n, salt);
  printf("%s rc=%d%s%s resident=%zu/%zu intact=%d\n", what, rc, err ? " errno=" : "", err ? (err == EINVAL ? "EINVAL" : "other") : "",
         r, len / kPage, ok);
}

int main(int argc, char** argv) {
  size_t mb = argc > 1 ? (size_t)atoi(argv[1]) : 8, n = mb << 20;
  unsigned char* h = malloc(n);
  unsigned char* m = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (h == NULL || m == MAP_FAILED) {
    perror("alloc");
    return 2;
  }
  fill(h, n, 1);
  fill(m, n, 2);
  step("malloc pageout", h, n, 1, MADV_PAGEOUT);
  step("mmap pageout", m, n, 2, MADV_PAGEOUT);
  step("malloc cold", h, n, 1, MADV_COLD);
  step("mmap cold", m, n, 2, MADV_COLD);
  // A private file mapping: every page read (the file's pages), every fourth written with
  // what it held (the mapping's own copies over them).
  if (argc > 2) {
    FILE* f = fopen(argv[2], "w+");
    unsigned char* buf = malloc(n);
    if (f == NULL || buf == NULL) return 2;
    fill(buf, n, 3);
    if (fwrite(buf, 1, n, f) != n || fflush(f) != 0) return 2;
    free(buf);
    unsigned char* fm = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE, fileno(f), 0);
    if (fm == MAP_FAILED) return 2;
    unsigned sum = 0;
    for (size_t i = 0; i < n; i += kPage) sum += fm[i];
    for (size_t i = 0; i < n; i += 4 * kPage) ((volatile unsigned char*)fm)[i] = fm[i];
    step("file pageout", fm, n, 3, MADV_PAGEOUT);
    munmap(fm, n);
    fclose(f);
    if (sum == 0) return 3;
  }
  // The errno cases: an unaligned address, a range running into a hole.
  int e1 = madvise(m + 1, kPage, MADV_PAGEOUT) == -1 ? errno : 0;
  if (munmap(m + n - kPage, kPage) != 0) return 2;
  int e2 = madvise(m, n, MADV_PAGEOUT) == -1 ? errno : 0;
  int e3 = madvise(m, n, MADV_COLD) == -1 ? errno : 0;
  printf("errno unaligned=%s hole=%s,%s intact=%d\n", e1 == EINVAL ? "EINVAL" : "other", e2 == ENOMEM ? "ENOMEM" : "other",
         e3 == ENOMEM ? "ENOMEM" : "other", intact(m, n - kPage, 2));
  free(h);
  return 0;
}
