#!/usr/bin/env bash
# Installs what is missing, builds, and runs scripts/ilt-demo (installed as ilt-demo): the whole
# pipeline on the embedded demo corpus (UDHR in 20 languages). Outputs go to demo-out/: shards
# of every stage, their summaries, PNGs of rendered words, models and their text.
# Usage: scripts/demo.sh [--torch debian|pypi]  (pypi: PyPI's torch 2.11, 2.8x faster training
# on a CPU, a 4.6 GB install; docs/design.md, "Two LibTorch builds")
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
source "$root/scripts/torch-choice.sh"
"$root/scripts/install-deps.sh" --torch "$torch"
"$root/scripts/build.sh" --torch "$torch"
ILT_BIN=$root/$build_dir exec "$root/scripts/ilt-demo" "$root/demo-out"

