// guest_bench — what a guest call costs (issue 10), side by side in one run:
//   direct   a direct call of a trivial host function (noinline)
//   ffi      ffi_call of the same host function with a prepared cif (the floor a
//            libffi-based guest call can reach)
//   invoke   vmrt_guest_invoke of the guest's trivial(int) (prepared: lookup and cif
//            done once), on the guest's stack, faults caught
//   call     vmrt_guest_call of the same (lookup + ffi_prep_cif on every call)
// and what loading costs: vmrt_guest_load + destroy of the example guest against
// dlopen(RTLD_NOW) + dlclose of the same file; and what a warm image costs: restoring
// a guest with a touched 1 MB / 64 MB heap from its snapshot after a call wrote 1, 16 or
// 256 pages of it, against host fork() of a process with the same heap and against
// loading and warming the guest afresh; and what a fork of the warm guest costs
// (vmrt_guest_fork) against host fork(), and a switch between the parent and the child.
//
//   guest_bench [--rounds N] [records.so]
// Prints a table, then `metric NAME VALUE` lines: guest_invoke_vs_ffi,
// guest_call_vs_ffi, guest_invoke_ns, ffi_ns, direct_ns, guest_load_vs_dlopen,
// guest_restore_{1,64}m_{1,16,256}p_{us,host_fork_over_restore,fresh_load_over_restore},
// guest_fork_{1,64}m_{us,host_fork_over_fork,switch_{1,16}p_us}.
// Target (issue 10): invoke within 2x of the plain libffi call.
#include <dlfcn.h>
#include <ffi.h>

#include "bench/bench_common.h"
#include "runtime/vmrt.h"

#ifndef VMRT_EXAMPLE_GUEST
#define VMRT_EXAMPLE_GUEST "records.so"
#endif

namespace {

extern "C" __attribute__((noinline)) int host_trivial(int x) {
  asm volatile("" ::: "memory");
  return x;
}

constexpr int kCalls = 200000;

template <class F> double ns_per_call(F&& f) {
  std::uint64_t t0 = bench::now_ns();
  for (int i = 0; i < kCalls; ++i) f(i);
  return double(bench::now_ns() - t0) / kCalls;
}

}  // namespace

int main(int argc, char** argv) {
  int rounds = 7;
  std::string path = VMRT_EXAMPLE_GUEST;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--rounds" && i + 1 < argc) rounds = std::atoi(argv[++i]);
    else path = a;
  }
  vmrt_guest* g = nullptr;
  char err[512];
  if (vmrt_guest_load(path.c_str(), nullptr, &g, err, sizeof err) != 0) {
    std::fprintf(stderr, "guest_bench: %s\n", err);
    return 1;
  }
  vmrt_guest_func* f = vmrt_guest_prepare(g, "trivial", "i(i)");
  if (f == nullptr) {
    std::fprintf(stderr, "guest_bench: %s has no trivial(int)\n", path.c_str());
    return 1;
  }
  ffi_cif cif;
  ffi_type* at[1] = {&ffi_type_sint32};
  ffi_prep_cif(&cif, FFI_DEFAULT_ABI, 1, &ffi_type_sint32, at);

  std::vector<double> direct, ffi, invoke, call, load, dl;
  volatile long sink = 0;
  for (int r = 0; r < rounds; ++r) {
    direct.push_back(ns_per_call([&](int i) { sink = sink + host_trivial(i); }));
    ffi.push_back(ns_per_call([&](int i) {
      int x = i;
      void* av[1] = {&x};
      ffi_arg rv;
      ffi_call(&cif, FFI_FN(host_trivial), &rv, av);
      sink = sink + static_cast<int>(rv);
    }));
    invoke.push_back(ns_per_call([&](int i) {
      vmrt_guest_value a, rv;
      a.i = i;
      if (vmrt_guest_invoke(f, &a, &rv, nullptr) != VMRT_GUEST_OK) std::abort();
      sink = sink + rv.i;
    }));
    call.push_back(ns_per_call([&](int i) {
      vmrt_guest_value a, rv;
      a.i = i;
      if (vmrt_guest_call(g, "trivial", "i(i)", &a, &rv, nullptr) != VMRT_GUEST_OK) std::abort();
      sink = sink + rv.i;
    }));
    // Loading: 20 of each per round.
    constexpr int kLoads = 20;
    std::uint64_t t0 = bench::now_ns();
    for (int k = 0; k < kLoads; ++k) {
      vmrt_guest* h = nullptr;
      if (vmrt_guest_load(path.c_str(), nullptr, &h, err, sizeof err) != 0) std::abort();
      vmrt_guest_destroy(h);
    }
    load.push_back(double(bench::now_ns() - t0) / kLoads / 1000.0);
    t0 = bench::now_ns();
    for (int k = 0; k < kLoads; ++k) {
      void* h = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
      if (h == nullptr) {
        std::fprintf(stderr, "dlopen: %s\n", dlerror());
        return 1;
      }
      dlclose(h);
    }
    dl.push_back(double(bench::now_ns() - t0) / kLoads / 1000.0);
  }
  vmrt_guest_destroy(g);

  // Warm images: a guest with a touched heap of 1 MB / 64 MB, snapshotted, then each
  // round: a call writes `touch` pages of its table (untimed), and the restore is timed.
  // Against host fork() of a process with the same touched heap (fork + child exit +
  // wait: what a process-per-request server pays) and against loading and warming the
  // guest afresh.
  struct warm_row {
    int mb, touch;
    double restore_us, fork_us, fresh_us, dropped;
  };
  std::vector<warm_row> warm;
  struct fork_row {
    int mb, touch;
    double fork_us, destroy_us, switch_us, same_us, host_fork_us;
  };
  std::vector<fork_row> forks;
  for (int mb : {1, 64}) {
    size_t bytes = size_t(mb) << 20;
    vmrt_guest_options o{};
    o.memory_limit = bytes + (16u << 20);
    vmrt_guest* w = nullptr;
    if (vmrt_guest_load(path.c_str(), &o, &w, err, sizeof err) != 0) {
      std::fprintf(stderr, "guest_bench: %s\n", err);
      return 1;
    }
    vmrt_guest_value a, rv;
    a.i = static_cast<int64_t>(bytes);
    if (vmrt_guest_call(w, "build_table", "l(l)", &a, &rv, nullptr) != VMRT_GUEST_OK || rv.i != a.i) std::abort();
    if (vmrt_guest_snapshot(w) != 0) std::abort();
    std::vector<double> fs, ls;
    int n = mb == 1 ? 50 : 20;
    std::vector<unsigned char> heap(bytes);
    for (size_t k = 0; k < bytes; k += 4096) heap[k] = static_cast<unsigned char>(k);
    for (int k = 0; k < n; ++k) {
      std::uint64_t t0 = bench::now_ns();
      pid_t pid = fork();
      if (pid == 0) _exit(heap[4096] == 7 ? 1 : 0);
      int st;
      waitpid(pid, &st, 0);
      fs.push_back(double(bench::now_ns() - t0) / 1000.0);
    }
    for (int k = 0; k < (mb == 1 ? 10 : 3); ++k) {
      std::uint64_t t0 = bench::now_ns();
      vmrt_guest* h = nullptr;
      if (vmrt_guest_load(path.c_str(), &o, &h, err, sizeof err) != 0) std::abort();
      if (vmrt_guest_call(h, "build_table", "l(l)", &a, &rv, nullptr) != VMRT_GUEST_OK) std::abort();
      ls.push_back(double(bench::now_ns() - t0) / 1000.0);
      vmrt_guest_destroy(h);
    }
    for (int touch : {1, 16, 256}) {
      std::vector<double> rs, dropped;
      for (int k = 0; k < n; ++k) {
        vmrt_guest_value t;
        t.i = touch;
        if (vmrt_guest_call(w, "table_touch", "l(l)", &t, &rv, nullptr) != VMRT_GUEST_OK || rv.i != touch) std::abort();
        std::uint64_t t0 = bench::now_ns();
        if (vmrt_guest_restore(w) != 0) std::abort();
        rs.push_back(double(bench::now_ns() - t0) / 1000.0);
        vmrt_guest_restore_info ri{};
        vmrt_guest_restore_info_get(w, &ri);
        dropped.push_back(double(ri.pages_dropped + ri.pages_copied));
      }
      // The restored guest still works on its warm table.
      if (vmrt_guest_call(w, "table_sum", "l()", nullptr, &rv, nullptr) != VMRT_GUEST_OK) std::abort();
      warm.push_back({mb, touch, bench::median(rs), bench::median(fs), bench::median(ls), bench::median(dropped)});
    }
    // Forks of the warm guest: vmrt_guest_fork, then destroy; and the switch between a
    // parent and its child when each writes `touch` pages of the table per call (the
    // switch removes the translations of the pages either side wrote since the fork).
    std::vector<double> fk, ds;
    for (int k = 0; k < n; ++k) {
      std::uint64_t t0 = bench::now_ns();
      vmrt_guest* c = vmrt_guest_fork(w);
      std::uint64_t t1 = bench::now_ns();
      if (c == nullptr) std::abort();
      vmrt_guest_destroy(c);
      fk.push_back(double(t1 - t0) / 1000.0);
      ds.push_back(double(bench::now_ns() - t1) / 1000.0);
    }
    for (int touch : {1, 16}) {
      vmrt_guest* c = vmrt_guest_fork(w);
      if (c == nullptr) std::abort();
      vmrt_guest_func* fp = vmrt_guest_prepare(w, "trivial", "i(i)");
      vmrt_guest_func* fc = vmrt_guest_prepare(c, "trivial", "i(i)");
      std::vector<double> sw, same;
      vmrt_guest_value t, x;
      t.i = touch;
      x.i = 1;
      for (int k = 0; k < n; ++k) {
        for (vmrt_guest* m : {w, c})
          if (vmrt_guest_call(m, "table_touch", "l(l)", &t, &rv, nullptr) != VMRT_GUEST_OK) std::abort();
        // c is installed now: calling w switches, calling w again does not.
        std::uint64_t t0 = bench::now_ns();
        if (vmrt_guest_invoke(fp, &x, &rv, nullptr) != VMRT_GUEST_OK) std::abort();
        std::uint64_t t1 = bench::now_ns();
        if (vmrt_guest_invoke(fp, &x, &rv, nullptr) != VMRT_GUEST_OK) std::abort();
        std::uint64_t t2 = bench::now_ns();
        if (vmrt_guest_invoke(fc, &x, &rv, nullptr) != VMRT_GUEST_OK) std::abort();
        sw.push_back(double(t1 - t0) / 1000.0);
        same.push_back(double(t2 - t1) / 1000.0);
      }
      vmrt_guest_destroy(c);
      forks.push_back({mb, touch, bench::median(fk), bench::median(ds), bench::median(sw), bench::median(same),
                       bench::median(fs)});
    }
    vmrt_guest_destroy(w);
  }

  double d = bench::median(direct), fi = bench::median(ffi), iv = bench::median(invoke), c = bench::median(call);
  double l = bench::median(load), dlo = bench::median(dl);
  std::printf("guest call overhead, trivial int(int), medians of %d rounds x %d calls (ns/call)\n", rounds, kCalls);
  std::printf("  %-34s %8.1f\n", "direct host call", d);
  std::printf("  %-34s %8.1f\n", "ffi_call of a host function", fi);
  std::printf("  %-34s %8.1f   %.2fx ffi\n", "vmrt_guest_invoke (prepared)", iv, iv / fi);
  std::printf("  %-34s %8.1f   %.2fx ffi\n", "vmrt_guest_call (by name)", c, c / fi);
  std::printf("load + unload of %s, medians (us)\n", path.c_str());
  std::printf("  %-34s %8.1f\n", "dlopen(RTLD_NOW) + dlclose", dlo);
  std::printf("  %-34s %8.1f   %.2fx dlopen\n", "vmrt_guest_load + destroy", l, l / dlo);
  std::printf("warm guest restore after a call wrote N pages of its table, vs host fork()+exit+wait of a process with\n"
              "the same heap, vs load+warm afresh; medians (us); 'private': pages the restore copied back or dropped (table + stack)\n");
  std::printf("  %-8s %6s %8s %10s %10s %12s %13s %14s\n", "heap", "N", "private", "restore", "host fork", "fresh",
              "restore/fork", "restore/fresh");
  for (const warm_row& r : warm)
    std::printf("  %5d MB %6d %8.0f %10.1f %10.1f %12.1f %13.4f %14.5f\n", r.mb, r.touch, r.dropped, r.restore_us,
                r.fork_us, r.fresh_us, r.restore_us / r.fork_us, r.restore_us / r.fresh_us);
  std::printf("guest fork (vmrt_guest_fork of the warm guest; destroy), and the switch between parent and child\n"
              "(a trivial call of the parent right after one of the child, each having written N pages per call,\n"
              "against the same call again without a switch), medians (us)\n");
  std::printf("  %-8s %4s %9s %9s %10s %10s %10s %12s\n", "heap", "N", "fork", "destroy", "switch", "no switch",
              "host fork", "fork/host");
  for (const fork_row& r : forks)
    std::printf("  %5d MB %4d %9.1f %9.1f %10.1f %10.2f %10.1f %12.4f\n", r.mb, r.touch, r.fork_us, r.destroy_us,
                r.switch_us, r.same_us, r.host_fork_us, r.fork_us / r.host_fork_us);
  bench::print_metric("metric direct_ns", d);
  bench::print_metric("metric ffi_ns", fi);
  bench::print_metric("metric guest_invoke_ns", iv);
  bench::print_metric("metric guest_invoke_vs_ffi", iv / fi);
  bench::print_metric("metric guest_call_vs_ffi", c / fi);
  bench::print_metric("metric guest_load_us", l);
  bench::print_metric("metric guest_load_vs_dlopen", l / dlo);
  for (const warm_row& r : warm) {
    std::string m = "metric guest_restore_" + std::to_string(r.mb) + "m_" + std::to_string(r.touch) + "p_";
    bench::print_metric(m + "us", r.restore_us);
    bench::print_metric(m + "host_fork_over_restore", r.fork_us / r.restore_us);  // (restore is the small one)
    bench::print_metric(m + "fresh_load_over_restore", r.fresh_us / r.restore_us);
  }
  for (const fork_row& r : forks) {
    std::string m = "metric guest_fork_" + std::to_string(r.mb) + "m_";
    if (r.touch == 1) {
      bench::print_metric(m + "us", r.fork_us);
      bench::print_metric(m + "host_fork_over_fork", r.host_fork_us / r.fork_us);
    }
    bench::print_metric(m + "switch_" + std::to_string(r.touch) + "p_us", r.switch_us);
  }
  return sink == 42 ? 0 : 0;
}
