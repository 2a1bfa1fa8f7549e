#!/usr/bin/env bash
# The Debian package on a fresh machine: builds build/ against Debian's LibTorch, makes
# ilt_VERSION_ARCH.deb with `cpack -G DEB`, creates a fresh Debian 12 root with debootstrap
# (minbase: no compiler, no ilt dependency), installs the package there with
# `apt-get install ./ilt_*.deb` (apt brings its dependencies from Debian's archive) and runs, as
# a user would: every tool's --version, `man ilt-train`, bash completion, and `ilt-demo`, the
# demo pipeline from the installed tools, in a folder outside any source tree.
# Needs root (debootstrap, chroot, mount) and Debian's archive; 7 to 9 minutes on two cores
# (measured: 7 min 16 s and 8 min 59 s; debootstrap 0.7-1.7 min, apt-get 2.5-3.9 min for 526
# packages, the demo 2.7-3.4 min).
# Not part of the test command (it downloads a whole system); run it before a release.
# Usage: scripts/deb-check.sh [--quick] [WORK_DIR]   (default /var/tmp/ilt-deb-check; --quick:
#        ilt-demo --quick)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
quick=()
if [[ ${1:-} == --quick ]]; then quick=(--quick); shift; fi
work=${1:-/var/tmp/ilt-deb-check}
[[ $(id -u) -eq 0 ]] || { echo "deb-check: needs root (debootstrap, chroot)" >&2; exit 1; }
t0=$SECONDS
step() { echo "== deb-check ($((SECONDS - t0)) s): $*"; }

step "build and package (build/, Debian's LibTorch)"
"$root/scripts/install-deps.sh"
command -v debootstrap >/dev/null || apt-get install -y -qq debootstrap >/dev/null
"$root/scripts/build.sh"
(cd "$root/build" && rm -f ilt_*.deb && cpack -G DEB >/dev/null)
deb=$(ls "$root"/build/ilt_*.deb)
echo "$deb: $(du -h "$deb" | cut -f1)"
dpkg-deb --field "$deb" Package Version Architecture Depends Recommends

step "a fresh Debian 12 root (debootstrap --variant=minbase) in $work/root"
chroot_dir=$work/root
cleanup() { umount "$chroot_dir/proc" 2>/dev/null || true; }
trap cleanup EXIT
cleanup
rm -rf "$work"
mkdir -p "$work"
mirror=$(sed -n 's/^URIs: *\(http[^ ]*debian\)$/\1/p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -1)
debootstrap --variant=minbase bookworm "$chroot_dir" "${mirror:-http://deb.debian.org/debian}" >"$work/debootstrap.log" 2>&1 ||
  { tail -20 "$work/debootstrap.log"; exit 1; }
# The same archive sections as this machine (updates and security: the libraries built against).
if [[ -f /etc/apt/sources.list.d/debian.sources ]]; then
  cp /etc/apt/sources.list.d/debian.sources "$chroot_dir/etc/apt/sources.list.d/"
  rm -f "$chroot_dir/etc/apt/sources.list"
fi
cp /etc/resolv.conf "$chroot_dir/etc/resolv.conf"
mount -t proc proc "$chroot_dir/proc"
in_root() { chroot "$chroot_dir" env -i PATH=/usr/local/bin:/usr/bin:/bin HOME=/root LANG=C.UTF-8 \
  DEBIAN_FRONTEND=noninteractive "$@"; }
echo "fresh root: $(in_root dpkg-query -W | wc -l) packages; ilt-train there: $(in_root sh -c 'command -v ilt-train || echo none')"

step "apt-get install ./$(basename "$deb")"
cp "$deb" "$chroot_dir/root/"
in_root apt-get update -qq
in_root sh -c "cd /root && apt-get install -y -qq ./$(basename "$deb")" >"$work/apt.log" 2>&1 ||
  { tail -30 "$work/apt.log"; exit 1; }
echo "installed: $(in_root dpkg-query -W ilt); $(in_root dpkg-query -W | wc -l) packages now"
in_root dpkg -L ilt | grep -E '^/usr/(bin|share/(man|ilt/configs|bash-completion))/' | sed 's/^/   /'

step "the installed tools"
for t in ilt-segment ilt-render ilt-pack ilt-train ilt-eval ilt-generate ilt-inspect ilt-bench; do
  in_root "$t" --version | sed 's/^/   /'
done
in_root sh -c 'ilt-shard --help | head -1' | sed 's/^/   /'
in_root apt-get install -y -qq --no-install-recommends man-db >/dev/null 2>&1
in_root sh -c 'MANPAGER=cat MANWIDTH=100 man ilt-train 2>/dev/null | head -12' | sed 's/^/   /'
# (bash-completion's loader returns 124 when it loaded something: "retry the completion")
in_root bash -c 'source /usr/share/bash-completion/bash_completion; _completion_loader ilt-train
  COMP_WORDS=(ilt-train --config welt-) COMP_CWORD=2 && _ilt_complete ilt-train &&
  echo "bash completion: ilt-train --config welt-<TAB>: ${COMPREPLY[*]}"' | sed 's/^/   /'

step "ilt-demo ${quick[*]} in /root/elsewhere"
in_root sh -c "mkdir -p /root/elsewhere && cd /root/elsewhere && ilt-demo ${quick[*]} demo-out" 2>&1 | tee "$work/demo.log"
in_root sh -c 'ilt-shard /root/elsewhere/demo-out/words.shard | head -4' | sed 's/^/   /'
step "done: the package installs on a fresh Debian 12 and runs the demo"
