#!/usr/bin/env bash
# Command-line behaviour of ilt-pack: both splits written, determinism per seed, counts that
# add up, and a one-line error with no outputs when a word has no image.
# Usage: test_pack_cli.sh BUILD_DIR SOURCE_DIR
set -uo pipefail
bin=$1
src=$2
source "$src/tests/harness.sh"
# json FILE EXPR: evaluates a Python expression over `ilt-inspect FILE --json` (as j).
json() { "$bin/ilt-inspect" "$1" --json | python3 -c "import json, sys; j = json.load(sys.stdin); print($2)"; }
# Bytes of a shard from its first block on (records, index, footer; not the header).
body() { local off; off=$(grep -obUa 'BLK1' "$1" | head -1 | cut -d: -f1); tail -c +$((off + 1)) "$1" | md5sum; }

demo=$src/data/demo/udhr.jsonl
"$bin/ilt-segment" "$demo" --tag-field lang -o words.shard 2>/dev/null
"$bin/ilt-render" words.shard -o images.shard 2>/dev/null
check "demo words and images shards" test -s images.shard

# Both splits.
mkdir a b c d
"$bin/ilt-pack" words.shard --images images.shard -o a/out --validation-fraction 0.1 2>a.err
check "ilt-pack exits 0" test $? -eq 0
for f in train.examples train.vocab validation.examples validation.vocab; do
  check "writes out.$f" test -s "a/out.$f"
done
check "no temporary files left" bash -c "! ls a | grep -q tmp"
check "examples shard kind" bash -c "'$bin/ilt-inspect' a/out.train.examples | grep -q 'kind:     examples'"
check "validation examples shard kind" bash -c "'$bin/ilt-inspect' a/out.validation.examples | grep -q 'kind:     examples'"
check "vocab shard kind" bash -c "'$bin/ilt-inspect' a/out.train.vocab | grep -q 'kind:     vocab'"

# Determinism: same inputs and seed, same bytes; another seed, other records.
"$bin/ilt-pack" words.shard --images images.shard -o b/out --validation-fraction 0.1 2>/dev/null
for f in train.examples train.vocab validation.examples validation.vocab; do
  check "same bytes twice: $f" cmp -s "a/out.$f" "b/out.$f"
done
"$bin/ilt-pack" words.shard --images images.shard -o c/out --validation-fraction 0.1 --seed 1 2>/dev/null
check "another seed gives another example order" test "$(body a/out.train.examples)" != "$(body c/out.train.examples)"
check "another seed keeps the split" \
  test "$(json a/out.validation.examples 'j["meta"]["counts"]["documents"]')" = \
       "$(json c/out.validation.examples 'j["meta"]["counts"]["documents"]')"

# Counts add up: every word of every document, plus one BOS word per document.
words=$(json words.shard 'j["stats"]["words"]')
docs=$(json words.shard 'j["stats"]["documents"]')
tw=$(json a/out.train.examples 'j["meta"]["counts"]["words"]')
vw=$(json a/out.validation.examples 'j["meta"]["counts"]["words"]')
td=$(json a/out.train.examples 'j["meta"]["counts"]["documents"]')
vd=$(json a/out.validation.examples 'j["meta"]["counts"]["documents"]')
check "examples words = words + BOS per document ($tw + $vw vs $words + $docs)" test $((tw + vw)) -eq $((words + docs))
check "train + validation documents = input documents ($td + $vd vs $docs)" test $((td + vd)) -eq "$docs"
check "validation is about 10% ($vd of $docs)" test $((vd * 100 / docs)) -ge 5 -a $((vd * 100 / docs)) -le 15
check "vocab records = counts.vocab" \
  test "$(json a/out.train.vocab 'j["records"]')" = "$(json a/out.train.examples 'j["meta"]["counts"]["vocab"]')"
check "examples records = counts.examples" \
  test "$(json a/out.train.examples 'j["records"]')" = "$(json a/out.train.examples 'j["meta"]["counts"]["examples"]')"

# Without packing: one document piece per example. With next-chars labels: same words.
"$bin/ilt-pack" words.shard --images images.shard -o d/np --no-packing --max-seq-length 32 2>/dev/null
check "--no-packing: examples = document pieces" \
  test "$(json d/np.train.examples 'j["meta"]["counts"]["examples"]')" = \
       "$(json d/np.train.examples 'j["meta"]["counts"]["document_pieces"]')"
check "--no-packing: no validation split without a fraction" test ! -e d/np.validation.examples
"$bin/ilt-pack" words.shard --images images.shard -o d/nc --labels next-chars 2>/dev/null
check "next-chars: same words" \
  test "$(json d/nc.train.examples 'j["meta"]["counts"]["words"]')" -eq $((words + docs))

# Wrong images shard: one error line naming the word and the files, no outputs at all.
printf 'zebra quokka\n' | "$bin/ilt-segment" - -o other.words 2>/dev/null
"$bin/ilt-render" other.words -o other.images 2>/dev/null
mkdir wrong
expect_error "word without an image" 'word "Whereas " has no image in other.images' \
  "$bin/ilt-pack" words.shard --images other.images -o wrong/out --validation-fraction 0.1
check "the error names the words shard" grep -q "words.shard" err.txt
check "no outputs after the error" test -z "$(ls -A wrong)"

# A missing control word (a newline) still gives a one-line error.
printf 'a\nb\n' > ab.txt
"$bin/ilt-segment" ab.txt --format lines -o ab.lines.words 2>/dev/null
"$bin/ilt-render" ab.lines.words -o ab.images 2>/dev/null
"$bin/ilt-segment" ab.txt --format paragraphs -o ab.par.words 2>/dev/null
expect_error "missing newline word" "has no image in ab.images" \
  "$bin/ilt-pack" ab.par.words --images ab.images -o wrong/nl
check "no outputs after the newline error" test -z "$(ls -A wrong)"

expect_error "images shard as words" "is a 'images' shard, expected 'words'" \
  "$bin/ilt-pack" images.shard --images images.shard -o wrong/k
check "bad --labels fails" bash -c "! '$bin/ilt-pack' words.shard --images images.shard -o wrong/l --labels nope 2>/dev/null"
check "no outputs after flag errors" test -z "$(ls -A wrong)"

# Rendering in parts (ilt-render --part I/N, e.g. one per machine): together the parts hold
# the serial run's images, and packing them gives the serial run's records exactly (word ids
# follow first use in the words shards, not the images shards' order).
"$bin/ilt-render" words.shard -o serial.images --threads 1 2>/dev/null
for i in 0 1 2; do "$bin/ilt-render" words.shard -o part$i.images --part $i/3 --threads 1 2>/dev/null; done
dump() { for f in "$@"; do "$bin/ilt-inspect" "$f" --dump 0: 2>/dev/null; done; }
check "render parts: together the serial run's images" python3 -c "
import json, sys
key = lambda l: json.dumps(dict(json.loads(l), index=0), sort_keys=True)  # a process substitution reads once
serial_list = [key(l) for l in open(sys.argv[1])]
serial, bos = set(serial_list), serial_list[0]
parts = [{key(l) for l in open(p)} for p in sys.argv[2:]]
assert set().union(*parts) == serial, 'images differ'
assert all(len(a & b) == 1 and bos in a for a in parts for b in parts if a is not b), 'parts overlap beyond BOS'
assert all(len(p) > 1 for p in parts), 'an empty part'
" <(dump serial.images) <(dump part0.images) <(dump part1.images) <(dump part2.images)
"$bin/ilt-pack" words.shard --images serial.images -o ser --validation-fraction 0.1 2>/dev/null
"$bin/ilt-pack" words.shard --images part0.images part1.images part2.images -o par --validation-fraction 0.1 2>/dev/null
for f in train.examples train.vocab validation.examples validation.vocab; do
  check "render parts: packed, the serial run's $f records exactly" cmp <(dump ser.$f) <(dump par.$f)
  check "render parts: $f has records" test -n "$(dump par.$f | head -1)"
done

# --shard-size: numbered examples shards of at most that many record bytes, sharing one
# vocabulary; together they hold the one-shard run's examples.
"$bin/ilt-pack" words.shard --images images.shard -o sh --validation-fraction 0.1 --shard-size 20KB 2>/dev/null
check "--shard-size: several numbered train shards" test -s sh.train-00002.examples
check "--shard-size: no unnumbered examples shard" test ! -e sh.train.examples
check "--shard-size: every shard names the split's vocabulary" bash -c "
  for f in sh.train-*.examples; do '$bin/ilt-inspect' \$f --json --no-stats | grep -q '\"vocab\": *\"sh.train.vocab\"' || exit 1; done"
check "--shard-size: the same vocabulary as one shard" cmp <(dump sh.train.vocab) <(dump a/out.train.vocab)
check "--shard-size: the shards hold the one-shard run's examples" cmp \
  <(dump sh.train-*.examples | python3 -c "import json,sys; print(sorted(json.dumps(dict(json.loads(l), index=0), sort_keys=True) for l in sys.stdin))") \
  <(dump a/out.train.examples | python3 -c "import json,sys; print(sorted(json.dumps(dict(json.loads(l), index=0), sort_keys=True) for l in sys.stdin))")
check "--shard-size: each shard's record bytes within the size" python3 -c "
import glob, struct
files = glob.glob('sh.train-*.examples')
for f in files:
    d = open(f, 'rb').read()
    at, raw, recs = d.index(b'BLK1'), 0, 0
    while d[at:at + 4] == b'BLK1':  # blocks: BLK1, records, raw bytes, zstd bytes, frame
        n, r, z = struct.unpack_from('<III', d, at + 4)
        raw, recs, at = raw + r, recs + n, at + 16 + z
    assert recs >= 1 and raw - 3 * recs <= 20 * 1024, (f, raw, recs)  # less each record's length varint
assert len(files) >= 3
"
check "--shard-size: no spill folder left" bash -c "! ls | grep -q spill"
expect_error "--shard-size: a bad size" "shard-size" "$bin/ilt-pack" words.shard --images images.shard -o x --shard-size lots
expect_error "render parts: a bad --part" "--part 3/3: expected I/N" "$bin/ilt-render" words.shard -o x.images --part 3/3
report pack-cli
