#!/usr/bin/env bash
# Installs ilt's build and run dependencies from Debian 12's packages. Idempotent: does
# nothing (and needs no network) when everything is already installed.
set -euo pipefail
packages=(
  build-essential cmake ninja-build pkg-config git
  libcli11-dev libfmt-dev libzstd-dev libpng-dev nlohmann-json3-dev catch2
  libicu-dev libpango1.0-dev libcairo2-dev
  libtorch-dev libopenblas0-pthread
  fonts-noto-core fonts-droid-fallback fonts-nanum fonts-symbola
  python3 python3-zstandard python3-numpy python3-matplotlib
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [[ ${#missing[@]} -eq 0 ]]; then
  exit 0
fi
echo "install-deps: installing ${missing[*]}" >&2
sudo=""
if [[ $(id -u) -ne 0 ]]; then sudo=sudo; fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
