// vmrt.hpp — a small RAII wrapper over the C API (runtime/vmrt.h).
//
//   vmrt::space s(64 << 20);           // vmrt_vmspace_create
//   void* p = s.mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
//   vmrt::space child = s.fork();      // vmrt_vmspace_fork
//   // destroyed at scope exit
//
//   vmrt::guest g("lib.so");             // vmrt_guest_load (check with operator bool / error())
//   vmrt_guest_value r; vmrt_guest_trap t;
//   if (g.call("add", "i(ii)", {vmrt::ival(2), vmrt::ival(3)}, &r, &t) != VMRT_GUEST_OK) puts(t.message);
#pragma once

#include <cstddef>
#include <initializer_list>
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

inline vmrt_guest_value ival(int64_t v) {
  vmrt_guest_value x;
  x.i = v;
  return x;
}
inline vmrt_guest_value dval(double v) {
  vmrt_guest_value x;
  x.d = v;
  return x;
}
inline vmrt_guest_value pval(void* v) {
  vmrt_guest_value x;
  x.p = v;
  return x;
}

// A guest (vmrt_guest_load ... vmrt_guest_destroy); see vmrt.h, "guests".
class guest {
 public:
  explicit guest(const char* path, const vmrt_guest_options* opt = nullptr) {
    err_[0] = '\0';
    if (vmrt_guest_load(path, opt, &g_, err_, sizeof err_) != 0) g_ = nullptr;
  }
  ~guest() { vmrt_guest_destroy(g_); }
  guest(guest&& o) noexcept : g_(std::exchange(o.g_, nullptr)) { err_[0] = '\0'; }
  guest(const guest&) = delete;
  guest& operator=(const guest&) = delete;
  guest& operator=(guest&&) = delete;

  explicit operator bool() const { return g_ != nullptr; }
  vmrt_guest* get() const { return g_; }
  const char* error() const { return err_; }  // why the load failed
  vmrt_guest_status call(const char* name, const char* sig, std::initializer_list<vmrt_guest_value> args,
                         vmrt_guest_value* ret = nullptr, vmrt_guest_trap* trap = nullptr) {
    return vmrt_guest_call(g_, name, sig, args.begin(), ret, trap);
  }
  int snapshot() { return vmrt_guest_snapshot(g_); }
  int restore() { return vmrt_guest_restore(g_); }
  int reset() { return vmrt_guest_reset(g_, err_, sizeof err_); }

 private:
  vmrt_guest* g_ = nullptr;
  char err_[512];
};

}  // namespace vmrt
