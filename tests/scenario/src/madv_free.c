/* madv_free.c — MADV_FREE under memory pressure (scenario madv_pageout): a 24 MB private
 * anonymous mapping filled, MADV_FREE'd whole, a word of every page of its first half written
 * again, then 24 MB more malloc'd and written (under vmrun --physmem 16M the pageout daemon
 * must make room).  A page may be freed any time until it is written (it then reads zeros),
 * never after: every word written must read back, the rest of each page must be all its old
 * contents or all zeros (freed before the write, or never written).  Prints the
 * madvise answer and "bad=N" (0 expected) on stdout, the zero pages on stderr (they
 * depend on memory pressure: none natively without it). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

enum { kPage = 4096 };

static uint64_t word(size_t i, unsigned v) { return ((uint64_t)i * 0x9E3779B97F4A7C15ull) ^ ((uint64_t)v << 56) ^ 1; }

int main(void) {
  const size_t pages = (24u << 20) / kPage;
  /* A malloc first, as nearly every program makes one before its own mmaps: under the shim
     it boots vmrt, and an mmap before that is the host's (libc_shim/shim_mmap.cpp). */
  void* volatile first = malloc(1);
  free(first);
  unsigned char* p = mmap(NULL, pages * kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return 1;
  for (size_t i = 0; i < pages; ++i) memset(p + i * kPage, (int)(i % 251) + 1, kPage);
  printf("madvise free %d\n", madvise(p, pages * kPage, MADV_FREE));
  for (size_t i = 0; i < pages / 2; ++i) ((uint64_t*)(p + i * kPage))[7] = word(i, 2);
  /* Pressure: 24 MB more, written. */
  unsigned char* q = malloc(24u << 20);
  if (q == NULL) return 1;
  for (size_t i = 0; i < (24u << 20); i += kPage) q[i] = (unsigned char)i | 1;
  size_t bad = 0, zero = 0;
  for (size_t i = 0; i < pages; ++i) {
    const unsigned char* pg = p + i * kPage;
    const unsigned char old = (unsigned char)((int)(i % 251) + 1);
    if (i < pages / 2) { /* written after MADV_FREE: its word, and old bytes or zeros around it */
      const unsigned char around = pg[0];
      bad += ((const uint64_t*)pg)[7] != word(i, 2) || (around != old && around != 0) || pg[kPage - 1] != around;
      continue;
    }
    int all_old = 1, all_zero = 1;
    for (size_t k = 0; k < kPage; ++k) {
      all_old &= pg[k] == old;
      all_zero &= pg[k] == 0;
    }
    zero += all_zero;
    bad += !all_old && !all_zero;
  }
  for (size_t i = 0; i < (24u << 20); i += kPage) bad += q[i] != ((unsigned char)i | 1);
  printf("bad=%zu\n", bad);
  fprintf(stderr, "zero pages %zu of %zu\n", zero, pages / 2);
  return bad != 0;
}
