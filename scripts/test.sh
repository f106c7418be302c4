#!/usr/bin/env bash
# The whole test suite: install what is missing, build, run every test through ctest (unit tests,
# PyTorch conformance on generated fixtures, bad-input tests), then build the loader tests again
# with AddressSanitizer + UBSan and run them.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh --test
jobs=$(nproc)

cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release
cmake --build build -j "$jobs"
ctest --test-dir build --output-on-failure -j "$jobs"

# Loader, .npy and wire-format tests under ASan/UBSan (kernels are covered by the Release run).
cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCONVOY_SANITIZE=ON \
  -DCMAKE_C_COMPILER=clang-14 -DCMAKE_CXX_COMPILER=clang++-14
cmake --build build-asan -j "$jobs" --target convoy_unit_tests
ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
  ctest --test-dir build-asan --output-on-failure -j "$jobs" -L unit \
  -R "zip|pickle|unpickler|archive|npy|serialize|schema|parser|lexer|wire"
