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
check "checkpoint files" bash -c "for f in config.json model.safetensors optimizer.safetensors trainer.json rng.pt; do test -s full/step-0000008/\$f || exit 1; done"
check "trainer.json and config.json carry format versions" "$py" -c "
import json; t = json.load(open('full/step-0000008/trainer.json')); c = json.load(open('full/step-0000008/config.json'))
assert t['format_version'] == 2 and c['model']['format_version'] == 5, (t, c['model'])"
check "latest names the newest" grep -q step-0000008 full/latest
check "no temporary directories" bash -c "! ls full | grep -q tmp"
check "config records renderer fonts" grep -q NotoSans-Regular.ttf full/step-0000008/config.json

# Resume from the step-4 checkpoint: steps 5..8 must repeat the uninterrupted run exactly.
# Into another directory, the history up to step 4 comes along: all 8 losses, none twice.
train --output resumed --resume full/step-0000004 2>/dev/null
want=$(losses full/metrics.jsonl)
got=$(losses resumed/metrics.jsonl)
check "resume: losses equal the uninterrupted run ($got)" test -n "$got" -a "$want" == "$got"
check "resume: same final weights" cmp -s full/step-0000008/model.safetensors resumed/step-0000008/model.safetensors
check "resume: a resume line records the checkpoint" grep -q '"checkpoint":"full/step-0000004".*"split":"resume"' resumed/metrics.jsonl
# The settings, data and its order come from the checkpoint: no flag needed (a run directory
# resumes from its latest).
"$bin/ilt-train" --resume full/step-0000004 --output bare --threads 1 --log-every 1 --eval-every 4 --save-every 4 2>/dev/null
check "resume without flags: same final weights" cmp -s full/step-0000008/model.safetensors bare/step-0000008/model.safetensors
"$bin/ilt-train" --resume full --output bare2 --threads 1 --max-steps 9 2>/dev/null
check "resume from a run directory: its latest (step 8) -> step 9" test -d bare2/step-0000009
check "resume: --max-steps may grow, and is recorded" grep -q '"changed":{"max_steps":\[8,9\]}' bare2/metrics.jsonl
# A differing setting is refused, or taken with --override and recorded.
expect_error "resume: another --lr is refused" "--lr 0.001 differs from the checkpoint's 0.002" \
  "$bin/ilt-train" --resume full/step-0000004 --output x1 --lr 1e-3
check "resume: nothing written on refusal" test ! -e x1
expect_error "resume: another --batch-size is refused" "--batch-size 2 differs from the checkpoint's 4" \
  "$bin/ilt-train" --resume full/step-0000004 --output x1 --batch-size 2
"$bin/ilt-train" --resume full/step-0000004 --output over --lr 1e-3 --override --threads 1 2>/dev/null
check "resume --override: the change is recorded" grep -q '"changed":{"lr":\[0.002,0.001\]}' over/metrics.jsonl
check "resume --override: and trains on" test -d over/step-0000008
expect_error "resume: another --train is refused" "--train d.validation.examples is not the checkpoint's training data" \
  "$bin/ilt-train" --resume full/step-0000004 --output x1 --train d.validation.examples
"$bin/ilt-train" --resume full/step-0000004 --output newdata --train d.validation.examples --override --threads 1 2>/dev/null
check "resume --override with other data: recorded, restarted at its beginning" "$py" -c "
import json, os; r = [json.loads(l) for l in open('newdata/metrics.jsonl') if '\"resume\"' in l][0]
assert r['changed']['train'] == [[os.path.abspath('d.train.examples')], ['d.validation.examples']], r
n = json.load(open('newdata/step-0000008/config.json'))['data']['train_examples']
k = 4 * 4  # 4 steps of 4 examples from the start of the new data
t = json.load(open('newdata/step-0000008/trainer.json'))['loader']
assert (t['epoch'], t['cursor']) == ((k - 1) // n, k - (k - 1) // n * n), (t, n)"
for flag in "--seed 9" "--grad-accum 2" "--schedule linear" "--shuffle-buffer 7"; do
  expect_error "resume: another ${flag% *} is refused" "${flag% *} .* differs from the checkpoint's" \
    "$bin/ilt-train" --resume full/step-0000004 --output x1 $flag
done
# Same files, other contents (re-packed): the saved position would mean other examples.
cp -r full/step-0000004 repacked
"$py" -c "import json; p='repacked/config.json'; j=json.load(open(p)); j['data']['train_examples'] = 999; json.dump(j, open(p, 'w'))"
expect_error "resume: re-packed data is refused" "training examples, the checkpoint's data had 999" \
  "$bin/ilt-train" --resume repacked --output x1
"$bin/ilt-train" --resume repacked --output repacked-run --override --threads 1 2>/dev/null
check "resume --override on re-packed data: recorded" grep -q '"train_examples":\[999,' repacked-run/metrics.jsonl
# A format 1 checkpoint (no format_version in trainer.json) reads its optimizer from optimizer.pt.
cp -r full/step-0000004 v1
"$py" -c "import json; p='v1/trainer.json'; j=json.load(open(p)); del j['format_version']; json.dump(j, open(p, 'w'))"
expect_error "resume: format 1 reads optimizer.pt" "v1/optimizer.pt: missing" "$bin/ilt-train" --resume v1 --output x1
# A trailing slash (tab completion) names the same checkpoint: the history comes along.
"$bin/ilt-train" --resume full/step-0000004/ --output slash --threads 1 --log-every 1 2>/dev/null
check "resume: a trailing slash on --resume" test "$(losses slash/metrics.jsonl)" == "$want"
expect_error "resume: --max-steps not past the checkpoint" "--max-steps 4: full/step-0000004 is at step 4 already" \
  "$bin/ilt-train" --resume full/step-0000004 --output x1 --max-steps 4
expect_error "a new run into a directory holding one is refused" "full: already holds a training run" \
  "$bin/ilt-train" --train d.train.examples --output full --max-steps 2
# Resuming inside its own run directory cuts metrics.jsonl back to the checkpoint's step.
cp -r full cut
train --output cut --resume cut/step-0000004 2>/dev/null
check "resume in place: no (split, step) twice, the same losses" "$py" -c "
import json, collections
rows = [json.loads(l) for l in open('cut/metrics.jsonl')]
seen = collections.Counter((r['split'], r['step']) for r in rows)
assert max(seen.values()) == 1, seen.most_common(3)
full = [r['loss'] for r in map(json.loads, open('full/metrics.jsonl')) if r['split'] == 'train']
assert [r['loss'] for r in rows if r['split'] == 'train'] == full"
check "resume in place: same final weights" cmp -s full/step-0000008/model.safetensors cut/step-0000008/model.safetensors
check "resume in place: the later checkpoint of the old history is renamed" test -s cut/step-0000008.abandoned/model.safetensors
check "resume in place: the resume line lists it" grep -q '"abandoned":\["step-0000008.abandoned"\]' cut/metrics.jsonl
check "resume in place: latest names the new step 8" grep -qx step-0000008 cut/latest
train --output cut --resume cut/step-0000004 2>/dev/null
check "resume in place twice: still no (split, step) twice" "$py" -c "
import json, collections
seen = collections.Counter((r['split'], r['step']) for r in map(json.loads, open('cut/metrics.jsonl')))
assert max(seen.values()) == 1, seen.most_common(3)"
check "resume in place twice: the second abandoned checkpoint gets its own name" test -d cut/step-0000008.abandoned-2

# Checkpoint folders past step 9,999,999: pruning keeps the newest by number, not by name.
mkdir big
cp -r full/step-0000008 big/step-9999998
"$py" -c "import json; p='big/step-9999998/trainer.json'; j=json.load(open(p)); j['step'] = 9999998; json.dump(j, open(p, 'w'))"
"$bin/ilt-train" --resume big/step-9999998 --output big --max-steps 10000001 --save-every 1 --keep-last 3 --threads 1 2>/dev/null
"$bin/ilt-train" --resume big --output big --max-steps 10000002 --save-every 1 --keep-last 3 --threads 1 2>/dev/null
check "steps past 9,999,999: the three newest kept ($(ls big | tr '\n' ' '))" \
  test "$(ls -d big/step-* | sort -V | tr '\n' ' ')" == "big/step-10000000 big/step-10000001 big/step-10000002 "
check "steps past 9,999,999: latest is the newest" grep -qx step-10000002 big/latest

# The loss of a step is the mean over all its target bytes, however they are split into
# micro-batches: 2 x 2 examples and 1 x 4 give the same losses (no modality dropout here).
echo '{"preset": "tiny", "modality_dropout": 0}' > nodrop.json
for split in "4 1" "2 2"; do
  set -- $split
  "$bin/ilt-train" --train d.train.examples --config nodrop.json --output "accum-$1x$2" --batch-size $1 --grad-accum $2 \
    --threads 1 --seed 5 --max-steps 3 --log-every 1 2>/dev/null
done
check "gradient accumulation: the same losses as one batch" "$py" -c "
import json
a, b = ([r['loss'] for r in map(json.loads, open(d + '/metrics.jsonl')) if r['split'] == 'train'] for d in ('accum-4x1', 'accum-2x2'))
assert len(a) == 3 and all(abs(x - y) < 1e-4 * x for x, y in zip(a, b)), (a, b)"

# The autoencoding loss (config autoencode): logged per step; the first step's next-word loss is
# the plain model's (same seed, same weights), the later ones differ (its gradient was added).
echo '{"preset": "tiny", "modality_dropout": 0, "autoencode": 1}' > ae.json
"$bin/ilt-train" --train d.train.examples --config ae.json --output ae --batch-size 4 --threads 1 --seed 5 --max-steps 3 \
  --log-every 1 2>/dev/null
check "autoencode: its loss logged, the first step equal to the plain model's, then not" "$py" -c "
import json, math
ae, plain = ([r for r in map(json.loads, open(d + '/metrics.jsonl')) if r['split'] == 'train'] for d in ('ae', 'accum-4x1'))
assert all(0 < r['autoencode_loss'] < 10 for r in ae) and not any('autoencode_loss' in r for r in plain), ae
assert abs(ae[0]['loss'] - plain[0]['loss']) < 1e-6 * plain[0]['loss'] and ae[2]['loss'] != plain[2]['loss'], (ae, plain)
assert ae[0]['model_flops'] > plain[0]['model_flops'], 'training FLOPs count the autoencoding pass'"

# Determinism: same seed and data, same bytes; another seed, other weights.
train --output again 2>/dev/null
check "same seed, identical weights" cmp -s full/step-0000008/model.safetensors again/step-0000008/model.safetensors
train --output other --seed 4 2>/dev/null
check "other seed, other weights" bash -c "! cmp -s full/step-0000008/model.safetensors other/step-0000008/model.safetensors"

check "safetensors readable with numpy" "$py" "$src/tests/train/check_safetensors.py" \
  full/step-0000008/model.safetensors full/step-0000008/config.json

# A run cut short by --max-minutes logs its last step (plots need a training line) and saves it.
"$bin/ilt-train" --train d.train.examples --output short --max-steps 50 --max-minutes 0.00001 --log-every 100 \
  --batch-size 2 --threads 1 >/dev/null 2>short.err
check "--max-minutes: stops early with a message" grep -q -- "--max-minutes reached at step 1" short.err
check "--max-minutes: the last step is logged" grep -q '"split":"train","step":1' short/metrics.jsonl
check "--max-minutes: the last step is saved" test -s short/step-0000001/model.safetensors

# A diverging run stops with a clear message; the last good checkpoint stays intact.
"$bin/ilt-train" --train d.train.examples --output nan --max-steps 6 --save-every 1 --batch-size 2 \
  --lr 1e35 --warmup 0 --clip 1e38 --threads 1 >out.txt 2>err.txt
rc=$?
check "non-finite loss: non-zero exit" test $rc -ne 0
check "non-finite loss: message" grep -q "non-finite" err.txt
check "non-finite loss: last good checkpoint kept" test -s nan/step-0000001/model.safetensors
check "bad preset: clear error" bash -c "'$bin/ilt-train' --train d.train.examples --output x --config nope 2>&1 | grep -q \"unknown model preset 'nope'\""

# What the build runs on: LibTorch's version and CUDA; a device or precision it lacks is one line.
"$bin/ilt-train" --version > version.txt
check "--version names LibTorch and CUDA" grep -q "^LibTorch [0-9]" version.txt
check "--version says whether CUDA was compiled in" grep -Eq "^CUDA( [0-9.]+)?: (compiled|not compiled)" version.txt
if grep -q "^CUDA: not compiled" version.txt; then
  expect_error "--device cuda in a CPU-only build" "cuda: this build's LibTorch has no CUDA" \
    "$bin/ilt-train" --train d.train.examples --output x2 --device cuda
elif grep -q "no device" version.txt; then
  expect_error "--device cuda without a GPU" "cuda: no CUDA device on this machine" \
    "$bin/ilt-train" --train d.train.examples --output x2 --device cuda
fi
if "$py" -c "import re,sys; v = re.search(r'LibTorch (\d+)\.(\d+)', open('version.txt').read()); sys.exit(0 if (int(v[1]), int(v[2])) >= (2, 4) else 1)"; then
  # bf16 autocast on the CPU: trains, and its checkpoint evaluates in fp32 and bf16.
  "$bin/ilt-train" --train d.train.examples --output bf16 --max-steps 2 --batch-size 4 --threads 1 --precision bf16 2>/dev/null
  check "bf16: training writes a checkpoint" test -s bf16/step-0000002/model.safetensors
  for p in fp32 bf16; do
    "$bin/ilt-eval" --checkpoint bf16 --data d.validation.examples --precision $p --threads 1 --json "bf16-$p.json" >/dev/null 2>&1
  done
  check "bf16: evaluated in fp32 and bf16, close" "$py" -c "
import json; a, b = (json.load(open(f'bf16-{p}.json'))['overall']['loss'] for p in ('fp32', 'bf16'))
assert abs(a - b) < 0.02 * a and a != b, (a, b)"
else
  expect_error "bf16 needs LibTorch 2.4" "--precision bf16 needs LibTorch 2.4 or newer" \
    "$bin/ilt-train" --train d.train.examples --output x2 --precision bf16
fi

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
# Words inside a prefix block have no label: ilt-eval counts the others only.
# BOS a b SO c d e SI f g: block [3, 8), its labels but ShiftIn's ignored -> 6 words.
printf '{"text": "a b \\u000ec d e\\u000ff g"}\n' > block.jsonl
"$bin/ilt-segment" block.jsonl -o bw.shard 2>/dev/null && "$bin/ilt-render" bw.shard -o bi.shard 2>/dev/null &&
  "$bin/ilt-pack" bw.shard --images bi.shard -o block 2>/dev/null
"$bin/ilt-eval" --checkpoint full --data block.train.examples --json block.json --threads 1 >/dev/null 2>&1
check "eval: words inside a prefix block are not counted" "$py" -c "
import json; o = json.load(open('block.json'))['overall']; assert o['words'] == 6, o"
"$bin/ilt-render" w.shard -o small.shard --font-px 10 2>/dev/null
"$bin/ilt-pack" w.shard --images small.shard -o s --max-seq-length 32 2>/dev/null
"$bin/ilt-eval" --checkpoint full --data s.train.examples >/dev/null 2>err.txt
rc=$?
check "eval: refuses data rendered differently" test $rc -ne 0
check "eval: says why" grep -q "font_px" err.txt
check "eval: override flag" "$bin/ilt-eval" --checkpoint full --data s.train.examples --allow-render-mismatch --max-batches 1 --threads 1

report train-cli
