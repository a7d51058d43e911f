#!/usr/bin/env bash
# Install the Debian packages vmrt needs that are missing on this machine.
# Build: compiler, cmake, doctest, libffi, xxhash; man-db + groff-base render the man pages.  Baselines: jemalloc, mimalloc,
# tcmalloc; valgrind records bench/pdpolicy_sim's reference strings.  Scenario tests: real programs from Debian run under vmrun (libpython3.11-testsuite
# may upgrade the python3.11 packages to the same release's newest security update).
# luajit: a JIT that maps executable memory (scenario mmap_programs).
# openjdk-17-jdk-headless: a Java VM, its JIT and its own SIGSEGV handling (scenario java_jit).
# nodejs: V8's JIT, worker threads and WebAssembly (scenario node_workers).
# postgresql: a server that forks a backend per connection (scenario qa_postgres).
# gdb: a scenario case that hangs prints every thread's stack before it is stopped (tests/scenario/lib, `watched`).
# clang: the locking contracts are checked by its thread safety analysis (test lint.thread_safety).
set -euo pipefail
PACKAGES=(
  build-essential cmake pkg-config man-db groff-base
  doctest-dev libffi-dev libxxhash-dev
  libjemalloc-dev libjemalloc2 libmimalloc-dev libmimalloc2.0 libgoogle-perftools-dev
  python3 sqlite3 git make gcc pigz zstd xz-utils bzip2 gawk
  libpython3.11-testsuite
  bash perl tcl coreutils findutils sed tar gzip libc6-dev
  redis-server redis-tools memcached gnuplot-nox
  valgrind
  luajit gdb clang
  openjdk-17-jdk-headless
  postgresql-15 postgresql-client-15
)
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}" >&2
  SUDO=; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
