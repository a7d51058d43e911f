#!/usr/bin/env bash
# vmrt's two entry points (see README.md):
#   ./run.sh example   install what is missing, build, run a program under vmrun
#   ./run.sh test      install what is missing, build (normal + ASan/UBSan), run every test
#   ./run.sh package   install what is missing, build, write the Debian package
#                      build/packages/vmrt_VERSION_amd64.deb (CPack; see cmake/vmrt_install.cmake)
set -euo pipefail
cd "$(dirname "$0")"
what=${1:-example}
JOBS=${JOBS:-2}

scripts/setup.sh

build() {  # build DIR [cmake args...]
  local dir=$1; shift
  cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=Release "$@" >/dev/null
  cmake --build "$dir" -j"$JOBS"
}

case "$what" in
  example)
    build build
    echo "== native run =="
    build/bin/wordfreq examples/data/corpus.txt
    echo "== the same program under vmrun (vmrt's malloc, VM statistics at exit) =="
    build/bin/vmrun --stats -- build/bin/wordfreq examples/data/corpus.txt
    ;;
  test)
    build build
    (cd build && ctest --output-on-failure -j"$JOBS")
    echo "== unit tests under AddressSanitizer + UndefinedBehaviorSanitizer =="
    build build-asan -DVMRT_SANITIZE=ON
    (cd build-asan && ctest --output-on-failure -j"$JOBS")
    ;;
  package)
    build build
    (cd build && cpack)
    ls build/packages/vmrt_*.deb
    ;;
  *)
    echo "usage: ./run.sh example|test|package" >&2
    exit 2
    ;;
esac
