#!/usr/bin/env bash
# Cold vs warm start of resnet18 through `convoy-coordinator run` (time to first output):
#   bench/run_start_bench.sh [BUILD_DIR] [--warm-runs N]
# Makes the archive with Debian's PyTorch into BUILD_DIR/bench-models when missing; needs
# BUILD_DIR/bin/convoy-coordinator. Cold and warm use their own cache folders (CONVOY_CACHE_DIR and
# POCL_CACHE_DIR), never yours. See bench/README.md.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
shift || true
[[ -x "$build/bin/convoy-coordinator" ]] || {
  echo "error: $build/bin/convoy-coordinator is missing: ninja -C $build convoy-coordinator" >&2
  exit 1
}
/usr/bin/python3 bench/make_bench_models.py "$build/bench-models" resnet18
exec /usr/bin/python3 bench/start_bench.py --build "$build" --models "$build/bench-models" "$@"
