// rt_dynsym.cpp — batch RTLD_NEXT lookup in the GNU hash tables (rt_dynsym.h).
#include "runtime/rt_dynsym.h"

#include <cstdint>
#include <cstring>
#include <dlfcn.h>
#include <elf.h>

namespace vmrt::rt {
namespace {

// One object's dynamic symbol table, read from its dynamic section.
struct dyn_tables {
  const std::uint32_t* gnu_hash = nullptr;
  const ElfW(Sym)* symtab = nullptr;
  const char* strtab = nullptr;
  const ElfW(Half)* versym = nullptr;
};

// The loader rewrites most d_ptr entries to addresses when it relocates an object; an entry
// it left as an offset (a read-only dynamic section) is below the load address.
template <class T> const T* dyn_ptr(const link_map* l, ElfW(Addr) v) {
  return reinterpret_cast<const T*>(v < l->l_addr ? v + l->l_addr : v);
}

bool tables_of(const link_map* l, dyn_tables* t) {
  if (l->l_ld == nullptr) return false;
  for (const ElfW(Dyn)* d = l->l_ld; d->d_tag != DT_NULL; ++d) {
    switch (d->d_tag) {
      case DT_GNU_HASH: t->gnu_hash = dyn_ptr<std::uint32_t>(l, d->d_un.d_ptr); break;
      case DT_SYMTAB: t->symtab = dyn_ptr<ElfW(Sym)>(l, d->d_un.d_ptr); break;
      case DT_STRTAB: t->strtab = dyn_ptr<char>(l, d->d_un.d_ptr); break;
      case DT_VERSYM: t->versym = dyn_ptr<ElfW(Half)>(l, d->d_un.d_ptr); break;
      default: break;
    }
  }
  return t->gnu_hash != nullptr && t->symtab != nullptr && t->strtab != nullptr;
}

std::uint32_t gnu_hash(const char* s) {
  std::uint32_t h = 5381;
  for (; *s != '\0'; ++s) h = h * 33 + static_cast<unsigned char>(*s);
  return h;
}

enum class found : std::uint8_t { none, symbol, ask_dlsym };

// The GNU hash lookup of `name` in one object (ELF gABI, "GNU hash"; glibc's do_lookup_x):
// its definition there, if any.  An unversioned request takes a symbol of version index 0
// or 1 (local, global: no version) at once; otherwise the single non-hidden versioned one.
found lookup(const link_map* l, const dyn_tables& t, const char* name, std::uint32_t h, void** out) {
  const std::uint32_t nbuckets = t.gnu_hash[0], symoffset = t.gnu_hash[1], bloom_size = t.gnu_hash[2],
                      bloom_shift = t.gnu_hash[3];
  if (nbuckets == 0 || bloom_size == 0) return found::none;
  const auto* bloom = reinterpret_cast<const ElfW(Addr)*>(t.gnu_hash + 4);
  const std::uint32_t* buckets = reinterpret_cast<const std::uint32_t*>(bloom + bloom_size);
  const std::uint32_t* chain = buckets + nbuckets;
  constexpr unsigned kWordBits = 8 * sizeof(ElfW(Addr));
  const ElfW(Addr) word = bloom[(h / kWordBits) & (bloom_size - 1)];
  const ElfW(Addr) mask = (ElfW(Addr){1} << (h % kWordBits)) | (ElfW(Addr){1} << ((h >> bloom_shift) % kWordBits));
  if ((word & mask) != mask) return found::none;
  std::uint32_t i = buckets[h % nbuckets];
  if (i < symoffset) return found::none;
  const ElfW(Sym)* versioned = nullptr;
  unsigned nversioned = 0;
  for (;; ++i) {
    const std::uint32_t ch = chain[i - symoffset];
    if (((ch ^ h) >> 1) == 0) {
      const ElfW(Sym)& s = t.symtab[i];
      const unsigned type = ELF64_ST_TYPE(s.st_info), bind = ELF64_ST_BIND(s.st_info);
      const bool defined = s.st_shndx != SHN_UNDEF && (s.st_value != 0 || type == STT_TLS);
      // The types glibc's lookup takes (its ALLOWED_STT).
      const bool kind = type == STT_FUNC || type == STT_OBJECT || type == STT_NOTYPE || type == STT_COMMON ||
                        type == STT_TLS || type == STT_GNU_IFUNC;
      if (defined && kind && (bind == STB_GLOBAL || bind == STB_WEAK || bind == STB_GNU_UNIQUE) &&
          std::strcmp(t.strtab + s.st_name, name) == 0) {
        const ElfW(Half) v = t.versym != nullptr ? t.versym[i] : 0;
        if ((v & 0x7fff) < 2) {
          versioned = &s;
          nversioned = 1;
          break;
        }
        if ((v & 0x8000) == 0) {  // hidden versions are never taken by an unversioned request
          versioned = &s;
          ++nversioned;
        }
      }
    }
    if ((ch & 1) != 0) break;
  }
  if (nversioned == 0) return found::none;
  // Several default versions (never in glibc), an indirect function (its resolver must
  // run) or a thread-local variable (its address is per thread): dlsym's to answer.
  const unsigned type = ELF64_ST_TYPE(versioned->st_info);
  if (nversioned != 1 || type == STT_GNU_IFUNC || type == STT_TLS) return found::ask_dlsym;
  *out = reinterpret_cast<void*>(l->l_addr + versioned->st_value);
  return found::symbol;
}

bool is_vdso(const link_map* l) {
  return l->l_name != nullptr && std::strncmp(l->l_name, "linux-vdso", 10) == 0;
}

}  // namespace

void dynsym_next(const link_map* self, const char* const* names, void** out, std::size_t n, std::size_t* unresolved) {
  constexpr std::size_t kMaxNames = 64;  // more than any caller passes: the rest go to dlsym
  enum : std::uint8_t { kLooking = 0, kFound = 1, kAskDlsym = 2 };
  std::uint8_t state[kMaxNames] = {};
  std::uint32_t hash[kMaxNames];
  const std::size_t m = n < kMaxNames ? n : kMaxNames;
  for (std::size_t i = 0; i < n; ++i) out[i] = nullptr;
  for (std::size_t i = 0; i < m; ++i) hash[i] = gnu_hash(names[i]);
  std::size_t looking = m;
  for (const link_map* l = self != nullptr ? self->l_next : nullptr; l != nullptr && looking != 0; l = l->l_next) {
    if (is_vdso(l)) continue;
    dyn_tables t;
    if (!tables_of(l, &t)) break;  // no GNU hash table: the rest is dlsym's to find
    for (std::size_t i = 0; i < m; ++i) {
      if (state[i] != kLooking) continue;
      const found f = lookup(l, t, names[i], hash[i], &out[i]);
      if (f == found::none) continue;
      state[i] = f == found::symbol ? kFound : kAskDlsym;
      --looking;
    }
  }
  std::size_t miss = n - m;
  for (std::size_t i = 0; i < m; ++i) {
    if (state[i] == kFound) continue;
    out[i] = nullptr;
    ++miss;
  }
  if (unresolved != nullptr) *unresolved = miss;
}

const link_map* dynsym_object_at(const void* base) {
  const auto b = reinterpret_cast<ElfW(Addr)>(base);
  for (const link_map* l = _r_debug.r_map; l != nullptr; l = l->l_next)
    if (l->l_addr == b) return l;
  return nullptr;
}

const link_map* dynsym_object_of(const void* addr) {
  Dl_info info;
  link_map* l = nullptr;
  if (dladdr1(addr, &info, reinterpret_cast<void**>(&l), RTLD_DL_LINKMAP) == 0) return nullptr;
  return l;
}

}  // namespace vmrt::rt
