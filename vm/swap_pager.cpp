// swap_pager.cpp — the swap device and the swap pager (see swap_pager.h).
#include "vm/swap_pager.h"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <sys/uio.h>
#include <unistd.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "vm/pmap.h"
#include "vm/vm_fail.h"
#include "vm/vm_fds.h"
#include "vm/vm_fork_store.h"
#include "vm/vm_lock.h"
#include "vm/vm_object.h"
#include "vm/vm_page.h"
#include "vm/vm_pager.h"
#include "vm/vm_radix.h"
#include "vm/vm_stats.h"
#include "vm/vm_sys.h"

namespace vmrt {
namespace {

// ---- the devices -------------------------------------------------------------------------
// One slot space, several host files.  New pageouts go to the process's own device.  A host
// fork freezes the own device when it holds pages: parent and child each keep reading the
// pages they still hold from it, neither writes it again (each makes a new own device at
// its next pageout), and the host frees its blocks when the last process holding pages
// there closes it (the file is unlinked).  So a fork copies no swap, however much is
// paged out: a command substitution of a shell with 40 MB paged out copied 36 MB of
// swap per fork (scenario paging, "bash forks").  Slot numbers stay unique per process:
// each side allocates from its own copy of the bitmap and writes only its own device.
constexpr unsigned kMaxDevices = 16;  // own + frozen; past that a fork merges the frozen ones
struct swap_device {
  int fh = -1;             // its file's vm_fds handle (used in a vm_fd_use); -1: a free table entry
  std::uint64_t live = 0;  // our slots on it
  unsigned io = 0;         // transfers running on it with the VM lock dropped
};
swap_device g_dev[kMaxDevices] VMRT_GUARDED_BY(g_vm_lock);
int g_own VMRT_GUARDED_BY(g_vm_lock) = -1;            // the device new pageouts go to; -1 until the next is made
int g_fork_drop VMRT_GUARDED_BY(g_vm_lock) = -1;      // an empty own device the fork child closes
std::uint8_t* g_slot_dev VMRT_GUARDED_BY(g_vm_lock);  // the device each used slot is on
static_assert(kMaxDevices <= 256, "a device index is one byte per slot");
// [constant after init]; 0: no swap, and the fork handlers touch nothing else (fork data).
VMRT_FORK_DATA std::uint64_t g_nslots = 0;
std::uint64_t* g_bitmap VMRT_GUARDED_BY(g_vm_lock);  // one bit per slot, set = in use
// XXH3-128 of the page in each slot [written by its owner]: checked on every page-in, and
// compared at pageout with the page's own to find a page unchanged since it was read (128
// bits: a page taken for unchanged is freed without a write, so a false match would lose
// the program's data; at 2^-128 per page it is not a concern, where 64 bits would be
// merely unlikely).
XXH128_hash_t* g_sum;
std::uint64_t g_used VMRT_GUARDED_BY(g_vm_lock) = 0;
std::uint64_t g_zero VMRT_GUARDED_BY(g_vm_lock) = 0;    // records that say "zero"
std::uint64_t g_cursor VMRT_GUARDED_BY(g_vm_lock) = 0;  // next-fit start
// The device is opened O_DIRECT: pageouts do not stay in the host's page cache, host RAM
// the physmem limit does not see.  paging_bench random / seq at twice 64M (the vmrt
// process's peak host charge, page cache included; time; one run each): cached 348 / 340
// MiB, 17.8 / 5.5 s; POSIX_FADV_DONTNEED after each write 347 / 340 MiB (the pages are still
// dirty then: nothing is dropped); write-behind (sync_file_range to start the writeback,
// fadvise 64 writes later, reads dropped at once) 122 / 271 MiB, 37.2 / 9.5 s; O_DIRECT
// 77 / 68 MiB, 36.4 / 8.7 s.  A file system that refuses O_DIRECT (tmpfs before Linux 6.6,
// whose cache is the store anyway) is used cached.

inline bool slot_used(std::uint64_t s) VMRT_REQUIRES(g_vm_lock) { return (g_bitmap[s / 64] >> (s % 64)) & 1; }
inline void slot_mark(std::uint64_t s, bool used) VMRT_REQUIRES(g_vm_lock) {
  std::uint64_t m = std::uint64_t{1} << (s % 64);
  if (used) g_bitmap[s / 64] |= m;
  else g_bitmap[s / 64] &= ~m;
}
void update_gauges() VMRT_REQUIRES(g_vm_lock) {
  vm_stat_set(V_SWAP_SLOTS_USED, static_cast<std::int64_t>(g_used));
  vm_stat_set(V_SWAP_SLOTS, static_cast<std::int64_t>(g_nslots));
}

// A run of n free slots, next fit; true with *first set.  Marks them used, on the own
// device (which must exist: own_device).  => VM lock held.
bool slots_alloc(std::uint64_t n, std::uint64_t* first) VMRT_REQUIRES(g_vm_lock) {
  if (n == 0 || g_nslots - g_used < n) return false;
  std::uint64_t s = g_cursor < g_nslots ? g_cursor : 0;
  std::uint64_t looked = 0, run = 0, start = s;
  while (looked < g_nslots + n) {
    if (s == g_nslots) {  // wrap: runs do not span the end
      s = 0;
      run = 0;
    }
    if (run == 0 && s % 64 == 0 && g_bitmap[s / 64] == ~std::uint64_t{0} && s + 64 <= g_nslots) {
      s += 64;
      looked += 64;
      continue;
    }
    if (slot_used(s)) {
      run = 0;
    } else {
      if (run == 0) start = s;
      if (++run == n) {
        for (std::uint64_t k = 0; k < n; ++k) {
          slot_mark(start + k, true);
          g_slot_dev[start + k] = static_cast<std::uint8_t>(g_own);
        }
        g_dev[g_own].live += n;
        g_used += n;
        g_cursor = start + n;
        update_gauges();
        *first = start;
        return true;
      }
    }
    ++s;
    ++looked;
  }
  return false;
}

// Close device d once nothing of ours is on it and no transfer uses it (never the own
// device, which takes the next pageouts).  => VM lock held.
void device_settle(unsigned d) VMRT_REQUIRES(g_vm_lock) {
  swap_device& dev = g_dev[d];
  if (static_cast<int>(d) == g_own || dev.fh < 0 || dev.live != 0 || dev.io != 0) return;
  vm_fd_close(dev.fh);
  dev.fh = -1;
}

void slot_free(std::uint64_t s) VMRT_REQUIRES(g_vm_lock) {
  VMRT_ASSERT(s < g_nslots && slot_used(s));
  slot_mark(s, false);
  g_used--;
  unsigned d = g_slot_dev[s];
  VMRT_ASSERT(g_dev[d].live > 0);
  g_dev[d].live--;
  device_settle(d);
}

// ---- per-object records: leaves of obj->pager_meta -----------------------------------------
// A record is not a pointer: (slot << 2) | 1 for a page in a slot, kZeroRecord for a page
// that reads as zeros.  Never null.
constexpr std::uintptr_t kZeroRecord = 2;
inline vm_page* record_of_slot(std::uint64_t s) { return reinterpret_cast<vm_page*>((s << 2) | 1); }
inline std::uintptr_t rec(const vm_page* r) { return reinterpret_cast<std::uintptr_t>(r); }
inline bool rec_is_slot(const vm_page* r) { return (rec(r) & 1) != 0; }
inline std::uint64_t rec_slot(const vm_page* r) { return rec(r) >> 2; }

// Release what record r holds.  => VM lock held.
void record_release(vm_page* r) VMRT_REQUIRES(g_vm_lock) {
  if (rec_is_slot(r)) slot_free(rec_slot(r));
  else g_zero--;
}

// Replace obj's record at pindex with r (null: remove).  False when out of radix nodes.
bool record_set(vm_object* obj, vm_pindex_t pindex, vm_page* r) VMRT_REQUIRES(g_vm_lock) {
  vm_page* old = vm_radix_lookup(&obj->pager_meta, pindex);
  if (old != nullptr) {
    if (r != nullptr) vm_radix_replace(&obj->pager_meta, pindex, r);
    else vm_radix_remove(&obj->pager_meta, pindex);
    record_release(old);
    return true;
  }
  if (r == nullptr) return true;
  return vm_radix_insert(&obj->pager_meta, pindex, r) == KERN_SUCCESS;
}

// Where private devices go: `dir`, else $TMPDIR, else /var/tmp, chosen once at boot
// (remember_dir).  A host fork makes the child's device there with the VM and pmap locks
// held, so it must not call getenv then: a program's own getenv (bash has one) walks the
// program's heap, whose pages may be paged out, and the fault would wait for the locks the
// forking thread holds (a hang in bash's command substitutions).  Empty: kDefaultDir.  Zero-
// filled, not initialised to the default: 4 KB of .data was a page between the data boot
// writes, one more page fault in every process.
constexpr char kDefaultDir[] = "/var/tmp";
VMRT_LARGE_BSS char g_dir[4096];

void remember_dir(const char* dir) {
  if (dir == nullptr) dir = std::getenv("TMPDIR");
  if (dir == nullptr || *dir == '\0' || std::strlen(dir) >= sizeof g_dir) return;
  std::memcpy(g_dir, dir, std::strlen(dir) + 1);
}

// Open fd O_DIRECT where its file system allows (every transfer meets the alignment: whole
// pages from and to page-aligned frames, at page offsets).  False: it stays cached.
bool set_direct(int fd) {
  int fl = ::fcntl(fd, F_GETFL);
  return fl >= 0 && ::fcntl(fd, F_SETFL, fl | O_DIRECT) == 0;
}

// A private unlinked file of `bytes` in g_dir, kept (vm_fds.h): its handle; -1 with errno on
// failure.
int open_private_file(std::uint64_t bytes) {
  const char* dir = g_dir[0] != '\0' ? g_dir : kDefaultDir;
  int fd = ::open(dir, O_RDWR | O_TMPFILE | O_CLOEXEC, 0600);
  if (fd >= 0 && ::ftruncate(fd, static_cast<off_t>(bytes)) != 0) {
    int e = errno;
    ::close(fd);
    errno = e;
    return -1;
  }
  if (fd >= 0) (void)set_direct(fd);
  return vm_fd_keep(fd);
}

// The own device, made on first use after boot's or a fork's; -1 when the host refuses a file
// (errno says why).  => VM lock held.
int own_device() VMRT_REQUIRES(g_vm_lock) {
  if (g_own >= 0) return g_own;
  for (unsigned d = 0; d < kMaxDevices; ++d) {
    if (g_dev[d].fh >= 0) continue;
    int fh = open_private_file(g_nslots * PAGE_SIZE);
    if (fh < 0) return -1;
    g_dev[d] = swap_device{fh, 0, 0};
    g_own = static_cast<int>(d);
    return g_own;
  }
  errno = EMFILE;  // every entry holds pages: a fork merges them (merge_frozen) before that
  return -1;
}

inline XXH128_hash_t checksum(const void* p) { return XXH3_128bits(p, PAGE_SIZE); }
inline bool same_sum(XXH128_hash_t a, XXH128_hash_t b) { return XXH128_isEqual(a, b) != 0; }

// Write or read the n pages of `bufs` at slot s (contiguous, all on the device of handle fh),
// all of it or fail.  => no lock needed (the caller holds the device's io count).
bool device_io(int fh, bool write, std::uint64_t s, void* const* bufs, unsigned n) {
  vm_fd_use use(fh);  // a program's dup2 onto the number waits for the transfer
  const int fd = use.fd();
  iovec iov[kPagerMaxRun];
  for (unsigned k = 0; k < n; ++k) iov[k] = iovec{bufs[k], PAGE_SIZE};
  off_t off = static_cast<off_t>(s * PAGE_SIZE);
  std::size_t want = std::size_t{n} * PAGE_SIZE, done = 0;
  unsigned first = 0;
  while (done < want) {
    ssize_t r = write ? ::pwritev(fd, iov + first, static_cast<int>(n - first), off + static_cast<off_t>(done))
                      : ::preadv(fd, iov + first, static_cast<int>(n - first), off + static_cast<off_t>(done));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    done += static_cast<std::size_t>(r);
    // Advance the iovec past what was transferred.
    std::size_t adv = static_cast<std::size_t>(r);
    while (adv > 0 && first < n) {
      if (adv >= iov[first].iov_len) {
        adv -= iov[first].iov_len;
        ++first;
      } else {
        iov[first].iov_base = static_cast<char*>(iov[first].iov_base) + adv;
        iov[first].iov_len -= adv;
        adv = 0;
      }
    }
  }
  return true;
}

// ---- pager operations --------------------------------------------------------------------

bool swp_has_page(vm_object* obj, vm_pindex_t pindex, unsigned* before, unsigned* after) VMRT_REQUIRES(g_vm_lock) {
  if (vm_radix_lookup(&obj->pager_meta, pindex) == nullptr) return false;
  if (before != nullptr) {
    unsigned b = 0;
    while (b < *before && pindex > b && vm_radix_lookup(&obj->pager_meta, pindex - b - 1) != nullptr) ++b;
    *before = b;
  }
  if (after != nullptr) {
    unsigned a = 0;
    while (a < *after && pindex + a + 1 < obj->size && vm_radix_lookup(&obj->pager_meta, pindex + a + 1) != nullptr) ++a;
    *after = a;
  }
  return true;
}

// The run of neighbours stored in the slots right before and after pindex's slot (one
// laundering write put them there), at most *before / *after of them.
bool swp_cluster(vm_object* obj, vm_pindex_t pindex, unsigned* before, unsigned* after) VMRT_REQUIRES(g_vm_lock) {
  vm_page* r = vm_radix_lookup(&obj->pager_meta, pindex);
  if (r == nullptr) return false;
  if (!rec_is_slot(r)) {
    *before = *after = 0;
    return true;
  }
  const std::uint64_t s = rec_slot(r);
  auto holds = [&](vm_pindex_t q, std::uint64_t slot) {
    vm_page* rq = vm_radix_lookup(&obj->pager_meta, q);
    return rq != nullptr && rec_is_slot(rq) && rec_slot(rq) == slot;
  };
  unsigned b = 0, a = 0;
  while (b < *before && pindex > b && s > b && holds(pindex - b - 1, s - b - 1)) ++b;
  while (a < *after && pindex + a + 1 < obj->size && holds(pindex + a + 1, s + a + 1)) ++a;
  *before = b;
  *after = a;
  return true;
}

vm_pager_result swp_get_pages(vm_object* obj, vm_page* const* pages, unsigned n, bool may_unlock,
                              vm_pager_result* rtvals) {
  VM_LOCK_ASSERT();
  VMRT_ASSERT(n >= 1 && n <= kPagerMaxRun);
  const pmap_ops* ops = pmap_machine_ops();
  std::uint64_t slot[kPagerMaxRun];
  bool io[kPagerMaxRun];
  std::uint8_t dev[kPagerMaxRun];  // the device of each slot, fixed while the lock is dropped
  for (unsigned k = 0; k < n; ++k) {
    VMRT_ASSERT(pages[k]->flags & PG_BUSY);
    vm_page* r = vm_radix_lookup(&obj->pager_meta, pages[k]->pindex);
    rtvals[k] = r != nullptr ? VM_PAGER_OK : VM_PAGER_ABSENT;
    io[k] = r != nullptr && rec_is_slot(r);
    slot[k] = io[k] ? rec_slot(r) : 0;
    dev[k] = io[k] ? g_slot_dev[slot[k]] : 0;
    if (io[k]) g_dev[dev[k]].io++;  // its file stays open while read, even if the page dies
    if (r != nullptr && !io[k]) ops->zero_pages(pages[k], 1);
  }
  int fh[kMaxDevices];
  for (unsigned d = 0; d < kMaxDevices; ++d) fh[d] = g_dev[d].fh;
  std::uint64_t delay = 0;  // fault injection's sleep=: a slow device, slept without the VM lock
  bool fail_read = vm_fail_armed() && vm_fail_eval(FP_PAGER_READ, std::size_t{n} * PAGE_SIZE, 0, &delay);
  bool corrupt = vm_fail_armed() && vm_fail_eval(FP_SWAP_CORRUPT, std::size_t{n} * PAGE_SIZE);
  vm_lock_drop_if(may_unlock);
  vm_fail_delay(delay);
  std::uint64_t ops_done = 0, pages_done = 0;
  for (unsigned k = 0; k < n;) {
    if (!io[k]) {
      ++k;
      continue;
    }
    unsigned j = k + 1;
    while (j < n && io[j] && slot[j] == slot[j - 1] + 1 && dev[j] == dev[k]) ++j;
    void* bufs[kPagerMaxRun];
    for (unsigned i = k; i < j; ++i) bufs[i - k] = ops->page_address(pages[i]);
    bool ok = !fail_read && device_io(fh[dev[k]], false, slot[k], bufs, j - k);
    if (fail_read) {
      // Fault injection: a read error is a bad block at the first page the read wanted from
      // the device (the faulting page, vm_fault's page_in reads forward from it): its
      // checksum is spoiled, so every later read of it fails too and the page stays
      // unreadable (SIGBUS) until unmapped, whatever the trap backend retries; the rest of
      // this read fails with it once and reads back intact later.
      g_sum[slot[k]].low64 = ~g_sum[slot[k]].low64;
      fail_read = false;
      for (unsigned i = k; i < j; ++i) rtvals[i] = VM_PAGER_ERROR;
      ++ops_done;
      pages_done += j - k;
      k = j;
      continue;
    }
    if (ok && corrupt) {
      // Fault injection: a bit flips in the slot on the device (and so in what was read):
      // every later read of the page finds it too.
      // (The whole page is written back: O_DIRECT takes no 1-byte write.)
      unsigned char* b = static_cast<unsigned char*>(bufs[0]);
      b[PAGE_SIZE / 2] ^= 0x10;
      (void)device_io(fh[dev[k]], true, slot[k], bufs, 1);
      corrupt = false;
    }
    for (unsigned i = k; i < j; ++i) {
      if (!ok) rtvals[i] = VM_PAGER_ERROR;
      else if (!same_sum(checksum(bufs[i - k]), g_sum[slot[i]])) rtvals[i] = VM_PAGER_BAD;
    }
    ++ops_done;
    pages_done += j - k;
    k = j;
  }
  vm_lock_retake_if(may_unlock);
  for (unsigned k = 0; k < n; ++k) {
    if (!io[k]) continue;
    g_dev[dev[k]].io--;
    device_settle(dev[k]);
  }
  vm_stat_add(V_PAGEIN_OPS, static_cast<std::int64_t>(ops_done));
  vm_stat_add(V_PAGEIN_PAGES, static_cast<std::int64_t>(pages_done));
  vm_pager_result first = VM_PAGER_OK;
  for (unsigned k = 0; k < n; ++k) {
    if (rtvals[k] == VM_PAGER_BAD) vm_stat_inc(V_SWAP_CHECKSUM_FAILS);
    if (rtvals[k] == VM_PAGER_ERROR) vm_stat_inc(V_SWAP_IO_ERRORS);
    if (rtvals[k] != VM_PAGER_OK && first == VM_PAGER_OK) first = rtvals[k];
  }
  return first;
}

void swp_put_pages(vm_object* obj, vm_page* const* pages, unsigned n, unsigned flags, bool may_unlock,
                   vm_pager_result* rtvals) {
  VM_LOCK_ASSERT();
  VMRT_ASSERT(n >= 1 && n <= kPagerMaxRun);
  const pmap_ops* ops = pmap_machine_ops();
  void* buf[kPagerMaxRun];
  bool zero[kPagerMaxRun];
  std::uint64_t slot[kPagerMaxRun];
  bool have[kPagerMaxRun];
  bool kept[kPagerMaxRun];  // identical to the copy the device holds: no write, no new record
  unsigned nkept = 0;
  for (unsigned k = 0; k < n; ++k) {
    VMRT_ASSERT(pages[k]->flags & PG_BUSY);
    buf[k] = ops->page_address(pages[k]);
    zero[k] = vm_page_reads_zero(pages[k]);
    have[k] = false;
    kept[k] = false;
    rtvals[k] = VM_PAGER_OK;
    if (!zero[k] && (pages[k]->flags & PG_SWAPKEPT)) {
      // The copy it was read from was kept while it was mapped writable (vm_page.h): the
      // page is unmapped now, so what it holds is final; unchanged, the copy stands.
      vm_page* r = vm_radix_lookup(&obj->pager_meta, pages[k]->pindex);
      if (r != nullptr && rec_is_slot(r) && same_sum(checksum(buf[k]), g_sum[rec_slot(r)])) {
        kept[k] = true;
        ++nkept;
      }
    }
  }
  // Slots: one contiguous run per run of non-zero pages, halved until the device has one.
  std::uint64_t delay = 0;  // fault injection's sleep=: a slow device, slept without the VM lock
  bool fail_write = vm_fail_armed() && vm_fail_eval(FP_PAGER_WRITE, std::size_t{n} * PAGE_SIZE, 0, &delay);
  bool need_slots = false;
  for (unsigned k = 0; k < n; ++k) need_slots |= !zero[k] && !kept[k];
  const int own = need_slots ? own_device() : g_own;
  for (unsigned k = 0; k < n;) {
    if (zero[k] || kept[k]) {
      ++k;
      continue;
    }
    if (own < 0) {  // no file for the pages: an I/O error, the pages stay
      rtvals[k++] = VM_PAGER_ERROR;
      continue;
    }
    unsigned j = k + 1;
    while (j < n && !zero[j] && !kept[j]) ++j;
    unsigned want = j - k;
    std::uint64_t first = 0;
    while (want >= 1 && !slots_alloc(want, &first)) want /= 2;
    if (want == 0) {
      for (unsigned i = k; i < j; ++i) rtvals[i] = VM_PAGER_FULL;
      vm_stat_add(V_SWAP_FULL, j - k);
      k = j;
      continue;
    }
    for (unsigned i = 0; i < want; ++i) {
      slot[k + i] = first + i;
      have[k + i] = true;
    }
    k += want;
  }
  const int own_fh = own >= 0 ? g_dev[own].fh : -1;
  if (own >= 0) g_dev[own].io++;  // a fork may freeze it meanwhile: it stays open
  vm_lock_drop_if(may_unlock);
  vm_fail_delay(delay);
  std::uint64_t ops_done = 0;
  for (unsigned k = 0; k < n;) {
    if (!have[k]) {
      ++k;
      continue;
    }
    unsigned j = k + 1;
    while (j < n && have[j] && slot[j] == slot[j - 1] + 1) ++j;
    for (unsigned i = k; i < j; ++i) g_sum[slot[i]] = checksum(buf[i]);
    bool ok = !fail_write && device_io(own_fh, true, slot[k], buf + k, j - k);
    if (ok && (flags & VM_PAGER_PUT_SYNC)) {
      vm_fd_use use(own_fh);
      ok = ::fdatasync(use.fd()) == 0;
    }
    if (!ok)
      for (unsigned i = k; i < j; ++i) rtvals[i] = VM_PAGER_ERROR;
    ++ops_done;
    k = j;
  }
  vm_lock_retake_if(may_unlock);
  if (own >= 0) {
    g_dev[own].io--;
    device_settle(static_cast<unsigned>(own));
  }
  vm_stat_add(V_PAGEOUT_OPS, static_cast<std::int64_t>(ops_done));
  // Publish the records (the older copy of each page goes).
  vm_stat_add(V_SWAP_UNCHANGED, nkept);
  for (unsigned k = 0; k < n; ++k) {
    if (kept[k]) {
      // (Its record went while the lock was dropped, and the page did not die: keep the page.)
      if (vm_radix_lookup(&obj->pager_meta, pages[k]->pindex) == nullptr) rtvals[k] = VM_PAGER_ERROR;
      continue;
    }
    if (rtvals[k] == VM_PAGER_ERROR) vm_stat_inc(V_SWAP_IO_ERRORS);
    if (rtvals[k] != VM_PAGER_OK) {
      if (have[k]) slot_free(slot[k]);
      continue;
    }
    vm_page* r = zero[k] ? reinterpret_cast<vm_page*>(kZeroRecord) : record_of_slot(slot[k]);
    if (!record_set(obj, pages[k]->pindex, r)) {  // out of radix nodes
      if (have[k]) slot_free(slot[k]);
      rtvals[k] = VM_PAGER_ERROR;
      continue;
    }
    if (zero[k]) {
      g_zero++;
      vm_stat_inc(V_SWAP_ZERO_PAGES);
    } else {
      vm_stat_inc(V_PAGEOUT_PAGES);
    }
    obj->type = OBJT_SWAP;
  }
  update_gauges();
}

void swp_free_range(vm_object* obj, vm_pindex_t start, vm_pindex_t end) {
  VM_LOCK_ASSERT();
  // Records carry no key, so walk keys with the key-returning iterator.
  vm_pindex_t key = start;
  vm_pindex_t found;
  while (key < end && vm_radix_next_key(&obj->pager_meta, key, &found) && found < end) {
    vm_page* r = vm_radix_remove(&obj->pager_meta, found);
    record_release(r);
    key = found + 1;
  }
  update_gauges();
}

bool swp_has_any(vm_object* obj, vm_pindex_t start, vm_pindex_t end) {
  vm_pindex_t found;
  return start < end && vm_radix_next_key(&obj->pager_meta, start, &found) && found < end;
}

void swp_collapse(vm_object* to, vm_object* from, vm_pindex_t offset) {
  VM_LOCK_ASSERT();
  vm_pindex_t key = 0, p;
  while (vm_radix_next_key(&from->pager_meta, key, &p)) {
    vm_page* r = vm_radix_remove(&from->pager_meta, p);
    key = p + 1;
    if (p < offset || p - offset >= to->size || vm_radix_lookup(&to->rtree, p - offset) != nullptr ||
        vm_radix_lookup(&to->pager_meta, p - offset) != nullptr) {
      record_release(r);
      continue;
    }
    if (vm_radix_insert(&to->pager_meta, p - offset, r) != KERN_SUCCESS) VMRT_PANIC("radix node shortage during swap collapse");
    to->type = OBJT_SWAP;
  }
  update_gauges();
}

void swp_move(vm_object* obj, vm_pindex_t from, vm_pindex_t to, vm_pindex_t n) {
  VM_LOCK_ASSERT();
  VMRT_ASSERT(to >= from + n || to + n <= from);
  vm_pindex_t key = from, p;
  while (vm_radix_next_key(&obj->pager_meta, key, &p) && p < from + n) {
    vm_page* r = vm_radix_remove(&obj->pager_meta, p);
    if (vm_radix_insert(&obj->pager_meta, to + (p - from), r) != KERN_SUCCESS) VMRT_PANIC("radix node shortage moving swap records");
    key = p + 1;
  }
}

void swp_dealloc(vm_object* obj) {
  VM_LOCK_ASSERT();
  swp_free_range(obj, 0, ~vm_pindex_t{0});
  vm_radix_reclaim_all(&obj->pager_meta);
}

}  // namespace

const vm_pager_ops kSwapPagerOps{"swap",         "sw",         swp_has_page, swp_get_pages, swp_put_pages,
                                 swp_free_range, swp_collapse, swp_move,     swp_has_any,   swp_dealloc,
                                 swp_cluster};

kern_return_t swap_pager_init(const char* path, const char* dir, std::uint64_t bytes) {
  std::uint64_t n = bytes / PAGE_SIZE;
  if (n < kPagerMaxRun) return KERN_INVALID_ARGUMENT;
  remember_dir(dir);  // also where a fork child's device goes
  int fh;
  if (path != nullptr) {
    int fd = ::open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd >= 0 && ::ftruncate(fd, static_cast<off_t>(n * PAGE_SIZE)) != 0) {
      int e = errno;
      ::close(fd);
      errno = e;
      fd = -1;
    }
    if (fd >= 0) (void)set_direct(fd);
    fh = vm_fd_keep(fd);
  } else {
    fh = open_private_file(n * PAGE_SIZE);
  }
  if (fh < 0) return KERN_FAILURE;
  std::size_t bm = ((n + 63) / 64) * 8, sums = n * sizeof(XXH128_hash_t);
  void* p = sys::mmap(nullptr, bm + sums + n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) {
    vm_fd_close(fh);
    return KERN_RESOURCE_SHORTAGE;
  }
  vm_lock_guard g;
  g_bitmap = static_cast<std::uint64_t*>(p);
  g_sum = reinterpret_cast<XXH128_hash_t*>(static_cast<char*>(p) + bm);
  g_slot_dev = reinterpret_cast<std::uint8_t*>(static_cast<char*>(p) + bm + sums);
  g_dev[0] = swap_device{fh, 0, 0};
  g_own = 0;
  g_nslots = n;
  g_used = g_zero = g_cursor = 0;
  update_gauges();
  return KERN_SUCCESS;
}

bool swap_pager_active() { return g_nslots != 0; }

void swap_pager_get_info(swap_pager_info* out) VMRT_REQUIRES(g_vm_lock) {
  out->slots = g_nslots;
  out->used = g_used;
  out->zero_pages = g_zero;
  out->fd = g_own >= 0 ? vm_fd_number(g_dev[g_own].fh) : -1;
}

std::int64_t swap_pager_slot_of(vm_object* obj, vm_pindex_t pindex) {
  VM_LOCK_ASSERT();
  if (obj->type != OBJT_SWAP) return -1;
  vm_page* r = vm_radix_lookup(&obj->pager_meta, pindex);
  return r != nullptr && rec_is_slot(r) ? static_cast<std::int64_t>(rec_slot(r)) : -1;
}

namespace {

// Merge the idle frozen devices into one new file: each of their live slots copied at its
// own offset, in the kernel (copy_file_range), and their old files closed.  A device with a
// transfer in flight stays as it is: a laundering write that began before this fork has its
// slots counted but not yet written, and a copy made now would hold what they held before.
// Runs when the device table is full: after kMaxDevices - 1 forks that each found new pages
// on the own device.  False when fewer than two are idle, or the host refuses the file or a
// copy (nothing changed).  => VM lock held; no own device.
bool merge_frozen() VMRT_REQUIRES(g_vm_lock) {
  VMRT_ASSERT(g_own < 0);
  bool merged[kMaxDevices];
  unsigned n = 0, to = kMaxDevices;  // the merged file takes the first merged device's entry
  for (unsigned d = 0; d < kMaxDevices; ++d) {
    merged[d] = g_dev[d].fh >= 0 && g_dev[d].io == 0;
    if (merged[d] && n++ == 0) to = d;
  }
  if (n < 2) return false;
  int fh = open_private_file(g_nslots * PAGE_SIZE);
  if (fh < 0) return false;
  for (std::uint64_t s = 0; s < g_nslots;) {
    if (!slot_used(s) || !merged[g_slot_dev[s]]) {
      ++s;
      continue;
    }
    std::uint64_t e = s + 1;
    while (e < g_nslots && slot_used(e) && g_slot_dev[e] == g_slot_dev[s]) ++e;
    loff_t in = static_cast<loff_t>(s * PAGE_SIZE), out = in;
    std::size_t left = (e - s) * PAGE_SIZE;
    while (left > 0) {
      ssize_t r;
      {
        vm_fd_use from(g_dev[g_slot_dev[s]].fh), to(fh);
        r = ::copy_file_range(from.fd(), &in, to.fd(), &out, left, 0);
      }
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) {
        vm_fd_close(fh);
        return false;
      }
      left -= static_cast<std::size_t>(r);
    }
    vm_stat_add(V_SWAP_FORK_COPIES, static_cast<std::int64_t>(e - s));
    s = e;
  }
  std::uint64_t live = 0;
  for (unsigned d = 0; d < kMaxDevices; ++d) {
    if (!merged[d]) continue;
    live += g_dev[d].live;
    vm_fd_close(g_dev[d].fh);
    g_dev[d] = swap_device{};
  }
  g_dev[to] = swap_device{fh, live, 0};
  for (std::uint64_t s = 0; s < g_nslots; ++s)
    if (slot_used(s) && merged[g_slot_dev[s]]) g_slot_dev[s] = static_cast<std::uint8_t>(to);
  return true;
}

}  // namespace

VMRT_FORK_PARENT_TEXT bool swap_pager_fork_prepare() {
  VM_LOCK_ASSERT();
  if (g_nslots == 0) return true;  // no swap: nothing of this file's is touched
  fork_store(g_fork_drop, -1);  // not written when clear: a copy-on-write fault per fork
  if (g_own < 0) return true;
  if (g_dev[g_own].live == 0) {  // nothing of ours on it: the parent keeps it, the child closes it
    g_fork_drop = g_own;
    return true;
  }
  g_own = -1;  // frozen: both sides read it, neither writes it again
  vm_stat_inc(V_SWAP_FORK_FROZEN);
  unsigned open = 0;
  for (const swap_device& d : g_dev) open += d.fh >= 0;
  if (open < kMaxDevices) return true;
  return merge_frozen();
}

VMRT_FORK_PARENT_TEXT void swap_pager_fork_parent() VMRT_REQUIRES(g_vm_lock) {
  if (g_nslots != 0) fork_store(g_fork_drop, -1);  // not written when clear (see prepare)
}

VMRT_FORK_CHILD_TEXT void swap_pager_fork_child() VMRT_REQUIRES(g_vm_lock) {
  // Only the forking thread lives on: no transfer runs here.  Written only where set: the
  // device table's page was a copy-on-write fault in every fork child of a process without
  // swap (perf record -e page-faults -d of bash's command substitutions).  Without swap
  // nothing here is looked at either: each page a child reads costs it too.
  if (g_nslots == 0) return;
  for (swap_device& d : g_dev) fork_store(d.io, 0);
  if (g_fork_drop >= 0) {
    vm_fd_close(g_dev[g_fork_drop].fh);
    g_dev[g_fork_drop] = swap_device{};
    g_own = -1;
    g_fork_drop = -1;
  }
  for (unsigned d = 0; d < kMaxDevices; ++d) device_settle(d);
}

}  // namespace vmrt
