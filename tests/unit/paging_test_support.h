// paging_test_support.h — helpers the paging tests through the C API share (api_paging_test,
// api_madvise_pageout_test): pages filled with a word per page that tells them apart, the
// check that every one came back, and a counter's growth.
#pragma once

#include <doctest/doctest.h>

#include <cstddef>
#include <cstdint>
#include <sys/mman.h>

#include "runtime/vmrt.h"

namespace ptt {

constexpr std::size_t kPage = 4096;

// The word page i of a range filled with `salt` holds at its start (its complement at its end).
inline std::uint64_t word(std::size_t i, unsigned salt) {
  return (i * 2654435761u) ^ (std::uint64_t{salt} << 40) ^ 0x5a5a5a5aull;
}

// A private anonymous mapping of `pages` pages in vs, each written with its words.
inline char* map_filled(vmrt_vmspace* vs, std::size_t pages, unsigned salt) {
  char* p = static_cast<char*>(vmrt_mmap(vs, nullptr, pages * kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  REQUIRE(p != VMRT_MAP_FAILED);
  for (std::size_t i = 0; i < pages; ++i) {
    auto* w = reinterpret_cast<std::uint64_t*>(p + i * kPage);
    w[0] = word(i, salt);
    w[511] = ~word(i, salt);
  }
  return p;
}

// Pages of a map_filled range whose words are wrong (or whose word 9, never written, is not 0).
inline std::size_t bad_pages(const char* p, std::size_t pages, unsigned salt) {
  std::size_t bad = 0;
  for (std::size_t i = 0; i < pages; ++i) {
    auto* w = reinterpret_cast<const std::uint64_t*>(p + i * kPage);
    bad += w[0] != word(i, salt) || w[511] != ~word(i, salt) || w[9] != 0;
  }
  return bad;
}

// A vmspace of `bytes` (vmrt booted).
inline vmrt_vmspace* new_vmspace(std::size_t bytes) {
  REQUIRE(vmrt_init() == 0);
  vmrt_vmspace* vs = vmrt_vmspace_create(bytes);
  REQUIRE(vs != nullptr);
  return vs;
}

// A counter's growth since this was made.
struct since {
  const char* name;
  long long base;
  explicit since(const char* n) : name(n), base(vmrt_counter(n)) {}
  long long operator()() const { return vmrt_counter(name) - base; }
};

}  // namespace ptt
