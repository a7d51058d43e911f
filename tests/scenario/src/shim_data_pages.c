/* shim_data_pages — what the loader and the shim's load-time populate left of the shim's
 * writable data when main starts (scenario exec_boot), before the first malloc boots vmrt.
 *
 * Prints "pages <n> private <k>": the pages of the shim's file-backed writable mapping (its
 * .data after RELRO, the fork data page, the start of .bss) and how many of them are this
 * process's own copies already (pagemap: present and not the file's page).  With the
 * load-time populate all of them are (one madvise call, runtime/rt_populate.cpp); without it
 * (VMRT_POPULATE=0) only those the loader wrote itself: relocations, and the zeroing of the
 * page .bss begins in.  Prints "none" when the shim is not loaded.  Nothing here mallocs
 * before the pages are read (no stdio until the end): a malloc boots vmrt, which writes them.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static char g_maps[1 << 16];

int main(void) {
  int fd = open("/proc/self/maps", O_RDONLY);
  int pm = open("/proc/self/pagemap", O_RDONLY);
  if (fd < 0 || pm < 0) return 2;
  size_t len = 0;
  for (ssize_t r; len < sizeof g_maps - 1 && (r = read(fd, g_maps + len, sizeof g_maps - 1 - len)) > 0;) len += (size_t)r;
  g_maps[len] = '\0';
  unsigned long pages = 0, own = 0;
  int found = 0;
  for (char* line = g_maps; line != NULL && *line != '\0';) {
    char* next = strchr(line, '\n');
    if (next != NULL) *next++ = '\0';
    unsigned long lo, hi;
    char perm[8], path[400] = "";
    if (sscanf(line, "%lx-%lx %7s %*s %*s %*s %399s", &lo, &hi, perm, path) >= 3 && strstr(path, "libvmrt_malloc") != NULL &&
        strcmp(perm, "rw-p") == 0) {
      found = 1;
      for (unsigned long a = lo; a < hi; a += 4096) {
        uint64_t e = 0;
        if (pread(pm, &e, sizeof e, (off_t)(a / 4096 * sizeof e)) != (ssize_t)sizeof e) return 3;
        ++pages;
        if ((e >> 63 & 1) && !(e >> 61 & 1)) ++own;  // present, not the file's page: a private copy
      }
    }
    line = next;
  }
  if (!found) {
    puts("none");
    return 0;
  }
  printf("pages %lu private %lu\n", pages, own);
  return 0;
}
