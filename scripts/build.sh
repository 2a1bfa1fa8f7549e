#!/usr/bin/env bash
# Configures and builds ilt (Release) into build/, or with --torch pypi against PyPI's torch
# 2.11 into build-torch2/ (scripts/torch-choice.sh). Other arguments go to cmake's configure.
# Usage: scripts/build.sh [--torch debian|pypi] [CMAKE_ARGS...]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
source "$root/scripts/torch-choice.sh"
cd "$root"
extra=()
if [[ $torch == pypi ]]; then
  prefix=$("$venv/bin/python" -c 'import torch; print(torch.utils.cmake_prefix_path)' 2>/dev/null) ||
    { echo "build: no torch in $venv: run scripts/install-deps.sh --torch pypi" >&2; exit 1; }
  # The torch root first: its lib/ then comes before the system's (Debian's libtorch-dev has
  # libc10.so and libtorch.so too, of version 1.13).
  # -U: a build directory configured before this fix keeps the system's paths in its cache.
  extra+=("-DCMAKE_PREFIX_PATH=${prefix%/share/cmake};$prefix" -UTORCH_LIBRARY -Uc10_LIBRARY)
  # No GPU here to detect: the architectures CUDA code is compiled for (H100/H200: 9.0).
  export TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST:-9.0}
fi
cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=Release "${extra[@]}" "${args[@]}" >/dev/null
cmake --build "$build_dir" -j "$(nproc)"
