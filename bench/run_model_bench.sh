#!/usr/bin/env bash
# Model throughput, Convoy (OpenCL) vs PyTorch on the same archives, interleaved in one run:
#   bench/run_model_bench.sh [BUILD_DIR] [model_bench.py options: --rounds R --only NAME ... --torch2 PY]
# Makes the full-size archives and inputs with Debian's PyTorch into BUILD_DIR/bench-models when
# missing (bench/make_bench_models.py), builds nothing: BUILD_DIR/bin/convoy-bench-models must exist
# (ninja -C BUILD_DIR convoy-bench-models). Kernel binaries are cached in $CONVOY_CACHE_DIR, by
# default BUILD_DIR/convoy-cache. See bench/README.md.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
shift || true
models="$build/bench-models"
[[ -x "$build/bin/convoy-bench-models" ]] || {
  echo "error: $build/bin/convoy-bench-models is missing: ninja -C $build convoy-bench-models" >&2
  exit 1
}
/usr/bin/python3 bench/make_bench_models.py "$models"
export CONVOY_CACHE_DIR=${CONVOY_CACHE_DIR:-$PWD/$build/convoy-cache}
exec /usr/bin/python3 bench/model_bench.py --build "$build" --models "$models" "$@"
