// kmem_check.cpp — the bucket layer's consistency, for tests and debugging: every cluster on
// a bucket's lists and every element on a cluster's free list, walked under the bucket lock.
// The refill and spill paths (kmem_bucket.cpp) keep a cluster's count, list head and list
// membership apart from its free list's links; this says whether they still agree.
#include "kmem/kmem_internal.h"

namespace vmrt::kmem::detail {
namespace {

constexpr std::uint32_t max_elm_per_cluster() {
  std::uint32_t m = 0;
  for (unsigned i = kMinBucket; i <= kMaxBucket; ++i)
    if (elm_per_cluster(i) > m) m = elm_per_cluster(i);
  return m;
}
inline constexpr std::uint32_t kMaxElms = max_elm_per_cluster();
static_assert(kMaxElms <= 256, "a cluster's elements fit the checker's bitmap");

// => bucket lock held.  The cluster whose first page is pg, filed on list `which`: its
// record, page codes and free list.  Null when consistent, else what is not.
const char* cluster_consistent(unsigned indx, std::uint32_t pg, ku_list which) {
  const kmembucket& kb = g.classes[indx].kb;
  const kmemusage& ku = g.usage[pg];
  if (ku.ku_indx != indx || page_code(pg) != indx) return "a listed cluster's first page is not of its class";
  if (kClasses.straddle[indx])
    for (std::uint32_t p = 1; p < kb.kb_npg; ++p)
      if (page_code(pg + p) != tail_code(indx, p)) return "a cluster's tail page code is wrong";
  if (ku.ku_list != which) return "a cluster is on a list its record does not name";
  const std::uint32_t cnt = ku.ku_freecnt;
  if (which == KL_PARTIAL && (cnt == 0 || cnt >= kb.kb_elmpercl)) return "a partial cluster's count is 0 or all";
  if (which == KL_EMPTY && cnt != kb.kb_elmpercl) return "an empty cluster's count is not all";
  const std::uintptr_t a = page_addr(pg);
  const std::uintptr_t size = bucket_size(indx);
  const std::uintptr_t limit = std::uintptr_t{kb.kb_npg} << kPageShift;
  std::uint64_t seen[kMaxElms / 64 + 1] = {};
  std::uintptr_t off = ku.ku_freehead;
  for (std::uint32_t k = 0; k < cnt; ++k) {
    if (off >= limit || off % size != 0) return "a free-list link is not an element of the cluster";
    const std::uintptr_t i = off / size;
    if ((seen[i / 64] >> (i % 64)) & 1) return "an element is on its cluster's free list twice";
    seen[i / 64] |= std::uint64_t{1} << (i % 64);
    const std::uintptr_t e = a + off;
    if (!is_marked(e)) return "an element on a cluster's free list has no free marker";
    std::uintptr_t next = reinterpret_cast<const std::uintptr_t*>(e)[0];
    if ((next & kLazyLink) != 0) {
      // Never carved from next on: exactly the rest of the count, above every carved one.
      next &= ~kLazyLink;
      if (next >= limit || (limit - next) % size != 0 || (limit - next) / size != cnt - 1 - k)
        return "a lazy link does not account for the rest of the count";
      for (std::uintptr_t j = next / size; j < kb.kb_elmpercl; ++j)
        if ((seen[j / 64] >> (j % 64)) & 1) return "a carved element lies in the never-carved part";
      return nullptr;
    }
    if (k + 1 == cnt) return next == kNoFree ? nullptr : "a cluster's free list is longer than its count";
    off = next;
  }
  return cnt == 0 || ku.ku_freehead == kNoFree ? nullptr : "a full cluster has a free-list head";
}

// => bucket lock held.  The list l, filed as `which`: its links both ways and its clusters;
// adds their free counts to *nfree.
const char* list_consistent(unsigned indx, const cl_list& l, ku_list which, std::uint64_t* nfree) {
  std::uint32_t prev = kNil;
  std::uint64_t n = 0;
  for (std::uint32_t pg = l.head; pg != kNil; pg = g.usage[pg].ku_next) {
    if (pg >= g.npages) return "a cluster list link is outside the arena";
    if (g.usage[pg].ku_prev != prev) return "a cluster list's back link is wrong";
    if (const char* why = cluster_consistent(indx, pg, which)) return why;
    *nfree += g.usage[pg].ku_freecnt;
    prev = pg;
    if (++n > g.npages) return "a cluster list loops";
  }
  return l.tail == prev ? nullptr : "a cluster list's tail is not its last cluster";
}

}  // namespace

const char* bucket_consistent(unsigned indx) {
  kmembucket& kb = g.classes[indx].kb;
  kmem_guard guard(kb.kb_lock);
  std::uint64_t nfree = 0;
  if (const char* why = list_consistent(indx, kb.kb_partial, KL_PARTIAL, &nfree)) return why;
  if (const char* why = list_consistent(indx, kb.kb_empty, KL_EMPTY, &nfree)) return why;
  if (nfree != kb.kb_nfree) return "the bucket's free count is not its clusters' sum";
  if (kb.kb_nfree > kb.kb_total || kb.kb_total != kb.kb_clusters * kb.kb_elmpercl)
    return "the bucket's totals disagree with its cluster count";
  return nullptr;
}

}  // namespace vmrt::kmem::detail
