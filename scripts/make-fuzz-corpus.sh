#!/usr/bin/env bash
# Regenerates the seed corpora of the fuzz targets, tests/fuzz/corpus/TARGET/, from a build
# (default build/) and the demo data: real tool outputs on a few short lines of
# data/demo/udhr.jsonl (words, images, examples and vocab shards, written to files and to a
# pipe; a tiny checkpoint's config.json and model.safetensors), plus hand-made inputs:
# shards whose zstd frames hold stored (uncompressed) blocks without checksums, so that
# mutations reach the records inside; small safetensors files of every dtype; text in
# several scripts, invalid UTF-8, CRLF, JSONL with escapes; the inputs of the unit tests.
# The corpora replace the old ones; keep them small (the whole lot a few hundred KB).
# Usage: scripts/make-fuzz-corpus.sh [BUILD_DIR]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin=$(cd "${1:-$root/build}" && pwd)
out=$root/tests/fuzz/corpus
for tool in ilt-segment ilt-render ilt-pack ilt-train; do
  [[ -x $bin/$tool ]] || { echo "make-fuzz-corpus: $bin/$tool not built" >&2; exit 1; }
done
tmp=$(mktemp -d "${TMPDIR:-/tmp}/ilt-corpus.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"

# A few short documents in several scripts (the shortest line of each language).
python3 - "$root/data/demo/udhr.jsonl" > small.jsonl <<'EOF'
import json, sys
best = {}
for line in open(sys.argv[1], encoding="utf-8"):
    d = json.loads(line)
    if d["lang"] in ("eng", "cmn", "jpn", "tha", "heb", "arb", "kor", "hin", "rus") and \
       (d["lang"] not in best or len(d["text"]) < len(best[d["lang"]]["text"])):
        best[d["lang"]] = d
for d in best.values():
    print(json.dumps(d, ensure_ascii=False))
EOF
head -n 3 small.jsonl > tiny.jsonl

# q: runs a tool quietly; its messages only if it fails.
q() { "$@" 2>"$tmp/tool.log" || { cat "$tmp/tool.log" >&2; echo "make-fuzz-corpus: failed: $*" >&2; exit 1; }; }
q "$bin/ilt-segment" small.jsonl --tag-field lang -o small.words
q "$bin/ilt-segment" tiny.jsonl --tag-field lang -o tiny.words
q "$bin/ilt-segment" tiny.jsonl -o - > tiny-pipe.words          # written to a pipe
: > empty.txt
q "$bin/ilt-segment" empty.txt -o empty.words                   # no records, no blocks
q "$bin/ilt-render" tiny.words -o tiny.images --threads 1
q "$bin/ilt-pack" tiny.words --images tiny.images -o tiny --max-seq-length 16 --validation-fraction 0.4
q "$bin/ilt-pack" tiny.words --images tiny.images -o chars --labels next-chars --max-seq-length 8 --no-packing
# A tiny model, one step: its config.json and model.safetensors (small dims, small file).
cat > model.json <<'EOF'
{"preset": "tiny", "image_encoder": "none", "bytes_encoder": {"layers": 1, "dim": 8, "heads": 2, "ffn": 8},
 "latent": {"layers": 1, "dim": 8, "heads": 2, "ffn": 8}, "bytes_decoder": {"layers": 1, "dim": 8, "heads": 2, "ffn": 8},
 "max_word_length": 8}
EOF
q "$bin/ilt-pack" tiny.words --images tiny.images -o m8 --max-word-length 8 --max-seq-length 8
q "$bin/ilt-train" --train m8.train.examples --config model.json --output run --batch-size 2 --threads 1 \
  --max-steps 1 --save-every 1 >/dev/null
ckpt=$(find run -name model.safetensors -printf '%h\n' | sort | tail -1)
[[ -n $ckpt ]] || { echo "make-fuzz-corpus: ilt-train wrote no checkpoint" >&2; exit 1; }

rm -rf "$out"
mkdir -p "$out"/{fuzz_shard,fuzz_segment,fuzz_documents,fuzz_prompts,fuzz_safetensors}
cp small.words tiny.words tiny-pipe.words empty.words tiny.images "$out/fuzz_shard/"
cp tiny.train.examples tiny.train.vocab tiny.validation.examples tiny.validation.vocab \
  chars.train.examples "$out/fuzz_shard/"

# Hand-made inputs (Python, standard library only).
python3 - "$out" small.jsonl "$ckpt/config.json" "$ckpt/model.safetensors" <<'EOF'
import json, os, struct, sys, zlib

out, small, config_path, tensors_path = sys.argv[1:5]
docs = [json.loads(l) for l in open(small, encoding="utf-8")]

def put(target, name, data):
    if isinstance(data, str):
        data = data.encode("utf-8")
    with open(os.path.join(out, target, name), "wb") as f:
        f.write(data)

def varint(v):
    b = bytearray()
    while v >= 0x80:
        b.append((v & 0x7F) | 0x80)
        v >>= 7
    b.append(v)
    return bytes(b)

def blob(b):
    return varint(len(b)) + b

# ---- shards with stored zstd blocks and no checksum (docs/shard-format.md for the layout)
def stored_frame(raw):
    # Frame header: single segment, 8-byte content size, no checksum; raw blocks of <= 128 KiB.
    f = bytearray(b"\x28\xb5\x2f\xfd\xe0") + struct.pack("<Q", len(raw))
    chunks = [raw[i:i + 131072] for i in range(0, len(raw), 131072)] or [b""]
    for k, c in enumerate(chunks):
        last = 1 if k == len(chunks) - 1 else 0
        f += struct.pack("<I", last | (0 << 1) | (len(c) << 3))[:3] + c
    return bytes(f)

def shard(kind, header, records, per_block, footer=None):
    js = json.dumps(header, separators=(",", ":")).encode()
    h = b"ILTSHARD" + struct.pack("<IH", 1, len(kind)) + kind.encode() + struct.pack("<I", len(js)) + js
    out_b = bytearray(h + struct.pack("<I", zlib.crc32(h)))
    blocks = []
    for i in range(0, len(records), per_block):
        recs = records[i:i + per_block]
        raw = b"".join(blob(r) for r in recs)
        z = stored_frame(raw)
        blocks.append((len(out_b), i, len(recs)))
        out_b += b"BLK1" + struct.pack("<III", len(recs), len(raw), len(z)) + z
    idx = struct.pack("<Q", len(blocks)) + b"".join(struct.pack("<QQI", *b) for b in blocks)
    fj = json.dumps(footer if footer is not None else {"counts": {"records": len(records)}}, separators=(",", ":")).encode()
    idx += struct.pack("<Q", len(records)) + struct.pack("<I", len(fj)) + fj
    z = stored_frame(idx)
    at = len(out_b)
    out_b += b"IDX1" + struct.pack("<I", len(z)) + z + struct.pack("<QQ", at, len(records)) + b"ILTEND01"
    return bytes(out_b)

def words_record(doc_id, tag, words):
    ws = [w.encode() for w in words]
    return blob(doc_id.encode()) + blob(tag.encode()) + varint(len(ws)) + b"".join(varint(len(w)) for w in ws) + b"".join(ws)

def split_words(text):
    words, cur = [], ""
    for ch in text:
        cur += ch
        if ch == " ":
            words.append(cur)
            cur = ""
    return words + ([cur] if cur else [])

def image_record(word, w, h):
    return blob(word.encode()) + struct.pack("<HH", w, h) + bytes((x * 37 + y * 11) % 256 for y in range(h) for x in range(w))

def example_record(ids, docs, prefix, labels):
    r = varint(len(ids)) + b"".join(varint(i) for i in ids) + varint(len(docs))
    for length, first, total, tag in docs:
        r += varint(length) + varint(first) + varint(total) + blob(tag.encode())
    r += varint(len(prefix)) + b"".join(varint(a) + varint(b) for a, b in prefix)
    return r + b"".join(blob(l.encode()) for l in labels)

words = [words_record(d["id"], d["lang"], split_words(d["text"][:60])) for d in docs]
words.append(words_record("", "", []))
put("fuzz_shard", "stored.words", shard("words", {"tool": "fuzz"}, words, 3))
vocab = ["\x02", "All ", "human ", "beings ", "are ", "born ", "free", "שלום ", "人人"]
images = [image_record(w, 4 + 2 * (i % 3), 3) for i, w in enumerate(vocab)]
put("fuzz_shard", "stored.images", shard("images", {"tool": "fuzz"}, images, 4))
put("fuzz_shard", "stored.vocab", shard("vocab", {"tool": "fuzz"}, images, 100))
examples = [
    example_record([0, 1, 2, 3, 4, 5, 6], [(7, 0, 7, "eng")], [], ["All ", "human ", "beings ", "are ", "born ", "free", ""]),
    example_record([0, 7, 0, 8], [(2, 0, 2, "heb"), (2, 0, 5, "cmn")], [(0, 2), (2, 4)], ["שלום ", "", "人人", "生而"]),
    example_record([3, 4, 5], [(3, 4, 9, "")], [(1, 3)], ["are ", "born ", "free"]),
]
put("fuzz_shard", "stored.examples", shard("examples", {"tool": "fuzz", "vocab": "stored.vocab"}, examples, 2))
put("fuzz_shard", "stored-empty.words", shard("words", {}, [], 1, footer={}))
put("fuzz_shard", "record.words", words[0])  # a bare record: the decoders on their own
put("fuzz_shard", "record.example", examples[1])
put("fuzz_shard", "record.image", images[7])

# ---- text: fuzz_segment (byte 0: max_bytes % 48), fuzz_documents (byte 0: format, policy, keep_empty, tag),
# fuzz_prompts (byte 0: format, policy; byte 1: max_word_length - 3)
texts = {d["lang"]: d["text"][:300] for d in docs}
texts.update({
    "mixed": "Hello, world!  Tabs\tand\r\nCRLF; שלום עולם; مرحبا; 你好世界; こんにちは世界; สวัสดีครับ; 안녕 세상",
    "controls": "\x02a b \x0e span\x0f x\x7fy \x00z\x1b[0m\u0085nel\u2028ls\u3000ideo",
    "spaces": "   lead  two  x    \u00a0nbsp\u2003em\u202f",
    "marks": "e\u0301\u0301\u0301 a\u0308 \U0001F469\u200D\U0001F469\u200D\U0001F467 \U0001F1EB\U0001F1F7\U0001F1E9\U0001F1EA ok",
    "long": "Antidisestablishmentarianism pneumonoultramicroscopicsilicovolcanoconiosis " + "\u0928\u092e\u0938\u094d\u0924\u0947" * 6,
    "khmer": "\u1781\u17d2\u1789\u17bb\u17c6\u1787\u17b6\u1793\u17b7\u179f\u17d2\u179f\u17b7\u178f \u0ea5\u0eb2\u0ea7",
})
for i, (name, t) in enumerate(sorted(texts.items())):
    put("fuzz_segment", f"{name}.txt", bytes([30 if i % 3 else (0 if i % 2 else 7)]) + t.encode())

lines = "\n".join(d["text"][:120] for d in docs[:4]) + "\n"
jsonl = "".join(json.dumps({"id": d["id"], "lang": d["lang"], "text": d["text"][:120]}, ensure_ascii=i % 2 == 0) + "\n"
                for i, d in enumerate(docs))
doc_inputs = {
    # from tests/text/test_input.cpp
    "test-lines": (0, b"first doc\r\n\nsecond  doc\nlast without newline"),
    "test-paragraphs": (1, b"\n\npara one\nstill one\n\n\npara two\n"),
    "test-jsonl": (20, b'{"id":"a","lang":"heb","text":"\\u05e9 x\\n"}\n\n{"text":"two"}\n'),
    "test-bad-json": (2, b'{"text":"ok"}\n{"text": nope}\n'),
    "test-no-field": (2, b'{"body":"ok"}\n'),
    "test-bad-utf8": (0, b"good line\nbad \xff here\nok\n"),
    "test-bad-utf8-replace": (3, b"good line\nbad \xff here\nok\n"),
    "test-bad-utf8-skip": (6, b"good line\nbad \xff here\nok\n"),
    # the demo data and more
    "udhr-lines": (0, lines.encode()),
    "udhr-paragraphs-keep": (10, lines.replace("\n", "\n\n", 2).encode()),
    "udhr-jsonl": (20, jsonl.encode()),
    "udhr-jsonl-keep": (29, jsonl.encode()),
    "jsonl-escapes": (23, b'{"text":"\\ud83d\\ude00 \\u00e9\\t\\"q\\"","id":7,"lang":["x",1]}\n  \t\n{"text":""}\n{"text":"\\u0000"}\n'),
    "jsonl-bad-utf8-skip": (8, b'{"text":"a\xc3("}\n{"text":"b"}\n'),
    "invalid-mix-replace": (4, b"\xed\xa0\x80 surrogate\n\xf4\x90\x80\x80 big\n\xc0\xaf overlong\r\n\xe2\x82 cut\n\n\n"),
    "crlf-keep": (9, b"a\r\n\r\n\rb\r\r\n\n"),
}
for name, (opt, data) in doc_inputs.items():
    put("fuzz_documents", name, bytes([opt]) + data)

prompt_inputs = {
    # tests/generate/test_generate_cli.sh
    "test-prompts": (0, 29, b"All human beings \nEveryone has the rig\n\nArticle 1\n"),
    "test-prompts-jsonl": (1, 29, b'{"text": "All human beings ", "id": 1}\n{"text": "Article 1"}\n'),
    "udhr-lines": (0, 29, lines.encode()),
    "udhr-jsonl-short-words": (1, 5, jsonl.encode()),
    "mid-word": (3, 29, "Everyone has the rig\nשלו\n人人生而\n\x02\n   \nsupercalifragilisticexpialidocious\n".encode()),
    "paragraphs-skip": (8, 0, b"one\ntwo\n\n\xff bad\n\nthree "),
}
for name, (opt, t, data) in prompt_inputs.items():
    put("fuzz_prompts", name, bytes([opt, t]) + data)

# ---- checkpoints: u16 length of config.json, config.json, model.safetensors
def safetensors(tensors, metadata=None):
    header, data = {}, b""
    if metadata:
        header["__metadata__"] = metadata
    for name, dtype, shape, raw in tensors:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    js = json.dumps(header, separators=(",", ":")).encode()
    js += b" " * ((8 - len(js) % 8) % 8)
    return struct.pack("<Q", len(js)) + js + data

def ckpt(config, tensors):
    c = config.encode() if isinstance(config, str) else config
    return struct.pack("<H", len(c)) + c + tensors

config = open(config_path, "rb").read()
real = open(tensors_path, "rb").read()
put("fuzz_safetensors", "real-checkpoint", ckpt(config, real))
every_dtype = safetensors([
    ("f32", "F32", [2, 3], struct.pack("<6f", *range(6))),
    ("f16", "F16", [2], b"\x00\x3c\x00\xc0"),
    ("bf16", "BF16", [1, 2], b"\x80\x3f\x00\x40"),
    ("f64", "F64", [1], struct.pack("<d", 3.5)),
    ("i64", "I64", [2], struct.pack("<2q", -1, 7)),
    ("i32", "I32", [], struct.pack("<i", 42)),
    ("u8", "U8", [4], b"\x00\x01\xfe\xff"),
    ("bool", "BOOL", [2, 1], b"\x00\x01"),
    ("empty", "F32", [0, 5], b""),
], metadata={"format": "pt", "step": "1"})
put("fuzz_safetensors", "every-dtype", ckpt('{"model": {"preset": "tiny"}}', every_dtype))
put("fuzz_safetensors", "presets", ckpt('{"preset": "ref-small", "image_encoder": "none", "max_word_length": 16, '
                                        '"modality_dropout": 0.5, "rope_theta": 500000.0, "bit_bias": false}', b"\x00" * 8))
put("fuzz_safetensors", "bare-config", ckpt('{"latent": {"layers": 2, "dim": 64, "heads": 4, "ffn": 96}}',
                                            safetensors([("x", "F32", [1], b"\x00\x00\x80\x3f")])))
put("fuzz_safetensors", "no-config", ckpt(b"", safetensors([])))
EOF

du -sk "$out"/* | sed 's|'"$out"'/||'
echo "make-fuzz-corpus: $(find "$out" -type f | wc -l) files, $(du -sk "$out" | cut -f1) KiB in $out"
