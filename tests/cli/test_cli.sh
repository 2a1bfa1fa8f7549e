#!/usr/bin/env bash
# Command-line behaviour of ilt-segment, ilt-render and ilt-inspect: pipes, determinism,
# atomic outputs and one-line errors with non-zero exits.
# Usage: test_cli.sh BUILD_DIR SOURCE_DIR
set -uo pipefail
bin=$1
src=$2
source "$src/tests/harness.sh"

demo=$src/data/demo/udhr.jsonl

# Pipes: segment | render, with '-' on both ends.
"$bin/ilt-segment" "$demo" --tag-field lang -o words.shard 2>/dev/null
check "segment writes a shard" test -s words.shard
check "no temporary file left" test ! -e words.shard.tmp
cat "$demo" | "$bin/ilt-segment" --format jsonl --tag-field lang 2>/dev/null | "$bin/ilt-render" - -o - 2>/dev/null > piped.images
"$bin/ilt-render" words.shard -o images.shard --threads 2 2>/dev/null
check "piped images equal file images (records)" \
  bash -c "'$bin/ilt-inspect' piped.images --dump all | cut -c1-200 | md5sum > a; '$bin/ilt-inspect' images.shard --dump all | cut -c1-200 | md5sum > b; cmp -s a b"

# Determinism: same input, same bytes; whatever the thread count.
"$bin/ilt-segment" "$demo" --tag-field lang -o words2.shard 2>/dev/null
check "segment is deterministic" cmp -s words.shard words2.shard
"$bin/ilt-render" words.shard -o images1.shard --threads 1 2>/dev/null
check "render records identical for 1 and 2 threads" \
  bash -c "python3 - <<'PY'
import sys
a=open('images1.shard','rb').read(); b=open('images.shard','rb').read()
ia=a.find(b'BLK1'); ib=b.find(b'BLK1')
sys.exit(0 if a[ia:] == b[ib:] else 1)
PY"

# Lossless: the words of each document give the text back (checked through inspect's JSON).
check "words concatenate to the input text" bash -c "
  '$bin/ilt-inspect' words.shard --dump all | python3 -c '
import json, sys
src = [json.loads(l)[\"text\"] for l in open(\"$demo\", encoding=\"utf-8\")]
got = [\"\".join(json.loads(l)[\"words\"]) for l in sys.stdin]
sys.exit(0 if src == got else 1)'"

# Inspect: stats, dumps, PNGs, contact sheet.
"$bin/ilt-inspect" words.shard > summary.txt
check "inspect shows kind and counts" grep -q "kind:     words" summary.txt
check "inspect shows tags" grep -q '"heb": 31' summary.txt
"$bin/ilt-inspect" images.shard --word "Hello" --word "human " --png-dir pngs > /dev/null 2>&1
check "inspect writes word PNGs" bash -c "ls pngs | grep -q '_human%20.png'"
"$bin/ilt-inspect" images.shard --sheet sheet.png --select 0:12 > /dev/null
check "contact sheet is a PNG" bash -c "head -c 8 sheet.png | od -c | grep -q 'P   N   G'"
"$bin/ilt-render" words.shard -o rendered.shard --png-dir rendered 2>/dev/null
check "render --png-dir writes one PNG per distinct word" \
  bash -c "[[ \$(ls rendered | wc -l) -eq \$('$bin/ilt-inspect' images.shard --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[\"records\"])') ]]"
"$bin/ilt-render" --text 'שלום' --png one.png 2>/dev/null
check "render --text --png" test -s one.png

# Errors: one line, non-zero exit, naming the file/line/offset.
printf 'good\nbad \xff byte\n' > bad.txt
expect_error "invalid UTF-8" "bad.txt:2: invalid UTF-8 at byte offset 9" "$bin/ilt-segment" bad.txt -o x.shard
check "no output after an error" test ! -e x.shard
check "no temporary after an error" test ! -e x.shard.tmp
"$bin/ilt-segment" bad.txt --invalid replace -o y.shard 2>/dev/null
check "--invalid replace succeeds" test -s y.shard
expect_error "missing input" "nope.txt: cannot open" "$bin/ilt-segment" nope.txt -o z.shard
head -c 3000 images.shard > cut.shard
expect_error "truncated shard" "cut.shard: truncated" "$bin/ilt-inspect" cut.shard
expect_error "wrong kind" "is a 'images' shard, expected 'words'" "$bin/ilt-render" images.shard -o w.shard
expect_error "not a shard" "not an ilt shard" "$bin/ilt-inspect" bad.txt
head -c 3000 words.shard | "$bin/ilt-render" - -o p.shard 2>err.txt
check "truncated pipe fails" bash -c "! '$bin/ilt-render' - -o p.shard < cut.shard 2>/dev/null"
check "no output from a failed pipe read" test ! -e p.shard
# --shard-size: numbered shards whose records, in order, are the one-shard run's.
"$bin/ilt-segment" "$demo" --tag-field lang -o split.words --shard-size 100KB 2>/dev/null
check "--shard-size: numbered words shards" test -s split-00003.words
check "--shard-size: no unnumbered shard" test ! -e split.words
check "--shard-size: the records of one shard, in order" cmp \
  <(for f in split-0*.words; do "$bin/ilt-inspect" "$f" --dump 0: 2>/dev/null; done | python3 -c "import json,sys; [print(json.dumps(dict(json.loads(l), index=0))) for l in sys.stdin]") \
  <("$bin/ilt-inspect" words.shard --dump 0: 2>/dev/null | python3 -c "import json,sys; [print(json.dumps(dict(json.loads(l), index=0))) for l in sys.stdin]")
check "--shard-size: each shard counts its own documents" bash -c "
  total=0; for f in split-0*.words; do n=\$('$bin/ilt-inspect' \$f --json --no-stats | python3 -c 'import json,sys; print(json.load(sys.stdin)[\"meta\"][\"counts\"][\"documents\"])'); total=\$((total + n)); done
  test \$total -eq 650"
expect_error "--shard-size to stdout" "need a file name, not '-'" "$bin/ilt-segment" "$demo" --shard-size 1MB -o -
check "unknown flag fails" bash -c "! '$bin/ilt-segment' --no-such-flag 2>/dev/null"
check "--help explains" bash -c "'$bin/ilt-segment' --help | grep -q 'lossless'"

report cli
