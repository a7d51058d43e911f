// pmap_linux_vmas.cpp — the pmap's share of the host's mapping limit (vm.max_map_count):
// near it, frame mappings give host VMAs back.
//
// A run of frames the pmap maps is one host VMA unless its neighbours map the frames next to
// its own (the host merges only consecutive offsets of the memfd).  A page paged in gets
// whatever frame is free, so a process whose pages come back in random order ends with a VMA
// or two for every resident page, and one for every stale page (paged out, its VMA still
// mapping the frame it had: pmap_linux_impl.h, Z_STALE).  With 256 MiB of physmem (65,536
// frames) that passes Linux's default limit of 65,530: a JVM whose 600 MiB heap was paged
// through 256M (`-XX:-UseCompressedOops`, so the heap is vmrt's), and a C program touching
// 600 MiB at random, ended with an assertion or a SIGBUS when the host refused the next
// mapping.
//
// The pmap's mappings are a cache of the VM's: any mapping that is not wired may be
// forgotten, and the next access faults it back in (McKusick et al., the machine-dependent
// layer "need not keep a complete record of all mappings").  FreeBSD's amd64 pmap does so
// when it runs out of pv entries (reclaim_pv_chunk takes mappings from other pmaps).  Here,
// when the estimate of the process's VMAs passes the pmap's share (rt_vma_budget.h), a hand
// sweeps the region's chunks and, in each chunk whose pages make several VMAs, puts one
// reservation back over every run of pages it may forget: first runs of stale and
// never-resident pages (nothing to fault back: they are not mapped for the VM), then, if
// that was not enough, resident pages too, unless wired (kmem, mlock) or host memory (its
// bytes are the host's page, not a frame).  The sweep stops a headroom below the share, so
// the next one is thousands of mappings away.
//
// Known limit: under userfaultfd, putting a reservation back is an anonymous PROT_NONE
// mapping, registered, then opened (host_reserve_try); a system call touching one of those
// pages in that instant gets EFAULT.  Only near the limit, where the host refused instead.
#include "runtime/pmap_linux_impl.h"

#include "runtime/rt_vma_budget.h"
#include "vm/vm_out.h"

namespace vmrt::rt::pml {

namespace {

// A chunk is swept when its pages make at least this many VMA boundaries.
constexpr std::int64_t kMinBreaks = 4;
// After a sweep that could not reach its target, this many later calls do not sweep (unless
// forced): a program that fills the limit with its own mappings leaves nothing to give back,
// and each sweep reads the tables of every chunk in use.
constexpr unsigned kFruitlessPause = 256;

VMRT_COLD_BSS std::size_t g_hand VMRT_GUARDED_BY(g_lock);  // the next chunk to look at
VMRT_COLD_BSS unsigned g_pause VMRT_GUARDED_BY(g_lock);     // sweeps skipped before the next try
VMRT_COLD_BSS bool g_said_full VMRT_GUARDED_BY(g_lock);     // the "nothing left to give back" message was printed

enum class sweep_kind { stale, resident };

// May page p be left to the fault path?  Stale and never-resident pages always; resident ones
// in the second sweep, unless wired; host memory never.  => pmap lock and VM lock held.
bool forgettable(std::size_t p, sweep_kind kind) VMRT_REQUIRES(g_vm_lock, g_lock) {
  if (hostmem_of(p) != 0) return false;
  const std::uint8_t b = bits_of(p);
  if ((b & B_MAPPED) == 0) return true;
  if (kind == sweep_kind::stale) return false;
  return vm_page_from_frame(g_pte[p].frame1 - 1)->wire_count == 0;
}

// Does page p's host VMA map a frame (resident, or stale)?  => pmap lock held.
bool holds_frame(std::size_t p) VMRT_REQUIRES(g_lock) {
  return chunk_dirty(p >> kChunkShift) && ((g_bits[p] & B_MAPPED) != 0 || g_zap[p] == Z_STALE);
}

// Put reservations back over [a, e): its resident pages are unmapped (their pages stay in
// their objects), stale ones forget their old frame.  Each group of one reservation
// (for_each_resv_group) is replaced only when the host accepts the new mapping; false when
// it refused one (the rest is left as it was).  => pmap lock and VM lock held.
bool forget_run(std::size_t a, std::size_t e) VMRT_REQUIRES(g_vm_lock, g_lock) {
  const std::int64_t before = breaks(a, e);
  const bool ok = for_each_resv_group(a, e, [](std::size_t p, std::size_t q, vm_prot_t r) VMRT_REQUIRES(g_lock) {
    // The host first: a refusal leaves the tables describing what the host still maps.
    if (!host_reserve_try(p, q - p, r)) return false;
    for (std::size_t k = p; k < q; ++k) {
      const std::uint8_t b = g_bits[k];
      if ((b & B_MAPPED) != 0) {
        pv_unlink(k);
        --g_chunk[k >> kChunkShift];
        rt_count(RC_VMA_PAGES_UNMAPPED);
      }
      g_pte[k].frame1 = 0;
      store_bits(k, static_cast<std::uint8_t>(b & B_RESV));
    }
    return true;
  });
  const std::int64_t gained = before - breaks(a, e);
  rt_host_vmas_add(-gained);
  if (gained > 0) rt_count(RC_VMA_GIVEN_BACK, gained);
  return ok;
}

// Sweep chunk c: every maximal run of forgettable pages that has a VMA boundary inside gets
// one reservation.  False when the host refused.  => pmap lock and VM lock held.
bool sweep_chunk(std::size_t c, sweep_kind kind) VMRT_REQUIRES(g_vm_lock, g_lock) {
  const std::size_t lo = c << kChunkShift, hi = lo + kChunkPages;
  std::size_t p = lo;
  while (p < hi) {
    if (!forgettable(p, kind)) {
      ++p;
      continue;
    }
    // Only a run with a frame mapped somewhere in it has VMAs to give: reservations of
    // different protections stay apart whatever is done.
    bool frames = holds_frame(p);
    std::size_t q = p + 1;
    for (; q < hi && forgettable(q, kind); ++q) frames = frames || holds_frame(q);
    if (frames && q - p > 1 && breaks(p + 1, q - 1) > 0 && !forget_run(p, q)) return false;
    p = q;
  }
  return true;
}

// One turn of the hand over every chunk in use (skipping the chunks of [xi, xe)), until the
// excess is at most `target`.  False when the host refused a mapping.
bool sweep(sweep_kind kind, std::size_t xi, std::size_t xe, std::int64_t target) VMRT_REQUIRES(g_vm_lock, g_lock) {
  const std::size_t nchunks = g_npages >> kChunkShift;
  constexpr std::size_t kGroupChunks = std::size_t{1} << kGroupShift;
  // The chunks of the run being mapped and their neighbours: the caller counts the VMA
  // boundaries at both ends of its run before and after, and the pages on the far side of
  // them must not change meanwhile.
  const std::size_t xlo = (xi >> kChunkShift) - ((xi >> kChunkShift) > 0 ? 1 : 0);
  const std::size_t xhi = ((xe + kChunkMask) >> kChunkShift) + 1;
  if (g_hand >= nchunks) g_hand = 0;
  for (std::size_t seen = 0; seen < nchunks;) {
    const std::size_t c = g_hand;
    if ((c & (kGroupChunks - 1)) == 0 && g_dirty_group[c >> kGroupShift] == 0) {
      // A group never marked: nothing mapped in it.
      const std::size_t step = nchunks - c < kGroupChunks ? nchunks - c : kGroupChunks;
      seen += step;
      g_hand = c + step >= nchunks ? 0 : c + step;
      continue;
    }
    ++seen;
    g_hand = c + 1 >= nchunks ? 0 : c + 1;
    if ((c >= xlo && c < xhi) || !chunk_dirty(c)) continue;
    const std::size_t lo = c << kChunkShift;
    if (breaks(lo + 1, lo + kChunkPages - 1) < kMinBreaks) continue;
    if (!sweep_chunk(c, kind)) return false;
    if (vma_budget_pmap_excess(0) <= target) return true;
  }
  return true;
}

}  // namespace

bool vma_make_room(std::size_t i, std::size_t n, bool force) {
  if (vma_budget_pmap_excess(2) <= 0) return true;
  if (!force && g_pause > 0) {
    --g_pause;
    return false;
  }
  rt_count(RC_VMA_SWEEPS);
  const std::int64_t target = -static_cast<std::int64_t>(vma_budget_headroom());
  // A refusal of the host ends the sweep: the limit itself is reached (mappings vmrt does not
  // see), and what was given back so far is all this call gets.
  if (sweep(sweep_kind::stale, i, i + n, target) && vma_budget_pmap_excess(0) > target)
    sweep(sweep_kind::resident, i, i + n, target);
  const bool room = vma_budget_pmap_excess(2) <= 0;
  g_pause = room ? 0 : kFruitlessPause;
  if (!room && force && !g_said_full) {
    g_said_full = true;
    vm_fd_out<200> o(2);
    o.str("vmrt: the host's mapping limit (vm.max_map_count ").u(vma_budget_limit())
        .str(") is nearly full and frame mappings have no more VMAs to give back: pages that need a new mapping fail (SIGBUS)\n");
  }
  return room;
}

}  // namespace vmrt::rt::pml
