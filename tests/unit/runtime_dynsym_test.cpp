// runtime_dynsym_test — the batch RTLD_NEXT lookup (runtime/rt_dynsym.h) against dlsym
// itself, from this executable (the objects after it: libc and the rest of its libraries).
#include <doctest/doctest.h>

#include <cstddef>
#include <cstring>
#include <dlfcn.h>
#include <iterator>

#include "runtime/rt_dynsym.h"

namespace {

// Every name the shim resolves at load (libc_shim: shim_vslock.cpp, shim_fork.cpp,
// shim_thread.cpp, shim_signal.cpp, shim_signal_stack.cpp).
constexpr const char* kShimNames[] = {
    "read", "write", "pread64", "pwrite64", "readv", "writev", "preadv64", "pwritev64", "preadv64v2", "pwritev64v2",
    "recv", "recvfrom", "recvmsg", "send", "sendto", "sendmsg", "getdents64", "fwrite", "fread", "fputs", "puts",
    "fgets", "fflush", "fwrite_unlocked", "fread_unlocked", "fputs_unlocked", "fgets_unlocked", "fflush_unlocked",
    "fclose", "vfprintf", "__vfprintf_chk", "execvpe", "fexecve", "pthread_create", "sigaltstack", "pthread_sigmask",
    "sigprocmask"};

int anchor() { return 0; }

}  // namespace

TEST_CASE("every name the shim wraps resolves here, to what dlsym(RTLD_NEXT) returns") {
  const link_map* self = vmrt::rt::dynsym_object_of(reinterpret_cast<const void*>(&anchor));
  REQUIRE(self != nullptr);
  constexpr std::size_t n = std::size(kShimNames);
  void* got[n];
  std::size_t unresolved = 99;
  vmrt::rt::dynsym_next(self, kShimNames, got, n, &unresolved);
  CHECK(unresolved == 0);
  for (std::size_t i = 0; i < n; ++i) {
    INFO(kShimNames[i]);
    CHECK(got[i] != nullptr);
    CHECK(got[i] == dlsym(RTLD_NEXT, kShimNames[i]));
  }
}

TEST_CASE("versioned, indirect, data and missing names: dlsym's answer or none") {
  const link_map* self = vmrt::rt::dynsym_object_of(reinterpret_cast<const void*>(&anchor));
  REQUIRE(self != nullptr);
  // pthread_cond_wait and realpath: a default version and an older, hidden one (dlsym takes
  // the default); memcpy and strlen: indirect functions in glibc (left to dlsym), plain ones
  // where a sanitizer's runtime, loaded first, defines them; stdout and environ: data; the
  // last: defined nowhere.
  constexpr const char* kNames[] = {"pthread_cond_wait", "realpath", "memcpy", "strlen", "stdout", "environ",
                                    "vmrt_dynsym_test_no_such_symbol"};
  constexpr std::size_t n = std::size(kNames);
  void* got[n];
  std::size_t unresolved = 0;
  vmrt::rt::dynsym_next(self, kNames, got, n, &unresolved);
  CHECK(got[0] != nullptr);
  CHECK(got[1] != nullptr);
  std::size_t indirect = 0;
  for (std::size_t i : {std::size_t{2}, std::size_t{3}}) {
    INFO(kNames[i]);
    const link_map* owner = vmrt::rt::dynsym_object_of(dlsym(RTLD_NEXT, kNames[i]));
    REQUIRE(owner != nullptr);
    const bool in_libc = owner->l_name != nullptr && std::strstr(owner->l_name, "libc.so") != nullptr;
    if (in_libc) CHECK(got[i] == nullptr);  // glibc's is indirect: the resolver's choice is dlsym's
    indirect += in_libc ? 1 : 0;
  }
  CHECK(got[4] != nullptr);
  CHECK(got[5] != nullptr);
  CHECK(got[6] == nullptr);
  CHECK(unresolved == 1 + indirect);
  for (std::size_t i = 0; i < n; ++i) {
    INFO(kNames[i]);
    if (got[i] != nullptr) CHECK(got[i] == dlsym(RTLD_NEXT, kNames[i]));
  }
  CHECK(dlsym(RTLD_NEXT, kNames[6]) == nullptr);
}

TEST_CASE("an object found by its load address is the one dladdr names") {
  const link_map* self = vmrt::rt::dynsym_object_of(reinterpret_cast<const void*>(&anchor));
  REQUIRE(self != nullptr);
  CHECK(vmrt::rt::dynsym_object_at(reinterpret_cast<const void*>(self->l_addr)) == self);
  const link_map* libc = vmrt::rt::dynsym_object_of(dlsym(RTLD_DEFAULT, "fwrite"));
  REQUIRE(libc != nullptr);
  CHECK(libc != self);
  CHECK(vmrt::rt::dynsym_object_at(reinterpret_cast<const void*>(libc->l_addr)) == libc);
}

TEST_CASE("nothing after the last object, and no object at all") {
  const link_map* last = vmrt::rt::dynsym_object_of(reinterpret_cast<const void*>(&anchor));
  REQUIRE(last != nullptr);
  while (last->l_next != nullptr) last = last->l_next;
  const char* names[] = {"read"};
  void* got[1] = {reinterpret_cast<void*>(1)};
  std::size_t unresolved = 0;
  vmrt::rt::dynsym_next(last, names, got, 1, &unresolved);
  CHECK(got[0] == nullptr);
  CHECK(unresolved == 1);
  got[0] = reinterpret_cast<void*>(1);
  vmrt::rt::dynsym_next(nullptr, names, got, 1, &unresolved);
  CHECK(got[0] == nullptr);
  CHECK(unresolved == 1);
}
