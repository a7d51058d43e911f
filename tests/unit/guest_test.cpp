// guest_test.cpp — guests (issue 10): ELF shared objects loaded into a vmspace, called
// through libffi on a guest stack, their faults returned as errors.  Both trap backends.
// The guests are tests/unit/guests/*.c, built by tests/CMakeLists.txt into
// VMRT_TEST_GUESTS.  doctest replaces SIGILL/SIGFPE handlers around each test case, so
// every test case loads (and destroys) its own guests.
#include <doctest/doctest.h>

#include <atomic>
#include <elf.h>
#include <fstream>
#include <iterator>
#include <random>
#include <set>
#include <string>
#include <sys/mman.h>
#include <thread>
#include <vector>

#include "runtime/vmrt.hpp"
#include "vm/vmspace_revert.h"
#include "runtime_test_support.h"

RUNTIME_TESTS_UNDER_BOTH_BACKENDS()

namespace {

std::string guest_path(const char* name) { return std::string(VMRT_TEST_GUESTS) + "/" + name + ".so"; }

extern "C" int host_add(int a, int b) { return a + b + 1000; }

const vmrt_guest_import kImports[] = {{"host_add", reinterpret_cast<void*>(&host_add)}};

struct loaded {
  vmrt_guest* g = nullptr;
  char err[512] = {0};
  explicit loaded(const std::string& path, vmrt_guest_options o = {}) {
    if (o.imports == nullptr) {
      o.imports = kImports;
      o.nimports = 1;
    }
    if (vmrt_guest_load(path.c_str(), &o, &g, err, sizeof err) != 0) g = nullptr;
  }
  ~loaded() { vmrt_guest_destroy(g); }
  loaded(const loaded&) = delete;
  loaded& operator=(const loaded&) = delete;
};

vmrt_guest_value I(int64_t v) {
  vmrt_guest_value x;
  x.i = v;
  return x;
}
vmrt_guest_value D(double v) {
  vmrt_guest_value x;
  x.d = v;
  return x;
}
vmrt_guest_value F(float v) {
  vmrt_guest_value x;
  x.i = 0;
  x.f = v;
  return x;
}
vmrt_guest_value P(const void* v) {
  vmrt_guest_value x;
  x.p = const_cast<void*>(v);
  return x;
}

// Call and require success; returns the value.
vmrt_guest_value call_ok(vmrt_guest* g, const char* name, const char* sig, std::vector<vmrt_guest_value> args = {}) {
  vmrt_guest_value r;
  r.i = -12345;
  vmrt_guest_trap t;
  vmrt_guest_status s = vmrt_guest_call(g, name, sig, args.data(), &r, &t);
  INFO(std::string(name), ": ", std::string(s == VMRT_GUEST_OK ? "ok" : t.message));
  REQUIRE(s == VMRT_GUEST_OK);
  return r;
}

std::vector<unsigned char> read_file(const std::string& p) {
  std::ifstream f(p, std::ios::binary);
  return std::vector<unsigned char>(std::istreambuf_iterator<char>(f), {});
}
std::string write_temp(const std::vector<unsigned char>& bytes, const char* tag) {
  std::string p = std::string("/tmp/vmrt_guest_test_") + tag + "_" + std::to_string(getpid()) + ".so";
  std::ofstream f(p, std::ios::binary);
  f.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  return p;
}

// The relocation entries of a file's SHT_RELA sections.
std::vector<Elf64_Rela*> relas(std::vector<unsigned char>& b) {
  std::vector<Elf64_Rela*> out;
  auto* eh = reinterpret_cast<Elf64_Ehdr*>(b.data());
  auto* sh = reinterpret_cast<Elf64_Shdr*>(b.data() + eh->e_shoff);
  for (int i = 0; i < eh->e_shnum; ++i) {
    if (sh[i].sh_type != SHT_RELA) continue;
    auto* r = reinterpret_cast<Elf64_Rela*>(b.data() + sh[i].sh_offset);
    for (size_t k = 0; k < sh[i].sh_size / sizeof(Elf64_Rela); ++k) out.push_back(&r[k]);
  }
  return out;
}

// Load must fail with a message containing `why`.
void refused(const std::string& path, const char* why) {
  loaded L(path);
  INFO("file: ", path, " want: ", std::string(why));
  CHECK(L.g == nullptr);
  INFO("message: ", L.err);
  CHECK(std::string(L.err).find(why) != std::string::npos);
}

// Frames, objects and map entries: what a leak would show.
struct vm_counts {
  long long free = vmrt_counter("pages free"), objects = vmrt_counter("objects current"),
            entries = vmrt_counter("map entries");
};
// The counts are back where `before` had them (free frames within a few: caches).
void check_counts_back(const vm_counts& before) {
  vm_counts now;
  MESSAGE("pages free ", before.free, " -> ", now.free, "; objects ", before.objects, " -> ", now.objects,
          "; map entries ", before.entries, " -> ", now.entries);
  CHECK(now.objects == before.objects);
  CHECK(now.entries == before.entries);
  CHECK(now.free >= before.free - 8);
}

}  // namespace

TEST_CASE("guest load: every relocation kind, init_array, data and bss; calls of every signature kind") {
  // The test guest must carry each supported kind, or this test proves nothing.
  std::vector<unsigned char> bytes = read_file(guest_path("basic"));
  REQUIRE(bytes.size() > 64);
  std::set<unsigned> kinds;
  for (Elf64_Rela* r : relas(bytes)) kinds.insert(static_cast<unsigned>(ELF64_R_TYPE(r->r_info)));
  CHECK(kinds.count(R_X86_64_RELATIVE) == 1);
  CHECK(kinds.count(R_X86_64_GLOB_DAT) == 1);
  CHECK(kinds.count(R_X86_64_JUMP_SLOT) == 1);
  CHECK(kinds.count(R_X86_64_64) == 1);

  loaded L(guest_path("basic"));
  INFO("load: ", std::string(L.err));
  REQUIRE(L.g != nullptr);
  vmrt_guest* g = L.g;
  CHECK(call_ok(g, "get_initialized", "i()").i == 42);                 // init_array ran
  CHECK(call_ok(g, "add", "i(ii)", {I(2), I(-5)}).i == -3);             // int
  CHECK(call_ok(g, "add_long", "l(ll)", {I(1LL << 40), I(7)}).i == (1LL << 40) + 7);
  CHECK(call_ok(g, "hypot2", "d(dd)", {D(3), D(4)}).d == doctest::Approx(25.0));
  CHECK(call_ok(g, "half", "f(f)", {F(5.0f)}).f == doctest::Approx(2.5f));
  CHECK(call_ok(g, "mix", "d(idlf)", {I(1), D(0.5), I(10), F(0.25f)}).d == doctest::Approx(11.75));
  std::vector<vmrt_guest_value> sixteen;
  for (int i = 1; i <= 16; ++i) sixteen.push_back(I(i));
  CHECK(call_ok(g, "sum16", "l(llllllllllllllll)", sixteen).i == 136);
  // Variadic (a '.' starts the variadic arguments; rax carries the vector-register count).
  CHECK(call_ok(g, "vsum", "l(i.lll)", {I(3), I(10), I(20), I(1LL << 33)}).i == 30 + (1LL << 33));
  CHECK(call_ok(g, "vavg", "d(i.dddd)", {I(4), D(1), D(2), D(3), D(10)}).d == doctest::Approx(4.0));
  CHECK(call_ok(g, "vavg", "d(i.)", {I(0)}).d == 0.0);
  // Structs by value: the argument's .p points to its bytes; a struct result is written at ret.p.
  struct pt {
    long x;
    double y;
  } p1{5, 0.25}, p2{0, 0};
  struct big {
    long a, b, c;
  } b1{1, 2, 3}, b2{0, 0, 0};
  CHECK(call_ok(g, "pt_sum", "d({ld}i)", {P(&p1), I(100)}).d == doctest::Approx(105.25));
  CHECK(call_ok(g, "big_sum", "l({lll}i)", {P(&b1), I(1000)}).i == 1006);
  {
    vmrt_guest_value a[2] = {I(7), D(1.5)}, r;
    r.p = &p2;
    vmrt_guest_trap t;
    REQUIRE(vmrt_guest_call(g, "pt_make", "{ld}(ld)", a, &r, &t) == VMRT_GUEST_OK);
    CHECK(p2.x == 14);
    CHECK(p2.y == 3.0);
    r.p = &b2;
    REQUIRE(vmrt_guest_call(g, "big_make", "{lll}(l)", a, &r, &t) == VMRT_GUEST_OK);  // returned through memory
    CHECK(b2.a == 7);
    CHECK(b2.c == 9);
    r.p = nullptr;
    CHECK(vmrt_guest_call(g, "big_make", "{lll}(l)", a, &r, &t) == VMRT_GUEST_BAD_ARGUMENT);  // no buffer
    CHECK(vmrt_guest_call(g, "big_make", "{lll(l)", a, &r, &t) == VMRT_GUEST_BAD_SIGNATURE);
    CHECK(vmrt_guest_call(g, "big_make", "{}(l)", a, &r, &t) == VMRT_GUEST_BAD_SIGNATURE);
  }
  CHECK(call_ok(g, "call_host", "i(ii)", {I(2), I(3)}).i == 10050);      // JUMP_SLOT to the import
  CHECK(call_ok(g, "call_host_ptr", "i(ii)", {I(2), I(3)}).i == 1005);   // R_X86_64_64 to the import
  CHECK(call_ok(g, "read_counter", "i()").i == 10);                      // GLOB_DAT + R_X86_64_64 to data
  CHECK(call_ok(g, "bss_sum", "l()").i == 0);                            // bss zero
  CHECK(call_ok(g, "bss_sum", "l()").i == 1);                            // ... and writable
  // RELATIVE: a pointer table in relro; the string read back through copy_out.
  void* s = call_ok(g, "name_of", "p(i)", {I(2)}).p;
  char buf[8] = {0};
  REQUIRE(vmrt_guest_copy_out(g, buf, s, 4) == 0);
  CHECK(std::string(buf) == "two");
  CHECK(call_ok(g, "name_len", "l(i)", {I(1)}).i == 3);  // strlen from the guest libc
  // Pointer arguments: a buffer copied into guest memory.
  const char text[] = "the quick brown fox";
  void* gb = vmrt_guest_malloc(g, sizeof text);
  REQUIRE(gb != nullptr);
  REQUIRE(vmrt_guest_copy_in(g, gb, text, sizeof text) == 0);
  uint64_t h = 1469598103934665603ULL;
  for (size_t i = 0; i < sizeof text - 1; ++i) h = (h ^ static_cast<unsigned char>(text[i])) * 1099511628211ULL;
  CHECK(call_ok(g, "checksum", "l(pl)", {P(gb), I(sizeof text - 1)}).i == static_cast<int64_t>(h & 0x7fffffffffffffffULL));
  vmrt_guest_free(g, gb);
  // The guest's malloc: memory inside its vmspace.
  void* m = call_ok(g, "make_buffer", "p(li)", {I(100000), I('z')}).p;
  char* base = static_cast<char*>(vmrt_vmspace_base(vmrt_guest_vmspace(g)));
  CHECK(static_cast<char*>(m) >= base);
  CHECK(static_cast<char*>(m) < base + vmrt_vmspace_size(vmrt_guest_vmspace(g)));
  char z[4];
  REQUIRE(vmrt_guest_copy_out(g, z, static_cast<char*>(m) + 99996, 4) == 0);
  CHECK(std::string(z, 4) == "zzzz");
  call_ok(g, "drop_buffer", "v(p)", {P(m)});
  // Prepared calls give the same results.
  vmrt_guest_func* f = vmrt_guest_prepare(g, "add", "i(ii)");
  REQUIRE(f != nullptr);
  vmrt_guest_value args[2] = {I(20), I(22)}, r;
  CHECK(vmrt_guest_invoke(f, args, &r, nullptr) == VMRT_GUEST_OK);
  CHECK(r.i == 42);
  CHECK(vmrt_guest_symbol(g, "add") != nullptr);
  CHECK(vmrt_guest_symbol(g, "guest_init") == nullptr);  // static: not exported
  // Bad calls.
  vmrt_guest_trap t;
  CHECK(vmrt_guest_call(g, "no_such", "i()", nullptr, &r, &t) == VMRT_GUEST_NO_SUCH_FUNCTION);
  CHECK(std::string(t.message).find("no_such") != std::string::npos);
  CHECK(vmrt_guest_call(g, "add", "i(ix)", args, &r, &t) == VMRT_GUEST_BAD_SIGNATURE);
  CHECK(vmrt_guest_call(g, "add", "i(ii", args, &r, &t) == VMRT_GUEST_BAD_SIGNATURE);
  CHECK(vmrt_guest_call(g, "add", "i(v)", args, &r, &t) == VMRT_GUEST_BAD_SIGNATURE);
  CHECK(vmrt_guest_call(g, "vavg", "d(i.f)", args, &r, &t) == VMRT_GUEST_BAD_SIGNATURE);  // floats promote
}

TEST_CASE("guest load: segment protections (procstat) and text/relro are not writable from the host side either") {
  loaded L(guest_path("basic"));
  REQUIRE(L.g != nullptr);
  char path[] = "/tmp/vmrt_guest_procstat_XXXXXX";
  int fd = mkstemp(path);
  REQUIRE(fd >= 0);
  vmrt_report_procstat(vmrt_guest_vmspace(L.g), fd);
  close(fd);
  std::vector<unsigned char> b = read_file(path);
  unlink(path);
  std::string rep(b.begin(), b.end());
  MESSAGE(rep);
  CHECK(rep.find("r-x") != std::string::npos);  // text
  CHECK(rep.find("r--") != std::string::npos);  // relro / rodata
  CHECK(rep.find("rw-") != std::string::npos);  // data, bss, heap, stack
  // copy_in refuses to write the text (a fault caught, EFAULT), and the guest still runs.
  void* text = vmrt_guest_symbol(L.g, "add");
  REQUIRE(text != nullptr);
  char junk[4] = {0};
  errno = 0;
  CHECK(vmrt_guest_copy_in(L.g, text, junk, 4) == -1);
  CHECK(errno == EFAULT);
  CHECK(vmrt_guest_copy_in(L.g, reinterpret_cast<void*>(16), junk, 4) == -1);
  CHECK(call_ok(L.g, "add", "i(ii)", {I(1), I(2)}).i == 3);
}

TEST_CASE("guest load: refusals say why") {
  std::vector<unsigned char> good = read_file(guest_path("basic"));
  REQUIRE(good.size() > 64);
  {
    std::vector<unsigned char> txt = {'h', 'e', 'l', 'l', 'o', '\n'};
    std::string p = write_temp(txt, "text");
    refused(p, "not an ELF file");
    unlink(p.c_str());
  }
  refused("/nonexistent/guest.so", "cannot open");
  {
    std::vector<unsigned char> b = good;
    b[EI_CLASS] = ELFCLASS32;
    std::string p = write_temp(b, "class");
    refused(p, "wrong class: ELFCLASS32");
    unlink(p.c_str());
  }
  {
    std::vector<unsigned char> b = good;
    reinterpret_cast<Elf64_Ehdr*>(b.data())->e_machine = EM_AARCH64;
    std::string p = write_temp(b, "machine");
    refused(p, "wrong machine: e_machine 183");
    unlink(p.c_str());
  }
  {
    std::vector<unsigned char> b = good;
    reinterpret_cast<Elf64_Ehdr*>(b.data())->e_type = ET_EXEC;
    std::string p = write_temp(b, "exec");
    refused(p, "not position independent: ET_EXEC");
    unlink(p.c_str());
  }
  {
    std::vector<unsigned char> b = good;
    std::vector<Elf64_Rela*> rs = relas(b);
    REQUIRE(!rs.empty());
    rs[0]->r_info = ELF64_R_INFO(ELF64_R_SYM(rs[0]->r_info), R_X86_64_PC32);
    std::string p = write_temp(b, "reloc");
    refused(p, "unknown relocation R_X86_64_PC32");
    unlink(p.c_str());
  }
  {
    std::vector<unsigned char> b = good;
    std::vector<Elf64_Rela*> rs = relas(b);
    REQUIRE(!rs.empty());
    rs[0]->r_info = ELF64_R_INFO(ELF64_R_SYM(rs[0]->r_info), R_X86_64_TPOFF64);
    std::string p = write_temp(b, "tlsreloc");
    refused(p, "thread-local storage relocation R_X86_64_TPOFF64");
    unlink(p.c_str());
  }
  refused(guest_path("tls_ie"), "thread-local storage relocation R_X86_64_TPOFF64 is not supported");
  refused(guest_path("missing"), "missing import: no_such_host_function_xyz");
  refused(guest_path("initfault"), "null dereference");
  {
    loaded L(guest_path("basic"), vmrt_guest_options{0, 0, 0, nullptr, 0});
    // kImports are supplied by `loaded` when none are given: load without them by hand.
    vmrt_guest* g = nullptr;
    char err[256];
    vmrt_guest_options o{};
    CHECK(vmrt_guest_load(guest_path("basic").c_str(), &o, &g, err, sizeof err) == -1);
    CHECK(std::string(err).find("missing import: host_add") != std::string::npos);
  }
}

TEST_CASE("guest faults are errors; the host calls again") {
  loaded L(guest_path("faults"), vmrt_guest_options{0, 256 * 1024, 200, nullptr, 0});
  INFO("load: ", std::string(L.err));
  REQUIRE(L.g != nullptr);
  vmrt_guest* g = L.g;
  struct expect {
    const char* fn;
    const char* sig;
    std::vector<vmrt_guest_value> args;
    vmrt_guest_status kind;
    const char* symbol;  // the faulting function ("" when the pc is host code)
  };
  int host_word = 0;
  char* base = static_cast<char*>(vmrt_vmspace_base(vmrt_guest_vmspace(g)));
  size_t size = vmrt_vmspace_size(vmrt_guest_vmspace(g));
  REQUIRE(vmrt_guest_symbol(g, "relro_ptr") != nullptr);
  std::vector<expect> cases = {
      {"null_read", "i()", {}, VMRT_GUEST_NULL_DEREF, "null_read"},
      {"null_write", "v()", {}, VMRT_GUEST_NULL_DEREF, "null_write"},
      {"write_text", "v()", {}, VMRT_GUEST_WRITE_PROTECTED, "write_text"},
      {"write_at", "v(p)", {P(vmrt_guest_symbol(g, "relro_ptr"))}, VMRT_GUEST_WRITE_PROTECTED, "write_at"},
      {"overflow", "i()", {}, VMRT_GUEST_STACK_OVERFLOW, "recurse"},
      {"illegal", "v()", {}, VMRT_GUEST_ILLEGAL_INSTRUCTION, "illegal"},
      {"divide", "i(ii)", {I(7), I(0)}, VMRT_GUEST_DIVIDE_BY_ZERO, "divide"},
      {"spin", "v()", {}, VMRT_GUEST_TIMEOUT, "spin"},
      {"use_after_unmap", "i()", {}, VMRT_GUEST_BAD_ACCESS, "use_after_unmap"},
      // In vmrt's region but past the guest's window (nothing there: vmrt sees it).
      {"read_at", "i(p)", {P(base + size + (64u << 20))}, VMRT_GUEST_WILD_ACCESS, "read_at"},
      {"call_abort", "v()", {}, VMRT_GUEST_ABORT, "call_abort"},
      // In host code (the guest libc's strlen): named by the guest's call site.
      {"strlen_of", "l(p)", {P(nullptr)}, VMRT_GUEST_NULL_DEREF, "strlen_of"},
      {"bad_free", "v()", {}, VMRT_GUEST_HEAP_CORRUPTED, "bad_free"},
      {"memcpy_wild", "v(p)", {P(&host_word)}, VMRT_GUEST_WILD_ACCESS, "memcpy_wild"},
  };
  for (expect& e : cases) {
    vmrt_guest_value r;
    vmrt_guest_trap t;
    std::memset(&t, 0, sizeof t);
    vmrt_guest_status s = vmrt_guest_call(g, e.fn, e.sig, e.args.data(), &r, &t);
    INFO(std::string(e.fn), " -> ", std::string(vmrt_guest_status_name(s)), ": ", std::string(t.message));
    CHECK(s == e.kind);
    CHECK(t.kind == e.kind);
    CHECK(std::string(t.symbol) == e.symbol);
    CHECK(std::string(t.message).find(vmrt_guest_status_name(e.kind)) != std::string::npos);
    MESSAGE((std::string(e.fn) + ": " + std::string(t.message)));
    // The host is fine and the guest answers again.
    CHECK(call_ok(g, "ok", "i(i)", {I(41)}).i == 42);
  }
  CHECK(host_word == 0);
  // The access that faulted is named.
  {
    vmrt_guest_trap t;
    vmrt_guest_value r;
    CHECK(vmrt_guest_call(g, "write_text", "v()", nullptr, &r, &t) == VMRT_GUEST_WRITE_PROTECTED);
    CHECK(std::string(t.message).find("(write)") != std::string::npos);
    CHECK(vmrt_guest_call(g, "null_read", "i()", nullptr, &r, &t) == VMRT_GUEST_NULL_DEREF);
    CHECK(std::string(t.message).find("(read)") != std::string::npos);
    CHECK(t.addr == nullptr);
    CHECK(std::string(t.symbol) == "null_read");
    CHECK(t.pc == vmrt_guest_symbol(g, "null_read"));  // the first instruction reads
  }
  // Faults outside guest calls still reach the program's own handler.
  CHECK(rtt::traps([] { *static_cast<volatile int*>(vmrt_mmap(vmrt_vmspace_create(1 << 20), nullptr, 4096, PROT_READ,
                                                              MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)) = 1; }));
}

TEST_CASE("guest memory limit: malloc says NULL, the host keeps going; reset restores the loaded state") {
  loaded L(guest_path("basic"), vmrt_guest_options{4u << 20, 0, 0, kImports, 1});
  REQUIRE(L.g != nullptr);
  vmrt_guest* g = L.g;
  CHECK(call_ok(g, "use_sbrk", "l(l)", {I(100000)}).i == 100000);  // sbrk: growth in 16-byte steps
  CHECK(vmrt_guest_memory_used(g) >= 100000);
  int64_t k = call_ok(g, "exhaust", "l(l)", {I(60000)}).i;
  MESSAGE("64 KiB blocks before the 4 MiB limit: ", k);
  CHECK(k > 0);
  CHECK(k <= 64);
  CHECK(vmrt_guest_memory_used(g) <= (4u << 20));
  CHECK(call_ok(g, "use_sbrk", "l(l)", {I(-4096)}).i == -1);  // no shrinking below malloc's blocks
  int64_t big = call_ok(g, "exhaust", "l(l)", {I(1 << 20)}).i;
  CHECK(big == 0);  // no room left for a large block either
  CHECK(call_ok(g, "bump_counter", "i()").i == 6);
  CHECK(call_ok(g, "bump_counter", "i()").i == 7);
  vmrt_guest_func* f = vmrt_guest_prepare(g, "bump_counter", "i()");
  REQUIRE(f != nullptr);
  char err[256];
  REQUIRE(vmrt_guest_reset(g, err, sizeof err) == 0);
  CHECK(vmrt_guest_memory_used(g) == 0);
  vmrt_guest_value r;
  CHECK(vmrt_guest_invoke(f, nullptr, &r, nullptr) == VMRT_GUEST_OK);  // prepared: bound again
  CHECK(r.i == 6);
  CHECK(call_ok(g, "get_initialized", "i()").i == 42);
}

TEST_CASE("guest busy: a second thread is refused while one is inside") {
  loaded L(guest_path("faults"), vmrt_guest_options{0, 0, 300, nullptr, 0});
  REQUIRE(L.g != nullptr);
  vmrt_guest_status other = VMRT_GUEST_OK;
  std::thread th([&] {
    vmrt_guest_trap t;
    do other = vmrt_guest_call(L.g, "spin", "v()", nullptr, nullptr, &t);
    while (other == VMRT_GUEST_BUSY);
  });
  // Wait until the spinning thread owns the guest, then try.
  vmrt_guest_status mine = VMRT_GUEST_OK;
  for (int i = 0; i < 200 && mine != VMRT_GUEST_BUSY; ++i) {
    vmrt_guest_value a = I(1), r;
    mine = vmrt_guest_call(L.g, "ok", "i(i)", &a, &r, nullptr);
    if (mine != VMRT_GUEST_BUSY) usleep(1000);
  }
  th.join();
  CHECK(mine == VMRT_GUEST_BUSY);
  CHECK(other == VMRT_GUEST_TIMEOUT);
}

TEST_CASE("guest fork busy: while one thread is in a member, another thread's calls on its family are refused") {
  loaded L(guest_path("faults"), vmrt_guest_options{0, 0, 300, nullptr, 0});
  REQUIRE(L.g != nullptr);
  vmrt_guest* c = vmrt_guest_fork(L.g);
  REQUIRE(c != nullptr);
  vmrt_guest_status other = VMRT_GUEST_OK;
  std::thread th([&] {
    vmrt_guest_trap t;
    // The child spins to its time limit (tried again while the parent's call below holds
    // the family: the two calls race for it).
    do other = vmrt_guest_call(c, "spin", "v()", nullptr, nullptr, &t);
    while (other == VMRT_GUEST_BUSY);
  });
  vmrt_guest_status mine = VMRT_GUEST_OK;
  for (int i = 0; i < 200 && mine != VMRT_GUEST_BUSY; ++i) {
    vmrt_guest_value a = I(1), r;
    mine = vmrt_guest_call(L.g, "ok", "i(i)", &a, &r, nullptr);  // the parent: same window
    if (mine != VMRT_GUEST_BUSY) usleep(1000);
  }
  CHECK(mine == VMRT_GUEST_BUSY);
  errno = 0;
  void* m = vmrt_guest_malloc(L.g, 16);
  int e = errno;
  th.join();
  CHECK(other == VMRT_GUEST_TIMEOUT);
  if (m == nullptr) CHECK(e == EBUSY);  // (the spin may have ended just before)
  vmrt_guest_value a = I(1), r;
  CHECK(vmrt_guest_call(L.g, "ok", "i(i)", &a, &r, nullptr) == VMRT_GUEST_OK);
  vmrt_guest_destroy(c);
}

TEST_CASE("guest warm images: restore brings back the snapshot's memory and heap at the same addresses") {
  loaded L(guest_path("basic"));
  REQUIRE(L.g != nullptr);
  vmrt_guest* g = L.g;
  errno = 0;
  CHECK(vmrt_guest_restore(g) == -1);  // nothing to restore yet
  CHECK(errno == EINVAL);
  // Warm state: a counter bumped and a heap buffer with contents.
  CHECK(call_ok(g, "bump_counter", "i()").i == 6);
  void* warm = call_ok(g, "make_buffer", "p(li)", {I(3 * 4096), I('w')}).p;
  REQUIRE(warm != nullptr);
  size_t used = vmrt_guest_memory_used(g);
  REQUIRE(vmrt_guest_snapshot(g) == 0);
  vmrt_vmspace* vs = vmrt_guest_vmspace(g);
  // The guest goes on: more writes, more heap.
  CHECK(call_ok(g, "bump_counter", "i()").i == 7);
  CHECK(call_ok(g, "bump_counter", "i()").i == 8);
  call_ok(g, "make_buffer", "p(li)", {I(100000), I('x')});
  char x = 'w';
  REQUIRE(vmrt_guest_copy_in(g, static_cast<char*>(warm) + 5, "Z", 1) == 0);
  CHECK(vmrt_guest_memory_used(g) > used);
  REQUIRE(vmrt_guest_restore(g) == 0);
  CHECK(vmrt_guest_vmspace(g) == vs);  // same handle, same addresses
  CHECK(vmrt_guest_memory_used(g) == used);
  REQUIRE(vmrt_guest_copy_out(g, &x, static_cast<char*>(warm) + 5, 1) == 0);
  CHECK(x == 'w');                                          // the write after the snapshot is gone
  CHECK(call_ok(g, "bump_counter", "i()").i == 7);            // the counter as it was, plus one
  CHECK(call_ok(g, "call_host", "i(ii)", {I(1), I(2)}).i == 10030);  // relocations still right
  CHECK(rtt::check_ok(vmrt_guest_vmspace(g)));
  // Faults after a restore are still errors, and restore recovers from them.
  vmrt_guest_trap t;
  vmrt_guest_value a[2] = {P(nullptr), I(10)}, r;
  CHECK(vmrt_guest_call(g, "checksum", "l(pl)", a, &r, &t) == VMRT_GUEST_NULL_DEREF);
  MESSAGE(std::string(t.message));
  REQUIRE(vmrt_guest_restore(g) == 0);
  CHECK(call_ok(g, "bump_counter", "i()").i == 7);
  // Many restores leave nothing behind: frames, objects and map entries come back to the same counts.
  for (int i = 0; i < 20; ++i) {  // warm up caches, and the private pages the loop writes (kept, copied back)
    REQUIRE(vmrt_guest_restore(g) == 0);
    call_ok(g, "bump_counter", "i()");
    call_ok(g, "make_buffer", "p(li)", {I(20000), I('q')});
  }
  vm_counts before;
  for (int i = 0; i < 1000; ++i) {
    REQUIRE(vmrt_guest_restore(g) == 0);
    REQUIRE(call_ok(g, "bump_counter", "i()").i == 7);
    void* m = call_ok(g, "make_buffer", "p(li)", {I(20000), I('q')}).p;
    REQUIRE(m != nullptr);
  }
  REQUIRE(vmrt_guest_restore(g) == 0);
  CHECK(call_ok(g, "bump_counter", "i()").i == 7);
  check_counts_back(before);
}

namespace {
// Sets the revert's copy-back limit for one scope (0: restores drop private pages).
struct copy_back_limit {
  std::uint64_t saved = vmrt::g_revert_tunables.copy_back_max;
  explicit copy_back_limit(std::uint64_t v) { vmrt::g_revert_tunables.copy_back_max = v; }
  ~copy_back_limit() { vmrt::g_revert_tunables.copy_back_max = saved; }
};
}  // namespace

TEST_CASE("guest restore works in place: its cost follows what the guest wrote, in both revert modes") {
  for (std::uint64_t limit : {std::uint64_t{4096}, std::uint64_t{0}}) {
    copy_back_limit lim(limit);
    const bool copying = limit != 0;
    INFO(std::string(copying ? "copy back" : "drop"));
    loaded L(guest_path("basic"));
    REQUIRE(L.g != nullptr);
    vmrt_guest* g = L.g;
    constexpr long kBuf = 1 << 20;  // 256 pages, warm
    auto* buf = static_cast<unsigned char*>(call_ok(g, "make_buffer", "p(li)", {I(kBuf), I('w')}).p);
    REQUIRE(buf != nullptr);
    size_t used = vmrt_guest_memory_used(g);
    REQUIRE(vmrt_guest_snapshot(g) == 0);
    // One page written per request, again and again: under userfaultfd the data page's
    // fault is the only one the calling thread takes, and the trap handler once took the
    // 65th fault in a row at one page for a fault that does not progress.
    for (int i = 0; i < 100; ++i) {
      REQUIRE(call_ok(g, "bump_counter", "i()").i == 6);
      REQUIRE(vmrt_guest_restore(g) == 0);
    }
    vmrt_guest_restore_info ri{};
    vm_counts before;
    for (int i = 0; i < 150; ++i) {
      if (i == 20) before = vm_counts{};
      // A request: three pages of the warm buffer and the counter written.
      CHECK(call_ok(g, "poke", "l(plli)", {P(buf + 4096), I(3 * 4096), I(4096), I('x' + i % 3)}).i == 3);
      CHECK(call_ok(g, "bump_counter", "i()").i == 6);
      REQUIRE(vmrt_guest_restore(g) == 0);
      REQUIRE(vmrt_guest_restore_info_get(g, &ri) == 0);
      CHECK(ri.entries_rebuilt == 0);
      CHECK(ri.pages_copied + ri.pages_dropped > 0);
      INFO("copied ", ri.pages_copied, " dropped ", ri.pages_dropped);
      // Not the buffer's 256 pages: the written pages, widened by copy-on-write fault-around
      // (runs of up to 16 pages), plus the stack and the data page.
      CHECK(ri.pages_copied + ri.pages_dropped < 128);
      CHECK((copying ? ri.pages_dropped : ri.pages_copied) == 0);
      unsigned char c[3];
      for (int k = 0; k < 3; ++k) REQUIRE(vmrt_guest_copy_out(g, &c[k], buf + 4096 * (k + 1), 1) == 0);
      CHECK((c[0] == 'w' && c[1] == 'w' && c[2] == 'w'));
    }
    MESSAGE(std::string(copying ? "copy back" : "drop"), ": last restore kept ", ri.entries_kept, " entries, copied ",
            ri.pages_copied, " pages, dropped ", ri.pages_dropped);
    check_counts_back(before);
    // A request that grows the heap past the snapshot's (new heap pages made writable, a
    // large block mapped): the reshaped entries are rebuilt, the rest kept.
    call_ok(g, "make_buffer", "p(li)", {I(3 << 20), I('y')});
    CHECK(vmrt_guest_memory_used(g) > used);
    REQUIRE(vmrt_guest_restore(g) == 0);
    REQUIRE(vmrt_guest_restore_info_get(g, &ri) == 0);
    CHECK(ri.entries_rebuilt > 0);
    CHECK(ri.entries_kept > 0);
    CHECK(vmrt_guest_memory_used(g) == used);
    CHECK(rtt::check_ok(vmrt_guest_vmspace(g)));
    CHECK(call_ok(g, "bump_counter", "i()").i == 6);
    CHECK(call_ok(g, "checksum", "l(pl)", {P(buf), I(kBuf)}).i ==
          call_ok(g, "checksum", "l(pl)", {P(buf), I(kBuf)}).i);
    unsigned char c = 0;
    REQUIRE(vmrt_guest_copy_out(g, &c, buf + kBuf - 1, 1) == 0);
    CHECK(c == 'w');
    // A fault mid-request, then restore: still right.
    vmrt_guest_trap t;
    vmrt_guest_value a[2] = {P(nullptr), I(10)}, r;
    CHECK(vmrt_guest_call(g, "checksum", "l(pl)", a, &r, &t) == VMRT_GUEST_NULL_DEREF);
    REQUIRE(vmrt_guest_restore(g) == 0);
    CHECK(call_ok(g, "bump_counter", "i()").i == 6);
  }
}

TEST_CASE("guest thread-local storage: the dynamic models through __tls_get_addr; initial-exec refused") {
  loaded L(guest_path("tls"));
  INFO(L.err);
  REQUIRE(L.g != nullptr);
  vmrt_guest* g = L.g;
  CHECK(call_ok(g, "get", "i()").i == 3);          // .tdata, general-dynamic
  CHECK(call_ok(g, "name_char", "i(i)", {I(1)}).i == 'l');
  CHECK(call_ok(g, "bump", "l()").i == 1);          // .tbss, local-dynamic
  CHECK(call_ok(g, "bump", "l()").i == 2);
  CHECK(call_ok(g, "set", "i(i)", {I(7)}).i == 7);
  CHECK(call_ok(g, "get", "i()").i == 7);
  void* a = call_ok(g, "counter_addr", "p()").p;
  auto lo = reinterpret_cast<std::uintptr_t>(vmrt_vmspace_base(vmrt_guest_vmspace(g)));
  CHECK(reinterpret_cast<std::uintptr_t>(a) - lo < vmrt_vmspace_size(vmrt_guest_vmspace(g)));  // in guest memory
  // Guest memory: snapshots and forks carry it.
  REQUIRE(vmrt_guest_snapshot(g) == 0);
  vmrt_guest* c = vmrt_guest_fork(g);
  REQUIRE(c != nullptr);
  CHECK(call_ok(c, "bump", "l()").i == 3);
  CHECK(call_ok(g, "bump", "l()").i == 3);
  CHECK(call_ok(g, "bump", "l()").i == 4);
  CHECK(call_ok(c, "get", "i()").i == 7);
  vmrt_guest_destroy(c);
  REQUIRE(vmrt_guest_restore(g) == 0);
  CHECK(call_ok(g, "bump", "l()").i == 3);
  char err[256];
  REQUIRE(vmrt_guest_reset(g, err, sizeof err) == 0);
  CHECK(call_ok(g, "get", "i()").i == 3);
  CHECK(call_ok(g, "bump", "l()").i == 1);
  refused(guest_path("tls_ie"), "R_X86_64_TPOFF64");
}

TEST_CASE("guest brk and sbrk: the break moves up and down, never below malloc's blocks") {
  loaded L(guest_path("brk"));
  INFO(L.err);
  REQUIRE(L.g != nullptr);
  vmrt_guest* g = L.g;
  size_t used = vmrt_guest_memory_used(g);
  long b0 = call_ok(g, "brk_now", "l()").i;
  CHECK(call_ok(g, "grow_and_shrink", "l(l)", {I(64 * 1024)}).i == 0);
  CHECK(vmrt_guest_memory_used(g) == used);
  CHECK(call_ok(g, "brk_now", "l()").i == b0);
  CHECK(call_ok(g, "reread", "i(l)", {I(64 * 1024)}).i == 0);  // pages given back read as zeros
  CHECK(call_ok(g, "brk_up_down", "l(l)", {I(3 * 4096 + 48)}).i == 0);  // (the break moves in 16-byte steps)
  CHECK(call_ok(g, "grow_and_shrink", "l(l)", {I(1L << 40)}).i == -1);  // past the memory limit
  CHECK(call_ok(g, "below_malloc", "l()").i == -1);
  long b1 = call_ok(g, "brk_now", "l()").i;
  CHECK(b1 > b0);
  CHECK(call_ok(g, "grow_and_shrink", "l(l)", {I(8192)}).i == 0);  // above malloc's block: fine
}

TEST_CASE("guest fork: parent and children are independent, take turns in one window, and leave nothing behind") {
  loaded L(guest_path("basic"));
  REQUIRE(L.g != nullptr);
  vmrt_guest* p = L.g;
  CHECK(call_ok(p, "bump_counter", "i()").i == 6);
  auto* buf = static_cast<unsigned char*>(call_ok(p, "make_buffer", "p(li)", {I(3 * 4096), I('a')}).p);
  REQUIRE(buf != nullptr);
  size_t used = vmrt_guest_memory_used(p);
  vmrt_guest* c = vmrt_guest_fork(p);
  REQUIRE(c != nullptr);
  CHECK(vmrt_guest_vmspace(c) == vmrt_guest_vmspace(p));  // one window, in turns
  auto byte_at = [](vmrt_guest* g, const unsigned char* a) {
    unsigned char x = 0;
    REQUIRE(vmrt_guest_copy_out(g, &x, a, 1) == 0);
    return x;
  };
  // Writes on either side stay on that side.
  CHECK(call_ok(c, "bump_counter", "i()").i == 7);
  CHECK(call_ok(p, "bump_counter", "i()").i == 7);
  CHECK(call_ok(c, "bump_counter", "i()").i == 8);
  REQUIRE(vmrt_guest_copy_in(c, buf + 4096, "c", 1) == 0);
  CHECK(byte_at(p, buf + 4096) == 'a');
  CHECK(call_ok(p, "poke", "l(plli)", {P(buf), I(3 * 4096), I(4096), I('p')}).i == 3);
  CHECK(byte_at(c, buf + 4096) == 'c');
  CHECK(byte_at(c, buf) == 'a');
  CHECK(byte_at(p, buf + 4096) == 'p');
  CHECK(call_ok(p, "read_counter", "i()").i == 14);
  CHECK(call_ok(c, "read_counter", "i()").i == 16);
  // Heaps grow apart (new mappings on one side only).
  void* big = call_ok(c, "make_buffer", "p(li)", {I(200000), I('z')}).p;
  REQUIRE(big != nullptr);
  CHECK(vmrt_guest_memory_used(c) > used);
  CHECK(vmrt_guest_memory_used(p) == used);
  unsigned char x;
  CHECK(call_ok(p, "checksum", "l(pl)", {P(buf), I(3 * 4096)}).i != 0);
  CHECK(byte_at(c, static_cast<unsigned char*>(big) + 100) == 'z');
  x = 0;
  CHECK(vmrt_guest_copy_out(p, &x, static_cast<unsigned char*>(big) + 100, 1) == -1);  // nothing of p's there
  CHECK(errno == EFAULT);
  // A child's fault is its own; both go on.
  vmrt_guest_trap t;
  vmrt_guest_value a[2] = {P(nullptr), I(10)}, r;
  CHECK(vmrt_guest_call(c, "checksum", "l(pl)", a, &r, &t) == VMRT_GUEST_NULL_DEREF);
  CHECK(call_ok(p, "bump_counter", "i()").i == 8);
  CHECK(call_ok(c, "bump_counter", "i()").i == 9);
  // A fork of a fork, and snapshots of a child.
  vmrt_guest* gc = vmrt_guest_fork(c);
  REQUIRE(gc != nullptr);
  REQUIRE(vmrt_guest_snapshot(c) == 0);
  CHECK(call_ok(c, "bump_counter", "i()").i == 10);
  CHECK(call_ok(gc, "bump_counter", "i()").i == 10);
  REQUIRE(vmrt_guest_restore(c) == 0);
  CHECK(call_ok(c, "bump_counter", "i()").i == 10);
  CHECK(call_ok(gc, "bump_counter", "i()").i == 11);
  CHECK(call_ok(p, "bump_counter", "i()").i == 9);
  CHECK(rtt::check_ok(vmrt_guest_vmspace(p)));
  // The parent goes first; its children live on.
  vmrt_guest_destroy(p);
  L.g = nullptr;
  CHECK(call_ok(c, "bump_counter", "i()").i == 11);
  CHECK(byte_at(c, buf + 4096) == 'c');
  vmrt_guest_destroy(c);  // the active member goes: the next one installs itself
  CHECK(call_ok(gc, "bump_counter", "i()").i == 12);
  CHECK(rtt::check_ok(vmrt_guest_vmspace(gc)));
  vmrt_guest_destroy(gc);  // the last: the window goes
}

TEST_CASE("guest fork: 1,000 forks of a warm guest leave no leak") {
  loaded L(guest_path("basic"));
  REQUIRE(L.g != nullptr);
  vmrt_guest* p = L.g;
  CHECK(call_ok(p, "bump_counter", "i()").i == 6);
  auto* buf = static_cast<unsigned char*>(call_ok(p, "make_buffer", "p(li)", {I(1 << 20), I('w')}).p);
  REQUIRE(buf != nullptr);
  vm_counts before;
  for (int i = 0; i < 1020; ++i) {
    if (i == 20) before = vm_counts{};
    vmrt_guest* c = vmrt_guest_fork(p);
    REQUIRE(c != nullptr);
    REQUIRE(call_ok(c, "bump_counter", "i()").i == 7);
    REQUIRE(call_ok(c, "poke", "l(plli)", {P(buf), I(8 * 4096), I(4096), I(i)}).i == 8);
    if (i % 2 == 0) REQUIRE(call_ok(p, "read_counter", "i()").i == 12);  // the parent in between
    vmrt_guest_destroy(c);
  }
  check_counts_back(before);
  CHECK(call_ok(p, "bump_counter", "i()").i == 7);
  unsigned char x = 0;
  REQUIRE(vmrt_guest_copy_out(p, &x, buf, 1) == 0);
  CHECK(x == 'w');
  CHECK(rtt::check_ok(vmrt_guest_vmspace(p)));
}

TEST_CASE("guest C++ wrapper (vmrt.hpp)") {
  vmrt::guest bad(guest_path("tls_ie").c_str());
  CHECK(!bad);
  CHECK(std::string(bad.error()).find("R_X86_64_TPOFF64") != std::string::npos);
  vmrt_guest_options o{};
  o.imports = kImports;
  o.nimports = 1;
  vmrt::guest g(guest_path("basic").c_str(), &o);
  REQUIRE(g);
  vmrt_guest_value r;
  CHECK(g.call("add", "i(ii)", {vmrt::ival(2), vmrt::ival(40)}, &r) == VMRT_GUEST_OK);
  CHECK(r.i == 42);
  CHECK(g.call("hypot2", "d(dd)", {vmrt::dval(1), vmrt::dval(2)}, &r) == VMRT_GUEST_OK);
  CHECK(r.d == doctest::Approx(5.0));
  REQUIRE(g.snapshot() == 0);
  CHECK(g.call("bump_counter", "i()", {}, &r) == VMRT_GUEST_OK);
  CHECK(r.i == 6);
  REQUIRE(g.restore() == 0);
  CHECK(g.call("bump_counter", "i()", {}, &r) == VMRT_GUEST_OK);
  CHECK(r.i == 6);
}

namespace {
// POSIX timers of this process (/proc/self/timers), -1 when the kernel does not list them.
int posix_timers() {
  std::ifstream f("/proc/self/timers");
  if (!f) return -1;
  int n = 0;
  for (std::string line; std::getline(f, line);) n += line.rfind("ID:", 0) == 0;
  return n;
}
}  // namespace

TEST_CASE("guests are independent; threads calling with a time limit leave no timer behind") {
  loaded A(guest_path("basic"));
  loaded B(guest_path("basic"));
  loaded F(guest_path("faults"), vmrt_guest_options{0, 0, 20, nullptr, 0});
  REQUIRE(A.g != nullptr);
  REQUIRE(B.g != nullptr);
  REQUIRE(F.g != nullptr);
  CHECK(call_ok(A.g, "bump_counter", "i()").i == 6);
  CHECK(call_ok(A.g, "bump_counter", "i()").i == 7);
  vmrt_guest_trap t;
  CHECK(vmrt_guest_call(F.g, "null_write", "v()", nullptr, nullptr, &t) == VMRT_GUEST_NULL_DEREF);
  CHECK(call_ok(B.g, "bump_counter", "i()").i == 6);  // B's data is its own
  CHECK(call_ok(A.g, "bump_counter", "i()").i == 8);
  // Each thread's timer goes with the thread.
  int before = posix_timers();
  if (before < 0) {
    MESSAGE("SKIP timer check: /proc/self/timers not available");
    return;
  }
  for (int i = 0; i < 16; ++i) {
    std::thread th([&] {
      vmrt_guest_value a = I(1), r;
      vmrt_guest_trap tt;
      CHECK(vmrt_guest_call(F.g, "ok", "i(i)", &a, &r, &tt) == VMRT_GUEST_OK);
      CHECK(vmrt_guest_call(F.g, "spin", "v()", nullptr, nullptr, &tt) == VMRT_GUEST_TIMEOUT);
    });
    th.join();
  }
  int after = posix_timers();
  MESSAGE("POSIX timers before ", before, ", after 16 threads: ", after);
  CHECK(after <= before + 1);
}

TEST_CASE("guests on two threads at once: calls and faults do not cross") {
  loaded A(guest_path("faults"));
  loaded B(guest_path("faults"));
  REQUIRE(A.g != nullptr);
  REQUIRE(B.g != nullptr);
  std::atomic<int> bad{0};
  auto work = [&](vmrt_guest* g) {
    for (int i = 0; i < 500; ++i) {
      vmrt_guest_value a = I(i), r;
      vmrt_guest_trap t;
      if (vmrt_guest_call(g, "ok", "i(i)", &a, &r, &t) != VMRT_GUEST_OK || r.i != i + 1) ++bad;
      vmrt_guest_status s = vmrt_guest_call(g, i % 2 ? "null_read" : "illegal", i % 2 ? "i()" : "v()", nullptr, &r, &t);
      if (s != (i % 2 ? VMRT_GUEST_NULL_DEREF : VMRT_GUEST_ILLEGAL_INSTRUCTION)) ++bad;
    }
  };
  std::thread t1(work, A.g), t2(work, B.g);
  t1.join();
  t2.join();
  CHECK(bad.load() == 0);
}

TEST_CASE("guest load: 300 corrupted objects are refused or loaded, never a host crash") {
  std::vector<unsigned char> good = read_file(guest_path("basic"));
  REQUIRE(good.size() > 4096);
  std::mt19937 rng(20261201);  // fixed seed: the same 300 files every run
  int refused_n = 0, loaded_n = 0, trapped_n = 0;
  for (int i = 0; i < 300; ++i) {
    std::vector<unsigned char> b = good;
    int flips = 1 + static_cast<int>(rng() % 4);
    for (int k = 0; k < flips; ++k) b[rng() % 4096] = static_cast<unsigned char>(rng());
    std::string p = write_temp(b, "fuzz");
    vmrt_guest_options o{};
    o.time_limit_ms = 100;
    o.imports = kImports;
    o.nimports = 1;
    vmrt_guest* g = nullptr;
    char err[512];
    if (vmrt_guest_load(p.c_str(), &o, &g, err, sizeof err) != 0) {
      ++refused_n;
      CHECK(err[0] != '\0');
    } else {
      ++loaded_n;
      vmrt_guest_value a[2] = {I(2), I(3)}, r;
      vmrt_guest_trap t;
      if (vmrt_guest_call(g, "add", "i(ii)", a, &r, &t) != VMRT_GUEST_OK) ++trapped_n;
      vmrt_guest_destroy(g);
    }
    unlink(p.c_str());
  }
  MESSAGE("corrupted objects: ", refused_n, " refused, ", loaded_n, " loaded (", trapped_n, " of those trapped or lacked add)");
  CHECK(refused_n + loaded_n == 300);
  // The host and a good guest are fine afterwards.
  loaded L(guest_path("basic"));
  REQUIRE(L.g != nullptr);
  CHECK(call_ok(L.g, "add", "i(ii)", {I(20), I(22)}).i == 42);
}

// The same FNV-1a as the guest's checksum (tests/unit/guests/basic.c).
static int64_t host_checksum(const unsigned char* p, std::size_t n) {
  unsigned long long h = 1469598103934665603ULL;
  for (std::size_t i = 0; i < n; ++i) h = (h ^ p[i]) * 1099511628211ULL;
  return static_cast<int64_t>(h & 0x7fffffffffffffffULL);
}

TEST_CASE("sharing between guests: one guest's heap pages lent, extracted and transferred to another, read by its code") {
  loaded A(guest_path("basic")), B(guest_path("basic"));
  REQUIRE(A.g != nullptr);
  REQUIRE(B.g != nullptr);
  vmrt_vmspace* va = vmrt_guest_vmspace(A.g);
  vmrt_vmspace* vb = vmrt_guest_vmspace(B.g);
  REQUIRE(va != nullptr);
  REQUIRE(vb != nullptr);
  constexpr std::size_t kPg = 4096, kLen = 4 * kPg;
  auto* raw = static_cast<unsigned char*>(vmrt_guest_malloc(A.g, kLen + kPg));
  REQUIRE(raw != nullptr);
  auto* pg = reinterpret_cast<unsigned char*>((reinterpret_cast<std::uintptr_t>(raw) + kPg - 1) & ~(kPg - 1));
  for (std::size_t i = 0; i < kLen; ++i) pg[i] = static_cast<unsigned char>(i * 7 + 3);
  const int64_t sum = host_checksum(pg, kLen);

  // A loan: B's code reads A's pages through its read-only view; A's write after it copies
  // that page for A, and B keeps the bytes it was lent.
  auto* view = static_cast<unsigned char*>(vmrt_loan(va, pg, kLen, vb, nullptr));
  REQUIRE(view != nullptr);
  CHECK(call_ok(B.g, "checksum", "l(pl)", {P(view), I(kLen)}).i == sum);
  pg[kPg] = 0xff;
  CHECK(view[kPg] == static_cast<unsigned char>(kPg * 7 + 3));
  CHECK(call_ok(B.g, "checksum", "l(pl)", {P(view), I(kLen)}).i == sum);
  CHECK(call_ok(A.g, "checksum", "l(pl)", {P(pg), I(kLen)}).i == host_checksum(pg, kLen));
  CHECK(vmrt_unloan(vb, view, kLen) == 0);
  pg[kPg] = static_cast<unsigned char>(kPg * 7 + 3);

  // An extract (copy-on-write): B gets its own copy at once, A's later writes stay A's.
  auto* copy = static_cast<unsigned char*>(vmrt_extract(va, pg, kLen, vb, nullptr, VMRT_EXTRACT_COPY));
  REQUIRE(copy != nullptr);
  pg[0] = 0;
  CHECK(call_ok(B.g, "checksum", "l(pl)", {P(copy), I(kLen)}).i == sum);

  // A transfer: the pages leave A (zero-filled there) and B owns them.
  pg[0] = 3;
  auto* moved = static_cast<unsigned char*>(vmrt_transfer(va, pg, kLen, vb, nullptr, VMRT_TRANSFER_ZERO));
  REQUIRE(moved != nullptr);
  CHECK(call_ok(B.g, "checksum", "l(pl)", {P(moved), I(kLen)}).i == sum);
  bool zero = true;
  for (std::size_t i = 0; i < kLen; ++i) zero = zero && pg[i] == 0;
  CHECK(zero);
  // Both guests still run their own code on their own memory.
  CHECK(call_ok(A.g, "checksum", "l(pl)", {P(pg), I(kLen)}).i == host_checksum(pg, kLen));
}
