// vm_host_layout_test — where vmrt's big host reservations go (vm/vm_host_layout.h): below the
// libraries with room left for the host's own later mappings, one under the other.
#include <doctest/doctest.h>

#include <cstdint>
#include <sys/mman.h>
#include <unistd.h>

#include "vm/vm_host_layout.h"
#include "vm/vm_sys.h"

namespace {

constexpr std::uintptr_t kGiB = std::uintptr_t{1} << 30;

std::uintptr_t addr(const void* p) { return reinterpret_cast<std::uintptr_t>(p); }

}  // namespace

TEST_CASE("reservations go below the libraries, one under the other, and the host's later mappings stay above them") {
  const std::uintptr_t lib = addr(reinterpret_cast<const void*>(&::getpid));
  if (lib < (std::uintptr_t{1} << 40) + 16 * kGiB) {
    MESSAGE("libraries at " << reinterpret_cast<const void*>(lib) << ": a bottom-up layout, no hint to check");
    return;
  }
  void* a = vmrt::sys::host_reserve(2 * kGiB);
  REQUIRE(a != MAP_FAILED);
  CHECK(addr(a) % kGiB == 0);
  CHECK(addr(a) + 2 * kGiB <= lib - 16 * kGiB);  // the host's room left free
  void* b = vmrt::sys::host_reserve(kGiB);
  REQUIRE(b != MAP_FAILED);
  CHECK(addr(b) + kGiB <= addr(a));  // the next one below
  // A mapping the host places itself (libc's own, after boot): above both, by the libraries.
  void* h = vmrt::sys::mmap(nullptr, std::size_t{4} << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  REQUIRE(h != MAP_FAILED);
  CHECK(addr(h) > addr(a) + 2 * kGiB);
  // Address space only: nothing is mapped there.
  unsigned char v = 1;
  CHECK(vmrt::sys::mincore(a, 4096, &v) == 0);
  CHECK((v & 1) == 0);
  vmrt::sys::munmap(h, std::size_t{4} << 20);
  vmrt::sys::munmap(b, kGiB);
  vmrt::sys::munmap(a, 2 * kGiB);
}

TEST_CASE("a reservation whose spot is taken goes where the host puts it, never over another mapping") {
  const std::uintptr_t lib = addr(reinterpret_cast<const void*>(&::getpid));
  if (lib < (std::uintptr_t{1} << 40) + 16 * kGiB) return;
  // Take the spot the next reservation would ask for.
  void* probe = vmrt::sys::host_reserve(kGiB);
  REQUIRE(probe != MAP_FAILED);
  const std::uintptr_t next = addr(probe) - kGiB;
  void* blocker = vmrt::sys::mmap(reinterpret_cast<void*>(next), kGiB, PROT_NONE,
                                  MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED_NOREPLACE, -1, 0);
  REQUIRE(blocker != MAP_FAILED);
  void* c = vmrt::sys::host_reserve(kGiB);
  REQUIRE(c != MAP_FAILED);
  CHECK(c != blocker);  // never over another mapping
  CHECK((addr(c) + kGiB <= next || addr(c) >= next + kGiB));
  vmrt::sys::munmap(c, kGiB);
  vmrt::sys::munmap(blocker, kGiB);
  vmrt::sys::munmap(probe, kGiB);
}
