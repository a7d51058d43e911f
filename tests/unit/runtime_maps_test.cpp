// runtime_maps_test — the one /proc/self/maps reader (runtime/rt_maps.h): its line parser,
// the snapshot (maps_scan) and the stream through a caller's buffer (maps_stream, which the
// shim's loader snapshot uses before boot), against each other and against mappings made here.
#include <doctest/doctest.h>

#include <cstring>
#include <fcntl.h>
#include <string>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>
#include <vector>

#include "runtime/rt_maps.h"

namespace {

using vmrt::rt::maps_line;

// A line as the test keeps it: fixed-size, so collecting allocates nothing (an allocation
// could move the program break while the kernel lists the mappings).
struct seen {
  std::uintptr_t lo, hi;
  int prot;
  bool shared;
  std::uint64_t inode;
  char name[512];
  std::size_t name_len;
  std::string path() const { return std::string(name, name_len); }
  bool operator==(const seen& o) const {
    return lo == o.lo && hi == o.hi && prot == o.prot && shared == o.shared && inode == o.inode && path() == o.path();
  }
};

void collect(const maps_line& l, void* a) {
  auto* v = static_cast<std::vector<seen>*>(a);
  REQUIRE(v->size() < v->capacity());
  seen s{l.lo, l.hi, l.prot, l.shared, l.inode, {}, l.path_len < sizeof s.name ? l.path_len : sizeof s.name};
  std::memcpy(s.name, l.path, s.name_len);
  v->push_back(s);
}

const seen* find(const std::vector<seen>& v, const void* p) {
  const auto a = reinterpret_cast<std::uintptr_t>(p);
  for (const seen& s : v)
    if (a >= s.lo && a < s.hi) return &s;
  return nullptr;
}

}  // namespace

TEST_CASE("maps_parse_line reads every field and rejects what is not a maps line") {
  const char* l = "7f0000001000-7f0000003000 rw-s 0001a000 fd:01 123456                     /tmp/some file";
  maps_line m{};
  REQUIRE(vmrt::rt::maps_parse_line(l, l + std::strlen(l), &m));
  CHECK(m.lo == 0x7f0000001000u);
  CHECK(m.hi == 0x7f0000003000u);
  CHECK(m.prot == (PROT_READ | PROT_WRITE));
  CHECK(m.shared);
  CHECK(m.offset == 0x1a000u);
  CHECK(m.dev == makedev(0xfd, 0x01));
  CHECK(m.inode == 123456u);
  CHECK(std::string(m.path, m.path_len) == "/tmp/some file");

  const char* anon = "7f0000001000-7f0000003000 r-xp 00000000 00:00 0 ";
  REQUIRE(vmrt::rt::maps_parse_line(anon, anon + std::strlen(anon), &m));
  CHECK(m.prot == (PROT_READ | PROT_EXEC));
  CHECK(!m.shared);
  CHECK(m.inode == 0);
  CHECK(m.path_len == 0);

  for (const char* bad : {"", "garbage", "7f00-7f10", "7f00-7f10 rw", "7f00-7f10 rw-p 0 fd", "7f00+7f10 rw-p 0 00:00 0"})
    CHECK_MESSAGE(!vmrt::rt::maps_parse_line(bad, bad + std::strlen(bad), &m), bad);
}

TEST_CASE("maps_stream sees what maps_scan sees, through any buffer") {
  // A file mapping with a long name, shared and private anonymous mappings.
  std::string dir = "/tmp/vmrt-maps-test-" + std::to_string(getpid()) + "-" + std::string(180, 'd');
  REQUIRE(mkdir(dir.c_str(), 0700) == 0);
  std::string file = dir + "/" + std::string(200, 'f');
  int fd = open(file.c_str(), O_RDWR | O_CREAT | O_TRUNC, 0600);
  REQUIRE(fd >= 0);
  REQUIRE(ftruncate(fd, 8192) == 0);
  void* fm = mmap(nullptr, 8192, PROT_READ, MAP_SHARED, fd, 0);
  REQUIRE(fm != MAP_FAILED);
  void* sa = mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  void* pa = mmap(nullptr, 3 * 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  REQUIRE(sa != MAP_FAILED);
  REQUIRE(pa != MAP_FAILED);

  // maps_scan's own buffer is a mapping in its snapshot: the mappings made here are
  // compared with it, whole listings only between streams (which map nothing).
  std::vector<seen> snap, streamed, small;
  snap.reserve(4096);
  streamed.reserve(4096);
  small.reserve(4096);
  REQUIRE(vmrt::rt::maps_scan(collect, &snap));
  // Two streams back to back: through a page and through a buffer shorter than the long
  // file name's line (~480 bytes).  A sanitizer's runtime may map memory at any allocation:
  // taken again, a few times, until both saw the same mappings.
  char buf[4096];
  char tiny[96];
  for (int attempt = 0; attempt < 5; ++attempt) {
    streamed.clear();
    small.clear();
    REQUIRE(vmrt::rt::maps_stream(buf, sizeof buf, collect, &streamed));
    REQUIRE(vmrt::rt::maps_stream(tiny, sizeof tiny, collect, &small));
    if (small.size() == streamed.size()) break;
  }
  for (const void* a : {fm, sa, pa}) {
    const seen* x = find(snap, a);
    const seen* y = find(streamed, a);
    REQUIRE(x != nullptr);
    REQUIRE(y != nullptr);
    CHECK(*x == *y);
  }

  const seen* f = find(streamed, fm);
  REQUIRE(f != nullptr);
  CHECK(f->path() == file);
  CHECK(f->shared);
  CHECK(f->prot == PROT_READ);
  struct stat st{};
  REQUIRE(fstat(fd, &st) == 0);
  CHECK(f->inode == st.st_ino);
  const seen* s = find(streamed, sa);
  REQUIRE(s != nullptr);
  CHECK(s->shared);
  const seen* p = find(streamed, pa);
  REQUIRE(p != nullptr);
  CHECK(!p->shared);
  CHECK(p->prot == PROT_READ);
  CHECK(p->inode == 0);

  {  // the short buffer: the long line is reported once, cut, and the rest follow
    REQUIRE(small.size() == streamed.size());
    for (std::size_t i = 0; i < small.size(); ++i) {
      CHECK(small[i].lo == streamed[i].lo);
      CHECK(small[i].hi == streamed[i].hi);
      CHECK(small[i].inode == streamed[i].inode);
      CHECK(streamed[i].path().compare(0, small[i].name_len, small[i].path()) == 0);  // a prefix
    }
    const seen* cut = find(small, fm);
    REQUIRE(cut != nullptr);
    CHECK(cut->name_len < file.size());
  }

  // maps_total counts the lines a stream sees.  Under a sanitizer its runtime may map
  // memory at any allocation (this test's own included): the two counts are taken back to
  // back, a few times until nothing moved in between.
  std::size_t total = 0, counted = 0;
  for (int attempt = 0; attempt < 5; ++attempt) {
    counted = 0;
    REQUIRE(vmrt::rt::maps_stream(buf, sizeof buf, [](const maps_line&, void* a) { ++*static_cast<std::size_t*>(a); }, &counted));
    REQUIRE(vmrt::rt::maps_total(&total));
    if (total == counted) break;
  }
  CHECK(total == counted);
  CHECK(counted > 0);

  munmap(fm, 8192);
  munmap(sa, 4096);
  munmap(pa, 3 * 4096);
  close(fd);
  unlink(file.c_str());
  rmdir(dir.c_str());
}
