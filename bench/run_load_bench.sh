#!/usr/bin/env bash
# Makes full-size resnet18, resnet50 and vit_b_16 archives with Debian's PyTorch (random weights)
# and measures Convoy's load time and resident memory for each, one process per model.
#   bench/run_load_bench.sh [BUILD_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
models=${CONVOY_BENCH_MODELS:-/tmp/convoy-bench-models}
mkdir -p "$models"
for name in resnet18 resnet50 vit_b_16; do
  [[ -f "$models/$name.pt" ]] && continue
  /usr/bin/python3 - "$name" "$models/$name.pt" <<'PY'
import sys, torch, torchvision
name, out = sys.argv[1], sys.argv[2]
m = getattr(torchvision.models, name)(weights=None).eval()
with torch.no_grad():
    torch.jit.trace(m, torch.randn(1, 3, 224, 224)).save(out)
PY
done
for name in resnet18 resnet50 vit_b_16; do
  "$build/bin/convoy-bench-load" "$models/$name.pt"
done
