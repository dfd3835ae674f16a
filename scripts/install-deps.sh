#!/usr/bin/env bash
# Installs the Debian 12 packages kiln's build and tests need. Idempotent: quiet and fast when all are present.
set -euo pipefail

PACKAGES=(
  # toolchain
  g++ cmake ninja-build ccache make pkg-config
  # libraries (see docs/architecture.md)
  libonnx-dev libprotobuf-dev protobuf-compiler nlohmann-json3-dev libcli11-dev libpng-dev libjpeg-dev libdnnl-dev
  # libdnnl-dev only recommends it, but its CMake config (dnnl-config.cmake) calls find_package(OpenCL)
  ocl-icd-opencl-dev
  # the Python module
  pybind11-dev python3-dev
  # tests
  libgtest-dev python3 python3-numpy python3-onnx python3-torch python3-torchvision python3-opencv
  # the reference peer (ONNX Runtime for Node.js, installed by tests/peer/install-ort.sh)
  nodejs
)

missing=()
for p in "${PACKAGES[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [[ "$status" == "install ok installed" ]] || missing+=("$p")
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

echo "install-deps: installing ${missing[*]}"
SUDO=""
if [[ $(id -u) -ne 0 ]]; then
  command -v sudo >/dev/null || { echo "install-deps: need root (or sudo) to install: ${missing[*]}" >&2; exit 1; }
  SUDO=sudo
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "install-deps: done"
