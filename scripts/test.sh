#!/usr/bin/env bash
# The test command: installs what is missing, builds, runs every test. --torch pypi does it
# against PyPI's torch 2.11 in build-torch2/ (scripts/torch-choice.sh).
# Usage: scripts/test.sh [--torch debian|pypi]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
source "$root/scripts/torch-choice.sh"
"$root/scripts/install-deps.sh" --torch "$torch"
"$root/scripts/build.sh" --torch "$torch" "${args[@]}"
cd "$root/$build_dir"
ctest --output-on-failure -j "$(nproc)"
