#!/usr/bin/env bash
# Fuzzes every input reader with libFuzzer (tests/fuzz/): builds build-fuzz/ with clang,
# ASan and UBSan (-DILT_FUZZ=ON), runs each target for SECONDS (default 60) on a scratch copy
# of its committed corpus (tests/fuzz/corpus/TARGET) plus its regressions, and prints per
# target: executions, exec/s, coverage (libFuzzer's final cov: and ft:) and crashes.
# Allocations over 2 GiB (one malloc or the whole process) count as findings, as do
# timeouts (-timeout, default 25 s per input) and any sanitizer report.
#
# Crash, timeout and out-of-memory inputs are copied to tests/fuzz/regressions/TARGET/ for
# triage; the exit status is non-zero if any target found one. New corpus inputs are left in
# the scratch directory (printed) unless FUZZ_MERGE=1, which merges them (-merge=1) into the
# committed corpus, keeping only inputs under FUZZ_MERGE_MAX_BYTES (default 4096).
#
# Everything else stays under a temporary directory (FUZZ_WORK, default mktemp -d).
# Environment: CXX (default clang++-14), FUZZ_TARGETS (default: every target built),
# FUZZ_JOBS (build parallelism, default 2), FUZZ_TIMEOUT (per input, default 25).
# Usage: scripts/fuzz.sh [SECONDS]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
seconds=${1:-60}
[[ $seconds =~ ^[0-9]+$ ]] || { echo "usage: scripts/fuzz.sh [SECONDS]" >&2; exit 2; }
build=$root/build-fuzz
cxx=${CXX:-clang++-14}
work=${FUZZ_WORK:-$(mktemp -d "${TMPDIR:-/tmp}/ilt-fuzz.XXXXXX")}
mkdir -p "$work"

echo "fuzz: building $build with $cxx"
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER="$cxx" \
  -DILT_FUZZ=ON -DILT_BUILD_TESTS=OFF >"$work/configure.log" 2>&1 || { cat "$work/configure.log"; exit 1; }
targets=${FUZZ_TARGETS:-$(cat "$build/fuzz-targets.txt")}
# shellcheck disable=SC2086
cmake --build "$build" -j "${FUZZ_JOBS:-2}" --target $targets

export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
export LSAN_OPTIONS="${LSAN_OPTIONS:-print_suppressions=0}"

summary=$work/summary.txt
printf '%-18s %12s %9s %7s %7s %8s\n' target executions exec/s cov ft crashes >"$summary"
failed=0
for t in $targets; do
  corpus=$work/corpus/$t
  artifacts=$work/artifacts/$t
  mkdir -p "$corpus" "$artifacts"
  [[ -d tests/fuzz/corpus/$t ]] && cp -r "tests/fuzz/corpus/$t/." "$corpus/"
  seeds=()
  [[ -d tests/fuzz/regressions/$t ]] && seeds+=("$root/tests/fuzz/regressions/$t")
  log=$work/$t.log
  echo "fuzz: $t for $seconds s (log: $log)"
  # -fork=1: a crash is recorded and fuzzing goes on, so one run reports every crash kind.
  rc=0
  t0=$SECONDS
  (cd "$work" && "$build/tests/fuzz/$t" -max_total_time="$seconds" -rss_limit_mb=2048 -malloc_limit_mb=2048 \
     -timeout="${FUZZ_TIMEOUT:-25}" -print_final_stats=1 -artifact_prefix="$artifacts/" \
     -fork=1 -ignore_crashes=1 -ignore_ooms=1 -ignore_timeouts=1 \
     "$corpus" "${seeds[@]}") >"$log" 2>&1 || rc=$?
  elapsed=$((SECONDS - t0))
  # Final figures from libFuzzer's last status line. With -fork the parent prints
  # "#RUNS: cov: N ft: N corp: N exec/s N oom/timeout/crash: a/b/c time: Ns ..."; a single
  # process prints "#RUNS DONE cov: N ft: N ..." and the stat:: block.
  last=$(grep -E '^#[0-9]+:?[[:space:]].*cov: [0-9]+ ft: [0-9]+' "$log" | tail -1 || true)
  field() { grep -oE "$1[: ]+[0-9]+" <<<"$last" | grep -oE '[0-9]+$' || true; }
  execs=$(grep -oE '^#[0-9]+' <<<"$last" | tr -d '#' || true); execs=${execs:-0}
  cov=$(field cov); cov=${cov:-0}
  ft=$(field ft); ft=${ft:-0}
  took=$(grep -oE 'time: [0-9]+s' <<<"$last" | grep -oE '[0-9]+' || true); took=${took:-$elapsed}
  rate=$(awk -v n="$execs" -v s="$took" 'BEGIN {printf "%d", (s > 0 ? n / s : 0)}')
  crashes=$(find "$artifacts" -type f \( -name 'crash-*' -o -name 'oom-*' -o -name 'timeout-*' -o -name 'leak-*' \) | wc -l)
  if (( crashes > 0 )); then
    failed=1
    mkdir -p "tests/fuzz/regressions/$t"
    cp "$artifacts"/* "tests/fuzz/regressions/$t/"
    echo "fuzz: $t: $crashes finding(s) copied to tests/fuzz/regressions/$t/:"
    ls "$artifacts" | sed 's/^/  /'
  elif (( rc != 0 )); then
    echo "fuzz: $t: libFuzzer exited with $rc without a crash file; see $log" >&2
    failed=1
  fi
  printf '%-18s %12s %9s %7s %7s %8s\n' "$t" "$execs" "$rate" "$cov" "$ft" "$crashes" >>"$summary"
  if [[ ${FUZZ_MERGE:-0} == 1 ]]; then
    small=$work/merge-small/$t
    mkdir -p "$small" "tests/fuzz/corpus/$t"
    find "$corpus" -type f -size -"$(( ${FUZZ_MERGE_MAX_BYTES:-4096} + 1 ))"c -exec cp {} "$small/" \;
    (cd "$work" && "$build/tests/fuzz/$t" -merge=1 -rss_limit_mb=2048 -malloc_limit_mb=2048 \
       "$root/tests/fuzz/corpus/$t" "$small") >"$work/$t.merge.log" 2>&1 || true
    echo "fuzz: $t: corpus now $(ls "tests/fuzz/corpus/$t" | wc -l) files, $(du -sk "tests/fuzz/corpus/$t" | cut -f1) KiB"
  fi
done
echo
cat "$summary"
echo "fuzz: scratch corpora and logs in $work"
exit $failed
