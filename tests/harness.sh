# Shared by the command-line test scripts: sourced after `bin` and `src` are set. Makes a
# temporary working directory and gives check/expect_error/report.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp" || exit 1
passed=0
failed=0
ok() { passed=$((passed + 1)); }
bad() { failed=$((failed + 1)); echo "FAIL: $*"; }
# check WHAT CMD...: CMD succeeds.
check() { local what=$1; shift; if "$@"; then ok; else bad "$what"; fi; }
# expect_error WHAT PATTERN CMD...: exits non-zero, one stderr line matching PATTERN.
expect_error() {
  local what=$1 pattern=$2; shift 2
  if "$@" >out.txt 2>err.txt; then bad "$what: exited 0"; return; fi
  if [[ $(wc -l <err.txt) -ne 1 ]]; then bad "$what: stderr is not one line: $(cat -A err.txt)"; return; fi
  if ! grep -q -- "$pattern" err.txt; then bad "$what: '$pattern' not in: $(cat err.txt)"; return; fi
  ok
}
# report NAME: the closing "N passed, M failed" line and the exit status.
report() {
  echo "$1: $passed passed, $failed failed"
  [[ $failed -eq 0 ]]
}
