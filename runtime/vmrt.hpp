// vmrt.hpp — a small RAII wrapper over the C API (runtime/vmrt.h).
//
//   vmrt::space s(64 << 20);           // vmrt_vmspace_create
//   void* p = s.mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
//   vmrt::space child = s.fork();      // vmrt_vmspace_fork
//   // destroyed at scope exit
#pragma once

#include <cstddef>
#include <utility>

#include "vmrt.h"

namespace vmrt {

class space {
 public:
  explicit space(size_t size) : vs_(vmrt_vmspace_create(size)) {}
  ~space() { reset(); }
  space(space&& o) noexcept : vs_(std::exchange(o.vs_, nullptr)) {}
  space& operator=(space&& o) noexcept {
    if (this != &o) {
      reset();
      vs_ = std::exchange(o.vs_, nullptr);
    }
    return *this;
  }
  space(const space&) = delete;
  space& operator=(const space&) = delete;

  explicit operator bool() const { return vs_ != nullptr; }
  vmrt_vmspace* get() const { return vs_; }
  void* base() const { return vmrt_vmspace_base(vs_); }
  size_t size() const { return vmrt_vmspace_size(vs_); }

  void* mmap(void* addr, size_t len, int prot, int flags, int fd = -1, off_t off = 0) {
    return vmrt_mmap(vs_, addr, len, prot, flags, fd, off);
  }
  int munmap(void* addr, size_t len) { return vmrt_munmap(vs_, addr, len); }
  int mprotect(void* addr, size_t len, int prot) { return vmrt_mprotect(vs_, addr, len, prot); }
  int madvise(void* addr, size_t len, int advice) { return vmrt_madvise(vs_, addr, len, advice); }
  // A copy-on-write child (empty space on failure: check with operator bool).
  space fork() const { return space(vmrt_vmspace_fork(vs_)); }
  // The address in `to` of the byte at addr in this space.
  template <class T> T* translate(const space& to, T* addr) const {
    return static_cast<T*>(vmrt_translate(vs_, to.vs_, addr));
  }
  void reset() {
    if (vs_ != nullptr) vmrt_vmspace_destroy(vs_);
    vs_ = nullptr;
  }

 private:
  explicit space(vmrt_vmspace* vs) : vs_(vs) {}
  vmrt_vmspace* vs_;
};

}  // namespace vmrt
