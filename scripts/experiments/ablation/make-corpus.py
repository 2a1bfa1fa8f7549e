#!/usr/bin/env python3
"""Builds the ablation's multilingual corpus, reproducibly, from Debian packages.

Downloads the packages named below with `apt-get download` (into CACHE, kept between runs),
records each .deb's name, version, sha256 and licence (its debian/copyright "License:" lines),
unpacks them with `dpkg-deb -x`, and writes documents to OUT.jsonl ({"text", "lang", "source"}):
  - man pages (manpages, manpages-de, ...): one document per page, roff markup stripped;
  - translation catalogues (.mo files under locale/LANG/ or resource/LANG/): the translated
    strings of one catalogue, in order, cut into documents of about 2 KB;
  - Firefox/Thunderbird language packs (.xpi): the translated values of their .ftl,
    .properties and .dtd files, likewise.
Each language is capped at --max-mb of text (documents in a fixed order, so a rerun gives
the same bytes). Writes OUT.sources.json (packages, versions, sha256, licences, and the text
size per language). Standard library only; needs apt-get and dpkg-deb (Debian).
Usage: make-corpus.py OUT.jsonl [--cache DIR] [--max-mb 3.5] [--languages en,de,...,he]
"""
import argparse
import gzip
import hashlib
import io
import json
import os
import re
import struct
import subprocess
import sys
import zipfile

# Language tag -> packages whose text in that language goes into the corpus.
PACKAGES = {
    "en": ["manpages"],
    "de": ["manpages-de"],
    "fr": ["manpages-fr"],
    "es": ["manpages-es"],
    "it": ["manpages-it"],
    "pl": ["manpages-pl"],
    "ru": ["manpages-ru"],
    "he": ["libreoffice-l10n-he", "firefox-esr-l10n-he", "thunderbird-l10n-he", "vlc-l10n",
           "gimp-data"],
}

ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
ap.add_argument("out")
ap.add_argument("--cache", default=None, help="download and unpack folder (default OUT.cache/)")
ap.add_argument("--max-mb", type=float, default=3.5, help="text per language at most, in MB")
ap.add_argument("--languages", default=",".join(PACKAGES), help="comma-separated tags (default: all)")
a = ap.parse_args()
cache = a.cache or a.out + ".cache"
os.makedirs(os.path.join(cache, "debs"), exist_ok=True)


def log(msg):
    print(f"make-corpus: {msg}", file=sys.stderr, flush=True)


def download(pkg):
    """The package's .deb in the cache (downloaded once); None if the archive has no such package."""
    debs = os.path.join(cache, "debs")
    have = [f for f in os.listdir(debs) if f.startswith(pkg + "_") and f.endswith(".deb")]
    if not have:
        r = subprocess.run(["apt-get", "download", pkg], cwd=debs, capture_output=True, text=True)
        if r.returncode != 0:
            log(f"skipping {pkg}: {r.stderr.strip().splitlines()[-1] if r.stderr.strip() else 'not found'}")
            return None
        have = [f for f in os.listdir(debs) if f.startswith(pkg + "_") and f.endswith(".deb")]
    return os.path.join(debs, sorted(have)[-1])


def unpack(deb, pkg):
    where = os.path.join(cache, "x", pkg)
    if not os.path.isdir(where):
        os.makedirs(where)
        subprocess.run(["dpkg-deb", "-x", deb, where], check=True)
    return where


def licences(root, pkg):
    path = os.path.join(root, "usr/share/doc", pkg, "copyright")
    if not os.path.exists(path):
        return []
    found = re.findall(r"^License:\s*(\S.*)$", open(path, errors="replace").read(), re.M)
    return sorted(set(found))


def mo_strings(data):
    """Translated strings of a GNU .mo catalogue (plural forms split)."""
    magic = struct.unpack("<I", data[:4])[0]
    e = "<" if magic == 0x950412DE else ">"
    _, n, orig, trans = struct.unpack(e + "4I", data[4:20])
    out = []
    for i in range(n):
        olen, ooff = struct.unpack(e + "2I", data[orig + 8 * i: orig + 8 * i + 8])
        tlen, toff = struct.unpack(e + "2I", data[trans + 8 * i: trans + 8 * i + 8])
        if olen == 0:
            continue  # the header
        for s in data[toff: toff + tlen].decode("utf-8", "replace").split("\0"):
            out.append(s)
    return out


def xpi_strings(data):
    out = []
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        for name in sorted(z.namelist()):
            text = z.read(name).decode("utf-8", "replace")
            if name.endswith(".ftl"):
                for line in text.splitlines():
                    m = re.match(r"^\s*[-\w.]+\s*=\s*(.+)$", line) or re.match(r"^\s+([^.\s#].*)$", line)
                    if m:
                        out.append(m.group(1))
            elif name.endswith(".properties"):
                out += [m.group(1) for m in re.finditer(r"^[^#!\s][^=]*=\s*(.+)$", text, re.M)]
            elif name.endswith(".dtd"):
                out += re.findall(r'<!ENTITY\s+\S+\s+"([^"]*)"', text)
    return out


def strip_roff(src):
    lines = []
    for line in src.splitlines():
        if line.startswith(('.\\"', "'\\\"")) or line.strip() in (".", "'"):
            continue
        if line.startswith((".", "'")):
            m = re.match(r"^[.'](\S+)\s*(.*)$", line)
            if not m:
                continue
            macro, rest = m.groups()
            if macro in ("SH", "SS", "TP", "IP", "B", "I", "BR", "BI", "IB", "RB", "RI", "IR", "TH", "Nm", "Nd", "Sh"):
                line = rest.replace('"', "")
            else:
                continue
        line = re.sub(r"\\f(\[[^\]]*\]|\(..|.)", "", line)
        line = re.sub(r"\\\((..)", lambda m: {"em": "—", "en": "–", "hy": "-", "bu": "•", "lq": "“", "rq": "”"}.get(m.group(1), ""), line)
        line = re.sub(r"\\\[[^\]]*\]", "", line)
        line = line.replace("\\-", "-").replace("\\e", "\\").replace("\\&", "").replace("\\ ", " ").replace("\\%", "").replace("\\,", "").replace("\\/", "")
        line = re.sub(r"\\[*n]\(?..?", "", line)
        if line.strip():
            lines.append(line.strip())
    return "\n".join(lines)


def chunks(strings, size=2000):
    doc = []
    n = 0
    for s in strings:
        s = " ".join(s.replace("~", "").split())
        if len(s) < 2:
            continue
        doc.append(s)
        n += len(s.encode()) + 1
        if n >= size:
            yield "\n".join(doc)
            doc, n = [], 0
    if doc:
        yield "\n".join(doc)


def documents(root, pkg, lang):
    """(source, text) of one unpacked package, in a fixed order."""
    for dirpath, dirnames, filenames in sorted(os.walk(root)):
        dirnames.sort()
        for f in sorted(filenames):
            path = os.path.join(dirpath, f)
            rel = os.path.relpath(path, root)
            parts = rel.split(os.sep)
            if f.endswith(".mo") and (lang in parts) and ("locale" in parts or "resource" in parts):
                for i, text in enumerate(chunks(mo_strings(open(path, "rb").read()))):
                    yield f"{pkg}:{rel}#{i}", text
            elif f.endswith(".xpi"):
                for i, text in enumerate(chunks(xpi_strings(open(path, "rb").read()))):
                    yield f"{pkg}:{rel}#{i}", text
            elif "/man/" in "/" + rel and re.search(r"\.\d\w*(\.gz)?$", f):
                man_lang = parts[3] if len(parts) > 3 and not parts[3].startswith("man") else "en"
                if man_lang != lang:
                    continue
                raw = open(path, "rb").read()
                if f.endswith(".gz"):
                    raw = gzip.decompress(raw)
                text = strip_roff(raw.decode("utf-8", "replace"))
                if len(text) > 200:
                    yield f"{pkg}:{rel}", text


sources = {"packages": [], "languages": {}, "max_mb_per_language": a.max_mb}
tmp = a.out + ".tmp"
with open(tmp, "w", encoding="utf-8") as out:
    for lang, pkgs in PACKAGES.items():
        if lang not in a.languages.split(","):
            continue
        budget = int(a.max_mb * 1e6)
        size = docs = 0
        for pkg in pkgs:
            deb = download(pkg)
            if deb is None:
                continue
            blob = open(deb, "rb").read()
            ver = subprocess.run(["dpkg-deb", "-f", deb, "Version"], capture_output=True, text=True).stdout.strip()
            root = unpack(deb, pkg)
            sources["packages"].append({"package": pkg, "version": ver, "file": os.path.basename(deb),
                                        "sha256": hashlib.sha256(blob).hexdigest(), "licences": licences(root, pkg),
                                        "language": lang})
            for src, text in documents(root, pkg, lang):
                n = len(text.encode())
                if size + n > budget:
                    break
                out.write(json.dumps({"text": text, "lang": lang, "source": src}, ensure_ascii=False) + "\n")
                size += n
                docs += 1
        sources["languages"][lang] = {"documents": docs, "text_bytes": size}
        log(f"{lang}: {docs} documents, {size / 1e6:.2f} MB")
os.replace(tmp, a.out)
sources["total_text_bytes"] = sum(v["text_bytes"] for v in sources["languages"].values())
with open(a.out + ".sources.json", "w") as f:
    json.dump(sources, f, indent=1, ensure_ascii=False)
log(f"wrote {a.out}: {sources['total_text_bytes'] / 1e6:.2f} MB of text")
