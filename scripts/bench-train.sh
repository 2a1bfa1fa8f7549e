#!/usr/bin/env bash
# Training benchmark: words/s, text bytes/s and model FLOP/s of `tiny` and `ref-small` on
# this machine's CPU, the step time split by part, and FLOP/s as a fraction of the
# machine's own measured fp32 matmul rate, and the packed encoders and decoder against the padded
# ones. Targets (issue 4): waiting for data < 2% of the step; ref-small at >= 25% of the matmul
# rate; (issue 12) packed no slower than padded on the CPU, decoder padding under 5%.
# Usage: scripts/bench-train.sh [STEPS, default 8]
#        scripts/bench-train.sh cuda [STEPS, default 20]: the same batches on a GPU in bf16 (build
#        with --torch pypi): per preset words/s, text bytes/s, TFLOP/s and MFU (real tokens, against
#        989 TFLOP/s, the H100/H200 dense bf16 peak), the step split by part, peak memory and host
#        syncs per step (counted in CUDA's sync debug mode), with ratios to the reference's figures
#        (issue 12). scripts/gpu-check.sh runs it with ILT_BENCH_BIN (a build), ILT_BENCH_EXAMPLES
#        (an examples shard), ILT_BENCH_OUT, ILT_BENCH_DEVICE, ILT_BENCH_BATCH, ILT_BENCH_PRESETS.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
if [[ ${1:-} == cuda ]]; then
  shift
  steps=${1:-${ILT_BENCH_STEPS:-20}}
  batch=${ILT_BENCH_BATCH:-32}
  python=${ILT_BENCH_PYTHON:-python3}
  if [[ -n ${ILT_BENCH_BIN:-} ]]; then  # a given build and shard (scripts/gpu-check.sh)
    bin=$ILT_BENCH_BIN
    examples=${ILT_BENCH_EXAMPLES:?ILT_BENCH_EXAMPLES: an examples shard}
  else
    ILT_TORCH=pypi source "$root/scripts/bench-common.sh" bench-train
    demo_examples
    examples=$PWD/demo.train.examples
  fi
  out=${ILT_BENCH_OUT:-$PWD}
  : >"$out/bench.jsonl"
  for preset in ${ILT_BENCH_PRESETS:-tiny ref-tiny ref-small base}; do
    "$bin/ilt-bench" --examples "$examples" --train-config "$preset" --device "${ILT_BENCH_DEVICE:-cuda}" \
      --precision bf16 --steps "$steps" --batch-size "$batch" >>"$out/bench.jsonl" 2>>"$out/bench.err" ||
      { echo "bench-train: $preset failed (see $out/bench.err)" >&2; exit 1; }
  done
  gpu=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1 || true)
  "$python" - "$out/bench.jsonl" "$steps" "$batch" "${gpu:-${ILT_BENCH_DEVICE:-cuda}}" <<'EOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
print("\n%s; bf16 autocast; %s timed steps after 2 warm-up; batch %s x 128 words (demo corpus)\n" % (
    sys.argv[4], sys.argv[2], sys.argv[3]))
print("| preset | params | ms/step | words/s | text bytes/s | TFLOP/s | MFU (989 dense bf16) | of measured bf16 matmul | peak GiB | decoder padded | host syncs/step | split (fwd: image/bytes/latent/decoder, backward, optimizer, data) |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|")
for r in rows:
    s = r["split"]
    syncs = r.get("host_syncs_per_step")
    print("| %s | %.1fM | %.1f | %.0f | %.0f | %.1f | %.1f%% | %.1f%% (%.0f TFLOP/s) | %.2f | %.1f%% | %s | %s |" % (
        r["config"], r["parameters"] / 1e6, 1000 * r["step_s"], r["words_per_s"], r["bytes_per_s"],
        r["flops_per_s"] / 1e12, 100 * r["flops_per_s"] / 989e12, 100 * r["fraction_of_matmul"],
        r["matmul_flops_per_s"] / 1e12, r["peak_memory_gib"], 100 * r["decoder_padded_fraction"], "-" if syncs is None else "%.1f" % syncs,
        " / ".join("%.0f%%" % (100 * s[k]) for k in ("image_encoder", "bytes_encoder", "latent", "decoder", "backward", "optimizer", "data_wait"))))
# Against the reference on one H100 (bf16, micro-batch 32 x 128 words): words/s, and per
# parameter (FLOP-normalised: the model FLOPs per word scale with the parameters).
ref = {"ref-small": (31.4e3, 30.9e6, 94e3), "ref-tiny": (6.2e3, 13.0e6, 18.5e3)}
for r in rows:
    if r["config"] in ref:
        wps, params, target = ref[r["config"]]
        print("%s: %.0f words/s = %.2fx the reference's %.0f (target %.0f = 3x); per parameter %.2fx" % (
            r["config"], r["words_per_s"], r["words_per_s"] / wps, wps, target,
            r["words_per_s"] * r["parameters"] / (wps * params)))
for r in rows:
    if r["config"] == "base":
        print("base: %.1f%% MFU on real tokens against 989 TFLOP/s dense bf16 (target >= 35%%)" % (100 * r["flops_per_s"] / 989e12))
EOF
  exit 0
fi
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
