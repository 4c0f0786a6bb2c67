#!/usr/bin/env bash
# Train FoB at the 1/4 feature scale on the real-anatomy benchmark's MRI (issue 23, part 1;
# docs/models.md, "The 1/4-scale model on real MRI"):
#
#   scripts/train_real_model.sh [DATA_DIR] [RUN_DIR] [extra fob train args]
#
# 1. builds the training data outside the repository (scripts/training/make_real_data.py: the
#    template in three orientations, supervoxels touching a test structure removed, the HCPEx
#    tune structures as labels) unless its manifest exists;
# 2. moves the shipped model's weights to the resnet18-s4 encoder with the position code (its
#    scale 0) and without the location prior
#    (scripts/training/retarget.py);
# 3. trains with scripts/training/real_model.yaml until stopped; rerunning continues
#    (--resume) where it stopped.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(dirname "$here")"
data="${1:-/work/fobreal/data}"
run="${2:-/work/fobreal/run}"
shift $(( $# > 2 ? 2 : $# ))
py="${PYTHON:-$repo/.venv/bin/python}"
if [ ! -f "$data/manifest.yaml" ]; then
    "$py" "$here/training/make_real_data.py" --out "$data"
fi
if [ -f "$run/latest.pt" ]; then
    exec "$py" -m napari_fob.cli train --out "$run" --resume "$@"
fi
mkdir -p "$run"
"$py" "$here/training/retarget.py" default "$run/init.pt" encoder=resnet18-s4 \
    spr_offset_radius=4 location_prior=none position_code=true
exec "$py" -m napari_fob.cli train --config "$here/training/real_model.yaml" \
    --manifest "$data/manifest.yaml" --out "$run" --set init_checkpoint="$run/init.pt" "$@"
