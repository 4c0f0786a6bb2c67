"""Copy a FoB checkpoint's weights under a config with other loss/target settings (stage 2).

``init_checkpoint`` takes its architecture from the checkpoint and refuses ``model_overrides``;
settings that are not weights (here the heatmap ``sigma``) are changed by re-saving the weights
with an edited config. ``encoder=resnet18-s4`` moves a ``resnet18`` model to the 1/4 feature
scale with the same convolution weights (layer2 unstrided); the learnt query positional map is
resized bilinearly to the finer feature grid, and ``spr_offset_radius`` should follow the new
stride. ``position_code=true`` adds the position code of the features with its projection at 0
(the same function until training moves it). Usage:
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
# changes of the network that keep every weight (the encoder's stride, SPR's offset pattern)
SAME_WEIGHTS = ("encoder", "spr_offset_radius", "position_code")
COMPATIBLE_ENCODERS = {"resnet18": "resnet18-s4", "resnet18-s4": "resnet18"}


def rebuilt(model, network: dict):
    """`model`'s weights in a model with another encoder stride (same weight shapes) and/or the
    position code switched on (its projection 0) or off."""
    import torch.nn.functional as F

    from napari_fob.model import build_fob

    encoder = network.get("encoder", model.config.encoder)
    if encoder != model.config.encoder and COMPATIBLE_ENCODERS.get(model.config.encoder) != encoder:
        raise ValueError(f"retarget: cannot move encoder {model.config.encoder!r} to {encoder!r}")
    new = build_fob(replace(model.config, **network))
    state = {k: v for k, v in model.state_dict().items() if k in new.state_dict()}
    for key in set(new.state_dict()) - set(state):  # the position code's projection, at 0
        if not key.startswith("position_proj."):
            raise ValueError(f"retarget: {key} has no weights in {model.config.name}")
        state[key] = new.state_dict()[key].zero_()
    for key, target in new.state_dict().items():
        if state[key].shape != target.shape:  # the query positional map, (1, C, h, w)
            state[key] = F.interpolate(
                state[key], size=target.shape[-2:], mode="bilinear", align_corners=False
            )
    new.load_state_dict(state)
    return new


def main(argv: list[str]) -> int:
    src, dst, *pairs = argv
    changes = {}
    for pair in pairs:
        key, value = pair.split("=", 1)
        if key not in NOT_WEIGHTS + SAME_WEIGHTS:
            raise ValueError(f"retarget: {key!r} is not one of {NOT_WEIGHTS + SAME_WEIGHTS}")
        if key in ("heat_loss", "encoder"):
            changes[key] = value
        elif key == "position_code":
            if value.lower() not in ("true", "false"):
                raise ValueError(f"retarget: position_code={value!r}: expected true or false")
            changes[key] = value.lower() == "true"
        elif key == "location_prior":  # "a,b" or "none"
            changes[key] = None if value == "none" else tuple(float(v) for v in value.split(","))
        else:
            changes[key] = float(value)
    model = load_fob(src)
    network = {k: changes.pop(k) for k in ("encoder", "position_code") if k in changes}
    if network:
        model = rebuilt(model, network)
    model.config = replace(model.config, **changes)
    save_checkpoint(dst, model, step=0)
    print(f"wrote {dst}: {network | changes}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
