# Sourced by install-deps.sh, build.sh and test.sh: which LibTorch to build against.
#   --torch debian  Debian's libtorch-dev 1.13 (CPU), build folder build/ (the default)
#   --torch pypi    PyPI's torch 2.11 (CUDA 13 wheel, runs on the CPU without a GPU) in the
#                   virtual environment $ILT_TORCH_VENV (default .venv-torch), pinned by hash
#                   in scripts/requirements-torch.txt; build folder build-torch2/
# ILT_TORCH=pypi does the same as --torch pypi. Sets torch, venv, build_dir and args (the
# remaining arguments).
torch=${ILT_TORCH:-debian}
args=()
while [[ $# -gt 0 ]]; do
  case $1 in
    --torch) torch=${2:?--torch needs debian or pypi}; shift 2 ;;
    --torch=*) torch=${1#--torch=}; shift ;;
    *) args+=("$1"); shift ;;
  esac
done
case $torch in
  debian) build_dir=build ;;
  pypi) build_dir=build-torch2 ;;
  *) echo "$(basename "$0"): --torch '$torch': debian or pypi" >&2; exit 2 ;;
esac
venv=${ILT_TORCH_VENV:-$root/.venv-torch}
