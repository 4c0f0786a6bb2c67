#!/usr/bin/env bash
# Train the shipped default FoB model (src/napari_fob/weights/fob-compact.pt); see docs/models.md.
#
#   scripts/train_default_model.sh [DATA_DIR] [RUN_DIR] [extra fob train args, e.g. --resume]
#
# 1. builds the training data outside the repository (phantoms with seeds 100-131, the MNI T1
#    image, supervoxel pseudo-labels, DATA_DIR/manifest.yaml) unless the manifest exists;
# 2. runs `fob train` with scripts/training/default_model.yaml (stop it whenever: checkpoints
#    every 100 steps; rerun with --resume to continue);
# 3. scripts/training/export_default.py RUN_DIR/latest.pt then writes the small shipped file.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(dirname "$here")"
data="${1:-/work/fobtrain/data}"
run="${2:-/work/fobtrain/run1}"
shift $(( $# > 2 ? 2 : $# ))
py="${PYTHON:-$repo/.venv/bin/python}"
if [ ! -f "$data/manifest.yaml" ]; then
    "$py" "$here/training/make_data.py" --out "$data" --seeds 100-131 --jobs 2
fi
if [ -f "$run/latest.pt" ] && [[ " $* " == *" --resume "* ]]; then
    exec "$py" -m napari_fob.cli train --out "$run" "$@"
fi
exec "$py" -m napari_fob.cli train --config "$here/training/default_model.yaml" \
    --manifest "$data/manifest.yaml" --out "$run" "$@"
