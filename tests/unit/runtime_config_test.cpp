// runtime_config_test.cpp — the VMRT_* table, parser and messages (runtime/rt_config.h)
// that the runtime and vmrun share: what is accepted, what is refused and how it is said.
#include <doctest/doctest.h>

#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <string>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "runtime/boot.h"
#include "runtime/rt_base.h"
#include "runtime/rt_config.h"

using namespace vmrt;

namespace {
config_status parse(config_var v, const char* text, std::uint64_t* out = nullptr) {
  std::uint64_t tmp = 0;
  return config_parse(v, text, out != nullptr ? out : &tmp);
}
std::string describe(config_var v, const char* text) {
  std::uint64_t n = 0;
  char buf[256];
  return config_describe(v, nullptr, text, config_parse(v, text, &n), buf, sizeof buf);
}
}  // namespace

TEST_CASE("sizes: digits with K/M/G/T and an optional B; garbage, empty and overflow refused") {
  std::size_t n = 0;
  CHECK(config_parse_size("123", &n));
  CHECK(n == 123);
  CHECK(config_parse_size("64k", &n));
  CHECK(n == 64u << 10);
  CHECK(config_parse_size("16MB", &n));
  CHECK(n == 16u << 20);
  CHECK(config_parse_size("1t", &n));
  CHECK(n == std::size_t{1} << 40);
  for (const char* bad : {"", "M", "1.5G", "-1G", "1GiB", "4 G", "0x10", "12MM", "99999999999999999999",
                          "17179869184G" /* 2^34 G overflows 64 bits */}) {
    INFO("value: '" << bad << "'");
    CHECK_FALSE(config_parse_size(bad, &n));
  }
  CHECK_FALSE(config_parse_size(nullptr, &n));
}

TEST_CASE("each variable's range, both ends included") {
  std::uint64_t v = 0;
  CHECK(parse(config_var::physmem, "1M", &v) == config_status::ok);
  CHECK(v == 1u << 20);
  CHECK(parse(config_var::physmem, "1048575") == config_status::out_of_range);
  CHECK(parse(config_var::physmem, "16T") == config_status::ok);
  CHECK(parse(config_var::physmem, "17T") == config_status::out_of_range);
  CHECK(parse(config_var::region_size, "112M") == config_status::ok);
  CHECK(parse(config_var::region_size, "96M") == config_status::out_of_range);
  CHECK(parse(config_var::kmem_size, "8T") == config_status::ok);
  CHECK(parse(config_var::kmem_size, "9T") == config_status::out_of_range);
  CHECK(parse(config_var::frame_cache, "0") == config_status::ok);
  CHECK(parse(config_var::stats_fd, "1048575") == config_status::ok);
  CHECK(parse(config_var::stats_fd, "1048576") == config_status::out_of_range);
  CHECK(parse(config_var::stats_fd, "-1") == config_status::malformed);
  CHECK(parse(config_var::stats_fd, "") == config_status::malformed);
}

TEST_CASE("trap and heap choices map to their enums (aliases too); flags accept anything") {
  std::uint64_t v = 9;
  CHECK(parse(config_var::trap, "auto", &v) == config_status::ok);
  CHECK(static_cast<trap_backend>(v) == trap_backend::automatic);
  CHECK(parse(config_var::trap, "sigsegv", &v) == config_status::ok);
  CHECK(static_cast<trap_backend>(v) == trap_backend::sigsegv);
  CHECK(parse(config_var::trap, "uffd", &v) == config_status::ok);
  CHECK(static_cast<trap_backend>(v) == trap_backend::userfaultfd);
  CHECK(parse(config_var::trap, "SIGSEGV") == config_status::malformed);
  CHECK(parse(config_var::trap, "") == config_status::malformed);
  CHECK(parse(config_var::heap, "frames", &v) == config_status::ok);
  CHECK(static_cast<heap_backing>(v) == heap_backing::frames);
  CHECK(parse(config_var::heap, "host", &v) == config_status::ok);
  CHECK(static_cast<heap_backing>(v) == heap_backing::host);
  CHECK(parse(config_var::heap, "Frames") == config_status::malformed);
  CHECK(parse(config_var::stats, "0", &v) == config_status::ok);
  CHECK(v == 0);
  CHECK(parse(config_var::stats, "", &v) == config_status::ok);
  CHECK(v == 0);
  CHECK(parse(config_var::stats, "yes", &v) == config_status::ok);
  CHECK(v == 1);
}

TEST_CASE("messages name the variable, the value and the accepted range") {
  CHECK(describe(config_var::physmem, "512K") == "VMRT_PHYSMEM=512K: out of range (accepted: 1M .. 16T)");
  CHECK(describe(config_var::kmem_size, "lots") ==
        "VMRT_KMEM_SIZE=lots: not a size (use e.g. 512M, 4G; accepted: 16M .. 8T)");
  CHECK(describe(config_var::frame_cache, "17T") == "VMRT_FRAME_CACHE=17T: out of range (accepted: 0 .. 16T)");
  CHECK(describe(config_var::trap, "x") == "VMRT_TRAP=x: not a trap backend (accepted: auto, sigsegv, userfaultfd)");
  CHECK(describe(config_var::heap, "") == "VMRT_HEAP=: not a heap backing (accepted: host, frames, paged)");
  CHECK(describe(config_var::stats_fd, "99999999") ==
        "VMRT_STATS_FD=99999999: descriptor out of range (accepted: 0 .. 1048575)");
  char small[16];
  config_describe(config_var::physmem, "--physmem", "8M", config_status::out_of_range, small, sizeof small);
  CHECK(std::strlen(small) == sizeof small - 1);  // truncated, terminated
  char buf[32];
  CHECK(std::string(config_size_text(std::size_t{24105} << 20 | 4096, buf, sizeof buf)) == "24105M");
  CHECK(std::string(config_size_text(0, buf, sizeof buf)) == "0");
  CHECK(std::string(config_size_text(std::size_t{3} << 30, buf, sizeof buf)) == "3G");
}

TEST_CASE("kmem must fit the region beside the kernel window") {
  CHECK(config_kmem_max_for_region(std::size_t{64} << 30) == std::size_t{32} << 30);
  CHECK(config_kmem_max_for_region(std::size_t{112} << 20) == std::size_t{16} << 20);
  CHECK(config_kmem_max_for_region(std::size_t{128} << 20) == std::size_t{32} << 20);
  CHECK(config_kmem_max_for_region(std::size_t{1} << 30) == std::size_t{512} << 20);
  CHECK(config_kmem_max_for_region(std::size_t{100} << 20) == std::size_t{16} << 20);  // clamped to the minimum
}

TEST_CASE("the runtime reads the table: an explicit region sizes the default kmem; refused values keep defaults") {
  setenv("VMRT_REGION_SIZE", "1G", 1);
  setenv("VMRT_PHYSMEM", "512K", 1);  // refused: the default stays
  setenv("VMRT_TRAP", "uffd", 1);
  setenv("VMRT_STATS_FD", "7", 1);
  runtime_config c = runtime_config_from_env();
  unsetenv("VMRT_REGION_SIZE");
  unsetenv("VMRT_PHYSMEM");
  unsetenv("VMRT_TRAP");
  unsetenv("VMRT_STATS_FD");
  CHECK(c.region_size == std::size_t{1} << 30);
  CHECK(c.kmem_size == std::size_t{512} << 20);
  CHECK(c.physmem_size >= kPhysmemSizeLimits.min);
  CHECK(c.physmem_size != std::size_t{512} << 10);
  CHECK(c.trap == trap_backend::userfaultfd);
  CHECK(c.stats_fd == 7);
}

// The host's memory is asked of sysinfo(2) once per process (runtime/rt_base.h): boot's two
// readers (the physmem default, the pmap's host-swap check) made a call each.  A child
// primes the answer, then forbids sysinfo (seccomp kills at the call): asking again, and
// reading the configuration (its physmem default is the host's RAM), make no further call.
TEST_CASE("host memory: one sysinfo call a process") {
  pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    const rt::host_memory first = rt::host_memory_info();
    if (first.ram == 0) _exit(10);
    sock_filter f[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_sysinfo, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    sock_fprog prog = {static_cast<unsigned short>(sizeof f / sizeof f[0]), f};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 || prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0) _exit(11);
    const rt::host_memory again = rt::host_memory_info();
    if (again.ram != first.ram || again.swap != first.swap) _exit(12);
    (void)runtime_config_from_env();
    _exit(0);
  }
  int st = 0;
  REQUIRE(waitpid(pid, &st, 0) == pid);
  INFO("child status " << st);
  CHECK(WIFEXITED(st));
  CHECK(WEXITSTATUS(st) == 0);
}
