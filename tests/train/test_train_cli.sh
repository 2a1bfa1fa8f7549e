#!/usr/bin/env bash
# ilt-train end to end on a small packed corpus: checkpoints, metrics, exact resume,
# determinism, safetensors readable from Python, non-finite loss handling.
# Usage: test_train_cli.sh BUILD_DIR SOURCE_DIR PYTHON
set -uo pipefail
bin=$1
src=$2
py=$3
source "$src/tests/harness.sh"
losses() { grep '"split":"train"' "$1" | "$py" -c 'import json,sys; print(" ".join("%.9g" % json.loads(l)["loss"] for l in sys.stdin))'; }

"$bin/ilt-segment" "$src/data/demo/udhr-eng-heb.txt" -o w.shard 2>/dev/null
"$bin/ilt-render" w.shard -o i.shard 2>/dev/null
"$bin/ilt-pack" w.shard --images i.shard -o d --max-seq-length 32 --validation-fraction 0.1 2>/dev/null
train() { "$bin/ilt-train" --train d.train.examples --validation d.validation.examples --batch-size 4 \
  --threads 1 --seed 3 --log-every 1 --eval-every 4 --save-every 4 --max-steps 8 "$@"; }

train --output full 2>/dev/null
check "metrics: 8 train lines" bash -c "[[ \$(grep -c '\"split\":\"train\"' full/metrics.jsonl) -eq 8 ]]"
check "metrics: validation lines" grep -q '"split":"validation"' full/metrics.jsonl
check "metrics carry throughput and FLOP/s" grep -q '"flops_per_s"' full/metrics.jsonl
check "checkpoint files" bash -c "for f in config.json model.safetensors optimizer.pt trainer.json rng.pt; do test -s full/step-0000008/\$f || exit 1; done"
check "latest names the newest" grep -q step-0000008 full/latest
check "no temporary directories" bash -c "! ls full | grep -q tmp"
check "config records renderer fonts" grep -q NotoSans-Regular.ttf full/step-0000008/config.json

# Resume from the step-4 checkpoint: steps 5..8 must repeat the uninterrupted run exactly.
train --output resumed --resume full/step-0000004 2>/dev/null
want=$(losses full/metrics.jsonl | cut -d' ' -f5-)
got=$(losses resumed/metrics.jsonl)
check "resume: losses equal the uninterrupted run ($got)" test -n "$got" -a "$want" == "$got"
check "resume: same final weights" cmp -s full/step-0000008/model.safetensors resumed/step-0000008/model.safetensors

# Determinism: same seed and data, same bytes; another seed, other weights.
train --output again 2>/dev/null
check "same seed, identical weights" cmp -s full/step-0000008/model.safetensors again/step-0000008/model.safetensors
train --output other --seed 4 2>/dev/null
check "other seed, other weights" bash -c "! cmp -s full/step-0000008/model.safetensors other/step-0000008/model.safetensors"

check "safetensors readable with numpy" "$py" "$src/tests/train/check_safetensors.py" \
  full/step-0000008/model.safetensors full/step-0000008/config.json

# A diverging run stops with a clear message; the last good checkpoint stays intact.
"$bin/ilt-train" --train d.train.examples --output nan --max-steps 6 --save-every 1 --batch-size 2 \
  --lr 1e35 --warmup 0 --clip 1e38 --threads 1 >out.txt 2>err.txt
rc=$?
check "non-finite loss: non-zero exit" test $rc -ne 0
check "non-finite loss: message" grep -q "non-finite" err.txt
check "non-finite loss: last good checkpoint kept" test -s nan/step-0000001/model.safetensors
check "bad preset: clear error" bash -c "'$bin/ilt-train' --train d.train.examples --output x --config nope 2>&1 | grep -q \"unknown model preset 'nope'\""

# ilt-eval on the trained checkpoint: report, JSON, modality switch, renderer check.
"$bin/ilt-eval" --checkpoint full --data d.validation.examples --json eval.json --threads 1 > eval.txt 2>/dev/null
check "eval: table printed" grep -q "^overall" eval.txt
check "eval: JSON report" "$py" -c "
import json; r = json.load(open('eval.json')); o = r['overall']
assert o['words'] > 0 and o['loss'] > 0 and 0 <= o['byte_accuracy'] <= 1 and 0 <= o['exact_match'] <= 1, o
assert abs(o['bpb'] - o['loss'] * o['target_bytes'] / (0.6931471805599453 * o['label_bytes'])) < 1e-6
assert r['checkpoint'].endswith('step-0000008')"
"$bin/ilt-eval" --checkpoint full --data d.validation.examples --json eval-noimg.json --disable-modality image --threads 1 >/dev/null 2>&1
check "eval: disabling the image encoder changes the loss" "$py" -c "
import json; a = json.load(open('eval.json')); b = json.load(open('eval-noimg.json'))
assert a['overall']['loss'] != b['overall']['loss'] and b['modalities']['image'] is False"
"$bin/ilt-eval" --checkpoint full --data d.validation.examples --json - --threads 1 2>/dev/null > a.json
"$bin/ilt-eval" --checkpoint full --data d.validation.examples --json - --threads 1 2>/dev/null > b.json
check "eval: deterministic" cmp -s a.json b.json
"$bin/ilt-render" w.shard -o small.shard --font-px 10 2>/dev/null
"$bin/ilt-pack" w.shard --images small.shard -o s --max-seq-length 32 2>/dev/null
"$bin/ilt-eval" --checkpoint full --data s.train.examples >/dev/null 2>err.txt
rc=$?
check "eval: refuses data rendered differently" test $rc -ne 0
check "eval: says why" grep -q "font_px" err.txt
check "eval: override flag" "$bin/ilt-eval" --checkpoint full --data s.train.examples --allow-render-mismatch --max-batches 1 --threads 1

report train-cli
