#!/usr/bin/env bash
# Makes a Python venv with a torch 2.x wheel from PyPI (and the matching torchvision), used only to
# regenerate the committed torch 2.x conformance fixtures in tests/fixtures/models/torch2/. The test
# suite itself never needs it: it reads the committed files.
#
#   scripts/install_torch2.sh               # venv at $TORCH2_VENV (default /tmp/torch2-venv)
#   scripts/install_torch2.sh --regenerate  # ... then rewrites tests/fixtures/models/torch2/
#
# PyPI's Linux x86_64 torch wheel is a CUDA build: `import torch` loads the nvidia-* libraries even on a
# CPU-only machine, so those wheels are installed too (~3 GB, about two minutes on a fast link); triton
# (a compiler for GPU kernels) is not, hence --no-deps with the rest of the dependencies listed by hand.
# Needs Debian's python3-venv. About 5 GB of disk.
set -euo pipefail

TORCH_VERSION=2.5.1
TORCHVISION_VERSION=0.20.1   # the release built against torch 2.5.1
VENV=${TORCH2_VENV:-/tmp/torch2-venv}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# Small enough to commit (~2 MB together); the larger torchvision families are covered by the torch 1.13
# fixtures that the test suite generates.
COMMITTED_MODELS=(seed scripted cnn gpt gru lstm transformer densenet convnext vit swin)

regenerate=0
for arg in "$@"; do
  case "$arg" in
    --regenerate) regenerate=1 ;;
    *) echo "usage: $0 [--regenerate]" >&2; exit 2 ;;
  esac
done

if [[ ! -x "$VENV/bin/python" ]]; then
  /usr/bin/python3 -m venv "$VENV"
fi
PIP=("$VENV/bin/pip" install --disable-pip-version-check --no-deps)

if ! "$VENV/bin/python" -c "import torch, torchvision" 2>/dev/null; then
  "${PIP[@]}" "torch==$TORCH_VERSION" "torchvision==$TORCHVISION_VERSION"
  # The nvidia-* wheels exactly as torch's own metadata pins them.
  mapfile -t nvidia < <("$VENV/bin/python" - <<'EOF'
import importlib.metadata, re
for req in importlib.metadata.requires("torch") or []:
    name = re.split(r"[;\s]", req, maxsplit=1)[0]
    if name.startswith("nvidia-"):
        print(re.sub(r"[()]", "", req.split(";")[0]).replace(" ", ""))
EOF
  )
  "${PIP[@]}" "${nvidia[@]}"
  "${PIP[@]}" filelock typing-extensions "sympy==1.13.1" mpmath networkx jinja2 MarkupSafe fsspec \
    "numpy<2" pillow
fi
"$VENV/bin/python" -c "import torch, torchvision; print('torch', torch.__version__, 'torchvision', torchvision.__version__)"

if (( regenerate )); then
  "$VENV/bin/python" "$ROOT/tests/fixtures/make_fixtures.py" "$ROOT/tests/fixtures/models/torch2" \
    --torch-label torch2 --force --only "${COMMITTED_MODELS[@]}"
fi
