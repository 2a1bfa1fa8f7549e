#!/usr/bin/env python3
"""Checks scripts/ilt_shard.py against a words shard that ilt-segment wrote.

usage: check_python_reader.py WORDS_SHARD TEXT_FILE

WORDS_SHARD must come from TEXT_FILE in the default "lines" format: one document per line,
its text the line without "\\n" (and a "\\r" before it), id "NAME:LINE"; empty lines make no
document (lib/text/input.cpp). So the words of record i concatenate to the i-th non-empty line.
"""
import json
import os
import struct
import subprocess
import sys
import tempfile
import zlib

import zstandard

SCRIPTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts")
sys.path.insert(0, SCRIPTS)
from ilt_shard import Shard, ShardError, decode_words  # noqa: E402

passed = failed = 0


def check(name, ok, detail=""):
    global passed, failed
    if ok:
        passed += 1
    else:
        failed += 1
        print(f"FAIL: {name}" + (f": {detail}" if detail else ""))


def raises_shard_error(fn):
    """(True, message) if fn() raises ShardError, else (False, what happened)."""
    try:
        fn()
    except ShardError as e:
        return True, str(e)
    except Exception as e:  # any other exception is a reader bug
        return False, f"{type(e).__name__}: {e}"
    return False, "no error"


def write_shard(path, kind, records, header_json=b"{}"):
    """A minimal shard in the format of docs/shard-format.md: one block (if any records), footer {}."""
    head = b"ILTSHARD" + struct.pack("<IH", 1, len(kind)) + kind + struct.pack("<I", len(header_json)) + header_json
    out = bytearray(head + struct.pack("<I", zlib.crc32(head)))
    zc = zstandard.ZstdCompressor(write_checksum=True, write_content_size=True)
    blocks = []
    if records:
        raw = b"".join(bytes([len(r)]) + r for r in records)  # one-byte varints: records under 128 bytes
        z = zc.compress(raw)
        blocks.append(struct.pack("<QQI", len(out), 0, len(records)))
        out += b"BLK1" + struct.pack("<III", len(records), len(raw), len(z)) + z
    index = struct.pack("<Q", len(blocks)) + b"".join(blocks) + struct.pack("<QI", len(records), 2) + b"{}"
    z, at = zc.compress(index), len(out)
    out += b"IDX1" + struct.pack("<I", len(z)) + z + struct.pack("<QQ", at, len(records)) + b"ILTEND01"
    with open(path, "wb") as f:
        f.write(out)


CLI = [sys.executable, os.path.join(SCRIPTS, "ilt_shard.py")]


def cli_error(name, args, pattern):
    """The CLI fails with one stderr line "ilt_shard.py: error: <pattern>", nothing else."""
    run = subprocess.run(CLI + args, capture_output=True)
    err = run.stderr.decode(errors="replace")
    want = "ilt_shard.py: error: " + pattern
    ok = run.returncode != 0 and err.count("\n") == 1 and err.startswith(want)
    check(f"cli: {name}", ok, f"exit {run.returncode}, stderr {err[-300:]!r}, wanted {want!r}")


def read_all(path, indices=None):
    """The records of a shard: all of them in order, or those at `indices` (random access)."""
    with Shard(path) as s:
        return list(s) if indices is None else [s[i] for i in indices]


def text_of(rec):
    return "".join(decode_words(rec)["words"]).encode("utf-8", "surrogateescape")


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__.strip())
    path, text_path = sys.argv[1], sys.argv[2]
    with open(text_path, "rb") as f:
        data = f.read()
    lines = data.split(b"\n")
    if lines[-1] == b"":
        lines.pop()  # the final "\n" ends the last line; it does not start another
    docs = [(n, line[:-1] if line.endswith(b"\r") else line) for n, line in enumerate(lines, 1)]
    docs = [(n, text) for n, text in docs if text]  # (line number, document text)
    texts = [text for _, text in docs]
    with open(path, "rb") as f:
        shard_bytes = f.read()

    with Shard(path) as s:
        check("kind", s.kind == "words", f"kind is '{s.kind}'")
        check("version", s.version == 1, f"version is {s.version}")
        check("meta is an object", isinstance(s.meta, dict))
        check("record count", len(s) == len(texts), f"{len(s)} records for {len(texts)} non-empty lines")
        recs = list(s)
        check("iteration yields len() records", len(recs) == len(s), f"{len(recs)} != {len(s)}")
        bad = [i for i, (r, text) in enumerate(zip(recs, texts)) if text_of(r) != text]
        check("words concatenate to the lines", not bad,
              bad and f"record {bad[0]}: {text_of(recs[bad[0]])!r} != {texts[bad[0]]!r} ({len(bad)} differ)")
        bad = [i for i, (r, (n, _)) in enumerate(zip(recs, docs)) if not decode_words(r)["id"].endswith(f":{n}")]
        check("ids are NAME:LINE", not bad, bad and f"record {bad[0]}: id {decode_words(recs[bad[0]])['id']!r}")
        n = len(recs)
        check("shard has records", n > 0, "the rest needs at least one record")
        if n:
            # Out of order, so that blocks are swapped in and out of the cache.
            for i in [n - 1, 0, n // 2, 1 % n, n // 3, n - 1, (2 * n) // 3]:
                check(f"shard[{i}] == record {i} of iteration", s[i] == recs[i])
            check("shard[-1] is the last record", s[-1] == recs[-1])
            ok, what = raises_shard_error(lambda: s[n])
            check("shard[len] raises IndexError", not ok and what.startswith("IndexError"), what)

        # The CLI prints the kind, meta and count, and --dump decodes records as JSON lines.
        k = min(n, 3)
        run = subprocess.run([sys.executable, os.path.join(SCRIPTS, "ilt_shard.py"), path, "--dump", str(k)],
                             capture_output=True)
        out = run.stdout.decode("utf-8", "surrogateescape").splitlines()
        check("cli exit status", run.returncode == 0, run.stderr.decode(errors="replace").strip())
        check("cli prints kind and count", "kind: words" in out and f"records: {n}" in out, "\n".join(out[:4]))
        dumped = [json.loads(line) for line in out[-k:]] if k and run.returncode == 0 else []
        check("cli --dump", dumped == [decode_words(r) for r in recs[:k]], repr(dumped)[:200])
        first_block = s.data_start  # the first block starts right after the header

    with tempfile.TemporaryDirectory() as tmp:
        cut = os.path.join(tmp, "truncated.words")
        with open(cut, "wb") as f:
            f.write(shard_bytes[:-10])
        ok, what = raises_shard_error(lambda: Shard(cut))
        check("truncated file raises ShardError", ok, what)
        check("the error names the file", cut in what, what)

        if n:
            zlen = int.from_bytes(shard_bytes[first_block + 12:first_block + 16], "little")
            flip = first_block + 16 + zlen // 2
            bad_bytes = bytearray(shard_bytes)
            bad_bytes[flip] ^= 0xFF
            corrupt = os.path.join(tmp, "corrupt.words")
            with open(corrupt, "wb") as f:
                f.write(bad_bytes)
            ok, what = raises_shard_error(lambda: read_all(corrupt, [0]))
            check(f"flipped byte {flip} in block 0 raises ShardError (random access)", ok, what)
            check("the error names block 0", "block 0" in what, what)
            ok, what = raises_shard_error(lambda: read_all(corrupt))
            check(f"flipped byte {flip} in block 0 raises ShardError (iteration)", ok, what)

        # Shards with valid checksums but bad content: a header JSON too deep for Python's parser,
        # a "words" record that does not decode.
        deep = os.path.join(tmp, "deep.words")
        write_shard(deep, b"words", [], b"[" * 100000 + b"]" * 100000)
        ok, what = raises_shard_error(lambda: Shard(deep))
        check("header JSON nested 100000 deep raises ShardError", ok, what)
        cli_error("header JSON nested 100000 deep", [deep], f"{deep}: corrupt header JSON")
        bad_rec = os.path.join(tmp, "bad-record.words")
        write_shard(bad_rec, b"words", [bytes([2]) + b"id" + bytes([0, 1, 3]) + b"ab"])  # 3-byte word, 2 bytes left
        cli_error("undecodable record", [bad_rec, "--dump", "1"], f"{bad_rec}: record 0: ")

    check("ShardError is a ValueError", issubclass(ShardError, ValueError), str(ShardError.__mro__))

    print(f"python shard reader: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
