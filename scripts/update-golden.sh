#!/usr/bin/env bash
# Regenerates tests/render/golden/*.png from tests/render/golden/words.tsv with ilt-render.
# Run only when a change of rendering is intended (new fonts, new defaults), then look at
# every PNG before committing: the golden test pins these exact pixels.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${1:-$root/build}
while IFS=$'\t' read -r name word _; do
  [[ -z "$name" || "$name" == \#* ]] && continue
  "$bin/ilt-render" --text "$(printf '%b' "$word")" --png "$root/tests/render/golden/$name.png"
done < "$root/tests/render/golden/words.tsv"
