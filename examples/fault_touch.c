/* fault_touch.c — first-touch cost in a vmrt vmspace vs host anonymous memory.
 *
 *   fault_touch [MiB]    (default 256; VMRT_TRAP=sigsegv|userfaultfd picks the backend)
 *
 * One write per 4 KiB page, sequential and in a random page order, timed side by
 * side in one run; prints microseconds per page and the ratio to the host.
 * "random-1" is random order with MADV_RANDOM (no fault-around): the raw cost of
 * one trap round trip per page.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>

#include <vmrt/vmrt.h>

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static void touch(char* p, size_t npages, const uint32_t* order) {
  for (size_t i = 0; i < npages; ++i) p[(size_t)(order ? order[i] : i) * 4096] = 1;
}

int main(int argc, char** argv) {
  size_t mib = argc > 1 ? (size_t)atol(argv[1]) : 256;
  size_t len = mib << 20, npages = len / 4096;
  if (vmrt_init() != 0) return 1;
  uint32_t* order = malloc(npages * sizeof *order);
  for (size_t i = 0; i < npages; ++i) order[i] = (uint32_t)i;
  uint64_t s = 88172645463325252ull;
  for (size_t i = npages - 1; i > 0; --i) {
    s ^= s << 13, s ^= s >> 7, s ^= s << 17;
    size_t j = s % (i + 1);
    uint32_t t = order[i];
    order[i] = order[j], order[j] = t;
  }
  vmrt_vmspace* vs = vmrt_vmspace_create(2 * len + (64 << 20));
  printf("backend %-11s %zu MiB, one write per page      us/page   vs host\n", vmrt_trap_backend(), mib);
  static const char* const kinds[3] = {"sequential", "random", "random-1"};
  for (int random = 0; random < 3; ++random) {
    const uint32_t* o = random ? order : NULL;
    char* h = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    char* v = vmrt_mmap(vs, NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (h == MAP_FAILED || v == VMRT_MAP_FAILED) return 1;
    madvise(h, len, MADV_NOHUGEPAGE);  /* 4 KiB pages on both sides */
    if (random == 2) vmrt_madvise(vs, v, len, MADV_RANDOM);  /* no fault-around: one page per fault */
    double t0 = now();
    touch(h, npages, o);
    double t1 = now();
    touch(v, npages, o);
    double t2 = now();
    double hu = (t1 - t0) * 1e6 / (double)npages, vu = (t2 - t1) * 1e6 / (double)npages;
    printf("  %-10s host anonymous mmap             %8.3f\n", kinds[random], hu);
    printf("  %-10s vmrt vmspace                    %8.3f   %5.2fx\n", kinds[random], vu, vu / hu);
    munmap(h, len);
    vmrt_munmap(vs, v, len);
  }
  size_t in_region = 0, total = 0;
  vmrt_host_vmas(&in_region, &total);
  printf("host VMAs now: %zu in the region, %zu in the process; host mmap calls %lld\n", in_region, total,
         vmrt_counter("host mmap calls"));
  printf("faults: %lld sigsegv, %lld userfaultfd; %lld pages entered in %lld runs; %lld fault-around pages\n",
         vmrt_counter("sigsegv faults"), vmrt_counter("userfaultfd faults"), vmrt_counter("pmap entered pages"),
         vmrt_counter("pmap enters"), vmrt_counter("fault-around pages"));
  vmrt_vmspace_destroy(vs);
  free(order);
  return 0;
}
