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

"$bin/ilt-generate" --checkpoint "$out/run" --input "$out/prompts.txt" --max-words 12 --echo --beams 4 -q \
  | sed 's/^/   4 beams: /'

echo "== the loop at work: a model trained for one minute to count on (demo-out/count/)"
# Documents are runs of consecutive numbers ("417 418 419 420"). Given three numbers, the model
# writes the next four: each word it writes is rendered and read back to write the next one.
# Prompts start where no training document starts.
mkdir -p "$out/count"
/usr/bin/python3 - "$out/count" <<'PY'
import json, random, sys
r = random.Random(1)
starts = list(range(0, 990))
r.shuffle(starts)
test, train = starts[:20], set(starts[20:])
with open(sys.argv[1] + "/train.jsonl", "w") as f:
    for _ in range(6000):
        k = r.choice(sorted(train))
        f.write(json.dumps({"text": " ".join(str(x) for x in range(k, k + r.randint(3, 8)))}) + "\n")
with open(sys.argv[1] + "/prompts.jsonl", "w") as f:
    for k in test:
        f.write(json.dumps({"text": f"{k} {k + 1} {k + 2} ", "answer": f"{k + 3} {k + 4} {k + 5} {k + 6} "}) + "\n")
PY
"$bin/ilt-segment" "$out/count/train.jsonl" -o "$out/count/words.shard" 2>/dev/null
"$bin/ilt-render" "$out/count/words.shard" -o "$out/count/images.shard" 2>/dev/null
"$bin/ilt-pack" "$out/count/words.shard" --images "$out/count/images.shard" -o "$out/count/count" --seed 1 2>/dev/null
rm -rf "$out/count/run"
"$bin/ilt-train" --train "$out/count/count.train.examples" --config tiny --output "$out/count/run" --batch-size 16 \
  --max-minutes 1 --max-steps 2000 --warmup 30 --log-every 50 2>&1 | tail -n 1 | sed 's/^/   /'
"$bin/ilt-generate" --checkpoint "$out/count/run" --input "$out/count/prompts.jsonl" --format jsonl --max-words 4 \
  --json -q -o "$out/count/answers.jsonl"
/usr/bin/python3 - "$out/count" <<'PY'
import json, sys
d = sys.argv[1]
ok = 0
for p, g in zip(map(json.loads, open(d + "/prompts.jsonl")), map(json.loads, open(d + "/answers.jsonl"))):
    good = g["text"].strip() == p["answer"].strip()
    ok += good
    print(f"   {p['text']}-> {g['text'].strip():<20} {'ok' if good else 'expected ' + p['answer'].strip()}")
print(f"   exact: {ok}/20 unseen prompts")
PY

grep -E '"(documents|words|images)"' "$out/words.summary.txt" "$out/images.summary.txt" | sort -u | sed 's/^/   /'
echo "demo done: outputs in demo-out/"
