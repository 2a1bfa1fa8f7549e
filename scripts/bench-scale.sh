#!/usr/bin/env bash
# Data preparation at scale: every stage's time and peak memory (RSS, /usr/bin/time) on a
# 0.1 GB and a 1 GB generated corpus (Zipf over 2M words, so the vocabulary stays bounded),
# and the streaming loader's words/s on both. Prints the table and the 1 GB / 0.1 GB ratios
# against issue 13's targets: loader peak RSS < 1 GB and within 1.2x, at the same words/s.
# Needs ~6 GB of free disk. Takes ~15 minutes on 2 cores.
# Usage: scripts/bench-scale.sh [WORKDIR, default BUILD/bench-scale]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
source "$root/scripts/bench-common.sh" bench-scale
[[ $# -ge 1 ]] && { mkdir -p "$1"; cd "$1"; }
free_gb=$(df -Pk . | awk 'NR == 2 { print int($4 / 1048576) }')
((free_gb >= 6)) || { echo "bench-scale: $(pwd) has $free_gb GB free, needs 6" >&2; exit 1; }
echo "machine: $machine; work dir: $(pwd)"
cores=$(nproc)

: > times.txt
measure() {  # measure NAME COMMAND...: appends "NAME seconds kilobytes" to times.txt
  local name=$1; shift
  /usr/bin/time -f "$name %e %M" -a -o times.txt "$@"
}
for mb in 100 1000; do
  c=z$mb
  [[ -s $c.txt ]] || /usr/bin/python3 "$root/scripts/make-bench-corpus.py" $c.txt $mb --zipf 2000000
  rm -rf $c.out && mkdir $c.out
  measure "segment $mb" "$bin/ilt-segment" $c.txt -o $c.out/words.shard --shard-size 256MB 2>/dev/null
  measure "render $mb" "$bin/ilt-render" $c.out/words-*.shard -o $c.out/images.shard --threads "$cores" 2>/dev/null
  # One of 4 parts (ilt-render --part): each process holds a quarter of the distinct words.
  measure "render-part $mb" "$bin/ilt-render" $c.out/words-*.shard -o $c.out/part0.images --part 0/4 --threads "$cores" 2>/dev/null
  measure "pack $mb" "$bin/ilt-pack" $c.out/words-*.shard --images $c.out/images.shard -o $c.out/$c \
    --validation-fraction 0.01 --shard-size 64MB 2>/dev/null
  measure "loader $mb" "$bin/ilt-bench" --examples $c.out/$c.train-*.examples --threads 1 --min-seconds 30 \
    > $c.out/loader.json
  du -sm $c.out/words-*.shard $c.out/images.shard $c.out/$c.train-*.examples $c.out/$c.train.vocab |
    awk -v c=$mb '{ split($2, p, "/"); k = p[2]; sub(/-[0-9]+/, "", k); sub("^z" c "[.]", "", k); s[k] += $1 } END { for (k in s) print "size", c, k, s[k] }' >> times.txt
done

/usr/bin/python3 - <<'PY'
import json
t, size = {}, {}
for line in open("times.txt"):
    f = line.split()
    if f[0] == "size":
        size[(f[2], f[1])] = int(f[3])
    else:
        t[(f[0], f[1])] = (float(f[2]), int(f[3]) / 1024)
ws = {mb: json.load(open(f"z{mb}.out/loader.json"))["words_per_s"] for mb in ("100", "1000")}
print("\n| stage | 0.1 GB: time, peak RSS | 1 GB: time, peak RSS | RSS 1 GB / 0.1 GB |")
print("|---|---|---|---|")
names = {"segment": "ilt-segment", "render": "ilt-render (all cores)", "render-part": "ilt-render --part 0/4",
         "pack": "ilt-pack", "loader": "loader (ilt-bench --examples, 30 s)"}
for k, name in names.items():
    a, b = t[(k, "100")], t[(k, "1000")]
    print(f"| {name} | {a[0]:.0f} s, {a[1]:.0f} MB | {b[0]:.0f} s, {b[1]:.0f} MB | {b[1] / a[1]:.2f}x |")
print("\nshards (MB): " + "; ".join(f"{k} {size.get((k, '100'), 0)} / {size.get((k, '1000'), 0)}"
                                   for k in sorted({k for k, _ in size})))
lo_a, lo_b = t[("loader", "100")][1], t[("loader", "1000")][1]
print(f"loader words/s: {ws['100']:.0f} (0.1 GB), {ws['1000']:.0f} (1 GB): {ws['1000'] / ws['100']:.2f}x")
print(f"target: loader peak RSS < 1024 MB on 1 GB: {lo_b:.0f} MB, {'met' if lo_b < 1024 else 'MISSED'}; "
      f"within 1.2x of 0.1 GB: {lo_b / lo_a:.2f}x, {'met' if lo_b / lo_a <= 1.2 else 'MISSED'}; "
      f"same words/s: {ws['1000'] / ws['100']:.2f}x")
PY
