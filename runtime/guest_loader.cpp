// guest_loader.cpp — place an x86-64 ELF shared object in a fresh vmspace (issue 10).
//
// The loader follows what a dynamic linker does for one object (the System V ABI's
// "Program Loading" and "Dynamic Linking" chapters): map each PT_LOAD at one load
// bias, apply the RELA relocations, protect the segments (relro read-only after
// relocation, as glibc's _dl_protect_relro), run DT_INIT and DT_INIT_ARRAY.  There is
// one object and no symbol interposition: a defined symbol binds to itself; an
// undefined one binds to the embedder's imports, then to the guest libc subset.
//
// Segment bytes are COPIED from the file into anonymous memory of the vmspace: vmrt has
// no vnode pager yet, so the data segment is not copy-on-write over the file (issue 10
// asks for that once the pager exists).
//
// Refusals (a one-line reason in the caller's buffer): not ELF, wrong class / byte
// order / machine, not ET_DYN, a program (PT_INTERP), TLS relocations other than the dynamic
// models' (DTPMOD64/DTPOFF64 are served, with __tls_get_addr from the guest libc),
// REL-format relocations, IFUNC, an unknown relocation (named), a missing import (named),
// a segment outside the file, an init function that traps.
#include "runtime/guest.h"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vm/vm_out.h"
#include "vm/vm_sys.h"
#include "vm/vm_types.h"

namespace vmrt::guest {

// Run fn (a void(void) guest function) as a guest call (guest_call.cpp).
vmrt_guest_status run_void(vmrt_guest* g, void* fn, vmrt_guest_trap* t);
// Re-resolve the prepared functions of g after a reset (guest_call.cpp).
void reprepare(vmrt_guest* g);

void* host_alloc(std::size_t n) {
  void* p = vmrt::sys::mmap(nullptr, round_page(n), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  return p == MAP_FAILED ? nullptr : p;
}
void host_free(void* p, std::size_t n) {
  if (p != nullptr) vmrt::sys::munmap(p, round_page(n));
}

namespace {

// Names of the x86-64 relocation types (psABI table "Relocation Types"), for refusals.
struct reloc_name {
  unsigned type;
  const char* name;
};
constexpr reloc_name kRelocNames[] = {
    {R_X86_64_NONE, "R_X86_64_NONE"},           {R_X86_64_64, "R_X86_64_64"},
    {R_X86_64_PC32, "R_X86_64_PC32"},           {R_X86_64_GOT32, "R_X86_64_GOT32"},
    {R_X86_64_PLT32, "R_X86_64_PLT32"},         {R_X86_64_COPY, "R_X86_64_COPY"},
    {R_X86_64_GLOB_DAT, "R_X86_64_GLOB_DAT"},   {R_X86_64_JUMP_SLOT, "R_X86_64_JUMP_SLOT"},
    {R_X86_64_RELATIVE, "R_X86_64_RELATIVE"},   {R_X86_64_GOTPCREL, "R_X86_64_GOTPCREL"},
    {R_X86_64_32, "R_X86_64_32"},               {R_X86_64_32S, "R_X86_64_32S"},
    {R_X86_64_16, "R_X86_64_16"},               {R_X86_64_PC16, "R_X86_64_PC16"},
    {R_X86_64_8, "R_X86_64_8"},                 {R_X86_64_PC8, "R_X86_64_PC8"},
    {R_X86_64_DTPMOD64, "R_X86_64_DTPMOD64"},   {R_X86_64_DTPOFF64, "R_X86_64_DTPOFF64"},
    {R_X86_64_TPOFF64, "R_X86_64_TPOFF64"},     {R_X86_64_TLSGD, "R_X86_64_TLSGD"},
    {R_X86_64_TLSLD, "R_X86_64_TLSLD"},         {R_X86_64_DTPOFF32, "R_X86_64_DTPOFF32"},
    {R_X86_64_GOTTPOFF, "R_X86_64_GOTTPOFF"},   {R_X86_64_TPOFF32, "R_X86_64_TPOFF32"},
    {R_X86_64_PC64, "R_X86_64_PC64"},           {R_X86_64_GOTOFF64, "R_X86_64_GOTOFF64"},
    {R_X86_64_GOTPC32, "R_X86_64_GOTPC32"},     {R_X86_64_SIZE32, "R_X86_64_SIZE32"},
    {R_X86_64_SIZE64, "R_X86_64_SIZE64"},       {R_X86_64_TLSDESC, "R_X86_64_TLSDESC"},
    {R_X86_64_IRELATIVE, "R_X86_64_IRELATIVE"}, {R_X86_64_RELATIVE64, "R_X86_64_RELATIVE64"},
};
static_assert(R_X86_64_RELATIVE == 8 && R_X86_64_GLOB_DAT == 6 && R_X86_64_JUMP_SLOT == 7 && R_X86_64_64 == 1);

const char* reloc_type_name(unsigned t) {
  for (const reloc_name& r : kRelocNames)
    if (r.type == t) return r.name;
  return "R_X86_64_?";
}

bool is_tls_reloc(unsigned t) {
  switch (t) {
    case R_X86_64_DTPMOD64: case R_X86_64_DTPOFF64: case R_X86_64_TPOFF64: case R_X86_64_TLSGD:
    case R_X86_64_TLSLD: case R_X86_64_DTPOFF32: case R_X86_64_GOTTPOFF: case R_X86_64_TPOFF32:
    case R_X86_64_TLSDESC:
      return true;
    default:
      return false;
  }
}

bool aligned(const void* p, std::size_t a) { return reinterpret_cast<std::uintptr_t>(p) % a == 0; }

int prot_of(Elf64_Word flags) {
  return ((flags & PF_R) != 0 ? PROT_READ : 0) | ((flags & PF_W) != 0 ? PROT_WRITE : 0) |
         ((flags & PF_X) != 0 ? PROT_EXEC : 0);
}

// The loader's state for one load.
struct loader {
  vmrt_guest* g;
  vm_out err;
  const Elf64_Ehdr* eh = nullptr;
  const Elf64_Phdr* ph = nullptr;

  loader(vmrt_guest* gg, char* e, std::size_t n) : g(gg), err(e, n) {}

  bool refuse(const char* a, const char* b = "", const char* c = "") {
    err.str(g->path).str(": ").str(a).str(b).str(c);
    return false;
  }

  // The file bytes behind guest vaddr [v, v + n) (inside one PT_LOAD's file part), or
  // nullptr.
  const void* file_ptr(std::uint64_t v, std::uint64_t n) const {
    for (unsigned i = 0; i < eh->e_phnum; ++i) {
      const Elf64_Phdr& p = ph[i];
      if (p.p_type != PT_LOAD) continue;
      if (v >= p.p_vaddr && n <= p.p_filesz && v - p.p_vaddr <= p.p_filesz - n) return g->file + p.p_offset + (v - p.p_vaddr);
    }
    return nullptr;
  }

  bool in_file(std::uint64_t off, std::uint64_t n) const { return off <= g->file_len && n <= g->file_len - off; }

  bool check_header() {
    if (g->file_len < sizeof(Elf64_Ehdr) || std::memcmp(g->file, ELFMAG, SELFMAG) != 0)
      return refuse("not an ELF file (no \\177ELF magic)");
    eh = reinterpret_cast<const Elf64_Ehdr*>(g->file);
    if (eh->e_ident[EI_CLASS] != ELFCLASS64)
      return refuse("wrong class: ", eh->e_ident[EI_CLASS] == ELFCLASS32 ? "ELFCLASS32" : "unknown",
                    " (x86-64 guests are ELFCLASS64)");
    if (eh->e_ident[EI_DATA] != ELFDATA2LSB) return refuse("wrong byte order (x86-64 guests are little-endian)");
    if (eh->e_machine != EM_X86_64) {
      err.str(g->path).str(": wrong machine: e_machine ").u(eh->e_machine).str(" (x86-64 guests are EM_X86_64 = 62)");
      return false;
    }
    if (eh->e_type == ET_EXEC)
      return refuse("not position independent: ET_EXEC (a guest is an ET_DYN shared object: -fPIC -shared)");
    if (eh->e_type != ET_DYN) {
      err.str(g->path).str(": not a shared object: e_type ").u(eh->e_type).str(" (want ET_DYN)");
      return false;
    }
    if (eh->e_phentsize != sizeof(Elf64_Phdr) || !in_file(eh->e_phoff, std::uint64_t{eh->e_phnum} * sizeof(Elf64_Phdr)) ||
        eh->e_phoff % alignof(Elf64_Phdr) != 0)
      return refuse("program headers outside the file or misaligned");
    ph = reinterpret_cast<const Elf64_Phdr*>(g->file + eh->e_phoff);
    return true;
  }

  // Symbol tables from the section headers (.dynsym, .symtab) when the file has them.
  void find_sections() {
    if (eh->e_shoff == 0 || eh->e_shentsize != sizeof(Elf64_Shdr) || eh->e_shoff % alignof(Elf64_Shdr) != 0 ||
        !in_file(eh->e_shoff, std::uint64_t{eh->e_shnum} * sizeof(Elf64_Shdr)))
      return;
    const Elf64_Shdr* sh = reinterpret_cast<const Elf64_Shdr*>(g->file + eh->e_shoff);
    for (unsigned i = 0; i < eh->e_shnum; ++i) {
      if (sh[i].sh_type != SHT_DYNSYM && sh[i].sh_type != SHT_SYMTAB) continue;
      if (sh[i].sh_link >= eh->e_shnum || !in_file(sh[i].sh_offset, sh[i].sh_size) ||
          sh[i].sh_offset % alignof(Elf64_Sym) != 0)
        continue;
      const Elf64_Shdr& str = sh[sh[i].sh_link];
      if (!in_file(str.sh_offset, str.sh_size) || str.sh_size == 0 || g->file[str.sh_offset + str.sh_size - 1] != 0) continue;
      const Elf64_Sym* syms = reinterpret_cast<const Elf64_Sym*>(g->file + sh[i].sh_offset);
      std::size_t n = sh[i].sh_size / sizeof(Elf64_Sym);
      const char* strs = reinterpret_cast<const char*>(g->file + str.sh_offset);
      if (sh[i].sh_type == SHT_DYNSYM) {
        g->dynsym = syms;
        g->ndynsym = n;
        g->dynstr = strs;
        g->dynstr_len = str.sh_size;
      } else {
        g->symtab = syms;
        g->nsymtab = n;
        g->strtab = strs;
        g->strtab_len = str.sh_size;
      }
    }
  }

  bool load();
  bool relocate(const Elf64_Rela* r, std::size_t n);
  bool resolve(std::uint32_t symi, std::uint64_t* out);
  bool tls_reloc(unsigned type, std::uint32_t symi, std::int64_t addend, std::uint64_t* out);

  const Elf64_Phdr* tls = nullptr;  // PT_TLS
};

// R_X86_64_DTPMOD64 / DTPOFF64: the guest's own thread-local variables only (symbol 0 with
// an offset in the addend for the local-dynamic model, or a TLS symbol the guest defines).
bool loader::tls_reloc(unsigned type, std::uint32_t symi, std::int64_t addend, std::uint64_t* out) {
  if (tls == nullptr) return refuse("thread-local storage relocation ", reloc_type_name(type), " without a PT_TLS segment");
  std::uint64_t off = 0;
  if (symi != 0) {
    if (g->dynsym == nullptr || symi >= g->ndynsym) return refuse("relocation names a symbol outside .dynsym");
    const Elf64_Sym& s = g->dynsym[symi];
    const char* name = s.st_name < g->dynstr_len ? g->dynstr + s.st_name : "?";
    if (ELF64_ST_TYPE(s.st_info) != STT_TLS || s.st_shndx == SHN_UNDEF)
      return refuse("thread-local variable ", name, " is not the guest's own (TLS of other modules is not supported)");
    off = s.st_value;
  }
  *out = type == R_X86_64_DTPMOD64 ? 1 : off + static_cast<std::uint64_t>(addend);
  return true;
}

bool loader::resolve(std::uint32_t symi, std::uint64_t* out) {
  *out = 0;
  if (symi == 0) return true;
  if (g->dynsym == nullptr || symi >= g->ndynsym) return refuse("relocation names a symbol outside .dynsym");
  const Elf64_Sym& s = g->dynsym[symi];
  if (s.st_name >= g->dynstr_len) return refuse("a symbol's name lies outside the string table");
  const char* name = g->dynstr + s.st_name;
  if (ELF64_ST_TYPE(s.st_info) == STT_TLS) return refuse("thread-local storage is not supported (symbol ", name, ")");
  if (ELF64_ST_TYPE(s.st_info) == STT_GNU_IFUNC) return refuse("IFUNC symbols are not supported (symbol ", name, ")");
  if (s.st_shndx == SHN_ABS) {
    *out = s.st_value;
    return true;
  }
  if (s.st_shndx != SHN_UNDEF) {
    *out = g->bias + s.st_value;
    return true;
  }
  for (std::size_t i = 0; i < g->opt.nimports; ++i) {
    if (std::strcmp(g->opt.imports[i].name, name) == 0) {
      *out = reinterpret_cast<std::uint64_t>(g->opt.imports[i].fn);
      return true;
    }
  }
  if (void* f = libc_lookup(name)) {
    *out = reinterpret_cast<std::uint64_t>(f);
    return true;
  }
  if (ELF64_ST_BIND(s.st_info) == STB_WEAK) return true;  // an absent weak symbol is 0
  return refuse("missing import: ", name, " (neither in the embedder's imports nor in the guest libc)");
}

bool loader::relocate(const Elf64_Rela* r, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) {
    unsigned type = static_cast<unsigned>(ELF64_R_TYPE(r[i].r_info));
    std::uint32_t symi = static_cast<std::uint32_t>(ELF64_R_SYM(r[i].r_info));
    if (type == R_X86_64_NONE) continue;
    std::uintptr_t where = g->bias + r[i].r_offset;
    if (where < g->img_lo || where + 8 > g->img_hi) {
      err.str(g->path).str(": relocation ").str(reloc_type_name(type)).str(" at ").hex(r[i].r_offset).str(" outside the image");
      return false;
    }
    std::uint64_t s = 0, v = 0;
    switch (type) {
      case R_X86_64_RELATIVE:
        v = g->bias + static_cast<std::uint64_t>(r[i].r_addend);
        break;
      case R_X86_64_GLOB_DAT:
      case R_X86_64_JUMP_SLOT:
        if (!resolve(symi, &s)) return false;
        v = s;
        break;
      case R_X86_64_64:
        if (!resolve(symi, &s)) return false;
        v = s + static_cast<std::uint64_t>(r[i].r_addend);
        break;
      case R_X86_64_DTPMOD64:  // the tls_index of the dynamic TLS models: module 1 is the guest
      case R_X86_64_DTPOFF64:  // ... and the variable's offset in its block
        if (!tls_reloc(type, symi, r[i].r_addend, &v)) return false;
        break;
      default:
        if (is_tls_reloc(type))
          return refuse("thread-local storage relocation ", reloc_type_name(type),
                        " is not supported (only the dynamic models' DTPMOD64/DTPOFF64 through __tls_get_addr: "
                        "the host thread's TLS cannot hold a guest's; build with -ftls-model=global-dynamic)");
        err.str(g->path).str(": unknown relocation ").str(reloc_type_name(type)).str(" (type ").u(type).str(") at offset ")
            .hex(r[i].r_offset);
        return false;
    }
    std::memcpy(reinterpret_cast<void*>(where), &v, sizeof v);  // r_offset need not be aligned
  }
  return true;
}

bool loader::load() {
  if (!check_header()) return false;
  // The PT_LOAD span, and what the object needs that vmrt does not provide.
  std::uint64_t lo = ~std::uint64_t{0}, hi = 0, align = PAGE_SIZE;
  const Elf64_Phdr* dyn = nullptr;
  const Elf64_Phdr* relro = nullptr;
  for (unsigned i = 0; i < eh->e_phnum; ++i) {
    const Elf64_Phdr& p = ph[i];
    if (p.p_type == PT_TLS) tls = &p;
    if (p.p_type == PT_INTERP) return refuse("a program (PT_INTERP), not a shared object");
    if (p.p_type == PT_DYNAMIC) dyn = &p;
    if (p.p_type == PT_GNU_RELRO) relro = &p;
    if (p.p_type != PT_LOAD) continue;
    if (p.p_filesz > p.p_memsz || !in_file(p.p_offset, p.p_filesz) || p.p_memsz > (std::uint64_t{1} << 40) ||
        p.p_vaddr > (std::uint64_t{1} << 40))
      return refuse("a PT_LOAD segment lies outside the file or is too large");
    lo = p.p_vaddr < lo ? p.p_vaddr : lo;
    hi = p.p_vaddr + p.p_memsz > hi ? p.p_vaddr + p.p_memsz : hi;
    if (p.p_align > align && p.p_align <= (std::uint64_t{2} << 20)) align = p.p_align;
  }
  if (hi == 0) return refuse("no PT_LOAD segment");
  lo = trunc_page(lo);
  hi = round_page(hi);
  if (hi - lo > kMaxImage) return refuse("the PT_LOAD segments span more than 256 MiB");
  if (tls != nullptr && (tls->p_filesz > tls->p_memsz || tls->p_memsz > kMaxTls || tls->p_align > PAGE_SIZE ||
                         (tls->p_align & (tls->p_align - 1)) != 0 || tls->p_vaddr < lo ||
                         tls->p_vaddr + tls->p_filesz > hi))
    return refuse("PT_TLS: its image lies outside the PT_LOAD segments, or it is larger than 1 MiB or aligned past a page");
  find_sections();

  // The vmspace: null zone, image, heap area + room for guest mmaps, guard, stack.
  if (vmrt_init() != 0) return refuse("vmrt could not boot");
  std::size_t mem = g->opt.memory_limit, stack = g->opt.stack_size;
  std::size_t size = kImageOffset + align + (hi - lo) + 2 * mem + kStackGuard + stack + (std::size_t{1} << 20);
  g->vs = vmrt_vmspace_create(size);
  if (g->vs == nullptr) return refuse("no room in vmrt's region for the guest's vmspace");
  g->win_lo = reinterpret_cast<std::uintptr_t>(vmrt_vmspace_base(g->vs));
  g->win_hi = g->win_lo + vmrt_vmspace_size(g->vs);
  std::uintptr_t place = (g->win_lo + kImageOffset + align - 1) & ~static_cast<std::uintptr_t>(align - 1);
  g->bias = place - lo;
  g->img_lo = place;
  g->img_hi = place + (hi - lo);
  constexpr int kAnon = MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED;
  // Reservations nobody may map over: the null zone and the stack guard (PROT_NONE).
  if (vmrt_mmap(g->vs, reinterpret_cast<void*>(g->win_lo), place - g->win_lo, PROT_NONE, kAnon | MAP_NORESERVE, -1, 0) ==
      VMRT_MAP_FAILED)
    return refuse("cannot reserve the null zone");
  g->stack_hi = g->win_hi;
  g->stack_lo = g->stack_hi - stack;
  g->guard_lo = g->stack_lo - kStackGuard;
  if (vmrt_mmap(g->vs, reinterpret_cast<void*>(g->guard_lo), kStackGuard, PROT_NONE, kAnon | MAP_NORESERVE, -1, 0) ==
          VMRT_MAP_FAILED ||
      vmrt_mmap(g->vs, reinterpret_cast<void*>(g->stack_lo), stack - kStackPopulate, PROT_READ | PROT_WRITE,
                kAnon | MAP_NORESERVE, -1, 0) == VMRT_MAP_FAILED ||
      vmrt_mmap(g->vs, reinterpret_cast<void*>(g->stack_hi - kStackPopulate), kStackPopulate, PROT_READ | PROT_WRITE,
                kAnon | MAP_POPULATE, -1, 0) == VMRT_MAP_FAILED)
    return refuse("cannot map the stack");
  // The image, writable while it is filled and relocated; a small one is populated (it is
  // written at once: one call instead of a fault a page, which under the userfaultfd
  // backend is a round trip to the handler thread).
  int populate = g->img_hi - g->img_lo <= kPopulateImage ? MAP_POPULATE : 0;
  if (vmrt_mmap(g->vs, reinterpret_cast<void*>(g->img_lo), g->img_hi - g->img_lo, PROT_READ | PROT_WRITE,
                kAnon | populate, -1, 0) == VMRT_MAP_FAILED)
    return refuse("cannot map the image");
  for (unsigned i = 0; i < eh->e_phnum; ++i)
    if (ph[i].p_type == PT_LOAD && ph[i].p_filesz != 0)
      std::memcpy(reinterpret_cast<void*>(g->bias + ph[i].p_vaddr), g->file + ph[i].p_offset, ph[i].p_filesz);
  // The heap area.
  // The heap area: reserved PROT_NONE, made writable in kHeapCommit steps as the heap
  // grows (what the pmap does per writable page is then paid for pages the heap uses).
  void* h = vmrt_mmap(g->vs, nullptr, mem, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (h == VMRT_MAP_FAILED) return refuse("cannot map the heap area");
  g->hp.lo = g->hp.brk = g->hp.committed = reinterpret_cast<std::uintptr_t>(h);
  g->hp.hi = g->hp.lo + mem;
  // The TLS block, from the guest's heap (filled from the relocated image below).
  if (tls != nullptr && tls->p_memsz != 0) {
    std::size_t align = tls->p_align > 16 ? tls->p_align : 16;
    void* b = heap_malloc(g, tls->p_memsz + align);
    if (b == nullptr) return refuse("no room in the guest's memory limit for its thread-local storage");
    g->tls_block = (reinterpret_cast<std::uintptr_t>(b) + align - 1) & ~(align - 1);
    g->tls_size = tls->p_memsz;
  }

  // The dynamic section (read from the file: the guest's copy is the guest's).
  std::uint64_t rela = 0, relasz = 0, jmprel = 0, pltrelsz = 0, init = 0, init_array = 0, init_arraysz = 0;
  std::uint64_t dt_symtab = 0, dt_strtab = 0, dt_strsz = 0, dt_hash = 0;
  if (dyn != nullptr) {
    if (!in_file(dyn->p_offset, dyn->p_filesz) || dyn->p_offset % alignof(Elf64_Dyn) != 0)
      return refuse("PT_DYNAMIC outside the file or misaligned");
    const Elf64_Dyn* d = reinterpret_cast<const Elf64_Dyn*>(g->file + dyn->p_offset);
    std::size_t nd = dyn->p_filesz / sizeof(Elf64_Dyn);
    for (std::size_t i = 0; i < nd && d[i].d_tag != DT_NULL; ++i) {
      std::uint64_t v = d[i].d_un.d_val;
      switch (d[i].d_tag) {
        case DT_RELA: rela = v; break;
        case DT_RELASZ: relasz = v; break;
        case DT_RELAENT: if (v != sizeof(Elf64_Rela)) return refuse("DT_RELAENT is not sizeof(Elf64_Rela)"); break;
        case DT_JMPREL: jmprel = v; break;
        case DT_PLTRELSZ: pltrelsz = v; break;
        case DT_PLTREL: if (v != DT_RELA) return refuse("DT_PLTREL is not DT_RELA (REL relocations are not x86-64's)"); break;
        case DT_REL: case DT_RELSZ: return refuse("REL relocations (DT_REL) are not supported: x86-64 uses RELA");
        case DT_RELR: return refuse("packed relative relocations (DT_RELR) are not supported");
        case DT_INIT: init = v; break;
        case DT_INIT_ARRAY: init_array = v; break;
        case DT_INIT_ARRAYSZ: init_arraysz = v; break;
        case DT_SYMTAB: dt_symtab = v; break;
        case DT_STRTAB: dt_strtab = v; break;
        case DT_STRSZ: dt_strsz = v; break;
        case DT_HASH: dt_hash = v; break;
        default: break;  // DT_NEEDED is ignored: imports bind to the embedder's table and the guest libc
      }
    }
  }
  // No section headers: .dynsym from DT_SYMTAB, its size from DT_HASH's nchain.
  if (g->dynsym == nullptr && dt_symtab != 0 && dt_strtab != 0 && dt_hash != 0 && dt_strsz != 0) {
    const std::uint32_t* hash = static_cast<const std::uint32_t*>(file_ptr(dt_hash, 8));
    if (hash != nullptr && aligned(hash, alignof(std::uint32_t)) && aligned(file_ptr(dt_symtab, 0), alignof(Elf64_Sym))) {
      g->ndynsym = hash[1];
      g->dynsym = static_cast<const Elf64_Sym*>(file_ptr(dt_symtab, g->ndynsym * sizeof(Elf64_Sym)));
      g->dynstr = static_cast<const char*>(file_ptr(dt_strtab, dt_strsz));
      g->dynstr_len = dt_strsz;
      if (g->dynsym == nullptr || g->dynstr == nullptr || g->dynstr[dt_strsz - 1] != '\0') {
        g->dynsym = nullptr;
        g->ndynsym = 0;
        g->dynstr = nullptr;
        g->dynstr_len = 0;
      }
    }
  }
  if (g->symtab == nullptr) {
    g->symtab = g->dynsym;
    g->nsymtab = g->ndynsym;
    g->strtab = g->dynstr;
    g->strtab_len = g->dynstr_len;
  }
  if (relasz != 0) {
    const Elf64_Rela* r = static_cast<const Elf64_Rela*>(file_ptr(rela, relasz));
    if (r == nullptr || !aligned(r, alignof(Elf64_Rela))) return refuse("DT_RELA outside the file or misaligned");
    if (!relocate(r, relasz / sizeof(Elf64_Rela))) return false;
  }
  if (pltrelsz != 0) {
    const Elf64_Rela* r = static_cast<const Elf64_Rela*>(file_ptr(jmprel, pltrelsz));
    if (r == nullptr || !aligned(r, alignof(Elf64_Rela))) return refuse("DT_JMPREL outside the file or misaligned");
    if (!relocate(r, pltrelsz / sizeof(Elf64_Rela))) return false;
  }
  // The TLS block gets the initialisation image as relocated (.tdata), then zeros (.tbss).
  if (g->tls_block != 0) {
    std::memcpy(reinterpret_cast<void*>(g->tls_block), reinterpret_cast<const void*>(g->bias + tls->p_vaddr), tls->p_filesz);
    std::memset(reinterpret_cast<void*>(g->tls_block + tls->p_filesz), 0, tls->p_memsz - tls->p_filesz);
  }

  // Protections: each segment's pages; a page two segments share gets both's rights.
  std::uintptr_t prev_last = 0;
  int prev_prot = 0;
  for (unsigned i = 0; i < eh->e_phnum; ++i) {
    const Elf64_Phdr& p = ph[i];
    if (p.p_type != PT_LOAD || p.p_memsz == 0) continue;
    std::uintptr_t a = trunc_page(g->bias + p.p_vaddr), b = round_page(g->bias + p.p_vaddr + p.p_memsz);
    int prot = prot_of(p.p_flags);
    if (vmrt_mprotect(g->vs, reinterpret_cast<void*>(a), b - a, prot) != 0) return refuse("mprotect of a segment failed");
    if (a == prev_last && vmrt_mprotect(g->vs, reinterpret_cast<void*>(a), PAGE_SIZE, prot | prev_prot) != 0)
      return refuse("mprotect of a shared page failed");
    prev_last = b - PAGE_SIZE;
    prev_prot = prot;
  }
  if (relro != nullptr) {
    std::uintptr_t a = trunc_page(g->bias + relro->p_vaddr), b = trunc_page(g->bias + relro->p_vaddr + relro->p_memsz);
    if (b > a && vmrt_mprotect(g->vs, reinterpret_cast<void*>(a), b - a, PROT_READ) != 0)
      return refuse("mprotect of PT_GNU_RELRO failed");
  }

  // Initialisers, in the guest: DT_INIT, then DT_INIT_ARRAY in order.
  vmrt_guest_trap t;
  std::uintptr_t fns[1] = {init != 0 ? g->bias + init : 0};
  for (std::uintptr_t f : fns)
    if (f != 0 && run_void(g, reinterpret_cast<void*>(f), &t) != VMRT_GUEST_OK) return refuse("DT_INIT trapped: ", t.message);
  if (init_arraysz != 0) {
    std::uintptr_t arr = g->bias + init_array;
    if (arr < g->img_lo || init_arraysz > g->img_hi - arr || arr % 8 != 0)
      return refuse("DT_INIT_ARRAY outside the image or misaligned");
    for (std::size_t i = 0; i < init_arraysz / 8; ++i) {
      std::uintptr_t f = reinterpret_cast<const std::uintptr_t*>(arr)[i];
      if (f == 0 || f == ~std::uintptr_t{0}) continue;
      if (run_void(g, reinterpret_cast<void*>(f), &t) != VMRT_GUEST_OK) return refuse("an init function trapped: ", t.message);
    }
  }
  return true;
}

// Undo a load (the record itself stays: path, options, imports, prepared functions).
void unload(vmrt_guest* g) {
  if (g->snap != nullptr) vmrt_vmspace_destroy(g->snap);
  g->snap = nullptr;
  if (!family_unload(g)) {  // a forked guest's window and file are its family's
    if (g->vs != nullptr) vmrt_vmspace_destroy(g->vs);
    if (g->file != nullptr) vmrt::sys::munmap(const_cast<unsigned char*>(g->file), g->file_len);
  }
  g->vs = nullptr;
  g->file = nullptr;
  g->file_len = 0;
  g->dynsym = g->symtab = nullptr;
  g->ndynsym = g->nsymtab = 0;
  g->dynstr = g->strtab = nullptr;
  g->dynstr_len = g->strtab_len = 0;
  std::memset(&g->hp, 0, sizeof g->hp);
  g->win_lo = g->win_hi = g->bias = g->img_lo = g->img_hi = g->stack_lo = g->stack_hi = g->guard_lo = 0;
}

// Map the file and load it into g (g's path and options set).
bool load_into(vmrt_guest* g, char* err, std::size_t errlen) {
  loader L(g, err, errlen);
  int fd = ::open(g->path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return L.refuse("cannot open: ", std::strerror(errno));
  struct stat st;
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size == 0) {
    ::close(fd);
    return L.refuse("not a regular, non-empty file");
  }
  void* p = vmrt::sys::mmap(nullptr, static_cast<std::size_t>(st.st_size), PROT_READ, MAP_PRIVATE, fd, 0);
  ::close(fd);
  if (p == MAP_FAILED) return L.refuse("cannot map the file: ", std::strerror(errno));
  g->file = static_cast<const unsigned char*>(p);
  g->file_len = static_cast<std::size_t>(st.st_size);
  if (!L.load()) {
    unload(g);
    return false;
  }
  return true;
}

}  // namespace

// The symbol of g whose range holds a (functions and objects of .symtab, else .dynsym).
const char* symbolize(const vmrt_guest* g, std::uintptr_t a, std::size_t* off) {
  if (g == nullptr || a < g->img_lo || a >= g->img_hi || g->symtab == nullptr) return nullptr;
  std::uint64_t v = a - g->bias;
  const Elf64_Sym* best = nullptr;
  for (std::size_t i = 1; i < g->nsymtab; ++i) {
    const Elf64_Sym& s = g->symtab[i];
    int type = ELF64_ST_TYPE(s.st_info);
    if (s.st_shndx == SHN_UNDEF || (type != STT_FUNC && type != STT_OBJECT && type != STT_NOTYPE)) continue;
    if (s.st_name == 0 || s.st_name >= g->strtab_len || s.st_value > v) continue;
    bool inside = v < s.st_value + (s.st_size != 0 ? s.st_size : 1);
    if (inside && (best == nullptr || s.st_value >= best->st_value)) best = &s;
  }
  if (best == nullptr) return nullptr;
  *off = v - best->st_value;
  return g->strtab + best->st_name;
}

}  // namespace vmrt::guest

using namespace vmrt::guest;
using vmrt::round_page;

extern "C" {

int vmrt_guest_load(const char* path, const vmrt_guest_options* opt, vmrt_guest** out, char* err, size_t errlen) {
  if (err != nullptr && errlen != 0) err[0] = '\0';
  if (out != nullptr) *out = nullptr;
  if (path == nullptr || out == nullptr || std::strlen(path) >= sizeof(vmrt_guest::path)) {
    vmrt::vm_out(err, errlen).str("vmrt_guest_load: bad arguments (path, out)");
    errno = EINVAL;
    return -1;
  }
  vmrt_guest* g = static_cast<vmrt_guest*>(host_alloc(sizeof(vmrt_guest)));
  if (g == nullptr) {
    vmrt::vm_out(err, errlen).str(path).str(": out of host memory");
    errno = ENOMEM;
    return -1;
  }
  std::memcpy(g->path, path, std::strlen(path) + 1);
  if (opt != nullptr) g->opt = *opt;
  if (g->opt.memory_limit == 0) g->opt.memory_limit = kDefaultMemoryLimit;
  if (g->opt.stack_size == 0) g->opt.stack_size = kDefaultStack;
  g->opt.memory_limit = round_page(g->opt.memory_limit);
  g->opt.stack_size = round_page(g->opt.stack_size);
  if (g->opt.stack_size < kMinStack) g->opt.stack_size = kMinStack;
  // The import table, copied (names too): reset() binds again after the caller's table is gone.
  if (g->opt.nimports != 0 && g->opt.imports != nullptr) {
    std::size_t n = g->opt.nimports * sizeof(vmrt_guest_import);
    for (std::size_t i = 0; i < g->opt.nimports; ++i) n += std::strlen(g->opt.imports[i].name) + 1;
    char* m = static_cast<char*>(host_alloc(n));
    if (m == nullptr) {
      host_free(g, sizeof *g);
      errno = ENOMEM;
      return -1;
    }
    vmrt_guest_import* tab = reinterpret_cast<vmrt_guest_import*>(m);
    char* names = m + g->opt.nimports * sizeof(vmrt_guest_import);
    for (std::size_t i = 0; i < g->opt.nimports; ++i) {
      std::size_t len = std::strlen(g->opt.imports[i].name) + 1;
      std::memcpy(names, g->opt.imports[i].name, len);
      tab[i].name = names;
      tab[i].fn = g->opt.imports[i].fn;
      names += len;
    }
    g->opt.imports = tab;
    g->imports_mem = m;
    g->imports_mem_len = n;
  } else {
    g->opt.imports = nullptr;
    g->opt.nimports = 0;
  }
  if (vmrt_init() != 0 || !signals_acquire()) {
    vmrt::vm_out(err, errlen).str(path).str(": cannot install the guest signal handlers");
    host_free(g->imports_mem, g->imports_mem_len);
    host_free(g, sizeof *g);
    errno = ENOMEM;
    return -1;
  }
  if (!load_into(g, err, errlen)) {
    signals_release();
    host_free(g->imports_mem, g->imports_mem_len);
    host_free(g, sizeof *g);
    errno = ENOEXEC;
    return -1;
  }
  *out = g;
  return 0;
}

void vmrt_guest_destroy(vmrt_guest* g) {
  if (g == nullptr) return;
  unload(g);
  for (prepared* p = g->funcs; p != nullptr;) {
    prepared* next = p->next;
    host_free(p, sizeof *p);
    p = next;
  }
  host_free(g->imports_mem, g->imports_mem_len);
  host_free(g, sizeof *g);
  signals_release();
}

int vmrt_guest_reset(vmrt_guest* g, char* err, size_t errlen) {
  if (err != nullptr && errlen != 0) err[0] = '\0';
  if (g == nullptr || g->owner.load() != 0) {
    vmrt::vm_out(err, errlen).str("vmrt_guest_reset: no guest, or a call is in progress");
    errno = EINVAL;
    return -1;
  }
  unload(g);
  if (!load_into(g, err, errlen)) {
    errno = ENOEXEC;
    return -1;
  }
  reprepare(g);
  return 0;
}

vmrt_vmspace* vmrt_guest_vmspace(const vmrt_guest* g) { return g != nullptr ? g->vs : nullptr; }

void* vmrt_guest_symbol(const vmrt_guest* g, const char* name) {
  if (g == nullptr || name == nullptr || g->dynsym == nullptr) return nullptr;
  for (std::size_t i = 1; i < g->ndynsym; ++i) {
    const Elf64_Sym& s = g->dynsym[i];
    if (s.st_shndx == SHN_UNDEF || ELF64_ST_BIND(s.st_info) == STB_LOCAL || s.st_name >= g->dynstr_len) continue;
    if (std::strcmp(g->dynstr + s.st_name, name) == 0) return reinterpret_cast<void*>(g->bias + s.st_value);
  }
  return nullptr;
}

}  // extern "C"
