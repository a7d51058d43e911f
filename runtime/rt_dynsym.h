// rt_dynsym.h — the next definition of a symbol in the loaded objects, looked up in their
// own GNU hash tables: dlsym(RTLD_NEXT, name) for a batch of names, without dlsym.
//
// The shim wraps ~40 libc functions (read, write, fwrite, pthread_create, ...) and calls
// glibc's definitions through slots filled at load.  Each dlsym(RTLD_NEXT) finds the
// caller's object, sets up the loader's error catching and walks the scope: ~0.9 us a name
// on these guests, 33 us of every process's start for the shim's 37 names (measured with
// rdtsc around the calls in a preloaded constructor).  Here one pass over each object after
// the caller's, in link-map order (the global scope's order for the objects loaded at
// start), reads the object's GNU hash table once per name: the ELF gABI lookup with glibc's
// rule for an unversioned request (a symbol of the base or global version is taken at once;
// of versioned ones, the one default, non-hidden version: what dlsym returns).
//
// What this lookup does not decide is left to dlsym: an indirect function (its resolver
// must run), a name found nowhere, an object without a GNU hash table.  So the answer is
// always dlsym's own.  (The vDSO's link map, which is not in the global scope, is skipped.)
#pragma once

#include <cstddef>
#include <link.h>

namespace vmrt::rt {

// For each i < n: out[i] = the address of the first definition of names[i] in the objects
// that follow `self` in the link-map chain, or nullptr when this lookup cannot say (the
// caller asks dlsym for those; `unresolved` counts them when not null).
//  => no lock, no malloc; reads the loaded objects' dynamic sections (call after the loader
//     has relocated them: from a constructor or later).
void dynsym_next(const link_map* self, const char* const* names, void** out, std::size_t n,
                 std::size_t* unresolved = nullptr);

// The link map of the object loaded at `base` (its ELF header: __ehdr_start), found in the
// loader's list of objects (_r_debug), or nullptr.  No lock, no call into libc.
const link_map* dynsym_object_at(const void* base);
// The link map of the object holding address `addr` (dladdr1), or nullptr.
const link_map* dynsym_object_of(const void* addr);

}  // namespace vmrt::rt
