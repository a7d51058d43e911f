// boot.cpp — configuration from the environment and machine bring-up.
// STAGE 0: kmem runs over a host page source until the VM's kmem submap is wired in.
#include "runtime/boot.h"

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <unistd.h>

#include "kmem/kmem.h"

namespace vmrt {
namespace {

runtime_config g_config;
std::atomic<int> g_boot_state{0};  // 0 = down, 1 = booting, 2 = up

void say(const char* a, const char* b = "", const char* c = "") {
  (void)!write(2, a, std::strlen(a));
  (void)!write(2, b, std::strlen(b));
  (void)!write(2, c, std::strlen(c));
}

// Parse "123", "64K", "16M", "4G", "1T".  False on garbage or overflow.
bool parse_size(const char* s, std::size_t* out) {
  if (s == nullptr || *s == '\0') return false;
  std::size_t v = 0;
  const char* p = s;
  for (; *p >= '0' && *p <= '9'; ++p) {
    std::size_t d = static_cast<std::size_t>(*p - '0');
    if (v > (SIZE_MAX - d) / 10) return false;
    v = v * 10 + d;
  }
  if (p == s) return false;
  unsigned shift = 0;
  switch (*p) {
    case '\0': break;
    case 'k': case 'K': shift = 10; ++p; break;
    case 'm': case 'M': shift = 20; ++p; break;
    case 'g': case 'G': shift = 30; ++p; break;
    case 't': case 'T': shift = 40; ++p; break;
    default: return false;
  }
  if (*p == 'B' || *p == 'b') ++p;
  if (*p != '\0') return false;
  if (shift != 0 && v > (SIZE_MAX >> shift)) return false;
  *out = v << shift;
  return true;
}

std::size_t host_ram() {
  long pages = sysconf(_SC_PHYS_PAGES);
  long psz = sysconf(_SC_PAGESIZE);
  if (pages <= 0 || psz <= 0) return std::size_t{4} << 30;
  return static_cast<std::size_t>(pages) * static_cast<std::size_t>(psz);
}

void env_size(const char* name, std::size_t* field) {
  const char* v = getenv(name);
  if (v == nullptr) return;
  std::size_t n;
  if (!parse_size(v, &n) || n == 0) {
    say("vmrt: ignoring ", name, ": not a size (use e.g. 512M, 4G)\n");
    return;
  }
  *field = n;
}

bool env_flag(const char* name) {
  const char* v = getenv(name);
  return v != nullptr && *v != '\0' && std::strcmp(v, "0") != 0;
}

}  // namespace

runtime_config runtime_config_from_env() {
  runtime_config c{};
  c.region_size = std::size_t{64} << 30;
  std::size_t ram = host_ram();
  c.physmem_size = ram < (std::size_t{64} << 30) ? ram : (std::size_t{64} << 30);
  c.kmem_size = std::size_t{16} << 30;
  c.trap = trap_backend::automatic;
  c.stats_fd = 2;
  env_size("VMRT_REGION_SIZE", &c.region_size);
  env_size("VMRT_PHYSMEM", &c.physmem_size);
  env_size("VMRT_KMEM_SIZE", &c.kmem_size);
  if (const char* t = getenv("VMRT_TRAP")) {
    if (std::strcmp(t, "sigsegv") == 0) c.trap = trap_backend::sigsegv;
    else if (std::strcmp(t, "userfaultfd") == 0 || std::strcmp(t, "uffd") == 0) c.trap = trap_backend::userfaultfd;
    else if (std::strcmp(t, "auto") != 0) say("vmrt: ignoring VMRT_TRAP=", t, ": use auto, sigsegv or userfaultfd\n");
  }
  c.stats = env_flag("VMRT_STATS");
  c.kmem_diagnostics = env_flag("VMRT_KMEM_DIAG");
  if (const char* f = getenv("VMRT_STATS_FD")) {
    int fd = 0;
    for (const char* p = f; *p >= '0' && *p <= '9'; ++p) fd = fd * 10 + (*p - '0');
    c.stats_fd = fd;
  }
  return c;
}

bool runtime_boot_with(const runtime_config& cfg) {
  int expected = 0;
  if (!g_boot_state.compare_exchange_strong(expected, 1, std::memory_order_acq_rel)) {
    while (g_boot_state.load(std::memory_order_acquire) == 1) {
    }
    return false;
  }
  g_config = cfg;
  kmem::kmem_config kc;
  kc.diagnostics = cfg.kmem_diagnostics;
  const kmem::kmem_page_source* src = kmem::kmem_host_page_source(cfg.kmem_size);
  bool ok = src != nullptr && kmem::kmem_init(src, kc);
  g_boot_state.store(ok ? 2 : 0, std::memory_order_release);
  return ok;
}

bool runtime_boot() {
  if (g_boot_state.load(std::memory_order_acquire) == 2) return true;
  runtime_boot_with(runtime_config_from_env());
  return g_boot_state.load(std::memory_order_acquire) == 2;
}

bool runtime_booted() { return g_boot_state.load(std::memory_order_acquire) == 2; }
const runtime_config& runtime_current_config() { return g_config; }

void runtime_fork_prepare() { kmem::fork_prepare(); }
void runtime_fork_parent() { kmem::fork_parent(); }
void runtime_fork_child() { kmem::fork_child(); }

void runtime_report(int fd) { kmem::report_vmstat_m(fd); }

}  // namespace vmrt
