#!/usr/bin/env bash
# Data-parallel scaling on this machine's CPU (issue 13): words/s of 2 ranks x 1 thread
# (--nproc-per-node 2, Gloo over loopback, global batch 16 = 2 x 8) against 1 rank x 1 thread
# (batch 16), on the demo corpus with the tiny preset. Median over log windows after the first.
# Target: >= 1.8x.
# Usage: scripts/bench-dist.sh [STEPS, default 60]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
steps=${1:-60}
source "$root/scripts/bench-common.sh" bench-dist
demo_examples
echo "machine: $machine; data: demo corpus; tiny preset, global batch 16, $steps steps, 1 thread per rank"
run() {  # run NAME ARGS...: prints the median words/s of its log windows (the first one left out)
  local name=$1
  shift
  rm -rf "$name"
  "$bin/ilt-train" --train demo.train.examples --config tiny --batch-size 16 --threads 1 --max-steps "$steps" \
    --log-every 5 --save-every 100000 --output "$name" "$@" 2>/dev/null
  /usr/bin/python3 -c '
import json, statistics, sys
w = [json.loads(l)["words_per_s"] for l in open(sys.argv[1]) if "\"train\"" in l][1:]
print(statistics.median(w))' "$name/metrics.jsonl"
}
one=$(run one-rank)
two=$(run two-ranks --nproc-per-node 2)
/usr/bin/python3 -c "
one, two = $one, $two
print('  1 rank  x 1 thread: %6.0f words/s' % one)
print('  2 ranks x 1 thread: %6.0f words/s (aggregate)' % two)
print('  scaling: %.2fx (target >= 1.8x)' % (two / one))"
