// vmrun_sweep.h — `vmrun --fail-sweep` (runtime/vmrun_sweep.cpp), part of the vmrun
// launcher only (an ordinary program, not the machine).
#pragma once

#include <string>

struct sweep_options {
  unsigned max = 1000;     // malloc-family calls examined (the census bound)
  unsigned jobs = 0;       // parallel runs; 0: the cores there are
  unsigned timeout = 60;   // seconds per run
  bool keep = false;       // keep the per-run logs
  unsigned site_depth = 1; // innermost frames that make a call site's key
};

// Run the sweep over `path` with argv (the environment, LD_PRELOAD included, is
// already set up by vmrun).  Prints the table on stdout, progress on stderr.
// Returns vmrun's exit status: 1 when a run crashed or hung, else 0.
int vmrun_fail_sweep(const std::string& path, char** argv, const sweep_options& opt);

// Copy a VMRT_FAIL_LOG to stdout with each "at MODULE OFFSET" frame followed by
// its file:line (function) from addr2line.  "-" reads stdin.  Returns 0, or 1
// when the log cannot be read.
int vmrun_fail_symbolize(const std::string& log);
