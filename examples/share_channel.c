/* share_channel.c — moving data between two address spaces without copying it: a
 * producer vmspace fills pages, a consumer vmspace reads them through the zero-copy channel
 * (vmrt_channel.h), once lent (the producer keeps its pages, copy-on-write meanwhile) and once
 * moved (the producer's buffer reads zeros afterwards); a small message is copied.  Then the
 * same pages are passed as a map entry (vmrt_extract), and the vmstat counters and procstat
 * show what happened.
 *
 *   <build>/bin/share_channel
 */
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

#include <vmrt/vmrt.h>
#include <vmrt/vmrt_channel.h>

static const char* how_name(int how) {
  return how == VMRT_CHANNEL_COPIED ? "copied" : how == VMRT_CHANNEL_LOANED ? "lent" : "moved";
}

static int receive(vmrt_channel* ch, const char* what) {
  vmrt_msg m;
  if (vmrt_channel_recv(ch, &m) != 0) {
    perror("vmrt_channel_recv");
    return -1;
  }
  printf("%-14s %8zu bytes %-6s first bytes \"%.12s\"\n", what, m.len, how_name(m.how), (const char*)m.data);
  return vmrt_channel_done(ch, &m);
}

int main(void) {
  if (vmrt_init() != 0) {
    perror("vmrt_init");
    return 1;
  }
  vmrt_vmspace* producer = vmrt_vmspace_create(64u << 20);
  vmrt_vmspace* consumer = vmrt_vmspace_create(64u << 20);
  if (producer == NULL || consumer == NULL) {
    perror("vmrt_vmspace_create");
    return 1;
  }
  const size_t len = 1u << 20;  /* 1 MiB, whole pages */
  char* buf = vmrt_mmap(producer, NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (buf == VMRT_MAP_FAILED) {
    perror("vmrt_mmap");
    return 1;
  }
  for (size_t i = 0; i < len; ++i) buf[i] = "loaned pages "[i % 13];

  vmrt_channel* ch = vmrt_channel_create(producer, consumer);
  if (ch == NULL) {
    perror("vmrt_channel_create");
    return 1;
  }
  /* Every whole-page message by loan or transfer (the default copies up to 64 MiB: on the
   * machines measured, copying is faster at every size; see the README). */
  vmrt_channel_set_copy_max(ch, 0);
  if (vmrt_channel_send(ch, buf, len, 0) != 0 || receive(ch, "loan") != 0) return 1;
  buf[0] = 'L';  /* the loan ended with vmrt_channel_done: this write makes the page writable again */
  if (vmrt_channel_send(ch, buf, len, VMRT_CHANNEL_GIVE) != 0 || receive(ch, "transfer") != 0) return 1;
  printf("producer's buffer after the transfer reads %d (zero-filled)\n", buf[0]);
  char hello[] = "a short message";
  if (vmrt_channel_send(ch, hello, sizeof hello, 0) != 0 || receive(ch, "small") != 0) return 1;
  vmrt_channel_destroy(ch);

  /* Map entry passing: 1 MiB shared as one map entry, whatever is resident. */
  memset(buf, 'e', len);
  char* view = vmrt_extract(producer, buf, len, consumer, NULL, VMRT_EXTRACT_SHARE);
  if (view == VMRT_MAP_FAILED) {
    perror("vmrt_extract");
    return 1;
  }
  view[0] = 'E';
  printf("extract (shared): the producer sees the consumer's write: %c\n", buf[0]);

  const char* names[] = {"loans made", "pages loaned", "loan breaks", "loans ended", "page transfers",
                         "map entry extracts", "pages on loan"};
  for (size_t i = 0; i < sizeof names / sizeof names[0]; ++i) printf("%8lld %s\n", vmrt_counter(names[i]), names[i]);
  fflush(stdout);
  vmrt_report_procstat(consumer, 1);
  int bad = vmrt_check(producer, 2) != 0 || vmrt_check(consumer, 2) != 0;
  vmrt_vmspace_destroy(consumer);
  vmrt_vmspace_destroy(producer);
  return bad;
}
