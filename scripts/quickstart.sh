#!/usr/bin/env bash
# Quick start: install what is missing, build, and run the seed model's batch job end to end.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DCONVOY_BUILD_TESTS=OFF >/dev/null
cmake --build build --target convoy-coordinator
build/bin/convoy-coordinator run examples/seed/job.yaml --workers 0 --backend reference
echo "outputs are in examples/seed/out/"
