#!/usr/bin/env bash
# cmake --install into a temporary prefix, then from another folder and a bare environment:
# the installed tools' --version, the preset configs, man pages, bash completion (and its sync
# with the tools' flags), ilt-shard, and the demo pipeline (ilt-demo --quick) run from there.
# Usage: test_install.sh BUILD_DIR SOURCE_DIR PYTHON PROJECT_VERSION MAN(0|1)
build=$1 src=$2 py=$3 version=$4 man=$5
bin=$build
source "$src/tests/harness.sh"
prefix=$tmp/prefix
if ! cmake --install "$build" --prefix "$prefix" >install.log 2>&1; then
  cat install.log
  echo "FAIL: cmake --install"
  exit 1
fi
tools=()
for t in ilt-segment ilt-render ilt-pack ilt-train ilt-eval ilt-generate ilt-inspect ilt-bench; do
  [[ -x $build/$t ]] && tools+=("$t")
done

# The layout (GNUInstallDirs).
for f in "${tools[@]/#/bin/}" bin/ilt-shard bin/ilt-demo bin/ilt-plot-metrics lib/python3/dist-packages/ilt_shard.py \
  share/ilt/demo/udhr.jsonl share/doc/ilt/README.md share/doc/ilt/shard-format.md \
  share/bash-completion/completions/ilt-train share/bash-completion/completions/ilt-shard; do
  check "installed $f" test -e "$prefix/$f"
done
if [[ -x $build/ilt-train ]]; then
  check "eight preset configs" test "$(ls "$prefix/share/ilt/configs/"*.json | wc -l)" -eq 8
  # The CMake list that writes them names the same presets as ilt-train (through the completion
  # file's list, which make-completion.sh --check holds to ilt-train --help).
  presets=$(sed -n "s/^_ilt_presets='\(.*\)'\$/\1/p" "$src/scripts/ilt-completion.bash" | tr ' ' '\n' | sort)
  check "the configs are ilt-train's presets" \
    test "$(cd "$prefix/share/ilt/configs" && ls *.json | sed 's/\.json$//' | sort)" = "$presets"
fi
# Nothing installed points back at the build folder (RPATH, scripts).
check "no build folder in the installed files" bash -c "! grep -rlF '$build' '$prefix'"

# Everything below runs from elsewhere with a bare environment.
mkdir elsewhere && cd elsewhere || exit 1
run() { env -i PATH=/usr/bin:/bin HOME="$tmp" LANG=C.UTF-8 "$@"; }

# --version: the project version, the commit, the libraries that shape the output.
commit=$(git -C "$src" rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
for t in "${tools[@]}"; do
  v=$(run "$prefix/bin/$t" --version)
  check "$t --version first line: $(head -1 <<<"$v")" grep -qE "^$t $version \\(git $commit(-dirty)?\\)\$" <<<"$v"
  check "$t --version: zstd" grep -qE '^zstd [0-9]+\.[0-9]+' <<<"$v"
  case $t in
    ilt-render) libs="Pango Cairo HarfBuzz FreeType fontconfig libpng" ;;
    ilt-segment) libs="ICU" ;;
    ilt-train | ilt-eval) libs="LibTorch CUDA" ;;
    ilt-generate) libs="LibTorch CUDA ICU Pango HarfBuzz" ;;
    *) libs="" ;;
  esac
  for l in $libs; do check "$t --version names $l" grep -qE "^$l:? [0-9a-z]" <<<"$v"; done
done

# The configs are the presets, and load back.
if [[ -x $build/ilt-train ]]; then
  for p in tiny base bytes-lm-base; do
    check "configs/$p.json is the preset" \
      cmp -s <(run "$prefix/bin/ilt-train" --config "$p" --print-config) \
      <(run "$prefix/bin/ilt-train" --config "$prefix/share/ilt/configs/$p.json" --print-config)
  done
fi

# Man pages, one per tool, from --help.
if [[ $man == 1 ]]; then
  for t in "${tools[@]}"; do
    page=$prefix/share/man/man1/$t.1
    check "man page $t.1" grep -q "^\\.TH ${t^^} " "$page"
  done
  check "ilt-train.1 documents --max-steps" grep -q 'max\\-steps' "$prefix/share/man/man1/ilt-train.1"
fi

# Bash completion: in sync with the built tools' flags, and completing.
check "completion in sync with --help" "$src/scripts/make-completion.sh" --check "$build" "$py"
complete_words() {  # complete_words WORD...: what the installed completion offers for the last word
  bash -c 'source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _ilt_complete "$1" 2>/dev/null
           printf "%s\n" "${COMPREPLY[@]}"' _ "$prefix/share/bash-completion/completions/ilt-train" "$@"
}
check "completes ilt-train --max-" grep -qx -- --max-steps <(complete_words ilt-train --max-)
check "completes ilt-train --config ba" grep -qx base <(complete_words ilt-train --config ba)
check "completes ilt-render --fo" grep -qx -- --font-px <(complete_words ilt-render --fo)
pack_offers=$(complete_words ilt-pack --max-)
check "ilt-pack offers its own --max- flags" grep -qx -- --max-seq-length <<<"$pack_offers"
check "ilt-pack offers no ilt-train flag" test "$(grep -cx -- --max-steps <<<"$pack_offers")" -eq 0

# The demo pipeline from the installed tools, corpus and scripts.
if [[ -x $build/ilt-train && -x $build/ilt-render && -x $build/ilt-generate ]]; then
  if run "$prefix/bin/ilt-demo" --quick out >demo.log 2>&1; then
    ok
    check "ilt-demo used the installed corpus" grep -qF "corpus from $prefix/share/ilt/demo" demo.log
    check "ilt-demo trained and generated" test -s out/generate.jsonl -a -s out/eval.json -a -s out/count/answers.jsonl
    check "ilt-demo rendered PNGs" test "$(ls out/png | wc -l)" -gt 10
  else
    tail -20 demo.log
    bad "ilt-demo --quick from the prefix"
  fi
  # ilt-shard reads what the installed tools wrote.
  if [[ -s out/words.shard ]]; then
    check "ilt-shard reads a words shard" bash -c "'$prefix/bin/ilt-shard' out/words.shard | grep -qx 'kind: words'"
    check "ilt_shard imports from the prefix" \
      env PYTHONPATH="$prefix/lib/python3/dist-packages" "$py" -c 'import ilt_shard; print(ilt_shard.__file__)'
  fi
fi
report test_install
