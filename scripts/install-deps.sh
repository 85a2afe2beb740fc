#!/usr/bin/env bash
# Installs the Debian 12 packages locus builds against, if any is missing. Idempotent; uses sudo
# when not root.
set -euo pipefail
# ocl-icd-opencl-dev: dnnl-config.cmake calls find_package(OpenCL); it is only a Recommends of libdnnl-dev.
pkgs=(build-essential cmake ninja-build pkg-config
      libonnx-dev libprotobuf-dev protobuf-compiler libdnnl-dev ocl-icd-opencl-dev
      libgtest-dev libgmock-dev libbenchmark-dev libjpeg62-turbo-dev libpng-dev libeigen3-dev
      libcli11-dev nlohmann-json3-dev libonnx-testdata clang libclang-rt-14-dev valgrind python3 python3-onnx
      pybind11-dev python3-dev python3-numpy python3-pytest python3-distributed python3-pandas)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all packages present"
  exit 0
fi
echo "install-deps: installing ${missing[*]}"
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
