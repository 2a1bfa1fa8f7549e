#!/usr/bin/env bash
# Hostile input and hostile environments, tool by tool (issue 9; docs/reliability.md lists
# each case with the check here that proves it):
#   1. outputs to devices, FIFOs and symlinks are written through, never replaced; full
#      disks and full stdouts are errors
#   2. no crash or stack trace: zero intervals, damaged checkpoints, unknown devices
#   3. no silent wrong result: relabelled tensors, another --config on resume, negative
#      steps, invalid UTF-8 in arguments
#   4. every input is opened before any work
#   5. no leftovers after errors and signals; the previous complete output is kept
#   6. bounded cost: --beams, long prompts
#   7. out-of-range numbers and broken checkpoint JSON: one line naming the flag/file/key
# Usage: test_reliability.sh BUILD_DIR SOURCE_DIR PYTHON
set -uo pipefail
bin=$1
src=$2
py=$3
source "$src/tests/harness.sh"
skipped=0
skip() { skipped=$((skipped + 1)); echo "SKIP: $*"; }

head -20 "$src/data/demo/udhr.jsonl" > small.jsonl
"$bin/ilt-segment" small.jsonl --tag-field lang -o w.shard 2>/dev/null
"$bin/ilt-render" w.shard -o i.shard --threads 1 2>/dev/null
"$bin/ilt-pack" w.shard --images i.shard -o d --validation-fraction 0.2 2>/dev/null
train=("$bin/ilt-train" --train d.train.examples --threads 1 --batch-size 4)  # preset tiny
"${train[@]}" -o run --max-steps 2 --save-every 2 2>/dev/null
ck=run/step-0000002
check "setup: a checkpoint" test -s $ck/model.safetensors

# ---------------------------------------------------------------- 1. special files
# A character device made here (like /dev/null: major 1, minor 3), when mknod is allowed.
if mknod nulldev c 1 3 2>/dev/null && [[ -c nulldev ]]; then
  "$bin/ilt-segment" small.jsonl -o nulldev 2>/dev/null
  check "1: segment -o DEVICE keeps the device" test -c nulldev
  "$bin/ilt-render" w.shard -o nulldev 2>/dev/null
  check "1: render -o DEVICE keeps the device" test -c nulldev
  "$bin/ilt-render" --text 'a' --png nulldev 2>/dev/null
  check "1: render --png DEVICE keeps the device" test -c nulldev
  "$bin/ilt-inspect" i.shard --sheet nulldev --select 0:4 >/dev/null 2>&1
  check "1: inspect --sheet DEVICE keeps the device" test -c nulldev
  "$bin/ilt-eval" --checkpoint run --data d.validation.examples --json nulldev >/dev/null 2>&1
  check "1: eval --json DEVICE keeps the device" test -c nulldev
  "$bin/ilt-generate" --checkpoint run --max-words 2 -o nulldev 'a ' 2>/dev/null
  check "1: generate -o DEVICE keeps the device" test -c nulldev
  check "1: no temporary beside the device" bash -c "! ls nulldev.tmp 2>/dev/null"
else
  skip "1: device node outputs (mknod not permitted here)"
fi
# A FIFO: the reader gets the same bytes as a regular file; the FIFO stays a FIFO.
mkfifo fifo
timeout 60 cat fifo > from_fifo.shard &  # a tool that renamed over the FIFO would leave it waiting
reader=$!
timeout 60 "$bin/ilt-render" w.shard -o fifo --threads 1 2>/dev/null
wait $reader
check "1: render -o FIFO keeps the FIFO" test -p fifo
check "1: render -o FIFO delivers the shard" cmp -s from_fifo.shard i.shard
# A symlink (like /dev/stdout) is written through: the link stays, its target gets the bytes.
: > target.shard
ln -s target.shard link.shard
"$bin/ilt-render" w.shard -o link.shard --threads 1 2>/dev/null
check "1: -o SYMLINK keeps the link" test -L link.shard
check "1: -o SYMLINK writes its target" cmp -s target.shard i.shard
# Full stdout: the report is lost, so the exit status says so.
if [[ -c /dev/full ]]; then
  # full WHAT CMD...: fails with one error line naming <stdout> (a summary line may precede it).
  full() {
    local what=$1; shift
    if "$@" >/dev/full 2>err.txt; then bad "$what: exited 0"; return; fi
    if [[ $(grep -c "error:" err.txt) -ne 1 ]] || ! grep -q "<stdout>: write failed" err.txt; then
      bad "$what: $(cat err.txt)"; return
    fi
    ok
  }
  full "1: eval > /dev/full" "$bin/ilt-eval" --checkpoint run --data d.validation.examples
  full "1: inspect > /dev/full" "$bin/ilt-inspect" w.shard
  full "1: inspect --dump > /dev/full" "$bin/ilt-inspect" w.shard --dump all
  full "1: generate > /dev/full" "$bin/ilt-generate" --checkpoint run --max-words 2 -q 'a '
  full "1: segment -o - > /dev/full" "$bin/ilt-segment" small.jsonl -o -
else
  skip "1: full stdout (no /dev/full)"
fi

# ---------------------------------------------------------------- 2. crashes and traces
for flag in --save-every --log-every --eval-every; do
  expect_error "2: $flag 0" "$flag" "${train[@]}" -o r0 --max-steps 2 $flag 0
done
damaged() { rm -rf bad; cp -r $ck bad; }  # a copy of the checkpoint to damage
damaged; head -c 1000 $ck/optimizer.safetensors > bad/optimizer.safetensors
expect_error "2: half optimizer.safetensors" "bad/optimizer.safetensors" "${train[@]}" -o r2 --max-steps 3 --resume bad
damaged; rm bad/optimizer.safetensors
expect_error "2: missing optimizer.safetensors" "bad/optimizer.safetensors: missing" "${train[@]}" -o r2 --max-steps 3 --resume bad
damaged; head -c 100 $ck/rng.pt > bad/rng.pt
expect_error "2: half rng.pt" "bad/rng.pt" "${train[@]}" -o r2 --max-steps 3 --resume bad
damaged; rm bad/rng.pt
expect_error "2: missing rng.pt" "bad/rng.pt: missing" "${train[@]}" -o r2 --max-steps 3 --resume bad
expect_error "2: train --device bogus" "--device 'bogus'" "${train[@]}" -o r2 --max-steps 2 --device bogus
expect_error "2: eval --device bogus" "--device 'bogus'" "$bin/ilt-eval" --checkpoint run --data d.validation.examples --device bogus
expect_error "2: generate --device bogus" "--device 'bogus'" "$bin/ilt-generate" --checkpoint run --device bogus 'a '
# Edits the safetensors header in place: edit_header FILE PYTHON-EXPRESSION-ON-ENTRY.
edit_header() {
  "$py" - "$1" "$2" <<'PY'
import json, struct, sys
path, expr = sys.argv[1], sys.argv[2]
b = open(path, 'rb').read()
n = struct.unpack('<Q', b[:8])[0]
h = json.loads(b[8:8 + n])
name = sorted(k for k in h if k != '__metadata__')[0]
e = h[name]
exec(expr)
js = json.dumps(h).encode()
js += b' ' * ((8 - len(js) % 8) % 8)
open(path, 'wb').write(struct.pack('<Q', len(js)) + js + b[8 + n:])
PY
}
damaged; edit_header bad/model.safetensors "e['shape'] = [-1] + e['shape']"
expect_error "2: negative shape in safetensors" "bad/model.safetensors: tensor .* negative dimension" \
  "$bin/ilt-eval" --checkpoint bad --data d.validation.examples
damaged; edit_header bad/model.safetensors "e['shape'] = [1 << 40, 1 << 40]"
expect_error "2: huge shape in safetensors" "bad/model.safetensors: tensor .* larger than the file" \
  "$bin/ilt-eval" --checkpoint bad --data d.validation.examples

# ---------------------------------------------------------------- 3. silent wrong results
damaged; edit_header bad/model.safetensors "e['dtype'] = 'I32'"
expect_error "3: F32 relabelled I32 (eval)" "bad/model.safetensors: tensor .* is Int, the model wants Float" \
  "$bin/ilt-eval" --checkpoint bad --data d.validation.examples
expect_error "3: F32 relabelled I32 (generate)" "is Int, the model wants Float" \
  "$bin/ilt-generate" --checkpoint bad 'a '
expect_error "3: F32 relabelled I32 (resume)" "is Int, the model wants Float" \
  "${train[@]}" -o r3 --max-steps 3 --resume bad
expect_error "3: resume with another --config" "--config ref-small is not the model of $ck/config.json" \
  "${train[@]}" -o r3 --max-steps 3 --resume $ck --config ref-small
"${train[@]}" -o r3 --max-steps 3 --resume $ck --config tiny 2>/dev/null
check "3: resume with the same --config works" test -d r3/step-0000003
damaged; "$py" -c "import json; p='bad/trainer.json'; j=json.load(open(p)); j['step'] = -5; json.dump(j, open(p, 'w'))"
expect_error "3: negative step in trainer.json" "bad/trainer.json: key /step: -5 is negative" \
  "${train[@]}" -o r3 --max-steps 3 --resume bad
expect_error "3: invalid UTF-8 in a prompt argument" "prompt argument 2: invalid UTF-8 at byte offset 1" \
  "$bin/ilt-generate" --checkpoint run 'a ' $'b\xff '
"$bin/ilt-generate" --checkpoint run --max-words 1 --invalid replace $'b\xff ' >/dev/null 2>&1
check "3: --invalid replace accepts it" test $? -eq 0
expect_error "3: invalid UTF-8 in render --text" "--text: invalid UTF-8 at byte offset 2" \
  "$bin/ilt-render" --text $'ab\xff' --png x.png

# ---------------------------------------------------------------- 4. inputs opened first
expect_error "4: missing --validation fails at start" "nope.examples: cannot open" \
  "${train[@]}" -o r4 --max-steps 2 --validation nope.examples
check "4: ... before anything is written" test ! -e r4
expect_error "4: --validation of another kind" "is a 'words' shard, expected 'examples'" \
  "${train[@]}" -o r4 --max-steps 2 --validation w.shard

# ---------------------------------------------------------------- 5. leftovers
mkdir outdir
expect_error "5: -o DIRECTORY" "outdir: is a directory" "$bin/ilt-render" w.shard -o outdir
check "5: ... leaves no temporary" test ! -e outdir.tmp
expect_error "5: eval --json DIRECTORY, before the work" "outdir: is a directory" \
  "$bin/ilt-eval" --checkpoint run --data d.validation.examples --json outdir
# A full disk while writing a checkpoint (RLIMIT_FSIZE: writes past 200 KB fail with EFBIG).
(ulimit -f 200; trap '' XFSZ; "${train[@]}" -o r5 --max-steps 2 >/dev/null 2>err.txt)
check "5: checkpoint on a full disk fails" test $? -ne 0
check "5: ... naming the file" grep -q "r5/step-0000002.tmp/model.safetensors.tmp: write failed" err.txt
check "5: ... and removes step-N.tmp" bash -c "! ls -d r5/step-*.tmp 2>/dev/null"
check "5: ... and leaves no checkpoint" bash -c "! ls -d r5/step-* 2>/dev/null"
# The previous complete output survives a failed rewrite.
cp i.shard keep.shard
printf 'bad \xff\n' > bad.txt
"$bin/ilt-segment" bad.txt -o keep.shard 2>/dev/null
check "5: a failed run keeps the previous output" cmp -s keep.shard i.shard
check "5: ... and leaves no temporary" test ! -e keep.shard.tmp
# Signals: a slow pipe keeps ilt-segment writing; SIGINT and SIGTERM leave no NAME.tmp.
# Python starts the tool with default signal dispositions (a background job in a script
# would ignore SIGINT).
for sig in INT TERM HUP; do
  "$py" - "$bin/ilt-segment" small.jsonl "sig$sig.shard" "$sig" <<'PY'
import os, signal, subprocess, sys, time
tool, data, out, name = sys.argv[1:5]
def defaults():
    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, signal.SIG_DFL)
p = subprocess.Popen([tool, '--format', 'jsonl', '-o', out], stdin=subprocess.PIPE,
                     stderr=subprocess.DEVNULL, preexec_fn=defaults)
p.stdin.write(open(data, 'rb').read()); p.stdin.flush()
for _ in range(100):  # wait until the temporary exists
    if os.path.exists(out + '.tmp'): break
    time.sleep(0.05)
exists = os.path.exists(out + '.tmp')
p.send_signal(getattr(signal, 'SIG' + name))
rc = p.wait()
sys.exit(0 if exists and rc == -getattr(signal, 'SIG' + name) else 1)
PY
  check "5: SIG$sig kills ilt-segment by the signal, temporary present before" test $? -eq 0
  check "5: SIG$sig leaves no temporary" test ! -e "sig$sig.shard.tmp"
  check "5: SIG$sig leaves no output" test ! -e "sig$sig.shard"
done
# SIGTERM ends training cleanly: a checkpoint at the step reached, status 128 + 15.
"$py" - "${train[@]}" -o r6 --max-steps 1000000 --save-every 1000000 <<'PY'
import os, signal, subprocess, sys, time
def defaults():
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
p = subprocess.Popen(sys.argv[1:], stderr=subprocess.DEVNULL, preexec_fn=defaults)
time.sleep(3)
p.send_signal(signal.SIGTERM)
sys.exit(0 if p.wait() == 143 else 1)
PY
check "5: SIGTERM stops training with status 143" test $? -eq 0
check "5: ... after saving a checkpoint" bash -c "ls -d r6/step-* | grep -qv tmp && test -s r6/latest"
check "5: ... and no temporary" bash -c "! ls -d r6/*.tmp 2>/dev/null"

# ---------------------------------------------------------------- 6. bounded cost
expect_error "6: --beams 1000" "--beams: '1000' is outside \[1, 32\]" "$bin/ilt-generate" --checkpoint run --beams 1000 'a '
"$py" -c "print('word ' * 5000)" > long.txt
"$bin/ilt-generate" --checkpoint run --max-words 2 --input long.txt >out.txt 2>err.txt
check "6: a 5000-word prompt is cut to the trained context" grep -q "4873 earlier ones dropped" err.txt
check "6: ... and still answered" test -s out.txt
"$bin/ilt-generate" --checkpoint run --max-words 2 --max-context 10 --input long.txt >/dev/null 2>err.txt
check "6: --max-context N keeps N words" grep -q "read its last 10 words only, 4991 earlier" err.txt

# ---------------------------------------------------------------- 7. values
for args in "--lr -1" "--lr nan" "--warmup -5" "--beta1 1.5" "--beta2 inf" "--threads -2" "--batch-size -1" \
            "--clip 0" "--min-lr-ratio 2" "--max-minutes -1" "--grad-accum 0"; do
  # shellcheck disable=SC2086
  expect_error "7: ilt-train $args" "${args%% *}" "${train[@]}" -o r7 --max-steps 2 $args
done
for args in "--top-p 2" "--top-p nan" "--top-p 0" "--temperature -1" "--temperature nan" "--threads -2" \
            "--batch-size 0" "--top-k -1"; do
  # shellcheck disable=SC2086
  expect_error "7: ilt-generate $args" "${args%% *}" "$bin/ilt-generate" --checkpoint run $args 'a '
done
for args in "--font-px nan" "--font-px 1e6" "--height 0" "--max-width -3" "--threads 0"; do
  # shellcheck disable=SC2086
  expect_error "7: ilt-render $args" "${args%% *}" "$bin/ilt-render" --text a --png x.png $args
done
mkdir fontdir
expect_error "7: --font DIR" "font file fontdir: not a regular file" "$bin/ilt-render" --text a --png x.png --font fontdir
echo "not a font" > notafont.ttf
expect_error "7: --font NOT-A-FONT" "notafont.ttf" "$bin/ilt-render" --text a --png x.png --font notafont.ttf
expect_error "7: ilt-pack --validation-fraction nan" "--validation-fraction" \
  "$bin/ilt-pack" w.shard --images i.shard -o p --validation-fraction nan
damaged; "$py" -c "import json; p='bad/config.json'; j=json.load(open(p)); j['model']['latent']['heads'] = 'x'; json.dump(j, open(p, 'w'))"
expect_error "7: config.json key of the wrong type" "bad/config.json: key /latent/heads: expected an integer, got string" \
  "$bin/ilt-eval" --checkpoint bad --data d.validation.examples
damaged; "$py" -c "import json; p='bad/config.json'; j=json.load(open(p)); j['model']['latent']['heads'] = 3; json.dump(j, open(p, 'w'))"
expect_error "7: config.json bad head count" "bad/config.json: model config: latent dim 128 must split into 3 heads" \
  "$bin/ilt-generate" --checkpoint bad 'a '
damaged; "$py" -c "import json; p='bad/config.json'; j=json.load(open(p)); del j['model']; json.dump(j, open(p, 'w'))"
expect_error "7: config.json without the model" "bad/config.json: no key /model" \
  "$bin/ilt-eval" --checkpoint bad --data d.validation.examples
damaged; echo '{"step": 2, "loader": 5' > bad/trainer.json
expect_error "7: broken trainer.json" "bad/trainer.json: parse error" "${train[@]}" -o r7 --max-steps 3 --resume bad
damaged; echo '{"step": 2, "loader": 5}' > bad/trainer.json
expect_error "7: trainer.json key of the wrong type" "bad/trainer.json: key /loader: expected an object" \
  "${train[@]}" -o r7 --max-steps 3 --resume bad

echo "reliability: $skipped skipped"
report reliability
