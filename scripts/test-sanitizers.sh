#!/usr/bin/env bash
# Builds everything (the program and the test suite; benchmarks off) with AddressSanitizer and
# UndefinedBehaviorSanitizer in build-asan/ (-O1 -g, frame pointers kept, any UB report fatal) and
# runs the whole test suite under them with ctest. Heavy: on a shared 2-core machine about 11 minutes
# to build and 5 to run the 477 tests; it runs under `nice`.
#
#   usage: scripts/test-sanitizers.sh [CTEST ARGS...]      e.g. -R accel  or  -E onnx_backend_tests
#
# The Python module is not built here (an instrumented extension needs the interpreter started with
# libasan preloaded); the tests/consumer program is built with the same flags.
# The compiler is $CXX (default g++; clang++ works too). oneDNN, protobuf, OpenMP and the image
# libraries are system libraries and not instrumented; reports come from locus code or from what it
# passes them. Exits non-zero if a test fails or a sanitizer reports (the report is in the test's
# output, shown by --output-on-failure, and in build-asan/Testing/Temporary/LastTest.log).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=$root/build-asan
cxx=${CXX:-g++}
flags="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"

nice cmake -S "$root" -B "$build" -G Ninja -DCMAKE_CXX_COMPILER="$cxx" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g" -DCMAKE_CXX_FLAGS="$flags" \
  -DCMAKE_EXE_LINKER_FLAGS="$flags" -DCMAKE_SHARED_LINKER_FLAGS="$flags" \
  -DLOCUS_BUILD_TESTS=ON -DLOCUS_BUILD_BENCH=OFF -DLOCUS_BUILD_FUZZ=OFF -DLOCUS_BUILD_PYTHON=OFF >/dev/null
nice cmake --build "$build" -j"${LOCUS_JOBS:-2}"

# Any report ends the process with an error: UBSan halts on the first (with a stack), ASan's leak
# check runs at exit (turn it off with ASAN_OPTIONS=detect_leaks=0 where ptrace is not allowed).
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=0:detect_leaks=1:check_initialization_order=1:strict_init_order=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
# OpenMP worker threads keep their stacks; a small team keeps the run within memory on 2 cores
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
nice ctest --test-dir "$build" --output-on-failure -j"${LOCUS_JOBS:-2}" "$@"
