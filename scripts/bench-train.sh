#!/usr/bin/env bash
# Training benchmark: words/s, text bytes/s and model FLOP/s of `tiny` and `ref-small` on
# this machine's CPU, the step time split by part, and FLOP/s as a fraction of the
# machine's own measured fp32 matmul rate, and the packed encoders and decoder against the padded
# ones. Targets (issue 4): waiting for data < 2% of the step; ref-small at >= 25% of the matmul
# rate; (issue 12) packed no slower than padded on the CPU, decoder padding under 5%.
# Usage: scripts/bench-train.sh [STEPS, default 8]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
steps=${1:-8}
source "$root/scripts/bench-common.sh" bench-train
demo_examples
echo "machine: $machine; data: demo corpus, 128 words per example"
for config in tiny ref-small; do
  "$bin/ilt-bench" --examples demo.train.examples --train-config "$config" --steps "$steps" --batch-size 16 |
    /usr/bin/python3 -c '
import json, sys
r = json.load(sys.stdin)
s = r["split"]
print("  %-9s %6.1fM params  %6.2f s/step  %7.0f words/s  %7.0f text bytes/s  %5.1f GFLOP/s = %4.1f%% of matmul (%.1f GFLOP/s)"
      % (r["config"], r["parameters"] / 1e6, r["step_s"], r["words_per_s"], r["bytes_per_s"],
         r["flops_per_s"] / 1e9, 100 * r["fraction_of_matmul"], r["matmul_flops_per_s"] / 1e9))
print("            split: " + ", ".join("%s %.1f%%" % (k.replace("_", " "), 100 * v) for k, v in s.items())
      + " (encoders, latent, decoder: forward only; backward as a whole)")
print("            decoder padding: %.1f%% of decoder positions; data wait %.2f%% (target < 2%%)"
      % (100 * r["decoder_padded_fraction"], 100 * s["data_wait"]))
if r["config"] == "ref-small":
    print("            ref-small: %.1f%% of the matmul rate (target >= 25%%)" % (100 * r["fraction_of_matmul"]))
'
done
# The packed (padding-free) encoders and decoder against the padded path they replaced.
padded=$("$bin/ilt-bench" --examples demo.train.examples --train-config tiny --steps "$steps" --batch-size 16 --padded |
  /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["step_s"])')
packed=$("$bin/ilt-bench" --examples demo.train.examples --train-config tiny --steps "$steps" --batch-size 16 |
  /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["step_s"])')
/usr/bin/python3 -c "print('  tiny packed %.2f s/step, padded %.2f s/step: packed/padded %.2f (target <= 1: no slower on the CPU)' % ($packed, $padded, $packed / $padded))"
loader=$("$bin/ilt-bench" --examples demo.train.examples --min-seconds 2 | /usr/bin/python3 -c 'import json,sys; print(int(json.load(sys.stdin)["words_per_s"]))')
echo "  loader: $loader words/s delivered as tensors (compare with the words/s above: target >= 20x)"
