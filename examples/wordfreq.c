/* wordfreq — count the words of a text and print the 20 most frequent.
 *
 *   wordfreq [file]        (standard input when no file is given)
 *
 * A deliberately malloc-heavy ordinary C program, used as vmrt's first example:
 * the whole input is read into a buffer grown with realloc, words (runs of
 * letters, digits and apostrophes, lower-cased) are counted in a chained hash
 * table of malloc'd nodes holding strdup'd words, the table doubles (a new
 * calloc'd bucket array) as it fills, the nodes are gathered into an array
 * grown with realloc and sorted with qsort (count descending, then word).
 * Everything is freed before exit.  Run it natively and under vmrun: the
 * output must be identical.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct node {
  char* word;
  unsigned long count;
  struct node* next;
};

struct table {
  struct node** buckets;
  size_t nbuckets; /* a power of two */
  size_t nwords;   /* distinct words */
};

static void die(const char* what) {
  fprintf(stderr, "wordfreq: %s: %s\n", what, strerror(errno));
  exit(1);
}

static uint64_t hash(const char* s) { /* FNV-1a */
  uint64_t h = 1469598103934665603ull;
  for (; *s; ++s) h = (h ^ (unsigned char)*s) * 1099511628211ull;
  return h;
}

static void grow(struct table* t) {
  size_t n = t->nbuckets * 2;
  struct node** b = calloc(n, sizeof *b);
  if (b == NULL) die("calloc");
  for (size_t i = 0; i < t->nbuckets; ++i) {
    struct node* e = t->buckets[i];
    while (e != NULL) {
      struct node* next = e->next;
      size_t j = hash(e->word) & (n - 1);
      e->next = b[j];
      b[j] = e;
      e = next;
    }
  }
  free(t->buckets);
  t->buckets = b;
  t->nbuckets = n;
}

static void add(struct table* t, const char* w) {
  size_t i = hash(w) & (t->nbuckets - 1);
  for (struct node* e = t->buckets[i]; e != NULL; e = e->next) {
    if (strcmp(e->word, w) == 0) {
      e->count++;
      return;
    }
  }
  struct node* e = malloc(sizeof *e);
  if (e == NULL) die("malloc");
  e->word = strdup(w);
  if (e->word == NULL) die("strdup");
  e->count = 1;
  e->next = t->buckets[i];
  t->buckets[i] = e;
  if (++t->nwords > t->nbuckets * 3 / 4) grow(t);
}

static char* slurp(FILE* f, size_t* len) {
  size_t cap = 4096, n = 0;
  char* buf = malloc(cap);
  if (buf == NULL) die("malloc");
  for (;;) {
    if (n + 4096 + 1 > cap) {
      cap *= 2;
      char* nb = realloc(buf, cap);
      if (nb == NULL) die("realloc");
      buf = nb;
    }
    size_t got = fread(buf + n, 1, 4096, f);
    n += got;
    if (got == 0) break;
  }
  if (ferror(f)) die("read");
  buf[n] = '\0';
  *len = n;
  return buf;
}

static int by_count(const void* a, const void* b) {
  const struct node* x = *(const struct node* const*)a;
  const struct node* y = *(const struct node* const*)b;
  if (x->count != y->count) return x->count < y->count ? 1 : -1;
  return strcmp(x->word, y->word);
}

static int is_word_char(int c) { return isalnum(c) || c == '\''; }

int main(int argc, char** argv) {
  FILE* in = stdin;
  if (argc > 2) {
    fprintf(stderr, "usage: wordfreq [file]\n");
    return 2;
  }
  if (argc == 2 && (in = fopen(argv[1], "r")) == NULL) die(argv[1]);
  size_t len;
  char* text = slurp(in, &len);
  if (in != stdin) fclose(in);

  struct table t = {calloc(16, sizeof(struct node*)), 16, 0};
  if (t.buckets == NULL) die("calloc");
  unsigned long total = 0, lines = 0;
  size_t wcap = 16, wlen = 0;
  char* word = malloc(wcap);
  if (word == NULL) die("malloc");
  for (size_t i = 0; i <= len; ++i) {
    int c = (unsigned char)text[i];
    if (c == '\n') ++lines;
    if (i < len && is_word_char(c)) {
      if (wlen + 1 >= wcap) {
        wcap *= 2;
        char* nw = realloc(word, wcap);
        if (nw == NULL) die("realloc");
        word = nw;
      }
      word[wlen++] = (char)tolower(c);
    } else if (wlen > 0) {
      word[wlen] = '\0';
      add(&t, word);
      ++total;
      wlen = 0;
    }
  }
  free(word);
  free(text);

  /* Gather into an array grown with realloc, then sort. */
  struct node** all = NULL;
  size_t n = 0, cap = 0;
  for (size_t i = 0; i < t.nbuckets; ++i) {
    for (struct node* e = t.buckets[i]; e != NULL; e = e->next) {
      if (n == cap) {
        cap = cap ? cap * 2 : 64;
        struct node** na = reallocarray(all, cap, sizeof *na);
        if (na == NULL) die("reallocarray");
        all = na;
      }
      all[n++] = e;
    }
  }
  if (n > 0) qsort(all, n, sizeof *all, by_count);

  printf("%-20s %10s %8s\n", "word", "count", "share");
  for (size_t i = 0; i < n && i < 20; ++i)
    printf("%-20s %10lu %7.3f%%\n", all[i]->word, all[i]->count, 100.0 * (double)all[i]->count / (double)total);
  printf("total words: %lu, distinct: %zu, lines: %lu, bytes: %zu\n", total, n, lines, len);

  for (size_t i = 0; i < n; ++i) {
    free(all[i]->word);
    free(all[i]);
  }
  free(all);
  free(t.buckets);
  return 0;
}
