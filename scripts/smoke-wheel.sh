#!/usr/bin/env bash
# Smoke test of the built wheel, as a user meets it: build the wheel and sdist from a copy of
# the checkout, install the wheel into a fresh venv, then run `fob --version`, `fob sample`, a
# mask-ring `fob segment` and `npe2 validate` (where npe2 is installed).
#
#   scripts/smoke-wheel.sh          # from the index: torch/torchvision from $TORCH_INDEX
#                                   # (default PyTorch's CPU index), then the wheel's deps
#   SMOKE_DEPS_FROM=.venv scripts/smoke-wheel.sh
#                                   # offline: the fresh venv sees that venv's packages through a
#                                   # plain .pth path (so not its editable napari-fob) and the
#                                   # wheel is built with its setuptools and installed --no-deps
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
TORCH_INDEX=${TORCH_INDEX:-https://download.pytorch.org/whl/cpu}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

"$PY" - "$work/src" <<'PYEOF'
import shutil, sys
skip = (".git", ".venv", "*.egg-info", "__pycache__", ".*_cache", "build", "dist", "runs")
shutil.copytree(".", sys.argv[1], ignore=shutil.ignore_patterns(*skip))
PYEOF
"$PY" -m venv "$work/venv"
V="$work/venv/bin"
if [[ -n "${SMOKE_DEPS_FROM:-}" ]]; then
  dev=$(cd "$SMOKE_DEPS_FROM" && pwd)/bin/python
  (cd "$work/src" && "$dev" -c "from setuptools import build_meta as m
m.build_sdist('$work/dist'); m.build_wheel('$work/dist')" >/dev/null)
  deps=$("$dev" -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")
  site=$("$V/python" -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")
  echo "$deps" > "$site/zz-smoke-deps.pth"
  "$V/pip" install -q --no-deps "$work"/dist/*.whl
else
  "$V/pip" install -q build
  "$V/python" -m build -q --outdir "$work/dist" "$work/src"
  "$V/pip" install -q torch torchvision --index-url "$TORCH_INDEX"
  "$V/pip" install -q "$work"/dist/*.whl
fi
echo "built $(cd "$work/dist" && ls)"

cd "$work"
where=$("$V/python" -c "import napari_fob; print(napari_fob.__file__)")
[[ "$where" == "$work/venv/"* ]] || { echo "napari_fob imported from $where, not the wheel" >&2; exit 1; }
"$V/fob" --version
"$V/fob" sample abdomen-phantom --out data >/dev/null
"$V/fob" segment data/image.nii.gz --support data/support.nii.gz --out result \
  --prompts mask-ring --segmenter random-walker --quiet
test -s result/labels.nii.gz
if "$V/python" -c "import npe2" 2>/dev/null; then
  "$V/python" -m npe2 validate napari-fob
fi
echo "wheel smoke test passed"
