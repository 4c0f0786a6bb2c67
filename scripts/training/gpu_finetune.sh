#!/usr/bin/env bash
# GPU fine-tuning of the shipped default model, two jobs side by side on one GPU for SECS
# seconds (default 500): at the shipped 128 grid (default_model_gpu128.yaml) and moved to the
# paper's 256 grid (regrid.py + default_model_gpu256.yaml). Tried, not kept: docs/models.md.
#
#   scripts/training/gpu_finetune.sh DATA_DIR RUN_DIR STAGE4.pt
#
# DATA_DIR from make_data.py; STAGE4.pt: the exported stage-4 weights (docs/models.md,
# Reproducing; the shipped file is already the stage-5 mix).
# (TRAIN_ARGS="--set device=cpu ..." passes more options to both jobs.)
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(dirname "$(dirname "$here")")"
data="${1:?DATA_DIR (with manifest.yaml from make_data.py)}"
run="${2:?RUN_DIR}"
init="${3:?STAGE4.pt (the exported stage-4 weights)}"
secs="${SECS:-500}"
py="${PYTHON:-$repo/.venv/bin/python}"
mkdir -p "$run"
"$py" "$here/regrid.py" "$init" "$run/init256.pt" \
    grid_size=256 ring_r=15 sigma=8 rac_band=8
train() {  # train NAME [--set ...]: until SECS have passed (checkpoints every 250 steps)
    local name=$1; shift
    timeout "$secs" "$py" -m napari_fob.cli train --config "$here/default_model_$name.yaml" \
        --manifest "$data/manifest.yaml" --out "$run/$name" "$@" ${TRAIN_ARGS:-} \
        > "$run/$name.out" 2> "$run/$name.err"
}
train gpu128 --set init_checkpoint="$init" & train gpu256 --set init_checkpoint="$run/init256.pt" &
wait
tail -n 3 "$run"/gpu128/val_log.csv "$run"/gpu256/val_log.csv
