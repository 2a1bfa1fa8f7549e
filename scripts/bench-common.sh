# Sourced by the benchmark scripts after `root` is set: installs what is missing, builds,
# and enters BUILD/WORKDIR. Gives bin, work and demo_examples. ILT_TORCH=pypi benchmarks the
# build against PyPI's torch 2.11 (build-torch2/, scripts/torch-choice.sh).
# Usage: source "$root/scripts/bench-common.sh" WORKDIR
bench_torch=${ILT_TORCH:-debian}
"$root/scripts/install-deps.sh" --torch "$bench_torch"
"$root/scripts/build.sh" --torch "$bench_torch" >/dev/null
bin=$root/$([[ $bench_torch == pypi ]] && echo build-torch2 || echo build)
work=$bin/$1
mkdir -p "$work"
cd "$work" || exit 1
machine="$(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"

# demo_examples: the demo corpus segmented, rendered and packed (demo.train.examples), once.
demo_examples() {
  [[ -s demo.train.examples ]] && return
  "$bin/ilt-segment" "$root/data/demo/udhr.jsonl" --tag-field lang -o words.shard 2>/dev/null
  "$bin/ilt-render" words.shard -o images.shard 2>/dev/null
  "$bin/ilt-pack" words.shard --images images.shard -o demo 2>/dev/null
}
