#!/usr/bin/env bash
# A shard written by ilt-segment (C++) must be readable by scripts/ilt_shard.py.
# Usage: python_reader_test.sh BUILD_DIR SOURCE_DIR PYTHON
set -euo pipefail
d=$(mktemp -d)
trap 'rm -rf "$d"' EXIT
text=$2/data/demo/udhr-eng-heb.txt
"$1/ilt-segment" "$text" -o "$d/w.shard" 2>/dev/null
"$3" "$2/tests/shard/check_python_reader.py" "$d/w.shard" "$text"
