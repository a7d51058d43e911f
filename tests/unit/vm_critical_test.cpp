// vm_critical_test.cpp — the signal-set conversions of vm_critical (owed signals, the
// signal table's recorded masks) against the libc calls they stand for.
#include <doctest/doctest.h>

#include <csignal>
#include <cstdint>
#include <random>

#include "vm/vm_critical.h"

using namespace vmrt;

namespace {

// The conversions as the libc calls make them: sigismember for each of signals 1..64,
// and sigemptyset + sigaddset (which refuses glibc's internal signals).
std::uint64_t to_bits_by_calls(const sigset_t& set) {
  std::uint64_t bits = 0;
  for (int sig = 1; sig <= 64; ++sig)
    if (sigismember(&set, sig) == 1) bits |= std::uint64_t{1} << (sig - 1);
  return bits;
}

sigset_t from_bits_by_calls(std::uint64_t bits) {
  sigset_t s;
  sigemptyset(&s);
  for (int sig = 1; sig <= 64; ++sig)
    if ((bits >> (sig - 1)) & 1) sigaddset(&s, sig);
  return s;
}

bool same_set(const sigset_t& a, const sigset_t& b) {
  for (int sig = 1; sig < NSIG; ++sig)
    if (sigismember(&a, sig) != sigismember(&b, sig)) return false;
  return true;
}

}  // namespace

TEST_CASE("sigset_to_bits and sigset_from_bits are sigismember and sigaddset, for every signal") {
  for (int sig = 1; sig <= 64; ++sig) {
    CAPTURE(sig);
    const std::uint64_t one = std::uint64_t{1} << (sig - 1);
    CHECK(same_set(sigset_from_bits(one), from_bits_by_calls(one)));
    sigset_t s;
    sigemptyset(&s);
    if (sigaddset(&s, sig) == 0) CHECK(sigset_to_bits(s) == one);  // 32, 33: glibc's own, refused
  }
  sigset_t full;
  sigfillset(&full);
  CHECK(sigset_to_bits(full) == to_bits_by_calls(full));
  CHECK(same_set(sigset_from_bits(~std::uint64_t{0}), full));
  std::mt19937_64 rng(5);
  for (int i = 0; i < 1000; ++i) {
    const std::uint64_t bits = rng();
    CAPTURE(bits);
    const sigset_t s = sigset_from_bits(bits);
    CHECK(same_set(s, from_bits_by_calls(bits)));
    CHECK(sigset_to_bits(s) == to_bits_by_calls(s));
    CHECK(sigset_to_bits(from_bits_by_calls(bits)) == to_bits_by_calls(from_bits_by_calls(bits)));
  }
}
