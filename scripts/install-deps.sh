#!/usr/bin/env bash
# Installs ilt's build and run dependencies from Debian 12's packages, and with --torch pypi
# PyPI's torch 2.11 into a virtual environment (see scripts/torch-choice.sh). Idempotent:
# does nothing (and needs no network) when everything is already installed.
# Usage: scripts/install-deps.sh [--torch debian|pypi]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
source "$root/scripts/torch-choice.sh"
packages=(
  build-essential cmake ninja-build pkg-config git help2man
  libcli11-dev libfmt-dev libzstd-dev libpng-dev nlohmann-json3-dev catch2 libgloo-dev
  libicu-dev libpango1.0-dev libcairo2-dev
  fonts-noto-core fonts-droid-fallback fonts-nanum fonts-symbola
  python3 python3-zstandard python3-numpy python3-matplotlib
)
if [[ $torch == debian ]]; then
  packages+=(libtorch-dev libopenblas0-pthread)
else
  packages+=(python3-venv)
fi
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [[ ${#missing[@]} -gt 0 ]]; then
  echo "install-deps: installing ${missing[*]}" >&2
  sudo=""
  if [[ $(id -u) -ne 0 ]]; then sudo=sudo; fi
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
if [[ $torch == pypi ]]; then
  want=$(sed -n 's/^torch==\([^ ]*\).*/\1/p' "$root/scripts/requirements-torch.txt")
  have=$("$venv/bin/python" -c 'import torch; print(torch.__version__.split("+")[0])' 2>/dev/null || true)
  if [[ $have != "$want" ]]; then
    echo "install-deps: installing torch $want into $venv (about 4.6 GB)" >&2
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check --require-hashes --no-deps \
      -r "$root/scripts/requirements-torch.txt"
  fi
fi
