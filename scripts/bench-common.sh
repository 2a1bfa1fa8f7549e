# Sourced by the benchmark scripts after `root` is set: installs what is missing, builds,
# and enters build/WORKDIR. Gives bin, work and demo_examples.
# Usage: source "$root/scripts/bench-common.sh" WORKDIR
"$root/scripts/install-deps.sh"
"$root/scripts/build.sh" >/dev/null
bin=$root/build
work=$root/build/$1
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
