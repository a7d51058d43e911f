// workloads.h — the allocator workloads that alloc_bench and allocsuite run inside a
// re-executed worker process (`<bench> --worker NAME --scale S`, the allocator chosen
// by LD_PRELOAD).  The code is plain C style (malloc/free/realloc, static arrays,
// pthreads) so that the allocator is what is measured, not std:: containers.
//
// Every workload reads back what it wrote and folds it into a checksum with no pointer
// values in it: the checksum must be the same under every allocator.  Workloads that
// know how many bytes they have asked for and not yet freed track the peak of it
// (peak requested bytes, for the internal-fragmentation column).
#pragma once

#include <cstdint>

namespace bench {

// Scalars describing one worker run.
struct worker_params {
  double scale = 1.0;  // counts (and some sizes) are multiplied by it; 1 = alloc_bench quick
};

struct workload {
  const char* name;
  int threads;
  std::uint64_t (*run)(const worker_params&);
  const char* what;
};

// The five workloads of alloc_bench (small_churn, churn_2t, prodcons, realloc_growth,
// mixed_server), then the suite's own ones (larson, cache_scratch, ...).
extern const workload k_alloc_bench_workloads[];
extern const int k_alloc_bench_nworkloads;
extern const workload k_suite_workloads[];
extern const int k_suite_nworkloads;

// Workload by name in either table (or "noop", the empty worker); nullptr if unknown.
const workload* find_workload(const char* name);

// Run one workload and print its result line on stdout:
//   RESULT <ns> <checksum hex> <VmHWM kB> <sampled peak Rss kB> <sampled peak Pss kB>
//          <library providing malloc> req=<peak requested bytes or -1> extra=<int or -1>
// (extra: workload-specific figure, e.g. the RSS an untouched malloc(64 MiB) added,
// in kB).  Returns the process exit status (2: unknown workload).  `prog` names the
// benchmark in error messages.
int worker_main(const char* prog, const char* name, double scale);

}  // namespace bench
