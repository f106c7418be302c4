#!/usr/bin/env bash
# Installs the Debian 12 packages Convoy builds and runs with. `--test` adds what the test suite
# needs on top (PyTorch and torchvision to make fixtures, numpy to compare, clang for the fuzzer
# and sanitizers). Idempotent: apt is only called when something is missing.
set -euo pipefail

packages=(build-essential cmake ninja-build pkg-config capnproto libcapnp-dev libzmq3-dev cppzmq-dev
          libyaml-cpp-dev libboost-dev libboost-system-dev zlib1g-dev libsqlite3-dev
          ocl-icd-opencl-dev opencl-headers pocl-opencl-icd clinfo libclblast-dev libopenblas-dev)
if [[ "${1:-}" == "--test" ]]; then
  packages+=(catch2 python3 python3-numpy python3-zmq python3-torch python3-torchvision clang libclang-rt-14-dev)
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "installing: ${missing[*]}"
  sudo=""
  [[ $(id -u) -ne 0 ]] && sudo="sudo"
  $sudo apt-get update -q
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
