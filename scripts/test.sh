#!/usr/bin/env bash
# The whole test suite: install what is missing, build, run every test through ctest (unit tests,
# PyTorch conformance on generated fixtures, bad-input tests, the cluster tests), then build again
# with AddressSanitizer + UBSan and run the loader, wire, graph-pass, OpenCL-executor and cluster
# tests there.
#
# Every option the suite depends on is given here explicitly: the quick start configures the same
# build folder with -DCONVOY_BUILD_TESTS=OFF, and that must not survive into a test run. ctest fails
# when it finds no test (--no-tests=error), so a configuration that builds none cannot pass.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh --test
jobs=$(nproc)

cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DCONVOY_BUILD_TESTS=ON -DCONVOY_SANITIZE=OFF
cmake --build build -j "$jobs"
ctest --test-dir build --output-on-failure --no-tests=error -j "$jobs"

# Under ASan/UBSan. The sanitized build shares the Release build's PyTorch fixtures and its PoCL
# kernel cache (both depend on neither build), so it pays for neither again. Leak checking stays on
# for the loader and wire tests; the OpenCL and multi-process runs load PoCL's LLVM, whose
# process-lifetime allocations are not ours.
cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCONVOY_BUILD_TESTS=ON -DCONVOY_SANITIZE=ON \
  -DCMAKE_C_COMPILER=clang-14 -DCMAKE_CXX_COMPILER=clang++-14
cmake --build build-asan -j "$jobs"
for shared in fixtures convoy-cache; do
  rm -rf "build-asan/$shared"
  ln -s "../build/$shared" "build-asan/$shared"
done
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
ASAN_OPTIONS=detect_leaks=1 ctest --test-dir build-asan --output-on-failure --no-tests=error -j "$jobs" -L unit \
  -R "zip|pickle|unpickler|archive|npy|serialize|schema|parser|lexer|wire"
ASAN_OPTIONS=detect_leaks=0 ctest --test-dir build-asan --output-on-failure --no-tests=error -j "$jobs" \
  -R "^unit:.*(passes|fusion|executor|lowering|graph|partition|job run|ledger)|e2e\.(workers2\.|cluster\.|opencl\.torch113\.(fusion|scripted|seed))"
