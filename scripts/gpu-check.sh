#!/usr/bin/env bash
# The GPU check, in two halves:
#   scripts/gpu-check.sh prepare   here (a machine with the whole toolchain): packs the benchmark
#                                  shards (the demo corpus, 128 words per example) into
#                                  .gpu-carry/ (git-ignored, ~4 MB), to be carried to the GPU machine
#   scripts/gpu-check.sh [run]     on the GPU machine: configures against its python3's torch
#                                  (torch.utils.cmake_prefix_path), builds build-gpu/, runs every
#                                  test that machine can build with CUDA enabled (test_cuda must
#                                  pass there, not skip), checks ilt-train --version, resumes a
#                                  CUDA run and compares it with an uninterrupted one, then times
#                                  training steps of each preset (bf16) and prints one table.
# Needs on the GPU machine: CMake, Ninja (pip's are fine), a C++17 compiler, CUDA's toolkit, and
# the headers of CLI11, fmt, nlohmann-json, Catch2, libpng and zstd. Without Pango/Cairo (or ICU)
# the build leaves out rendering (or segmentation) and says so; the CUDA tests need neither.
# Everything it writes goes to build-gpu/, and a copy of the log and table to $OUT when set.
# Device tool: run(command="bash scripts/gpu-check.sh", carry=[".gpu-carry"], timeout_s=540).
# Environment: ILT_GPU_STEPS (timed steps per preset, default 20), ILT_GPU_BATCH (examples per
# step, default 32), ILT_GPU_PRESETS (default "tiny ref-tiny ref-small base"), TORCH_CUDA_ARCH_LIST
# (default 9.0: H100/H200).
# Dry run on a machine without a GPU (checks the script, proves nothing about CUDA):
#   ILT_GPU_DEVICE=cpu ILT_GPU_BUILD=build-torch2 ILT_GPU_CTEST=0 ILT_GPU_PRESETS=tiny \
#   ILT_GPU_STEPS=2 ILT_GPU_BATCH=4 ILT_PYTHON_TORCH=.venv-torch/bin/python scripts/gpu-check.sh
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
carry=$root/.gpu-carry
mode=${1:-run}

if [[ $mode == prepare ]]; then
  bin=${ILT_BIN:-$root/build}
  for t in ilt-segment ilt-render ilt-pack; do
    [[ -x $bin/$t ]] || { echo "gpu-check prepare: no $bin/$t: run scripts/build.sh first (or set ILT_BIN)" >&2; exit 1; }
  done
  rm -rf "$carry.tmp" && mkdir -p "$carry.tmp"
  "$bin/ilt-segment" data/demo/udhr.jsonl --tag-field lang -o "$carry.tmp/words.shard" 2>/dev/null
  "$bin/ilt-render" "$carry.tmp/words.shard" -o "$carry.tmp/images.shard" 2>/dev/null
  "$bin/ilt-pack" "$carry.tmp/words.shard" --images "$carry.tmp/images.shard" --validation-fraction 0.05 \
    -o "$carry.tmp/demo" 2>/dev/null
  rm -f "$carry.tmp/words.shard" "$carry.tmp/images.shard"  # the packed vocabulary holds what training reads
  git -C "$root" rev-parse HEAD >"$carry.tmp/commit"
  rm -rf "$carry" && mv "$carry.tmp" "$carry"
  du -sh "$carry"
  echo "gpu-check prepare: $(ls "$carry" | tr '\n' ' ')-> carry .gpu-carry"
  exit 0
fi
[[ $mode == run ]] || { echo "usage: scripts/gpu-check.sh [prepare|run]" >&2; exit 2; }

dev=${ILT_GPU_DEVICE:-cuda}
bd=${ILT_GPU_BUILD:-build-gpu}
out=${OUT:-$root/$bd/out}
mkdir -p "$out"
exec > >(tee "$out/gpu-check.log") 2>&1
start=$SECONDS
say() { echo "gpu-check [$((SECONDS - start)) s]: $*"; }
failures=()
fail_part() { failures+=("$1"); say "FAILED: $1"; }

python=${ILT_PYTHON_TORCH:-python3}
say "machine: $(nproc) cores; $(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || echo 'nvidia-smi: none')"
prefix=$("$python" -c 'import torch; print(torch.utils.cmake_prefix_path)' 2>/dev/null) ||
  { echo "gpu-check: $python has no torch" >&2; exit 1; }
say "$("$python" -c 'import torch; print("torch", torch.__version__, "CUDA", torch.version.cuda, "device:", torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none")' 2>/dev/null)"
[[ -d $carry ]] || say "no .gpu-carry/ (scripts/gpu-check.sh prepare, then carry it): the CLI and benchmark parts will be skipped"

# ---- configure and build (the CUDA toolkit from PATH or /usr/local/cuda)
export TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST:-9.0}
if ! command -v nvcc >/dev/null && [[ -x /usr/local/cuda/bin/nvcc ]]; then export PATH=/usr/local/cuda/bin:$PATH; fi
generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
t=$SECONDS
cmake -S . -B "$bd" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="${prefix%/share/cmake};$prefix" -UTORCH_LIBRARY -Uc10_LIBRARY \
  >"$out/configure.log" 2>&1 || { tail -30 "$out/configure.log"; say "configure failed"; exit 1; }
grep -E "ilt: (LibTorch|skipped)" "$out/configure.log" | sed 's/^/  /'
cmake --build "$bd" -j "$(nproc)" >"$out/build.log" 2>&1 || { grep -B2 -A12 -m3 "error" "$out/build.log"; say "build failed"; exit 1; }
warnings=$(grep -c "warning:" "$out/build.log" || true)
say "built in $((SECONDS - t)) s ($warnings compiler warnings)"

# ---- tests with CUDA enabled; test_cuda must run, not skip
t=$SECONDS
version=$($bd/ilt-train --version)
echo "$version" | sed 's/^/  /'
if [[ $dev == cuda* ]]; then
  grep -q "^CUDA [0-9.]*: .*device" <<<"$version" && ! grep -q "no device" <<<"$version" ||
    fail_part "ilt-train --version sees no CUDA device"
fi
if [[ ${ILT_GPU_CTEST:-1} != 0 ]]; then
  (cd "$bd" && ctest -j 8 --output-on-failure >"$out/ctest.log" 2>&1) || fail_part "ctest (see ctest.log)"
  grep -E "tests passed|tests failed|Not Run|Failed|\*\*\*Skipped" "$out/ctest.log" | sed 's/^/  /' | head -20
fi
ILT_TEST_DEVICE=$dev "$bd/tests/test_cuda" --durations yes >"$out/test_cuda.log" 2>&1 ||
  fail_part "test_cuda (exit $?: 77 = skipped, no device; see test_cuda.log)"
grep -E "^[0-9.]+ s: cuda|All tests passed|test cases" "$out/test_cuda.log" | sed 's/^/  /'
say "tests took $((SECONDS - t)) s"

if [[ -d $carry ]]; then
  # ---- resume: 10 steps on the device, then 10 more there from the checkpoint, against 20 at
  # once; and 2 more on the CPU from the same checkpoint (model and optimizer state move over).
  # TF32 off, so that only the order of sums differs.
  t=$SECONDS
  r=$bd/resume
  run() { "$bd/ilt-train" --train "$carry/demo.train.examples" --config tiny --batch-size 16 --warmup 5 \
            --schedule constant --seed 3 --log-every 1 --no-tf32 "$@" 2>>"$out/resume.log"; }
  rm -rf "$r" && mkdir -p "$r"
  if run -o "$r/whole" --device "$dev" --max-steps 20 --save-every 10 &&
     run -o "$r/part" --device "$dev" --max-steps 10 --save-every 10 && cp -r "$r/part" "$r/cpu" &&
     "$bd/ilt-train" --resume "$r/part" -o "$r/part" --device "$dev" --max-steps 20 --log-every 1 --no-tf32 2>>"$out/resume.log" &&
     "$bd/ilt-train" --resume "$r/cpu" -o "$r/cpu" --device cpu --max-steps 12 --log-every 1 --no-tf32 2>>"$out/resume.log"; then
    "$python" - "$r" "$dev" <<'EOF' || fail_part "a resumed run differs from the uninterrupted run"
import json, sys
def losses(p):
    return {j["step"]: j["loss"] for j in map(json.loads, open(p)) if j.get("split") == "train"}
whole = losses(sys.argv[1] + "/whole/metrics.jsonl")
ok = True
for name, where, steps in (("part", sys.argv[2], range(11, 21)), ("cpu", "cpu", range(11, 13))):
    other = losses(sys.argv[1] + "/" + name + "/metrics.jsonl")
    d = max(abs(whole[s] - other[s]) / abs(whole[s]) for s in steps)
    print("  %s run resumed on %s: steps %d-%d against the uninterrupted run: largest relative loss difference %.2e (tolerance 1e-3)"
          % (sys.argv[2], where, steps[0], steps[-1], d))
    ok &= d < 1e-3
sys.exit(0 if ok else 1)
EOF
  else
    fail_part "training or resume (see resume.log)"; tail -5 "$out/resume.log"
  fi
  say "resume check took $((SECONDS - t)) s"

  # ---- data parallelism at world size 1: NCCL carries the gradients (the built-in launcher with
  # one rank joins c10d all the same); the losses must equal the plain run's (TF32 off).
  t=$SECONDS
  if run -o "$r/nccl" --device "$dev" --max-steps 20 --save-every 20 --nproc-per-node 1; then
    "$python" - "$r" <<'EOF' || fail_part "a 1-rank NCCL run differs from the plain run"
import json, sys
def losses(p):
    return {j["step"]: j["loss"] for j in map(json.loads, open(p)) if j.get("split") == "train"}
a, b = losses(sys.argv[1] + "/whole/metrics.jsonl"), losses(sys.argv[1] + "/nccl/metrics.jsonl")
d = max(abs(a[s] - b[s]) / abs(a[s]) for s in range(1, 21))
print("  1 rank over c10d (--nproc-per-node 1; NCCL on CUDA) against the plain run, steps 1-20: largest relative loss difference %.2e (tolerance 1e-3)" % d)
sys.exit(0 if d < 1e-3 else 1)
EOF
  else
    fail_part "ilt-train --nproc-per-node 1 (see resume.log)"; tail -5 "$out/resume.log"
  fi
  say "data-parallel check took $((SECONDS - t)) s"

  # ---- the benchmark table
  t=$SECONDS
  ILT_BENCH_BIN=$bd ILT_BENCH_EXAMPLES="$carry/demo.train.examples" ILT_BENCH_OUT="$out" ILT_BENCH_DEVICE="$dev" \
    ILT_BENCH_STEPS=${ILT_GPU_STEPS:-20} ILT_BENCH_BATCH=${ILT_GPU_BATCH:-32} ILT_BENCH_PRESETS=${ILT_GPU_PRESETS:-} \
    ILT_BENCH_PYTHON="$python" bash scripts/bench-train.sh cuda | tee "$out/table.md" || fail_part "bench (see bench.err)"
  say "benchmark took $((SECONDS - t)) s"
fi

say "done in $((SECONDS - start)) s"
if ((${#failures[@]})); then
  say "${#failures[@]} part(s) failed: ${failures[*]}"
  exit 1
fi
say "every part passed"
