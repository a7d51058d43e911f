// shim_vslock.cpp — the buffer-taking libc calls, interposed: under the sigsegv trap backend
// the program's buffers in vmrt memory are held (faulted in and wired) for the length of
// the call, as 4.4BSD's physio holds a user buffer with vslock (runtime/rt_vslock.h).
// Without it a system call meeting a paged-out page gets EFAULT: the host kernel's own
// accesses raise no signal vmrt could serve.
//
// Covered: read, write, pread(64), pwrite(64), readv, writev, preadv(2), pwritev(2), recv,
// recvfrom, recvmsg, send, sendto, sendmsg, getdents64; and glibc's stdio, whose own system
// calls bypass these symbols (it calls its internal __write/__read): the stream's buffer and
// the caller's data are held around fwrite, fread, fputs, puts, fgets, fflush (and their
// _unlocked forms, which coreutils, grep and sed use), fclose, the printf family (their _chk
// forms too), and every stream's buffer at exit.  What a hold
// cannot cover is said in the README ("Known limits").
//
// Big buffers: a hold keeps at most kVslockMaxPages pages.  write/pwrite (the kernel reads)
// and read/pread of a regular file are split into held pieces, each a call of its own,
// stopping at the first short one: the result is the one a native call gives.  A read of a
// pipe or socket takes the held part only (a short read, which such a read may return
// natively too).  Vectors and messages are held as far as the budget goes.
//
// Every wrapper passes straight through (one load and a compare) when no hold is needed:
// the userfaultfd backend, or no byte of the buffers in the region.  Errors are the host's.
#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <dlfcn.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

#include "libc_shim/shim_next.h"
#include "runtime/rt_vslock.h"
#include "runtime/spinlock.h"

#define VMRT_EXPORT extern "C" __attribute__((visibility("default")))

namespace vmrt::shim {
namespace {

using rt::vslock_hold;
constexpr vm_prot_t kReadWrite = static_cast<vm_prot_t>(VM_PROT_READ | VM_PROT_WRITE);

// The next definitions (glibc's), found once.
struct next_fns {
  ssize_t (*read)(int, void*, size_t);
  ssize_t (*write)(int, const void*, size_t);
  ssize_t (*pread)(int, void*, size_t, off_t);
  ssize_t (*pwrite)(int, const void*, size_t, off_t);
  ssize_t (*readv)(int, const iovec*, int);
  ssize_t (*writev)(int, const iovec*, int);
  ssize_t (*preadv)(int, const iovec*, int, off_t);
  ssize_t (*pwritev)(int, const iovec*, int, off_t);
  ssize_t (*preadv2)(int, const iovec*, int, off_t, int);
  ssize_t (*pwritev2)(int, const iovec*, int, off_t, int);
  ssize_t (*recv)(int, void*, size_t, int);
  ssize_t (*recvfrom)(int, void*, size_t, int, sockaddr*, socklen_t*);
  ssize_t (*recvmsg)(int, msghdr*, int);
  ssize_t (*send)(int, const void*, size_t, int);
  ssize_t (*sendto)(int, const void*, size_t, int, const sockaddr*, socklen_t);
  ssize_t (*sendmsg)(int, const msghdr*, int);
  ssize_t (*getdents64)(int, void*, size_t);
  size_t (*fwrite)(const void*, size_t, size_t, FILE*);
  size_t (*fread)(void*, size_t, size_t, FILE*);
  int (*fputs)(const char*, FILE*);
  int (*puts)(const char*);
  char* (*fgets)(char*, int, FILE*);
  int (*fflush)(FILE*);
  // The _unlocked forms (coreutils, grep and sed call these: gnulib's unlocked-io).
  size_t (*fwrite_unlocked)(const void*, size_t, size_t, FILE*);
  size_t (*fread_unlocked)(void*, size_t, size_t, FILE*);
  int (*fputs_unlocked)(const char*, FILE*);
  char* (*fgets_unlocked)(char*, int, FILE*);
  int (*fflush_unlocked)(FILE*);
  int (*fclose)(FILE*);
  int (*vfprintf)(FILE*, const char*, va_list);
  int (*vfprintf_chk)(FILE*, int, const char*, va_list);
};
next_fns g_next;  // read by every wrapped call, fork children's too (written once, before: not fork data)

#define NEXT(field, name) next_symbol(g_next.field, name)

// Is a hold wanted for these bytes?  (The pass-through test of every wrapper.)
inline bool want(const void* p, size_t n) { return rt::vslock_needed() && rt::vslock_in_region(p, n); }

bool iov_wants(const iovec* iov, int n) {
  if (!rt::vslock_needed() || iov == nullptr || n <= 0) return false;
  if (rt::vslock_in_region(iov, sizeof(iovec) * static_cast<size_t>(n))) return true;
  for (int k = 0; k < n; ++k)
    if (rt::vslock_in_region(iov[k].iov_base, iov[k].iov_len)) return true;
  return false;
}

// Is fd a regular file or a block device (a read of it is never short but at its end)?
bool seekable_data(int fd) {
  struct stat st;
  return ::fstat(fd, &st) == 0 && (S_ISREG(st.st_mode) || S_ISBLK(st.st_mode));
}

// One buffer, held piece by piece.  call(p, n, done) makes the system call for n bytes at
// p, `done` bytes into the buffer.  `split`: a short held part may be followed by the next
// piece (the kernel reads the buffer; or a regular file is read); else one call of the held
// part.
template <class Call>
__attribute__((noinline)) ssize_t held_pieces(const void* buf, size_t len, vm_prot_t access, bool split, Call call) {
  vslock_hold h;
  rt::vslock_begin(&h);
  size_t got = rt::vslock(&h, buf, len, access);
  if (got >= len || got == 0) {  // all held, or nothing could be (the host answers)
    ssize_t r = call(buf, len, size_t{0});
    rt::vsunlock(&h);
    return r;
  }
  const char* p = static_cast<const char*>(buf);
  size_t done = 0;
  for (;;) {
    ssize_t r = call(p + done, got, done);
    rt::vsunlock(&h);
    if (r < 0) return done > 0 ? static_cast<ssize_t>(done) : r;
    done += static_cast<size_t>(r);
    if (static_cast<size_t>(r) < got || done >= len || !split) return static_cast<ssize_t>(done);
    rt::vslock_begin(&h);
    got = rt::vslock(&h, p + done, len - done, access);
    if (got == 0) got = len - done;  // cannot hold more: the rest as the host takes it
  }
}

// Vectors.  A vector whose buffers all fit in one hold is passed as it is; a bigger one
// goes in rounds: each round holds from where the last one ended as far as the budget goes,
// into a vector of its own of at most kRoundIov pieces.
constexpr int kRoundIov = 64;

struct vec_cursor {
  const iovec* iov;
  int n;
  int i;     // current entry
  size_t o;  // bytes of it already done
};

// Hold the next round from c into loc; its entry count (0: nothing could be held).
int hold_round(vslock_hold* h, const vec_cursor& c, vm_prot_t access, iovec* loc, size_t* bytes) {
  int cnt = 0;
  *bytes = 0;
  for (int i = c.i; i < c.n && cnt < kRoundIov; ++i) {
    char* base = static_cast<char*>(c.iov[i].iov_base) + (i == c.i ? c.o : 0);
    size_t len = c.iov[i].iov_len - (i == c.i ? c.o : 0);
    size_t got = rt::vslock(h, base, len, access);
    if (got > 0) {
      loc[cnt++] = iovec{base, got};
      *bytes += got;
    }
    if (got < len) break;
  }
  return cnt;
}

void advance(vec_cursor* c, size_t r) {
  while (c->i < c->n && r >= c->iov[c->i].iov_len - c->o) {
    r -= c->iov[c->i].iov_len - c->o;
    ++c->i;
    c->o = 0;
  }
  c->o += r;
}

// call(v, cnt, done): the system call on cnt entries at v, `done` bytes into the vector.
// `split`: rounds may follow a complete one (see held_pieces).
template <class Call>
__attribute__((noinline)) ssize_t held_vec(const iovec* iov, int n, vm_prot_t access, bool split, Call call) {
  vslock_hold h;
  rt::vslock_begin(&h);
  size_t all = 0;
  for (int k = 0; k < n; ++k) all += iov[k].iov_len;
  // The array itself, then the buffers.
  if (rt::vslock(&h, iov, sizeof(iovec) * static_cast<size_t>(n), VM_PROT_READ) == sizeof(iovec) * static_cast<size_t>(n)) {
    size_t held = 0;
    for (int k = 0; k < n; ++k) {
      size_t got = rt::vslock(&h, iov[k].iov_base, iov[k].iov_len, access);
      held += got;
      if (got < iov[k].iov_len) break;
    }
    if (held >= all) {
      ssize_t r = call(iov, n, size_t{0});
      rt::vsunlock(&h);
      return r;
    }
  }
  rt::vsunlock(&h);
  iovec loc[kRoundIov];
  vec_cursor c{iov, n, 0, 0};
  size_t done = 0;
  for (;;) {
    rt::vslock_begin(&h);
    size_t bytes = 0;
    int cnt = hold_round(&h, c, access, loc, &bytes);
    if (cnt == 0) {  // nothing more can be held: the rest as the host takes it
      rt::vsunlock(&h);
      if (done > 0) return static_cast<ssize_t>(done);
      return call(iov, n, size_t{0});
    }
    ssize_t r = call(loc, cnt, done);
    rt::vsunlock(&h);
    if (r < 0) return done > 0 ? static_cast<ssize_t>(done) : r;
    done += static_cast<size_t>(r);
    advance(&c, static_cast<size_t>(r));
    if (static_cast<size_t>(r) < bytes || done >= all || !split) return static_cast<ssize_t>(done);
  }
}

// Is fd a stream socket (a send of it is all sent by a blocking call; a recv MSG_WAITALL
// fills it all)?
bool stream_socket(int fd) {
  int type = 0;
  socklen_t len = sizeof type;
  return ::getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0 && type == SOCK_STREAM;
}

// A message: its iovec through held_vec, its name and control data held with the first
// round (and given only to it: a later round is the stream's continuation); recvmsg's
// results (msg_namelen, msg_controllen, msg_flags) are copied back from the first round.
template <class Call>
__attribute__((noinline)) ssize_t held_msg(msghdr* m, vm_prot_t access, bool split, bool stores, Call call) {
  vslock_hold h;
  rt::vslock_begin(&h);
  (void)rt::vslock(&h, m, sizeof *m, stores ? VM_PROT_WRITE : VM_PROT_READ);
  (void)rt::vslock(&h, m->msg_name, m->msg_namelen, access);
  (void)rt::vslock(&h, m->msg_control, m->msg_controllen, access);
  ssize_t r = held_vec(m->msg_iov, static_cast<int>(m->msg_iovlen), access, split,
                       [&](const iovec* v, int cnt, size_t done) -> ssize_t {
                         if (v == m->msg_iov) return call(m);
                         msghdr part = *m;
                         part.msg_iov = const_cast<iovec*>(v);
                         part.msg_iovlen = static_cast<size_t>(cnt);
                         if (done > 0) {
                           part.msg_name = nullptr;
                           part.msg_namelen = 0;
                           part.msg_control = nullptr;
                           part.msg_controllen = 0;
                         }
                         ssize_t k = call(&part);
                         if (done == 0 && stores) {
                           m->msg_namelen = part.msg_namelen;
                           m->msg_controllen = part.msg_controllen;
                           m->msg_flags = part.msg_flags;
                         }
                         return k;
                       });
  rt::vsunlock(&h);
  return r;
}

// Several buffers of one call, the same kernel access.
struct span {
  const void* p;
  size_t n;
};
template <class Call> __attribute__((noinline)) ssize_t held_spans(const span* s, int n, vm_prot_t access, Call call) {
  vslock_hold h;
  rt::vslock_begin(&h);
  for (int k = 0; k < n; ++k) (void)rt::vslock(&h, s[k].p, s[k].n, access);
  ssize_t r = call();
  rt::vsunlock(&h);
  return r;
}

bool msg_wants(const msghdr* m) {
  if (!rt::vslock_needed() || m == nullptr) return false;
  return rt::vslock_in_region(m, sizeof *m) || rt::vslock_in_region(m->msg_name, m->msg_namelen) ||
         rt::vslock_in_region(m->msg_control, m->msg_controllen) ||
         iov_wants(m->msg_iov, static_cast<int>(m->msg_iovlen));
}

// write(2) of [buf, buf + n), held piece by piece (the write wrapper, and stdio's flushes).
VMRT_FORK_TEXT ssize_t write_held(int fd, const void* buf, size_t n) {
  auto f = NEXT(write, "write");
  if (!want(buf, n)) return f(fd, buf, n);
  return held_pieces(buf, n, VM_PROT_READ, true, [&](const void* p, size_t k, size_t) { return f(fd, p, k); });
}

// ---- stdio ------------------------------------------------------------------------------
// glibc's stdio makes its system calls through internal entry points, not the symbols above:
// its flush writes [_IO_write_base, _IO_write_ptr) of the stream's buffer, its refill reads
// into [_IO_buf_base, _IO_buf_end), and a large fwrite/fread goes straight to or from the
// caller's memory (struct _IO_FILE is public).  So the wrappers below hold a small buffer
// whole for the call, flush a big one themselves (own_flush) before a call may flush it,
// and cut a large fwrite/fread into held pieces.

// A buffer up to this size is held whole for each call (glibc's default is st_blksize,
// 4 KiB for files and pipes); of a bigger one the part the call may fill.
constexpr size_t kStdioHold = 64 * 1024;
// fwrite/fread data per held piece (the rest of the hold's budget stays for the buffer).
constexpr size_t kStdioPiece = 512 * 1024;
static_assert(kStdioHold + kStdioPiece + 2 * PAGE_SIZE <= size_t{rt::kVslockMaxPages} * PAGE_SIZE,
              "a piece and a stream buffer fit in one hold");

// glibc's stream flags this file reads (libio.h, internal): _IO_UNBUFFERED, _IO_NO_WRITES,
// _IO_LINE_BUF, _IO_IS_APPENDING.
constexpr int kIoUnbuffered = 0x0002;
constexpr int kIoNoWrites = 0x0008;
constexpr int kIoLineBuf = 0x0200;
constexpr int kIoIsAppending = 0x1000;

size_t buf_size(const FILE* f) {
  return f->_IO_buf_base != nullptr && f->_IO_buf_end > f->_IO_buf_base ? static_cast<size_t>(f->_IO_buf_end - f->_IO_buf_base) : 0;
}

VMRT_FORK_TEXT bool file_wants(FILE* f) {
  return rt::vslock_needed() && f != nullptr && rt::vslock_in_region(f->_IO_buf_base, buf_size(f));
}

inline bool stdio_wants(FILE* f, const void* p, size_t n) {
  return rt::vslock_needed() && (file_wants(f) || rt::vslock_in_region(p, n));
}

// Write what f's buffer holds to write, as glibc's flush (new_do_write) does, but with held
// writes: 0 nothing to write, or not a plain byte stream over a descriptor (glibc's own flush
// does it); 1 written; -1 a write failed (the stream's error flag is set and its buffer
// emptied, as glibc's flush leaves it).
//  => the stream's lock held (flockfile).
int own_flush(FILE* f) {
  if (f->_fileno < 0 || f->_mode > 0 || (f->_flags & kIoNoWrites) != 0) return 0;
  if (f->_IO_write_ptr <= f->_IO_write_base || f->_IO_read_end != f->_IO_write_base) return 0;
  if (!rt::vslock_in_region(f->_IO_write_base, static_cast<size_t>(f->_IO_write_ptr - f->_IO_write_base))) return 0;
  const char* p = f->_IO_write_base;
  size_t left = static_cast<size_t>(f->_IO_write_ptr - f->_IO_write_base), done = 0;
  bool err = false;
  while (done < left) {
    ssize_t r = write_held(f->_fileno, p + done, left - done);
    if (r < 0) {
      f->_flags |= _IO_ERR_SEEN;
      err = true;
      break;
    }
    done += static_cast<size_t>(r);
  }
  if ((f->_flags & kIoIsAppending) != 0) f->_offset = -1;
  else if (f->_offset >= 0) f->_offset += static_cast<off_t>(done);
  f->_IO_read_base = f->_IO_read_ptr = f->_IO_read_end = f->_IO_buf_base;
  f->_IO_write_base = f->_IO_write_ptr = f->_IO_buf_base;
  f->_IO_write_end = (f->_flags & (kIoLineBuf | kIoUnbuffered)) != 0 ? f->_IO_buf_base : f->_IO_buf_end;
  return err ? -1 : 1;
}

// Small stream buffers stay held while their stream lives: a hold per call (VM lock, page
// lookups, wiring and unwiring) cost ~0.5 us on each printf.  A table of streams whose
// buffer [base, base + size) is held; an entry is dropped at fclose, and replaced when the
// stream's buffer changed (setvbuf).  A stream that finds the table full is held per call.
constexpr int kStreamSlots = 32;
constexpr unsigned kStreamPages = kStdioHold / PAGE_SIZE + 1;  // an unaligned buffer's pages
struct stream_slot {
  FILE* f;     // null: free [g_streams_lock]
  char* base;  // the buffer held [the stream's lock]
  size_t size;
  vslock_hold h;
};
VMRT_LARGE_BSS stream_slot g_streams[kStreamSlots];
vmrt::rt::spinlock g_streams_lock;

// f's slot, claimed if it has none (null when the table is full).
stream_slot* stream_slot_of(FILE* f) {
  vmrt::rt::spin_guard g(g_streams_lock);
  stream_slot* free_slot = nullptr;
  for (stream_slot& s : g_streams) {
    if (s.f == f) return &s;
    if (s.f == nullptr && free_slot == nullptr) free_slot = &s;
  }
  if (free_slot != nullptr) {
    free_slot->f = f;
    free_slot->base = nullptr;
    free_slot->size = 0;
    free_slot->h.n = 0;
  }
  return free_slot;
}

// Drop f's slot (fclose: its buffer is freed).
void stream_drop(FILE* f) {
  stream_slot* s = nullptr;
  {
    vmrt::rt::spin_guard g(g_streams_lock);
    for (stream_slot& x : g_streams)
      if (x.f == f) s = &x;
  }
  if (s == nullptr) return;
  rt::vsunlock(&s->h);
  vmrt::rt::spin_guard g(g_streams_lock);
  s->f = nullptr;
}

// Keep f's small buffer held (true), or false when it cannot be (table full, or the whole
// buffer could not be held): then the call holds it itself.
//  => the stream's lock held.
bool stream_hold(FILE* f, size_t size) {
  stream_slot* s = stream_slot_of(f);
  if (s == nullptr) return false;
  if (s->base == f->_IO_buf_base && s->size == size && s->h.n > 0) return true;
  rt::vsunlock(&s->h);  // a buffer replaced (setvbuf): the old one goes
  rt::vslock_begin(&s->h);
  s->base = nullptr;
  if (rt::vslock(&s->h, f->_IO_buf_base, size, kReadWrite) != size || s->h.n > kStreamPages) {
    rt::vsunlock(&s->h);
    return false;
  }
  s->base = f->_IO_buf_base;
  s->size = size;
  return s->h.n > 0;
}

// Hold what of f's buffer a call writing about `n` bytes (0: unknown) may make the kernel
// touch: a small buffer whole (kept held with its stream); of a big one, what is pending is
// written first when the call could flush it, and [write_ptr, + kStdioHold) is held.
//  => the stream's lock held.
void hold_buffer(vslock_hold* h, FILE* f, size_t n) {
  size_t size = buf_size(f);
  if (size == 0 || !rt::vslock_in_region(f->_IO_buf_base, size)) return;
  if (size <= kStdioHold) {
    if (!stream_hold(f, size)) (void)rt::vslock(h, f->_IO_buf_base, size, kReadWrite);
    return;
  }
  size_t room = f->_IO_write_end > f->_IO_write_ptr ? static_cast<size_t>(f->_IO_write_end - f->_IO_write_ptr) : 0;
  if (room < kStdioHold || n >= room) (void)own_flush(f);
  char* from = f->_IO_write_ptr > f->_IO_buf_base ? f->_IO_write_ptr : f->_IO_buf_base;
  size_t len = static_cast<size_t>(f->_IO_buf_end - from);
  (void)rt::vslock(h, from, len < kStdioHold ? len : kStdioHold, kReadWrite);
}

// A stdio call on f, its buffer and the caller's data [p, p + n) (kernel access `access`)
// held, under the stream's lock.
template <class R, class Call>
__attribute__((noinline)) R held_stdio(FILE* f, const void* p, size_t n, vm_prot_t access, Call call) {
  vslock_hold h;
  rt::vslock_begin(&h);
  ::flockfile(f);
  hold_buffer(&h, f, access == VM_PROT_READ ? n : 0);
  (void)rt::vslock(&h, p, n, access);
  R r = call();
  ::funlockfile(f);
  rt::vsunlock(&h);
  return r;
}

// fwrite/fread of `bytes` at p in pieces of kStdioPiece, each held with the buffer; call(q,
// k) moves k bytes at q and returns the bytes moved.  Stops at the first short piece.
template <class Call>
__attribute__((noinline)) size_t held_stdio_pieces(FILE* f, const void* p, size_t bytes, vm_prot_t access, Call call) {
  const char* q = static_cast<const char*>(p);
  size_t done = 0;
  ::flockfile(f);
  while (done < bytes) {
    size_t k = bytes - done < kStdioPiece ? bytes - done : kStdioPiece;
    size_t r = held_stdio<size_t>(f, q + done, k, access, [&] { return call(q + done, k); });
    done += r;
    if (r < k) break;
  }
  ::funlockfile(f);
  return done;
}

// Flush every stream with held writes (fflush(NULL), exit).  The list of streams under
// glibc's list lock, then each stream's lock, as glibc's own _IO_flush_all takes them.
extern "C" FILE* _IO_list_all;
extern "C" void _IO_list_lock();
extern "C" void _IO_list_unlock();
void own_flush_all() {
  _IO_list_lock();
  for (FILE* f = _IO_list_all; f != nullptr; f = f->_chain) {
    if (!file_wants(f)) continue;
    ::flockfile(f);
    (void)own_flush(f);
    ::funlockfile(f);
  }
  _IO_list_unlock();
}

// exit flushes every stream after the atexit handlers (this one was registered at load,
// before the program's, so it runs after them): the pending output goes out held first.
VMRT_FORK_TEXT void flush_streams_at_exit() {
  if (rt::vslock_needed()) own_flush_all();
}

// Every slot in one pass over the objects' hash tables (shim_next.h).
__attribute__((constructor)) void resolve_next() {
  const next_entry entries[] = {
      {next_slot(g_next.read), "read"},
      {next_slot(g_next.write), "write"},
      {next_slot(g_next.pread), "pread64"},
      {next_slot(g_next.pwrite), "pwrite64"},
      {next_slot(g_next.readv), "readv"},
      {next_slot(g_next.writev), "writev"},
      {next_slot(g_next.preadv), "preadv64"},
      {next_slot(g_next.pwritev), "pwritev64"},
      {next_slot(g_next.preadv2), "preadv64v2"},
      {next_slot(g_next.pwritev2), "pwritev64v2"},
      {next_slot(g_next.recv), "recv"},
      {next_slot(g_next.recvfrom), "recvfrom"},
      {next_slot(g_next.recvmsg), "recvmsg"},
      {next_slot(g_next.send), "send"},
      {next_slot(g_next.sendto), "sendto"},
      {next_slot(g_next.sendmsg), "sendmsg"},
      {next_slot(g_next.getdents64), "getdents64"},
      {next_slot(g_next.fwrite), "fwrite"},
      {next_slot(g_next.fread), "fread"},
      {next_slot(g_next.fputs), "fputs"},
      {next_slot(g_next.puts), "puts"},
      {next_slot(g_next.fgets), "fgets"},
      {next_slot(g_next.fflush), "fflush"},
      {next_slot(g_next.fwrite_unlocked), "fwrite_unlocked"},
      {next_slot(g_next.fread_unlocked), "fread_unlocked"},
      {next_slot(g_next.fputs_unlocked), "fputs_unlocked"},
      {next_slot(g_next.fgets_unlocked), "fgets_unlocked"},
      {next_slot(g_next.fflush_unlocked), "fflush_unlocked"},
      {next_slot(g_next.fclose), "fclose"},
      {next_slot(g_next.vfprintf), "vfprintf"},
      {next_slot(g_next.vfprintf_chk), "__vfprintf_chk"},
  };
  next_symbols(entries, sizeof entries / sizeof entries[0]);
  (void)::atexit(flush_streams_at_exit);
}

}  // namespace
}  // namespace vmrt::shim

using namespace vmrt::shim;
using vmrt::VM_PROT_READ;
using vmrt::VM_PROT_WRITE;
namespace rt = vmrt::rt;

// ---- system calls -----------------------------------------------------------------------

VMRT_EXPORT VMRT_FORK_TEXT ssize_t read(int fd, void* buf, size_t n) {
  auto f = NEXT(read, "read");
  if (!want(buf, n)) return f(fd, buf, n);
  return held_pieces(buf, n, VM_PROT_WRITE, seekable_data(fd),
                     [&](const void* p, size_t k, size_t) { return f(fd, const_cast<void*>(p), k); });
}

VMRT_EXPORT VMRT_FORK_TEXT ssize_t write(int fd, const void* buf, size_t n) { return write_held(fd, buf, n); }

VMRT_EXPORT ssize_t pread64(int fd, void* buf, size_t n, off_t off) {
  auto f = NEXT(pread, "pread64");
  if (!want(buf, n)) return f(fd, buf, n, off);
  return held_pieces(buf, n, VM_PROT_WRITE, seekable_data(fd), [&](const void* p, size_t k, size_t done) {
    return f(fd, const_cast<void*>(p), k, off + static_cast<off_t>(done));
  });
}
VMRT_EXPORT ssize_t pread(int fd, void* buf, size_t n, off_t off) { return pread64(fd, buf, n, off); }

VMRT_EXPORT ssize_t pwrite64(int fd, const void* buf, size_t n, off_t off) {
  auto f = NEXT(pwrite, "pwrite64");
  if (!want(buf, n)) return f(fd, buf, n, off);
  return held_pieces(buf, n, VM_PROT_READ, true,
                     [&](const void* p, size_t k, size_t done) { return f(fd, p, k, off + static_cast<off_t>(done)); });
}
VMRT_EXPORT ssize_t pwrite(int fd, const void* buf, size_t n, off_t off) { return pwrite64(fd, buf, n, off); }

VMRT_EXPORT ssize_t readv(int fd, const iovec* iov, int n) {
  auto f = NEXT(readv, "readv");
  if (!iov_wants(iov, n)) return f(fd, iov, n);
  return held_vec(iov, n, VM_PROT_WRITE, seekable_data(fd), [&](const iovec* v, int c, size_t) { return f(fd, v, c); });
}

VMRT_EXPORT ssize_t writev(int fd, const iovec* iov, int n) {
  auto f = NEXT(writev, "writev");
  if (!iov_wants(iov, n)) return f(fd, iov, n);
  return held_vec(iov, n, VM_PROT_READ, true, [&](const iovec* v, int c, size_t) { return f(fd, v, c); });
}

VMRT_EXPORT ssize_t preadv64(int fd, const iovec* iov, int n, off_t off) {
  auto f = NEXT(preadv, "preadv64");
  if (!iov_wants(iov, n)) return f(fd, iov, n, off);
  return held_vec(iov, n, VM_PROT_WRITE, seekable_data(fd),
                  [&](const iovec* v, int c, size_t done) { return f(fd, v, c, off + static_cast<off_t>(done)); });
}
VMRT_EXPORT ssize_t preadv(int fd, const iovec* iov, int n, off_t off) { return preadv64(fd, iov, n, off); }

VMRT_EXPORT ssize_t pwritev64(int fd, const iovec* iov, int n, off_t off) {
  auto f = NEXT(pwritev, "pwritev64");
  if (!iov_wants(iov, n)) return f(fd, iov, n, off);
  return held_vec(iov, n, VM_PROT_READ, true,
                  [&](const iovec* v, int c, size_t done) { return f(fd, v, c, off + static_cast<off_t>(done)); });
}
VMRT_EXPORT ssize_t pwritev(int fd, const iovec* iov, int n, off_t off) { return pwritev64(fd, iov, n, off); }

VMRT_EXPORT ssize_t preadv64v2(int fd, const iovec* iov, int n, off_t off, int flags) {
  auto f = NEXT(preadv2, "preadv64v2");
  if (!iov_wants(iov, n)) return f(fd, iov, n, off, flags);
  return held_vec(iov, n, VM_PROT_WRITE, seekable_data(fd), [&](const iovec* v, int c, size_t done) {
    return f(fd, v, c, off < 0 ? off : off + static_cast<off_t>(done), flags);
  });
}
VMRT_EXPORT ssize_t preadv2(int fd, const iovec* iov, int n, off_t off, int flags) {
  return preadv64v2(fd, iov, n, off, flags);
}

VMRT_EXPORT ssize_t pwritev64v2(int fd, const iovec* iov, int n, off_t off, int flags) {
  auto f = NEXT(pwritev2, "pwritev64v2");
  if (!iov_wants(iov, n)) return f(fd, iov, n, off, flags);
  return held_vec(iov, n, VM_PROT_READ, true, [&](const iovec* v, int c, size_t done) {
    return f(fd, v, c, off < 0 ? off : off + static_cast<off_t>(done), flags);
  });
}
VMRT_EXPORT ssize_t pwritev2(int fd, const iovec* iov, int n, off_t off, int flags) {
  return pwritev64v2(fd, iov, n, off, flags);
}

// Sockets: one call (a datagram is one message), the held part of the buffer.
VMRT_EXPORT ssize_t recv(int fd, void* buf, size_t n, int flags) {
  auto f = NEXT(recv, "recv");
  if (!want(buf, n)) return f(fd, buf, n, flags);
  return held_pieces(buf, n, VM_PROT_WRITE, (flags & MSG_WAITALL) != 0 && stream_socket(fd),
                     [&](const void* p, size_t k, size_t) { return f(fd, const_cast<void*>(p), k, flags); });
}

VMRT_EXPORT ssize_t recvfrom(int fd, void* buf, size_t n, int flags, sockaddr* from, socklen_t* fromlen) {
  auto f = NEXT(recvfrom, "recvfrom");
  size_t alen = from != nullptr && fromlen != nullptr ? *fromlen : 0;
  if (!want(buf, n) && !want(from, alen) && !want(fromlen, sizeof *fromlen)) return f(fd, buf, n, flags, from, fromlen);
  const span s[] = {{buf, n}, {from, alen}, {fromlen, fromlen != nullptr ? sizeof *fromlen : 0}};
  return held_spans(s, 3, VM_PROT_WRITE, [&] { return f(fd, buf, n, flags, from, fromlen); });
}

VMRT_EXPORT ssize_t recvmsg(int fd, msghdr* m, int flags) {
  auto f = NEXT(recvmsg, "recvmsg");
  if (!msg_wants(m)) return f(fd, m, flags);
  return held_msg(m, VM_PROT_WRITE, (flags & MSG_WAITALL) != 0 && stream_socket(fd), true,
                  [&](msghdr* x) { return f(fd, x, flags); });
}

VMRT_EXPORT ssize_t send(int fd, const void* buf, size_t n, int flags) {
  auto f = NEXT(send, "send");
  if (!want(buf, n)) return f(fd, buf, n, flags);
  return held_pieces(buf, n, VM_PROT_READ, stream_socket(fd),
                     [&](const void* p, size_t k, size_t) { return f(fd, p, k, flags); });
}

VMRT_EXPORT ssize_t sendto(int fd, const void* buf, size_t n, int flags, const sockaddr* to, socklen_t tolen) {
  auto f = NEXT(sendto, "sendto");
  if (!want(buf, n) && !want(to, tolen)) return f(fd, buf, n, flags, to, tolen);
  const span s[] = {{buf, n}, {to, tolen}};
  return held_spans(s, 2, VM_PROT_READ, [&] { return f(fd, buf, n, flags, to, tolen); });
}

VMRT_EXPORT ssize_t sendmsg(int fd, const msghdr* m, int flags) {
  auto f = NEXT(sendmsg, "sendmsg");
  if (!msg_wants(m)) return f(fd, m, flags);
  return held_msg(const_cast<msghdr*>(m), VM_PROT_READ, stream_socket(fd), false,
                  [&](msghdr* x) { return f(fd, x, flags); });
}

VMRT_EXPORT ssize_t getdents64(int fd, void* buf, size_t n) {
  auto f = NEXT(getdents64, "getdents64");
  if (!want(buf, n)) return f(fd, buf, n);
  return held_pieces(buf, n, VM_PROT_WRITE, false,
                     [&](const void* p, size_t k, size_t) { return f(fd, const_cast<void*>(p), k); });
}

// ---- stdio ------------------------------------------------------------------------------
// The output side's entry points are in the fork text (vm/vm_types.h): a shell's child
// prints through them (bash's echo is a printf), and their pass-through is a few
// instructions; the held paths are functions of their own, out of it.

// Each stdio call and its _unlocked form share a body; f is glibc's definition of the one
// called.  (The stream's lock is taken either way: it is recursive, and a caller of an
// _unlocked form that did not take it has no other thread on the stream.)
namespace {

template <class F> VMRT_FORK_TEXT size_t fwrite_with(F f, const void* p, size_t size, size_t n, FILE* s) {
  size_t bytes = size * n;
  if (size == 0 || bytes / size != n || !stdio_wants(s, p, bytes)) return f(p, size, n, s);
  size_t done = held_stdio_pieces(s, p, bytes, VM_PROT_READ, [&](const char* q, size_t k) { return f(q, 1, k, s); });
  return done / size;
}

template <class F> size_t fread_with(F f, void* p, size_t size, size_t n, FILE* s) {
  size_t bytes = size * n;
  if (size == 0 || bytes / size != n || !stdio_wants(s, p, bytes)) return f(p, size, n, s);
  size_t done = held_stdio_pieces(s, p, bytes, VM_PROT_WRITE,
                                  [&](const char* q, size_t k) { return f(const_cast<char*>(q), 1, k, s); });
  return done / size;
}

template <class F> VMRT_FORK_TEXT int fputs_with(F f, const char* str, FILE* s) {
  if (!rt::vslock_needed()) return f(str, s);
  size_t len = __builtin_strlen(str);  // a user-mode read: faults the string in if need be
  if (!stdio_wants(s, str, len)) return f(str, s);
  return held_stdio<int>(s, str, len, VM_PROT_READ, [&] { return f(str, s); });
}

template <class F> char* fgets_with(F f, char* str, int n, FILE* s) {
  size_t bytes = n > 0 ? static_cast<size_t>(n) : 0;
  if (!stdio_wants(s, str, bytes)) return f(str, n, s);
  return held_stdio<char*>(s, str, bytes, VM_PROT_WRITE, [&] { return f(str, n, s); });
}

template <class F> VMRT_FORK_TEXT int fflush_with(F f, FILE* s) {
  if (!rt::vslock_needed()) return f(s);
  if (s == nullptr) {
    own_flush_all();
    return f(nullptr);
  }
  if (!file_wants(s)) return f(s);
  ::flockfile(s);
  int own = own_flush(s);
  int r = own < 0 ? EOF : f(s);
  ::funlockfile(s);
  return r;
}

}  // namespace

VMRT_EXPORT VMRT_FORK_TEXT size_t fwrite(const void* p, size_t size, size_t n, FILE* s) {
  return fwrite_with(NEXT(fwrite, "fwrite"), p, size, n, s);
}
VMRT_EXPORT size_t fwrite_unlocked(const void* p, size_t size, size_t n, FILE* s) {
  return fwrite_with(NEXT(fwrite_unlocked, "fwrite_unlocked"), p, size, n, s);
}

VMRT_EXPORT size_t fread(void* p, size_t size, size_t n, FILE* s) { return fread_with(NEXT(fread, "fread"), p, size, n, s); }
VMRT_EXPORT size_t fread_unlocked(void* p, size_t size, size_t n, FILE* s) {
  return fread_with(NEXT(fread_unlocked, "fread_unlocked"), p, size, n, s);
}

VMRT_EXPORT VMRT_FORK_TEXT int fputs(const char* str, FILE* s) { return fputs_with(NEXT(fputs, "fputs"), str, s); }
VMRT_EXPORT int fputs_unlocked(const char* str, FILE* s) { return fputs_with(NEXT(fputs_unlocked, "fputs_unlocked"), str, s); }

VMRT_EXPORT VMRT_FORK_TEXT int puts(const char* str) {
  auto f = NEXT(puts, "puts");
  if (!rt::vslock_needed()) return f(str);
  size_t len = __builtin_strlen(str);
  if (!stdio_wants(stdout, str, len)) return f(str);
  return held_stdio<int>(stdout, str, len + 1, VM_PROT_READ, [&] { return f(str); });
}

VMRT_EXPORT char* fgets(char* str, int n, FILE* s) { return fgets_with(NEXT(fgets, "fgets"), str, n, s); }
VMRT_EXPORT char* fgets_unlocked(char* str, int n, FILE* s) {
  return fgets_with(NEXT(fgets_unlocked, "fgets_unlocked"), str, n, s);
}

VMRT_EXPORT VMRT_FORK_TEXT int fflush(FILE* s) { return fflush_with(NEXT(fflush, "fflush"), s); }
VMRT_EXPORT int fflush_unlocked(FILE* s) { return fflush_with(NEXT(fflush_unlocked, "fflush_unlocked"), s); }

VMRT_EXPORT int fclose(FILE* s) {
  auto f = NEXT(fclose, "fclose");
  if (!file_wants(s)) return f(s);
  ::flockfile(s);
  int own = own_flush(s);
  stream_drop(s);  // before the FILE is freed: a stream opened next may get its address
  ::funlockfile(s);
  int r = f(s);  // frees the buffer; glibc's flush has nothing left to write
  return own < 0 ? EOF : r;
}

// The printf family: the stream's buffer is held (a %s argument longer than the buffer is
// written by glibc straight from the argument: not held, README "Known limits").
VMRT_EXPORT VMRT_FORK_TEXT int vfprintf(FILE* s, const char* fmt, va_list ap) {
  auto f = NEXT(vfprintf, "vfprintf");
  if (!file_wants(s)) return f(s, fmt, ap);
  return held_stdio<int>(s, nullptr, 0, VM_PROT_READ, [&] { return f(s, fmt, ap); });
}

VMRT_EXPORT VMRT_FORK_TEXT int vprintf(const char* fmt, va_list ap) { return vfprintf(stdout, fmt, ap); }

VMRT_EXPORT VMRT_FORK_TEXT int fprintf(FILE* s, const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int r = vfprintf(s, fmt, ap);
  va_end(ap);
  return r;
}

VMRT_EXPORT VMRT_FORK_TEXT int printf(const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int r = vfprintf(stdout, fmt, ap);
  va_end(ap);
  return r;
}

VMRT_EXPORT VMRT_FORK_TEXT int __vfprintf_chk(FILE* s, int flag, const char* fmt, va_list ap) {
  auto f = NEXT(vfprintf_chk, "__vfprintf_chk");
  if (!file_wants(s)) return f(s, flag, fmt, ap);
  return held_stdio<int>(s, nullptr, 0, VM_PROT_READ, [&] { return f(s, flag, fmt, ap); });
}

VMRT_EXPORT VMRT_FORK_TEXT int __vprintf_chk(int flag, const char* fmt, va_list ap) { return __vfprintf_chk(stdout, flag, fmt, ap); }

VMRT_EXPORT VMRT_FORK_TEXT int __fprintf_chk(FILE* s, int flag, const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int r = __vfprintf_chk(s, flag, fmt, ap);
  va_end(ap);
  return r;
}

VMRT_EXPORT VMRT_FORK_TEXT int __printf_chk(int flag, const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int r = __vfprintf_chk(stdout, flag, fmt, ap);
  va_end(ap);
  return r;
}
