#!/usr/bin/env python3
"""Reads ilt shard files; the format is described in docs/shard-format.md.

    from ilt_shard import Shard, decode_words
    with Shard("corpus.words") as s:
        print(s.kind, len(s), s.meta)
        doc = decode_words(s[0])      # random access: decompresses only the record's block
        for rec in s: ...             # every record in order, as bytes

CLI: ilt_shard.py FILE [--dump N] (installed: ilt-shard). Needs python3-zstandard; numpy only for image_array().
Any truncated, corrupt or too new shard or record raises ShardError (a ValueError) with a
one-line message; a file that cannot be opened or read raises OSError, as open() does. The
command line reports either as one line, "ilt_shard.py: error: FILE: REASON" (named as it was
called), exit status 1.
"""
import argparse
import bisect
import errno
import json
import os
import struct
import sys
import zlib

try:
    import zstandard
except ImportError:  # pragma: no cover
    raise ImportError(f"ilt_shard needs the zstandard module for {sys.executable} "
                      "(Debian: apt-get install python3-zstandard)") from None

MAGIC, END, BLOCK_MAGIC, INDEX_MAGIC = b"ILTSHARD", b"ILTEND01", b"BLK1", b"IDX1"
VERSION = 1  # the newest format version this reader understands
TRAILER = 24  # u64 index offset | u64 records | "ILTEND01"
MAX_BLOCK, MAX_HEADER_JSON = 1 << 30, 64 << 20


class ShardError(ValueError):
    """A truncated, corrupt or unsupported shard or record; the message is one line."""


class _Buf:
    """Bounds-checked reader of little-endian integers and LEB128 varints."""

    def __init__(self, data, what):
        self.data, self.pos, self.what = data, 0, what

    def take(self, n):
        if len(self.data) - self.pos < n:
            raise ShardError(f"{self.what}: too short: need {n} bytes at byte {self.pos} of {len(self.data)}")
        self.pos += n
        return self.data[self.pos - n:self.pos]

    def varint(self):
        v = 0
        for shift in range(0, 64, 7):
            b = self.take(1)[0]
            v |= (b & 0x7F) << shift
            if not b & 0x80:
                return v
        raise ShardError(f"{self.what}: malformed varint at byte {self.pos}")

    def u16(self): return struct.unpack("<H", self.take(2))[0]
    def u32(self): return struct.unpack("<I", self.take(4))[0]
    def u64(self): return struct.unpack("<Q", self.take(8))[0]

    def end(self):
        if self.pos != len(self.data):
            raise ShardError(f"{self.what}: {len(self.data) - self.pos} stray bytes at the end")


class Shard:
    """A shard file. Header, index and trailer are verified at open; each block when read."""

    def __init__(self, path):
        self.path = str(path)
        self._f = open(self.path, "rb")
        try:
            self._size = os.fstat(self._f.fileno()).st_size
            self._read_header()
            self._read_index()
        except BaseException:
            self._f.close()
            raise
        self._firsts = [first for _, first, _ in self._blocks]
        self._cache = (-1, None)  # (block number, its records)

    def _err(self, msg):
        return ShardError(f"{self.path}: {msg}")

    def _check(self, ok, msg):
        if not ok:
            raise self._err(msg)

    def _json(self, data, what):
        try:
            return json.loads(data)
        except (ValueError, RecursionError) as e:  # RecursionError: nested too deep for the parser
            raise self._err(f"corrupt {what}: {e}") from None

    def _read(self, at, n, what):
        self._f.seek(at)
        data = self._f.read(n)
        self._check(len(data) == n, f"truncated: file ends inside the {what} at byte {at + len(data)} "
                    "(incomplete or killed write?)")
        return data

    def _unzstd(self, z, size, where):
        """Decompresses exactly one zstd frame of `size` bytes (None: as its header says)."""
        try:
            n = zstandard.frame_content_size(z)
            if n < 0 or n > MAX_BLOCK or size not in (None, n):
                raise zstandard.ZstdError(f"frame content size {n}, expected {size}")
            d = zstandard.ZstdDecompressor().decompressobj()
            raw = d.decompress(z)  # verifies the frame's content checksum
            if not d.eof or d.unused_data or len(raw) != n:
                raise zstandard.ZstdError("not exactly one frame of the declared size")
        except zstandard.ZstdError as e:
            raise self._err(f"{where}: corrupt data ({e})") from None
        return raw

    def _read_header(self):
        self._check(self._f.read(8) == MAGIC, "not an ilt shard (bad magic at byte 0)")
        self.version, klen = struct.unpack("<IH", self._read(8, 6, "header"))
        self._check(self.version <= VERSION, f"shard format version {self.version} is newer than this "
                    f"ilt reads ({VERSION}); upgrade ilt")
        self._check(self.version != 0, "invalid shard format version 0")
        self.kind = self._read(14, klen, "header").decode("utf-8", "replace")
        (jlen,) = struct.unpack("<I", self._read(14 + klen, 4, "header"))
        self._check(jlen <= MAX_HEADER_JSON, f"corrupt header (JSON length {jlen})")
        self.data_start = 18 + klen + jlen + 4  # where the first block starts
        head = self._read(0, self.data_start, "header")
        crc_ok = struct.unpack("<I", head[-4:])[0] == zlib.crc32(head[:-4])  # IEEE CRC-32, as bytes.h
        self._check(crc_ok, "corrupt header (checksum mismatch)")
        self.header = self._json(head[18 + klen:-4], "header JSON")

    def _read_index(self):
        size = self._size
        self._check(size >= self.data_start + 8 + TRAILER,
                    f"truncated: no index or trailer ({size} bytes; incomplete or killed write?)")
        at, total, end = struct.unpack("<QQ8s", self._read(size - TRAILER, TRAILER, "trailer"))
        self._check(end == END, f"truncated or corrupt: no end marker in the last {TRAILER} bytes "
                    "(incomplete or killed write?)")
        self._check(self.data_start <= at <= size - 8 - TRAILER, f"corrupt trailer (index offset {at})")
        magic, zlen = struct.unpack("<4sI", self._read(at, 8, "index"))
        self._check(magic == INDEX_MAGIC, f"corrupt index magic at byte {at}")
        self._check(at + 8 + zlen + TRAILER == size, f"corrupt index length at byte {at}")
        where = f"index at byte {at}"
        r = _Buf(self._unzstd(self._read(at + 8, zlen, "index"), None, where), f"{self.path}: {where}")
        nb = r.u64()
        self._check(nb <= len(r.data) // 20, f"{where}: bad block count {nb}")
        self._blocks = list(struct.iter_unpack("<QQI", r.take(20 * nb)))  # (offset, first, records)
        self._total = r.u64()
        js = r.take(r.u32())
        r.end()
        self.footer = self._json(js, f"footer JSON in the index at byte {at}")
        self._check(total == self._total, f"corrupt trailer ({total} records, index says {self._total})")
        first, prev = 0, -1
        for i, (off, fst, n) in enumerate(self._blocks):
            ok = fst == first and prev < off < at and off >= self.data_start
            self._check(ok, f"corrupt index entry for block {i}")
            first, prev = first + n, off
        self._check(first == self._total, "corrupt index (record counts disagree)")
        self.index_offset = at

    def _block(self, b):
        """The records of block b, decompressed and verified (the last block read is cached)."""
        if self._cache[0] == b:
            return self._cache[1]
        off, _, n = self._blocks[b]
        where = f"block {b} at byte {off}"
        magic, nrec, rawlen, zlen = struct.unpack("<4sIII", self._read(off, 16, "block header"))
        self._check(magic == BLOCK_MAGIC, f"{where}: bad block magic (corrupt file)")
        end = self._blocks[b + 1][0] if b + 1 < len(self._blocks) else self.index_offset
        ok = rawlen <= MAX_BLOCK and nrec <= rawlen and off + 16 + zlen == end  # blocks are contiguous
        self._check(ok, f"{where}: corrupt block header")
        self._check(nrec == n, f"{where}: disagrees with the index")
        r = _Buf(self._unzstd(self._read(off + 16, zlen, "block"), rawlen, where), f"{self.path}: {where}")
        recs = [r.take(r.varint()) for _ in range(nrec)]
        r.end()
        self._cache = (b, recs)
        return recs

    @property
    def meta(self):
        """The header with the footer's keys merged in: the whole metadata of the shard."""
        m = dict(self.header) if isinstance(self.header, dict) else {}
        m.update(self.footer if isinstance(self.footer, dict) else {})
        return m

    num_blocks = property(lambda self: len(self._blocks))

    def __len__(self):
        return self._total

    def __getitem__(self, i):
        if i < 0:
            i += self._total
        if not 0 <= i < self._total:
            raise IndexError(f"{self.path}: record {i} out of range ({self._total} records)")
        b = bisect.bisect_right(self._firsts, i) - 1
        return self._block(b)[i - self._firsts[b]]

    def __iter__(self):
        for b in range(len(self._blocks)):
            yield from self._block(b)

    def close(self): self._f.close()
    def __enter__(self): return self
    def __exit__(self, *exc): self.close()


def _text(b):
    # surrogateescape keeps invalid UTF-8: s.encode("utf-8", "surrogateescape") gives the bytes back.
    return bytes(b).decode("utf-8", "surrogateescape")


def decode_words(rec):
    """A "words" record -> dict(id, tag, words=[str, ...]); "".join(words) is the document."""
    r = _Buf(rec, "words record")
    doc_id, tag = _text(r.take(r.varint())), _text(r.take(r.varint()))
    n = r.varint()
    if n > len(rec) - r.pos:
        raise ShardError(f"words record: word count {n} exceeds record size")
    lengths = [r.varint() for _ in range(n)]  # all the lengths come first, then the words' bytes
    words = [_text(r.take(k)) for k in lengths]
    r.end()
    return {"id": doc_id, "tag": tag, "words": words}


def decode_image(rec):
    """An "images" record -> dict(word, width, height, pixels): 8-bit grey, row-major, 0 = ink."""
    r = _Buf(rec, "image record")
    word = _text(r.take(r.varint()))
    width, height = r.u16(), r.u16()
    pixels = bytes(r.take(width * height))
    r.end()
    return {"word": word, "width": width, "height": height, "pixels": pixels}


def image_array(rec):
    """An "images" record -> numpy uint8 array of shape [height, width]."""
    import numpy as np
    img = decode_image(rec)
    return np.frombuffer(img["pixels"], dtype=np.uint8).reshape(img["height"], img["width"])


def _dump(kind, i, rec):
    if kind == "words":
        return decode_words(rec)
    if kind == "images":
        img = decode_image(rec)
        img["pixels"] = f"{len(img['pixels'])} bytes"
        return img
    return {"record": i, "bytes": len(rec), "head_hex": bytes(rec[:32]).hex()}


class _StdoutError(Exception):
    """Writing to stdout failed (the OSError is the cause); a read error is an OSError itself."""


def _print(text=None):
    """Writes a line to stdout, or flushes it when text is None."""
    try:
        if sys.stdout is None:  # started with stdout closed
            raise OSError(errno.EBADF, os.strerror(errno.EBADF))
        if text is None:
            sys.stdout.flush()
        else:
            sys.stdout.write(text + "\n")
    except OSError as e:
        raise _StdoutError() from e


def _drop_stdout():
    """Points fd 1 at /dev/null, so that the flush at exit cannot fail and print a second message."""
    try:
        fd = os.open(os.devnull, os.O_WRONLY)
        os.dup2(fd, sys.stdout.fileno())
        os.close(fd)
    except (OSError, ValueError, AttributeError):  # no real stdout (e.g. a StringIO): nothing to flush
        pass


def main(argv=None):
    """The command line. Every failure is one line on stderr and exit status 1; a reader that closes
    the pipe early (`| head`) ends the output quietly, with status 0."""
    prog = os.path.basename(sys.argv[0]) or "ilt_shard.py"  # installed as the command ilt-shard too
    ap = argparse.ArgumentParser(prog=prog, description="Show an ilt shard: kind, metadata, record count.")
    ap.add_argument("file")
    ap.add_argument("--dump", type=int, default=0, metavar="N", help="print N records as JSON lines")
    args = ap.parse_args(argv)
    if hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(errors="surrogateescape")  # words that are not valid UTF-8 print as they are
    try:
        with Shard(args.file) as s:
            _print(f"kind: {s.kind}\nversion: {s.version}\nrecords: {len(s)}\nblocks: {s.num_blocks}")
            _print("meta: " + json.dumps(s.meta, indent=2, ensure_ascii=False))
            for i in range(min(args.dump, len(s))):
                rec = s[i]
                try:
                    shown = _dump(s.kind, i, rec)
                except ShardError as e:  # the decoders do not know the file or the record number
                    raise ShardError(f"{s.path}: record {i}: {e}") from None
                _print(json.dumps(shown, ensure_ascii=False))
        _print()  # here, not at exit, so that an error is reported like any other
    except ShardError as e:
        sys.exit(f"{prog}: error: {e}")
    except _StdoutError as e:
        _drop_stdout()
        if isinstance(e.__cause__, BrokenPipeError):  # the reader has all it wanted, e.g. head
            return 0
        sys.exit(f"{prog}: error: <stdout>: write failed: {e.__cause__.strerror or e.__cause__}")
    except OSError as e:  # open() sets e.filename; a failed read does not
        what = "cannot open" if e.filename is not None else "read failed"
        sys.exit(f"{prog}: error: {args.file}: {what}: {e.strerror or e}")
    except KeyboardInterrupt:  # Ctrl-C: no traceback
        sys.exit(130)
    return 0


if __name__ == "__main__":
    sys.exit(main())
