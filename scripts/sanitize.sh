#!/usr/bin/env bash
# The sanitizer run: builds build-asan/ with AddressSanitizer, LeakSanitizer and
# UndefinedBehaviorSanitizer over ilt's own code (-DILT_SANITIZE=ON) and runs every test
# (ctest). -O1 -g1 (line tables for the stack traces): half the compile time of -O2 -g on
# the LibTorch sources. Third-party libraries (LibTorch, OpenBLAS, Pango, ICU...) are
# not instrumented; their memory is still checked where our code touches it.
#
# The options below are exported, so the tools that test scripts launch run with them too
# (python3 is not instrumented and ignores them). Reports go to files,
# build-asan/sanitizer-logs/{asan,ubsan}.<program>.<pid>, not to stderr, so that a tool
# whose stderr or exit status a test discards is still caught: after ctest, any report
# file is printed and fails the run.
#   halt_on_error / -fno-sanitize-recover: the first error ends the process (exit status 1).
#   detect_leaks=1: LeakSanitizer stays on; scripts/lsan.supp is for third-party leaks at
#     exit, each with its library and why (none needed so far; read it before adding one).
#   No allocator_may_return_null or allow_user_segv_handler: no test allocates huge buffers
#     on purpose (corrupt sizes are refused before allocating) or handles SIGSEGV, and the
#     few waits in the CLI tests are generous enough for the ~2-3x slower binaries.
#   vptr checks stay on: LibTorch's classes pass them.
# Extra arguments go to cmake's configure.
# Usage: scripts/sanitize.sh [CMAKE_ARGS...]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
"$root/scripts/install-deps.sh"
build=$root/build-asan
logs=$build/sanitizer-logs

common="halt_on_error=1:print_stacktrace=1:log_exe_name=1"
export ASAN_OPTIONS="$common:log_path=$logs/asan:detect_leaks=1:check_initialization_order=1:strict_init_order=1"
export UBSAN_OPTIONS="$common:log_path=$logs/ubsan"
export LSAN_OPTIONS="suppressions=$root/scripts/lsan.supp:print_suppressions=0"

# report_logs: prints every sanitizer report written so far; fails if there is one.
report_logs() {
  local found=0 f
  for f in "$logs"/*; do
    [[ -e $f ]] || continue
    found=1
    echo "==== sanitizer report: $f"
    cat "$f"
  done
  [[ $found -eq 0 ]]
}

start=$SECONDS
cmake -S . -B "$build" -G Ninja -DILT_SANITIZE=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O1 -g1 -DNDEBUG" "$@" >/dev/null
rm -rf "$logs"
mkdir -p "$logs"
# The build runs the test binaries (Catch2 test discovery), so they are checked already.
cmake --build "$build" -j "$(nproc)"
echo "sanitize: build took $((SECONDS - start)) s"
report_logs || { echo "sanitize: sanitizer reports while building (test discovery)"; exit 1; }

start=$SECONDS
status=0
(cd "$build" && ctest --output-on-failure -j "$(nproc)") || status=$?
echo "sanitize: tests took $((SECONDS - start)) s"
if ! report_logs; then
  echo "sanitize: FAILED: sanitizer reports above (build-asan/sanitizer-logs/)"
  exit 1
fi
if [[ $status -ne 0 ]]; then
  echo "sanitize: FAILED: ctest exit status $status"
  exit "$status"
fi
echo "sanitize: no sanitizer reports"
