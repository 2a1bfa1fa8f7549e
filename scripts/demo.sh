#!/usr/bin/env bash
# The whole pipeline on the embedded demo corpus (UDHR in 20 languages). Outputs go to
# demo-out/: shards of every stage, their summaries, and PNGs of rendered words.
# Usage: scripts/demo.sh [--torch debian|pypi]  (pypi: PyPI's torch 2.11, 2.8x faster training
# on a CPU, a 4.6 GB install; docs/design.md, "Two LibTorch builds")
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
source "$root/scripts/torch-choice.sh"
"$root/scripts/install-deps.sh" --torch "$torch"
"$root/scripts/build.sh" --torch "$torch"
bin=$root/$build_dir
out=$root/demo-out
mkdir -p "$out"
cd "$root"

echo "== segment: documents -> words"
"$bin/ilt-segment" data/demo/udhr.jsonl --tag-field lang -o "$out/words.shard"
"$bin/ilt-inspect" "$out/words.shard" > "$out/words.summary.txt"
"$bin/ilt-inspect" "$out/words.shard" --dump 0:2 > "$out/words.sample.jsonl"

echo "== render: distinct words -> images"
"$bin/ilt-render" "$out/words.shard" -o "$out/images.shard"
"$bin/ilt-inspect" "$out/images.shard" > "$out/images.summary.txt"

echo "== pictures: demo-out/sheet.png, demo-out/scripts.png, demo-out/png/"
"$bin/ilt-inspect" "$out/images.shard" --sheet "$out/sheet.png" --select 0:48 > /dev/null
# One sample word per language, as a contact sheet and as single PNG files.
words=()
while IFS= read -r w; do words+=(--word "$w"); done < <(
  "$bin/ilt-inspect" "$out/words.shard" --dump all | /usr/bin/python3 -c '
import json, sys
seen = set()
for line in sys.stdin:
    d = json.loads(line)
    if d["tag"] not in seen and len(d["words"]) > 3:
        seen.add(d["tag"]); print(d["words"][3])')
"$bin/ilt-inspect" "$out/images.shard" "${words[@]}" --sheet "$out/scripts.png" --png-dir "$out/png" > /dev/null

echo "== pack: words + images -> training examples (train and validation)"
"$bin/ilt-pack" "$out/words.shard" --images "$out/images.shard" -o "$out/demo" --validation-fraction 0.05 \
  --max-seq-length 64
"$bin/ilt-inspect" "$out/demo.train.examples" > "$out/examples.summary.txt"
"$bin/ilt-inspect" "$out/demo.train.examples" --dump 0 > "$out/examples.sample.jsonl"

echo "== train: the tiny model for about two minutes (demo-out/run/, plot in demo-out/loss.png)"
rm -rf "$out/run"
"$bin/ilt-train" --train "$out/demo.train.examples" --validation "$out/demo.validation.examples" \
  --config tiny --output "$out/run" --batch-size 8 --max-steps 400 --max-minutes 2 --warmup 30 \
  --eval-every 50 --save-every 100 --log-every 25
"$root/scripts/plot-metrics" "$out/run/metrics.jsonl" "$out/loss.png" --title "ilt tiny on the UDHR demo corpus"

echo "== eval: the trained model on the validation split (demo-out/eval.json)"
"$bin/ilt-eval" --checkpoint "$out/run" --data "$out/demo.validation.examples" --json "$out/eval.json"
/usr/bin/python3 - "$out/run/metrics.jsonl" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
val = [r for r in rows if r["split"] == "validation"]
tr = [r for r in rows if r["split"] == "train"]
print(f"   train loss {tr[0]['loss']:.3f} (step {tr[0]['step']}) -> {tr[-1]['loss']:.3f} (step {tr[-1]['step']})")
if val:
    print(f"   validation bpb {val[0]['bpb']:.3f} (step {val[0]['step']}) -> {val[-1]['bpb']:.3f} (step {val[-1]['step']})")
PY

echo "== generate: continuations of a few prompts (greedy, then sampled; demo-out/generate.jsonl)"
printf '%s\n' 'All human beings are born free and equal in ' 'Everyone has the right to' \
  'Tout individu a droit à la ' 'Toda persona tiene ' > "$out/prompts.txt"
"$bin/ilt-generate" --checkpoint "$out/run" --input "$out/prompts.txt" --max-words 12 --echo | sed 's/^/   /'
"$bin/ilt-generate" --checkpoint "$out/run" --input "$out/prompts.txt" --max-words 12 --echo \
  --temperature 0.8 --top-p 0.95 --seed 1 -q | sed 's/^/   sampled: /'
"$bin/ilt-generate" --checkpoint "$out/run" --input "$out/prompts.txt" --max-words 12 --json -q \
  -o "$out/generate.jsonl"

grep -E '"(documents|words|images)"' "$out/words.summary.txt" "$out/images.summary.txt" | sort -u | sed 's/^/   /'
echo "demo done: outputs in demo-out/"
