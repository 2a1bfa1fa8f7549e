#!/usr/bin/env bash
# A shard written by ilt-segment (C++) must be readable by scripts/ilt_shard.py, and the
# script's command line must fail with one line on stderr, never a traceback.
# Usage: python_reader_test.sh BUILD_DIR SOURCE_DIR PYTHON
set -uo pipefail
bin=$1
src=$2
py=$3
source "$src/tests/harness.sh"
text=$src/data/demo/udhr-eng-heb.txt
shard=("$py" "$src/scripts/ilt_shard.py")
"$bin/ilt-segment" "$text" -o w.shard 2>/dev/null || { echo "FAIL: ilt-segment could not write the shard"; exit 1; }
check "library and CLI read the shard (check_python_reader.py)" \
  "$py" "$src/tests/shard/check_python_reader.py" w.shard "$text"

e='^ilt_shard.py: error: '
expect_error "missing file" "${e}nope.shard: cannot open: No such file or directory$" "${shard[@]}" nope.shard
mkdir dir.shard
expect_error "directory" "${e}dir.shard: cannot open: Is a directory$" "${shard[@]}" dir.shard

# Root reads a mode-000 file anyway; setpriv without CAP_DAC_OVERRIDE/READ_SEARCH does not.
cp w.shard locked.shard
chmod 000 locked.shard
deny=()
if [[ $(id -u) -eq 0 ]]; then deny=(setpriv --bounding-set=-dac_override,-dac_read_search); fi
if "${deny[@]}" true 2>/dev/null && ! "${deny[@]}" cat locked.shard >/dev/null 2>&1; then
  expect_error "unreadable file" "${e}locked.shard: cannot open: Permission denied$" \
    "${deny[@]}" "${shard[@]}" locked.shard
else
  echo "SKIP: unreadable file (root, and setpriv cannot drop CAP_DAC_OVERRIDE here)"
fi

# stdout on a full device: the error names <stdout> as the C++ tools do (lib/common/io.cpp).
if [[ -c /dev/full ]]; then
  to_full() { "$@" >/dev/full; }
  expect_error "full stdout, summary only" "${e}<stdout>: write failed: No space left on device$" \
    to_full "${shard[@]}" w.shard
  expect_error "full stdout, every record" "${e}<stdout>: write failed: No space left on device$" \
    to_full "${shard[@]}" w.shard --dump 100000
else
  echo "SKIP: full stdout (no /dev/full)"
fi

report python_reader_test
