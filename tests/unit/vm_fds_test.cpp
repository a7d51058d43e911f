// vm_fds_test.cpp — vmrt's descriptors in the program's table: handles, moves (vm/vm_fds.h).
#include <doctest/doctest.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <fcntl.h>
#include <string>
#include <sys/ioctl.h>
#include <thread>
#include <unistd.h>

#include "vm/vm_fds.h"

using namespace vmrt;

namespace {

// What the read end of the pipe holds, as a string (non-blocking: "" when empty).
std::string drain(int rd) {
  char buf[256];
  ssize_t n = ::read(rd, buf, sizeof buf);
  return n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : std::string();
}

void say(int h, const char* s) {
  vm_fd_use u(h);
  REQUIRE(u.fd() >= 0);
  REQUIRE(::write(u.fd(), s, std::strlen(s)) == static_cast<ssize_t>(std::strlen(s)));
}

}  // namespace

TEST_CASE("a kept descriptor moves to a new number; its handle follows, the old number is the caller's") {
  int p[2];
  REQUIRE(::pipe2(p, O_NONBLOCK) == 0);
  int h = vm_fd_keep(p[1]);
  REQUIRE(h >= 0);
  int old = vm_fd_number(h);
  CHECK(vm_fd_is_kept(old));
  say(h, "one");
  CHECK(drain(p[0]) == "one");

  REQUIRE(vm_fd_move(old) == 0);
  int now = vm_fd_number(h);
  CHECK(now != old);
  CHECK(vm_fd_is_kept(now));
  CHECK_FALSE(vm_fd_is_kept(old));
  CHECK((::fcntl(now, F_GETFD) & FD_CLOEXEC) != 0);
  // The old number still holds the same pipe until the caller's dup replaces it.
  REQUIRE(::write(old, "x", 1) == 1);
  CHECK(drain(p[0]) == "x");
  REQUIRE(::close(old) == 0);
  say(h, "two");
  CHECK(drain(p[0]) == "two");

  // Not (or no longer) kept: EBADF, nothing moved.
  errno = 0;
  CHECK(vm_fd_move(old) == -1);
  CHECK(errno == EBADF);
  CHECK(vm_fd_number(h) == now);

  int queued = -1;
  REQUIRE(::write(now, "abc", 3) == 3);
  int rh = vm_fd_keep(p[0]);
  REQUIRE(rh >= 0);
  CHECK(vm_fd_ioctl(rh, FIONREAD, &queued) == 0);
  CHECK(queued == 3);
  vm_fd_close(h);
  vm_fd_close(rh);
  CHECK_FALSE(vm_fd_is_kept(now));
  CHECK(vm_fd_number(h) == -1);
  CHECK(::fcntl(now, F_GETFD) == -1);
}

TEST_CASE("a move waits for the uses that may hold the old number") {
  int p[2];
  REQUIRE(::pipe2(p, O_NONBLOCK) == 0);
  int h = vm_fd_keep(p[1]);
  REQUIRE(h >= 0);
  const int old = vm_fd_number(h);
  std::atomic<bool> moved{false};
  std::thread mover;
  {
    vm_fd_use u(h);
    CHECK(u.fd() == old);
    mover = std::thread([&] {
      CHECK(vm_fd_move(old) == 0);
      moved.store(true);
    });
    // However long the mover runs, it cannot finish while this use lasts; the number stays
    // the pipe for the use's lifetime.
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    CHECK_FALSE(moved.load());
    REQUIRE(::write(u.fd(), "in use", 6) == 6);
    CHECK(drain(p[0]) == "in use");
  }
  mover.join();
  CHECK(moved.load());
  CHECK(vm_fd_number(h) != old);
  say(h, "after");
  CHECK(drain(p[0]) == "after");
  ::close(old);
  vm_fd_close(h);
  ::close(p[0]);
}

TEST_CASE("a move does not wait for a thread asleep in read of the old number; the read goes on on vmrt's file") {
  int p[2], other[2];
  REQUIRE(::pipe(p) == 0);
  REQUIRE(::pipe(other) == 0);
  int h = vm_fd_keep(p[0]);
  REQUIRE(h >= 0);
  const int old = vm_fd_number(h);
  std::atomic<int> entered{0};
  char got = 0;
  ssize_t n = -2;
  std::thread reader([&] {
    vm_fd_wait_use u(h);
    entered.store(u.fd());
    n = ::read(u.fd(), &got, 1);  // sleeps: nothing written yet
  });
  while (entered.load() == 0) std::this_thread::yield();
  CHECK(entered.load() == old);
  REQUIRE(vm_fd_move(old) == 0);  // returns once the reader sleeps inside read(old)
  CHECK(vm_fd_number(h) != old);
  // The program's dup lands on the old number; the sleeping read still reads vmrt's pipe.
  REQUIRE(::dup2(other[0], old) == old);
  REQUIRE(::write(other[1], "p", 1) == 1);
  REQUIRE(::write(p[1], "v", 1) == 1);
  reader.join();
  CHECK(n == 1);
  CHECK(got == 'v');
  char b = 0;
  CHECK(::read(old, &b, 1) == 1);  // the program's byte is still there for the program
  CHECK(b == 'p');
  ::close(old);
  ::close(other[0]);
  ::close(other[1]);
  ::close(p[1]);
  vm_fd_close(h);
}

TEST_CASE("a full table refuses a descriptor and closes it") {
  int keep[kVmFdMax];
  unsigned n = 0;
  int h = 0;
  while (n < kVmFdMax && (h = vm_fd_keep(::open("/dev/null", O_RDONLY | O_CLOEXEC))) >= 0) keep[n++] = h;
  CHECK(n == kVmFdMax);
  int fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  REQUIRE(fd >= 0);
  errno = 0;
  CHECK(vm_fd_keep(fd) == -1);
  CHECK(errno == EMFILE);
  CHECK(::fcntl(fd, F_GETFD) == -1);
  for (unsigned k = 0; k < n; ++k) vm_fd_close(keep[k]);
}
