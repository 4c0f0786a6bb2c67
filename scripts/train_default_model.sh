#!/usr/bin/env bash
# Train the shipped default FoB model (src/napari_fob/weights/fob-compact.pt); see docs/models.md.
#
#   scripts/train_default_model.sh [DATA_DIR] [RUN_DIR] [extra fob train args for stage 2]
#
# 1. builds the training data outside the repository (phantoms with seeds 100-131, the MNI T1
#    image, supervoxel pseudo-labels, DATA_DIR/manifest.yaml) unless the manifest exists;
# 2. stage 1: `fob train` with scripts/training/default_model.yaml for 6700 steps; stage 2:
#    the stage-1 weights re-saved with heatmap sigma 4 (retarget.py), trained with
#    default_model_stage2.yaml for 16900 steps; stage 3: those weights re-saved with the
#    spatial cross-entropy heatmap loss, 21800 steps; stage 4: stage 3's best-of-validation
#    weights re-saved with the location prior (1, 0.5) and lambda_coor 0.01, trained with
#    default_model_stage4.yaml until stopped (checkpoints every 100 steps; rerunning the
#    script continues where it stopped);
# 3. scripts/training/export_default.py RUN_DIR/stage4/latest.pt writes the small shipped file.
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
stage1="$run/stage1" stage2="$run/stage2" stage3="$run/stage3"
train() { "$py" -m napari_fob.cli train --manifest "$data/manifest.yaml" "$@"; }
# Stage 1: from random weights, heatmap sigma 2 (the compact geometry halved), 6700 steps.
if [ ! -f "$stage1/latest.pt" ]; then
    train --config "$here/training/default_model.yaml" --out "$stage1" --iterations 6700
elif [ "$(cat "$stage1/.done" 2>/dev/null)" != done ]; then
    train --out "$stage1" --iterations 6700 --resume
fi
echo done > "$stage1/.done"
# Stage 2: the same weights with sigma 4 (wider heatmap targets), 16900 steps.
if [ ! -f "$stage2/latest.pt" ]; then
    "$py" "$here/training/retarget.py" "$stage1/latest.pt" "$run/stage2_init.pt" sigma=4.0
    train --config "$here/training/default_model_stage2.yaml" --out "$stage2" \
        --set init_checkpoint="$run/stage2_init.pt" --iterations 16900
elif [ "$(cat "$stage2/.done" 2>/dev/null)" != done ]; then
    train --out "$stage2" --iterations 16900 --resume
fi
echo done > "$stage2/.done"
# Stage 3: the spatial softmax cross-entropy heatmap loss (heat_loss=softmax-ce, lambda_heat 1),
# lr 2e-4 x0.95 every 2000 steps, 21800 steps.
stage4="$run/stage4"
if [ ! -f "$stage3/latest.pt" ]; then
    "$py" "$here/training/retarget.py" "$stage2/latest.pt" "$run/stage3_init.pt" \
        heat_loss=softmax-ce lambda_heat=1.0
    train --config "$here/training/default_model_stage2.yaml" --out "$stage3" \
        --set init_checkpoint="$run/stage3_init.pt" --set train.lr=2e-4 \
        --set train.lr_decay_every=2000 --iterations 21800
elif [ "$(cat "$stage3/.done" 2>/dev/null)" != done ]; then
    train --out "$stage3" --iterations 21800 --resume
fi
echo done > "$stage3/.done"
# Stage 4: stage 3's best weights with the location prior seeding SPR (docs/method.md), until
# stopped (--resume continues).
if [ -f "$stage4/latest.pt" ]; then
    exec "$py" -m napari_fob.cli train --out "$stage4" --resume "$@"
fi
"$py" "$here/training/retarget.py" "$stage3/best.pt" "$run/stage4_init.pt" \
    location_prior=1,0.5 lambda_coor=0.01
train --config "$here/training/default_model_stage4.yaml" --out "$stage4" \
    --set init_checkpoint="$run/stage4_init.pt" "$@"
