#!/usr/bin/env bash
# Data-stage benchmarks: segmentation MB/s per core, distinct words rendered per second
# per core and render scaling with threads, in-process (ilt-bench) and end to end (the
# tools on files). Prints figures and their ratios to the targets of issue 2.
# Usage: scripts/bench-data.sh [MEGABYTES of generated corpus, default 50]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
mb=${1:-50}
source "$root/scripts/bench-common.sh" bench

/usr/bin/python3 - "$root/data/demo/udhr.jsonl" demo.txt <<'PY'
import json, sys
with open(sys.argv[2], "w", encoding="utf-8") as f:
    for line in open(sys.argv[1], encoding="utf-8"):
        f.write(json.loads(line)["text"] + "\n")
PY
[[ -s gen-$mb.txt ]] || /usr/bin/python3 "$root/scripts/make-bench-corpus.py" "gen-$mb.txt" "$mb"

echo "machine: $machine"
report() {  # reads ilt-bench JSON lines, prints figures and ratios
  /usr/bin/python3 -c '
import json, sys
for line in sys.stdin:
    r = json.loads(line)
    name = r["file"]
    if r["bench"] == "segment":
        mbs = r["mb_per_s"]
        print("  segment  %-14s 1 core : %8.1f MB/s  (%.2fx the 100 MB/s target; %.0fx the Python reference 3.5 MB/s)"
              % (name, mbs, mbs / 100, mbs / 3.5))
    elif r["bench"] == "loader":
        print("  loader   %-14s batch %d: %8.0f words/s delivered as tensors (%d batches; 1 prefetch thread)"
              % (name, r["batch_size"], r["words_per_s"], r["batches"]))
    else:
        per = r["words_per_s_per_thread"]
        print("  render   %-14s %d thread(s): %8.0f words/s  (%.0f per thread: %.2fx the 100k/core target; %.1fx the Python reference 35k/core; %d distinct)"
              % (name, r["threads"], r["words_per_s"], per, per / 1e5, per / 35000, r["distinct_words"]))
'
}
echo "in-process (ilt-bench):"
"$bin/ilt-bench" --text demo.txt | report
"$bin/ilt-bench" --text "gen-$mb.txt" --max-render-words 100000 | report

echo "end to end (the tools, files on disk, single process):"
words=0
declare -A stage_s
t0=$(date +%s.%N)
"$bin/ilt-segment" "gen-$mb.txt" -o gen.words 2>/dev/null
t1=$(date +%s.%N)
bytes=$(stat -c %s "gen-$mb.txt")
/usr/bin/python3 -c "b=$bytes; s=$t1-$t0; print(f'  ilt-segment {b/1e6:.0f} MB: {s:.2f} s = {b/s/1e6:.1f} MB/s (read, validate, hash, segment, compress, write)')"
stage_s[segment]=$(/usr/bin/python3 -c "print($t1-$t0)")
for th in 1 $(nproc); do
  t0=$(date +%s.%N)
  "$bin/ilt-render" gen.words -o gen.images --threads "$th" 2>/dev/null
  t1=$(date +%s.%N)
  n=$("$bin/ilt-inspect" gen.images --no-stats --json | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["meta"]["counts"]["images"])')
  /usr/bin/python3 -c "n=$n; s=$t1-$t0; print(f'  ilt-render --threads $th: {n} distinct words in {s:.2f} s = {n/s:.0f} words/s (incl. start-up, reading, dedup, compress, write)')"
  if [[ $th == 1 ]]; then stage_s[render]=$(/usr/bin/python3 -c "print($t1-$t0)"); fi
done
t0=$(date +%s.%N)
"$bin/ilt-pack" gen.words --images gen.images -o gen --validation-fraction 0.01 2>/dev/null
t1=$(date +%s.%N)
words=$("$bin/ilt-inspect" gen.words --no-stats --json | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["meta"]["counts"]["words"])')
/usr/bin/python3 -c "w=$words; s=$t1-$t0; print(f'  ilt-pack: {w} words in {s:.2f} s = {w/s:.0f} words/s on one core (load images, check, label, shuffle, write)')"
stage_s[pack]=$(/usr/bin/python3 -c "print($t1-$t0)")
echo "  stages in input words per second, one process each (the slowest stage bounds the pipeline):"
for st in segment render pack; do
  /usr/bin/python3 -c "w=$words; s=${stage_s[$st]}; print(f'    {\"$st\":<8} {w/s:10.0f} words/s')"
done
"$bin/ilt-bench" --examples gen.train.examples --min-seconds 3 | report
echo "  (scripts/bench-train.sh compares the loader with what ilt-train consumes)"
