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
all=$(sed -n 's/^build \(fuzz_[a-z]*\): CXX_EXECUTABLE_LINKER.*/\1/p' "$build/build.ninja" | sort -u | tr '\n' ' ')
targets=${FUZZ_TARGETS:-$all}
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
  (cd "$work" && "$build/$t" -max_total_time="$seconds" -rss_limit_mb=2048 -malloc_limit_mb=2048 \
     -timeout="${FUZZ_TIMEOUT:-25}" -print_final_stats=1 -artifact_prefix="$artifacts/" \
     -fork=1 -ignore_crashes=1 -ignore_ooms=1 -ignore_timeouts=1 \
     "$corpus" "${seeds[@]}") >"$log" 2>&1 || rc=$?
  # Final figures: with -fork the parent prints a last "cov: ft: corp: exec/s: ... total: N"
  # status line; the stats block (stat::number_of_executed_units) comes from the child.
  execs=$(grep -o 'number_of_executed_units: [0-9]*' "$log" | awk '{s += $2} END {print s + 0}')
  last=$(grep -E '#[0-9]+.*(cov|ft): ' "$log" | tail -1 || true)
  cov=$(grep -o 'cov: [0-9]*' <<<"$last" | awk '{print $2}'); cov=${cov:-0}
  ft=$(grep -o 'ft: [0-9]*' <<<"$last" | awk '{print $2}'); ft=${ft:-0}
  total=$(grep -o 'total: [0-9]*' <<<"$last" | awk '{print $2}' || true)
  [[ -n $total ]] && execs=$total
  rate=$(awk -v n="$execs" -v s="$seconds" 'BEGIN {printf "%d", s > 0 ? n / s : 0}')
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
    (cd "$work" && "$build/$t" -merge=1 -rss_limit_mb=2048 -malloc_limit_mb=2048 \
       "$root/tests/fuzz/corpus/$t" "$small") >"$work/$t.merge.log" 2>&1 || true
    echo "fuzz: $t: corpus now $(ls "tests/fuzz/corpus/$t" | wc -l) files, $(du -sk "tests/fuzz/corpus/$t" | cut -f1) KiB"
  fi
done
echo
cat "$summary"
echo "fuzz: scratch corpora and logs in $work"
exit $failed
