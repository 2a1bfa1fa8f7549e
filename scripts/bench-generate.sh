#!/usr/bin/env bash
# Generation benchmark (issue 5): words/s at batch 1 and batch 64 for `tiny` and `ref-small`
# on this machine's CPU; time per generated word at a 500-word context divided by that at a
# 10-word context (target <= 1.5); speed-up of the KV caches over --no-cache at 200
# generated words (target >= 10x).
#
# The checkpoints are trained for a few steps only (speed does not depend on quality), so
# words are sampled (temperature 1, fixed seed) with --max-word-bytes 8 to keep them word
# sized; every run generates exactly the words asked for (--min-words = --max-words). Times
# are ilt-generate's own (model loading excluded); per-word times leave out reading the
# prompt.
# Usage: scripts/bench-generate.sh [DEVICE, default cpu]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
device=${1:-cpu}
source "$root/scripts/bench-common.sh" bench-generate
py=/usr/bin/python3
demo_examples
for config in tiny ref-small; do
  if [[ ! -s $config/latest ]]; then
    "$bin/ilt-train" --train demo.train.examples --config "$config" --output "$config" --batch-size 2 \
      --max-steps 2 --save-every 2 --device "$device" >/dev/null 2>&1
  fi
done
# Prompts: English UDHR text, cut to N words.
"$py" - "$root/data/demo/udhr-eng-heb.txt" <<'PY'
import sys
words = open(sys.argv[1], encoding="utf-8").read().split()
def cut(n, start=0):
    return " ".join(words[start:start + n]) + " "
open("ctx10.txt", "w").write(cut(9) + "\n")    # + BOS: 10 words read
open("ctx500.txt", "w").write(cut(499) + "\n")
open("batch64.txt", "w").write("".join(cut(8, 37 * i) + "\n" for i in range(64)))
PY
echo "machine: $machine; device: $device"
# run CONFIG PROMPTS WORDS [FLAGS...] -> "seconds prompt_seconds words"
run() {
  local config=$1 prompts=$2 words=$3
  shift 3
  "$bin/ilt-generate" --checkpoint "$config" --input "$prompts" --max-words "$words" --min-words "$words" \
    --max-word-bytes 8 --temperature 1 --seed 1 --batch-size 64 --device "$device" "$@" 2>&1 >/dev/null |
    "$py" -c '
import re, sys
m = re.search(r"(\d+) words in ([\d.]+) s .*prompts read in ([\d.]+) s", sys.stdin.read())
print(m.group(2), m.group(3), m.group(1))'
}
for config in tiny ref-small; do
  read -r s1 p1 w1 < <(run "$config" ctx10.txt 100)
  read -r s64 p64 w64 < <(run "$config" batch64.txt 50)
  read -r sa pa wa < <(run "$config" ctx10.txt 50)
  read -r sb pb wb < <(run "$config" ctx500.txt 50)
  read -r sc pc wc < <(run "$config" ctx10.txt 200)
  read -r sn pn wn < <(run "$config" ctx10.txt 200 --no-cache)
  "$py" - "$config" "$s1" "$w1" "$s64" "$w64" "$sa" "$pa" "$wa" "$sb" "$pb" "$wb" "$sc" "$sn" <<'PY'
import sys
c = sys.argv[1]
s1, w1, s64, w64, sa, pa, wa, sb, pb, wb, sc, sn = map(float, sys.argv[2:])
ta, tb = (sa - pa) / wa, (sb - pb) / wb
print(f"  {c:9s} batch 1: {w1 / s1:7.1f} words/s   batch 64: {w64 / s64:7.1f} words/s")
print(f"            per word at context 10: {1e3 * ta:.2f} ms, at context 500: {1e3 * tb:.2f} ms, "
      f"ratio {tb / ta:.2f} (target <= 1.5; 500-word prompt read in {pb:.2f} s)")
print(f"            200 words: {sc:.2f} s with KV caches, {sn:.2f} s without: "
      f"speed-up {sn / sc:.1f}x (target >= 10x)")
PY
done
