"""Copy a FoB checkpoint's weights under a config with other loss/target settings (stage 2).

``init_checkpoint`` takes its architecture from the checkpoint and refuses ``model_overrides``;
settings that are not weights (here the heatmap ``sigma``) are changed by re-saving the weights
with an edited config. Usage:
``retarget.py IN.pt OUT.pt sigma=4.0 [location_prior=1,0.5] [key=value ...]``.
"""

from __future__ import annotations

import sys
from dataclasses import replace

from napari_fob.model.checkpoint import load_fob, save_checkpoint

NOT_WEIGHTS = (
    "sigma",
    "lambda_heat",
    "lambda_coor",
    "tau",
    "fg_threshold",
    "heat_loss",
    "location_prior",
    "lambda_band",
)


def main(argv: list[str]) -> int:
    src, dst, *pairs = argv
    changes = {}
    for pair in pairs:
        key, value = pair.split("=", 1)
        if key not in NOT_WEIGHTS:
            raise ValueError(f"retarget: {key!r} is not one of {NOT_WEIGHTS}")
        if key == "heat_loss":
            changes[key] = value
        elif key == "location_prior":  # "a,b" or "none"
            changes[key] = None if value == "none" else tuple(float(v) for v in value.split(","))
        else:
            changes[key] = float(value)
    model = load_fob(src)
    model.config = replace(model.config, **changes)
    save_checkpoint(dst, model, step=0)
    print(f"wrote {dst}: {changes}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
