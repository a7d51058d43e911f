// vmspace_revert.h — bring an address space back to an image of itself, or hand its
// addresses over to a sibling, doing work proportional to what differs (issue 10's warm
// guests: restore and fork in microseconds).
//
// The image is a copy-on-write copy of the vmspace (vmspace_fork).  After the fork both
// sides map the same objects needs-copy, so everything the live side writes afterwards
// lands in shadow objects in front of the image's objects (McKusick et al., "Shadow
// Objects"; Cranor's UVM dissertation calls the same pages anons in an amap above the
// backing object).  The pages written since the fork are exactly the resident pages of
// those shadows, and only their translations are wrong for the image: reverting drops
// the shadows, removes the translations of their pages and leaves every other translation
// (the image's pages, mapped read-only) in place.  Removing a translation costs the host a
// TLB shootdown (tens of microseconds under nested virtualisation when the process has
// other threads), so a revert prefers copying the image's bytes back into the private
// pages through the direct map, which keeps them mapped and writable; it drops them when
// there are many, or when a fork shares them.  Map entries added, removed or reshaped since are rebuilt from the
// image one by one; the rest is untouched.
//
// Both calls take the VM lock themselves.
#pragma once

#include <cstdint>

#include "vm/vm_types.h"

namespace vmrt {

struct vmspace;

// What a revert or switch did (tests and benchmarks read it).
struct vmspace_revert_stats {
  std::uint64_t entries_kept;      // entries that kept their place (only private pages dropped)
  std::uint64_t entries_rebuilt;   // entries removed, or copied again from the image
  std::uint64_t pages_unmapped;    // private pages dropped, their translations removed
  std::uint64_t pages_copied;      // private pages given the image's bytes again (revert)
};

// Tunables (tests and benchmarks flip them to compare the two ways of reverting a page).
struct vmspace_revert_tunables {
  // An entry whose private pages are all in one object of at most this many resident pages
  // gets the image's bytes copied back into them (they stay mapped and private: no host
  // call, no fault on the next write) instead of dropping them (0: always drop).
  std::uint64_t copy_back_max = 4096;
};
extern vmspace_revert_tunables g_revert_tunables;

// Make vs show exactly what img shows (img's entries at vs's addresses: vs.min - img.min
// apart), sharing img's objects copy-on-write, as if vs had just been forked from img.
// Work: O(entries x log entries) plus the resident pages of the objects vs added in front
// of img's since they last matched (copied back, or dropped: vmspace_revert_tunables);
// entries whose shape (bounds, protections, inheritance,
// flags) differs from img's are deleted and copied again.
//  => takes the VM lock; vs and img cover ranges of the same size; neither holds submaps
//     or host-memory entries (KERN_NOT_SUPPORTED, nothing changed).
//  => KERN_RESOURCE_SHORTAGE when out of map entries while copying: vs is then left with
//     holes where img has entries (the caller destroys or reverts it again).
//  => never sleeps; the caller keeps threads out of vs (its pages are unmapped under them).
kern_return_t vmspace_revert(vmspace* vs, vmspace* img, vmspace_revert_stats* st = nullptr);

// Hand the translations of the addresses `out` and `in` share over from out to in: both
// cover the same range (a sibling made by vmspace_fork over another pmap with the same
// bounds), out's pmap holds the live translations.  On return out's pmap keeps only
// translations that are right for in too (pages both see through a common object), and the
// reservations follow in's entries; the caller then makes in's pmap the live one and out's
// inert.  Work: the resident pages of the objects each side added in front of their common
// objects, plus the whole range of entries whose shapes differ.
// out null: nothing is installed (nothing mapped there): in's reservations are set through
// in's pmap, which the caller has made live.
//  => takes the VM lock; same bounds (KERN_INVALID_ARGUMENT otherwise); no submaps or
//     host-memory entries (KERN_NOT_SUPPORTED).  Changes no map entry.
kern_return_t vmspace_switch(vmspace* out, vmspace* in, vmspace_revert_stats* st = nullptr);

}  // namespace vmrt
