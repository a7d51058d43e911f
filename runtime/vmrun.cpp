// vmrun — run a dynamically linked program with vmrt as its memory system.
//
//   vmrun [options] [--] program [args...]
//
// vmrun sets the VMRT_* environment, prepends libvmrt_malloc.so (found at
// <directory of vmrun>/../lib/) to LD_PRELOAD and execs the program in its own
// process image: stdin/stdout/stderr, the exit status and signals are the
// program's own, and children it starts inherit the environment (so they run
// under vmrt too).  A statically linked program cannot have its malloc
// interposed: vmrun refuses it (exit 126) rather than run it without vmrt.
//
// vmrun is an ordinary program (not part of the machine): it uses libc freely.
#include <cerrno>
#include <climits>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <algorithm>
#include <cstring>
#include <elf.h>
#include <fcntl.h>
#include <string>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

#include "runtime/rt_config.h"  // the VMRT_* variables and their accepted values
#include "runtime/vmrun_sweep.h"
#include "vmrt_version.h"  // generated: VMRT_VERSION, VMRT_GIT_REVISION
#include "vm/vm_fail.h"

namespace {

constexpr int kExitUsage = 2;         // bad vmrun options
constexpr int kExitCannotExec = 126;  // found but not runnable under vmrt
constexpr int kExitNotFound = 127;    // program (or the shim) not found

const char kUsage[] =
    "usage: vmrun [options] [--] program [args...]\n"
    "\n"
    "Run a dynamically linked program with vmrt (a 4.4BSD/Mach VM system in user\n"
    "space) serving its malloc family and C++ operator new/delete.  vmrun sets the\n"
    "VMRT_* variables below, prepends libvmrt_malloc.so to LD_PRELOAD and execs the\n"
    "program: its stdin/stdout/stderr, exit status and signals are its own, and the\n"
    "programs it starts inherit the environment and run under vmrt as well.\n"
    "\n"
    "options (each sets the environment variable shown):\n"
    "  --physmem SIZE      VMRT_PHYSMEM       physical memory (frame pool) size, 1M..16T;\n"
    "                                         default: host RAM, at most 64G\n"
    "  --region SIZE       VMRT_REGION_SIZE   reserved guest region, 112M..16T; default 64G\n"
    "  --kmem-size SIZE    VMRT_KMEM_SIZE     kmem submap (malloc arena), 16M..8T;\n"
    "                                         default 16G\n"
    "                      Sizes not given are scaled down to fit RLIMIT_AS/RLIMIT_DATA\n"
    "                      (vmrt takes at most half the room the limits leave free; when\n"
    "                      the VM does not fit, malloc runs on kmem over host pages with\n"
    "                      one warning).  A RLIMIT_AS the program sets later holds its\n"
    "                      own mappings and its malloc (getrlimit reports its value).\n"
    "  --trap MODE         VMRT_TRAP          fault backend: auto (default: userfaultfd\n"
    "                                         when available, else sigsegv), sigsegv,\n"
    "                                         userfaultfd\n"
    "  --stats             VMRT_STATS=1       print vmstat -m / vmstat -s reports and the\n"
    "                                         shim's event counters when each process\n"
    "                                         exits (children too)\n"
    "  --stats-fd N        VMRT_STATS_FD      file descriptor for the reports; default 2\n"    "  (environment only)  VMRT_FRAME_CACHE   freed frames kept for reuse, 0..16T;\n"
    "                                         default min(physmem/4, 1G)\n"    "  (environment only)  VMRT_HEAP          the malloc heap's memory: host (default:\n"
    "                                         host memory, shared copy-on-write by fork),\n"
    "                                         frames (vmrt frames, bounded by physmem) or\n"
    "                                         paged (vmrt frames, paged out to swap; the\n"
    "                                         default when --physmem or --swap is given)\n"
    "  --swap SIZE         VMRT_SWAP_SIZE     swap device size when paging (--physmem\n"
    "                                         given): default 8 x physmem, at least 1G\n"
    "                                         (sparse); 0: no swap, physmem is a hard\n"
    "                                         limit.  SIZE > 0 alone turns paging on\n"
    "  --swap-file PATH    VMRT_SWAP_FILE     swap device file (created; default: a\n"
    "                                         private unlinked file in $TMPDIR or\n"
    "                                         /var/tmp)\n"
    "  --pdpolicy NAME     VMRT_PDPOLICY      page replacement policy: clock2 (default,\n"
    "                                         the two-handed CLOCK), clock1 (one-handed),\n"
    "                                         clock (FreeBSD's active/inactive CLOCK), 2q\n"
    "                                         or clock-noage\n"
    "  --kmem-diag         VMRT_KMEM_DIAG=1   kmem diagnostics: fill freed blocks, detect\n"
    "                                         write-after-free and double free\n"
    "  --shim PATH         (LD_PRELOAD)       use this libvmrt_malloc.so instead of\n"
    "                                         libvmrt_malloc.so in the lib directory\n"
    "                                         next to vmrun's (installed, or build tree)\n"
    "  --fail SPEC         VMRT_FAIL          fault injection: make memory fail on purpose\n"
    "                                         (repeatable: the specs are joined with ';').\n"
    "                                         SPEC is CLAUSE[;CLAUSE...], CLAUSE is\n"
    "                                         POINT[+POINT][:TERM,...]; e.g.\n"
    "                                         'malloc:prob=0.01,seed=7;frame:nth=100'.\n"
    "                                         Points: malloc calloc realloc memalign new\n"
    "                                         alloc(=all five) kmem[TYPE|..] frame mmap\n"
    "                                         munmap mprotect mlock.  Terms: prob=P|N%\n"
    "                                         seed=N every=N nth=N after=N bytes=SIZE\n"
    "                                         times=N size=LO-HI thread=main|TID+..\n"
    "                                         caller=FUNC object=LIBNAME print.  See\n"
    "                                         README.md, \"Fault injection\".  A bad spec\n"
    "                                         is refused here (exit 2).\n"
    "  --fail-log PATH     VMRT_FAIL_LOG      write injected failures and the exit summary\n"
    "                                         to PATH (appended) instead of stderr\n"
    "  --fail-symbolize LOG  print a VMRT_FAIL_LOG (\"-\": stdin) with file:line and\n"
    "                      function after each frame (addr2line), then exit\n"
    "  --fail-sweep        fail the program's malloc-family calls one call site at a\n"
    "                      time (one run each) and print a table of the runs that\n"
    "                      crashed instead of failing cleanly; exit 1 if any did.\n"
    "                      With --max N (calls examined, default 1000), -j N (runs in\n"
    "                      parallel, default: cores), --timeout SEC (per run, default\n"
    "                      60), --keep-logs, --site-depth N (frames that tell call\n"
    "                      sites apart, default 1: the return address into the caller;\n"
    "                      2 also separates a wrapper's (strdup, vasprintf) callers).\n"
    "                      The runs get stdin from /dev/null.\n"
    "  --guest [--ret T] [--time-limit MS] [--memory SIZE] [--stack SIZE] lib.so FUNC [ARG...]\n"
    "                      load lib.so (an x86-64 ELF shared object) as a guest in its own\n"
    "                      vmspace and call FUNC (see README.md, \"Guests\"): prints the result\n"
    "                      (exit 0) or the trap (exit 1); ARG types from their form (42, 1.5,\n"
    "                      text) or a prefix i: l: d: f: s: p:; --ret l|i|d|f|p|s|v\n"
    "  -h, --help          this text\n"
    "  --version           print vmrt's version and git revision\n"
    "\n"
    "SIZE: a number of bytes with an optional suffix K, M, G or T (e.g. 512M, 4G).\n"
    "The variables may also be set directly in the environment; options override\n"
    "them.  LD_PRELOAD keeps any existing value after the shim.\n"
    "\n"
    "malloc-family behaviour under vmrt (libvmrt_malloc.so):\n"
    "  free() of a pointer vmrt did not allocate or a double free prints the address\n"
    "  and aborts (SIGABRT), like glibc.  Exhaustion: NULL + ENOMEM.  operator new\n"
    "  with no new-handler installed aborts with \"vmrt: operator new: out of memory\".\n"
    "  A program that defines its own malloc keeps it (vmrun warns).  vmrun refuses a\n"
    "  bad VMRT_* value, from an option or the environment, with status 2 before\n"
    "  running anything (the accepted range is named); without vmrun (LD_PRELOAD) the\n"
    "  runtime prints the same message and uses the default.\n"
    "\n"
    "signals and threads:\n"
    "  malloc memory (the process heap) is mapped a 2 MiB window at a time when handed\n"
    "  out: a program that only mallocs gets no vmrt thread and no vmrt signal handler.  The trap backend (SIGSEGV/SIGBUS\n"
    "  handlers; with userfaultfd, a handler thread) starts with the first vmspace\n"
    "  that has demand-paged memory.  sigaction()/signal() for SIGSEGV and SIGBUS are\n"
    "  interposed: once the trap backend runs, the program's handler is called for\n"
    "  every fault that is not vmrt's, and sigaction reports it back unchanged.\n"
    "  Known limitations: under VMRT_TRAP=sigsegv, system calls given never-touched\n"
    "  vmspace memory (e.g. read(2) into it) fail with EFAULT (userfaultfd serves\n"
    "  them); pages shared copy-on-write after vmrt_vmspace_fork give EFAULT to\n"
    "  kernel-mode writes (read(2) into them) under both backends until the program\n"
    "  itself writes to them once.\n"
    "\n"
    "exit status: the program's own; 2 for a vmrun usage error; 126 when the program\n"
    "cannot run under vmrt (statically linked, wrong ELF class, not executable);\n"
    "127 when the program or libvmrt_malloc.so is not found.\n";

[[noreturn]] void fail(int code, const std::string& msg) {
  std::fprintf(stderr, "vmrun: %s\n", msg.c_str());
  std::exit(code);
}

std::string size_text(std::size_t v) {
  char buf[32];
  return vmrt::config_size_text(v, buf, sizeof buf);
}

// Refuse (exit 2) a value of v the runtime would refuse: the same parser and table
// (runtime/rt_config.h).  `origin` is the option or variable it came from.
std::uint64_t check_value(vmrt::config_var v, const char* origin, const char* text) {
  std::uint64_t n = 0;
  vmrt::config_status st = vmrt::config_parse(v, text, &n);
  if (st != vmrt::config_status::ok) {
    char why[512];
    fail(kExitUsage, vmrt::config_describe(v, origin, text, st, why, sizeof why));
  }
  return n;
}

// Every VMRT_* setting the program will see (from an option or inherited), checked as
// the runtime will read it, and the one combination the runtime adjusts: kmem larger
// than half the region (boot clamps it).  `from_option[v]` names the option that set v.
void check_environment(const char* const from_option[]) {
  using vmrt::config_var;
  std::uint64_t value[vmrt::kConfigVarCount] = {};
  bool set[vmrt::kConfigVarCount] = {};
  for (const vmrt::config_var_info& info : vmrt::kConfigVars) {
    const char* text = std::getenv(info.env);
    if (text == nullptr) continue;
    auto k = static_cast<std::size_t>(info.var);
    const char* origin = from_option[k] != nullptr ? from_option[k] : info.env;
    value[k] = check_value(info.var, origin, text);
    set[k] = true;
  }
  auto kmem = static_cast<std::size_t>(config_var::kmem_size), region = static_cast<std::size_t>(config_var::region_size);
  if (set[kmem]) {
    std::size_t r = set[region] ? value[region] : vmrt::kDefaultRegionSize;
    std::size_t max = vmrt::config_kmem_max_for_region(r);
    if (value[kmem] > max) {
      const char* korigin = from_option[kmem] != nullptr ? from_option[kmem] : "VMRT_KMEM_SIZE";
      std::size_t k = (static_cast<std::size_t>(value[kmem]) + vmrt::kConfigRegionGranule - 1) &
                      ~(vmrt::kConfigRegionGranule - 1);
      std::size_t need = std::max(2 * k, k + vmrt::kConfigKernelWindow + vmrt::kConfigRegionGranule);
      fail(kExitUsage, std::string(korigin) + "=" + std::getenv("VMRT_KMEM_SIZE") + ": does not fit the region (" +
                           size_text(r) + (set[region] ? "" : ", the default") + ": kmem may use " +
                           size_text(max) + " of it); give a region of at least " + size_text(need));
    }
  }
}

std::string dir_of_self() {
  char buf[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) fail(kExitNotFound, "cannot read /proc/self/exe to locate libvmrt_malloc.so");
  buf[n] = '\0';
  std::string s(buf);
  return s.substr(0, s.rfind('/'));
}

// Resolve a program name like execvp does (PATH search unless it contains '/').
// Returns "" when not found; *not_exec is set when found but not executable.
std::string resolve(const std::string& prog, bool* not_exec) {
  *not_exec = false;
  auto usable = [&](const std::string& path) {
    struct stat st;
    if (stat(path.c_str(), &st) != 0 || S_ISDIR(st.st_mode)) return false;
    if (access(path.c_str(), X_OK) != 0) {
      *not_exec = true;
      return false;
    }
    return true;
  };
  if (prog.find('/') != std::string::npos) return usable(prog) || *not_exec ? prog : "";
  const char* path = std::getenv("PATH");
  std::string p = path != nullptr ? path : "/usr/local/bin:/usr/bin:/bin";
  std::size_t start = 0;
  for (;;) {
    std::size_t end = p.find(':', start);
    std::size_t len = end == std::string::npos ? p.size() - start : end - start;
    std::string cand = len == 0 ? std::string(".") : p.substr(start, len);  // empty entry: cwd
    cand += '/';
    cand += prog;
    if (usable(cand)) return cand;
    if (end == std::string::npos) break;
    start = end + 1;
  }
  return "";
}

enum class elf_kind { dynamic, static_exe, wrong_class, not_elf, unreadable };

// Inspect an ELF file: dynamic (has PT_INTERP) or static; 64-bit x86-64 only.
elf_kind inspect_elf(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return elf_kind::unreadable;
  Elf64_Ehdr eh;
  ssize_t n = pread(fd, &eh, sizeof eh, 0);
  elf_kind kind = elf_kind::not_elf;
  if (n >= 4 && std::memcmp(eh.e_ident, ELFMAG, SELFMAG) == 0) {
    if (n != static_cast<ssize_t>(sizeof eh) || eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_machine != EM_X86_64) {
      kind = elf_kind::wrong_class;
    } else {
      kind = elf_kind::static_exe;
      for (unsigned i = 0; i < eh.e_phnum; ++i) {
        Elf64_Phdr ph;
        if (pread(fd, &ph, sizeof ph, static_cast<off_t>(eh.e_phoff + i * eh.e_phentsize)) != sizeof ph) break;
        if (ph.p_type == PT_INTERP) {
          kind = elf_kind::dynamic;
          break;
        }
      }
    }
  }
  close(fd);
  return kind;
}

// True when the ELF file's dynamic symbol table defines `malloc` itself (a
// program with a built-in allocator: its own malloc wins over any LD_PRELOAD).  The file
// is mapped and read in place (a pread per symbol cost bash's 2,400 symbols 5,000 system
// calls, 0.1-0.2 s at every vmrun start on a loaded machine).
bool defines_own_malloc(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  struct stat st{};
  void* map = fstat(fd, &st) == 0 && st.st_size > 0
                  ? mmap(nullptr, static_cast<std::size_t>(st.st_size), PROT_READ, MAP_PRIVATE, fd, 0)
                  : MAP_FAILED;
  close(fd);
  if (map == MAP_FAILED) return false;
  const auto* base = static_cast<const unsigned char*>(map);
  const auto size = static_cast<std::uint64_t>(st.st_size);
  // [off, off + n) inside the file?
  auto in_file = [size](std::uint64_t off, std::uint64_t n) { return off <= size && n <= size - off; };
  bool found = false;
  Elf64_Ehdr eh;
  if (in_file(0, sizeof eh)) std::memcpy(&eh, base, sizeof eh);
  if (in_file(0, sizeof eh) && eh.e_shentsize == sizeof(Elf64_Shdr) &&
      in_file(eh.e_shoff, std::uint64_t{eh.e_shnum} * sizeof(Elf64_Shdr))) {
    for (unsigned i = 0; i < eh.e_shnum && !found; ++i) {
      Elf64_Shdr sh, str;
      std::memcpy(&sh, base + eh.e_shoff + i * sizeof sh, sizeof sh);
      if (sh.sh_type != SHT_DYNSYM || sh.sh_entsize != sizeof(Elf64_Sym) || sh.sh_link >= eh.e_shnum) continue;
      std::memcpy(&str, base + eh.e_shoff + sh.sh_link * sizeof str, sizeof str);
      if (!in_file(sh.sh_offset, sh.sh_size) || !in_file(str.sh_offset, str.sh_size)) continue;
      for (std::uint64_t k = 0; k < sh.sh_size / sizeof(Elf64_Sym) && !found; ++k) {
        Elf64_Sym sym;
        std::memcpy(&sym, base + sh.sh_offset + k * sizeof sym, sizeof sym);
        if (sym.st_shndx == SHN_UNDEF || sym.st_name >= str.sh_size) continue;
        const char* name = reinterpret_cast<const char*>(base + str.sh_offset + sym.st_name);
        found = str.sh_size - sym.st_name >= sizeof "malloc" && std::memcmp(name, "malloc", sizeof "malloc") == 0;
      }
    }
  }
  munmap(map, static_cast<std::size_t>(st.st_size));
  return found;
}

// For "#!interp" scripts: the interpreter path ("" when not a script).
std::string script_interpreter(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return "";
  char buf[256];
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n < 3 || buf[0] != '#' || buf[1] != '!') return "";
  buf[n] = '\0';
  char* p = buf + 2;
  while (*p == ' ' || *p == '\t') ++p;
  char* e = p;
  while (*e != '\0' && *e != ' ' && *e != '\t' && *e != '\n') ++e;
  return std::string(p, e);
}

// Refuse programs whose malloc LD_PRELOAD cannot replace.
void check_runnable(const std::string& prog, const std::string& path, int depth) {
  switch (inspect_elf(path)) {
    case elf_kind::dynamic:
      if (defines_own_malloc(path))
        std::fprintf(stderr, "vmrun: warning: %s defines its own malloc, which takes precedence over "
                             "vmrt's: only what reaches libvmrt_malloc.so runs on vmrt\n", prog.c_str());
      return;
    case elf_kind::static_exe:
      fail(kExitCannotExec, prog + ": statically linked (no ELF interpreter): LD_PRELOAD cannot put vmrt under "
                                   "its malloc, so vmrun will not run it without vmrt");
    case elf_kind::wrong_class:
      fail(kExitCannotExec, prog + ": not a 64-bit x86-64 ELF program: libvmrt_malloc.so cannot be loaded into it");
    case elf_kind::unreadable:
      fail(kExitCannotExec, prog + ": cannot read the program (" + std::strerror(errno) + ")");
    case elf_kind::not_elf: {
      std::string interp = script_interpreter(path);
      if (interp.empty() || depth > 2) return;  // let execv decide (ENOEXEC -> error below)
      bool not_exec = false;
      std::string ipath = resolve(interp, &not_exec);
      if (ipath.empty()) fail(kExitNotFound, prog + ": script interpreter " + interp + " not found");
      check_runnable(interp, ipath, depth + 1);
      return;
    }
  }
}

// Validate a VMRT_FAIL spec with the engine's parser; exit 2 pointing at the bad token.
void check_fail_spec(const char* origin, const std::string& spec) {
  static vmrt::vm_fail_spec parsed;
  vmrt::vm_fail_error err;
  if (vmrt::vm_fail_parse(spec.c_str(), &parsed, &err)) return;
  char msg[2048];
  vmrt::vm_fail_format_error(spec.c_str(), err, msg, sizeof msg);
  fail(kExitUsage, std::string(origin) + ": " + msg);
}

bool parse_count(const std::string& v, unsigned* out) {
  if (v.empty() || v.size() > 9 || v.find_first_not_of("0123456789") != std::string::npos) return false;
  *out = static_cast<unsigned>(std::stoul(v));
  return *out > 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::string shim;
  std::string fail_spec;
  bool sweep = false;
  sweep_options sweep_opt;
  bool sweep_opt_given = false;
  bool guest = false;
  int i = 1;
  auto need_arg = [&](const char* opt) -> const char* {
    if (i + 1 >= argc) fail(kExitUsage, std::string(opt) + " needs an argument (see vmrun --help)");
    return argv[++i];
  };
  // Every value the runtime would refuse (and replace by its default) is refused here,
  // by the runtime's own parser; check_environment also sees inherited VMRT_* values.
  const char* from_option[vmrt::kConfigVarCount] = {};
  auto set_var = [&](vmrt::config_var v) {
    const vmrt::config_var_info& info = vmrt::config_info(v);
    const char* text = need_arg(info.option);
    check_value(v, info.option, text);
    from_option[static_cast<std::size_t>(v)] = info.option;
    setenv(info.env, text, 1);
  };
  for (; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--") {
      ++i;
      break;
    }
    if (a.empty() || a[0] != '-') break;
    if (a == "-h" || a == "--help") {
      std::fputs(kUsage, stdout);
      return 0;
    } else if (a == "--version") {
      std::printf("vmrun (vmrt) %s (git %s)\n", VMRT_VERSION, VMRT_GIT_REVISION);
      return 0;
    } else if (a == "--physmem") {
      set_var(vmrt::config_var::physmem);
    } else if (a == "--swap") {
      set_var(vmrt::config_var::swap_size);
    } else if (a == "--swap-file") {
      set_var(vmrt::config_var::swap_file);
    } else if (a == "--pdpolicy") {
      set_var(vmrt::config_var::pdpolicy);
    } else if (a == "--region") {
      set_var(vmrt::config_var::region_size);
    } else if (a == "--kmem-size") {
      set_var(vmrt::config_var::kmem_size);
    } else if (a == "--trap") {
      set_var(vmrt::config_var::trap);
    } else if (a == "--stats") {
      setenv("VMRT_STATS", "1", 1);
    } else if (a == "--stats-fd") {
      set_var(vmrt::config_var::stats_fd);
    } else if (a == "--kmem-diag") {
      setenv("VMRT_KMEM_DIAG", "1", 1);
    } else if (a == "--shim") {
      shim = need_arg("--shim");
    } else if (a == "--fail") {
      std::string v = need_arg("--fail");
      check_fail_spec("--fail", v);
      fail_spec += (fail_spec.empty() ? "" : ";") + v;
    } else if (a == "--fail-log") {
      setenv("VMRT_FAIL_LOG", need_arg("--fail-log"), 1);
    } else if (a == "--fail-symbolize") {
      return vmrun_fail_symbolize(need_arg("--fail-symbolize"));
    } else if (a == "--fail-sweep") {
      sweep = true;
    } else if (a == "--max" || a == "-j" || a == "--timeout" || a == "--site-depth") {
      sweep_opt_given = true;
      std::string v = need_arg(a.c_str());
      unsigned* dst = a == "--max" ? &sweep_opt.max : a == "-j" ? &sweep_opt.jobs
                      : a == "--timeout" ? &sweep_opt.timeout : &sweep_opt.site_depth;
      if (!parse_count(v, dst)) fail(kExitUsage, a + ": not a count >= 1: '" + v + "'");
    } else if (a == "--guest") {  // the rest is vmrun-guest's
      guest = true;
      ++i;
      break;
    } else if (a == "--keep-logs") {
      sweep_opt_given = true;
      sweep_opt.keep = true;
    } else {
      fail(kExitUsage, "unknown option '" + a + "' (see vmrun --help)");
    }
  }
  if (guest) {
    check_environment(from_option);
    // The build tree: next to vmrun; installed: lib[/multiarch]/vmrt/, beside the shim.
    std::string self = dir_of_self();
    std::string helper = self + "/vmrun-guest";
    if (access(helper.c_str(), X_OK) != 0) helper = self + "/" VMRT_SHIM_DIR_FROM_BINDIR "/vmrt/vmrun-guest";
    std::vector<char*> av{const_cast<char*>("vmrun-guest")};
    for (int k = i; k < argc; ++k) av.push_back(argv[k]);
    av.push_back(nullptr);
    execv(helper.c_str(), av.data());
    fail(kExitNotFound, helper + ": " + std::strerror(errno) + " (build target vmrun-guest)");
  }
  if (i >= argc) fail(kExitUsage, "no program given (usage: vmrun [options] [--] program [args...])");
  check_environment(from_option);
  if (!fail_spec.empty()) setenv("VMRT_FAIL", fail_spec.c_str(), 1);
  if (const char* env = std::getenv("VMRT_FAIL"); env != nullptr && *env != '\0') {
    check_fail_spec("VMRT_FAIL", env);
    // The runtime opens the log the same way; one it cannot open is refused here, not
    // replaced by stderr in every process.
    if (const char* log = std::getenv("VMRT_FAIL_LOG"); log != nullptr && *log != '\0') {
      int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
      if (fd < 0) fail(kExitUsage, std::string("VMRT_FAIL_LOG=") + log + ": cannot open: " + std::strerror(errno));
      close(fd);
    }
  }
  if (sweep && !fail_spec.empty()) fail(kExitUsage, "--fail-sweep makes its own specs: do not combine it with --fail");
  if (!sweep && sweep_opt_given) fail(kExitUsage, "--max, -j, --timeout, --site-depth and --keep-logs go with --fail-sweep");

  if (shim.empty()) {  // installed: bin/ -> lib[/multiarch]/; the build tree: bin/ -> lib/
    std::string self = dir_of_self();
    shim = self + "/" VMRT_SHIM_DIR_FROM_BINDIR "/libvmrt_malloc.so";
    if (access(shim.c_str(), R_OK) != 0) shim = self + "/../lib/libvmrt_malloc.so";
  }
  char real[PATH_MAX];
  if (realpath(shim.c_str(), real) == nullptr || access(real, R_OK) != 0)
    fail(kExitNotFound, "cannot find the malloc shim at " + shim + " (build target vmrt_malloc)");

  std::string prog = argv[i];
  bool not_exec = false;
  std::string path = resolve(prog, &not_exec);
  if (path.empty()) fail(kExitNotFound, prog + ": command not found");
  if (not_exec) fail(kExitCannotExec, prog + ": permission denied (not executable)");
  check_runnable(prog, path, 0);

  std::string preload = real;
  if (const char* old = std::getenv("LD_PRELOAD"); old != nullptr && *old != '\0') {
    std::string o = old;
    // Nested vmrun: keep a single copy of the shim, first.
    if (o != preload && o.rfind(preload + ":", 0) != 0) preload += ":" + o;
    else preload = o;
  }
  setenv("LD_PRELOAD", preload.c_str(), 1);

  if (sweep) {
    unsetenv("VMRT_FAIL");
    return vmrun_fail_sweep(path, argv + i, sweep_opt);
  }
  execv(path.c_str(), argv + i);
  int e = errno;
  fail(e == ENOENT ? kExitNotFound : kExitCannotExec, prog + ": " + std::strerror(e));
}
