// vmrun_sweep.cpp — `vmrun --fail-sweep`: fail a program's malloc-family calls one
// call site at a time and report which failures it does not survive.
//
//  1. A census run under VMRT_FAIL='alloc:print,times=MAX' logs (without failing)
//     the stack of each of the program's first MAX malloc-family calls.  The
//     call site of a call is its first frame outside libvmrt_malloc.so (the
//     return address into the caller); calls are grouped by call site.
//  2. For the first call of each call site, one run under VMRT_FAIL='alloc:nth=N'
//     with VMRT_FAIL_CRASH=1 (the engine logs the stack of a crash signal).  Runs
//     go in parallel (-j, default: the cores there are), each with stdin from
//     /dev/null, stdout discarded, stderr kept, a timeout.
//  3. Each run is classified: crash (killed by a signal, or a sanitizer report on
//     stderr), hang (killed after the timeout), error exit (non-zero status: the
//     program reported the failure), recovered (status 0).  Addresses are
//     symbolised after the fact with addr2line (file:line where debug info exists).
//
// vmrun is an ordinary program: libc, the STL and popen are fine here.
#include "runtime/vmrun_sweep.h"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <elf.h>
#include <fcntl.h>
#include <map>
#include <string>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <vector>

namespace {

struct frame {
  std::string path;
  unsigned long long off = 0;  // file offset
};

struct record {
  std::string kind;  // inject, print, crash
  std::string point;
  unsigned long long n = 0;
  long pid = 0;
  int signal = 0;
  std::vector<frame> frames;
};

std::vector<record> read_log(const std::string& path) {
  std::vector<record> out;
  FILE* f = std::fopen(path.c_str(), "r");
  if (f == nullptr) return out;
  char line[4096];
  record cur;
  bool in = false;
  while (std::fgets(line, sizeof line, f) != nullptr) {
    std::string s = line;
    if (!s.empty() && s.back() == '\n') s.pop_back();
    const std::string pre = "vmrt-fail: ";
    if (s.rfind(pre, 0) != 0) continue;
    std::string rest = s.substr(pre.size());
    if (rest == "end") {
      if (in) out.push_back(cur);
      in = false;
      continue;
    }
    if (rest.rfind("  at ", 0) == 0 && in) {
      std::string t = rest.substr(5);
      std::size_t sp = t.rfind(' ');
      if (sp == std::string::npos) continue;
      frame fr;
      fr.path = t.substr(0, sp);
      fr.off = std::strtoull(t.c_str() + sp + 1, nullptr, 16);
      cur.frames.push_back(fr);
      continue;
    }
    auto field = [&](const char* key) -> std::string {
      std::string k = std::string(" ") + key + "=";
      std::size_t p = rest.find(k);
      if (p == std::string::npos) return "";
      p += k.size();
      return rest.substr(p, rest.find(' ', p) - p);
    };
    for (const char* kind : {"inject ", "print ", "crash "}) {
      if (rest.rfind(kind, 0) != 0) continue;
      cur = record();
      cur.kind = std::string(kind, std::strlen(kind) - 1);
      in = true;
      if (cur.kind != "crash") {
        std::size_t hash = rest.find(" #");
        cur.point = rest.substr(std::strlen(kind), hash - std::strlen(kind));
        cur.n = std::strtoull(rest.c_str() + hash + 2, nullptr, 10);
      } else {
        cur.signal = std::atoi(field("signal").c_str());
        cur.point = "crash";
      }
      cur.pid = std::atol(field("pid").c_str());
    }
  }
  std::fclose(f);
  return out;
}

bool is_system(const std::string& p) {
  return p.rfind("/lib/", 0) == 0 || p.rfind("/usr/lib/", 0) == 0 || p.rfind("/lib64/", 0) == 0 ||
         p.find("libvmrt_malloc") != std::string::npos;
}

// The frame to show for a stack: the first outside the system's and vmrt's
// libraries (the program's own code), else the first in a known module (a wild jump's
// "?" says nothing), else the first.
const frame* shown_frame(const std::vector<frame>& fs) {
  for (const frame& f : fs)
    if (!is_system(f.path) && f.path != "?") return &f;
  for (const frame& f : fs)
    if (f.path != "?") return &f;
  return fs.empty() ? nullptr : &fs.front();
}

// The lines of a text (without their newlines).
std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  for (std::size_t start = 0; start < text.size();) {
    std::size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    out.push_back(text.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

// Between file offsets and ELF virtual addresses through the PT_LOAD segment that holds
// x: to_va, an offset to an address (what addr2line wants); else an address to an offset.
// Returns x itself when the file is unreadable or no segment holds it.
unsigned long long segment_map(const std::string& path, unsigned long long x, bool to_va) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return x;
  Elf64_Ehdr eh;
  unsigned long long y = x;
  if (pread(fd, &eh, sizeof eh, 0) == static_cast<ssize_t>(sizeof eh) && std::memcmp(eh.e_ident, ELFMAG, SELFMAG) == 0) {
    for (unsigned i = 0; i < eh.e_phnum; ++i) {
      Elf64_Phdr ph;
      if (pread(fd, &ph, sizeof ph, static_cast<off_t>(eh.e_phoff + i * eh.e_phentsize)) != sizeof ph) break;
      unsigned long long from = to_va ? ph.p_offset : ph.p_vaddr, to = to_va ? ph.p_vaddr : ph.p_offset;
      if (ph.p_type == PT_LOAD && x >= from && x < from + ph.p_filesz) {
        y = x - from + to;
        break;
      }
    }
  }
  close(fd);
  return y;
}
unsigned long long to_vaddr(const std::string& path, unsigned long long off) { return segment_map(path, off, true); }
unsigned long long to_offset(const std::string& path, unsigned long long va) { return segment_map(path, va, false); }

// The stack a program's own crash handler printed with glibc's backtrace_symbols_fd
// ("prog(+0x1a2b)[0x55...]", "/lib/x/libc.so.6(func+0xe)[0x7f...]"; zstd puts a space
// before the '['), for a run that left
// no crash record (the program's handler took the signal).  Only frames given as a module
// offset are kept (a symbol-relative one cannot be placed without the symbol table); a
// module named without a directory is the program when the names match.
std::vector<frame> printed_backtrace(const std::string& err, const std::string& prog) {
  std::vector<frame> out;
  std::string prog_base = prog.substr(prog.rfind('/') + 1);
  for (const std::string& line : lines_of(err)) {
    std::size_t lp = line.find("(+0x"), rp = line.find(")[0x");
    if (rp == std::string::npos) rp = line.find(") [0x");  // as some programs print it
    if (lp == std::string::npos || rp == std::string::npos || rp < lp || line.back() != ']') continue;
    std::string mod = line.substr(0, lp);
    if (mod.find(' ') != std::string::npos) continue;
    if (mod.find('/') == std::string::npos) {
      if (mod.substr(mod.rfind('/') + 1) != prog_base) continue;
      mod = prog;
    }
    unsigned long long va = std::strtoull(line.c_str() + lp + 2, nullptr, 16);
    out.push_back({mod, to_offset(mod, va)});
  }
  return out;
}

// Symbolise frames in batches (one addr2line per module).
class symboliser {
 public:
  void want(const frame& f) { pending_[f.path].push_back(f.off); }
  void run() {
    for (auto& [path, offs] : pending_) {
      std::sort(offs.begin(), offs.end());
      offs.erase(std::unique(offs.begin(), offs.end()), offs.end());
      if (path == "?" || access(path.c_str(), R_OK) != 0) continue;
      for (std::size_t b = 0; b < offs.size(); b += 200) {
        std::string cmd = "addr2line -f -C -e '" + path + "'";
        std::size_t e = std::min(offs.size(), b + 200);
        char buf[64];
        for (std::size_t k = b; k < e; ++k) {
          unsigned long long v = to_vaddr(path, offs[k]);
          std::snprintf(buf, sizeof buf, " 0x%llx", v > 0 ? v - 1 : v);  // return address -> call
          cmd += buf;
        }
        cmd += " 2>/dev/null";
        FILE* p = popen(cmd.c_str(), "r");
        if (p == nullptr) continue;
        char fn[2048], fl[2048];
        for (std::size_t k = b; k < e; ++k) {
          if (std::fgets(fn, sizeof fn, p) == nullptr || std::fgets(fl, sizeof fl, p) == nullptr) break;
          fn[std::strcspn(fn, "\n")] = '\0';
          fl[std::strcspn(fl, "\n")] = '\0';
          std::string loc = fl;
          std::size_t disc = loc.find(" (discriminator");
          if (disc != std::string::npos) loc.erase(disc);
          std::size_t slash = loc.rfind('/');
          if (slash != std::string::npos) loc = loc.substr(slash + 1);
          names_[key(path, offs[k])] = {fn, loc};
        }
        pclose(p);
      }
    }
  }
  // "file.c:12 (func)", or "module+0xoff (func)" without line information.
  std::string name(const frame* f) const {
    if (f == nullptr) return "?";
    char off[32];
    std::snprintf(off, sizeof off, "+0x%llx", f->off);
    std::string base = f->path.substr(f->path.rfind('/') + 1);
    auto it = names_.find(key(f->path, f->off));
    if (it == names_.end()) return base + off;
    const auto& [fn, loc] = it->second;
    std::string func = fn == "??" ? "" : " (" + fn + ")";
    if (loc.rfind("??", 0) == 0 || loc.empty()) return base + off + func;
    return loc + func;
  }

 private:
  static std::string key(const std::string& p, unsigned long long o) { return p + "@" + std::to_string(o); }
  std::map<std::string, std::vector<unsigned long long>> pending_;
  std::map<std::string, std::pair<std::string, std::string>> names_;
};

struct job {
  unsigned long long n = 0;       // call number failed (0: census)
  std::string point;              // from the census
  std::vector<frame> site;        // census stack
  std::string spec, log, err;
  pid_t pid = -1;
  std::chrono::steady_clock::time_point started;
  bool timed_out = false;
  int status = 0;
  // results
  std::string result;
  bool crash = false, hang = false;
  std::vector<frame> crash_stack;
  std::string san_site;           // the crash site a sanitizer report names
};

pid_t start(const std::string& path, char** argv, const std::string& spec, const std::string& log,
            const std::string& err) {
  pid_t pid = fork();
  if (pid != 0) return pid;
  setpgid(0, 0);
  setenv("VMRT_FAIL", spec.c_str(), 1);
  setenv("VMRT_FAIL_LOG", log.c_str(), 1);
  setenv("VMRT_FAIL_CRASH", "1", 1);
  unsetenv("VMRT_FAIL_BACKTRACE");
  int in = open("/dev/null", O_RDONLY);
  int out = open("/dev/null", O_WRONLY);
  int e = open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (in < 0 || out < 0 || e < 0) _exit(127);
  dup2(in, 0);
  dup2(out, 1);
  dup2(e, 2);
  execv(path.c_str(), argv);
  _exit(127);
}

std::string read_text(const std::string& path, std::size_t max) {
  std::string s;
  FILE* f = std::fopen(path.c_str(), "r");
  if (f == nullptr) return s;
  char buf[4096];
  std::size_t n;
  while (s.size() < max && (n = std::fread(buf, 1, sizeof buf, f)) > 0) s.append(buf, n);
  std::fclose(f);
  return s;
}

// Run the jobs, at most `par` at a time, each killed after `timeout` seconds.
void run_all(const std::string& path, char** argv, std::vector<job>& jobs, unsigned par, unsigned timeout,
             bool progress) {
  std::size_t next = 0, done = 0;
  std::map<pid_t, job*> running;
  bool tty = isatty(2) != 0;
  while (done < jobs.size()) {
    while (running.size() < par && next < jobs.size()) {
      job& j = jobs[next++];
      j.pid = start(path, argv, j.spec, j.log, j.err);
      j.started = std::chrono::steady_clock::now();
      if (j.pid < 0) {
        j.result = "cannot fork";
        ++done;
        continue;
      }
      running[j.pid] = &j;
    }
    int st;
    pid_t w = waitpid(-1, &st, WNOHANG);
    if (w > 0) {
      auto it = running.find(w);
      if (it == running.end()) continue;
      job& j = *it->second;
      running.erase(it);
      kill(-j.pid, SIGKILL);  // stray children of the run
      j.status = st;
      ++done;
      if (progress) {
        std::fprintf(stderr, "%svmrun: fail-sweep: %zu/%zu runs done (call #%llu)%s", tty ? "\r" : "", done,
                     jobs.size(), j.n, tty ? "" : "\n");
        std::fflush(stderr);
      }
      continue;
    }
    auto now = std::chrono::steady_clock::now();
    for (auto& [pid, j] : running) {
      if (!j->timed_out && now - j->started > std::chrono::seconds(timeout)) {
        j->timed_out = true;
        kill(-pid, SIGKILL);
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  if (progress && tty) std::fprintf(stderr, "\n");
}

// A number in s at i: hexadecimal after "0x" (module offsets), else decimal (lines).
// Advances i past it; the value saturates (a longer run compares as larger).
unsigned long long number_at(const std::string& s, std::size_t* i) {
  bool hex = *i + 1 < s.size() && s[*i] == '0' && s[*i + 1] == 'x';
  if (hex) *i += 2;
  unsigned long long v = 0;
  for (; *i < s.size(); ++*i) {
    char c = s[*i];
    unsigned d;
    if (c >= '0' && c <= '9') d = static_cast<unsigned>(c - '0');
    else if (hex && c >= 'a' && c <= 'f') d = static_cast<unsigned>(c - 'a' + 10);
    else break;
    unsigned long long nv = v * (hex ? 16 : 10) + d;
    v = nv < v ? ~0ull : nv;
  }
  return v;
}

// The table's order: "file.c:9" before "file.c:12", "prog+0xff" before "prog+0x100"
// (numbers by value, the rest by character), so rows follow the source.
bool site_less(const std::string& a, const std::string& b) {
  std::size_t i = 0, j = 0;
  while (i < a.size() && j < b.size()) {
    bool da = a[i] >= '0' && a[i] <= '9', db = b[j] >= '0' && b[j] <= '9';
    if (da && db) {
      unsigned long long x = number_at(a, &i), y = number_at(b, &j);
      if (x != y) return x < y;
      continue;
    }
    if (a[i] != b[j]) return a[i] < b[j];
    ++i;
    ++j;
  }
  return a.size() - i < b.size() - j;
}

// The crash site a sanitizer report names, for a run that left no crash record (the
// sanitizer exits without a signal, or its own handler took the signal): UBSan's
// "FILE:LINE:COL: runtime error: ..." or the first frame of a stack ("#N 0x... in FUNC
// FILE:LINE[:COL]") outside the system's and vmrt's libraries; "" when there is none.
std::string sanitizer_site(const std::string& err) {
  auto short_loc = [](std::string loc) {  // "/dir/file.c:6:8" -> "file.c:6"
    std::size_t c2 = loc.rfind(':');
    std::size_t c1 = c2 == std::string::npos || c2 == 0 ? std::string::npos : loc.rfind(':', c2 - 1);
    if (c1 != std::string::npos && loc.find_first_not_of("0123456789", c1 + 1) == c2) loc.erase(c2);
    std::size_t slash = loc.rfind('/', loc.rfind(':'));
    return slash == std::string::npos ? loc : loc.substr(slash + 1);
  };
  for (const std::string& line : lines_of(err)) {
    std::size_t re = line.find(": runtime error:");
    if (re != std::string::npos) return short_loc(line.substr(0, re)) + " (runtime error)";
    std::size_t hash = line.find_first_not_of(' ');
    if (hash == std::string::npos || line[hash] != '#') continue;
    std::size_t in = line.find(" in ", hash);
    if (in == std::string::npos) continue;
    std::size_t fs = in + 4, fe = line.find(' ', fs);
    if (fe == std::string::npos) continue;
    std::string func = line.substr(fs, fe - fs), loc = line.substr(fe + 1);
    if (loc.empty() || loc[0] == '(' || is_system(loc) || loc.find("sanitizer") != std::string::npos) continue;
    return short_loc(loc) + " (" + func + ")";
  }
  return "";
}

std::string signame(int sig) {
  const char* d = sigabbrev_np(sig);
  return d != nullptr ? std::string("SIG") + d : "signal " + std::to_string(sig);
}

}  // namespace

int vmrun_fail_sweep(const std::string& path, char** argv, const sweep_options& opt) {
  char tmpl[] = "/tmp/vmrun-sweep.XXXXXX";
  if (mkdtemp(tmpl) == nullptr) {
    std::fprintf(stderr, "vmrun: fail-sweep: cannot create a temporary directory: %s\n", std::strerror(errno));
    return 1;
  }
  std::string dir = tmpl;
  unsigned par = opt.jobs != 0 ? opt.jobs : std::max(1u, std::thread::hardware_concurrency());

  // 1. Census.
  std::vector<job> census(1);
  census[0].log = dir + "/census.log";
  census[0].err = dir + "/census.err";
  std::fprintf(stderr, "vmrun: fail-sweep: census run (logging the first %u malloc-family calls)\n", opt.max);
  census[0].spec = "alloc:print,times=" + std::to_string(opt.max);
  run_all(path, argv, census, 1, opt.timeout, false);
  std::vector<record> recs = read_log(census[0].log);
  std::vector<job> jobs;
  std::map<std::string, bool> seen_site;
  unsigned long long calls = 0;
  for (const record& r : recs) {
    if (r.kind != "print" || r.pid != census[0].pid) continue;
    ++calls;
    // The call site: the innermost --site-depth frames (1: the return address into the
    // caller; deeper keys tell apart the callers of a wrapper such as strdup or vasprintf).
    std::string key = r.frames.empty() ? "?" : "";
    for (std::size_t d = 0; d < r.frames.size() && d < opt.site_depth; ++d)
      key += r.frames[d].path + "+" + std::to_string(r.frames[d].off) + ";";
    if (seen_site[key]) continue;
    seen_site[key] = true;
    job j;
    j.n = r.n;
    j.point = r.point;
    j.site = r.frames;
    jobs.push_back(j);
  }
  if (census[0].timed_out) std::fprintf(stderr, "vmrun: fail-sweep: warning: the census run timed out\n");
  std::fprintf(stderr, "vmrun: fail-sweep: %llu calls from %zu call sites; %zu runs, %u in parallel\n", calls,
               jobs.size(), jobs.size(), par);
  if (jobs.empty()) {
    int st = census[0].status;
    if (census[0].timed_out || WIFSIGNALED(st) || WEXITSTATUS(st) != 0) {
      // It failed before any allocation reached vmrt: say why (an ASan-built program, for
      // one, brings its own allocator and refuses to run behind a preloaded one).
      std::string err = read_text(census[0].err, 4096);
      std::size_t nl = err.find('\n');
      std::fprintf(stderr, "vmrun: fail-sweep: the census run failed (%s) before any malloc-family call reached vmrt: %s\n",
                   census[0].timed_out ? "timed out" : WIFSIGNALED(st) ? signame(WTERMSIG(st)).c_str()
                                                                       : ("exit " + std::to_string(WEXITSTATUS(st))).c_str(),
                   err.empty() ? "(nothing on stderr)" : err.substr(0, nl).c_str());
      if (err.find("ASan runtime does not come first") != std::string::npos)
        std::fprintf(stderr, "vmrun: fail-sweep: AddressSanitizer has its own allocator: sweep a build without "
                             "-fsanitize=address (UBSan builds work)\n");
      std::string cmd = "rm -rf '" + dir + "'";
      if (std::system(cmd.c_str()) != 0) {}
      return 1;
    }
    std::fprintf(stderr, "vmrun: fail-sweep: the program made no malloc-family call under vmrt\n");
    std::string cmd = "rm -rf '" + dir + "'";
    if (std::system(cmd.c_str()) != 0) {}
    return 0;
  }
  for (std::size_t k = 0; k < jobs.size(); ++k) {
    jobs[k].log = dir + "/run" + std::to_string(k) + ".log";
    jobs[k].err = dir + "/run" + std::to_string(k) + ".err";
    jobs[k].spec = "alloc:nth=" + std::to_string(jobs[k].n);
  }

  // 2. One run per call site.
  run_all(path, argv, jobs, par, opt.timeout, true);

  // 3. Classify and symbolise.
  symboliser sym;
  unsigned crashes = 0, hangs = 0, errors = 0, recovered = 0, unreached = 0;
  for (job& j : jobs) {
    std::vector<record> rr = read_log(j.log);
    bool injected = false;
    for (const record& r : rr) {
      if (r.pid != j.pid) continue;
      if (r.kind == "inject") injected = true;
      // The longest crash record: the engine writes the faulting instruction alone first,
      // then the whole stack when the walk survives.
      if (r.kind == "crash" && r.frames.size() > j.crash_stack.size()) j.crash_stack = r.frames;
    }
    std::string err = read_text(j.err, 1 << 20);
    bool sanitizer = err.find("AddressSanitizer") != std::string::npos ||
                     err.find("LeakSanitizer") != std::string::npos || err.find("runtime error:") != std::string::npos;
    if (j.timed_out) {
      j.hang = true;
      j.result = "hang (killed after " + std::to_string(opt.timeout) + "s)";
      ++hangs;
    } else if (WIFSIGNALED(j.status)) {
      j.crash = true;
      j.result = "crash " + signame(WTERMSIG(j.status));
      ++crashes;
    } else if (sanitizer) {
      j.crash = true;
      j.result = "crash (sanitizer report)";
      ++crashes;
    } else if (WEXITSTATUS(j.status) != 0) {
      j.result = "error exit " + std::to_string(WEXITSTATUS(j.status));
      ++errors;
    } else {
      j.result = "exit 0";
      ++recovered;
    }
    if (sanitizer) j.san_site = sanitizer_site(err);
    if (j.crash_stack.empty() && (j.crash || j.hang)) j.crash_stack = printed_backtrace(err, path);
    if (!injected) {
      j.result += " (call not reached)";
      ++unreached;
    }
    if (const frame* f = shown_frame(j.site)) sym.want(*f);
    if (!j.site.empty()) sym.want(j.site.front());
    if (const frame* f = shown_frame(j.crash_stack)) sym.want(*f);
    if (!j.crash_stack.empty()) sym.want(j.crash_stack.front());
  }
  sym.run();

  struct row {
    std::string site, via, result, crash_site;
    unsigned long long n;
    std::string point;
    bool bad;
  };
  std::vector<row> rows;
  for (const job& j : jobs) {
    row r;
    const frame* f = shown_frame(j.site);
    r.site = sym.name(f);
    if (!j.site.empty() && f != &j.site.front()) r.via = sym.name(&j.site.front());
    r.result = j.result;
    if (j.crash || j.hang) {
      const frame* c = shown_frame(j.crash_stack);
      r.crash_site = c == nullptr ? "?" : sym.name(c);
      if (c != nullptr && c != &j.crash_stack.front()) r.crash_site += " in " + sym.name(&j.crash_stack.front());
      if (c == nullptr && !j.san_site.empty()) r.crash_site = j.san_site;
    }
    r.n = j.n;
    r.point = j.point;
    r.bad = j.crash || j.hang;
    rows.push_back(r);
  }
  std::sort(rows.begin(), rows.end(), [](const row& a, const row& b) {
    return a.site != b.site ? site_less(a.site, b.site) : a.n < b.n;
  });
  std::printf("%-8s %-9s %-32s %-40s %s\n", "call#", "function", "result", "failed call site", "crash site");
  for (const row& r : rows) {
    std::string site = r.site + (r.via.empty() ? "" : " via " + r.via);
    std::printf("%-8llu %-9s %-32s %-40s %s\n", r.n, r.point.c_str(), r.result.c_str(), site.c_str(),
                r.crash_site.c_str());
  }
  std::printf("fail-sweep: %zu call sites: %u crashed, %u hung, %u error exits, %u exited 0", rows.size(), crashes,
              hangs, errors, recovered);
  if (unreached != 0) std::printf(", %u not reached", unreached);
  std::printf("\n");
  if (opt.keep) {
    std::fprintf(stderr, "vmrun: fail-sweep: logs kept in %s\n", dir.c_str());
  } else {
    std::string cmd = "rm -rf '" + dir + "'";
    if (std::system(cmd.c_str()) != 0) {}
  }
  return crashes + hangs != 0 ? 1 : 0;
}

int vmrun_fail_symbolize(const std::string& log) {
  FILE* f = log == "-" ? stdin : std::fopen(log.c_str(), "r");
  if (f == nullptr) {
    std::fprintf(stderr, "vmrun: --fail-symbolize: cannot open %s: %s\n", log.c_str(), std::strerror(errno));
    return 1;
  }
  std::vector<std::string> lines;
  char buf[4096];
  while (std::fgets(buf, sizeof buf, f) != nullptr) lines.emplace_back(buf);
  if (f != stdin) std::fclose(f);
  const std::string at = "vmrt-fail:   at ";
  auto parse = [&](const std::string& l, frame* fr) {
    if (l.rfind(at, 0) != 0) return false;
    std::string t = l.substr(at.size());
    while (!t.empty() && (t.back() == '\n' || t.back() == ' ')) t.pop_back();
    std::size_t sp = t.rfind(' ');
    if (sp == std::string::npos) return false;
    fr->path = t.substr(0, sp);
    fr->off = std::strtoull(t.c_str() + sp + 1, nullptr, 16);
    return true;
  };
  symboliser sym;
  frame fr;
  for (const std::string& l : lines)
    if (parse(l, &fr)) sym.want(fr);
  sym.run();
  for (std::string l : lines) {
    if (parse(l, &fr)) {
      while (!l.empty() && l.back() == '\n') l.pop_back();
      l += "  " + sym.name(&fr) + "\n";
    }
    std::fputs(l.c_str(), stdout);
  }
  return 0;
}
