#!/usr/bin/env bash
# Quick start: install what is missing, build, and run the seed model's batch job end to end on an
# embedded local cluster: a coordinator in the process and two convoy-worker processes on loopback.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DCONVOY_BUILD_TESTS=OFF >/dev/null
cmake --build build --target convoy-coordinator convoy-worker
build/bin/convoy-coordinator run examples/seed/job.yaml --workers 2
echo "outputs are in examples/seed/out/ (PyTorch's own: examples/seed/expected_0.npy)"
