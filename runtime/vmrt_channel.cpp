// vmrt_channel.cpp — the zero-copy channel (runtime/vmrt_channel.h): a queue of message
// descriptors and a copy ring, both outside the vmspaces' pages; loans and transfers through
// the public API only.
#include "runtime/vmrt_channel.h"

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <pthread.h>
#include <sys/mman.h>

namespace {

constexpr size_t kPage = 4096;
constexpr unsigned kQueue = 256;              // messages in flight
constexpr size_t kRingBytes = size_t{4} << 20;  // the copy ring, in the receiver's vmspace
constexpr size_t kRingAlign = 64;
// Default copy threshold: share_bench's loan-vs-memcpy crossover on the project's machine
// kind (README "Sharing between address spaces"): there is none up to 64 MiB, the largest size
// measured (a page-table change costs tens of microseconds under nested virtualisation, a
// page of memcpy a fraction of one), so messages are copied up to there and lent beyond.
constexpr size_t kDefaultCopyMax = size_t{64} << 20;
static_assert(kQueue > 0 && (kQueue & (kQueue - 1)) == 0, "indices wrap modulo the queue");
static_assert(kRingBytes % kPage == 0 && kDefaultCopyMax % kPage == 0);

struct slot {
  vmrt_msg msg;
  size_t ring_bytes;  // ring space this message holds (its padding and a wrap skip included)
  bool own_map;       // a copy too large for the ring: its own mapping in the receiver
  size_t map_len;     // that mapping's length
};

}  // namespace

struct vmrt_channel {
  vmrt_vmspace* from;
  vmrt_vmspace* to;
  pthread_mutex_t mu;
  char* ring;          // kRingBytes in `to`
  size_t ring_head;    // next byte to fill [mu]
  size_t ring_used;    // bytes held by messages not done [mu]
  size_t copy_max;     // [mu]
  char* spare;         // the last large copy's mapping in `to`, kept for the next one [mu]
  size_t spare_len;    // its length (page multiple) [mu]
  unsigned sent, received, done;  // message counters (indices modulo kQueue) [mu]
  slot q[kQueue];      // [mu]
};

namespace {

struct lock {
  explicit lock(vmrt_channel* c) : c_(c) { pthread_mutex_lock(&c_->mu); }
  ~lock() { pthread_mutex_unlock(&c_->mu); }
  vmrt_channel* c_;
};

int fail(int e) {
  errno = e;
  return -1;
}

// Room for n bytes in the ring (after the head, or from 0 when the end is too short);
// *at the offset, *take the bytes consumed.  => ch->mu held.
bool ring_room(vmrt_channel* ch, size_t n, size_t* at, size_t* take) {
  n = (n + kRingAlign - 1) & ~(kRingAlign - 1);
  size_t free_bytes = kRingBytes - ch->ring_used;
  size_t tail_room = kRingBytes - ch->ring_head;
  if (n <= tail_room && n <= free_bytes) {
    *at = ch->ring_head;
    *take = n;
  } else if (n + tail_room <= free_bytes) {  // skip the end, start over at 0
    *at = 0;
    *take = n + tail_room;
  } else {
    return false;
  }
  return true;
}

}  // namespace

extern "C" {

vmrt_channel* vmrt_channel_create(vmrt_vmspace* from, vmrt_vmspace* to) {
  if (from == nullptr || to == nullptr) {
    errno = EINVAL;
    return nullptr;
  }
  void* mem = mmap(nullptr, sizeof(vmrt_channel), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) return nullptr;
  auto* ch = static_cast<vmrt_channel*>(mem);  // zero-filled
  void* ring = vmrt_mmap(to, nullptr, kRingBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (ring == VMRT_MAP_FAILED) {
    int e = errno;
    munmap(mem, sizeof(vmrt_channel));
    errno = e;
    return nullptr;
  }
  ch->from = from;
  ch->to = to;
  pthread_mutex_init(&ch->mu, nullptr);
  ch->ring = static_cast<char*>(ring);
  ch->copy_max = kDefaultCopyMax;
  return ch;
}

void vmrt_channel_set_copy_max(vmrt_channel* ch, size_t bytes) {
  lock g(ch);
  ch->copy_max = bytes;
}

size_t vmrt_channel_copy_max(const vmrt_channel* ch) { return ch->copy_max; }

int vmrt_channel_send(vmrt_channel* ch, void* buf, size_t len, int flags) {
  if (ch == nullptr || len == 0 || (flags & ~VMRT_CHANNEL_GIVE) != 0) return fail(EINVAL);
  lock g(ch);
  if (ch->sent - ch->done == kQueue) return fail(EAGAIN);
  slot& s = ch->q[ch->sent % kQueue];
  s = slot{};
  s.msg.len = len;
  auto a = reinterpret_cast<std::uintptr_t>(buf);
  bool pages = a % kPage == 0 && len % kPage == 0;
  if (pages && len > ch->copy_max) {
    void* v = (flags & VMRT_CHANNEL_GIVE) ? vmrt_transfer(ch->from, buf, len, ch->to, nullptr, VMRT_TRANSFER_ZERO)
                                          : vmrt_loan(ch->from, buf, len, ch->to, nullptr);
    if (v == VMRT_MAP_FAILED) return -1;
    s.msg.data = v;
    s.msg.how = (flags & VMRT_CHANNEL_GIVE) ? VMRT_CHANNEL_MOVED : VMRT_CHANNEL_LOANED;
  } else {
    size_t at = 0, take = 0;
    if (len <= kRingBytes / 4) {
      if (!ring_room(ch, len, &at, &take)) return fail(EAGAIN);
      s.msg.data = ch->ring + at;
      ch->ring_head = (at + ((len + kRingAlign - 1) & ~(kRingAlign - 1))) % kRingBytes;
      ch->ring_used += take;
      s.ring_bytes = take;
    } else {  // too large for the ring: a mapping of its own (the spare one when it fits:
              // a fresh one costs the receiver a zero-fill fault per page run)
      size_t rounded = (len + kPage - 1) & ~(kPage - 1);
      if (ch->spare != nullptr && ch->spare_len >= rounded) {
        s.msg.data = ch->spare;
        s.map_len = ch->spare_len;
        ch->spare = nullptr;
      } else {
        void* v = vmrt_mmap(ch->to, nullptr, rounded, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (v == VMRT_MAP_FAILED) return -1;
        s.msg.data = v;
        s.map_len = rounded;
      }
      s.own_map = true;
    }
    std::memcpy(s.msg.data, buf, len);
    s.msg.how = VMRT_CHANNEL_COPIED;
  }
  ch->sent++;
  return 0;
}

int vmrt_channel_recv(vmrt_channel* ch, vmrt_msg* msg) {
  if (ch == nullptr || msg == nullptr) return fail(EINVAL);
  lock g(ch);
  if (ch->received == ch->sent) return fail(EAGAIN);
  *msg = ch->q[ch->received % kQueue].msg;
  ch->received++;
  return 0;
}

int vmrt_channel_done(vmrt_channel* ch, const vmrt_msg* msg) {
  if (ch == nullptr || msg == nullptr) return fail(EINVAL);
  lock g(ch);
  if (ch->done == ch->received) return fail(EINVAL);
  slot& s = ch->q[ch->done % kQueue];
  if (s.msg.data != msg->data) return fail(EINVAL);  // not the oldest received message
  int r = 0;
  size_t rounded = (s.msg.len + kPage - 1) & ~(kPage - 1);
  if (s.msg.how == VMRT_CHANNEL_LOANED) {
    r = vmrt_unloan(ch->to, s.msg.data, rounded);
  } else if (s.msg.how == VMRT_CHANNEL_MOVED) {
    r = vmrt_munmap(ch->to, s.msg.data, rounded);
  } else if (s.own_map) {  // the larger of it and the spare stays for the next large copy
    char* keep = static_cast<char*>(s.msg.data);
    size_t keep_len = s.map_len;
    if (ch->spare != nullptr && ch->spare_len >= keep_len) {
      r = vmrt_munmap(ch->to, keep, keep_len);
    } else {
      if (ch->spare != nullptr) r = vmrt_munmap(ch->to, ch->spare, ch->spare_len);
      ch->spare = keep;
      ch->spare_len = keep_len;
    }
  }
  ch->ring_used -= s.ring_bytes;
  if (ch->ring_used == 0) ch->ring_head = 0;
  ch->done++;
  return r;
}

void vmrt_channel_destroy(vmrt_channel* ch) {
  if (ch == nullptr) return;
  {
    lock g(ch);
    for (; ch->done != ch->sent; ch->done++) {
      slot& s = ch->q[ch->done % kQueue];
      size_t rounded = (s.msg.len + kPage - 1) & ~(kPage - 1);
      if (s.msg.how == VMRT_CHANNEL_LOANED) vmrt_unloan(ch->to, s.msg.data, rounded);
      else if (s.msg.how == VMRT_CHANNEL_MOVED) vmrt_munmap(ch->to, s.msg.data, rounded);
      else if (s.own_map) vmrt_munmap(ch->to, s.msg.data, s.map_len);
    }
    if (ch->spare != nullptr) vmrt_munmap(ch->to, ch->spare, ch->spare_len);
    vmrt_munmap(ch->to, ch->ring, kRingBytes);
  }
  pthread_mutex_destroy(&ch->mu);
  munmap(ch, sizeof(vmrt_channel));
}

}  // extern "C"
