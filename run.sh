#!/usr/bin/env bash
# vmrt's two entry points (see README.md):
#   ./run.sh example   install what is missing, build, run a program under vmrun
#   ./run.sh test      install what is missing, build (normal, ASan/UBSan, TSan), run every test
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

# stage NAME CMD...: run CMD, add "NAME=SECONDS" to STAGE_TIMES (printed at the end).
STAGE_TIMES=
stage() {
  local name=$1 t0=$SECONDS
  shift
  "$@"
  STAGE_TIMES="$STAGE_TIMES $name=$((SECONDS - t0))"
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
    stage build build build
    stage ctest bash -c 'cd build && ctest --output-on-failure -j"$0"' "$JOBS"
    echo "== unit tests under AddressSanitizer + UndefinedBehaviorSanitizer =="
    stage asan-build build build-asan -DVMRT_SANITIZE=ON
    stage asan-ctest bash -c 'cd build-asan && ctest --output-on-failure -j"$0"' "$JOBS"
    echo "== threaded unit tests under ThreadSanitizer =="
    # Only the unit tests that exercise threads, and none that preloads the shim (TSan's
    # runtime must be the first thing loaded; the shim tests run their checks in a child
    # with libvmrt_malloc.so preloaded):
    #   kmem_thread_test    producer/consumer frees, magazines drained at thread exit,
    #                       decay, fork with every kmem lock taken
    #   kmem_test kmem_fastpath_test   magazines and the depot from several threads
    #   kmem_first_chunk_test          the first chunk's counters, a second thread turning it off
    #   kmem_spill_test     two threads spilling chains to and refilling from shared clusters
    #   runtime_fault_test  two threads first-touching the same pages, host fork child
    #   runtime_trap_test   the userfaultfd handler thread and SIGSEGV traps
    #   runtime_fork_test   host fork of a process with the userfaultfd thread running
    #   api_vmspace_test    the API with the userfaultfd thread serving faults
    #   vm_fail_test        fault-injection counters from several threads
    # TSAN_OPTIONS:
    #   die_after_fork=0  the fork tests start the userfaultfd thread again in the child of
    #                     a multi-threaded process, which TSan refuses by default;
    #   handle_segv=0     the trap tests check that an unhandled trap kills the process
    #                     with SIGSEGV: TSan's own SEGV handler would exit 66 instead.
    tsan_tests="kmem_thread_test;kmem_test;kmem_fastpath_test;kmem_first_chunk_test;kmem_spill_test;runtime_fault_test;runtime_trap_test;runtime_fork_test;api_vmspace_test;vm_fail_test"
    stage tsan-build build build-tsan -DVMRT_TSAN=ON "-DVMRT_TSAN_TESTS=$tsan_tests"
    TSAN_OPTIONS="die_after_fork=0 handle_segv=0" \
      stage tsan-ctest bash -c 'cd build-tsan && ctest --output-on-failure -j"$0"' "$JOBS"
    echo "== stage times (s): ${STAGE_TIMES# } =="
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
