/* records.c — an example guest library (built -fPIC -shared -nostdlib): parses
 * "name:count:total" records and keeps running statistics.  It has two real bugs on
 * bad input, on purpose: a record without ':' dereferences strchr's NULL, and a count
 * of 0 divides by zero.  Loaded as a guest, each bug ends one call with an error
 * instead of killing the host (examples/guest_records.c). */
typedef unsigned long size_t;
char* strchr(const char*, int);
long strtol(const char*, char**, int);
void* malloc(size_t);
size_t strlen(const char*);
void* memcpy(void*, const void*, size_t);

static long records_seen;
static long grand_total;

/* The average of one record; updates the running totals. */
long parse_record(const char* rec) {
  const char* c1 = strchr(rec, ':');
  const char* c2 = strchr(c1 + 1, ':'); /* bug: c1 may be NULL */
  long count = strtol(c1 + 1, 0, 10);
  long total = strtol(c2 + 1, 0, 10);
  records_seen++;
  grand_total += total;
  return total / count; /* bug: count may be 0 */
}

long seen(void) { return records_seen; }
long total(void) { return grand_total; }

/* The record's name, upper-cased, in a fresh guest malloc block. */
char* record_name(const char* rec) {
  const char* c1 = strchr(rec, ':');
  size_t n = c1 ? (size_t)(c1 - rec) : strlen(rec);
  char* out = malloc(n + 1);
  if (!out) return 0;
  memcpy(out, rec, n);
  out[n] = 0;
  for (size_t i = 0; i < n; ++i)
    if (out[i] >= 'a' && out[i] <= 'z') out[i] = (char)(out[i] - 'a' + 'A');
  return out;
}

/* FNV-1a of n bytes. */
long checksum(const unsigned char* p, long n) {
  unsigned long h = 1469598103934665603UL;
  for (long i = 0; i < n; ++i) h = (h ^ p[i]) * 1099511628211UL;
  return (long)(h >> 1);
}

int trivial(int x) { return x; }

/* A lookup table of n bytes on the guest heap: the one-time warm-up a real library
 * does (bench/guest_bench restores guests warmed this way). */
static unsigned char* table;
static long table_len;
long build_table(long n) {
  table = malloc((size_t)n);
  if (!table) return -1;
  for (long i = 0; i < n; ++i) table[i] = (unsigned char)(i * 31);
  table_len = n;
  return n;
}
/* One byte of every 4 KiB of the table, summed. */
long table_sum(void) {
  long s = 0;
  for (long i = 0; i < table_len; i += 4096) s += table[i];
  return s;
}
/* Write one byte into each of the table's first `pages` 4 KiB pages (spread evenly over
 * the table when it has more): the work a call does between two restores. */
long table_touch(long pages) {
  long pagesz = 4096, npages = table_len / pagesz, step = pages > 0 && npages > pages ? npages / pages : 1, n = 0;
  for (long k = 0; k < npages && n < pages; k += step, ++n) table[k * pagesz] ^= 1;
  return n;
}
