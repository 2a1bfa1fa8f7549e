#!/usr/bin/env bash
# Updates scripts/ilt-completion.bash, the bash completion of ilt's commands, from their --help:
# each command's flags and the model presets (from ilt-train --help) offered after --config.
# CLI11 cannot generate completions, so the flags are read off the help text.
#   scripts/make-completion.sh BIN_DIR [PYTHON]          regenerate (BIN_DIR: a build folder)
#   scripts/make-completion.sh --check BIN_DIR [PYTHON]  exit 1, naming the command, where the
#       committed file differs from the built tools (tests/install runs this)
# PYTHON runs scripts/ilt_shard.py --help (it needs python3-zstandard; default /usr/bin/python3).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
check=0
if [[ ${1:-} == --check ]]; then check=1; shift; fi
bin=${1:?usage: make-completion.sh [--check] BIN_DIR [PYTHON]}
python=${2:-/usr/bin/python3}
file=$root/scripts/ilt-completion.bash
tools=(ilt-segment ilt-render ilt-pack ilt-train ilt-eval ilt-generate ilt-inspect ilt-bench)

# The flags of one command's --help, in order: the leading "-x,--long" / "-x, --long" words of
# each option line (indented by two spaces) after the "Options:" heading (CLI11, ilt-demo) or
# argparse's "options:" / "optional arguments:".
flags() {
  awk '/^([Oo]ptions|optional arguments):$/ { on = 1 }
       on && /^  +-/ { for (i = 1; i <= NF; i++) { w = $i; sub(/,$/, "", w); if (w !~ /^-/) break;
                   n = split(w, parts, ","); for (j = 1; j <= n; j++) if (parts[j] ~ /^-/) print parts[j] } }' |
    awk '!seen[$0]++' | tr '\n' ' ' | sed 's/ $//'
}
line() { echo "_ilt_flags_${1//-/_}='$2'"; }

declare -A lines
for t in "${tools[@]}"; do
  if [[ -x $bin/$t ]]; then lines[$t]=$(line "$t" "$("$bin/$t" --help | flags)"); fi
done
lines[ilt-shard]=$(line ilt-shard "$("$python" "$root/scripts/ilt_shard.py" --help | flags)")
lines[ilt-demo]=$(line ilt-demo "$("$root/scripts/ilt-demo" --help | flags)")
presets=""
if [[ -x $bin/ilt-train ]]; then
  presets=$("$bin/ilt-train" --help | sed -n 's/.*--config .*Model preset (\([^)]*\)).*/\1/p' | tr -d ',')
  [[ -n $presets ]] || { echo "make-completion: no preset list in ilt-train --help's --config line" >&2; exit 1; }
fi

if [[ $check -eq 1 ]]; then
  bad=0
  for t in "${!lines[@]}"; do
    if ! grep -qxF "${lines[$t]}" "$file"; then
      echo "make-completion: $file: $t's flags differ from its --help: now ${lines[$t]#*=}" >&2
      bad=1
    fi
  done
  if [[ -n $presets ]] && ! grep -qxF "_ilt_presets='$presets'" "$file"; then
    echo "make-completion: $file: the presets differ from ilt-train --help: now '$presets'" >&2
    bad=1
  fi
  if [[ $bad -eq 1 ]]; then echo "make-completion: run scripts/make-completion.sh $bin to update it" >&2; exit 1; fi
  echo "make-completion: $file matches ${#lines[@]} commands"
  exit 0
fi

for t in "${tools[@]}"; do
  [[ -n ${lines[$t]:-} ]] || { echo "make-completion: $bin/$t not built: every tool is needed to write the file" >&2; exit 1; }
done
# Only the generated lines change: the _ilt_flags_* and _ilt_presets block and the `complete`
# line. The header and the completion function are written by hand in the file itself.
block=$(for t in "${tools[@]}" ilt-shard ilt-demo; do echo "${lines[$t]}"; done; echo "_ilt_presets='$presets'")
tmp=$file.tmp.$$
BLOCK=$block COMPLETE="complete -F _ilt_complete ${tools[*]} ilt-shard ilt-demo" awk '
  /^_ilt_flags_|^_ilt_presets=/ { if (!done) print ENVIRON["BLOCK"]; done = 1; next }
  /^complete -F _ilt_complete / { print ENVIRON["COMPLETE"]; next }
  { print }' "$file" > "$tmp"
mv "$tmp" "$file"
echo "make-completion: wrote $file"
